//! # ward-console
//!
//! The fleet server the security team watches, and the agent's side of talking to it.
//!
//! **Owns**: the console's certificate authority ([`init`]), one-time enrollment tokens
//! ([`enroll_token`]), the HTTPS server ([`serve`], [`start`]) with its JSON API
//! (`/api/v1/...`), the agent protocol (`/enroll/v1`, `/agent/v1/...`, mutual TLS), the web
//! UI at `/` (server-rendered HTML, assets embedded, no CDN, works offline), storage
//! (SQLite in the state directory by default, PostgreSQL with `database_url`; one
//! data-access layer with migrations), access control (argon2 password hashes, roles
//! viewer/operator/admin, API tokens, sessions with CSRF tokens, audit log), and the agent's
//! [`ConsoleClient`] sink with its durable on-disk spool.
//!
//! **Must never**: serve plain HTTP (TLS is always on, so the rule "no non-loopback listen
//! address without TLS" holds for every address); splice a value into SQL text (every value
//! is bound); render anything an agent or user controls without HTML-escaping it (file
//! names come from attackers); trust an agent message for another host than the one its
//! client certificate names; make the agent wait on the network ([`ConsoleClient::send`]
//! only appends to the spool); panic on bad input.
//!
//! ```no_run
//! let out = ward_console::init(std::path::Path::new("/var/lib/ward-console")).unwrap();
//! println!("{}", serde_json::json!({"admin_token": out.admin_token, "ca_cert": out.ca_cert}));
//! let token = ward_console::enroll_token(std::path::Path::new("/var/lib/ward-console")).unwrap();
//! println!("{token}");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod client;
mod db;
mod http;
mod pki;
pub mod protocol;
mod server;
mod store;
mod ui;
pub mod webdriver;

pub use client::{enroll_request, ActionHandler, ClientOptions, ConsoleClient, StatusHandle};
pub use pki::fingerprint;
pub use server::{serve, start, RunningConsole, ServeOptions};

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the console or its client, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A file of the state directory could not be read or written.
    #[error("{path}: {source} (check the --state-dir path and its permissions)")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state directory is not initialised, or already is.
    #[error("{0}")]
    State(String),
    /// Certificate or key handling failed.
    #[error("certificates: {0}")]
    Pki(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(String),
    /// The enrollment token is malformed, unknown, expired or already used.
    #[error("enrollment token: {0}")]
    Token(String),
    /// The server could not start (address in use, TLS setup).
    #[error("server: {0}")]
    Server(String),
    /// Talking to the console failed (network, TLS, HTTP status).
    #[error("console connection: {0}")]
    Connection(String),
    /// The agent's spool could not be used.
    #[error("spool {path}: {message} (check the agent's state directory)")]
    Spool {
        /// The spool directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// What [`init`] returns; the binary prints it once as
/// `{"admin_token":STR,"ca_cert":PATH}`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InitOutput {
    /// The first admin account's API token (user `admin`); shown only this once.
    pub admin_token: String,
    /// The console CA certificate (give it to browsers and scripts that talk to the API).
    pub ca_cert: PathBuf,
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> ConsoleError {
    ConsoleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn read_state_file(dir: &Path, name: &str) -> Result<String, ConsoleError> {
    let p = dir.join(name);
    std::fs::read_to_string(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ConsoleError::State(format!(
                "{} is missing: run `ward console init --state-dir {}` first",
                p.display(),
                dir.display()
            ))
        } else {
            io_err(&p, e)
        }
    })
}

/// Write a file atomically (temp file + rename) with the given mode.
pub(crate) fn write_private(path: &Path, data: &[u8], mode: u32) -> Result<(), ConsoleError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    f.write_all(data).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Names the server certificate is valid for by default: `localhost`, the loopback
/// addresses and this machine's hostname.
pub fn default_server_names() -> Vec<String> {
    let mut v = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() && h != "localhost" {
            v.push(h.to_string());
        }
    }
    v
}

/// Initialise a console state directory: CA, server certificate for
/// [`default_server_names`], and the first admin account (`admin`) with a new API token.
/// Refuses a directory that is already initialised (the token is shown only once).
pub fn init(state_dir: &Path) -> Result<InitOutput, ConsoleError> {
    init_with_names(state_dir, &default_server_names())
}

/// [`init`] with the server certificate's names given (DNS names or IP addresses the
/// agents and browsers use to reach the console).
pub fn init_with_names(state_dir: &Path, names: &[String]) -> Result<InitOutput, ConsoleError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|e| io_err(state_dir, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(state_dir, e))?;
    }
    let ca_path = state_dir.join(pki::CA_CERT);
    if ca_path.exists() {
        return Err(ConsoleError::State(format!(
            "{} is already initialised (its CA exists); use it with `ward console serve`, or \
             choose an empty --state-dir",
            state_dir.display()
        )));
    }
    let ca = pki::Ca::generate()?;
    let (srv_pem, srv_key) = ca.issue_server(names)?;
    write_private(&state_dir.join(pki::CA_KEY), ca.key_pem().as_bytes(), 0o600)?;
    write_private(&state_dir.join(pki::SERVER_KEY), srv_key.as_bytes(), 0o600)?;
    write_private(&state_dir.join(pki::SERVER_CERT), srv_pem.as_bytes(), 0o644)?;
    let admin_token = format!("wct_{}", random_hex(24));
    let boot = serde_json::json!({ "admin_user": "admin", "admin_token_sha256": sha256_hex(&admin_token) });
    write_private(
        &state_dir.join(store::BOOTSTRAP),
        boot.to_string().as_bytes(),
        0o600,
    )?;
    // the CA last: its presence marks the directory as initialised
    write_private(&ca_path, ca.pem.as_bytes(), 0o644)?;
    Ok(InitOutput {
        admin_token,
        ca_cert: ca_path,
    })
}

/// The console CA's SHA-256 fingerprint (hex), from the state directory.
pub fn ca_fingerprint(state_dir: &Path) -> Result<String, ConsoleError> {
    let pem = read_state_file(state_dir, pki::CA_CERT)?;
    let certs = pki::certs_from_pem(&pem)?;
    Ok(pki::fingerprint(&certs[0]))
}

/// How long an enrollment token stays valid.
pub const ENROLL_TOKEN_TTL_HOURS: i64 = 24;

/// Make a one-time enrollment token, valid for [`ENROLL_TOKEN_TTL_HOURS`]:
/// `ward1.<id>.<secret>.<sha256 of the console CA>`. Like kubeadm's join token it carries
/// what the agent needs to trust the console before it sends the secret. The console keeps
/// only the secret's hash (`enroll/<id>.json` in the state directory), so this works with
/// either database backend and while the console runs.
pub fn enroll_token(state_dir: &Path) -> Result<String, ConsoleError> {
    let fp = ca_fingerprint(state_dir)?;
    let dir = state_dir.join(store::ENROLL_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let id = random_hex(6);
    let secret = random_hex(16);
    let rec = serde_json::json!({
        "secret_sha256": sha256_hex(&secret),
        "expires_at": chrono::Utc::now().timestamp_millis() + ENROLL_TOKEN_TTL_HOURS * 3_600_000,
    });
    write_private(
        &dir.join(format!("{id}.json")),
        rec.to_string().as_bytes(),
        0o600,
    )?;
    Ok(format!("ward1.{id}.{secret}.{fp}"))
}

/// The parts of an enrollment token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedToken {
    pub id: String,
    pub secret: String,
    pub ca_fp: String,
}

/// Check the form of an enrollment token (for configuration validation); says what is
/// wrong without contacting any console.
pub fn check_enroll_token(t: &str) -> Result<(), ConsoleError> {
    parse_token(t).map(|_| ())
}

pub(crate) fn parse_token(t: &str) -> Result<ParsedToken, ConsoleError> {
    let parts: Vec<&str> = t.trim().split('.').collect();
    let hexok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.len() != 4
        || parts[0] != "ward1"
        || !hexok(parts[1], 12)
        || !hexok(parts[2], 32)
        || !hexok(parts[3], 64)
    {
        return Err(ConsoleError::Token(
            "malformed (expected ward1.<id>.<secret>.<ca-sha256> as printed by `ward console enroll-token`)"
                .into(),
        ));
    }
    Ok(ParsedToken {
        id: parts[1].to_ascii_lowercase(),
        secret: parts[2].to_ascii_lowercase(),
        ca_fp: parts[3].to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_ca_fingerprint_and_parse_strictly() {
        let d = tempfile::tempdir().unwrap();
        let out = init(d.path()).unwrap();
        assert!(out.admin_token.starts_with("wct_"));
        assert!(init(d.path())
            .unwrap_err()
            .to_string()
            .contains("already initialised"));
        let t = enroll_token(d.path()).unwrap();
        let p = parse_token(&t).unwrap();
        assert_eq!(p.ca_fp, ca_fingerprint(d.path()).unwrap());
        assert!(check_enroll_token(&t).is_ok());
        for bad in [
            "",
            "ward1",
            "ward2.aaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.x",
            &t[..t.len() - 1],
        ] {
            assert!(check_enroll_token(bad).is_err(), "{bad}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(d.path()), 0o700);
        assert_eq!(mode(&d.path().join("ca-key.pem")), 0o600);
        assert_eq!(mode(&d.path().join("server-key.pem")), 0o600);
        // the token file holds only a hash of the secret
        let rec = std::fs::read_to_string(d.path().join("enroll").join(format!("{}.json", p.id)))
            .unwrap();
        assert!(!rec.contains(&p.secret));
        store::consume_token(d.path(), &t).unwrap();
        assert!(store::consume_token(d.path(), &t)
            .unwrap_err()
            .to_string()
            .contains("already used"));
    }

    #[test]
    fn a_missing_state_dir_says_to_run_init() {
        let d = tempfile::tempdir().unwrap();
        let e = enroll_token(&d.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ward console init"), "{e}");
    }
}
