//! `ward replay FILE`: run the engine offline over a recorded trace and print verdicts.
//!
//! The trace format is the one `ward protect --record FILE` writes: one JSON object per
//! line, each an [`ward_engine::Event`] (`{"time":NS,"proc":{"pid":..,"start":..},"op":"open",...}`).
//! The first line may be a header `{"ward_trace":1,...}`. Replay is deterministic: the
//! same trace gives the same verdicts on any machine, without root.

use crate::ExitError;
use std::io::BufRead;
use std::path::Path;
use ward_engine::{Engine, Event, Verdict};

/// Current trace format version.
pub const TRACE_VERSION: u64 = 1;

/// Replay `file`, returning the verdicts and the number of events.
pub fn replay_file(file: &Path) -> Result<(Vec<Verdict>, usize), ExitError> {
    let f = std::fs::File::open(file)
        .map_err(|e| ExitError::usage(format!("cannot open trace {}: {e}", file.display())))?;
    let mut engine = Engine::new(Default::default());
    let mut verdicts = Vec::new();
    let mut n = 0usize;
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line =
            line.map_err(|e| ExitError::runtime(format!("reading {}: {e}", file.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        if i == 0 && line.contains("\"ward_trace\"") {
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
                ExitError::usage(format!("{}: bad trace header: {e}", file.display()))
            })?;
            if let Some(cfg) = v.get("config") {
                let cfg: ward_engine::Config =
                    serde_json::from_value(cfg.clone()).map_err(|e| {
                        ExitError::usage(format!(
                            "{}: bad engine config in header: {e}",
                            file.display()
                        ))
                    })?;
                engine = Engine::new(cfg);
            }
            let ver = v["ward_trace"].as_u64().unwrap_or(0);
            if ver != TRACE_VERSION {
                return Err(ExitError::usage(format!(
                    "{}: trace format version {ver}, this ward reads version {TRACE_VERSION}",
                    file.display()
                )));
            }
            continue;
        }
        let ev: Event = serde_json::from_str(&line).map_err(|e| {
            ExitError::usage(format!(
                "{}:{}: not a trace event: {e}",
                file.display(),
                i + 1
            ))
        })?;
        n += 1;
        if let Some(v) = engine.observe(&ev) {
            verdicts.push(v);
        }
    }
    Ok((verdicts, n))
}

pub fn run(file: &Path, json: bool) -> Result<(), ExitError> {
    let (verdicts, n) = replay_file(file)?;
    if json {
        for v in &verdicts {
            println!("{}", serde_json::to_string(v).expect("verdict serialises"));
        }
        return Ok(());
    }
    println!("{n} events, {} verdict(s)", verdicts.len());
    for v in &verdicts {
        println!(
            "  lineage root pid {} (culprit {}): {} file(s) damaged [{}] at t={:.3} ms",
            v.root.pid,
            v.culprit.pid,
            v.files_damaged.len(),
            v.indicators
                .iter()
                .map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            v.time as f64 / 1e6
        );
    }
    Ok(())
}
