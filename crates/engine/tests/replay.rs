//! The recorded real traces (`tests/traces/*.jsonl.gz` at the workspace root) replayed
//! through the engine alone, with the expectations of `tests/traces/expected.json`.
//!
//! The root `tests/traces.rs` does the same (and records the traces); this copy needs only
//! the engine, so the detection rules can be checked while the rest of the workspace is
//! being rebuilt. An entry with `"known_miss"` must still miss (the marker goes when the
//! gap is closed).

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use ward_engine::{Config, Engine, Event, Verdict};

fn traces_dir() -> PathBuf {
    let here = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    here.join("../../tests/traces")
}

/// Replay one trace; returns (verdicts, events).
fn replay(path: &Path) -> (Vec<Verdict>, usize) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut engine: Option<Engine> = None;
    let mut verdicts = Vec::new();
    let mut n = 0;
    for (i, line) in r.lines().enumerate() {
        let line = line.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if line.trim().is_empty() {
            continue;
        }
        if i == 0 {
            let h: Value = serde_json::from_str(&line).expect("header");
            assert_eq!(h["ward_trace"], 1, "{}: trace version", path.display());
            let cfg: Config = serde_json::from_value(h["config"].clone()).expect("config");
            engine = Some(Engine::new(cfg));
            continue;
        }
        let ev: Event = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}:{}: bad event: {e}", path.display(), i + 1));
        n += 1;
        if let Some(v) = engine.as_mut().expect("header line").observe(&ev) {
            verdicts.push(v);
        }
    }
    (verdicts, n)
}

fn expected() -> BTreeMap<String, Value> {
    let p = traces_dir().join("expected.json");
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn recorded_traces_decide_as_expected() {
    let exp = expected();
    assert!(exp.len() >= 30, "expected.json lists {} traces", exp.len());
    let mut failures = Vec::new();
    for (name, e) in exp {
        let (verdicts, n) = replay(&traces_dir().join(format!("{name}.jsonl.gz")));
        assert!(n > 0, "{name}: empty trace");
        let want = match e["kind"].as_str() {
            Some("attack") => 1,
            Some("benign") => 0,
            k => panic!("{name}: bad kind {k:?}"),
        };
        if e["known_miss"].as_str().is_some() {
            if verdicts.len() == want {
                failures.push(format!("{name}: caught now: remove its known_miss"));
            }
            continue;
        }
        if verdicts.len() != want {
            failures.push(format!(
                "{name}: {} verdict(s), expected {want}: {:?}",
                verdicts.len(),
                verdicts.iter().map(|v| &v.indicators).collect::<Vec<_>>()
            ));
        }
        // The recorded indicators of an attack are still named (more may be added).
        if let (Some(want_ind), Some(v)) = (e["indicators"].as_array(), verdicts.first()) {
            for i in want_ind.iter().filter_map(|i| i.as_str()) {
                if !v.indicators.iter().any(|x| x.as_str() == i) {
                    failures.push(format!("{name}: indicator {i} missing: {:?}", v.indicators));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "trace regressions:\n{}",
        failures.join("\n")
    );
}
