//! The agent's side: [`ConsoleClient`], a [`ward_outputs::Sink`] that enrolls once, then
//! talks mutual TLS to the console from its own thread.
//!
//! Synchronous on purpose (ureq + rustls, no async runtime in the agent): the agent has one
//! output thread and a handful of requests a minute, so a runtime would add threads and
//! weight for nothing.
//!
//! `send` only appends the event to a durable spool (`<state_dir>/console/spool/`, one
//! fsynced file per event, named by its sequence number) and wakes the worker; the worker
//! delivers the spool oldest first in batches and deletes what the console acknowledged.
//! The sequence number is the idempotency key: a batch re-sent after a lost answer is
//! recognised by the console and not stored twice. Nothing is lost while the console is
//! unreachable (or the agent restarts), nothing is duplicated, order is kept.

use crate::http::{self, Trust};
use crate::protocol::*;
use crate::{io_err, ConsoleError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use ward_model::{Action, AgentEvent, Block};
use ward_outputs::{Sink, SinkError};

/// Carries out an action the console sent; `Ok(message)` or `Err(reason)` goes back to the
/// console as the agent's confirmation.
pub type ActionHandler = Box<dyn FnMut(&ActionKind) -> Result<String, String> + Send>;

/// How the agent reaches its console.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `https://HOST:PORT` of the console.
    pub url: String,
    /// The agent's state directory; the client keeps `console/` in it.
    pub state_dir: PathBuf,
    /// One-time token, needed only until the agent is enrolled.
    pub enroll_token: Option<String>,
    /// The name the console shows this host under.
    pub name: String,
    /// Heartbeat period (actions arrive with the heartbeat's answer).
    pub heartbeat_every: Duration,
    /// Pause after a failed delivery before trying again (doubling on each further
    /// failure, up to 32 times this and at most a minute).
    pub retry_every: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl ClientOptions {
    /// Defaults: heartbeat every 5 s, retry every 2 s, 10 s request timeout, the machine's
    /// hostname as the name.
    pub fn new(url: impl Into<String>, state_dir: impl Into<PathBuf>) -> ClientOptions {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown-host".into());
        ClientOptions {
            url: url.into(),
            state_dir: state_dir.into(),
            enroll_token: None,
            name,
            heartbeat_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Shared, updatable heartbeat content (vault use, blocks, event rate...).
#[derive(Clone, Default)]
pub struct StatusHandle(Arc<Mutex<Heartbeat>>);

impl StatusHandle {
    /// Change what the next heartbeat reports.
    pub fn update(&self, f: impl FnOnce(&mut Heartbeat)) {
        if let Ok(mut h) = self.0.lock() {
            f(&mut h);
        }
    }
    /// What the next heartbeat reports.
    pub fn get(&self) -> Heartbeat {
        self.0.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

struct Spool {
    dir: PathBuf,
    next_seq: u64,
}

impl Spool {
    fn open(dir: PathBuf) -> Result<Spool, ConsoleError> {
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let mut max = 0u64;
        for e in std::fs::read_dir(&dir)
            .map_err(|e| io_err(&dir, e))?
            .flatten()
        {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if let Some(s) = n.strip_suffix(".json").and_then(|s| s.parse::<u64>().ok()) {
                max = max.max(s);
            }
        }
        let saved = std::fs::read_to_string(dir.join("seq"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Spool {
            dir,
            next_seq: max.max(saved) + 1,
        })
    }

    fn append(&mut self, ev: &AgentEvent) -> Result<u64, ConsoleError> {
        let seq = self.next_seq;
        let env = EventEnvelope {
            seq,
            at: chrono::Utc::now(),
            event: ev.clone(),
        };
        let body = serde_json::to_vec(&env).map_err(|e| self.err(e))?;
        // the counter first: a crash after it wastes a number, never reuses one
        crate::write_private(&self.dir.join("seq"), seq.to_string().as_bytes(), 0o600)?;
        crate::write_private(&self.dir.join(format!("{seq:020}.json")), &body, 0o600)?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.next_seq += 1;
        Ok(seq)
    }

    fn err(&self, e: impl std::fmt::Display) -> ConsoleError {
        ConsoleError::Spool {
            path: self.dir.clone(),
            message: e.to_string(),
        }
    }

    /// Oldest entries, at most `n`.
    fn oldest(&self, n: usize) -> Vec<(u64, PathBuf)> {
        let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        name.strip_suffix(".json")
                            .and_then(|s| s.parse::<u64>().ok())
                            .map(|s| (s, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.truncate(n);
        v
    }

    fn len(&self) -> usize {
        self.oldest(usize::MAX).len()
    }
}

struct Shared {
    spool: Mutex<Spool>,
    status: StatusHandle,
    wake: Mutex<mpsc::Sender<()>>,
    stop: AtomicBool,
    delivered: Mutex<u64>,
}

/// The console sink of one agent. Dropping it stops the worker (what is not delivered
/// stays in the spool for the next start).
pub struct ConsoleClient {
    shared: Arc<Shared>,
    worker: Option<std::thread::JoinHandle<()>>,
    host_id: Arc<Mutex<Option<String>>>,
}

fn cdir(state_dir: &Path) -> PathBuf {
    state_dir.join("console")
}

fn conn_err(what: &str, e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Connection(format!("{what}: {e}"))
}

/// Build the mutual-TLS HTTP agent from the enrolled identity, if any.
fn identity_agent(
    state_dir: &Path,
    timeout: Duration,
) -> Result<Option<ureq::Agent>, ConsoleError> {
    let d = cdir(state_dir);
    let (Ok(ca), Ok(cert), Ok(key)) = (
        std::fs::read_to_string(d.join("ca.pem")),
        std::fs::read_to_string(d.join("client.pem")),
        std::fs::read_to_string(d.join("client-key.pem")),
    ) else {
        return Ok(None);
    };
    http::agent(Trust::Ca(&ca), Some((&cert, &key)), timeout).map(Some)
}

/// Make a key pair and the enrollment request for it; returns the request and the private
/// key (PKCS#8 PEM), which stays with the agent.
pub fn enroll_request(token: &str, name: &str) -> Result<(EnrollRequest, String), ConsoleError> {
    let (key_pem, public, signer) = crate::pki::new_agent_key()?;
    let token = token.trim().to_string();
    let public_key = hex::encode(public);
    let msg = proof_message(&token, name, &public_key);
    let sig = signer
        .sign(&ring::rand::SystemRandom::new(), &msg)
        .map_err(|e| ConsoleError::Pki(format!("signing the enrollment proof: {e}")))?;
    Ok((
        EnrollRequest {
            token,
            name: name.to_string(),
            public_key,
            proof: hex::encode(sig.as_ref()),
        },
        key_pem,
    ))
}

impl ConsoleClient {
    /// Whether this state directory holds a console identity already.
    pub fn is_enrolled(state_dir: &Path) -> bool {
        cdir(state_dir).join("client.pem").exists()
    }

    /// Enroll with a one-time token: fetch the console's CA, check it against the token's
    /// fingerprint, then (verified TLS) present the token and keep the client certificate
    /// in `<state_dir>/console/`. Returns the host id.
    pub fn enroll(
        url: &str,
        token: &str,
        state_dir: &Path,
        name: &str,
    ) -> Result<String, ConsoleError> {
        let t = crate::parse_token(token)?;
        let url = url.trim_end_matches('/');
        let fetch = http::agent(Trust::FetchCaOnly, None, Duration::from_secs(10))?;
        let ca_pem = http::get_text(
            &fetch,
            &format!("{url}/enroll/v1/ca"),
            &format!("fetching the console CA from {url}"),
        )?;
        let ca = crate::pki::certs_from_pem(&ca_pem)?;
        if !ca.iter().any(|c| crate::pki::fingerprint(c) == t.ca_fp) {
            return Err(ConsoleError::Token(format!(
                "the console at {url} does not have the CA this token names: wrong URL, or someone in between; not enrolling"
            )));
        }
        let verified = http::agent(Trust::Ca(&ca_pem), None, Duration::from_secs(20))?;
        let (req, key_pem) = enroll_request(token, name)?;
        let resp: EnrollResponse =
            http::post_json(&verified, &format!("{url}/enroll/v1"), &req, "enrolling")?;
        let d = cdir(state_dir);
        std::fs::create_dir_all(&d).map_err(|e| io_err(&d, e))?;
        crate::write_private(&d.join("ca.pem"), resp.ca_pem.as_bytes(), 0o644)?;
        crate::write_private(&d.join("client-key.pem"), key_pem.as_bytes(), 0o600)?;
        crate::write_private(
            &d.join("host.json"),
            serde_json::json!({"host_id": resp.host_id, "url": url, "name": name})
                .to_string()
                .as_bytes(),
            0o600,
        )?;
        // the certificate last: its presence marks the agent as enrolled
        crate::write_private(&d.join("client.pem"), resp.cert_pem.as_bytes(), 0o644)?;
        Ok(resp.host_id)
    }

    /// Open the spool and start the worker thread. Needs either an enrolled state directory
    /// or `opts.enroll_token` (enrollment then happens in the worker, retried while the
    /// console is unreachable; events are spooled meanwhile).
    pub fn start(
        opts: ClientOptions,
        handler: Option<ActionHandler>,
    ) -> Result<ConsoleClient, ConsoleError> {
        if !Self::is_enrolled(&opts.state_dir) {
            match &opts.enroll_token {
                Some(t) => {
                    crate::parse_token(t)?;
                }
                None => {
                    return Err(ConsoleError::Token(
                        "this agent is not enrolled yet: pass --enroll-token TOKEN (from `ward console enroll-token`) once"
                            .into(),
                    ))
                }
            }
        }
        let spool = Spool::open(cdir(&opts.state_dir).join("spool"))?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            status: StatusHandle::default(),
            wake: Mutex::new(tx),
            stop: AtomicBool::new(false),
            delivered: Mutex::new(0),
        });
        let host_id = Arc::new(Mutex::new(None));
        let w = Worker {
            opts,
            shared: shared.clone(),
            rx,
            handler,
            http: None,
            done: BTreeMap::new(),
            host_id: host_id.clone(),
        };
        let worker = std::thread::Builder::new()
            .name("ward-console-client".into())
            .spawn(move || w.run())
            .map_err(|e| conn_err("spawning the console client thread", e))?;
        Ok(ConsoleClient {
            shared,
            worker: Some(worker),
            host_id,
        })
    }

    /// The heartbeat content, for the agent to keep current.
    pub fn status(&self) -> StatusHandle {
        self.shared.status.clone()
    }

    /// Events spooled and not yet acknowledged by the console.
    pub fn pending(&self) -> usize {
        self.shared.spool.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Events delivered since start.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.lock().map(|d| *d).unwrap_or(0)
    }

    /// The host id once enrolled and connected.
    pub fn host_id(&self) -> Option<String> {
        self.host_id.lock().ok().and_then(|h| h.clone())
    }

    /// Wait until the spool is empty (true) or the timeout passes (false).
    pub fn wait_delivered(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            self.poke();
            if self.pending() == 0 {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn poke(&self) {
        if let Ok(w) = self.shared.wake.lock() {
            let _ = w.send(());
        }
    }

    /// Spool one event (what [`Sink::send`] does).
    pub fn spool(&self, ev: &AgentEvent) -> Result<u64, ConsoleError> {
        track_status(&self.shared.status, ev);
        let seq = self
            .shared
            .spool
            .lock()
            .map_err(|_| ConsoleError::Connection("spool lock poisoned".into()))?
            .append(ev)?;
        self.poke();
        Ok(seq)
    }
}

/// Keep the heartbeat in step with the events the agent emits.
fn track_status(st: &StatusHandle, ev: &AgentEvent) {
    st.update(|h| match ev {
        AgentEvent::Ready(r) => {
            h.version = r.version.clone();
            h.paths = r.paths.iter().map(|p| p.display().to_string()).collect();
            h.sensor = r.sensor.clone();
            h.warnings = r.warnings.clone();
            h.health = if r.warnings.is_empty() {
                "ok"
            } else {
                "degraded"
            }
            .into();
        }
        AgentEvent::Incident(i) if i.action == Action::ClientBlocked => {
            if let Some(c) = &i.client {
                if !h.blocks.iter().any(|b| b.ip == c.ip) {
                    h.blocks.push(Block {
                        ip: c.ip.clone(),
                        incident: i.id.clone(),
                        since: i.contained_at,
                        until: None,
                    });
                }
            }
        }
        AgentEvent::BlockLifted(b) => h.blocks.retain(|x| x.ip != b.ip),
        _ => {}
    });
}

impl Sink for ConsoleClient {
    fn name(&self) -> &str {
        "console"
    }

    fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError> {
        self.spool(ev)
            .map(|_| ())
            .map_err(|e| SinkError::Other(e.to_string()))
    }

    /// Try for up to 3 s to deliver the spool; what remains is kept for the next start.
    fn flush(&mut self) -> Result<(), SinkError> {
        if !self.wait_delivered(Duration::from_secs(3)) {
            tracing::warn!(
                pending = self.pending(),
                "console unreachable: events stay spooled and are sent at the next start"
            );
        }
        Ok(())
    }
}

impl Drop for ConsoleClient {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.poke();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

struct Worker {
    opts: ClientOptions,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<()>,
    handler: Option<ActionHandler>,
    http: Option<ureq::Agent>,
    /// Actions carried out whose confirmation is not yet acknowledged.
    done: BTreeMap<i64, ActionResult>,
    host_id: Arc<Mutex<Option<String>>>,
}

impl Worker {
    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.opts.url.trim_end_matches('/'))
    }

    fn connect(&mut self) -> Result<(), ConsoleError> {
        if self.http.is_some() {
            return Ok(());
        }
        if !ConsoleClient::is_enrolled(&self.opts.state_dir) {
            let token = self.opts.enroll_token.clone().unwrap_or_default();
            ConsoleClient::enroll(
                &self.opts.url,
                &token,
                &self.opts.state_dir,
                &self.opts.name,
            )?;
            tracing::info!("enrolled with the console at {}", self.opts.url);
        }
        self.http = identity_agent(&self.opts.state_dir, self.opts.timeout)?;
        if let Ok(s) = std::fs::read_to_string(cdir(&self.opts.state_dir).join("host.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
                if let Ok(mut h) = self.host_id.lock() {
                    *h = v["host_id"].as_str().map(str::to_string);
                }
            }
        }
        Ok(())
    }

    fn run(mut self) {
        let mut next_hb = Instant::now();
        let mut backoff_until = Instant::now();
        let mut failures: u32 = 0;
        loop {
            let stopping = self.shared.stop.load(Ordering::SeqCst);
            if stopping {
                // what is not delivered stays spooled; `flush` already tried for a while
                return;
            }
            if Instant::now() >= backoff_until {
                match self.cycle(&mut next_hb, stopping) {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        tracing::warn!("console: {e}");
                        if matches!(e, ConsoleError::Connection(_)) {
                            // a fresh TLS session next time (the console may have restarted)
                            self.http = None;
                        }
                        // retry_every, doubling up to 32x, at most a minute
                        let d = self.opts.retry_every * 2u32.pow(failures.min(5));
                        backoff_until = Instant::now() + d.min(Duration::from_secs(60));
                        failures += 1;
                    }
                }
            }
            // sleep until the next heartbeat, or the end of a back-off, or a new event
            let now = Instant::now();
            let until = if backoff_until > now {
                backoff_until
            } else {
                next_hb
            };
            let wait = until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            if self.rx.recv_timeout(wait).is_ok() {
                while self.rx.try_recv().is_ok() {}
                if backoff_until > Instant::now() {
                    // a new event during a back-off waits for its end: never hammer a
                    // console that is down
                    continue;
                }
            }
        }
    }

    fn cycle(&mut self, next_hb: &mut Instant, stopping: bool) -> Result<(), ConsoleError> {
        self.connect()?;
        self.deliver()?;
        self.confirm()?;
        if Instant::now() >= *next_hb && !stopping {
            *next_hb = Instant::now() + self.opts.heartbeat_every;
            self.heartbeat()?;
            self.confirm()?;
        }
        Ok(())
    }

    fn http(&self) -> Result<&ureq::Agent, ConsoleError> {
        self.http
            .as_ref()
            .ok_or_else(|| ConsoleError::Connection("not connected".into()))
    }

    fn deliver(&mut self) -> Result<(), ConsoleError> {
        loop {
            let batch = self
                .shared
                .spool
                .lock()
                .map(|s| s.oldest(MAX_BATCH))
                .unwrap_or_default();
            if batch.is_empty() {
                return Ok(());
            }
            let mut envs = Vec::with_capacity(batch.len());
            let mut size = 2usize;
            let mut taken = Vec::new();
            for (seq, path) in &batch {
                let Ok(body) = std::fs::read(path) else {
                    continue;
                };
                match serde_json::from_slice::<EventEnvelope>(&body) {
                    Ok(env) => {
                        if size + body.len() + 1 > MAX_AGENT_BODY && !envs.is_empty() {
                            break;
                        }
                        size += body.len() + 1;
                        envs.push(env);
                        taken.push(path.clone());
                    }
                    Err(e) => {
                        // a torn or foreign file: set it aside, never block the queue on it
                        tracing::error!("spool entry {seq} unreadable ({e}); moved aside");
                        let _ = std::fs::rename(path, path.with_extension("bad"));
                    }
                }
            }
            if envs.is_empty() {
                continue;
            }
            let url = self.url("/agent/v1/events");
            let r: EventsResponse = http::post_json(self.http()?, &url, &envs, "sending events")?;
            // count first: whoever sees the spool empty also sees the count
            if let Ok(mut d) = self.shared.delivered.lock() {
                *d += r.accepted as u64;
            }
            for p in &taken {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    fn heartbeat(&mut self) -> Result<(), ConsoleError> {
        let hb = self.shared.status.get();
        let url = self.url("/agent/v1/heartbeat");
        let r: HeartbeatResponse = http::post_json(self.http()?, &url, &hb, "heartbeat")?;
        for a in r.actions {
            if self.done.contains_key(&a.id) {
                continue;
            }
            let res = match self.handler.as_mut() {
                Some(h) => h(&a.kind),
                None => Err("this agent has no action handler".into()),
            };
            if res.is_ok() {
                match &a.kind {
                    ActionKind::Isolate => self.shared.status.update(|h| h.isolated = true),
                    ActionKind::Release => self.shared.status.update(|h| h.isolated = false),
                    ActionKind::LiftBlock { ip } => {
                        let ip = ip.clone();
                        self.shared
                            .status
                            .update(|h| h.blocks.retain(|b| b.ip != ip))
                    }
                    _ => {}
                }
            }
            let (ok, message) = match res {
                Ok(m) => (true, m),
                Err(m) => (false, m),
            };
            tracing::info!(
                id = a.id,
                action = a.kind.name(),
                ok,
                "console action carried out"
            );
            self.done.insert(a.id, ActionResult { ok, message });
        }
        Ok(())
    }

    fn confirm(&mut self) -> Result<(), ConsoleError> {
        let ids: Vec<i64> = self.done.keys().copied().collect();
        for id in ids {
            let Some(res) = self.done.get(&id).cloned() else {
                continue;
            };
            let url = self.url(&format!("/agent/v1/actions/{id}"));
            let (code, text) = http::post_raw(self.http()?, &url, &res, "confirming an action")?;
            // 404: the console no longer waits for it (confirmed before, or gone)
            if (200..300).contains(&code) || code == 404 {
                self.done.remove(&id);
            } else {
                return Err(ConsoleError::Connection(format!(
                    "confirming action {id}: HTTP {code}: {text}"
                )));
            }
        }
        Ok(())
    }
}
