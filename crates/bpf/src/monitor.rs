//! The BPF connect monitor: `bpf/connect.bpf.c` on the cgroup-v2 root's connect4/connect6.
//!
//! No `unsafe` here: the object that build.rs compiled (through libbpf-cargo's
//! SkeletonBuilder) is embedded and loaded through libbpf-rs's owned `Object` API, maps are
//! used through duplicated descriptors (`MapHandle`), and the programs are attached through
//! `bpf_link`s, which the kernel detaches when their descriptors close, so nothing stays
//! attached once the monitor is dropped, or once ward's process is gone whatever the cause.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libbpf_rs::{
    ErrorKind, Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, PrintLevel, RingBuffer,
    RingBufferBuilder,
};

use crate::event::decode_event;
use crate::{
    cgroup2_root, validate_ports, BpfError, ConnectEvent, ConnectSource, ConnectStats,
    MonitorOptions, SourceKind,
};

/// The BPF object compiled by build.rs from `src/bpf/connect.bpf.c`.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/connect.bpf.o"));

const COUNTER_SUBMITTED: u32 = 0;
const COUNTER_DROPPED: u32 = 1;
const COUNTER_DENIED: u32 = 2;
const CONFIG_REPORT_LOOPBACK: u32 = 1;
/// `max_entries` of the `deny` map in connect.bpf.c.
const DENY_CAPACITY: u32 = 4096;
/// Program names in connect.bpf.c, as `bpftool cgroup tree` shows them.
pub(crate) const PROGRAMS: [(&str, &str); 2] =
    [("ward_connect4", "connect4"), ("ward_connect6", "connect6")];
/// The optional tp_btf programs that make the deny set follow forks and exits.
const LINEAGE_PROGRAMS: [&str; 2] = ["ward_fork", "ward_exit"];
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Records decoded by the ring buffer callback, waiting for [`ConnectMonitor::read`].
#[derive(Default)]
struct Pending {
    events: Vec<ConnectEvent>,
    undecodable: u64,
}

/// Outbound connects to watched ports, seen in the kernel; see the crate docs.
///
/// Poll-loop integration: register [`fd`](Self::fd) for `POLLIN` (it is the ring buffer's
/// map descriptor, readable while records are pending) and call [`read`](Self::read) when it
/// is readable; `read` drains what is there and never blocks.
pub struct ConnectMonitor {
    // Field order is drop order: links first (detach from the cgroup), then the rest.
    links: Vec<Link>,
    ring: RingBuffer<'static>,
    pending: Arc<Mutex<Pending>>,
    events_map: MapHandle,
    deny_map: MapHandle,
    counters: MapHandle,
    _obj: Object,
    cgroup: PathBuf,
    delivered: u64,
    lineage: bool,
    lineage_loaded: bool,
}

impl std::fmt::Debug for ConnectMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectMonitor")
            .field("cgroup", &self.cgroup)
            .field("attached", &self.links.len())
            .field("delivered", &self.delivered)
            .field("lineage", &self.lineage)
            .finish_non_exhaustive()
    }
}

impl ConnectMonitor {
    /// Load the program, configure its maps and attach it to the cgroup-v2 root.
    ///
    /// Errors: [`BpfError::NotRoot`], [`BpfError::CgroupV2NotMounted`],
    /// [`BpfError::CgroupOpen`], [`BpfError::Unsupported`] (kernel too old),
    /// [`BpfError::Load`] (with the head of the verifier log), [`BpfError::Attach`],
    /// [`BpfError::Map`], [`BpfError::InvalidOptions`].
    pub fn start(opts: &MonitorOptions) -> Result<ConnectMonitor, BpfError> {
        validate_ports(&opts.ports)?;
        let ring_bytes = ring_size(opts.ring_bytes)?;
        if !nix::unistd::geteuid().is_root() {
            return Err(BpfError::NotRoot);
        }
        let cgroup = match &opts.cgroup {
            Some(p) => p.clone(),
            None => cgroup2_root()?,
        };
        let cgroup_dir = File::open(&cgroup).map_err(|source| BpfError::CgroupOpen {
            path: cgroup.clone(),
            source,
        })?;

        // With kernel BTF, also load the fork/exit programs (the deny set then follows the
        // lineage and cleans itself up); if they cannot load, go on without them.
        let want_lineage = Path::new(KERNEL_BTF).exists();
        let load = |lineage: bool| {
            with_captured_log(|| {
                let mut open = ObjectBuilder::default().open_memory(OBJECT)?;
                for mut m in open.maps_mut() {
                    if m.name() == "events" {
                        m.set_max_entries(ring_bytes)?;
                    }
                }
                for mut p in open.progs_mut() {
                    if LINEAGE_PROGRAMS.iter().any(|n| p.name() == *n) {
                        p.set_autoload(lineage);
                    }
                }
                open.load()
            })
        };
        let (obj, mut lineage) = match load(want_lineage) {
            Ok(obj) => (obj, want_lineage),
            Err((e, log)) if want_lineage => {
                tracing::warn!(
                    "BPF fork/exit programs did not load ({e:#}); the deny set will not follow \
                     forks nor clean up after exits (allow() exited pids); log head:\n{}",
                    log_head(&log)
                );
                (load(false).map_err(|(e, log)| load_error(&e, log))?, false)
            }
            Err((e, log)) => return Err(load_error(&e, log)),
        };
        let lineage_loaded = lineage;
        if !want_lineage {
            tracing::warn!(
                "no kernel BTF at {KERNEL_BTF}: the deny set will not follow forks nor clean up \
                 after exits (allow() exited pids)"
            );
        }

        let handle = |name: &'static str| -> Result<MapHandle, BpfError> {
            let map = obj
                .maps()
                .find(|m| m.name() == name)
                .ok_or_else(|| BpfError::Map {
                    map: name,
                    op: "find",
                    message: "not in the BPF object (build mismatch)".into(),
                })?;
            MapHandle::try_from(&map).map_err(|e| map_error(name, "dup fd", &e))
        };
        let events_map = handle("events")?;
        let deny_map = handle("deny")?;
        let counters = handle("counters")?;
        let ports = handle("ports")?;
        let config = handle("config")?;

        for port in &opts.ports {
            ports
                .update(&port.to_ne_bytes(), &[1u8], MapFlags::ANY)
                .map_err(|e| map_error("ports", "update", &e))?;
        }
        let flags = if opts.report_loopback {
            CONFIG_REPORT_LOOPBACK
        } else {
            0
        };
        config
            .update(&0u32.to_ne_bytes(), &flags.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| map_error("config", "update", &e))?;

        let pending = Arc::new(Mutex::new(Pending::default()));
        let sink = Arc::clone(&pending);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&events_map, move |rec: &[u8]| {
                let mut p = sink.lock().unwrap_or_else(PoisonError::into_inner);
                match decode_event(rec) {
                    Some(e) => p.events.push(e),
                    None => p.undecodable += 1,
                }
                0
            })
            .map_err(|e| BpfError::Ring(format!("{e:#}")))?;
        let ring = builder
            .build()
            .map_err(|e| BpfError::Ring(format!("{e:#}")))?;

        let mut links = Vec::with_capacity(PROGRAMS.len());
        for (name, hook) in PROGRAMS {
            let prog =
                obj.progs_mut()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| BpfError::Attach {
                        hook,
                        path: cgroup.clone(),
                        message: format!("program {name} not in the BPF object (build mismatch)"),
                    })?;
            // On failure the links made so far are dropped here, which detaches them.
            let link =
                prog.attach_cgroup(cgroup_dir.as_raw_fd())
                    .map_err(|e| BpfError::Attach {
                        hook,
                        path: cgroup.clone(),
                        message: format!("{e:#}"),
                    })?;
            links.push(link);
        }
        if lineage {
            let mut extra = Vec::new();
            for name in LINEAGE_PROGRAMS {
                match obj
                    .progs_mut()
                    .find(|p| p.name() == name)
                    .map(|p| p.attach())
                {
                    Some(Ok(link)) => extra.push(link),
                    Some(Err(e)) => {
                        tracing::warn!("attaching {name} failed ({e:#}): the deny set will not follow forks nor clean up after exits");
                        lineage = false;
                        break;
                    }
                    None => {
                        lineage = false;
                        break;
                    }
                }
            }
            if lineage {
                links.extend(extra);
            }
        }
        tracing::info!(
            cgroup = %cgroup.display(),
            ports = ?opts.ports,
            report_loopback = opts.report_loopback,
            deny_follows_lineage = lineage,
            "BPF connect monitor attached (connect4, connect6)"
        );
        Ok(ConnectMonitor {
            links,
            ring,
            pending,
            events_map,
            deny_map,
            counters,
            _obj: obj,
            cgroup,
            delivered: 0,
            lineage,
            lineage_loaded,
        })
    }

    /// Kernel ids of the programs this monitor loaded (`bpftool prog show id ID`), for
    /// diagnostics and for checking that they are gone after drop.
    pub fn program_ids(&self) -> Vec<u32> {
        let lineage: &[&str] = if self.lineage_loaded {
            &LINEAGE_PROGRAMS
        } else {
            &[]
        };
        self._obj
            .progs()
            .filter(|p| {
                PROGRAMS.iter().any(|(n, _)| p.name() == *n)
                    || lineage.iter().any(|n| p.name() == *n)
            })
            .filter_map(|p| libbpf_rs::Program::id_from_fd(p.as_fd()).ok())
            .collect()
    }

    /// Whether the deny set follows the lineage in the kernel (needs kernel BTF): a process
    /// forked by a denied process is denied from birth, and a denied process's entry is
    /// removed when its last thread exits. When `false`, deny each member of the lineage
    /// yourself and [`allow`](Self::allow) each one once it has exited.
    pub fn deny_follows_lineage(&self) -> bool {
        self.lineage
    }

    /// Whether `tgid` is in the deny set now.
    pub fn is_denied(&self, tgid: u32) -> Result<bool, BpfError> {
        self.deny_map
            .lookup(&tgid.to_ne_bytes(), MapFlags::ANY)
            .map(|v| v.is_some())
            .map_err(|e| map_error("deny", "lookup", &e))
    }

    /// The cgroup the programs are attached to.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// The descriptor to poll for `POLLIN` (the ring buffer map).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.events_map.as_fd()
    }

    /// Append every pending event to `out`, without blocking; returns how many.
    pub fn read(&mut self, out: &mut Vec<ConnectEvent>) -> Result<usize, BpfError> {
        self.ring
            .consume()
            .map_err(|e| BpfError::Ring(format!("{e:#}")))?;
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let n = p.events.len();
        out.append(&mut p.events);
        self.delivered += n as u64;
        Ok(n)
    }

    /// Wait up to `timeout` for events, then drain them like [`read`](Self::read) (for
    /// callers without a poll loop of their own, and tests).
    pub fn read_timeout(
        &mut self,
        out: &mut Vec<ConnectEvent>,
        timeout: Duration,
    ) -> Result<usize, BpfError> {
        // poll() returns the number of records consumed; it calls the same callback.
        self.ring
            .poll(timeout)
            .map_err(|e| BpfError::Ring(format!("{e:#}")))?;
        self.read(out)
    }

    /// Refuse every further connect of `tgid` in the kernel (see [`ConnectSource::deny`]).
    /// Refuses to deny pid 0, pid 1 or ward itself.
    pub fn deny(&mut self, tgid: u32) -> Result<(), BpfError> {
        if tgid <= 1 || tgid == std::process::id() {
            return Err(BpfError::InvalidOptions(format!(
                "refusing to deny connects of pid {tgid} (pid 0, init or ward itself)"
            )));
        }
        match self
            .deny_map
            .update(&tgid.to_ne_bytes(), &[1u8], MapFlags::ANY)
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::TooBig => Err(BpfError::DenyFull(DENY_CAPACITY)),
            Err(e) => Err(map_error("deny", "update", &e)),
        }
    }

    /// Undo [`deny`](Self::deny); returns whether `tgid` was denied.
    pub fn allow(&mut self, tgid: u32) -> Result<bool, BpfError> {
        match self.deny_map.delete(&tgid.to_ne_bytes()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(map_error("deny", "delete", &e)),
        }
    }

    /// Counters: events delivered by [`read`](Self::read); drops (ring buffer full in the
    /// kernel, plus undecodable records); connects refused in the kernel.
    pub fn stats(&self) -> ConnectStats {
        let undecodable = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .undecodable;
        ConnectStats {
            events: self.delivered,
            dropped: self.counter(COUNTER_DROPPED).saturating_add(undecodable),
            denied: self.counter(COUNTER_DENIED),
        }
    }

    /// Events the kernel side put into the ring buffer so far (delivered or still pending).
    pub fn submitted(&self) -> u64 {
        self.counter(COUNTER_SUBMITTED)
    }

    /// Sum of a per-CPU counter (0 if the map cannot be read, which a loaded array map
    /// never refuses; logged).
    fn counter(&self, index: u32) -> u64 {
        match self
            .counters
            .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
        {
            Ok(Some(per_cpu)) => per_cpu
                .iter()
                .filter_map(|v| v.get(..8))
                .map(|b| u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .fold(0u64, u64::saturating_add),
            Ok(None) => 0,
            Err(e) => {
                tracing::warn!("reading BPF counter {index} failed: {e:#}");
                0
            }
        }
    }
}

impl Drop for ConnectMonitor {
    fn drop(&mut self) {
        // Closing the link descriptors detaches the programs from the cgroup.
        self.links.clear();
        tracing::info!(cgroup = %self.cgroup.display(), "BPF connect monitor detached");
    }
}

impl ConnectSource for ConnectMonitor {
    fn kind(&self) -> SourceKind {
        SourceKind::Bpf
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(ConnectMonitor::fd(self))
    }
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
    fn read(&mut self, out: &mut Vec<ConnectEvent>) -> Result<usize, BpfError> {
        ConnectMonitor::read(self, out)
    }
    fn stats(&self) -> ConnectStats {
        ConnectMonitor::stats(self)
    }
    fn can_deny(&self) -> bool {
        true
    }
    fn deny(&mut self, tgid: u32) -> Result<(), BpfError> {
        ConnectMonitor::deny(self, tgid)
    }
    fn deny_follows_lineage(&self) -> bool {
        self.lineage
    }
    fn allow(&mut self, tgid: u32) -> Result<bool, BpfError> {
        ConnectMonitor::allow(self, tgid)
    }
}

/// Ring buffer sizes must be a power of two and a multiple of the page size.
pub(crate) fn ring_size(requested: u32) -> Result<u32, BpfError> {
    let page = 4096u32.max(
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(4096),
    );
    requested
        .max(page)
        .checked_next_power_of_two()
        .filter(|s| *s <= 1 << 30)
        .ok_or_else(|| {
            BpfError::InvalidOptions(format!(
                "ring_bytes {requested} is too large (at most 1 GiB)"
            ))
        })
}

fn map_error(map: &'static str, op: &'static str, e: &libbpf_rs::Error) -> BpfError {
    BpfError::Map {
        map,
        op,
        message: format!("{e:#}"),
    }
}

fn load_error(e: &libbpf_rs::Error, log: String) -> BpfError {
    let message = format!("{e:#}");
    if e.kind() == ErrorKind::PermissionDenied {
        // Root without CAP_BPF (e.g. in a user namespace or a locked-down container).
        return BpfError::NotRoot;
    }
    if log.contains("map 'events'") && log.contains("failed to create") {
        return BpfError::Unsupported(format!("creating the BPF ring buffer failed ({message})"));
    }
    BpfError::Load {
        message,
        log_head: log_head(&log),
    }
}

/// The first lines of a libbpf/verifier log: enough to see the failing instruction.
pub(crate) fn log_head(log: &str) -> String {
    const LINES: usize = 40;
    const CHARS: usize = 4000;
    let mut head: String = log.lines().take(LINES).collect::<Vec<_>>().join("\n");
    if head.len() > CHARS {
        let mut cut = CHARS;
        while !head.is_char_boundary(cut) {
            cut -= 1;
        }
        head.truncate(cut);
    }
    if head.is_empty() {
        head.push_str("(libbpf said nothing)");
    }
    head
}

static CAPTURING: AtomicBool = AtomicBool::new(false);
static CAPTURED: Mutex<String> = Mutex::new(String::new());
/// Serialises starts, so that concurrent starts do not mix their logs.
static START: Mutex<()> = Mutex::new(());

/// libbpf's print callback: everything to `tracing`, and during a start also into a buffer
/// (bounded), so that a verifier rejection can be reported with its log.
fn libbpf_print(level: PrintLevel, msg: String) {
    let msg = msg.trim_end();
    match level {
        PrintLevel::Warn => tracing::warn!(target: "libbpf", "{msg}"),
        PrintLevel::Info => tracing::info!(target: "libbpf", "{msg}"),
        PrintLevel::Debug => tracing::debug!(target: "libbpf", "{msg}"),
    }
    if CAPTURING.load(Ordering::Relaxed) && level != PrintLevel::Debug {
        let mut buf = CAPTURED.lock().unwrap_or_else(PoisonError::into_inner);
        if buf.len() < 64 * 1024 {
            buf.push_str(msg);
            buf.push('\n');
        }
    }
}

pub(crate) fn with_captured_log<T>(
    f: impl FnOnce() -> Result<T, libbpf_rs::Error>,
) -> Result<T, (libbpf_rs::Error, String)> {
    let _serial = START.lock().unwrap_or_else(PoisonError::into_inner);
    libbpf_rs::set_print(Some((PrintLevel::Info, libbpf_print)));
    CAPTURED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    CAPTURING.store(true, Ordering::Relaxed);
    let r = f();
    CAPTURING.store(false, Ordering::Relaxed);
    let log = std::mem::take(&mut *CAPTURED.lock().unwrap_or_else(PoisonError::into_inner));
    r.map_err(|e| (e, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_are_powers_of_two_of_pages() {
        assert_eq!(ring_size(0).unwrap(), 4096);
        assert_eq!(ring_size(4097).unwrap(), 8192);
        assert_eq!(ring_size(256 * 1024).unwrap(), 256 * 1024);
        assert!(ring_size(u32::MAX).is_err());
    }

    #[test]
    fn log_head_is_bounded() {
        let long: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let h = log_head(&long);
        assert_eq!(h.lines().count(), 40);
        assert!(h.starts_with("line 0\n"));
        assert_eq!(log_head(""), "(libbpf said nothing)");
        let wide = "é".repeat(5000);
        assert!(log_head(&wide).len() <= 4000);
    }

    #[test]
    fn embedded_object_is_a_bpf_elf() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        // e_machine 247 = EM_BPF
        assert_eq!(u16::from_le_bytes([OBJECT[18], OBJECT[19]]), 247);
    }
}
