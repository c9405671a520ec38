//! `ward protect`: the agent's main loop.
//!
//! sensor → engine → (verdict) → response → incident store → outputs, on one thread, so
//! that the answer to each permission event comes after the engine has seen everything
//! that happened before it. Slow work (stdout) is on its own thread.

use crate::config::Config;
use crate::output::JsonOut;
use crate::{decoys, ExitError};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use ward_engine::{Engine, Verdict};
use ward_response::Target;
use ward_sensor::{Observation, Sensor, SensorOptions};
use ward_store::{Incident, Store};

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
    let state_dir = absolute(&opts.state_dir);
    let store = Store::open(&state_dir).map_err(|e| ExitError::usage(e.to_string()))?;
    let mut out = JsonOut::new(opts.json);
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

    let placed = if cfg.decoys {
        decoys::place(&paths)
    } else {
        Vec::new()
    };
    let mut exclude = vec![state_dir.clone()];
    if let Some(r) = &opts.record {
        exclude.push(absolute(r));
    }
    let sensor_result = Sensor::new(SensorOptions {
        paths: paths.clone(),
        exclude,
        boundary_exes: cfg.boundary_programs.clone(),
        deny_write: Vec::new(),
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
    let mut engine = Engine::new(ward_engine::Config {
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
    warnings.push("vault not active: files damaged before containment are not restored yet");
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
            "vault": false,
            "watchdog": watchdog.is_some(),
        },
        "warnings": warnings,
    }));

    let mut obs: Vec<Observation> = Vec::new();
    let mut last_tick = Instant::now();
    let result = loop {
        if let Some(w) = watchdog.as_mut() {
            w.beat();
        }
        // Wait for events (or a signal, or the 200 ms heartbeat).
        let ready = {
            let mut fds: Vec<nix::poll::PollFd> = sensor
                .fds()
                .into_iter()
                .map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN))
                .collect();
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
        for o in obs.drain(..) {
            if let Some(r) = recorder.as_mut() {
                let _ = serde_json::to_writer(&mut *r, &o.event);
                let _ = r.write_all(b"\n");
            }
            if let Some(v) = engine.observe(&o.event) {
                contain(&v, &mut engine, &sensor, &store, &out, &clock, &cfg);
            }
            if let Some(p) = o.perm {
                let allow = !engine.is_convicted(p.proc);
                sensor.answer(p, allow);
            }
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            sensor.tick();
            last_tick = Instant::now();
        }
    };
    drop(sensor); // releases the marks; pending events are allowed
    decoys::remove(&placed);
    if let Some(mut r) = recorder {
        let _ = r.flush();
    }
    let st = engine.stats();
    tracing::info!(
        "stopping: {} events, {} files and {} processes tracked, {} incidents",
        st.events,
        st.files_tracked,
        st.processes_tracked,
        st.verdicts
    );
    out.emit(json!({"type": "stopped"}));
    out.close();
    if let Some(w) = watchdog.take() {
        drop(w);
    }
    result
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

/// Freeze, then kill, the convicted lineage; record and report the incident.
fn contain(
    v: &Verdict,
    engine: &mut Engine,
    sensor: &Sensor,
    store: &Store,
    out: &JsonOut,
    clock: &Clock,
    cfg: &Config,
) {
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
        restore: "none".into(),
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
    if let Err(e) = store.put(&inc) {
        tracing::error!("could not record incident {id}: {e}");
    }
    let mut v = serde_json::to_value(&inc).expect("incident serialises");
    v["type"] = json!("incident");
    out.emit(v);
}
