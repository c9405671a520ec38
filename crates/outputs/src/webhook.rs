//! Webhook: every event is POSTed as JSON to a URL, through a durable on-disk spool.
//!
//! * [`Sink::send`] only appends the event to the spool directory (write, `fsync`, atomic
//!   rename, directory `fsync`) and wakes the delivery thread: it never waits for the
//!   network.
//! * The delivery thread POSTs spooled events strictly in order, one at a time, and removes
//!   an event from the spool only after a 2xx answer. Anything else (refused, timeout,
//!   3xx/4xx/5xx) is retried with backoff from 250 ms doubling to `max_backoff_secs`.
//! * Every request carries `X-Ward-Event-Id` (stable across retries and restarts: it is
//!   stored in the spool) and `X-Ward-Event-Type`. Delivery is at-least-once: if ward dies
//!   between the receiver's 2xx and the removal of the spool file, that one event is sent
//!   again with the same id, so a receiver that deduplicates on the id sees every event
//!   exactly once.
//! * A new sink on the same spool directory (agent restart) resumes where the last one
//!   stopped; a lock file keeps two agents off one spool.
//! * The spool is bounded (`max_spool_events`, `max_spool_mib`): when full, new events are
//!   refused with an error that says so (logged by the runner, counted as failed).

use crate::config::Format;
use crate::ecs::EcsContext;
use crate::stamp::Stamped;
use crate::{Sink, SinkError};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ward_model::AgentEvent;

fn d_timeout() -> u64 {
    5
}
fn d_backoff() -> u64 {
    60
}
fn d_mib() -> u64 {
    64
}
fn d_events() -> usize {
    10_000
}

/// `[[outputs]] type = "webhook"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://host:port/path` (`https://` needs ward built with the `https` feature).
    pub url: String,
    /// `native` (default) or `ecs`: the JSON body.
    #[serde(default)]
    pub format: Format,
    /// Spool directory (mode 0700). Default: `<state_dir>/spool/webhook` (one per URL is
    /// the caller's business: give each webhook its own).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Extra request headers, e.g. `{ Authorization = "Bearer ..." }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whole-request timeout in seconds (default 5).
    #[serde(default = "d_timeout")]
    pub timeout_secs: u64,
    /// Longest wait between retries in seconds (default 60).
    #[serde(default = "d_backoff")]
    pub max_backoff_secs: u64,
    /// Spool size bound in MiB (default 64).
    #[serde(default = "d_mib")]
    pub max_spool_mib: u64,
    /// Spool bound in events (default 10000).
    #[serde(default = "d_events")]
    pub max_spool_events: usize,
    /// HTTP proxy URL (default none: environment proxies are ignored).
    #[serde(default)]
    pub proxy: Option<String>,
}

struct Entry {
    seq: u64,
    size: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Entry>,
    bytes: u64,
    next_seq: u64,
    stop: bool,
    retry_now: bool,
    delivered: u64,
    failures: u64,
    last_error: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The webhook sink (see the module docs).
pub struct WebhookSink {
    dir: PathBuf,
    url: String,
    format: Format,
    ctx: EcsContext,
    max_bytes: u64,
    max_events: usize,
    flush_timeout: Duration,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    _lock: File,
}

fn entry_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.event"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Spool file: `ID\nTYPE\nBODY`.
fn read_entry(dir: &Path, seq: u64) -> std::io::Result<(String, String, Vec<u8>)> {
    let data = std::fs::read(entry_path(dir, seq))?;
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed spool entry");
    let id = String::from_utf8(parts.next().ok_or_else(bad)?.to_vec()).map_err(|_| bad())?;
    let ty = String::from_utf8(parts.next().ok_or_else(bad)?.to_vec()).map_err(|_| bad())?;
    let body = parts.next().ok_or_else(bad)?.to_vec();
    Ok((id, ty, body))
}

impl WebhookSink {
    /// Open (or create) the spool, resume what it holds and start the delivery thread.
    pub fn new(cfg: &WebhookConfig, ctx: EcsContext) -> Result<WebhookSink, SinkError> {
        let bad = |m: String| Err(SinkError::Config(m));
        let url = cfg.url.trim();
        if url.starts_with("https://") {
            if !cfg!(feature = "https") {
                return bad(format!(
                    "webhook url `{url}`: this ward was built without https support; use an \
                     http:// receiver (e.g. a local relay) or build ward-outputs with the \
                     `https` feature"
                ));
            }
        } else if !url.starts_with("http://") {
            return bad(format!(
                "webhook url `{url}` must start with http:// (or https://)"
            ));
        }
        let Some(dir) = cfg.spool_dir.clone() else {
            return bad("webhook spool_dir is not set: give a directory ward can write".into());
        };
        for (k, v) in &cfg.headers {
            let ok_name =
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok_name || v.bytes().any(|b| b == b'\r' || b == b'\n') {
                return bad(format!("webhook header `{k}` has an invalid name or value"));
            }
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                SinkError::Config(format!(
                    "cannot create the webhook spool {} ({e}); choose a writable spool_dir",
                    dir.display()
                ))
            })?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join("lock"))?;
        if lock.try_lock().is_err() {
            return bad(format!(
                "the webhook spool {} is in use by another ward (or another webhook output); \
                 give each webhook its own spool_dir",
                dir.display()
            ));
        }
        // Resume: every complete entry, in sequence order; half-written ones are removed.
        let mut entries = Vec::new();
        for de in std::fs::read_dir(&dir)? {
            let de = de?;
            let name = de.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(de.path());
            } else if let Some(seq) = name.strip_suffix(".event").and_then(|s| s.parse().ok()) {
                entries.push(Entry {
                    seq,
                    size: de.metadata()?.len(),
                });
            }
        }
        entries.sort_by_key(|e| e.seq);
        if !entries.is_empty() {
            tracing::info!(
                "webhook {url}: resuming {} spooled events from {}",
                entries.len(),
                dir.display()
            );
        }
        let state = State {
            next_seq: entries.last().map_or(1, |e| e.seq + 1),
            bytes: entries.iter().map(|e| e.size).sum(),
            queue: entries.into(),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            cv: Condvar::new(),
        });
        let mut agent_cfg = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(cfg.timeout_secs.max(1))))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("ward/{}", env!("CARGO_PKG_VERSION")));
        agent_cfg = match &cfg.proxy {
            Some(p) => agent_cfg.proxy(Some(ureq::Proxy::new(p).map_err(|e| {
                SinkError::Config(format!("webhook proxy `{p}` is not a proxy URL: {e}"))
            })?)),
            None => agent_cfg.proxy(None),
        };
        let agent: ureq::Agent = agent_cfg.build().into();
        let worker = Worker {
            dir: dir.clone(),
            url: url.to_string(),
            headers: cfg.headers.clone(),
            agent,
            shared: shared.clone(),
            max_backoff: Duration::from_secs(cfg.max_backoff_secs.max(1)),
        };
        let thread = std::thread::Builder::new()
            .name("ward-webhook".into())
            .spawn(move || worker.run())?;
        Ok(WebhookSink {
            dir,
            url: url.to_string(),
            format: cfg.format,
            ctx,
            max_bytes: cfg.max_spool_mib.saturating_mul(1 << 20),
            max_events: cfg.max_spool_events.max(1),
            flush_timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            shared,
            thread: Some(thread),
            _lock: lock,
        })
    }

    /// Events waiting in the spool.
    pub fn spooled(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Events delivered by this sink since it was made.
    pub fn delivered(&self) -> u64 {
        self.shared.lock().delivered
    }

    fn spool(&self, ev: &Stamped) -> Result<(), SinkError> {
        let body =
            serde_json::to_vec(&self.format.render(ev, &self.ctx)).map_err(std::io::Error::from)?;
        let mut data = Vec::with_capacity(body.len() + 64);
        data.extend_from_slice(ev.id.replace('\n', " ").as_bytes());
        data.push(b'\n');
        data.extend_from_slice(ev.event.kind().as_bytes());
        data.push(b'\n');
        data.extend_from_slice(&body);
        let mut st = self.shared.lock();
        if st.queue.len() >= self.max_events || st.bytes + data.len() as u64 > self.max_bytes {
            return Err(SinkError::Other(format!(
                "webhook spool {} is full ({} events, {} bytes) because {} has not accepted \
                 events ({}); event {} ({}) was NOT spooled: fix the receiver or raise \
                 max_spool_mib / max_spool_events",
                self.dir.display(),
                st.queue.len(),
                st.bytes,
                self.url,
                st.last_error.as_deref().unwrap_or("no answer yet"),
                ev.id,
                ev.event.kind()
            )));
        }
        let seq = st.next_seq;
        let tmp = self.dir.join(format!(".{seq:020}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, entry_path(&self.dir, seq))?;
            sync_dir(&self.dir)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(SinkError::Other(format!(
                "cannot spool event {} in {}: {e}; check the disk",
                ev.id,
                self.dir.display()
            )));
        }
        st.next_seq += 1;
        st.bytes += data.len() as u64;
        st.queue.push_back(Entry {
            seq,
            size: data.len() as u64,
        });
        drop(st);
        self.shared.cv.notify_all();
        Ok(())
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError> {
        self.spool(&Stamped::now(ev.clone()))
    }

    fn send_stamped(&mut self, ev: &Stamped) -> Result<(), SinkError> {
        self.spool(ev)
    }

    /// Retry at once and wait for the spool to empty, at most the request timeout and
    /// only while the receiver accepts: the first failed attempt ends the wait. What is
    /// still spooled then stays on disk for the next start.
    fn flush(&mut self) -> Result<(), SinkError> {
        let deadline = Instant::now() + self.flush_timeout;
        let mut st = self.shared.lock();
        let failures = st.failures;
        st.retry_now = true;
        self.shared.cv.notify_all();
        while !st.queue.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || st.failures > failures {
                return Err(SinkError::Other(format!(
                    "webhook {}: {} events still spooled in {} ({}); they are sent when ward \
                     starts again",
                    self.url,
                    st.queue.len(),
                    self.dir.display(),
                    st.last_error.as_deref().unwrap_or("receiver slow")
                )));
            }
            st = self
                .shared
                .cv
                .wait_timeout(st, left)
                .map(|r| r.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        Ok(())
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    dir: PathBuf,
    url: String,
    headers: BTreeMap<String, String>,
    agent: ureq::Agent,
    shared: Arc<Shared>,
    max_backoff: Duration,
}

impl Worker {
    fn post(&self, id: &str, ty: &str, body: &[u8]) -> Result<(), String> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Ward-Event-Id", id)
            .header("X-Ward-Event-Type", ty);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send(body) {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("HTTP status {}", resp.status().as_u16())),
            Err(e) => Err(e.to_string()),
        }
    }

    fn run(self) {
        let mut backoff = Duration::from_millis(250);
        let mut last_log: Option<Instant> = None;
        let mut failures = 0u64;
        loop {
            let seq = {
                let mut st = self.shared.lock();
                loop {
                    if st.stop {
                        return;
                    }
                    if let Some(e) = st.queue.front() {
                        break e.seq;
                    }
                    st = self.shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            };
            let outcome = match read_entry(&self.dir, seq) {
                Ok((id, ty, body)) => self.post(&id, &ty, &body).map(|()| true),
                Err(e) => {
                    tracing::error!(
                        "webhook spool entry {} is unreadable ({e}); it is set aside as .bad",
                        entry_path(&self.dir, seq).display()
                    );
                    let p = entry_path(&self.dir, seq);
                    let _ = std::fs::rename(&p, p.with_extension("bad"));
                    Ok(false)
                }
            };
            match outcome {
                Ok(sent) => {
                    if sent {
                        if let Err(e) = std::fs::remove_file(entry_path(&self.dir, seq))
                            .and_then(|()| sync_dir(&self.dir))
                        {
                            tracing::warn!(
                                "webhook: delivered event {seq} but cannot remove it from the \
                                 spool ({e}); it may be sent again after a restart"
                            );
                        }
                    }
                    if failures > 0 {
                        tracing::info!("webhook {}: delivering again", self.url);
                    }
                    failures = 0;
                    backoff = Duration::from_millis(250);
                    let mut st = self.shared.lock();
                    if let Some(e) = st.queue.pop_front() {
                        st.bytes = st.bytes.saturating_sub(e.size);
                    }
                    if sent {
                        st.delivered += 1;
                    }
                    st.last_error = None;
                    drop(st);
                    self.shared.cv.notify_all();
                }
                Err(why) => {
                    failures += 1;
                    let mut st = self.shared.lock();
                    let due = last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
                    if due {
                        tracing::warn!(
                            "webhook {} not accepting events ({why}); {} events spooled in {}, \
                             retrying with backoff (up to {:?})",
                            self.url,
                            st.queue.len(),
                            self.dir.display(),
                            self.max_backoff
                        );
                        last_log = Some(Instant::now());
                    }
                    st.last_error = Some(why);
                    st.failures += 1;
                    self.shared.cv.notify_all();
                    let until = Instant::now() + backoff;
                    while !st.stop && !st.retry_now {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        st = self
                            .shared
                            .cv
                            .wait_timeout(st, left)
                            .map(|r| r.0)
                            .unwrap_or_else(|p| p.into_inner().0);
                    }
                    st.retry_now = false;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    /// A receiver on 127.0.0.1 recording (event id, body) of each request it answers 2xx.
    struct Receiver {
        server: Arc<tiny_http::Server>,
        got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
        attempts: Arc<Mutex<Vec<String>>>,
        thread: Option<JoinHandle<()>>,
    }

    impl Receiver {
        /// Listen on `port` (0: any); answer 500 to the first `fail_first` requests.
        fn start(port: u16, fail_first: usize) -> Receiver {
            let server = Arc::new(tiny_http::Server::http(("127.0.0.1", port)).unwrap());
            let got = Arc::new(Mutex::new(Vec::new()));
            let attempts = Arc::new(Mutex::new(Vec::new()));
            let (s, g, a) = (server.clone(), got.clone(), attempts.clone());
            let thread = std::thread::spawn(move || {
                for mut req in s.incoming_requests() {
                    let id = req
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("X-Ward-Event-Id"))
                        .map(|h| h.value.to_string())
                        .unwrap_or_default();
                    let mut body = String::new();
                    req.as_reader().read_to_string(&mut body).unwrap();
                    let n = {
                        let mut a = a.lock().unwrap();
                        a.push(id.clone());
                        a.len()
                    };
                    let code = if n <= fail_first { 500 } else { 204 };
                    if code == 204 {
                        g.lock()
                            .unwrap()
                            .push((id, serde_json::from_str(&body).unwrap()));
                    }
                    let _ = req.respond(tiny_http::Response::empty(code));
                }
            });
            Receiver {
                server,
                got,
                attempts,
                thread: Some(thread),
            }
        }

        fn port(&self) -> u16 {
            self.server.server_addr().to_ip().unwrap().port()
        }

        fn wait_for(&self, n: usize) -> Vec<(String, serde_json::Value)> {
            let t0 = Instant::now();
            loop {
                let got = self.got.lock().unwrap().clone();
                if got.len() >= n || t0.elapsed() > Duration::from_secs(20) {
                    return got;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn cfg(port: u16, dir: &Path) -> WebhookConfig {
        WebhookConfig {
            url: format!("http://127.0.0.1:{port}/ward"),
            format: Format::Native,
            spool_dir: Some(dir.to_path_buf()),
            headers: BTreeMap::from([("Authorization".into(), "Bearer t".into())]),
            timeout_secs: 2,
            max_backoff_secs: 1,
            max_spool_mib: 1,
            max_spool_events: 100,
            proxy: None,
        }
    }

    fn ctx() -> EcsContext {
        EcsContext {
            host_name: "fs01".into(),
            agent_version: "0.1.0".into(),
        }
    }

    fn ids(got: &[(String, serde_json::Value)]) -> Vec<String> {
        got.iter().map(|g| g.0.clone()).collect()
    }

    #[test]
    fn receiver_down_then_up_with_a_restart_in_between_every_incident_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let port = free_port();
        let incidents: Vec<AgentEvent> = (1..=10)
            .map(|n| AgentEvent::Incident(testutil::incident(n)))
            .collect();
        // First agent run: the receiver is down; 5 incidents are spooled.
        let mut a = WebhookSink::new(&cfg(port, &spool), ctx()).unwrap();
        for ev in &incidents[..5] {
            a.send(ev).unwrap();
        }
        std::thread::sleep(Duration::from_millis(300)); // some failed attempts
        assert_eq!(a.spooled(), 5);
        assert!(a.flush().is_err(), "flush must say events remain spooled");
        drop(a);
        // A second sink on the same spool cannot run while the first holds it...
        let b = WebhookSink::new(&cfg(port, &spool), ctx()).unwrap();
        let e = WebhookSink::new(&cfg(port, &spool), ctx()).err().unwrap();
        assert!(e.to_string().contains("in use"), "{e}");
        // ...the restarted one resumes the 5 and spools 5 more.
        let mut b = b;
        assert_eq!(b.spooled(), 5);
        for ev in &incidents[5..] {
            b.send(ev).unwrap();
        }
        // The receiver comes up.
        let rx = Receiver::start(port, 0);
        let got = rx.wait_for(10);
        b.flush().unwrap();
        assert_eq!(b.spooled(), 0);
        drop(b);
        std::thread::sleep(Duration::from_millis(100));
        let got_now = rx.got.lock().unwrap().clone();
        assert_eq!(
            got_now.len(),
            10,
            "duplicates or losses: {:?}",
            ids(&got_now)
        );
        let want: Vec<String> = (1..=10).map(|n| format!("20261201T100000-{n}")).collect();
        assert_eq!(ids(&got), want);
        for ((_, body), ev) in got.iter().zip(&incidents) {
            let back: AgentEvent = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(&back, ev);
        }
        // Nothing left on disk but the lock.
        let left: Vec<_> = std::fs::read_dir(&spool)
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["lock".to_string()]);
    }

    #[test]
    fn server_errors_are_retried_with_the_same_event_id() {
        let dir = tempfile::tempdir().unwrap();
        let rx = Receiver::start(0, 3);
        let mut c = cfg(rx.port(), dir.path());
        c.format = Format::Ecs;
        let mut s = WebhookSink::new(&c, ctx()).unwrap();
        s.send(&AgentEvent::Incident(testutil::incident(1)))
            .unwrap();
        s.send(&AgentEvent::Restored(testutil::restored(1, 0)))
            .unwrap();
        let got = rx.wait_for(2);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "20261201T100000-1");
        assert_eq!(got[0].1["event"]["kind"], "alert");
        assert_eq!(got[1].1["event"]["action"], "files-restored");
        // The receiver records before it answers: wait for the sink to see the answers.
        s.flush().unwrap();
        assert_eq!(s.spooled(), 0);
        let attempts = rx.attempts.lock().unwrap().clone();
        assert_eq!(attempts.len(), 5);
        assert!(
            attempts[..4].iter().all(|a| a == "20261201T100000-1"),
            "{attempts:?}"
        );
        assert_eq!(s.delivered(), 2);
    }

    #[test]
    fn a_full_spool_refuses_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(free_port(), dir.path());
        c.max_spool_events = 3;
        let mut s = WebhookSink::new(&c, ctx()).unwrap();
        for n in 0..3 {
            s.send(&AgentEvent::Incident(testutil::incident(n)))
                .unwrap();
        }
        let e = s
            .send(&AgentEvent::Incident(testutil::incident(9)))
            .unwrap_err();
        let e = e.to_string();
        assert!(e.contains("is full") && e.contains("NOT spooled"), "{e}");
        assert_eq!(s.spooled(), 3);
    }

    #[test]
    fn bad_configs_say_what_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(1, dir.path());
        c.url = "ftp://x".into();
        assert!(WebhookSink::new(&c, ctx())
            .err()
            .unwrap()
            .to_string()
            .contains("http://"));
        c.url = "http://127.0.0.1:1/".into();
        c.spool_dir = None;
        assert!(WebhookSink::new(&c, ctx())
            .err()
            .unwrap()
            .to_string()
            .contains("spool_dir"));
        let parsed: Result<WebhookConfig, _> = serde_json::from_value(serde_json::json!({
            "url": "http://x/", "retries": 3
        }));
        assert!(parsed.is_err());
    }
}
