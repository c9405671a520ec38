//! RFC 5424 syslog over UDP (RFC 5426), TCP with octet-counting framing (RFC 6587 §3.4.1)
//! or a local unix socket (datagram like `/dev/log`, or stream, newline-terminated).
//!
//! Message: `<PRI>1 TIMESTAMP HOSTNAME ward PROCID MSGID [ward@32473 ...] JSON`, where
//! PROCID is ward's pid, MSGID the event type (`incident`, `restored`, ...), the structured
//! data repeats the key facts (`id`, `pid`, `action`, `client`, counts) and MSG is the
//! event's JSON (native or ECS) without a BOM. Severity: an incident nothing stopped
//! (alert-only) is `alert`, a contained one `crit`, a restore that lost files `warning`,
//! a ready event with degraded protections `warning`, everything else `notice` (`ready`:
//! `info`).
//!
//! Delivery never blocks the output thread for long: connects and writes time out after
//! 2 s; a message that cannot be sent waits in a bounded in-memory backlog and is retried
//! (with backoff from 250 ms doubling to 30 s) on the next event or poll.

use crate::config::Format;
use crate::ecs::EcsContext;
use crate::stamp::Stamped;
use crate::{Sink, SinkError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use ward_model::{Action, AgentEvent};

/// The structured-data id: `ward@` + the enterprise number 32473 (IANA's example PEN).
pub const SD_ID: &str = "ward@32473";

/// How to reach the syslog receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// UDP datagrams to `host:port`.
    Udp,
    /// TCP to `host:port`, octet-counting framing.
    Tcp,
    /// A unix socket path (datagram, or stream if the socket is one).
    Unix,
}

/// Syslog facilities (RFC 5424 §6.2.1): one definition, in the model.
pub use ward_model::Facility;

fn default_unix() -> String {
    "/dev/log".into()
}

fn default_max() -> usize {
    8192
}

fn default_backlog() -> usize {
    1000
}

/// `[[outputs]] type = "syslog"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp`, `tcp` or `unix`.
    pub transport: SyslogTransport,
    /// `host:port` for udp/tcp (e.g. `siem.example.org:514`), a socket path for unix
    /// (default `/dev/log`).
    #[serde(default = "default_unix")]
    pub address: String,
    /// Default `daemon`.
    #[serde(default)]
    pub facility: Facility,
    /// `native` (default) or `ecs`: the JSON carried as MSG.
    #[serde(default)]
    pub format: Format,
    /// HOSTNAME field; default this machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Largest message in bytes (default 8192, rsyslog's default limit). Longer events
    /// have their lists shortened (marked `truncated`), then are cut.
    #[serde(default = "default_max")]
    pub max_message_bytes: usize,
    /// Messages kept in memory while the receiver is unreachable (default 1000); past that
    /// the oldest is dropped, with an error.
    #[serde(default = "default_backlog")]
    pub backlog: usize,
}

enum Target {
    Net(SocketAddr),
    Path(PathBuf),
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    UnixDgram(UnixDatagram),
    UnixStream(UnixStream),
}

const IO_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The syslog sink.
pub struct SyslogSink {
    transport: SyslogTransport,
    target: Target,
    address: String,
    facility: Facility,
    format: Format,
    hostname: String,
    max: usize,
    backlog_max: usize,
    ctx: EcsContext,
    conn: Option<Conn>,
    backlog: VecDeque<Vec<u8>>,
    backoff: Duration,
    next_try: Option<Instant>,
    dropped: u64,
}

fn sanitize_header(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

/// Escape an SD-PARAM value (RFC 5424 §6.3.3: `"`, `\` and `]`).
fn sd_escape(v: &str, out: &mut String) {
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Severity (RFC 5424 §6.2.1) of an event.
fn severity(ev: &AgentEvent) -> u8 {
    match ev {
        AgentEvent::Incident(i) if i.action == Action::Alerted => 1,
        AgentEvent::Incident(_) => 2,
        AgentEvent::Restored(r) if r.files_lost > 0 => 4,
        AgentEvent::RestoreFailed(_) => 3,
        AgentEvent::Ready(r) if !r.warnings.is_empty() => 4,
        AgentEvent::Ready(_) => 6,
        AgentEvent::EventsLost(_) => 4,
        _ => 5,
    }
}

fn sd_params(s: &Stamped) -> Vec<(&'static str, String)> {
    let mut p = vec![("id", s.id.clone())];
    match &s.event {
        AgentEvent::Incident(i) => {
            p.push(("pid", i.pid.to_string()));
            p.push(("exe", i.exe.clone()));
            p.push(("action", i.action.as_str().into()));
            p.push(("files_damaged", i.files_damaged.to_string()));
            if let Some(c) = &i.client {
                p.push(("client_ip", c.ip.clone()));
                p.push(("client_user", c.user.clone()));
            }
        }
        AgentEvent::Restored(r) => {
            p.push(("incident", r.id.clone()));
            p.push(("files_restored", r.files_restored.to_string()));
            p.push(("files_lost", r.files_lost.to_string()));
        }
        AgentEvent::RestoreFailed(r) => {
            p.push(("incident", r.id.clone()));
            p.push(("files_pending", r.files_pending.to_string()));
            p.push(("error", r.error.clone()));
        }
        AgentEvent::Ready(r) => p.push(("pid", r.pid.to_string())),
        AgentEvent::BlockLifted(b) => p.push(("client_ip", b.ip.clone())),
        AgentEvent::EventsLost(l) => {
            p.push(("source", l.source.clone()));
            p.push(("lost", l.lost.to_string()));
        }
        AgentEvent::Stopped(_) => p.push(("pid", std::process::id().to_string())),
    }
    p
}

/// Cap every array in `v` at `keep` entries; true when something was cut.
fn cap_arrays(v: &mut Value, keep: usize) -> bool {
    match v {
        Value::Array(a) => {
            let mut cut = a.len() > keep;
            a.truncate(keep);
            for x in a.iter_mut() {
                cut |= cap_arrays(x, keep);
            }
            cut
        }
        Value::Object(m) => {
            let mut cut = false;
            for (k, x) in m.iter_mut() {
                // ECS categorisation arrays are short and must stay whole.
                if k == "category" || k == "type" {
                    continue;
                }
                cut |= cap_arrays(x, keep);
            }
            cut
        }
        _ => false,
    }
}

impl SyslogSink {
    /// Build the sink. Resolves a `host:port` address now (fails with what to fix); does
    /// not connect yet (the first event does, and failures are retried).
    pub fn new(cfg: &SyslogConfig, ctx: EcsContext) -> Result<SyslogSink, SinkError> {
        let target = match cfg.transport {
            SyslogTransport::Udp | SyslogTransport::Tcp => {
                let addr = cfg
                    .address
                    .to_socket_addrs()
                    .map_err(|e| {
                        SinkError::Config(format!(
                            "syslog address `{}` is not a reachable host:port ({e}); give e.g. \
                             `127.0.0.1:514` or `siem.example.org:6514`",
                            cfg.address
                        ))
                    })?
                    .next()
                    .ok_or_else(|| {
                        SinkError::Config(format!(
                            "syslog address `{}` resolves to no address",
                            cfg.address
                        ))
                    })?;
                Target::Net(addr)
            }
            SyslogTransport::Unix => {
                if cfg.address.is_empty() {
                    return Err(SinkError::Config(
                        "syslog unix address is empty: give a socket path such as /dev/log".into(),
                    ));
                }
                Target::Path(PathBuf::from(&cfg.address))
            }
        };
        if cfg.max_message_bytes < 480 {
            return Err(SinkError::Config(format!(
                "syslog max_message_bytes = {} is too small: RFC 5424 receivers must accept \
                 480 bytes; use 2048 or more",
                cfg.max_message_bytes
            )));
        }
        let hostname = cfg
            .hostname
            .clone()
            .unwrap_or_else(|| ctx.host_name.clone());
        Ok(SyslogSink {
            transport: cfg.transport,
            target,
            address: cfg.address.clone(),
            facility: cfg.facility,
            format: cfg.format,
            hostname: sanitize_header(&hostname, 255),
            max: cfg.max_message_bytes,
            backlog_max: cfg.backlog.max(1),
            ctx,
            conn: None,
            backlog: VecDeque::new(),
            backoff: BACKOFF_MIN,
            next_try: None,
            dropped: 0,
        })
    }

    /// The RFC 5424 message for one event (without transport framing).
    pub fn format_message(&self, s: &Stamped) -> Vec<u8> {
        let pri = u16::from(self.facility.code()) * 8 + u16::from(severity(&s.event));
        let mut head = format!(
            "<{pri}>1 {} {} ward {} {} [{SD_ID}",
            s.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            self.hostname,
            std::process::id(),
            s.event.kind(),
        );
        for (k, v) in sd_params(s) {
            head.push(' ');
            head.push_str(k);
            head.push_str("=\"");
            sd_escape(&v, &mut head);
            head.push('"');
        }
        head.push_str("] ");
        let mut body = self.format.render(s, &self.ctx);
        let mut msg = serde_json::to_string(&body).unwrap_or_default();
        for keep in [10, 3, 1, 0] {
            if head.len() + msg.len() <= self.max {
                break;
            }
            if cap_arrays(&mut body, keep) {
                if let Value::Object(m) = &mut body {
                    match self.format {
                        Format::Native => {
                            m.insert("truncated".into(), Value::Bool(true));
                        }
                        Format::Ecs => {
                            if let Some(Value::Object(w)) = m.get_mut("ward") {
                                w.insert("truncated".into(), Value::Bool(true));
                            }
                        }
                    }
                }
                msg = serde_json::to_string(&body).unwrap_or_default();
            }
        }
        let mut out = head.into_bytes();
        out.extend_from_slice(msg.as_bytes());
        if out.len() > self.max {
            let mut cut = self.max;
            while cut > 0 && (out[cut] & 0xC0) == 0x80 {
                cut -= 1; // keep UTF-8 whole
            }
            out.truncate(cut);
        }
        out
    }

    fn connect(&self) -> std::io::Result<Conn> {
        match (&self.target, self.transport) {
            (Target::Net(addr), SyslogTransport::Udp) => {
                let bind: SocketAddr = if addr.is_ipv4() {
                    "0.0.0.0:0".parse().map_err(std::io::Error::other)?
                } else {
                    "[::]:0".parse().map_err(std::io::Error::other)?
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(addr)?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Conn::Udp(s))
            }
            (Target::Net(addr), _) => {
                let s = TcpStream::connect_timeout(addr, IO_TIMEOUT)?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
            (Target::Path(p), _) => {
                let d = UnixDatagram::unbound()?;
                match d.connect(p) {
                    Ok(()) => {
                        d.set_write_timeout(Some(IO_TIMEOUT))?;
                        Ok(Conn::UnixDgram(d))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(e),
                    Err(e) => match UnixStream::connect(p) {
                        Ok(s) => {
                            s.set_write_timeout(Some(IO_TIMEOUT))?;
                            Ok(Conn::UnixStream(s))
                        }
                        Err(_) => Err(e),
                    },
                }
            }
        }
    }

    /// Whether a stream connection was closed by the receiver (a restarted receiver):
    /// writing into it would "succeed" into the socket buffer and then be lost.
    fn peer_closed(conn: &Conn) -> bool {
        let mut b = [0u8; 1];
        match conn {
            Conn::Tcp(s) => {
                if s.set_nonblocking(true).is_err() {
                    return false;
                }
                let closed = matches!(s.peek(&mut b), Ok(0));
                let _ = s.set_nonblocking(false);
                closed
            }
            Conn::UnixStream(s) => {
                // No peek on stable: a non-blocking read of a receiver that never sends
                // returns WouldBlock while open and 0 at EOF.
                if s.set_nonblocking(true).is_err() {
                    return false;
                }
                let closed = matches!((&*s).read(&mut b), Ok(0));
                let _ = s.set_nonblocking(false);
                closed
            }
            _ => false,
        }
    }

    fn write(conn: &mut Conn, msg: &[u8]) -> std::io::Result<()> {
        match conn {
            Conn::Udp(s) => s.send(msg).map(|_| ()),
            Conn::UnixDgram(s) => s.send(msg).map(|_| ()),
            Conn::Tcp(s) => {
                let mut framed = format!("{} ", msg.len()).into_bytes();
                framed.extend_from_slice(msg);
                s.write_all(&framed)
            }
            Conn::UnixStream(s) => {
                let mut framed = msg.to_vec();
                framed.push(b'\n');
                s.write_all(&framed)
            }
        }
    }

    /// Send what is queued, in order. Err when something is left.
    fn drain(&mut self) -> Result<(), SinkError> {
        if self.backlog.is_empty() {
            return Ok(());
        }
        if self.conn.as_ref().is_some_and(Self::peer_closed) {
            self.conn = None;
            self.next_try = None; // reconnect at once: the receiver is probably back
        }
        if self.conn.is_none() {
            if let Some(t) = self.next_try {
                if Instant::now() < t {
                    return Err(self.pending_error("not connected"));
                }
            }
            match self.connect() {
                Ok(c) => self.conn = Some(c),
                Err(e) => return Err(self.failed(e)),
            }
        }
        while let Some(msg) = self.backlog.front() {
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| SinkError::Other("no connection".into()))?;
            match Self::write(conn, msg) {
                Ok(()) => {
                    self.backlog.pop_front();
                }
                Err(e) => {
                    self.conn = None;
                    return Err(self.failed(e));
                }
            }
        }
        self.backoff = BACKOFF_MIN;
        self.next_try = None;
        Ok(())
    }

    fn failed(&mut self, e: std::io::Error) -> SinkError {
        self.next_try = Some(Instant::now() + self.backoff);
        let err = self.pending_error(&e.to_string());
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        err
    }

    fn pending_error(&self, why: &str) -> SinkError {
        SinkError::Other(format!(
            "syslog {:?} {}: {why}; {} messages queued for retry ({} dropped so far); check \
             that the syslog receiver is running and reachable",
            self.transport,
            self.address,
            self.backlog.len(),
            self.dropped
        ))
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> &str {
        "syslog"
    }

    fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError> {
        self.send_stamped(&Stamped::now(ev.clone()))
    }

    fn send_stamped(&mut self, ev: &Stamped) -> Result<(), SinkError> {
        let msg = self.format_message(ev);
        if self.backlog.len() >= self.backlog_max {
            self.backlog.pop_front();
            self.dropped += 1;
        }
        self.backlog.push_back(msg);
        self.drain()
    }

    fn poll(&mut self) -> Result<(), SinkError> {
        self.drain()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        // One more attempt now, whatever the backoff says: the agent is stopping.
        self.next_try = None;
        let r = self.drain();
        if let Some(Conn::Tcp(s)) = &mut self.conn {
            s.flush()?;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;
    use syslog_loose::{parse_message_with_year_exact, Message, ProcId, Variant};

    fn ctx() -> EcsContext {
        EcsContext {
            host_name: "fs01".into(),
            agent_version: "0.1.0".into(),
        }
    }

    fn cfg(transport: SyslogTransport, address: String) -> SyslogConfig {
        SyslogConfig {
            transport,
            address,
            facility: Facility::Auth,
            format: Format::Native,
            hostname: None,
            max_message_bytes: 65000,
            backlog: 100,
        }
    }

    fn parse(s: &str) -> Message<&str> {
        parse_message_with_year_exact(s, |_| 2026, Variant::RFC5424)
            .unwrap_or_else(|e| panic!("not RFC 5424: {e}: {s}"))
    }

    fn sd<'a>(m: &'a Message<&'a str>) -> Vec<(String, String)> {
        assert_eq!(m.structured_data.len(), 1);
        assert_eq!(m.structured_data[0].id, SD_ID);
        m.structured_data[0]
            .params()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Check one received message against the event that produced it.
    fn check(text: &str, ev: &AgentEvent) {
        let m = parse(text);
        assert_eq!(m.facility, Some(syslog_loose::SyslogFacility::LOG_AUTH));
        let sev = m.severity.unwrap() as u8;
        assert_eq!(sev, severity(ev));
        assert_eq!(m.hostname, Some("fs01"));
        assert_eq!(m.appname, Some("ward"));
        assert_eq!(m.procid, Some(ProcId::PID(std::process::id() as i32)));
        assert_eq!(m.msgid, Some(ev.kind()));
        assert!(m.timestamp.is_some());
        let json: AgentEvent = serde_json::from_str(m.msg).unwrap();
        assert_eq!(&json, ev);
        let params = sd(&m);
        if let AgentEvent::Incident(i) = ev {
            assert!(params.contains(&("id".into(), i.id.clone())), "{params:?}");
            assert!(params.contains(&("pid".into(), i.pid.to_string())));
            if let Some(c) = &i.client {
                assert!(params.contains(&("client_ip".into(), c.ip.clone())));
            }
        }
    }

    #[test]
    fn severities() {
        let mut alerted = testutil::incident(1);
        alerted.action = Action::Alerted;
        assert_eq!(severity(&AgentEvent::Incident(alerted)), 1);
        assert_eq!(severity(&AgentEvent::Incident(testutil::incident(1))), 2);
        assert_eq!(severity(&AgentEvent::Restored(testutil::restored(1, 1))), 4);
        assert_eq!(severity(&AgentEvent::Restored(testutil::restored(1, 0))), 5);
        assert_eq!(severity(&AgentEvent::Stopped(ward_model::Stopped {})), 5);
    }

    #[test]
    fn udp_messages_parse_as_rfc5424() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = rx.local_addr().unwrap().to_string();
        let mut sink = SyslogSink::new(&cfg(SyslogTransport::Udp, addr), ctx()).unwrap();
        let events = testutil::all_events();
        for ev in &events {
            sink.send(ev).unwrap();
        }
        let mut buf = vec![0u8; 70000];
        for ev in &events {
            let n = rx.recv(&mut buf).unwrap();
            check(std::str::from_utf8(&buf[..n]).unwrap(), ev);
        }
    }

    /// Split an octet-counted TCP stream into messages.
    fn frames(mut data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let sp = data.iter().position(|&b| b == b' ').expect("length prefix");
            let len: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().unwrap();
            out.push(String::from_utf8(data[sp + 1..sp + 1 + len].to_vec()).unwrap());
            data = &data[sp + 1 + len..];
        }
        out
    }

    #[test]
    fn tcp_octet_counting_and_reconnect_after_the_receiver_restarts() {
        // A port with nobody listening: the first event is queued, not lost.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut sink = SyslogSink::new(&cfg(SyslogTransport::Tcp, addr.clone()), ctx()).unwrap();
        let events = testutil::all_events();
        let err = sink.send(&events[0]).unwrap_err().to_string();
        assert!(err.contains("1 messages queued"), "{err}");
        let listener = TcpListener::bind(&addr).unwrap();
        // Within the backoff, polling does not reconnect yet...
        let t0 = Instant::now();
        while sink.poll().is_err() {
            assert!(t0.elapsed() < Duration::from_secs(5), "never reconnected");
            std::thread::sleep(Duration::from_millis(50));
        }
        for ev in &events[1..] {
            sink.send(ev).unwrap();
        }
        sink.flush().unwrap();
        drop(sink);
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut data = Vec::new();
        conn.read_to_end(&mut data).unwrap();
        let msgs = frames(&data);
        assert_eq!(msgs.len(), events.len());
        for (m, ev) in msgs.iter().zip(&events) {
            check(m, ev);
        }
    }

    #[test]
    fn a_receiver_that_closes_the_connection_loses_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut sink = SyslogSink::new(&cfg(SyslogTransport::Tcp, addr), ctx()).unwrap();
        let events = testutil::all_events();
        sink.send(&events[0]).unwrap();
        let read_one = |conn: &mut TcpStream| {
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut data = vec![0u8; 65536];
            let n = conn.read(&mut data).unwrap();
            frames(&data[..n])
        };
        listener.set_nonblocking(true).unwrap();
        let accept = || {
            let t0 = Instant::now();
            loop {
                match listener.accept() {
                    Ok((c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        return c;
                    }
                    Err(_) if t0.elapsed() < Duration::from_secs(5) => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("no (re)connection: {e}"),
                }
            }
        };
        let mut c1 = accept();
        assert_eq!(read_one(&mut c1).len(), 1);
        drop(c1); // the receiver restarts its connection handling
        std::thread::sleep(Duration::from_millis(50));
        sink.send(&events[1]).unwrap();
        let mut c2 = accept();
        let msgs = read_one(&mut c2);
        assert_eq!(msgs.len(), 1);
        check(&msgs[0], &events[1]);
    }

    #[test]
    fn unix_datagram_and_stream_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let dgram_path = dir.path().join("log.dgram");
        let rx = UnixDatagram::bind(&dgram_path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = SyslogSink::new(
            &cfg(SyslogTransport::Unix, dgram_path.display().to_string()),
            ctx(),
        )
        .unwrap();
        let ev = AgentEvent::Incident(testutil::incident(5));
        sink.send(&ev).unwrap();
        let mut buf = vec![0u8; 70000];
        let n = rx.recv(&mut buf).unwrap();
        check(std::str::from_utf8(&buf[..n]).unwrap(), &ev);

        let stream_path = dir.path().join("log.stream");
        let listener = UnixListener::bind(&stream_path).unwrap();
        let mut sink = SyslogSink::new(
            &cfg(SyslogTransport::Unix, stream_path.display().to_string()),
            ctx(),
        )
        .unwrap();
        let events = testutil::all_events();
        for ev in &events {
            sink.send(ev).unwrap();
        }
        drop(sink);
        let (mut conn, _) = listener.accept().unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), events.len());
        for (l, ev) in lines.iter().zip(&events) {
            check(l, ev);
        }
    }

    #[test]
    fn structured_data_is_escaped() {
        let sink =
            SyslogSink::new(&cfg(SyslogTransport::Unix, "/nonexistent".into()), ctx()).unwrap();
        let mut i = testutil::incident(8);
        i.exe = r#"/tmp/a "b"\c]d"#.into();
        let text =
            String::from_utf8(sink.format_message(&Stamped::now(AgentEvent::Incident(i)))).unwrap();
        assert!(text.contains(r#"exe="/tmp/a \"b\"\\c\]d""#), "{text}");
        let m = parse(&text);
        let params = sd(&m);
        assert!(
            params.contains(&("exe".into(), r#"/tmp/a "b"\c]d"#.into())),
            "{params:?}"
        );
    }

    #[test]
    fn long_events_are_shortened_to_the_limit_and_stay_json() {
        let mut c = cfg(SyslogTransport::Unix, "/nonexistent".into());
        c.max_message_bytes = 2048;
        for format in [Format::Native, Format::Ecs] {
            c.format = format;
            let sink = SyslogSink::new(&c, ctx()).unwrap();
            let mut i = testutil::incident(8);
            i.damaged = (0..500)
                .map(|n| format!("/srv/share/dir/file-{n}.docx"))
                .collect();
            i.files_damaged = 500;
            let msg = sink.format_message(&Stamped::now(AgentEvent::Incident(i)));
            assert!(msg.len() <= 2048, "{}", msg.len());
            let text = String::from_utf8(msg).unwrap();
            let m = parse(&text);
            let v: Value = serde_json::from_str(m.msg).expect("still JSON");
            let truncated = match format {
                Format::Native => &v["truncated"],
                Format::Ecs => &v["ward"]["truncated"],
            };
            assert_eq!(truncated, &Value::Bool(true), "{v}");
        }
    }

    #[test]
    fn bad_addresses_are_config_errors() {
        let e = SyslogSink::new(&cfg(SyslogTransport::Udp, "no-port".into()), ctx())
            .err()
            .unwrap();
        assert!(e.to_string().contains("host:port"), "{e}");
    }

    #[test]
    fn config_parses_with_defaults_and_rejects_unknown_keys() {
        let c: SyslogConfig = serde_json::from_value(serde_json::json!({
            "transport": "unix"
        }))
        .unwrap();
        assert_eq!(c.address, "/dev/log");
        assert_eq!(c.facility, Facility::Daemon);
        assert!(serde_json::from_value::<SyslogConfig>(serde_json::json!({
            "transport": "udp", "adress": "x:1"
        }))
        .is_err());
    }
}
