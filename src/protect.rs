//! `ward protect`: the agent's main loop.
//!
//! sensor → engine → (verdict) → response → incident store → outputs, on one thread, so
//! that the answer to each permission event comes after the engine has seen everything
//! that happened before it. Slow work (stdout) is on its own thread.

use crate::config::Config;
use crate::output::JsonOut;
use crate::vaultd::{Done, Job, PlanRecord, VaultWorker, PRESERVE_TIMEOUT};
use crate::{decoys, ExitError};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::SystemTime;
use std::time::{Duration, Instant};
use ward_engine::{Engine, Op, ProcId, Verdict};
use ward_response::Target;
use ward_sensor::PermRequest;
use ward_sensor::{Observation, Sensor, SensorOptions};
use ward_store::{Incident, Store};
use ward_vault::Owner;

/// Options of `ward protect`.
pub struct ProtectOptions {
    pub paths: Vec<PathBuf>,
    pub state_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub json: bool,
    pub record: Option<PathBuf>,
}

/// Check and canonicalise the protected paths.
pub fn check_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ExitError> {
    if paths.is_empty() {
        return Err(ExitError::usage("give at least one PATH to protect"));
    }
    let mut out = Vec::new();
    for p in paths {
        let c = std::fs::canonicalize(p).map_err(|e| {
            ExitError::usage(format!(
                "cannot protect {}: {e}; give an existing directory",
                p.display()
            ))
        })?;
        let md = std::fs::metadata(&c)
            .map_err(|e| ExitError::usage(format!("cannot read {}: {e}", c.display())))?;
        if !md.is_dir() {
            return Err(ExitError::usage(format!(
                "{} is not a directory; ward protects directory trees",
                c.display()
            )));
        }
        if c == Path::new("/") {
            return Err(ExitError::usage(
                "refusing to protect / (the whole root filesystem); point ward at the data \
                 directories instead, e.g. /srv/samba or /var/lib/pacs",
            ));
        }
        let fs = ward_sys::fs::statfs(&c).map_err(|e| {
            ExitError::usage(format!("cannot stat filesystem of {}: {e}", c.display()))
        })?;
        let name = ward_sys::fs::fs_name(fs.magic);
        if matches!(name, "nfs" | "cifs" | "fuse") {
            return Err(ExitError::usage(format!(
                "{} is on {name}, a network/user-space filesystem whose writes happen on \
                 another machine; run ward on the server that holds the disk",
                c.display()
            )));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

struct Watchdog {
    child: Child,
    stdin: ChildStdin,
    last: Instant,
}

impl Watchdog {
    fn spawn() -> Option<Watchdog> {
        let exe = std::env::current_exe().ok()?;
        let mut child = Command::new(exe)
            .arg("__watchdog")
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                tracing::warn!(
                    "cannot start the watchdog ({e}): a stopped ward could stall file access"
                )
            })
            .ok()?;
        let stdin = child.stdin.take()?;
        let fd = stdin.as_fd().as_raw_fd();
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Some(Watchdog {
            child,
            stdin,
            last: Instant::now(),
        })
    }

    fn beat(&mut self) {
        if self.last.elapsed() >= Duration::from_millis(100) {
            let _ = self.stdin.write(b".");
            self.last = Instant::now();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wall-clock conversion of sensor times.
struct Clock {
    base: DateTime<Utc>,
}

impl Clock {
    fn wall(&self, t_ns: u64) -> DateTime<Utc> {
        self.base + chrono::Duration::nanoseconds(t_ns as i64)
    }
}

pub fn run(opts: ProtectOptions) -> Result<(), ExitError> {
    let cfg = Config::load(opts.config.as_deref()).map_err(ExitError::usage)?;
    let paths = check_paths(&opts.paths)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(ExitError::usage(
            "ward protect must run as root (fanotify needs CAP_SYS_ADMIN): run it with sudo \
             or as a systemd service",
        ));
    }
    let state_dir = absolute(&opts.state_dir);
    let store =
        StoreWorker::start(Store::open(&state_dir).map_err(|e| ExitError::usage(e.to_string()))?);
    let out = JsonOut::new(opts.json);
    let mut recorder = match &opts.record {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| ExitError::usage(format!("cannot create trace file {}: {e}", p.display())),
        )?)),
        None => None,
    };

    let (sig_r, sig_w) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| ExitError::runtime(format!("signal pipe: {e}")))?;
    for s in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::low_level::pipe::register(s, sig_w.try_clone().expect("clone"))
            .map_err(|e| ExitError::runtime(format!("installing signal handlers: {e}")))?;
    }
    sig_r.set_nonblocking(true).ok();

    let mut watchdog = Watchdog::spawn();

    // The vault is opened before the sensor starts: once the marks are placed, ward's
    // own file I/O on a protected filesystem must come from other threads.
    let vault = if cfg.vault {
        let limits = ward_vault::Limits {
            max_bytes: cfg.vault_max_mib << 20,
            retention: Duration::from_secs(cfg.vault_retention_hours * 3600),
            max_file_bytes: cfg.vault_max_file_mib << 20,
            ..Default::default()
        };
        match VaultWorker::start(&paths, limits) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!("vault unavailable ({e}): damaged files will NOT be restored");
                None
            }
        }
    } else {
        None
    };
    // Restores that did not finish before a restart (queued now, run once protection is up).
    let unfinished = if vault.is_some() {
        store.call(|s| s.unfinished_plans()).unwrap_or_else(|e| {
            tracing::error!("reading unfinished restores: {e}");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let placed = if cfg.decoys {
        decoys::place(&paths)
    } else {
        Vec::new()
    };
    let vault_dirs: Vec<PathBuf> = vault
        .as_ref()
        .map(|v| v.dirs.values().cloned().collect())
        .unwrap_or_default();
    let mut exclude = vec![state_dir.clone()];
    exclude.extend(vault_dirs.iter().cloned());
    if let Some(r) = &opts.record {
        exclude.push(absolute(r));
    }
    let sensor_result = Sensor::new(SensorOptions {
        paths: paths.clone(),
        exclude,
        boundary_exes: cfg.boundary_programs.clone(),
        deny_write: vault_dirs.clone(),
    });
    let mut sensor = match sensor_result {
        Ok(s) => s,
        Err(e) => {
            decoys::remove(&placed);
            return Err(match e {
                ward_sensor::SensorError::Io(e) => ExitError::runtime(e.to_string()),
                other => ExitError::usage(other.to_string()),
            });
        }
    };
    let caps = sensor.capabilities().clone();
    let engine = Engine::new(ward_engine::Config {
        damage_threshold: cfg.damage_threshold,
        decoys: placed
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        ..Default::default()
    });
    if let Some(r) = recorder.as_mut() {
        let header = json!({"ward_trace": crate::replay::TRACE_VERSION, "config": engine.config()});
        let _ = serde_json::to_writer(&mut *r, &header);
        let _ = r.write_all(b"\n");
    }
    let clock = Clock {
        base: Utc::now() - chrono::Duration::from_std(sensor.epoch().elapsed()).unwrap_or_default(),
    };

    let mut warnings = Vec::new();
    if !caps.name_events {
        warnings.push("name events unavailable: deletes and renames are not seen");
    }
    if !caps.proc_connector {
        warnings
            .push("process connector unavailable: parents of short-lived processes may be missed");
    }
    if vault.is_none() {
        warnings.push("vault not active: files damaged before containment are not restored");
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "protecting {} ({}); open permission events: {}, name events: {}, process connector: {}; \
         decoys: {}; incidents in {}",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        caps.filesystems.join(", "),
        on(caps.open_perm),
        on(caps.name_events),
        on(caps.proc_connector),
        placed.len(),
        state_dir.display()
    );
    out.emit(json!({
        "type": "ready",
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "paths": paths,
        "state_dir": state_dir,
        "filesystems": caps.filesystems,
        "protections": {
            "open_perm": caps.open_perm,
            "name_events": caps.name_events,
            "rename_event": caps.rename_event,
            "proc_connector": caps.proc_connector,
            "decoys": placed.len(),
            "vault": vault.is_some(),
            "watchdog": watchdog.is_some(),
        },
        "warnings": warnings,
    }));

    if let Some(v) = &vault {
        for (id, plan) in unfinished {
            match serde_json::from_str::<PlanRecord>(&plan) {
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
    let mut g = Guard {
        engine,
        store,
        out,
        clock,
        cfg,
        vault,
        pending: HashMap::new(),
        next_job: 0,
        preserved: HashMap::new(),
        held: HashMap::new(),
        held_paths: HashMap::new(),
        held_order: VecDeque::new(),
        max_held: raise_fd_limit(),
        doomed: HashMap::new(),
        owners: HashMap::new(),
        renames: VecDeque::new(),
        restores_due: Vec::new(),
        uptime: uptime_secs(),
        stats: Stats::default(),
    };
    let mut obs: Vec<Observation> = Vec::new();
    let mut last_tick = Instant::now();
    // Fault injection for the watchdog test: block the main loop at the first event, as a
    // deadlock would. Only read from the environment, never from config.
    let wedge = std::env::var_os("WARD_FAULT").is_some_and(|v| v == "wedge");
    let result = loop {
        if let Some(w) = watchdog.as_mut() {
            w.beat();
        }
        // Wait for events (or a signal, a vault result, or the 200 ms heartbeat).
        let ready = {
            let mut fds: Vec<nix::poll::PollFd> = sensor
                .fds()
                .into_iter()
                .map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN))
                .collect();
            if let Some(v) = &g.vault {
                fds.push(nix::poll::PollFd::new(
                    v.wake.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                ));
            }
            fds.push(nix::poll::PollFd::new(
                sig_r.as_fd(),
                nix::poll::PollFlags::POLLIN,
            ));
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)) {
                Ok(_) => fds
                    .last()
                    .and_then(|f| f.revents())
                    .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLIN)),
                Err(nix::errno::Errno::EINTR) => false,
                Err(e) => break Err(ExitError::runtime(format!("poll: {e}"))),
            }
        };
        if ready {
            break Ok(());
        }
        if let Err(e) = sensor.read(&mut obs) {
            tracing::error!("reading events: {e}");
        }
        if wedge && !obs.is_empty() {
            tracing::warn!("WARD_FAULT=wedge: blocking the main loop");
            loop {
                std::thread::park();
            }
        }
        for o in obs.drain(..) {
            g.observe(o, &mut sensor, recorder.as_mut());
        }
        g.settle_doomed();
        g.vault_results(&mut sensor);
        g.expire_pending(&mut sensor);
        g.start_due_restores();
        if last_tick.elapsed() >= Duration::from_secs(1) {
            sensor.tick();
            g.release_old_held();
            g.uptime = uptime_secs();
            if let Some(v) = &g.vault {
                if g.stats.ticks.is_multiple_of(60) {
                    v.send(Job::Evict);
                }
            }
            g.stats.ticks += 1;
            last_tick = Instant::now();
        }
    };
    // Answer what is still held, then release the marks (pending events are allowed).
    for (_, (p, _)) in g.pending.drain() {
        sensor.answer(p, true);
    }
    let ss = sensor.stats().clone();
    drop(sensor);
    // No marks are left, so nothing can wait on ward any more: the watchdog's job is
    // done (the rest of the shutdown may take a while on a loaded machine).
    drop(watchdog.take());
    // Let restores in progress finish (they are resumed after a restart if killed).
    if let Some(v) = g.vault.as_mut() {
        v.stop();
        for d in v.results() {
            g.vault_done(d);
        }
    }
    decoys::remove(&placed);
    if let Some(mut r) = recorder {
        let _ = r.flush();
    }
    let st = g.engine.stats();
    tracing::info!(
        "stopping: {} events, {} files and {} processes tracked, {} incidents; opens: {} allowed, {} denied; vault: {} preserved, {} failed, {} timed out",
        st.events,
        st.files_tracked,
        st.processes_tracked,
        st.verdicts,
        ss.perm_allowed,
        ss.perm_denied,
        g.stats.preserved,
        g.stats.preserve_failed,
        g.stats.preserve_timeouts,
    );
    if ss.overflows + ss.errors + ss.proc_events_lost > 0 {
        tracing::warn!(
            "while running: {} fanotify queue overflow(s), {} event error(s), {} process-event loss(es): some activity was not seen",
            ss.overflows,
            ss.errors,
            ss.proc_events_lost
        );
    }
    // Everything recorded (and announced) before the last line.
    g.store.call(|_| ());
    g.out.emit(json!({"type": "stopped"}));
    g.out.close();
    result
}

#[derive(Default)]
struct Stats {
    preserved: u64,
    preserve_failed: u64,
    preserve_timeouts: u64,
    ticks: u64,
}

/// The running agent: everything the main loop owns besides the sensor.
struct Guard {
    engine: Engine,
    store: StoreWorker,
    out: JsonOut,
    clock: Clock,
    cfg: Config,
    vault: Option<VaultWorker>,
    /// Opens held while their file is preserved: job id → (request, since).
    pending: HashMap<u64, (PermRequest, Instant)>,
    next_job: u64,
    /// Versions already copied: (dev, ino) → (size, mtime, for which lineage top).
    preserved: HashMap<(u64, u64), (u64, i64, ProcId)>,
    /// Descriptors of files untrusted processes opened for reading (see `hold`).
    held: HashMap<(u64, u64), Held>,
    held_paths: HashMap<PathBuf, (u64, u64)>,
    held_order: VecDeque<((u64, u64), Instant)>,
    /// How many descriptors may be held (fits the open-file limit).
    max_held: usize,
    /// Held files deleted or replaced, by deleter, awaiting `settle_doomed`.
    doomed: HashMap<ProcId, Vec<(Held, Instant)>>,
    /// Lineage chains of the processes on whose behalf files were preserved.
    owners: HashMap<ProcId, Vec<ProcId>>,
    /// Recent renames with the lineage chain of the renaming process.
    renames: VecDeque<(Vec<ProcId>, String, String)>,
    /// Restores to plan once the contained lineage's last events are in:
    /// (incident, root, contained_at, due).
    restores_due: Vec<DueRestore>,
    uptime: f64,
    stats: Stats,
}

const MAX_RENAMES: usize = 100_000;
/// A restore to start once the contained lineage's last queued events are in.
struct DueRestore {
    incident: String,
    root: ProcId,
    contained_at: SystemTime,
    /// Damaged files the verdict named (checked against what the vault can restore).
    damaged: Vec<String>,
    due: Instant,
}

/// Descriptors held at most (the oldest are released first), if the open-file limit
/// allows; see [`raise_fd_limit`].
const MAX_HELD: usize = 50_000;
/// A held descriptor is released after this long (the read did not lead to a delete).
const HELD_FOR: Duration = Duration::from_secs(15 * 60);
/// How long a deleted held file waits for its deleter to look suspicious.
const DOOMED_GRACE: Duration = Duration::from_secs(10);

/// Raise the open-file limit as far as allowed and return how many descriptors may be
/// held for preservation (half of what is left after a reserve for everything else).
fn raise_fd_limit() -> usize {
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
struct Held {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
    dev: u64,
}
const MAX_OWNERS: usize = 200_000;
/// Clock ticks per second of `/proc/PID/stat` start times (USER_HZ, 100 on Linux).
const CLK_TCK: f64 = 100.0;

fn uptime_secs() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

impl Guard {
    fn observe(
        &mut self,
        mut o: Observation,
        sensor: &mut Sensor,
        recorder: Option<&mut std::io::BufWriter<std::fs::File>>,
    ) {
        if o.deferred.is_some() {
            // A read-only open: answer first (a read cannot damage), sample after.
            if let Some(p) = o.perm.take() {
                self.answer_read(p, sensor);
            }
            o.fill_sample();
        }
        if let Some(r) = recorder {
            let _ = serde_json::to_writer(&mut *r, &o.event);
            let _ = r.write_all(b"\n");
        }
        match &o.event.op {
            Op::Rename { from, to, .. } => {
                if self.renames.len() >= MAX_RENAMES {
                    self.renames.pop_front();
                }
                self.renames.push_back((
                    self.engine.lineage(o.event.proc),
                    from.clone(),
                    to.clone(),
                ));
                // A held file replaced by the rename is gone: keep its content.
                self.release_held(Path::new(to), o.event.proc);
                if let Some(key) = self.held_paths.remove(Path::new(from)) {
                    if let Some(h) = self.held.get_mut(&key) {
                        h.path = PathBuf::from(to);
                        self.held_paths.insert(PathBuf::from(to), key);
                    }
                }
            }
            Op::Delete { path, .. } => self.release_held(Path::new(path), o.event.proc),
            _ => {}
        }
        if let Some(v) = self.engine.observe(&o.event) {
            self.contain(&v, sensor);
        }
        let Some(p) = o.perm else { return };
        if self.engine.is_convicted(p.proc) {
            return sensor.answer(p, false);
        }
        let write = match &o.event.op {
            Op::Open { write, .. } => *write != Some(false),
            _ => return sensor.answer(p, true),
        };
        if !write {
            return self.answer_read(p, sensor);
        }
        if !self.needs_preservation(&p, true) {
            return sensor.answer(p, true);
        }
        // Held until the vault has the copy (see `vault_results`, `expire_pending`).
        match self.copy_job(&p) {
            Some((id, job)) => {
                if let Some(v) = &self.vault {
                    v.send(job);
                }
                self.pending.insert(id, (p, Instant::now()));
            }
            None => sensor.answer(p, true),
        }
    }

    /// Answer a read-only open. For an untrusted reader, hold a descriptor of the file
    /// first (no copy, no link: a link would change the file's link count, which tools
    /// such as gzip refuse to work with). If the file is then deleted or renamed over, its
    /// content is copied from this descriptor.
    fn answer_read(&mut self, p: PermRequest, sensor: &mut Sensor) {
        if self.engine.is_convicted(p.proc) {
            return sensor.answer(p, false);
        }
        if self.needs_preservation(&p, false) {
            self.hold(&p);
        }
        sensor.answer(p, true);
    }

    /// Does this open need the file's current content kept? Untrusted opener, non-empty
    /// file on a filesystem with a vault, and not already kept for this lineage.
    fn needs_preservation(&mut self, p: &PermRequest, write: bool) -> bool {
        let Some(vault) = self.vault.as_ref().filter(|v| v.alive()) else {
            return false;
        };
        let Some(st) = p.stat else { return false };
        if st.size == 0 || !vault.dirs.contains_key(&st.dev) || self.trusted(p.proc) {
            return false;
        }
        if !write {
            return !self.held.contains_key(&(st.dev, st.ino));
        }
        // Each version once per lineage.
        let top = self.lineage_top(p.proc);
        !matches!(
            self.preserved.get(&(st.dev, st.ino)),
            Some(&(size, mtime, who)) if size == st.size && mtime == st.mtime_ns && who == top
        )
    }

    /// The topmost process of `proc`'s lineage (below the boundary).
    fn lineage_top(&self, proc: ProcId) -> ProcId {
        self.engine.lineage(proc).last().copied().unwrap_or(proc)
    }

    fn remember_owner(&mut self, proc: ProcId) {
        if self.owners.len() >= MAX_OWNERS {
            self.owners.clear();
        }
        if !self.owners.contains_key(&proc) {
            let chain = self.engine.lineage(proc);
            self.owners.insert(proc, chain);
        }
    }

    /// A content copy (reflink where possible) before a write-intent open proceeds.
    fn copy_job(&mut self, p: &PermRequest) -> Option<(u64, Job)> {
        let st = p.stat?;
        let path = p.path.clone()?;
        let fd = p.dup_fd().ok()?;
        self.remember_owner(p.proc);
        let id = self.next_job;
        self.next_job += 1;
        let owner = Owner {
            pid: p.proc.pid,
            start: p.proc.start,
        };
        Some((
            id,
            Job::Preserve {
                id,
                dev: st.dev,
                fd,
                path,
                owner,
            },
        ))
    }

    /// Keep a descriptor of a file an untrusted process opened for reading.
    fn hold(&mut self, p: &PermRequest) {
        let (Some(st), Some(path)) = (p.stat, p.path.clone()) else {
            return;
        };
        let Ok(fd) = p.dup_fd() else { return };
        while self.held.len() >= self.max_held {
            match self.held_order.pop_front() {
                Some((k, _)) => {
                    if let Some(h) = self.held.remove(&k) {
                        self.held_paths.remove(&h.path);
                    }
                }
                None => break,
            }
        }
        let key = (st.dev, st.ino);
        self.held_paths.insert(path.clone(), key);
        self.held_order.push_back((key, Instant::now()));
        self.held.insert(
            key,
            Held {
                fd,
                path,
                dev: st.dev,
            },
        );
    }

    /// Let go of descriptors held longer than [`HELD_FOR`].
    fn release_old_held(&mut self) {
        while let Some(&(k, t)) = self.held_order.front() {
            if t.elapsed() < HELD_FOR {
                break;
            }
            self.held_order.pop_front();
            if let Some(h) = self.held.remove(&k) {
                self.held_paths.remove(&h.path);
            }
        }
    }

    /// The file at `path` is being deleted or replaced: if ward holds it, copy its
    /// content into the vault on behalf of `by` (the deleter).
    fn release_held(&mut self, path: &Path, by: ProcId) {
        let Some(key) = self.held_paths.remove(path) else {
            return;
        };
        let Some(h) = self.held.remove(&key) else {
            return;
        };
        if self.trusted(by) {
            return;
        }
        // Decided in `settle_doomed`, once the deleter's other events are in.
        self.doomed.entry(by).or_default().push((h, Instant::now()));
    }

    /// Held files that were deleted or replaced: copy them into the vault if the deleter's
    /// lineage is suspicious (it wrote encrypted-looking files, was convicted, ...); let
    /// them go after [`DOOMED_GRACE`] otherwise (gzip, rm -rf, editors: no copy cost).
    /// The decision waits because a delete is often seen before the encrypted copy that
    /// preceded it (the two come from different fanotify queues).
    fn settle_doomed(&mut self) {
        if self.doomed.is_empty() {
            return;
        }
        let deleters: Vec<ProcId> = self.doomed.keys().copied().collect();
        for by in deleters {
            if self.engine.suspicious(by) {
                let files = self.doomed.remove(&by).unwrap_or_default();
                self.remember_owner(by);
                for (h, _) in files {
                    let id = self.next_job;
                    self.next_job += 1;
                    if let Some(v) = &self.vault {
                        v.send(Job::Preserve {
                            id,
                            dev: h.dev,
                            fd: h.fd,
                            path: h.path,
                            owner: Owner {
                                pid: by.pid,
                                start: by.start,
                            },
                        });
                    }
                }
            } else if let Some(files) = self.doomed.get_mut(&by) {
                files.retain(|(_, t)| t.elapsed() < DOOMED_GRACE);
                if files.is_empty() {
                    self.doomed.remove(&by);
                }
            }
        }
    }

    /// Trusted processes are spared preservation (never detection): configured programs
    /// (package managers), and long-running processes whose lineage shows no evidence.
    fn trusted(&self, proc: ProcId) -> bool {
        if let Some(info) = self.engine.process(proc) {
            let base = info.exe.rsplit('/').next().unwrap_or(&info.exe);
            if self.cfg.trusted_programs.iter().any(|t| t == base) {
                return !self.engine.suspicious(proc);
            }
        }
        if self.cfg.trust_after_secs == 0 || proc.start == 0 {
            return false;
        }
        let age = self.uptime - proc.start as f64 / CLK_TCK;
        age >= self.cfg.trust_after_secs as f64 && !self.engine.suspicious(proc)
    }

    fn vault_results(&mut self, sensor: &mut Sensor) {
        let Some(v) = &self.vault else { return };
        for d in v.results() {
            if let Done::Preserved { id, result } = &d {
                if let Some((p, _)) = self.pending.remove(id) {
                    match result {
                        Ok(_) => {
                            self.stats.preserved += 1;
                            if let Some(st) = p.stat {
                                if self.preserved.len() >= MAX_OWNERS {
                                    self.preserved.clear();
                                }
                                let top = self.lineage_top(p.proc);
                                self.preserved
                                    .insert((st.dev, st.ino), (st.size, st.mtime_ns, top));
                            }
                        }
                        Err(e) => {
                            self.stats.preserve_failed += 1;
                            tracing::warn!(
                                "could not preserve {}: {e}",
                                p.path.as_deref().unwrap_or(Path::new("?")).display()
                            );
                        }
                    }
                    let allow = !self.engine.is_convicted(p.proc);
                    sensor.answer(p, allow);
                } else {
                    // The copy of a held file that was deleted or replaced.
                    match result {
                        Ok(_) => self.stats.preserved += 1,
                        Err(e) => {
                            self.stats.preserve_failed += 1;
                            tracing::warn!("could not keep a deleted or replaced file: {e}");
                        }
                    }
                }
                continue;
            }
            self.vault_done(d);
        }
    }

    fn vault_done(&mut self, d: Done) {
        let Done::Restored { incident, result } = d else {
            return;
        };
        match result {
            Ok(r) => {
                let status = if r.files_lost == 0 { "done" } else { "partial" };
                tracing::info!(
                    "incident {incident}: restored {} file(s), {} lost, {} quarantined, {} conflict(s) kept side by side",
                    r.files_restored,
                    r.files_lost,
                    r.files_quarantined,
                    r.conflicts.len()
                );
                for (path, what) in &r.details {
                    tracing::debug!("  {}: {what}", path.display());
                }
                let id = incident.clone();
                self.store.run(move |s| {
                    if let Err(e) = s.finish_restore(&id, status) {
                        tracing::error!("recording the restore of {id}: {e}");
                    }
                });
                self.out.emit(json!({
                    "type": "restored",
                    "id": incident,
                    "files_restored": r.files_restored,
                    "files_lost": r.files_lost,
                    "files_quarantined": r.files_quarantined,
                    "conflicts": r.conflicts,
                    "already_ok": r.already_ok,
                }));
            }
            Err(e) => {
                tracing::error!(
                    "restore of incident {incident} failed: {e}; run `ward restore {incident}` to retry"
                );
            }
        }
    }

    /// Fail open: an opener held longer than the timeout is allowed.
    fn expire_pending(&mut self, sensor: &mut Sensor) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, t))| t.elapsed() >= PRESERVE_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some((p, _)) = self.pending.remove(&id) {
                self.stats.preserve_timeouts += 1;
                tracing::warn!(
                    "preserving {} took longer than {:?}: allowing the open without a copy",
                    p.path.as_deref().unwrap_or(Path::new("?")).display(),
                    PRESERVE_TIMEOUT
                );
                let allow = !self.engine.is_convicted(p.proc);
                sensor.answer(p, allow);
            }
        }
    }

    /// What to restore for a contained lineage: the processes on whose behalf files were
    /// preserved, its renames and the files it created.
    fn plan_record(
        &self,
        incident: &str,
        root: ProcId,
        contained_at: SystemTime,
        damaged: &[String],
    ) -> PlanRecord {
        let in_lineage = |chain: &Vec<ProcId>| chain.contains(&root);
        PlanRecord {
            incident: incident.to_string(),
            damaged: damaged
                .iter()
                .chain(self.engine.damaged_since_verdict(root))
                .map(PathBuf::from)
                .collect(),
            vaults: self
                .vault
                .as_ref()
                .map(|v| v.dirs.values().cloned().collect())
                .unwrap_or_default(),
            owners: self
                .owners
                .iter()
                .filter(|(p, chain)| **p == root || in_lineage(chain))
                .map(|(p, _)| (p.pid, p.start))
                .collect(),
            renames: self
                .renames
                .iter()
                .filter(|(chain, _, _)| in_lineage(chain))
                .map(|(_, a, b)| (PathBuf::from(a), PathBuf::from(b)))
                .collect(),
            created: self
                .engine
                .files_created_by(root)
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            contained_at_ns: contained_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }

    /// Record a restore plan durably (a restart resumes it).
    fn save_plan(&self, rec: &PlanRecord) {
        let (id, plan) = (
            rec.incident.clone(),
            serde_json::to_string(rec).expect("plan serialises"),
        );
        self.store.run(move |s| {
            if let Err(e) = s.put_plan(&id, &plan) {
                tracing::error!("recording the restore plan of {id}: {e}");
            }
        });
    }

    fn start_due_restores(&mut self) {
        if self.restores_due.is_empty() {
            return;
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.restores_due.drain(..).partition(|d| d.due <= now);
        self.restores_due = later;
        for d in due {
            let rec = self.plan_record(&d.incident, d.root, d.contained_at, &d.damaged);
            self.save_plan(&rec);
            if let Some(v) = &self.vault {
                v.send(Job::Restore {
                    plan: rec.to_plan(),
                    damaged: rec.damaged.clone(),
                });
            }
        }
    }
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "OFF"
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

impl Guard {
    /// Freeze, then kill, the convicted lineage; record and report the incident.
    fn contain(&mut self, v: &Verdict, sensor: &Sensor) {
        // Queue the copies of files the lineage deleted (it is convicted, so suspicious);
        // only channel sends, so the freeze below is not delayed.
        self.settle_doomed();
        let (engine, store, out, clock, cfg) =
            (&self.engine, &self.store, &self.out, &self.clock, &self.cfg);
        let detected_at = clock.wall(v.time);
        let root = Target {
            pid: v.root.pid,
            start: v.root.start,
        };
        let members: Vec<Target> = v
            .members
            .iter()
            .filter(|m| !sensor.is_protected_pid(m.pid))
            .map(|m| Target {
                pid: m.pid,
                start: m.start,
            })
            .collect();
        let mut c = if sensor.is_protected_pid(root.pid) {
            tracing::error!(
                "verdict against pid {} which is ward or its ancestor: not signalling it",
                root.pid
            );
            ward_response::Containment {
                root_gone: true,
                ..Default::default()
            }
        } else {
            ward_response::freeze(root, &members)
        };
        let contained_ns = sensor.now();
        let contained_at = clock.wall(contained_ns);
        let action = if c.frozen.is_empty() {
            "exited"
        } else if cfg.kill {
            ward_response::kill_frozen(&mut c);
            "killed"
        } else {
            "frozen"
        };
        let info = engine.process(v.root).cloned();
        let (exe, cmdline, uid) = info
            .map(|i| (i.exe, i.cmdline, i.uid))
            .unwrap_or_else(|| (String::new(), Vec::new(), u32::MAX));
        let id = format!(
            "{}-{}",
            detected_at.format("%Y%m%dT%H%M%S%.3fZ"),
            v.root.pid
        );
        let contain_ms = contained_ns.saturating_sub(v.first_damage) as f64 / 1e6;
        let inc = Incident {
            id: id.clone(),
            pid: v.root.pid,
            exe,
            cmdline,
            client: None,
            started_at: clock.wall(v.first_damage),
            detected_at,
            contained_at,
            action: action.into(),
            files_damaged: v.files_damaged.len(),
            indicators: v
                .indicators
                .iter()
                .map(|i| i.as_str().to_string())
                .collect(),
            uid,
            damaged: v.files_damaged.clone(),
            created: v.files_created.clone(),
            processes: c.frozen.clone(),
            contain_ms,
            freeze_ms: contained_ns.saturating_sub(v.time) as f64 / 1e6,
            restore: if self.vault.is_some() {
                "pending"
            } else {
                "none"
            }
            .into(),
        };
        tracing::warn!(
        "INCIDENT {id}: {} (pid {}) damaged {} file(s) [{}]; {} {} process(es) {:.1} ms after the first damaging write",
        inc.exe,
        inc.pid,
        inc.files_damaged,
        inc.indicators.join(", "),
        action,
        c.frozen.len(),
        contain_ms
    );
        // Record the incident (and a first restore plan, so a crash before the restore
        // starts still restores) durably, and only then announce it.
        let plan = self.vault.as_ref().map(|_| {
            let rec = self.plan_record(
                &id,
                v.root,
                SystemTime::from(contained_at),
                &v.files_damaged,
            );
            serde_json::to_string(&rec).expect("plan serialises")
        });
        let mut line = serde_json::to_value(&inc).expect("incident serialises");
        line["type"] = json!("incident");
        let emitter = out.emitter();
        let record = move |s: &Store| {
            if let Err(e) = s.put(&inc) {
                tracing::error!("could not record incident {}: {e}", inc.id);
            }
            if let Some(plan) = plan {
                if let Err(e) = s.put_plan(&inc.id, &plan) {
                    tracing::error!("recording the restore plan of {}: {e}", inc.id);
                }
            }
            emitter.emit(line);
        };
        match &self.vault {
            // After the copies of files the lineage deleted (queued by settle_doomed
            // above): once the incident is announced, a crash loses nothing.
            Some(vault) => {
                let handle = store.handle();
                vault.send(Job::Then(Box::new(move || handle.run(record))));
            }
            None => store.run(record),
        }
        if let Some(vault) = &self.vault {
            let owners: Vec<Owner> = self
                .owners
                .iter()
                .filter(|(p, chain)| **p == v.root || chain.contains(&v.root))
                .map(|(p, _)| Owner {
                    pid: p.pid,
                    start: p.start,
                })
                .collect();
            vault.send(Job::Pin {
                incident: id.clone(),
                owners,
            });
            // Plan the restore once the lineage's last queued events have been seen.
            self.restores_due.push(DueRestore {
                incident: id,
                root: v.root,
                contained_at: SystemTime::from(contained_at),
                damaged: v.files_damaged.clone(),
                due: Instant::now() + Duration::from_millis(300),
            });
        }
    }
}

/// The incident store on its own thread: the state directory may be on a protected
/// filesystem, and the main thread must never wait for its own permission events.
type StoreJob = Box<dyn FnOnce(&Store) + Send>;

struct StoreWorker {
    tx: Option<std::sync::mpsc::Sender<StoreJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreWorker {
    fn start(store: Store) -> StoreWorker {
        let (tx, rx) = std::sync::mpsc::channel::<StoreJob>();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                for f in rx {
                    f(&store);
                }
            })
            .expect("spawning the store thread");
        StoreWorker {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queue work on the store.
    fn run(&self, f: impl FnOnce(&Store) + Send + 'static) {
        self.handle().run(f);
    }

    /// A `Send` handle for queuing work from other threads.
    fn handle(&self) -> StoreHandle {
        StoreHandle {
            tx: self.tx.clone(),
        }
    }

    /// Run and wait for the result (only before the sensor starts, or off the main loop).
    fn call<T: Send + 'static>(&self, f: impl FnOnce(&Store) -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.run(move |s| {
            let _ = tx.send(f(s));
        });
        rx.recv().expect("the store thread answers")
    }
}

struct StoreHandle {
    tx: Option<std::sync::mpsc::Sender<StoreJob>>,
}

impl StoreHandle {
    fn run(&self, f: impl FnOnce(&Store) + Send + 'static) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Box::new(f));
        }
    }
}

impl Drop for StoreWorker {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
