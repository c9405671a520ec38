//! Test harness: a console on loopback (SQLite or a throw-away PostgreSQL cluster), agents
//! enrolled with real tokens, an HTTPS API client that trusts the console's CA.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward_console::protocol::ActionKind;
use ward_console::{ClientOptions, ConsoleClient, RunningConsole, ServeOptions};
use ward_model::*;

/// A PostgreSQL cluster in a temp dir on 127.0.0.1, stopped on drop (also on failure).
pub struct Pg {
    _dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
    as_user: Option<String>,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    for d in dirs.iter().rev() {
        if d.join(name).exists() {
            return d.join(name);
        }
    }
    panic!("PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin: run scripts/setup-console.sh (as root)");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_pg(as_user: &Option<String>, bin: &str, args: &[&str]) {
    let b = pg_bin(bin);
    let out = match as_user {
        Some(u) => Command::new("runuser")
            .args(["-u", u, "--"])
            .arg(&b)
            .args(args)
            .output(),
        None => Command::new(&b).args(args).output(),
    }
    .unwrap_or_else(|e| panic!("running {}: {e}", b.display()));
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pg {
    pub fn start() -> Pg {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let root = unsafe_free_is_root();
        let as_user = if root {
            let uid = Command::new("id")
                .args(["-u", "ward-pgtest"])
                .output()
                .unwrap();
            assert!(
                uid.status.success(),
                "user ward-pgtest missing: run scripts/setup-console.sh"
            );
            let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&data, Some(uid), Some(uid)).unwrap();
            Some("ward-pgtest".to_string())
        } else {
            None
        };
        let d = data.to_str().unwrap();
        run_pg(
            &as_user,
            "initdb",
            &[
                "-D",
                d,
                "-A",
                "trust",
                "-U",
                "ward",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let port = free_port();
        let opts = format!("-h 127.0.0.1 -p {port} -k {d} -c fsync=off -c max_connections=50");
        let log = format!("{d}/log");
        run_pg(
            &as_user,
            "pg_ctl",
            &["-D", d, "-o", &opts, "-l", &log, "-w", "-t", "30", "start"],
        );
        Pg {
            _dir: dir,
            data,
            port,
            as_user,
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://ward@127.0.0.1:{}/postgres", self.port)
    }
}

fn unsafe_free_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Drop for Pg {
    fn drop(&mut self) {
        let d = self.data.to_str().unwrap().to_string();
        let b = pg_bin("pg_ctl");
        let _ = match &self.as_user {
            Some(u) => Command::new("runuser")
                .args(["-u", u, "--"])
                .arg(&b)
                .args(["-D", &d, "-m", "immediate", "-w", "stop"])
                .output(),
            None => Command::new(&b)
                .args(["-D", &d, "-m", "immediate", "-w", "stop"])
                .output(),
        };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A console with its state dir and (for PostgreSQL) its cluster.
pub struct Console {
    pub server: Option<RunningConsole>,
    pub dir: tempfile::TempDir,
    pub admin_token: String,
    pub pg: Option<Pg>,
    pub opts: ServeOptions,
}

impl Console {
    pub fn start(backend: Backend) -> Console {
        Self::start_with(backend, Duration::from_secs(60))
    }

    pub fn start_with(backend: Backend, silent_after: Duration) -> Console {
        let dir = tempfile::tempdir().unwrap();
        let out = ward_console::init(dir.path()).unwrap();
        let pg = (backend == Backend::Postgres).then(Pg::start);
        let mut opts = ServeOptions::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        opts.database_url = pg.as_ref().map(|p| p.url());
        opts.silent_after = silent_after;
        let server = ward_console::start(opts.clone()).unwrap();
        // keep the port for restarts
        opts.listen = server.addr();
        Console {
            server: Some(server),
            dir,
            admin_token: out.admin_token,
            pg,
            opts,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.opts.listen)
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.server = Some(ward_console::start(self.opts.clone()).unwrap());
    }

    pub fn api(&self, token: &str) -> Api {
        Api::new(&self.url(), self.dir.path(), token)
    }

    pub fn admin(&self) -> Api {
        self.api(&self.admin_token)
    }

    pub fn token(&self) -> String {
        ward_console::enroll_token(self.dir.path()).unwrap()
    }

    /// Enroll and start an agent that answers actions with `handler`.
    pub fn agent(
        &self,
        state: &Path,
        name: &str,
        handler: Option<ward_console::ActionHandler>,
    ) -> ConsoleClient {
        let mut o = ClientOptions::new(self.url(), state);
        o.enroll_token = Some(self.token());
        o.name = name.to_string();
        o.heartbeat_every = Duration::from_millis(100);
        o.retry_every = Duration::from_millis(100);
        ConsoleClient::start(o, handler).unwrap()
    }
}

/// An HTTPS client trusting `ca_pem`, optionally with a client identity (cert, key PEM).
pub fn tls_agent(ca_pem: &str, identity: Option<(&str, &str)>) -> ureq::Agent {
    use ureq::tls::{ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let certs = |pem: &str| -> Vec<ureq::tls::Certificate<'static>> {
        ureq::tls::parse_pem(pem.as_bytes())
            .filter_map(|i| match i.unwrap() {
                PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect()
    };
    let mut tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::new_with_certs(&certs(ca_pem)));
    if let Some((cert, key)) = identity {
        tls = tls.client_cert(Some(ClientCert::new_with_certs(
            &certs(cert),
            PrivateKey::from_pem(key.as_bytes()).unwrap(),
        )));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

pub fn ca_agent(state_dir: &Path) -> ureq::Agent {
    tls_agent(
        &std::fs::read_to_string(state_dir.join("ca.pem")).unwrap(),
        None,
    )
}

/// Status, headers and body of an answer; Err for a transport failure.
pub fn read(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, ureq::http::HeaderMap, String), String> {
    let mut r = r.map_err(|e| e.to_string())?;
    let code = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((code, headers, body))
}

/// The JSON API as a script would use it.
pub struct Api {
    pub http: ureq::Agent,
    pub base: String,
    pub token: String,
}

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let (code, _, s) = read(r).unwrap_or_else(|e| panic!("request failed: {e}"));
    (code, serde_json::from_str(&s).unwrap_or(Value::String(s)))
}

impl Api {
    pub fn new(base: &str, console_dir: &Path, token: &str) -> Api {
        Api {
            http: ca_agent(console_dir),
            base: base.to_string(),
            token: token.to_string(),
        }
    }
    pub fn get(&self, path: &str) -> (u16, Value) {
        answer(
            self.http
                .get(&format!("{}{path}", self.base))
                .header("Authorization", &format!("Bearer {}", self.token))
                .call(),
        )
    }
    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        answer(
            self.http
                .post(&format!("{}{path}", self.base))
                .header("Authorization", &format!("Bearer {}", self.token))
                .send_json(body),
        )
    }
    pub fn ok(&self, path: &str) -> Value {
        let (c, v) = self.get(path);
        assert_eq!(c, 200, "GET {path}: {v}");
        v
    }
    /// Make a user with a password and return an API token for it.
    pub fn user(&self, name: &str, role: &str, password: &str) -> String {
        let (c, v) = self.post(
            "/api/v1/users",
            serde_json::json!({"name": name, "role": role, "password": password}),
        );
        assert_eq!(c, 200, "{v}");
        let (c, v) = self.post("/api/v1/tokens", serde_json::json!({"user": name}));
        assert_eq!(c, 200, "{v}");
        v["token"].as_str().unwrap().to_string()
    }
    pub fn host_status(&self, name: &str) -> Option<String> {
        let hosts = self.ok("/api/v1/hosts");
        hosts
            .as_array()?
            .iter()
            .find(|h| h["name"] == name)
            .map(|h| h["status"].as_str().unwrap_or("").to_string())
    }
    pub fn host_id(&self, name: &str) -> String {
        let hosts = self.ok("/api/v1/hosts");
        hosts
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .map(|h| h["id"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("host {name} not listed: {hosts}"))
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}

pub fn ready() -> AgentEvent {
    AgentEvent::Ready(Ready {
        version: "0.1.0".into(),
        pid: 4242,
        paths: vec!["/srv/samba/shares".into(), "/var/lib/pacs".into()],
        state_dir: "/var/lib/ward".into(),
        filesystems: vec!["ext4".into()],
        protections: Protections::default(),
        vaults: vec![],
        sensor: "fanotify".into(),
        warnings: vec![],
    })
}

pub fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

pub fn incident(id: &str, client: Option<Client>, damaged: Vec<String>) -> Incident {
    Incident {
        id: id.into(),
        pid: 31337,
        exe: "/tmp/.x/wcry".into(),
        cmdline: vec!["wcry".into(), "--encrypt".into()],
        action: if client.is_some() {
            Action::ClientBlocked
        } else {
            Action::Killed
        },
        client,
        started_at: t("2026-12-01T10:00:00.000Z"),
        detected_at: t("2026-12-01T10:00:00.004Z"),
        contained_at: t("2026-12-01T10:00:00.006Z"),
        files_damaged: damaged.len(),
        indicators: vec!["content-encrypted".into(), "rename-extension".into()],
        uid: 1000,
        created: vec!["/srv/samba/shares/README_DECRYPT.txt".into()],
        damaged,
        processes: vec![31337, 31338],
        contain_ms: 6.0,
        freeze_ms: 0.2,
        restore: RestoreStatus::Pending,
    }
}

pub fn restored(id: &str, n: usize, lost: usize) -> AgentEvent {
    AgentEvent::Restored(Restored {
        id: id.into(),
        files_restored: n,
        files_lost: lost,
        files_quarantined: 1,
        conflicts: vec![],
        already_ok: 0,
    })
}

/// An action handler that records what it was asked and answers ok.
pub fn recording_handler() -> (
    ward_console::ActionHandler,
    std::sync::mpsc::Receiver<ActionKind>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let h: ward_console::ActionHandler = Box::new(move |k: &ActionKind| {
        let _ = tx.send(k.clone());
        Ok(format!("{} done", k.name()))
    });
    (h, rx)
}
