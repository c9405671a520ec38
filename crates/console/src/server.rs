//! The HTTPS server: TLS (always on; client certificates requested, required on the agent
//! routes), the agent protocol, the JSON API and the web UI.

use crate::auth::{self, Caller};
use crate::db::Db;
use crate::pki::{self, Ca};
use crate::protocol::*;
use crate::store::{self, HostRow, IncidentRow, Role};
use crate::{ui, ConsoleError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to run the console.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The state directory made by [`crate::init`].
    pub state_dir: PathBuf,
    /// Address to listen on. Any address is accepted because the console only ever speaks
    /// TLS (the rule "never a non-loopback address without TLS" can therefore not be
    /// broken); port 0 picks a free port ([`RunningConsole::addr`]).
    pub listen: SocketAddr,
    /// PostgreSQL URL (`postgres://user@127.0.0.1:5432/ward`); `None`: SQLite in
    /// `state_dir/console.db`.
    pub database_url: Option<String>,
    /// A host that has not been heard from for this long is `silent`.
    pub silent_after: Duration,
}

impl ServeOptions {
    /// Defaults: SQLite, silent after 60 s.
    pub fn new(state_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServeOptions {
        ServeOptions {
            state_dir: state_dir.into(),
            listen,
            database_url: None,
            silent_after: Duration::from_secs(60),
        }
    }
}

/// The client certificate of a connection (SHA-256 of its DER), if it presented one.
#[derive(Clone, Debug)]
struct PeerCert(Option<String>);

pub(crate) struct App {
    db: Db,
    state_dir: PathBuf,
    ca: Ca,
    silent_after_ms: i64,
    /// Enrolled, unrevoked agents by certificate fingerprint (one console process owns
    /// its database; revocation removes the entry).
    agents: std::sync::Mutex<std::collections::HashMap<String, AgentIdent>>,
    /// Hosts that may have actions waiting (so a heartbeat costs one statement otherwise).
    pending: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Enrollments one at a time (choosing a free name, then taking it, is one step).
    enrolling: tokio::sync::Mutex<()>,
}

/// Who an agent request comes from.
#[derive(Clone, Debug)]
struct AgentIdent {
    id: String,
    name: String,
}

/// A console running on its own threads (for tests, the load tool and embedding).
pub struct RunningConsole {
    addr: SocketAddr,
    backend: &'static str,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningConsole {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `https://127.0.0.1:PORT` (or the bound address).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
    /// `sqlite` or `postgresql`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }
    /// Stop accepting, end connections and wait for the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }
    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningConsole {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ConsoleError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("ward-console")
        .build()
        .map_err(|e| ConsoleError::Server(format!("starting the async runtime: {e}")))
}

/// Start the console on background threads; returns once it listens.
pub fn start(opts: ServeOptions) -> Result<RunningConsole, ConsoleError> {
    let rt = runtime()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ward-console".into())
        .spawn(move || {
            rt.block_on(async move {
                match prepare(&opts).await {
                    Ok((listener, acceptor, router, backend)) => {
                        let addr = listener.local_addr().map_err(|e| {
                            ConsoleError::Server(format!("reading the bound address: {e}"))
                        });
                        let _ = ready_tx.send(addr.map(|a| (a, backend)));
                        accept_loop(listener, acceptor, router, async {
                            let _ = stop_rx.await;
                        })
                        .await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_secs(2));
        })
        .map_err(|e| ConsoleError::Server(format!("spawning the server thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok((addr, backend))) => Ok(RunningConsole {
            addr,
            backend,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(ConsoleError::Server(
            "the server thread ended while starting".into(),
        )),
    }
}

/// Run the console in the foreground until SIGINT or SIGTERM.
pub fn serve(opts: ServeOptions) -> Result<(), ConsoleError> {
    let rt = runtime()?;
    rt.block_on(async move {
        let (listener, acceptor, router, backend) = prepare(&opts).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| ConsoleError::Server(format!("reading the bound address: {e}")))?;
        tracing::info!("ward console listening on https://{addr} ({backend})");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| ConsoleError::Server(format!("installing the SIGTERM handler: {e}")))?;
        accept_loop(listener, acceptor, router, async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await;
        Ok(())
    })
}

async fn prepare(
    opts: &ServeOptions,
) -> Result<
    (
        tokio::net::TcpListener,
        tokio_rustls::TlsAcceptor,
        Router,
        &'static str,
    ),
    ConsoleError,
> {
    let dir = &opts.state_dir;
    let ca = Ca::load(dir)?;
    let srv_pem = crate::read_state_file(dir, pki::SERVER_CERT)?;
    let srv_key = crate::read_state_file(dir, pki::SERVER_KEY)?;
    let ca_der = pki::certs_from_pem(&ca.pem)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in ca_der {
        roots
            .add(c)
            .map_err(|e| ConsoleError::Pki(format!("ca.pem unusable as a root: {e}")))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        pki::provider(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| ConsoleError::Pki(format!("client certificate verifier: {e}")))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(pki::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConsoleError::Pki(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki::certs_from_pem(&srv_pem)?, pki::key_from_pem(&srv_key)?)
        .map_err(|e| ConsoleError::Pki(format!("server.pem / server-key.pem: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));

    let db = match &opts.database_url {
        Some(url) => Db::open_pg(url).await?,
        None => Db::open_sqlite(&dir.join("console.db")).await?,
    };
    bootstrap(&db, dir).await?;
    let backend = db.backend_name();
    let pending = db.hosts_with_open_actions().await?;
    let app = Arc::new(App {
        db,
        state_dir: dir.clone(),
        ca,
        silent_after_ms: opts.silent_after.as_millis() as i64,
        agents: Default::default(),
        pending: std::sync::Mutex::new(pending),
        enrolling: tokio::sync::Mutex::new(()),
    });
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| {
            ConsoleError::Server(format!(
                "listening on {}: {e} (choose another --listen address or stop what uses it)",
                opts.listen
            ))
        })?;
    Ok((listener, acceptor, router(app), backend))
}

/// Seed the database with the admin account made by `init` (idempotent, per backend).
async fn bootstrap(db: &Db, dir: &std::path::Path) -> Result<(), ConsoleError> {
    let b = crate::read_state_file(dir, store::BOOTSTRAP)?;
    let v: serde_json::Value = serde_json::from_str(&b)
        .map_err(|e| ConsoleError::State(format!("{}: {e}", store::BOOTSTRAP)))?;
    let user = v["admin_user"].as_str().unwrap_or("admin");
    let hash = v["admin_token_sha256"].as_str().unwrap_or_default();
    if hash.len() != 64 {
        return Err(ConsoleError::State(format!(
            "{} has no admin token hash: re-run `ward console init` in a new directory",
            store::BOOTSTRAP
        )));
    }
    if db.create_user(user, Role::Admin, None).await? {
        db.audit(
            "console",
            "bootstrap-admin",
            user,
            "first admin account",
            true,
        )
        .await?;
    }
    db.add_token(hash, user).await
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => {
                let (tcp, _) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake refused: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                    let fp = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| pki::fingerprint(c));
                    let peer = PeerCert(fp);
                    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(peer.clone());
                        let mut r = router.clone();
                        async move { tower_service::Service::call(&mut r, req).await }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(20))
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
                    if let Err(e) = conn.await {
                        tracing::debug!("connection: {e}");
                    }
                });
            }
        }
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/enroll/v1/ca", get(enroll_ca))
        .route("/enroll/v1", post(enroll))
        .route("/agent/v1/heartbeat", post(agent_heartbeat))
        .route("/agent/v1/events", post(agent_events))
        .route("/agent/v1/actions/{id}", post(agent_action_result))
        .route("/api/v1/hosts", get(api_hosts))
        .route("/api/v1/hosts/{id}", get(api_host))
        .route("/api/v1/hosts/{id}/revoke", post(api_revoke))
        .route("/api/v1/incidents", get(api_incidents))
        .route("/api/v1/incidents/{num}", get(api_incident))
        .route("/api/v1/incidents/{num}/acknowledge", post(api_ack))
        .route("/api/v1/major", get(api_major))
        .route("/api/v1/actions", get(api_actions).post(api_create_action))
        .route("/api/v1/audit", get(api_audit))
        .route("/api/v1/users", post(api_create_user))
        .route("/api/v1/tokens", post(api_create_token))
        .route("/", get(ui_fleet))
        .route("/login", get(ui_login_form).post(ui_login))
        .route("/logout", post(ui_logout))
        .route("/incidents/{num}", get(ui_incident))
        .route("/major", get(ui_major))
        .route("/audit", get(ui_audit))
        .route("/ui/action", post(ui_action))
        .route("/assets/style.css", get(style))
        .layer(DefaultBodyLimit::max(MAX_AGENT_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

// ---------------------------------------------------------------- errors

/// An HTTP error with a message saying what to do.
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<ConsoleError> for ApiError {
    fn from(e: ConsoleError) -> Self {
        tracing::error!("{e}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn err(code: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(code, msg.into())
}

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------- enrollment

async fn enroll_ca(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        app.ca.pem.clone(),
    )
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 253 && !n.chars().any(|c| c.is_control())
}

async fn enroll(State(app): State<Arc<App>>, body: Bytes) -> ApiResult<Json<EnrollResponse>> {
    let req: EnrollRequest = serde_json::from_slice(&body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            format!("enrollment request is not valid JSON {{token, name}}: {e}"),
        )
    })?;
    if !valid_name(&req.name) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "host name must be 1-253 characters without control characters",
        ));
    }
    let public_key = hex::decode(&req.public_key).unwrap_or_default();
    let proof = hex::decode(&req.proof).unwrap_or_default();
    let msg = proof_message(&req.token, &req.name, &req.public_key);
    if !pki::verify_proof(&public_key, &msg, &proof) {
        app.db
            .audit(
                "agent",
                "enroll",
                &req.name,
                "bad public key or proof of possession",
                false,
            )
            .await?;
        return Err(err(
            StatusCode::BAD_REQUEST,
            "public_key must be an uncompressed P-256 point and proof its signature of the enrollment message",
        ));
    }
    let dir = app.state_dir.clone();
    let token = req.token.clone();
    let consumed = tokio::task::spawn_blocking(move || store::consume_token(&dir, &token))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Err(e) = consumed {
        app.db
            .audit("agent", "enroll", &req.name, &e.to_string(), false)
            .await?;
        return Err(err(StatusCode::FORBIDDEN, e.to_string()));
    }
    let host_id = format!("h-{}", crate::random_hex(8));
    let (cert_pem, fp) = app.ca.issue_client(&host_id, &public_key)?;
    // two agents with one name (two state dirs on one machine): the second is "name (2)"
    let _one_at_a_time = app.enrolling.lock().await;
    let mut name = req.name.clone();
    let mut n = 2;
    while app.db.name_taken(&name).await? {
        name = format!("{} ({n})", req.name);
        n += 1;
    }
    app.db.create_host(&host_id, &name, &fp).await?;
    app.db
        .audit(
            "agent",
            "enroll",
            &name,
            &format!("host id {host_id}"),
            true,
        )
        .await?;
    Ok(Json(EnrollResponse {
        host_id,
        cert_pem,
        ca_pem: app.ca.pem.clone(),
    }))
}

// ---------------------------------------------------------------- agent protocol

async fn agent_host(app: &App, peer: Option<Extension<PeerCert>>) -> ApiResult<AgentIdent> {
    let Some(fp) = peer.and_then(|Extension(p)| p.0) else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "client certificate required: enroll the agent with `ward protect --console URL --enroll-token TOKEN`",
        ));
    };
    if let Some(a) = app.agents.lock().ok().and_then(|m| m.get(&fp).cloned()) {
        return Ok(a);
    }
    match app.db.host_by_fp(&fp).await? {
        None => {
            app.db
                .audit(
                    "agent",
                    "agent-auth",
                    &fp,
                    "certificate not enrolled here",
                    false,
                )
                .await?;
            Err(err(
                StatusCode::FORBIDDEN,
                "this client certificate is not enrolled with this console: enroll again with a new token",
            ))
        }
        Some(h) if h.revoked => {
            app.db
                .audit("agent", "agent-auth", &h.name, "revoked certificate", false)
                .await?;
            Err(err(
                StatusCode::FORBIDDEN,
                "this host's certificate was revoked on the console: enroll again with a new token",
            ))
        }
        Some(h) => {
            let a = AgentIdent {
                id: h.id,
                name: h.name,
            };
            if let Ok(mut m) = app.agents.lock() {
                m.insert(fp, a.clone());
            }
            Ok(a)
        }
    }
}

async fn reject(app: &App, host: &AgentIdent, what: &str, e: impl std::fmt::Display) -> ApiError {
    let msg = format!("{what}: {e}");
    let _ = app
        .db
        .audit(
            &format!("host:{}", host.name),
            "agent-message-rejected",
            &host.id,
            &msg,
            false,
        )
        .await;
    err(StatusCode::BAD_REQUEST, msg)
}

async fn agent_heartbeat(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerCert>>,
    body: Bytes,
) -> ApiResult<Json<HeartbeatResponse>> {
    let host = agent_host(&app, peer).await?;
    let hb: Heartbeat = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => return Err(reject(&app, &host, "heartbeat is not valid JSON", e).await),
    };
    app.db.heartbeat(&host.id, &hb).await?;
    // remove first, re-add if something is still open: an action created meanwhile adds
    // its host again after its row exists, so no action is ever missed
    let maybe = app
        .pending
        .lock()
        .map(|mut p| p.remove(&host.id))
        .unwrap_or(true);
    let actions = if maybe {
        let a = app.db.take_actions(&host.id).await?;
        if !a.is_empty() {
            if let Ok(mut p) = app.pending.lock() {
                p.insert(host.id.clone());
            }
        }
        a
    } else {
        vec![]
    };
    Ok(Json(HeartbeatResponse { actions }))
}

async fn agent_events(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerCert>>,
    body: Bytes,
) -> ApiResult<Json<EventsResponse>> {
    let host = agent_host(&app, peer).await?;
    let evs: Vec<EventEnvelope> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Err(reject(
                &app,
                &host,
                "events are not a valid JSON array of {seq, at, event}",
                e,
            )
            .await)
        }
    };
    if evs.len() > MAX_BATCH {
        return Err(reject(
            &app,
            &host,
            "too many events in one batch",
            format!("{} > {MAX_BATCH}", evs.len()),
        )
        .await);
    }
    if evs.iter().any(|e| e.seq == 0 || e.seq > i64::MAX as u64) {
        return Err(reject(&app, &host, "event sequence numbers", "must be 1..2^63").await);
    }
    let st = app.db.store_events(&host.id, &evs).await?;
    app.db.touch(&host.id).await?;
    if st.duplicates > 0 {
        tracing::info!(
            host = host.name,
            dup = st.duplicates,
            "replayed events ignored"
        );
    }
    Ok(Json(EventsResponse {
        accepted: st.accepted,
        duplicates: st.duplicates,
    }))
}

async fn agent_action_result(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerCert>>,
    UrlPath(id): UrlPath<i64>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let host = agent_host(&app, peer).await?;
    let res: ActionResult = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Err(reject(
                &app,
                &host,
                "action result is not valid JSON {ok, message}",
                e,
            )
            .await)
        }
    };
    let actor = format!("host:{}", host.name);
    match app
        .db
        .complete_action(id, &host.id, res.ok, &res.message)
        .await?
    {
        Some(a) => {
            if res.ok && (a.kind == "isolate" || a.kind == "release") {
                app.db.set_isolated(&host.id, a.kind == "isolate").await?;
            }
            let verb = if res.ok {
                "action-confirmed"
            } else {
                "action-failed"
            };
            app.db
                .audit(
                    &actor,
                    verb,
                    &format!("action {id} ({})", a.kind),
                    &res.message,
                    res.ok,
                )
                .await?;
            Ok(Json(serde_json::json!({ "recorded": true })))
        }
        None => {
            app.db
                .audit(
                    &actor,
                    "action-confirmed",
                    &format!("action {id}"),
                    "unknown, another host's, or already confirmed",
                    false,
                )
                .await?;
            Err(err(
                StatusCode::NOT_FOUND,
                "no open action with this id for this host",
            ))
        }
    }
}

// ---------------------------------------------------------------- fleet view model

/// A host with its derived status.
pub(crate) struct HostView {
    pub row: HostRow,
    pub status: &'static str,
    pub open_incidents: usize,
}

/// Status, most urgent first: `under-attack` (an incident neither restored nor
/// acknowledged), `silent` (not heard from within `silent_after`, or stopped),
/// `contained` (isolated, or SMB client blocks in force), `healthy`.
fn host_status(h: &HostRow, open: usize, now: i64, silent_after_ms: i64) -> &'static str {
    if open > 0 {
        return "under-attack";
    }
    let silent = h.stopped || h.last_seen.is_none_or(|t| now - t > silent_after_ms);
    if silent {
        return "silent";
    }
    let blocks = h.heartbeat.as_ref().is_some_and(|hb| !hb.blocks.is_empty());
    if h.isolated || blocks {
        return "contained";
    }
    "healthy"
}

/// Most incidents a list returns (`?limit=` up to this).
const MAX_LIST: i64 = 5000;

async fn fleet(app: &App, recent: i64) -> ApiResult<(Vec<HostView>, Vec<IncidentRow>)> {
    let hosts = app.db.hosts().await?;
    let counts = app.db.open_counts().await?;
    let incidents = app.db.incidents(recent, false).await?;
    let now = store::now_ms();
    let views = hosts
        .into_iter()
        .map(|row| {
            let open = counts.get(&row.id).copied().unwrap_or(0);
            HostView {
                status: host_status(&row, open, now, app.silent_after_ms),
                open_incidents: open,
                row,
            }
        })
        .collect();
    Ok((views, incidents))
}

fn host_json(v: &HostView) -> serde_json::Value {
    let hb = v.row.heartbeat.clone().unwrap_or_default();
    serde_json::json!({
        "id": v.row.id,
        "name": v.row.name,
        "status": v.status,
        "last_seen": v.row.last_seen.map(store::ms_to_rfc3339),
        "enrolled_at": store::ms_to_rfc3339(v.row.enrolled_at),
        "open_incidents": v.open_incidents,
        "isolated": v.row.isolated,
        "version": hb.version,
        "paths": hb.paths,
        "sensor": hb.sensor,
        "health": hb.health,
        "warnings": hb.warnings,
        "events_per_sec": hb.events_per_sec,
        "vault_used_bytes": hb.vault_used_bytes,
        "vault_max_bytes": hb.vault_max_bytes,
        "blocks": hb.blocks,
    })
}

/// The trust-wide view of everything still open.
pub(crate) fn major(incidents: &[IncidentRow]) -> serde_json::Value {
    use std::collections::BTreeMap;
    let open: Vec<&IncidentRow> = incidents
        .iter()
        .filter(|i| i.acknowledged_at.is_none())
        .collect();
    let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
    let mut clients: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    let mut timeline: Vec<(i64, String, i64, String)> = Vec::new();
    let (mut damaged, mut restored, mut lost) = (0i64, 0i64, 0i64);
    for i in &open {
        *hosts.entry(i.host_name.clone()).or_default() += 1;
        if let Some(c) = i.body.get("client").filter(|c| !c.is_null()) {
            let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let e = clients.entry((s("ip"), s("user"), s("share"))).or_default();
            if !e.contains(&i.host_name) {
                e.push(i.host_name.clone());
            }
        }
        damaged += i
            .body
            .get("files_damaged")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        restored += i.files_restored.unwrap_or(0);
        lost += i.files_lost.unwrap_or(0);
        let ms = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(&i.str_field(k))
                .map(|t| t.timestamp_millis())
                .unwrap_or(0)
        };
        for (k, what) in [
            ("started_at", "first damaging write".to_string()),
            ("detected_at", "detected".into()),
            (
                "contained_at",
                format!("contained ({})", i.str_field("action")),
            ),
        ] {
            timeline.push((ms(k), i.host_name.clone(), i.num, what));
        }
        if let Some(t) = i.restored_at {
            timeline.push((
                t,
                i.host_name.clone(),
                i.num,
                format!(
                    "restore {}: {} restored, {} lost",
                    i.restore,
                    i.files_restored.unwrap_or(0),
                    i.files_lost.unwrap_or(0)
                ),
            ));
        }
    }
    timeline.sort();
    let timeline: Vec<serde_json::Value> = timeline
        .into_iter()
        .map(|(t, host, num, what)| {
            serde_json::json!({"at": store::ms_to_rfc3339(t), "host": host, "incident": num, "what": what})
        })
        .collect();
    serde_json::json!({
        "open_incidents": open.len(),
        "hosts": hosts.iter().map(|(h, n)| serde_json::json!({"host": h, "incidents": n})).collect::<Vec<_>>(),
        "clients": clients.iter().map(|((ip, user, share), hs)| serde_json::json!({"ip": ip, "user": user, "share": share, "hosts": hs})).collect::<Vec<_>>(),
        "files_damaged": damaged,
        "files_restored": restored,
        "files_lost": lost,
        "timeline": timeline,
    })
}

// ---------------------------------------------------------------- API

async fn need(app: &App, headers: &HeaderMap, role: Role) -> ApiResult<Caller> {
    let Some(c) = auth::caller(&app.db, headers).await else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "sign in or send Authorization: Bearer TOKEN (the admin token is printed by `ward console init`)",
        ));
    };
    if c.role < role {
        app.db
            .audit(
                &c.user,
                "forbidden",
                role.as_str(),
                &format!("role {} insufficient", c.role.as_str()),
                false,
            )
            .await?;
        return Err(err(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {} role; {} has {}",
                role.as_str(),
                c.user,
                c.role.as_str()
            ),
        ));
    }
    Ok(c)
}

async fn api_hosts(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    need(&app, &headers, Role::Viewer).await?;
    let (views, _) = fleet(&app, 0).await?;
    Ok(Json(serde_json::Value::Array(
        views.iter().map(host_json).collect(),
    )))
}

async fn api_host(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    need(&app, &headers, Role::Viewer).await?;
    let (views, _) = fleet(&app, 0).await?;
    let v = views.iter().find(|v| v.row.id == id).ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            "no such host (see GET /api/v1/hosts)",
        )
    })?;
    let mut j = host_json(v);
    j["ready"] = v.row.ready.clone().unwrap_or(serde_json::Value::Null);
    let evs = app.db.events(&id, 50).await?;
    j["events"] = evs
        .iter()
        .map(|(seq, kind, at, body)| {
            serde_json::json!({"seq": seq, "type": kind, "at": store::ms_to_rfc3339(*at),
                "event": serde_json::from_str::<serde_json::Value>(body).unwrap_or_default()})
        })
        .collect();
    Ok(Json(j))
}

async fn api_revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    // read (and ignore) any body: an unread body would cost the keep-alive connection
    _body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let c = need(&app, &headers, Role::Admin).await?;
    let ok = app.db.revoke_host(&id).await?;
    if let Ok(mut m) = app.agents.lock() {
        m.retain(|_, a| a.id != id);
    }
    app.db.audit(&c.user, "revoke-host", &id, "", ok).await?;
    if !ok {
        return Err(err(StatusCode::NOT_FOUND, "no such host"));
    }
    Ok(Json(serde_json::json!({"revoked": id})))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    open: Option<bool>,
}

async fn api_incidents(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    need(&app, &headers, Role::Viewer).await?;
    let limit = q.limit.unwrap_or(500).clamp(1, MAX_LIST);
    let inc = app.db.incidents(limit, q.open.unwrap_or(false)).await?;
    Ok(Json(serde_json::Value::Array(
        inc.iter().map(|i| i.to_json()).collect(),
    )))
}

async fn api_incident(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(num): UrlPath<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    need(&app, &headers, Role::Viewer).await?;
    let i = app.db.incident(num).await?.ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            "no such incident (see GET /api/v1/incidents)",
        )
    })?;
    Ok(Json(i.to_json()))
}

async fn acknowledge(app: &App, c: &Caller, num: i64) -> ApiResult<()> {
    let ok = app.db.acknowledge(num, &c.user).await?;
    app.db
        .audit(&c.user, "acknowledge", &format!("incident {num}"), "", ok)
        .await?;
    if !ok {
        return Err(err(
            StatusCode::NOT_FOUND,
            "no such incident, or already acknowledged",
        ));
    }
    Ok(())
}

async fn api_ack(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(num): UrlPath<i64>,
    // read (and ignore) any body: an unread body would cost the keep-alive connection
    _body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let c = need(&app, &headers, Role::Operator).await?;
    acknowledge(&app, &c, num).await?;
    Ok(Json(serde_json::json!({"acknowledged": num})))
}

async fn api_major(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    need(&app, &headers, Role::Viewer).await?;
    Ok(Json(major(&app.db.incidents(MAX_LIST, true).await?)))
}

async fn api_actions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    need(&app, &headers, Role::Viewer).await?;
    let a = app.db.actions(None, 500).await?;
    Ok(Json(serde_json::to_value(a).unwrap_or_default()))
}

#[derive(Deserialize)]
struct NewAction {
    host_id: String,
    #[serde(flatten)]
    kind: ActionKind,
}

async fn request_action(app: &App, c: &Caller, host_id: &str, kind: &ActionKind) -> ApiResult<i64> {
    let Some(h) = app.db.host(host_id).await? else {
        return Err(err(
            StatusCode::NOT_FOUND,
            "no such host (see GET /api/v1/hosts)",
        ));
    };
    if h.revoked {
        return Err(err(
            StatusCode::CONFLICT,
            "this host's certificate is revoked",
        ));
    }
    let id = app.db.create_action(host_id, kind, &c.user).await?;
    if let Ok(mut p) = app.pending.lock() {
        p.insert(host_id.to_string());
    }
    app.db
        .audit(
            &c.user,
            "action-requested",
            &format!("{} ({})", h.name, h.id),
            &format!(
                "action {id}: {}",
                serde_json::to_string(kind).unwrap_or_default()
            ),
            true,
        )
        .await?;
    Ok(id)
}

async fn api_create_action(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let c = need(&app, &headers, Role::Operator).await?;
    let a: NewAction = serde_json::from_slice(&body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"host_id\":..,\"kind\":\"restore|lift-block|keep-block|isolate|release\", ...}}: {e}"),
        )
    })?;
    let id = request_action(&app, &c, &a.host_id, &a.kind).await?;
    Ok(Json(serde_json::json!({"id": id, "status": "pending"})))
}

async fn api_audit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    need(&app, &headers, Role::Operator).await?;
    let a = app.db.audit_log(1000).await?;
    Ok(Json(serde_json::to_value(a).unwrap_or_default()))
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    role: String,
    password: String,
}

async fn api_create_user(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let c = need(&app, &headers, Role::Admin).await?;
    let u: NewUser = serde_json::from_slice(&body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            format!("expected {{name, role, password}}: {e}"),
        )
    })?;
    let role = Role::parse(&u.role).ok_or_else(|| {
        err(
            StatusCode::BAD_REQUEST,
            "role must be viewer, operator or admin",
        )
    })?;
    if !valid_name(&u.name) || u.name.len() > 64 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "user name must be 1-64 characters without control characters",
        ));
    }
    if u.password.chars().count() < 12 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "password must have at least 12 characters",
        ));
    }
    let pw = u.password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let created = app.db.create_user(&u.name, role, Some(hash)).await?;
    app.db
        .audit(&c.user, "create-user", &u.name, role.as_str(), created)
        .await?;
    if !created {
        return Err(err(StatusCode::CONFLICT, "a user with this name exists"));
    }
    Ok(Json(
        serde_json::json!({"name": u.name, "role": role.as_str()}),
    ))
}

#[derive(Deserialize)]
struct NewToken {
    user: String,
}

async fn api_create_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let c = need(&app, &headers, Role::Admin).await?;
    let t: NewToken = serde_json::from_slice(&body)
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("expected {{user}}: {e}")))?;
    if app.db.user(&t.user).await?.is_none() {
        return Err(err(StatusCode::NOT_FOUND, "no such user"));
    }
    let token = format!("wct_{}", crate::random_hex(24));
    app.db
        .add_token(&crate::sha256_hex(&token), &t.user)
        .await?;
    app.db
        .audit(&c.user, "create-token", &t.user, "", true)
        .await?;
    Ok(Json(serde_json::json!({"user": t.user, "token": token})))
}

// ---------------------------------------------------------------- UI

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../assets/style.css"),
    )
}

async fn ui_caller(app: &App, headers: &HeaderMap) -> Result<Caller, Response> {
    match auth::caller(&app.db, headers).await {
        Some(c) if c.csrf.is_some() => Ok(c),
        _ => Err(Redirect::to("/login").into_response()),
    }
}

async fn ui_fleet(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let c = match ui_caller(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match fleet(&app, 50).await {
        Ok((views, inc)) => Html(ui::fleet(&c, &views, &inc)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn ui_incident(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(num): UrlPath<i64>,
) -> Response {
    let c = match ui_caller(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let inc = match app.db.incident(num).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Html(ui::message(&c, "No such incident.")),
            )
                .into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let host = app.db.host(&inc.host_id).await.ok().flatten();
    let actions = app.db.actions(None, 500).await.unwrap_or_default();
    let mine: Vec<_> = actions
        .into_iter()
        .filter(|a| a.host_id == inc.host_id)
        .collect();
    Html(ui::incident(&c, &inc, host.as_ref(), &mine)).into_response()
}

async fn ui_major(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let c = match ui_caller(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match app.db.incidents(MAX_LIST, true).await {
        Ok(inc) => Html(ui::major(&c, &major(&inc))).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn ui_audit(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let c = match ui_caller(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if c.role < Role::Operator {
        return (
            StatusCode::FORBIDDEN,
            Html(ui::message(&c, "The audit log needs the operator role.")),
        )
            .into_response();
    }
    match app.db.audit_log(500).await {
        Ok(a) => Html(ui::audit(&c, &a)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Failed sign-ins per name within [`LOGIN_WINDOW_MS`] before further tries are refused.
const MAX_FAILED_LOGINS: i64 = 5;
/// The window for counting failed sign-ins (15 minutes).
const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;

fn login_page(error: Option<&str>) -> Response {
    let csrf = crate::random_hex(16);
    let mut r = Html(ui::login(&csrf, error)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}={csrf}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600",
        auth::LOGIN_COOKIE
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn ui_login_form() -> Response {
    login_page(None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn ui_login(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let f: LoginForm = match serde_urlencoded_form(&body) {
        Some(f) => f,
        None => return login_page(Some("The form could not be read; try again.")),
    };
    let cookie = auth::cookie(&headers, auth::LOGIN_COOKIE).unwrap_or_default();
    if f.csrf.is_empty() || !auth::ct_eq(cookie.as_bytes(), f.csrf.as_bytes()) {
        let _ = app
            .db
            .audit(&f.user, "login", "ui", "CSRF check failed", false)
            .await;
        return login_page(Some("The sign-in form expired; try again."));
    }
    // too many failures for this name lately: refuse without checking (token sign-in, with
    // an empty name, is not limited: a 192-bit token cannot be guessed, and a lock there
    // would let anyone lock everyone out)
    let since = store::now_ms() - LOGIN_WINDOW_MS;
    let failed = if f.user.is_empty() {
        Ok(0)
    } else {
        app.db.failed_logins(&f.user, since).await
    };
    match failed {
        Ok(n) if n >= MAX_FAILED_LOGINS => {
            let _ = app
                .db
                .audit(
                    &f.user,
                    "login",
                    "ui",
                    "refused: too many failures, locked for 15 minutes",
                    false,
                )
                .await;
            return login_page(Some(
                "Too many failed sign-ins for this name: wait 15 minutes, or ask an admin.",
            ));
        }
        Ok(_) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    // user + password, or an empty user and an API token as the password
    let who = if f.user.is_empty() {
        app.db
            .token_user(&crate::sha256_hex(&f.password))
            .await
            .ok()
            .flatten()
            .map(|(u, _)| u)
    } else {
        match app.db.user(&f.user).await {
            Ok(Some((_, Some(hash)))) => {
                let pw = f.password.clone();
                let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
                    .await
                    .unwrap_or(false);
                ok.then(|| f.user.clone())
            }
            _ => {
                // spend the same time as a real check, so names cannot be probed
                let pw = f.password.clone();
                let _ = tokio::task::spawn_blocking(move || auth::hash_password(&pw)).await;
                None
            }
        }
    };
    let Some(user) = who else {
        let _ = app
            .db
            .audit(
                &f.user,
                "login",
                "ui",
                "wrong name, password or token",
                false,
            )
            .await;
        return login_page(Some("Wrong user name, password or token."));
    };
    let sid = crate::random_hex(32);
    let csrf = crate::random_hex(16);
    let exp = store::now_ms() + auth::SESSION_HOURS * 3_600_000;
    if let Err(e) = app
        .db
        .create_session(&crate::sha256_hex(&sid), &user, &csrf, exp)
        .await
    {
        return ApiError::from(e).into_response();
    }
    let _ = app.db.audit(&user, "login", "ui", "", true).await;
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}={sid}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        auth::SESSION_COOKIE,
        auth::SESSION_HOURS * 3600
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn serde_urlencoded_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn ui_logout(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let f: Option<CsrfForm> = serde_urlencoded_form(&body);
    if let (Some(c), Some(sid)) = (
        auth::caller(&app.db, &headers).await,
        auth::cookie(&headers, auth::SESSION_COOKIE),
    ) {
        if f.is_some_and(|f| {
            c.csrf
                .as_deref()
                .is_some_and(|t| auth::ct_eq(t.as_bytes(), f.csrf.as_bytes()))
        }) {
            let _ = app.db.delete_session(&crate::sha256_hex(&sid)).await;
            let _ = app.db.audit(&c.user, "logout", "ui", "", true).await;
        }
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-ward_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    op: String,
    #[serde(default)]
    host_id: String,
    #[serde(default)]
    incident: Option<i64>,
    #[serde(default)]
    ip: String,
}

async fn ui_action(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match ui_caller(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(f) = serde_urlencoded_form::<ActionForm>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Html(ui::message(&c, "The form could not be read.")),
        )
            .into_response();
    };
    if !c
        .csrf
        .as_deref()
        .is_some_and(|t| auth::ct_eq(t.as_bytes(), f.csrf.as_bytes()))
    {
        let _ = app
            .db
            .audit(&c.user, &f.op, "ui", "CSRF check failed", false)
            .await;
        return (
            StatusCode::FORBIDDEN,
            Html(ui::message(
                &c,
                "The form expired (CSRF check failed); reload the page and try again.",
            )),
        )
            .into_response();
    }
    if c.role < Role::Operator {
        let _ = app
            .db
            .audit(&c.user, &f.op, "ui", "role viewer cannot act", false)
            .await;
        return (
            StatusCode::FORBIDDEN,
            Html(ui::message(&c, "Actions need the operator role.")),
        )
            .into_response();
    }
    let back = match f.incident {
        Some(n) => format!("/incidents/{n}"),
        None => "/".to_string(),
    };
    let inc = match f.incident {
        Some(n) => app.db.incident(n).await.ok().flatten(),
        None => None,
    };
    let host_id = inc
        .as_ref()
        .map(|i| i.host_id.clone())
        .unwrap_or(f.host_id.clone());
    let kind = match f.op.as_str() {
        "acknowledge" => {
            let r = match f.incident {
                Some(n) => acknowledge(&app, &c, n).await,
                None => Err(err(StatusCode::BAD_REQUEST, "no incident")),
            };
            return match r {
                Ok(()) => Redirect::to(&back).into_response(),
                Err(ApiError(code, m)) => (code, Html(ui::message(&c, &m))).into_response(),
            };
        }
        "restore" => match &inc {
            Some(i) => ActionKind::Restore {
                incident: i.str_field("id"),
            },
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Html(ui::message(&c, "Restore needs an incident.")),
                )
                    .into_response()
            }
        },
        "lift-block" => ActionKind::LiftBlock { ip: f.ip.clone() },
        "keep-block" => ActionKind::KeepBlock { ip: f.ip.clone() },
        "isolate" => ActionKind::Isolate,
        "release" => ActionKind::Release,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Html(ui::message(&c, "Unknown action.")),
            )
                .into_response()
        }
    };
    match request_action(&app, &c, &host_id, &kind).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(ApiError(code, m)) => (code, Html(ui::message(&c, &m))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(last_seen: Option<i64>) -> HostRow {
        HostRow {
            id: "h".into(),
            name: "n".into(),
            revoked: false,
            enrolled_at: 0,
            last_seen,
            heartbeat: None,
            ready: None,
            isolated: false,
            stopped: false,
        }
    }

    #[test]
    fn status_most_urgent_first() {
        let now = 100_000;
        assert_eq!(host_status(&host(Some(now)), 0, now, 60_000), "healthy");
        assert_eq!(
            host_status(&host(Some(now)), 1, now, 60_000),
            "under-attack"
        );
        assert_eq!(host_status(&host(Some(0)), 0, now, 60_000), "silent");
        assert_eq!(host_status(&host(None), 0, now, 60_000), "silent");
        // an attack outranks silence: a host that reported one and went quiet is still hit
        assert_eq!(host_status(&host(Some(0)), 2, now, 60_000), "under-attack");
        let mut h = host(Some(now));
        h.isolated = true;
        assert_eq!(host_status(&h, 0, now, 60_000), "contained");
        let mut h = host(Some(now));
        h.heartbeat = Some(Heartbeat {
            blocks: vec![ward_model::Block {
                ip: "10.0.0.1".into(),
                incident: "i".into(),
                since: chrono::Utc::now(),
                until: None,
            }],
            ..Default::default()
        });
        assert_eq!(host_status(&h, 0, now, 60_000), "contained");
        let mut h = host(Some(now));
        h.stopped = true;
        assert_eq!(host_status(&h, 0, now, 60_000), "silent");
    }

    #[test]
    fn valid_names() {
        assert!(valid_name("pacs-01"));
        assert!(valid_name("<b>x</b>"));
        assert!(!valid_name(""));
        assert!(!valid_name("a\nb"));
        assert!(!valid_name(&"x".repeat(254)));
    }
}
