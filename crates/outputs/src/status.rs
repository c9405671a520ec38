//! `ward status`: the running agent answers one JSON snapshot on a unix socket (mode
//! 0600, so only root can ask), and [`status_client`] fetches it.
//!
//! Protocol: connect, read one JSON document (terminated by a newline and EOF). Nothing
//! is sent by the client.

use crate::metrics::{Metrics, MetricsSnapshot};
use serde::Serialize;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use ward_model::Block;

/// How long the client waits for the agent's answer.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the status socket could not be served or asked.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No socket at the path.
    #[error(
        "is ward protect running? socket {0} not found (start ward protect, or pass the same \
         --state-dir it uses)"
    )]
    NotRunning(PathBuf),
    /// A socket file, but nobody listening.
    #[error(
        "ward protect is not running: socket {0} exists but nobody answers (a crashed agent \
         leaves it behind; it is replaced when ward protect starts)"
    )]
    Stale(PathBuf),
    /// Not allowed to connect.
    #[error("permission denied on {0}: run ward status as root")]
    Permission(PathBuf),
    /// Connected, but no (valid) answer in time.
    #[error(
        "ward protect did not answer on {path} within {secs} s ({why}); it may be overloaded \
         or stopped"
    )]
    NoAnswer {
        /// The socket.
        path: PathBuf,
        /// The timeout.
        secs: u64,
        /// What went wrong.
        why: String,
    },
    /// Another agent already answers on the path.
    #[error(
        "another ward protect already answers on {0}: stop it first, or give this one another \
         state directory"
    )]
    InUse(PathBuf),
    /// Something else at the path, or the socket could not be made.
    #[error("cannot serve status on {path}: {why}")]
    Serve {
        /// The socket.
        path: PathBuf,
        /// What went wrong, with what to do.
        why: String,
    },
}

/// What `ward status` shows. Build it in the snapshot closure given to
/// [`StatusServer::start`] (it runs on the status thread: keep it cheap, e.g. clone
/// paths and read the metrics).
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    /// ward's version.
    pub version: String,
    /// ward's pid.
    pub pid: u32,
    /// Seconds since the agent started.
    pub uptime_secs: u64,
    /// The protected directories.
    pub protected_paths: Vec<PathBuf>,
    /// The sensor in use.
    pub sensor: String,
    /// SMB client blocks in force.
    pub blocks: Vec<Block>,
    /// Degraded protections, in words.
    pub warnings: Vec<String>,
    /// Every metric.
    pub metrics: MetricsSnapshot,
}

impl StatusSnapshot {
    /// A snapshot of `metrics` (version, pid, uptime and sensor from them); fill in the
    /// paths, blocks and warnings.
    pub fn new(metrics: &Metrics) -> StatusSnapshot {
        let m = metrics.snapshot();
        StatusSnapshot {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            uptime_secs: m.uptime_secs,
            protected_paths: Vec::new(),
            sensor: m.sensor.clone(),
            blocks: Vec::new(),
            warnings: Vec::new(),
            metrics: m,
        }
    }
}

/// The status socket; removed when dropped.
pub struct StatusServer {
    path: PathBuf,
    ino: u64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Serve `snapshot()` on a unix socket at `path` (mode 0600). A stale socket left by a
    /// crashed agent is replaced; a live one (another agent) is an error, and so is a
    /// non-socket file at the path.
    pub fn start<F, T>(path: impl AsRef<Path>, snapshot: F) -> Result<StatusServer, StatusError>
    where
        F: Fn() -> T + Send + 'static,
        T: Serialize,
    {
        let path = path.as_ref().to_path_buf();
        let serve_err = |why: String| StatusError::Serve {
            path: path.clone(),
            why,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(&path).is_ok() {
                    return Err(StatusError::InUse(path));
                }
                std::fs::remove_file(&path)
                    .map_err(|e| serve_err(format!("cannot remove the stale socket: {e}")))?;
            }
            Ok(_) => {
                return Err(serve_err(
                    "a file that is not a socket is in the way; move it".into(),
                ))
            }
            Err(_) => {}
        }
        // Bind under a temporary name, restrict it, then rename: the socket is never
        // reachable with looser permissions.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp).map_err(|e| {
            serve_err(format!(
                "{e} (the directory must exist and the path be shorter than 108 bytes)"
            ))
        })?;
        let setup = || -> std::io::Result<u64> {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&tmp, &path)?;
            Ok(std::fs::symlink_metadata(&path)?.ino())
        };
        let ino = setup().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            serve_err(e.to_string())
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| serve_err(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ward-status".into())
            .spawn(move || {
                // Non-blocking accept polled every 100 ms, so stopping never depends on
                // the socket path still existing.
                while !st.load(Ordering::Acquire) {
                    let mut conn = match listener.accept() {
                        Ok((c, _)) => c,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    };
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
                    let mut doc = serde_json::to_vec(&snapshot()).unwrap_or_else(|e| {
                        format!("{{\"error\":\"cannot serialise the status: {e}\"}}").into_bytes()
                    });
                    doc.push(b'\n');
                    let _ = conn.write_all(&doc);
                }
            })
            .map_err(|e| serve_err(format!("cannot start the status thread: {e}")))?;
        Ok(StatusServer {
            path,
            ino,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Remove the socket only if it is still ours.
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Ask the running agent for its status (what `ward status` prints).
pub fn status_client(path: impl AsRef<Path>) -> Result<Value, StatusError> {
    let path = path.as_ref().to_path_buf();
    let conn = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StatusError::NotRunning(path.clone()),
        std::io::ErrorKind::ConnectionRefused => StatusError::Stale(path.clone()),
        std::io::ErrorKind::PermissionDenied => StatusError::Permission(path.clone()),
        _ => StatusError::NoAnswer {
            path: path.clone(),
            secs: 0,
            why: e.to_string(),
        },
    })?;
    let no_answer = |why: String| StatusError::NoAnswer {
        path: path.clone(),
        secs: STATUS_TIMEOUT.as_secs(),
        why,
    };
    conn.set_read_timeout(Some(STATUS_TIMEOUT))
        .map_err(|e| no_answer(e.to_string()))?;
    let mut buf = Vec::new();
    conn.take(64 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| no_answer(e.to_string()))?;
    serde_json::from_slice(&buf).map_err(|e| no_answer(format!("not a status document: {e}")))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn human_secs(s: u64) -> String {
    let (d, h, m) = (s / 86400, s / 3600 % 24, s / 60 % 60);
    match (d, h) {
        (0, 0) => format!("{m}m {}s", s % 60),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

fn human_latency(v: &Value) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(s) if s < 0.001 => format!("{:.0} µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1e3),
        Some(s) => format!("{s:.1} s"),
    }
}

/// The status document as text for a person (what `ward status` prints without `--json`).
/// Unknown or missing fields are skipped, so an older or newer agent still prints.
pub fn format_status(v: &Value) -> String {
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let m = &v["metrics"];
    let mut o = String::new();
    o.push_str(&format!(
        "ward {} (pid {}), up {}, sensor {}{}\n",
        s(&v["version"]),
        u(&v["pid"]),
        human_secs(u(&v["uptime_secs"])),
        if s(&v["sensor"]).is_empty() {
            "unknown".into()
        } else {
            s(&v["sensor"])
        },
        if m["up"] == Value::Bool(false) {
            " (stopping)"
        } else {
            ""
        },
    ));
    let paths: Vec<String> = v["protected_paths"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    o.push_str(&format!(
        "protecting: {}\n",
        if paths.is_empty() {
            "-".into()
        } else {
            paths.join(", ")
        }
    ));
    for w in v["warnings"].as_array().into_iter().flatten() {
        o.push_str(&format!("warning: {}\n", s(w)));
    }
    o.push_str(&format!("incidents: {}\n", u(&m["incidents"])));
    let blocks = v["blocks"].as_array().cloned().unwrap_or_default();
    o.push_str(&format!("client blocks in force: {}\n", blocks.len()));
    for b in &blocks {
        let until = b["until"]
            .as_str()
            .map_or("until ward unblock".to_string(), |t| format!("until {t}"));
        o.push_str(&format!(
            "  {} since {} ({}), incident {}\n",
            s(&b["ip"]),
            s(&b["since"]),
            until,
            s(&b["incident"])
        ));
    }
    o.push_str(&format!(
        "permission events: {} allowed, {} denied; answered within {} (p50), {} (p99)\n",
        u(&m["perm_allowed"]),
        u(&m["perm_denied"]),
        human_latency(&m["perm_answer_p50_seconds"]),
        human_latency(&m["perm_answer_p99_seconds"]),
    ));
    if let Some(ev) = m["events"].as_object() {
        let parts: Vec<String> = ev.iter().map(|(k, n)| format!("{k} {}", u(n))).collect();
        o.push_str(&format!("sensor events: {}\n", parts.join(", ")));
    }
    o.push_str(&format!(
        "queue: depth {}, overflows {}, events lost {}\n",
        u(&m["queue_depth"]),
        u(&m["queue_overflows"]),
        u(&m["events_lost"])
    ));
    o.push_str(&format!(
        "vault: {} in {} files, {} evicted\n",
        human_bytes(u(&m["vault_bytes"])),
        u(&m["vault_files"]),
        u(&m["vault_evictions"])
    ));
    if let Some(outs) = m["outputs"].as_object() {
        let parts: Vec<String> = outs
            .iter()
            .map(|(k, c)| {
                format!(
                    "{k} {} delivered / {} failed",
                    u(&c["delivered"]),
                    u(&c["failed"])
                )
            })
            .collect();
        o.push_str(&format!(
            "outputs: {}; {} dropped\n",
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join(", ")
            },
            u(&m["output_dropped"])
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PermAnswer;
    use std::sync::Mutex;

    #[test]
    fn snapshot_over_the_socket_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("status.sock");
        let metrics = Arc::new(Metrics::new());
        metrics.set_sensor("fanotify");
        metrics.perm_answer(PermAnswer::Allow, Duration::from_micros(30));
        let blocks = Arc::new(Mutex::new(Vec::<Block>::new()));
        let (m, b) = (metrics.clone(), blocks.clone());
        let srv = StatusServer::start(&sock, move || {
            let mut s = StatusSnapshot::new(&m);
            s.protected_paths = vec!["/srv/share".into()];
            s.blocks = b.lock().unwrap().clone();
            s
        })
        .unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v = status_client(&sock).unwrap();
        assert_eq!(v["sensor"], "fanotify");
        assert_eq!(v["protected_paths"][0], "/srv/share");
        assert_eq!(v["metrics"]["perm_allowed"], 1);
        assert_eq!(v["pid"], std::process::id());
        // Live values: a block put in place now shows in the next answer.
        blocks.lock().unwrap().push(Block {
            ip: "10.0.0.5".into(),
            incident: "x-1".into(),
            since: chrono::Utc::now(),
            until: None,
        });
        metrics.incident();
        let v = status_client(&sock).unwrap();
        assert_eq!(v["blocks"][0]["ip"], "10.0.0.5");
        let text = format_status(&v);
        assert!(text.contains("protecting: /srv/share"), "{text}");
        assert!(text.contains("10.0.0.5 since"), "{text}");
        assert!(text.contains("incidents: 1"), "{text}");
        assert!(text.contains("sensor fanotify"), "{text}");
        assert!(text.contains("(p50)"), "{text}");
        // A second agent on the same socket is refused.
        let e = StatusServer::start(&sock, || 1).err().unwrap();
        assert!(matches!(e, StatusError::InUse(_)), "{e}");
        drop(srv);
        assert!(!sock.exists(), "socket not removed");
        let e = status_client(&sock).unwrap_err();
        assert!(e.to_string().contains("is ward protect running?"), "{e}");
    }

    #[test]
    fn stale_sockets_are_reported_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        drop(UnixListener::bind(&sock).unwrap()); // a crashed agent's leftover
        let e = status_client(&sock).unwrap_err();
        assert!(matches!(e, StatusError::Stale(_)), "{e}");
        let _srv = StatusServer::start(&sock, || serde_json::json!({"ok": true})).unwrap();
        assert_eq!(status_client(&sock).unwrap()["ok"], true);
        // A regular file in the way is not deleted.
        let file = dir.path().join("plain");
        std::fs::write(&file, "keep me").unwrap();
        let e = StatusServer::start(&file, || 0).err().unwrap();
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[test]
    fn a_silent_agent_times_out_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("silent.sock");
        let l = UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (c, _) = l.accept().unwrap();
            std::thread::sleep(STATUS_TIMEOUT + Duration::from_millis(500));
            drop(c);
        });
        let e = status_client(&sock).unwrap_err();
        assert!(e.to_string().contains("did not answer"), "{e}");
        t.join().unwrap();
    }
}
