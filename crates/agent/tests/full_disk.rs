//! The full-disk rule of the permission policy ([`Agent::decide_held`]), without root:
//! a write-intent open that could not be preserved is denied only when no copy at all
//! could be made *and* the opener's lineage already shows evidence; everything else
//! fails open. The engine's state comes from the recorded `inplace` attack trace.

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ward_agent::output::Output;
use ward_agent::permit::CopyOutcome;
use ward_agent::settings::Config;
use ward_agent::store::StoreWorker;
use ward_agent::trace::Trace;
use ward_agent::vaultd::{Miss, MissKind};
use ward_agent::{Agent, Clock, Decision, Parts};
use ward_engine::{Engine, Event, Op, ProcId};
use ward_sensor::{EventSource, Observation, PermRequest};

/// Replays trace events without permission requests (the test asks the policy itself).
struct Replay {
    events: VecDeque<Event>,
    now: u64,
}

impl EventSource for Replay {
    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        Vec::new()
    }
    fn read(&mut self, out: &mut Vec<Observation>) -> io::Result<()> {
        if let Some(ev) = self.events.pop_front() {
            self.now = ev.time;
            out.push(Observation {
                event: ev,
                perm: None,
                deferred: None,
            });
        }
        Ok(())
    }
    fn answer(&mut self, _: PermRequest, _: bool) {}
    fn now(&self) -> u64 {
        self.now
    }
    fn is_protected_pid(&self, pid: u32) -> bool {
        pid <= 1
    }
    fn losses(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// The agent fed the `inplace` trace up to the attacker's first evidence (before its
/// conviction), the attacker, and one of the files it went on to open.
fn at_first_evidence(tune: impl FnOnce(&mut Config)) -> (Agent<Replay>, ProcId, PathBuf) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/traces/inplace.jsonl.gz");
    let trace = Trace::read(&path).unwrap();
    let (attacker, victim) = trace
        .events
        .iter()
        .find_map(|e| match &e.op {
            Op::CloseWrite { path, .. } => Some((e.proc, PathBuf::from(path))),
            _ => None,
        })
        .expect("the trace writes a file");
    let state = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.vault.enabled = false;
    tune(&mut cfg);
    let mut agent = Agent::new(Parts {
        source: Replay {
            events: trace.events.into(),
            now: 0,
        },
        responders: Vec::new(),
        engine: Engine::new(trace.config),
        store: StoreWorker::start(ward_store::Store::open(state.path()).unwrap()),
        out: Output::start(Vec::new(), None),
        clock: Clock {
            base: chrono::Utc::now(),
        },
        cfg,
        vault: None,
        recorder: None,
        smb: None,
        metrics: Arc::new(ward_outputs::Metrics::new()),
    });
    let mut buf = Vec::new();
    while !agent.engine().suspicious(attacker) {
        assert!(!agent.source().unwrap().events.is_empty(), "no evidence");
        agent.poll_source(&mut buf);
    }
    assert!(!agent.engine().is_convicted(attacker));
    (agent, attacker, victim)
}

fn miss(kind: MissKind) -> Miss {
    Miss {
        message: "filesystem full".into(),
        kind,
    }
}

fn req(proc: ProcId, path: &Path) -> PermRequest {
    PermRequest::detached(proc, None, Some(path.to_path_buf()), None)
}

#[test]
fn no_copy_possible_and_evidence_denies() {
    let (agent, attacker, victim) = at_first_evidence(|_| {});
    let r = req(attacker, &victim);
    for kind in [MissKind::NoSpace, MissKind::CopyError] {
        assert_eq!(
            agent.decide_held(&r, CopyOutcome::Missed(&miss(kind))),
            Decision::Deny,
            "{kind:?}"
        );
    }
}

#[test]
fn copies_timeouts_and_policy_skips_still_allow_a_suspicious_lineage() {
    let (agent, attacker, victim) = at_first_evidence(|_| {});
    let r = req(attacker, &victim);
    assert_eq!(agent.decide_held(&r, CopyOutcome::Kept), Decision::Allow);
    assert_eq!(
        agent.decide_held(&r, CopyOutcome::TimedOut),
        Decision::Allow
    );
    assert_eq!(
        agent.decide_held(&r, CopyOutcome::Missed(&miss(MissKind::Skipped))),
        Decision::Allow
    );
}

#[test]
fn a_lineage_without_evidence_fails_open_on_a_full_disk() {
    let (agent, _, victim) = at_first_evidence(|_| {});
    // Another process (a benign editor filling the disk): no evidence.
    let benign = ProcId {
        pid: 4_000_123,
        start: 5,
    };
    assert!(!agent.engine().suspicious(benign));
    for kind in [MissKind::NoSpace, MissKind::CopyError] {
        assert_eq!(
            agent.decide_held(&req(benign, &victim), CopyOutcome::Missed(&miss(kind))),
            Decision::Allow
        );
    }
}

#[test]
fn trusted_programs_and_alert_only_paths_are_never_denied() {
    // The attacker's executable configured as a trusted program.
    let (agent, attacker, victim) = at_first_evidence(|c| c.trusted_programs = vec!["ward".into()]);
    assert_eq!(
        agent.decide_held(
            &req(attacker, &victim),
            CopyOutcome::Missed(&miss(MissKind::NoSpace))
        ),
        Decision::Allow
    );
    // The file under an alert-only path.
    let (agent, attacker, victim) = at_first_evidence(|c| {
        c.path.push(ward_config::PathRule {
            path: PathBuf::from("/tmp"),
            mode: ward_config::Mode::Alert,
        })
    });
    assert_eq!(
        agent.decide_held(
            &req(attacker, &victim),
            CopyOutcome::Missed(&miss(MissKind::NoSpace))
        ),
        Decision::Allow
    );
}
