//! Traces: the events the engine saw, recorded by `ward protect --record FILE` and read
//! back by `ward replay`, `ward bench --engine` and the regression tests (the one reader).
//!
//! Format: JSON lines. The first line is a header `{"ward_trace":1,"config":{...}}` (the
//! engine settings in force), then one [`ward_engine::Event`] per line. A file ending in
//! `.gz` is gzip-compressed.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use ward_engine::{Engine, Event, Verdict};

/// Current trace format version.
pub const TRACE_VERSION: u64 = 1;

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("cannot read trace {path}: {source}")]
    Io {
        /// The trace.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not what a trace holds.
    #[error("{path}:{line}: {reason} (is it a trace written by `ward protect --record`?)")]
    Bad {
        /// The trace.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A trace read into memory.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Engine settings from the header (defaults when there is no header).
    pub config: ward_engine::Config,
    /// The events, in order.
    pub events: Vec<Event>,
}

impl Trace {
    /// Read a trace file (`.gz` is decompressed).
    pub fn read(path: &Path) -> Result<Trace, TraceError> {
        let io = |source| TraceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(f)))
        } else {
            Box::new(std::io::BufReader::new(f))
        };
        Trace::parse(path, reader)
    }

    /// Parse trace lines from `reader` (`path` names it in errors).
    pub fn parse(path: &Path, reader: impl BufRead) -> Result<Trace, TraceError> {
        let bad = |line: usize, reason: String| TraceError::Bad {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut config = ward_engine::Config::default();
        let mut events = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| TraceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            if i == 0 && line.contains("\"ward_trace\"") {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| bad(1, format!("bad trace header: {e}")))?;
                let ver = v["ward_trace"].as_u64().unwrap_or(0);
                if ver != TRACE_VERSION {
                    return Err(bad(
                        1,
                        format!(
                            "trace format version {ver}, this ward reads version {TRACE_VERSION}"
                        ),
                    ));
                }
                if let Some(c) = v.get("config") {
                    config = serde_json::from_value(c.clone())
                        .map_err(|e| bad(1, format!("bad engine config in header: {e}")))?;
                }
                continue;
            }
            events.push(
                serde_json::from_str(&line)
                    .map_err(|e| bad(i + 1, format!("not a trace event: {e}")))?,
            );
        }
        Ok(Trace { config, events })
    }

    /// Run a fresh engine (with the trace's settings) over the events; the verdicts.
    pub fn replay(&self) -> Vec<Verdict> {
        let mut engine = Engine::new(self.config.clone());
        self.events
            .iter()
            .filter_map(|e| engine.observe(e))
            .collect()
    }
}

/// Write the header line of a trace.
pub fn write_header(w: &mut impl Write, config: &ward_engine::Config) -> std::io::Result<()> {
    let header = serde_json::json!({"ward_trace": TRACE_VERSION, "config": config});
    serde_json::to_writer(&mut *w, &header)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_events_and_errors() {
        let mut buf = Vec::new();
        write_header(&mut buf, &ward_engine::Config::default()).unwrap();
        buf.extend_from_slice(
            br#"{"time":1,"proc":{"pid":5,"start":9},"op":"exit"}
"#,
        );
        let t = Trace::parse(Path::new("t"), &buf[..]).unwrap();
        assert_eq!(t.events.len(), 1);
        assert!(t.replay().is_empty());
        let e = Trace::parse(Path::new("t"), &b"{\"ward_trace\":9}\n"[..]).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        let e = Trace::parse(Path::new("t"), &b"{\"ward_trace\":1}\nnope\n"[..]).unwrap_err();
        assert!(e.to_string().starts_with("t:2:"), "{e}");
    }
}
