//! `ward protect`: start everything in the right order, run the loop, stop cleanly.
//!
//! Order matters: the watchdog first (it holds no fanotify group, so it can rescue a
//! stopped ward), then the vault and the store (opened before the marks exist: once the
//! sensor runs, ward's own file I/O on a protected filesystem must come from other
//! threads), decoys, the sensor, and only then `ready`. On SIGTERM/SIGINT: every held open
//! is allowed, the marks are removed, queued restores finish, decoys are removed,
//! `stopped` is the last line.

use crate::agent::{Agent, Clock, Parts};
use crate::output::Output;
use crate::settings::{Config, Settings};
use crate::store::StoreWorker;
use crate::vaultd::VaultWorker;
use crate::{decoys, AgentError};
use chrono::Utc;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ward_engine::Engine;
use ward_model::{AgentEvent, Protections, Ready, Stopped};
use ward_outputs::Sink;
use ward_response::{LineageResponder, Responder};
use ward_sensor::{Observation, Sensor, SensorOptions};
use ward_store::Store;

/// Options of `ward protect`.
pub struct ProtectOptions {
    /// Directories to protect.
    pub paths: Vec<PathBuf>,
    /// Where incidents are recorded.
    pub state_dir: PathBuf,
    /// Settings.
    pub cfg: Config,
    /// Where the agent's events go (e.g. JSON lines on stdout).
    pub sinks: Vec<Box<dyn Sink>>,
    /// Record every engine event to this file.
    pub record: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Check and canonicalise the protected paths.
pub fn check_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AgentError> {
    if paths.is_empty() {
        return Err(AgentError::usage(
            "give at least one PATH to protect (or list them as `paths` in the config file)",
        ));
    }
    let mut out = Vec::new();
    for p in paths {
        let c = std::fs::canonicalize(p).map_err(|e| {
            AgentError::usage(format!(
                "cannot protect {}: {e}; give an existing directory",
                p.display()
            ))
        })?;
        let md = std::fs::metadata(&c)
            .map_err(|e| AgentError::usage(format!("cannot read {}: {e}", c.display())))?;
        if !md.is_dir() {
            return Err(AgentError::usage(format!(
                "{} is not a directory; ward protects directory trees",
                c.display()
            )));
        }
        if c == Path::new("/") {
            return Err(AgentError::usage(
                "refusing to protect / (the whole root filesystem); point ward at the data \
                 directories instead, e.g. /srv/samba or /var/lib/pacs",
            ));
        }
        let fs = ward_sys::fs::statfs(&c).map_err(|e| {
            AgentError::usage(format!("cannot stat filesystem of {}: {e}", c.display()))
        })?;
        let name = ward_sys::fs::fs_name(fs.magic);
        if matches!(name, "nfs" | "cifs" | "fuse") {
            return Err(AgentError::usage(format!(
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

type SmbStart = (
    Option<crate::agent::Smb>,
    Option<ward_response::smb::SmbClientResponder>,
    Option<Arc<Mutex<ward_smb::Blocker>>>,
);

/// Start Samba client attribution and blocking (blocks in force are put back).
fn start_smb(cfg: &Config, store: &StoreWorker, warnings: &mut Vec<String>) -> SmbStart {
    let tools = cfg.samba_tools();
    let attributor = Arc::new(ward_smb::Attributor::new(ward_smb::AttributorConfig {
        tools: tools.clone(),
        ..Default::default()
    }));
    let blocker = match ward_smb::Blocker::new(ward_smb::BlockerConfig {
        table: cfg.smb.nft_table.clone(),
        ..Default::default()
    }) {
        Ok(b) => Some(Arc::new(Mutex::new(b))),
        Err(e) => {
            warnings.push(format!(
                "SMB clients that attack cannot be blocked ({e}): they are cut off but may \
                 reconnect; install nftables"
            ));
            None
        }
    };
    if let Some(b) = &blocker {
        let now = Utc::now();
        let blocks = store.call(move |s| s.blocks(now)).unwrap_or_else(|e| {
            tracing::error!("reading the client blocks in force: {e}");
            Vec::new()
        });
        for blk in blocks {
            let Ok(ip) = blk.ip.parse::<std::net::IpAddr>() else {
                continue;
            };
            let ttl = blk.until.and_then(|u| (u - now).to_std().ok());
            match b.lock().map(|b| b.block(ip, ttl)) {
                Ok(Ok(())) => tracing::info!(
                    "SMB client {ip} stays blocked (incident {}; `ward unblock {ip}` lifts it)",
                    blk.incident
                ),
                Ok(Err(e)) => tracing::error!("re-blocking SMB client {ip}: {e}"),
                Err(_) => {}
            }
        }
    }
    let responder = ward_response::smb::SmbClientResponder::new(
        Arc::clone(&attributor),
        blocker.clone(),
        tools,
        cfg.block_ttl(),
    );
    let smb = crate::agent::Smb {
        attributor,
        placed: responder.placed(),
    };
    (Some(smb), Some(responder), blocker)
}

/// Run `ward protect` until SIGTERM/SIGINT.
pub fn run(opts: ProtectOptions) -> Result<(), AgentError> {
    let cfg = opts.cfg;
    let busy_poll = Duration::from_micros(cfg.busy_poll_us);
    let paths = check_paths(&opts.paths)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(AgentError::usage(
            "ward protect must run as root (fanotify needs CAP_SYS_ADMIN): run it with sudo \
             or as a systemd service",
        ));
    }
    let state_dir = absolute(&opts.state_dir);
    let store =
        StoreWorker::start(Store::open(&state_dir).map_err(|e| AgentError::usage(e.to_string()))?);
    let metrics = Arc::new(ward_outputs::Metrics::new());
    let out = Output::start(opts.sinks, Some(Arc::clone(&metrics)));
    let metrics_server = match opts.metrics_addr {
        Some(addr) => Some(
            ward_outputs::MetricsServer::start(&addr.to_string(), Arc::clone(&metrics))
                .map_err(|e| AgentError::usage(e.to_string()))?,
        ),
        None => None,
    };
    let recorder = match &opts.record {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| AgentError::usage(format!("cannot create trace file {}: {e}", p.display())),
        )?)),
        None => None,
    };

    let (sig_r, sig_w) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| AgentError::runtime(format!("signal pipe: {e}")))?;
    for s in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let w = sig_w
            .try_clone()
            .map_err(|e| AgentError::runtime(format!("signal pipe: {e}")))?;
        signal_hook::low_level::pipe::register(s, w)
            .map_err(|e| AgentError::runtime(format!("installing signal handlers: {e}")))?;
    }
    sig_r.set_nonblocking(true).ok();

    let mut watchdog = Watchdog::spawn();

    // The vault is opened before the sensor starts: once the marks are placed, ward's
    // own file I/O on a protected filesystem must come from other threads.
    let vault = if cfg.vault.enabled {
        match VaultWorker::start(&paths, cfg.vault_limits()) {
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
    let mut warnings: Vec<String> = Vec::new();
    // Samba: attribute smbd processes to clients, cut off the attacking client only
    // (before the marks exist: it reads the store).
    let (smb, smb_responder, blocker) = if cfg.smb.enabled {
        start_smb(&cfg, &store, &mut warnings)
    } else {
        (None, None, None)
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
    // Samba's share map, read now: once the marks exist, a child process ward waits for
    // (testparm, nft, ...) could wait on ward's own permission events.
    if smb.is_some() && !vault_dirs.is_empty() {
        match cfg.samba_tools().share_configs() {
            Ok(shares) => {
                for x in ward_smb::exposures(&shares, &vault_dirs) {
                    warnings.push(format!(
                        "the vault {} can be reached through the Samba share [{}]: add `{}` \
                         to that share in smb.conf",
                        x.dir.display(),
                        x.share,
                        x.fix
                    ));
                }
            }
            Err(e) => tracing::debug!("cannot read Samba's shares: {e}"),
        }
    }
    let mut exclude = vec![state_dir.clone()];
    // `exclude` globs: their literal trees are left out by the sensor.
    exclude.extend(cfg.excludes().prefixes().iter().cloned());
    exclude.extend(vault_dirs.iter().cloned());
    if let Some(r) = &opts.record {
        exclude.push(absolute(r));
    }
    let sensor = Sensor::new(SensorOptions {
        paths: paths.clone(),
        exclude,
        boundary_exes: cfg.boundary_programs.clone(),
        deny_write: vault_dirs.clone(),
    });
    let mut sensor = match sensor {
        Ok(s) => s,
        Err(e) => {
            decoys::remove(&placed);
            return Err(match e {
                ward_sensor::SensorError::Io(e) => AgentError::runtime(e.to_string()),
                other => AgentError::usage(other.to_string()),
            });
        }
    };
    let caps = sensor.capabilities().clone();
    if cfg.worm.enabled {
        match ward_bpf::start_best(&ward_bpf::MonitorOptions::default()) {
            Ok((src, why)) => {
                if let Some(why) = why {
                    warnings.push(format!(
                        "BPF connect monitor unavailable ({why}); watching outbound SMB \
                         connections by polling /proc instead (very short connections can be \
                         missed, and none can be refused in the kernel)"
                    ));
                }
                sensor.set_connect_source(src);
            }
            Err(e) => warnings.push(format!(
                "outbound SMB connections are not watched (worm fan-out detection is off): {e}"
            )),
        }
    }
    let connects = sensor.connect_source();

    let engine = Engine::new(cfg.engine_config(&placed));
    let mut recorder = recorder;
    if let Some(r) = recorder.as_mut() {
        let _ = crate::trace::write_header(r, engine.config());
    }
    let clock = Clock {
        base: Utc::now() - chrono::Duration::from_std(sensor.epoch().elapsed()).unwrap_or_default(),
    };

    if !caps.name_events {
        warnings.push("name events unavailable: deletes and renames are not seen".into());
    }
    if !caps.proc_connector {
        warnings.push(
            "process connector unavailable: parents of short-lived processes may be missed".into(),
        );
    }
    if vault.is_none() {
        warnings.push("vault not active: files damaged before containment are not restored".into());
    }
    for d in &vault_dirs {
        if let Some(p) = paths.iter().find(|p| d.starts_with(p)) {
            warnings.push(format!(
                "the vault {} is inside the protected path {} (it is the filesystem's root): \
                 exclude it from backups and copies, and hide it from Samba with \
                 `veto files = /{}/` in the share",
                d.display(),
                p.display(),
                crate::vaultd::VAULT_NAME
            ));
        }
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "protecting {} ({}); open permission events: {}, name events: {}, modification samples: {}, \
         process connector: {}; outbound SMB connections: {}; decoys: {}; incidents in {}",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        caps.filesystems.join(", "),
        on(caps.open_perm),
        on(caps.name_events),
        on(caps.modify_samples),
        on(caps.proc_connector),
        connects.unwrap_or("OFF"),
        placed.len(),
        state_dir.display()
    );
    let ready = Ready {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        paths: paths.clone(),
        state_dir: state_dir.clone(),
        filesystems: caps.filesystems.clone(),
        protections: Protections {
            open_perm: caps.open_perm,
            name_events: caps.name_events,
            rename_event: caps.rename_event,
            proc_connector: caps.proc_connector,
            decoys: placed.len(),
            vault: vault.is_some(),
            watchdog: watchdog.is_some(),
            smb: smb.is_some(),
            smb_fanout: connects.is_some(),
            modify_samples: caps.modify_samples,
            write_ranges: caps.write_ranges,
        },
        vaults: vault_dirs.clone(),
        sensor: match connects {
            Some(c) => format!("fanotify+{c}"),
            None => "fanotify".into(),
        },
        warnings,
    };
    metrics.set_sensor(&ready.sensor);
    metrics.set_up(true);
    let status = {
        let (m, paths, sensor, warnings) = (
            Arc::clone(&metrics),
            paths.clone(),
            ready.sensor.clone(),
            ready.warnings.clone(),
        );
        let sock = state_dir.join("status.sock");
        match ward_outputs::StatusServer::start(&sock, move || {
            let mut st = ward_outputs::StatusSnapshot::new(&m);
            st.protected_paths = paths.clone();
            st.sensor = sensor.clone();
            st.warnings = warnings.clone();
            st
        }) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("`ward status` will not work: {e}");
                None
            }
        }
    };
    out.emit(AgentEvent::Ready(ready));

    let mut responders: Vec<Box<dyn Responder>> = Vec::new();
    if let Some(r) = smb_responder {
        responders.push(Box::new(r));
    }
    responders.push(Box::new(LineageResponder));
    let mut agent = Agent::new(Parts {
        source: sensor,
        responders,
        engine,
        store,
        out,
        clock,
        cfg,
        vault,
        recorder,
        smb,
        metrics: Arc::clone(&metrics),
    });
    agent.resume_restores(unfinished);

    let mut obs: Vec<Observation> = Vec::new();
    let mut last_tick = Instant::now();
    // Fault injection for the watchdog test: block the main loop at the first event, as a
    // deadlock would. Only read from the environment, never from config.
    let wedge = std::env::var_os("WARD_FAULT").is_some_and(|v| v == "wedge");
    // Whether the last pass handled events (then the wait polls without sleeping first,
    // for `busy_poll_us`).
    let mut busy = false;
    let result = loop {
        if let Some(w) = watchdog.as_mut() {
            w.beat();
        }
        // Wait for events (or a signal, a vault result, or the 200 ms heartbeat).
        // Which descriptors had something: the source and the vault skip reading the
        // queues that were empty (each read that only says EAGAIN costs the opener
        // waiting behind it).
        let (stop, ready, vault_woken) = {
            let mut fds: Vec<nix::poll::PollFd> = agent
                .source()
                .map(|s| s.fds())
                .unwrap_or_default()
                .into_iter()
                .map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN))
                .collect();
            let sources = fds.len();
            let vault_at = agent.vault().map(|_| sources);
            if let Some(v) = agent.vault() {
                fds.push(nix::poll::PollFd::new(
                    v.wake.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                ));
            }
            fds.push(nix::poll::PollFd::new(
                sig_r.as_fd(),
                nix::poll::PollFlags::POLLIN,
            ));
            let mut polled = Ok(0);
            if busy && !busy_poll.is_zero() {
                let since = Instant::now();
                loop {
                    polled = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO);
                    if !matches!(polled, Ok(0)) || since.elapsed() >= busy_poll {
                        break;
                    }
                    std::hint::spin_loop();
                }
            }
            if matches!(polled, Ok(0)) {
                polled = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16));
            }
            match polled {
                Ok(_) => {
                    let had = |f: &nix::poll::PollFd| f.revents().is_none_or(|r| !r.is_empty());
                    let stop = fds
                        .last()
                        .and_then(|f| f.revents())
                        .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLIN));
                    let ready: Vec<bool> = fds[..sources].iter().map(had).collect();
                    (stop, ready, vault_at.map(|i| had(&fds[i])))
                }
                // Interrupted: read everything (nothing is known to be empty).
                Err(nix::errno::Errno::EINTR) => (false, Vec::new(), None),
                Err(e) => break Err(AgentError::runtime(format!("poll: {e}"))),
            }
        };
        if stop {
            break Ok(());
        }
        if !ready.is_empty() {
            if let Some(s) = agent.source_mut() {
                ward_sensor::EventSource::ready(s, &ready);
            }
        }
        if let (Some(v), Some(woken)) = (agent.vault(), vault_woken) {
            v.woken(woken);
        }
        if wedge {
            if let Some(Err(e)) = agent.source_mut().map(|s| s.read(&mut obs)) {
                tracing::error!("reading events: {e}");
            }
            if !obs.is_empty() {
                tracing::warn!("WARD_FAULT=wedge: blocking the main loop");
                loop {
                    std::thread::park();
                }
            }
        }
        busy = agent.poll_source(&mut obs) > 0;
        if last_tick.elapsed() >= Duration::from_secs(1) {
            agent.tick();
            agent.follow_wall_clock();
            last_tick = Instant::now();
        }
    };
    // Answer what is still held, then release the marks (pending events are allowed).
    agent.stop_source();
    let ss = agent
        .source()
        .map(|s| s.stats().clone())
        .unwrap_or_default();
    let cs = agent.source().and_then(|s| s.connect_stats());
    drop(agent.close_source());
    // No marks are left, so nothing can wait on ward any more: the watchdog's job is
    // done (the rest of the shutdown may take a while on a loaded machine).
    drop(watchdog.take());
    // Let restores in progress finish (they are resumed after a restart if killed).
    agent.finish();
    decoys::remove(&placed);
    if let Some(b) = blocker {
        if let Ok(mut b) = b.lock() {
            if let Err(e) = b.teardown() {
                tracing::warn!("removing ward's nftables table: {e}");
            }
        }
    }
    let st = agent.engine().stats();
    let gs = agent.stats().clone();
    tracing::info!(
        "stopping: {} events, {} files and {} processes tracked, {} incidents; opens: {} allowed, {} denied; samples: {} profiled, {} of them unchanged, {} not even read; vault: {} preserved, {} failed, {} timed out",
        st.events,
        st.files_tracked,
        st.processes_tracked,
        st.verdicts,
        ss.perm_allowed,
        ss.perm_denied,
        st.samples_profiled,
        st.profiles_reused,
        st.samples_unread,
        gs.preserved,
        gs.preserve_failed,
        gs.preserve_timeouts,
    );
    if let Some(cs) = cs {
        tracing::info!(
            "outbound SMB connections: {} seen, {} refused in the kernel, {} lost",
            cs.events,
            cs.denied,
            cs.dropped
        );
        if cs.dropped > 0 {
            tracing::warn!(
                "{} outbound SMB connection event(s) were lost: a worm sweep may have been seen late",
                cs.dropped
            );
        }
    }
    if ss.overflows + ss.errors + ss.proc_events_lost > 0 {
        tracing::warn!(
            "while running: {} fanotify queue overflow(s), {} event error(s), {} process-event loss(es): some activity was not seen",
            ss.overflows,
            ss.errors,
            ss.proc_events_lost
        );
    }
    // Everything recorded (and announced) before the last line.
    metrics.set_up(false);
    drop(status);
    drop(metrics_server);
    agent.output().emit(AgentEvent::Stopped(Stopped {}));
    agent.close_output();
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
