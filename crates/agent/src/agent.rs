//! The agent's state and its public face: build it from its parts, feed it observations,
//! let it do its periodic work, stop it. The behaviour lives in the sibling modules:
//! [`crate::permit`] (the one decision per permission request), [`crate::preserve`]
//! (copies before damage), [`crate::contain`] (verdict → responder → incident) and
//! [`crate::plan`] (what to restore).

use crate::output::Output;
use crate::settings::Config;
use crate::store::StoreWorker;
use crate::vaultd::{Job, VaultWorker};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::SystemTime;
use std::time::{Duration, Instant};
use ward_engine::{Engine, ProcId};
use ward_response::Responder;
use ward_sensor::{EventSource, Observation, PermRequest};

/// Wall-clock conversion of event times (monotonic ns since the source's epoch).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Wall-clock time of event time 0.
    pub base: DateTime<Utc>,
}

impl Clock {
    /// Wall-clock time of event time `t_ns`.
    pub fn wall(&self, t_ns: u64) -> DateTime<Utc> {
        self.base + chrono::Duration::nanoseconds(t_ns as i64)
    }

    /// Re-anchor on the system's real-time clock (`now_ns`: the event time now). Event
    /// times are monotonic; the wall clock is stepped (NTP, a VM resumed or restored from
    /// a snapshot), and file timestamps follow the wall clock. Returns the correction.
    pub fn follow(&mut self, now_ns: u64) -> chrono::Duration {
        let base = Utc::now() - chrono::Duration::nanoseconds(now_ns as i64);
        let d = base - self.base;
        if d.num_microseconds().is_none_or(|us| us.abs() >= 1000) {
            self.base = base;
        }
        d
    }
}

/// Everything an [`Agent`] is made of.
pub struct Parts<S: EventSource> {
    /// Where observations come from.
    pub source: S,
    /// Responders, most specific first (the first that handles a subject acts).
    pub responders: Vec<Box<dyn Responder>>,
    /// The detection engine.
    pub engine: Engine,
    /// The incident store (its own thread).
    pub store: StoreWorker,
    /// The outputs (their own thread).
    pub out: Output,
    /// Event time → wall clock.
    pub clock: Clock,
    /// Settings.
    pub cfg: Config,
    /// The vault worker, if preservation is on.
    pub vault: Option<VaultWorker>,
    /// Where to record every event the engine sees (`--record`).
    pub recorder: Option<std::io::BufWriter<std::fs::File>>,
    /// Samba client attribution, if on.
    pub smb: Option<Smb>,
    /// Counters and histograms for `--metrics-addr` and `ward status`.
    pub metrics: std::sync::Arc<ward_outputs::Metrics>,
}

/// What the agent needs for Samba: who each smbd process serves, and the blocks the SMB
/// responder placed (to record them).
pub struct Smb {
    /// smbd process → client.
    pub attributor: std::sync::Arc<ward_smb::Attributor>,
    /// Blocks placed by the responder, drained after each containment.
    pub placed: std::sync::Arc<std::sync::Mutex<Vec<ward_response::smb::Placed>>>,
}

/// Counters of the agent itself.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Files preserved (copied or reflinked) into the vault.
    pub preserved: u64,
    /// Preservations that failed (vault full, file too large, I/O error).
    pub preserve_failed: u64,
    /// Opens allowed without a copy because the copy took too long.
    pub preserve_timeouts: u64,
    /// Write opens denied because no copy could be made (full filesystem, I/O error) and
    /// the lineage showed evidence.
    pub denied_unpreserved: u64,
    /// Permission requests answered allow / deny.
    pub allowed: u64,
    /// Permission requests denied.
    pub denied: u64,
    /// Incidents contained.
    pub incidents: u64,
    pub(crate) ticks: u64,
}

/// The running agent: an event source, the engine, preservation bookkeeping, responders,
/// the incident store and the outputs. Single-threaded by design: every permission request
/// is answered after the engine has seen everything that happened before it.
pub struct Agent<S: EventSource> {
    /// `None` once closed ([`Agent::close_source`]).
    pub(crate) source: Option<S>,
    pub(crate) responders: Vec<Box<dyn Responder>>,
    pub(crate) engine: Engine,
    pub(crate) store: StoreWorker,
    pub(crate) out: Output,
    pub(crate) clock: Clock,
    pub(crate) cfg: Config,
    pub(crate) vault: Option<VaultWorker>,
    pub(crate) recorder: Option<std::io::BufWriter<std::fs::File>>,
    pub(crate) smb: Option<Smb>,
    pub(crate) metrics: std::sync::Arc<ward_outputs::Metrics>,
    /// Event time of the observation being handled (for answer latencies).
    pub(crate) cur_time: u64,
    /// Convicted lineage roots under alert-only paths: reported, never stopped or denied.
    pub(crate) alerted: Vec<ProcId>,
    /// Losses already reported, per feed.
    pub(crate) losses: HashMap<&'static str, u64>,
    /// Opens held while their file is preserved: job id → (request, since).
    pub(crate) pending: HashMap<u64, (PermRequest, Instant)>,
    pub(crate) next_job: u64,
    /// Versions already copied: (dev, ino) → (size, mtime, for which lineage top, when the
    /// copy was made).
    pub(crate) preserved: HashMap<(u64, u64), (u64, i64, ProcId, Instant)>,
    /// Descriptors of files untrusted processes opened for reading (see `hold`).
    pub(crate) held: HashMap<(u64, u64), Held>,
    pub(crate) held_paths: HashMap<PathBuf, (u64, u64)>,
    pub(crate) held_order: VecDeque<((u64, u64), Instant)>,
    /// How many descriptors may be held (fits the open-file limit).
    pub(crate) max_held: usize,
    /// Held files deleted or replaced, by deleter, awaiting `settle_doomed`.
    /// Oldest first: expiry pops from the front (a bulk delete leaves thousands, and this
    /// is looked at after every batch of events).
    pub(crate) doomed: HashMap<ProcId, std::collections::VecDeque<(Held, Instant)>>,
    /// Lineage chains of the processes on whose behalf files were preserved.
    pub(crate) owners: HashMap<ProcId, Vec<ProcId>>,
    /// Files opened for writing by an untrusted process although no copy could be made
    /// (timeout, vault full, error): (dev, ino) → (path, writer's lineage chain, whether
    /// that lineage then wrote it). A contained lineage's written ones count as lost
    /// unless the vault holds them after all (see `plan_record`).
    pub(crate) unpreserved: HashMap<(u64, u64), (PathBuf, Vec<ProcId>, bool)>,
    /// Recent renames with the lineage chain of the renaming process.
    pub(crate) renames: VecDeque<(Vec<ProcId>, String, String)>,
    /// Restores to plan once the contained lineage's last events are in:
    /// (incident, root, contained_at, due).
    pub(crate) restores_due: Vec<DueRestore>,
    pub(crate) uptime: f64,
    pub(crate) stats: Stats,
}

pub(crate) const MAX_RENAMES: usize = 100_000;
/// A restore to start once the contained lineage's last queued events are in.
pub(crate) struct DueRestore {
    pub(crate) incident: String,
    pub(crate) root: ProcId,
    /// When every member had settled (see [`ward_response::settled`]): a file changed
    /// after this is someone else's edit, kept as a conflict.
    pub(crate) contained_at: SystemTime,
    /// Members not yet settled at containment (a frozen one blocked in a permission
    /// event), or every member when the responder resumes them to end them (an SMB
    /// cut-off): the restore waits for them, at most until `give_up`, and then counts
    /// changes from that moment.
    pub(crate) unsettled: Vec<u32>,
    /// `unsettled` must be gone, not only stopped (an SMB cut-off resumes them).
    pub(crate) until_gone: bool,
    /// Damaged files the verdict named (checked against what the vault can restore).
    pub(crate) damaged: Vec<String>,
    pub(crate) due: Instant,
    pub(crate) give_up: Instant,
}

/// How long containment waits, on the agent's thread, for the signalled members to
/// finish the system calls they were in (killed ones take microseconds).
pub(crate) const SETTLE_WAIT: Duration = Duration::from_millis(50);
/// How long a restore waits for members still unsettled after [`SETTLE_WAIT`].
pub(crate) const UNSETTLED_MAX: Duration = Duration::from_secs(5);

/// Descriptors held at most (the oldest are released first), if the open-file limit
/// allows; see [`raise_fd_limit`].
pub(crate) const MAX_HELD: usize = 50_000;
/// A held descriptor is released after this long (the read did not lead to a delete).
pub(crate) const HELD_FOR: Duration = Duration::from_secs(15 * 60);
/// How long a deleted held file waits for its deleter to look suspicious.
pub(crate) const DOOMED_GRACE: Duration = Duration::from_secs(10);

/// Raise the open-file limit as far as allowed and return how many descriptors may be
/// held for preservation (half of what is left after a reserve for everything else).
pub(crate) fn raise_fd_limit() -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let want = (2 * MAX_HELD + 4096) as u64;
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
    let soft = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(s, _)| s)
        .unwrap_or(1024);
    (soft.saturating_sub(1024) / 2).clamp(64, MAX_HELD as u64) as usize
}

/// A held descriptor of a file read by an untrusted process.
pub(crate) struct Held {
    pub(crate) fd: std::os::fd::OwnedFd,
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
}
pub(crate) const MAX_OWNERS: usize = 200_000;
/// Clock ticks per second of `/proc/PID/stat` start times (USER_HZ, 100 on Linux).
pub(crate) const CLK_TCK: f64 = 100.0;

pub(crate) fn uptime_secs() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

impl<S: EventSource> Agent<S> {
    /// Assemble an agent.
    pub fn new(p: Parts<S>) -> Agent<S> {
        Agent {
            source: Some(p.source),
            responders: p.responders,
            engine: p.engine,
            store: p.store,
            out: p.out,
            clock: p.clock,
            cfg: p.cfg,
            vault: p.vault,
            recorder: p.recorder,
            smb: p.smb,
            metrics: p.metrics,
            cur_time: 0,
            alerted: Vec::new(),
            losses: HashMap::new(),
            pending: HashMap::new(),
            next_job: 0,
            preserved: HashMap::new(),
            held: HashMap::new(),
            held_paths: HashMap::new(),
            held_order: VecDeque::new(),
            max_held: raise_fd_limit(),
            doomed: HashMap::new(),
            owners: HashMap::new(),
            unpreserved: HashMap::new(),
            renames: VecDeque::new(),
            restores_due: Vec::new(),
            uptime: uptime_secs(),
            stats: Stats::default(),
        }
    }

    /// The event source (`None` once closed).
    pub fn source(&self) -> Option<&S> {
        self.source.as_ref()
    }

    /// The event source, mutably (`None` once closed).
    pub fn source_mut(&mut self) -> Option<&mut S> {
        self.source.as_mut()
    }

    /// Close the source (for fanotify: remove the marks). Call [`Agent::stop_source`]
    /// first; afterwards the agent only finishes queued work.
    pub fn close_source(&mut self) -> Option<S> {
        self.source.take()
    }

    /// Monotonic time of the source (0 once closed).
    pub(crate) fn now(&self) -> u64 {
        self.source.as_ref().map_or(0, |s| s.now())
    }

    /// Whether `pid` must never be signalled.
    pub(crate) fn is_protected_pid(&self, pid: u32) -> bool {
        self.source.as_ref().is_none_or(|s| s.is_protected_pid(pid))
    }

    /// The engine (read-only).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The agent's own counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The outputs.
    pub fn output(&self) -> &Output {
        &self.out
    }

    /// The vault worker, if preservation is on.
    pub fn vault(&self) -> Option<&VaultWorker> {
        self.vault.as_ref()
    }

    /// Permission requests still held (waiting for a copy).
    pub fn held_requests(&self) -> usize {
        self.pending.len()
    }

    /// Read everything the source has now and handle it; returns how many observations
    /// were handled.
    pub fn poll_source(&mut self, buf: &mut Vec<Observation>) -> usize {
        if let Some(s) = self.source.as_mut() {
            if let Err(e) = s.read(buf) {
                tracing::error!("reading events: {e}");
            }
        }
        let n = buf.len();
        for o in buf.drain(..) {
            self.handle(o);
        }
        self.after_batch();
        n
    }

    /// Work due after each batch of observations: copies of deleted files of suspicious
    /// lineages, vault results, held opens that waited too long, restores.
    pub fn after_batch(&mut self) {
        self.settle_doomed();
        self.vault_results();
        self.expire_pending();
        self.start_due_restores();
    }

    /// Keep event times' wall-clock conversion on the system clock (call about once a
    /// second, live sources only: a replayed trace keeps its recorded clock).
    pub fn follow_wall_clock(&mut self) {
        let now = self.now();
        let d = self.clock.follow(now);
        if d.num_milliseconds().abs() >= 100 {
            tracing::warn!(
                "the system clock moved by {} ms against the monotonic clock: event times follow it",
                d.num_milliseconds()
            );
        }
    }

    /// Periodic work, about once a second.
    pub fn tick(&mut self) {
        if let Some(s) = self.source.as_mut() {
            s.tick();
        }
        self.report_losses();
        self.release_old_held();
        self.uptime = uptime_secs();
        if let Some(v) = &self.vault {
            if self.stats.ticks.is_multiple_of(60) {
                v.send(Job::Evict);
            }
        }
        self.stats.ticks += 1;
    }

    /// Say it (event, metrics, log) when a feed lost events since the last tick.
    fn report_losses(&mut self) {
        let now: Vec<(&'static str, u64)> =
            self.source.as_ref().map(|s| s.losses()).unwrap_or_default();
        for (source, total) in now {
            let before = self.losses.insert(source, total).unwrap_or(0);
            if total > before {
                let lost = total - before;
                tracing::warn!(
                    "{source}: {lost} event(s) lost ({total} since start): some activity was not seen"
                );
                if source == "fanotify" {
                    for _ in 0..lost {
                        self.metrics.queue_overflow();
                    }
                } else {
                    self.metrics.events_lost(lost);
                }
                self.out
                    .emit(ward_model::AgentEvent::EventsLost(ward_model::EventsLost {
                        source: source.to_string(),
                        lost,
                        total,
                    }));
            }
        }
    }

    /// Queue restores that did not finish before a restart.
    pub fn resume_restores(&mut self, unfinished: Vec<(String, String)>) {
        let Some(v) = &self.vault else { return };
        for (id, plan) in unfinished {
            match serde_json::from_str::<crate::plan::PlanRecord>(&plan) {
                Ok(p) => {
                    tracing::info!("resuming the restore of incident {id}");
                    v.send(Job::Restore {
                        plan: p.to_plan(),
                        damaged: p.damaged.clone(),
                    });
                }
                Err(e) => tracing::error!("restore plan of {id} is unreadable: {e}"),
            }
        }
    }

    /// Stop: allow every held request, then hand back the source (so its marks can be
    /// released before the slower shutdown work), and finish the vault's queued work.
    pub fn stop_source(&mut self) {
        let held: Vec<(PermRequest, Instant)> = self.pending.drain().map(|(_, h)| h).collect();
        for (p, since) in held {
            self.answer_after(p, true, since.elapsed());
        }
    }

    /// Finish: let queued vault work and restores end, report their results, flush the
    /// store and the recorder.
    pub fn finish(&mut self) {
        if let Some(v) = self.vault.as_mut() {
            v.stop();
        }
        if let Some(v) = self.vault.as_ref() {
            let done = v.results();
            for d in done {
                self.vault_done(d);
            }
        }
        if let Some(r) = self.recorder.as_mut() {
            use std::io::Write;
            let _ = r.flush();
        }
        self.store.call(|_| ());
    }

    /// Deliver every queued event to the outputs and stop them.
    pub fn close_output(&mut self) {
        self.out.close();
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;
    use chrono::{Duration, Utc};

    #[test]
    fn the_clock_follows_a_step_of_the_system_clock() {
        // As if the system clock had been stepped 5 s back since the base was taken.
        let mut c = Clock {
            base: Utc::now() + Duration::seconds(5),
        };
        let d = c.follow(0);
        assert!((d.num_milliseconds() + 5000).abs() < 100, "{d}");
        assert!((c.wall(0) - Utc::now()).num_milliseconds().abs() < 100);
        // Sub-millisecond jitter is not a step: the base stays.
        let base = c.base;
        let d = c.follow(0);
        if d.num_microseconds().unwrap().abs() < 1000 {
            assert_eq!(c.base, base);
        } else {
            assert_ne!(c.base, base, "a step of {d} is followed");
        }
    }
}
