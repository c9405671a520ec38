//! # ward-outputs
//!
//! Sinks for the agent's typed events ([`ward_model::AgentEvent`]), the fan-out runner that
//! feeds them, Prometheus metrics and the `ward status` socket.
//!
//! * [`Outputs`]: one output thread running every configured [`Sink`] in order; the agent's
//!   threads only push into a bounded queue ([`Emitter::emit`] never blocks; when the queue
//!   is full the event is dropped, logged and counted in `ward_output_dropped_total`).
//!   [`Outputs::close`] delivers everything queued (the `stopped` event included), flushes
//!   every sink and joins. A sink that fails is logged (at most once per 30 s per sink)
//!   and counted; one that panics is disabled; neither affects the others.
//! * Sinks: [`JsonLines`] (native JSON lines, BRIEF §5), [`EcsLines`] (Elastic Common
//!   Schema, BRIEF §5b), [`SyslogSink`] (RFC 5424 over UDP, TCP or a unix socket),
//!   [`RotatingFile`] (JSON lines to a file with size-based rotation, fsync per event) and
//!   [`WebhookSink`] (HTTP POST through a durable on-disk spool). Each has a serde config
//!   struct; [`SinkConfig`] is the tagged union a config file lists (`[[outputs]]`) and
//!   [`SinkConfig::build`] makes the sink.
//! * [`Metrics`]: lock-free counters, gauges and a latency histogram the agent updates from
//!   its hot thread; [`MetricsServer`] serves them in Prometheus text format.
//! * [`StatusServer`] / [`status_client`] / [`format_status`]: one JSON snapshot of the
//!   running agent over a unix socket (mode 0600), for `ward status`.
//!
//! Every event is stamped once when emitted ([`Stamped`]: id and time), so the ECS
//! `event.id`, the syslog `id` parameter and the webhook's `X-Ward-Event-Id` agree; an
//! incident's id is its own.
//!
//! Wiring, as the agent does it:
//!
//! ```no_run
//! use std::sync::Arc;
//! use ward_outputs::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let configs: Vec<SinkConfig> = vec![];
//! let metrics = Arc::new(Metrics::new());
//! metrics.set_sensor("fanotify");
//! let ctx = SinkContext::new("/var/lib/ward");
//! let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonLines::new(std::io::stdout()))];
//! sinks.extend(SinkConfig::build_all(&configs, &ctx)?);
//! let outputs = Outputs::start_with(
//!     sinks,
//!     OutputOptions { metrics: Some(metrics.clone()), ..OutputOptions::default() },
//! );
//! let _scrape = MetricsServer::start("127.0.0.1:9477", metrics.clone())?;
//! let m = metrics.clone();
//! let _status = StatusServer::start("/var/lib/ward/status.sock", move || {
//!     let mut s = StatusSnapshot::new(&m);
//!     s.protected_paths = vec!["/srv/share".into()];
//!     s
//! })?;
//! let emitter = outputs.emitter(); // clone into any thread
//! // hot thread: metrics.perm_answer(PermAnswer::Allow, latency); metrics.event(EventKind::Open);
//! emitter.emit(ward_model::AgentEvent::Stopped(ward_model::Stopped {}));
//! metrics.set_up(false);
//! let report = outputs.close(); // stopped reached every sink
//! # let _ = report; Ok(()) }
//! ```
//!
//! A sink must never make the agent wait: the agent calls sinks from its output thread,
//! never from the thread that answers permission events, and a slow or unreachable
//! destination is queued (or spooled to disk) inside the sink.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use ward_model::AgentEvent;

mod config;
mod ecs;
mod file;
mod http;
mod metrics;
mod runner;
mod stamp;
mod status;
mod syslog;
mod webhook;

pub use config::{Format, SinkConfig, SinkContext, StdoutConfig};
pub use ecs::{to_ecs, EcsContext, EcsLines, ECS_VERSION};
pub use file::{FileConfig, RotatingFile};
pub use http::{MetricsServer, MetricsServerError, CONTENT_TYPE};
pub use metrics::{
    EventKind, Histogram, Metrics, MetricsSnapshot, PermAnswer, LATENCY_BUCKETS_SECONDS,
};
pub use runner::{Emitter, OutputOptions, Outputs, OutputsReport};
pub use stamp::Stamped;
pub use status::{
    format_status, status_client, StatusError, StatusServer, StatusSnapshot, STATUS_TIMEOUT,
};
pub use syslog::{Facility, SyslogConfig, SyslogSink, SyslogTransport, SD_ID};
pub use webhook::{WebhookConfig, WebhookSink};

/// Why a sink could not deliver (or could not be built).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O error writing to the destination.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A configuration value that cannot work, with what to change.
    #[error("invalid output configuration: {0}")]
    Config(String),
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

/// One output of the agent's events.
pub trait Sink: Send {
    /// Short name for logs and metrics (`jsonl`, `ecs`, `syslog`, `webhook`, ...).
    fn name(&self) -> &str;
    /// Deliver one event (in order with the ones before it).
    fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError>;
    /// Deliver one event with the id and time the runner gave it when it was emitted, so
    /// every sink reports the same `event.id` and `@timestamp`. The default ignores the
    /// stamp and calls [`Sink::send`].
    fn send_stamped(&mut self, ev: &Stamped) -> Result<(), SinkError> {
        self.send(&ev.event)
    }
    /// Called by the runner about every [`OutputOptions::poll_interval`] when no event
    /// came, so a sink can retry what it has queued (reconnect, resend). Must not block
    /// for long. The default does nothing.
    fn poll(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Deliver everything still queued; called when the agent stops.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Native JSON lines (BRIEF §5): one object per event, `type` first, to any writer.
pub struct JsonLines<W: std::io::Write + Send> {
    out: W,
}

impl<W: std::io::Write + Send> JsonLines<W> {
    /// Write to `out` (e.g. `std::io::stdout()`).
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }
}

impl<W: std::io::Write + Send> Sink for JsonLines<W> {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError> {
        // One write per line, so a reader never sees half an object.
        let mut line = serde_json::to_vec(ev).map_err(std::io::Error::from)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}

/// Read this machine's host name (`/proc/sys/kernel/hostname`); `None` when unreadable.
pub fn hostname() -> Option<String> {
    let s = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::*;
    use ward_model::Stopped;

    #[test]
    fn json_lines_one_object_per_line() {
        let mut buf = Vec::new();
        {
            let mut s = JsonLines::new(&mut buf);
            s.send(&AgentEvent::Stopped(Stopped {})).unwrap();
            s.send(&AgentEvent::Stopped(Stopped {})).unwrap();
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"type\":\"stopped\"}\n{\"type\":\"stopped\"}\n"
        );
    }

    #[test]
    fn hostname_is_read() {
        let h = hostname().expect("this test machine has a host name");
        assert!(!h.contains('\n'));
    }
}
