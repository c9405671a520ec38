//! The agent without root: driven by a fake event source fed from recorded traces
//! (tests/traces), with a responder that records instead of signalling. Policy (which
//! permission requests are allowed or denied), containment decisions and the emitted
//! events are asserted here; the root integration tests (tests/ at the workspace root)
//! run the same agent on real kernels.

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use ward_agent::output::{Collect, Output};
use ward_agent::settings::Config;
use ward_agent::store::StoreWorker;
use ward_agent::trace::Trace;
use ward_agent::{Agent, Clock, Parts};
use ward_engine::{Engine, Event, Op, ProcId};
use ward_model::{Action, AgentEvent};
use ward_response::{Containment, Responder, Subject};
use ward_sensor::{EventSource, Observation, PermRequest};

/// Answers given, in order: (opener, path, allowed).
type Answers = Arc<Mutex<Vec<(ProcId, Option<PathBuf>, bool)>>>;

/// Replays trace events; every open carries a permission request.
struct FakeSource {
    events: VecDeque<Event>,
    answers: Answers,
    now: u64,
    lost: u64,
}

impl EventSource for FakeSource {
    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        Vec::new()
    }
    fn read(&mut self, out: &mut Vec<Observation>) -> io::Result<()> {
        // One event per read, as a kernel queue delivering them one at a time would.
        if let Some(ev) = self.events.pop_front() {
            self.now = ev.time;
            let perm = match &ev.op {
                Op::Open { path, .. } => Some(PermRequest::detached(
                    ev.proc,
                    None,
                    Some(PathBuf::from(path)),
                    None,
                )),
                _ => None,
            };
            out.push(Observation {
                event: ev,
                perm,
                deferred: None,
            });
        }
        Ok(())
    }
    fn answer(&mut self, req: PermRequest, allow: bool) {
        self.answers
            .lock()
            .unwrap()
            .push((req.proc, req.path.clone(), allow));
    }
    fn now(&self) -> u64 {
        self.now
    }
    fn is_protected_pid(&self, pid: u32) -> bool {
        pid <= 1
    }
    fn losses(&self) -> Vec<(&'static str, u64)> {
        vec![("fanotify", self.lost)]
    }
}

/// Records what it was asked to contain.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Subject>>>);

impl Responder for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn handles(&self, _: &Subject) -> bool {
        true
    }
    fn freeze(&mut self, s: &Subject) -> Containment {
        self.0.lock().unwrap().push(s.clone());
        Containment {
            frozen: vec![s.root.pid],
            ..Default::default()
        }
    }
    fn finish(&mut self, _: &Subject, c: &mut Containment, kill: bool) -> Action {
        if kill {
            c.killed = c.frozen.clone();
            Action::Killed
        } else {
            Action::Frozen
        }
    }
}

struct Run {
    answers: Vec<(ProcId, Option<PathBuf>, bool)>,
    contained: Vec<Subject>,
    events: Vec<AgentEvent>,
}

fn run_trace(name: &str, kill: bool) -> Run {
    run_trace_with(name, |c| c.kill = kill)
}

fn run_trace_with(name: &str, tune: impl FnOnce(&mut Config)) -> Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/traces")
        .join(format!("{name}.jsonl.gz"));
    let trace = Trace::read(&path).unwrap();
    let answers: Answers = Arc::default();
    let recorder = Recorder::default();
    let collected = Collect::default();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.vault.enabled = false;
    tune(&mut cfg);
    let mut agent = Agent::new(Parts {
        source: FakeSource {
            events: trace.events.into(),
            answers: answers.clone(),
            now: 0,
            lost: 0,
        },
        responders: vec![Box::new(recorder.clone())],
        engine: Engine::new(trace.config),
        store: StoreWorker::start(ward_store::Store::open(state.path()).unwrap()),
        out: Output::start(vec![Box::new(collected.clone())], None),
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
    while !agent.source().unwrap().events.is_empty() {
        agent.poll_source(&mut buf);
    }
    agent.stop_source();
    agent.finish();
    agent.close_output();
    let events = collected.0.lock().unwrap().clone();
    let answers = answers.lock().unwrap().clone();
    let contained = recorder.0.lock().unwrap().clone();
    Run {
        answers,
        contained,
        events,
    }
}

fn incidents(r: &Run) -> Vec<&ward_model::Incident> {
    r.events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Incident(i) => Some(i),
            _ => None,
        })
        .collect()
}

#[test]
fn attack_trace_is_contained_once_and_later_opens_are_denied() {
    let r = run_trace("inplace", true);
    let inc = incidents(&r);
    assert_eq!(inc.len(), 1, "one incident: {:?}", r.events);
    let inc = inc[0];
    assert_eq!(inc.action, Action::Killed);
    assert!(inc.files_damaged >= 2 && inc.files_damaged <= 5, "{inc:?}");
    assert!(
        inc.indicators.iter().any(|i| i == "content-encrypted"),
        "{inc:?}"
    );
    assert_eq!(r.contained.len(), 1);
    assert_eq!(r.contained[0].root.pid, inc.pid);
    assert!(r.contained[0].client.is_none());
    // Every open is answered exactly once; after the verdict the lineage's opens are
    // denied, before it every open was allowed.
    let first_deny = r.answers.iter().position(|a| !a.2);
    if let Some(i) = first_deny {
        assert!(r.answers[..i].iter().all(|a| a.2));
        assert!(r.answers[i..].iter().all(|a| !a.2 || a.0.pid != inc.pid));
    }
    assert!(r.answers.len() >= inc.files_damaged);
}

#[test]
fn kill_false_leaves_the_lineage_frozen() {
    let r = run_trace("openssl", false);
    let inc = incidents(&r);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].action, Action::Frozen);
}

#[test]
fn benign_traces_raise_nothing_and_every_open_is_allowed() {
    for name in ["tar", "gzip", "cp", "rsync", "git", "sqlite", "logrotate"] {
        let r = run_trace(name, true);
        assert!(incidents(&r).is_empty(), "{name}: {:?}", r.events);
        assert!(r.contained.is_empty(), "{name}");
        assert!(r.answers.iter().all(|a| a.2), "{name}: a denied open");
    }
}

#[test]
fn incident_is_recorded_before_it_is_announced() {
    // The store and the outputs are separate threads: the incident line comes after the
    // store has it (so `ward incidents` never lags the JSON line).
    let r = run_trace("fork-per-file", true);
    let inc = incidents(&r);
    assert_eq!(inc.len(), 1);
    assert!(!inc[0].damaged.is_empty());
    assert_eq!(inc[0].restore, ward_model::RestoreStatus::None);
}

#[test]
fn alert_only_paths_report_but_never_stop_or_deny() {
    let r = run_trace_with("inplace", |c| c.mode = ward_agent::settings::Mode::Alert);
    let inc = incidents(&r);
    assert_eq!(inc.len(), 1, "{:?}", r.events);
    assert_eq!(inc[0].action, Action::Alerted);
    assert!(r.contained.is_empty(), "a responder ran in alert mode");
    assert!(
        r.answers.iter().all(|a| a.2),
        "an open was denied in alert mode"
    );
}

#[test]
fn lost_events_are_reported_once_each() {
    let collected = Collect::default();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.vault.enabled = false;
    let mut agent = Agent::new(Parts {
        source: FakeSource {
            events: VecDeque::new(),
            answers: Answers::default(),
            now: 0,
            lost: 2,
        },
        responders: vec![],
        engine: Engine::new(Default::default()),
        store: StoreWorker::start(ward_store::Store::open(state.path()).unwrap()),
        out: Output::start(vec![Box::new(collected.clone())], None),
        clock: Clock {
            base: chrono::Utc::now(),
        },
        cfg,
        vault: None,
        recorder: None,
        smb: None,
        metrics: Arc::new(ward_outputs::Metrics::new()),
    });
    agent.tick();
    agent.tick();
    agent.source_mut().unwrap().lost = 5;
    agent.tick();
    agent.close_output();
    let lost: Vec<(u64, u64)> = collected
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            AgentEvent::EventsLost(l) => Some((l.lost, l.total)),
            _ => None,
        })
        .collect();
    assert_eq!(lost, vec![(2, 2), (3, 5)]);
}
