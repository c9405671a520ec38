//! # ward-outputs
//!
//! Sinks for the agent's typed events ([`ward_model::AgentEvent`]). The agent pushes every
//! event into each configured [`Sink`]; a sink turns it into bytes for its destination
//! (stdout JSON lines, ECS documents, syslog, a webhook, ...). Adding an output never
//! touches the agent or the sensor.
//!
//! A sink must never make the agent wait: the agent calls sinks from its output thread,
//! never from the thread that answers permission events, and a slow or unreachable
//! destination is queued (or spooled to disk) inside the sink.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use ward_model::AgentEvent;

/// Why a sink could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O error writing to the destination.
    #[error("{0}")]
    Io(#[from] std::io::Error),
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
        serde_json::to_writer(&mut self.out, ev).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}

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
}
