//! The BPF file observer: `bpf/files.bpf.c` on the syscall tracepoints that open, write,
//! unlink and rename files, and on the exec, fork and exit scheduler tracepoints, host-wide.
//!
//! It is the measuring stick of a BPF-tracepoint design for ward (`ward bench --floors`
//! times the bench workload under each [`ObserveMode`]): what the kernel hooks cost before
//! any of ward's own work. It is not a detector: it sees which process made which kind of
//! call, not which file (no argument is read), and it cannot block anything.
//!
//! Hooks (a missing optional one is skipped and listed by [`FileObserver::missing_hooks`]):
//! `sys_enter_openat` (`openat2`, `open`, `creat`), `sys_enter_write` (`pwrite64`, `writev`,
//! `pwritev`, `pwritev2`, `copy_file_range`), `sys_enter_unlinkat` (`unlink`),
//! `sys_enter_renameat2` (`renameat`, `rename`), `sched_process_exec`, `sched_process_fork`,
//! `sched_process_exit`. The legacy calls matter on x86-64, where glibc's `unlink(3)` and
//! `rename(3)` use `unlink(2)` and `rename(2)` (gzip does), and `cp` copies with
//! `copy_file_range(2)`. Not seen: io_uring operations, writes through `mmap`, `sendfile`,
//! `splice`, `truncate`.
//!
//! No `unsafe` here either (see `monitor.rs`): the object is loaded through libbpf-rs's
//! object API, maps are used through duplicated descriptors, and the programs are attached
//! through `bpf_link`s, which the kernel detaches when their descriptors close — when the
//! observer is dropped (also while unwinding from a panic) or when the process dies.
//!
//! Attaching a syscall tracepoint needs tracefs (libbpf reads the tracepoint's id there).
//! Where it is not mounted, [`FileObserver::start`] mounts it at `/sys/kernel/tracing` for
//! the attach and unmounts it again.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::{
    ErrorKind, Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, RingBufferBuilder,
    TracepointCategory,
};

use crate::monitor::{log_head, ring_size, with_captured_log};

/// The BPF object compiled by build.rs from `src/bpf/files.bpf.c`.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/files.bpf.o"));

/// Number of [`FileEventKind`]s (`KINDS` in files.bpf.c).
pub const KINDS: usize = 7;
/// Size of one ring-buffer record (`struct event` in files.bpf.c).
const EVENT_SIZE: usize = 16;
const COUNTER_SUBMITTED: u32 = 0;
const COUNTER_DROPPED: u32 = 1;
const COUNTER_UNTRACKED: u32 = 2;
const COUNTER_SUPPRESSED: u32 = 3;
/// Ring buffer size in the ring modes: 4 MiB holds about 175 000 records (24 bytes each
/// with the header) between two reads.
const RING_BYTES: u32 = 4 * 1024 * 1024;

/// The hooks: (program suffix, tracepoint category, tracepoint, required). Program names
/// are `ward_<mode>_<suffix>` (files.bpf.c's HOOKS); a change there must change this too.
const HOOKS: [(&str, &str, &str, bool); 18] = [
    ("openat", "syscalls", "sys_enter_openat", true),
    ("openat2", "syscalls", "sys_enter_openat2", false),
    ("open", "syscalls", "sys_enter_open", false),
    ("creat", "syscalls", "sys_enter_creat", false),
    ("write", "syscalls", "sys_enter_write", true),
    ("pwrite64", "syscalls", "sys_enter_pwrite64", false),
    ("writev", "syscalls", "sys_enter_writev", false),
    ("pwritev", "syscalls", "sys_enter_pwritev", false),
    ("pwritev2", "syscalls", "sys_enter_pwritev2", false),
    ("cfr", "syscalls", "sys_enter_copy_file_range", false),
    ("unlinkat", "syscalls", "sys_enter_unlinkat", true),
    ("unlink", "syscalls", "sys_enter_unlink", false),
    ("rename2", "syscalls", "sys_enter_renameat2", true),
    ("renameat", "syscalls", "sys_enter_renameat", false),
    ("rename", "syscalls", "sys_enter_rename", false),
    ("exec", "sched", "sched_process_exec", true),
    ("fork", "sched", "sched_process_fork", true),
    ("exit", "sched", "sched_process_exit", true),
];

/// What a hooked call or scheduler event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileEventKind {
    /// `openat`, `openat2`, `open`, `creat`.
    Open,
    /// `write`, `pwrite64`, `writev`, `pwritev`, `pwritev2`, `copy_file_range`.
    Write,
    /// `unlinkat`, `unlink`.
    Unlink,
    /// `renameat2`, `renameat`, `rename`.
    Rename,
    /// A successful `execve` (`sched_process_exec`).
    Exec,
    /// A new process or thread (`sched_process_fork`), counted for the parent.
    Fork,
    /// A thread exited (`sched_process_exit`).
    Exit,
}

impl FileEventKind {
    /// Every kind, in the order of [`KindCounts`].
    pub const ALL: [FileEventKind; KINDS] = [
        FileEventKind::Open,
        FileEventKind::Write,
        FileEventKind::Unlink,
        FileEventKind::Rename,
        FileEventKind::Exec,
        FileEventKind::Fork,
        FileEventKind::Exit,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FileEventKind::Open => "open",
            FileEventKind::Write => "write",
            FileEventKind::Unlink => "unlink",
            FileEventKind::Rename => "rename",
            FileEventKind::Exec => "exec",
            FileEventKind::Fork => "fork",
            FileEventKind::Exit => "exit",
        }
    }
}

/// A count per [`FileEventKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts(pub [u64; KINDS]);

impl KindCounts {
    /// The count of one kind.
    pub fn get(&self, kind: FileEventKind) -> u64 {
        self.0[kind as usize]
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    fn add(&mut self, other: &KindCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    /// Decodes `KINDS` native-endian u64s (`struct counts`); `None` if too short.
    fn decode(b: &[u8]) -> Option<KindCounts> {
        let mut c = KindCounts::default();
        for (k, slot) in c.0.iter_mut().enumerate() {
            *slot = u64::from_ne_bytes(b.get(k * 8..k * 8 + 8)?.try_into().ok()?);
        }
        Some(c)
    }
}

/// What the kernel side does with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserveMode {
    /// Count per process and kind in a BPF hash map; nothing reaches user space until it
    /// reads the map.
    Count,
    /// Every event (kind, tgid, time) through a BPF ring buffer to a user-space thread.
    Ring,
    /// As [`Ring`](Self::Ring), but nothing for trusted processes
    /// ([`FileObserver::trust`]), and of the writes only the first per process per 100 ms.
    Filtered,
}

impl ObserveMode {
    /// Stable short name.
    pub fn name(self) -> &'static str {
        match self {
            ObserveMode::Count => "count",
            ObserveMode::Ring => "ring",
            ObserveMode::Filtered => "filtered",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            ObserveMode::Count => "ward_c_",
            ObserveMode::Ring => "ward_r_",
            ObserveMode::Filtered => "ward_f_",
        }
    }
}

/// Counters of a [`FileObserver`] so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObserverStats {
    /// Events seen: counted in the kernel ([`ObserveMode::Count`]), or delivered to user
    /// space (the ring modes; after [`FileObserver::detach`], every one submitted).
    pub events: u64,
    /// `events` per kind.
    pub by_kind: KindCounts,
    /// Ring modes: records the kernel put into the ring buffer.
    pub submitted: u64,
    /// Ring modes: events lost because the ring buffer was full, plus records that could
    /// not be decoded. Non-zero means user space did not see everything.
    pub dropped: u64,
    /// [`ObserveMode::Filtered`]: events the kernel did not send (trusted process, or a
    /// write within the window).
    pub suppressed: u64,
    /// [`ObserveMode::Count`]: events of processes the full hash map had no room for
    /// (still in `by_kind`); [`ObserveMode::Filtered`]: writes emitted without window
    /// state because that map was full.
    pub untracked: u64,
}

/// Everything that can go wrong starting or reading the observer.
#[derive(Debug, thiserror::Error)]
pub enum FileObserverError {
    /// Loading tracing programs needs root.
    #[error("the BPF file observer needs root (CAP_BPF, CAP_PERFMON, and CAP_SYS_ADMIN to mount tracefs)")]
    NotRoot,
    /// tracefs is neither mounted nor mountable.
    #[error("tracefs is not available ({0}); syscall tracepoints cannot be attached without it (`mount -t tracefs nodev /sys/kernel/tracing`; the kernel needs CONFIG_FTRACE_SYSCALLS)")]
    Tracefs(String),
    /// The kernel refused the programs (verifier) or a map.
    #[error(
        "loading the BPF file observer failed: {message}; verifier/libbpf log (head):\n{log_head}"
    )]
    Load {
        /// libbpf's error.
        message: String,
        /// The first lines of what libbpf and the verifier said.
        log_head: String,
    },
    /// Attaching a required hook failed.
    #[error("attaching the BPF file observer to tracepoint {tracepoint} failed: {message}")]
    Attach {
        /// `category/name`.
        tracepoint: String,
        /// libbpf's error.
        message: String,
    },
    /// A map operation failed.
    #[error("BPF map {map}: {op} failed: {message}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// What was attempted.
        op: &'static str,
        /// libbpf's error.
        message: String,
    },
    /// Setting up the ring buffer or its thread failed.
    #[error("the BPF file observer's ring buffer: {0}")]
    Ring(String),
}

/// What the drain thread has delivered.
#[derive(Default)]
struct Delivered {
    total: KindCounts,
    by_tgid: HashMap<u32, KindCounts>,
    undecodable: u64,
}

impl Delivered {
    fn record(&mut self, rec: &[u8]) {
        let kind = rec
            .get(12..16)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .filter(|k| (*k as usize) < KINDS);
        let tgid = rec
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes);
        match (rec.len() >= EVENT_SIZE, kind, tgid) {
            (true, Some(k), Some(t)) => {
                let k = k as usize;
                self.total.0[k] += 1;
                self.by_tgid.entry(t).or_default().0[k] += 1;
            }
            _ => self.undecodable += 1,
        }
    }
}

struct Drain {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Tracepoint programs of one [`ObserveMode`], attached host-wide; detached on drop.
pub struct FileObserver {
    // Field order is drop order: links first (detach), then the rest.
    links: Vec<Link>,
    drain: Option<Drain>,
    delivered: Arc<Mutex<Delivered>>,
    procs: MapHandle,
    totals: MapHandle,
    counters: MapHandle,
    trusted: MapHandle,
    mode: ObserveMode,
    missing: Vec<&'static str>,
    obj: Object,
}

impl std::fmt::Debug for FileObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileObserver")
            .field("mode", &self.mode)
            .field("attached", &self.links.len())
            .field("missing", &self.missing)
            .finish_non_exhaustive()
    }
}

impl FileObserver {
    /// Load the programs of `mode` and attach them (host-wide); in the ring modes, start
    /// the thread that drains the ring buffer.
    ///
    /// Errors: [`FileObserverError::NotRoot`], [`FileObserverError::Tracefs`],
    /// [`FileObserverError::Load`], [`FileObserverError::Attach`] (a required hook),
    /// [`FileObserverError::Map`], [`FileObserverError::Ring`].
    pub fn start(mode: ObserveMode) -> Result<FileObserver, FileObserverError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(FileObserverError::NotRoot);
        }
        let ring_bytes = match mode {
            // The count mode does not use the ring: the smallest one the kernel accepts.
            ObserveMode::Count => ring_size(0),
            _ => ring_size(RING_BYTES),
        }
        .map_err(|e| FileObserverError::Ring(e.to_string()))?;
        let prefix = mode.prefix();
        let obj = with_captured_log(|| {
            let mut open = ObjectBuilder::default().open_memory(OBJECT)?;
            for mut m in open.maps_mut() {
                if m.name() == "events" {
                    m.set_max_entries(ring_bytes)?;
                }
            }
            for mut p in open.progs_mut() {
                let ours = p.name().to_str().is_some_and(|n| n.starts_with(prefix));
                p.set_autoload(ours);
            }
            open.load()
        })
        .map_err(|(e, log)| {
            if e.kind() == ErrorKind::PermissionDenied {
                FileObserverError::NotRoot
            } else {
                FileObserverError::Load {
                    message: format!("{e:#}"),
                    log_head: log_head(&log),
                }
            }
        })?;

        let handle = |name: &'static str| -> Result<MapHandle, FileObserverError> {
            let map =
                obj.maps()
                    .find(|m| m.name() == name)
                    .ok_or_else(|| FileObserverError::Map {
                        map: name,
                        op: "find",
                        message: "not in the BPF object (build mismatch)".into(),
                    })?;
            MapHandle::try_from(&map).map_err(|e| map_error(name, "dup fd", &e))
        };
        let events_map = handle("events")?;
        let procs = handle("procs")?;
        let totals = handle("totals")?;
        let counters = handle("counters")?;
        let trusted = handle("trusted")?;

        // The ring buffer and its drain thread, before attaching: no event waits unread.
        let delivered = Arc::new(Mutex::new(Delivered::default()));
        let drain = if mode == ObserveMode::Count {
            None
        } else {
            let sink = Arc::clone(&delivered);
            let mut builder = RingBufferBuilder::new();
            builder
                .add(&events_map, move |rec: &[u8]| {
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .record(rec);
                    0
                })
                .map_err(|e| FileObserverError::Ring(format!("{e:#}")))?;
            let ring = builder
                .build()
                .map_err(|e| FileObserverError::Ring(format!("{e:#}")))?;
            let stop = Arc::new(AtomicBool::new(false));
            let s = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name("ward-bpf-files".into())
                .spawn(move || {
                    let mut errors = 0u32;
                    while !s.load(Ordering::Acquire) {
                        if let Err(e) = ring.poll(Duration::from_millis(50)) {
                            if e.kind() != ErrorKind::Interrupted {
                                errors += 1;
                                if errors == 1 {
                                    tracing::warn!("polling the file observer's ring: {e:#}");
                                }
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                    // The programs are detached: what is in the ring now is all there is.
                    if let Err(e) = ring.consume() {
                        tracing::warn!("draining the file observer's ring: {e:#}");
                    }
                })
                .map_err(|e| FileObserverError::Ring(format!("cannot start its thread: {e}")))?;
            Some(Drain { stop, thread })
        };

        let mut observer = FileObserver {
            links: Vec::with_capacity(HOOKS.len()),
            drain,
            delivered,
            procs,
            totals,
            counters,
            trusted,
            mode,
            missing: Vec::new(),
            obj,
        };
        // On an error below, `observer` is dropped: what was attached is detached again.
        {
            let tracefs = Tracefs::ensure()?;
            for (suffix, category, tp, required) in HOOKS {
                let name = format!("{prefix}{suffix}");
                let prog = observer
                    .obj
                    .progs_mut()
                    .find(|p| p.name().to_str() == Some(name.as_str()))
                    .ok_or_else(|| FileObserverError::Attach {
                        tracepoint: format!("{category}/{tp}"),
                        message: format!("program {name} not in the BPF object (build mismatch)"),
                    })?;
                let cat = TracepointCategory::Custom(category.to_string());
                match prog.attach_tracepoint(cat, tp) {
                    Ok(link) => observer.links.push(link),
                    Err(e) if !required && !tracefs.has(category, tp) => {
                        tracing::debug!("no tracepoint {category}/{tp} on this kernel ({e:#})");
                        observer.missing.push(tp);
                    }
                    Err(e) => {
                        return Err(FileObserverError::Attach {
                            tracepoint: format!("{category}/{tp}"),
                            message: format!("{e:#}"),
                        })
                    }
                }
            }
        }
        tracing::debug!(
            mode = mode.name(),
            hooks = observer.links.len(),
            missing = ?observer.missing,
            "BPF file observer attached"
        );
        Ok(observer)
    }

    /// The mode it was started in.
    pub fn mode(&self) -> ObserveMode {
        self.mode
    }

    /// Optional tracepoints this kernel does not have (e.g. `sys_enter_unlink` on arm64).
    pub fn missing_hooks(&self) -> &[&'static str] {
        &self.missing
    }

    /// Whether the programs are still attached.
    pub fn attached(&self) -> bool {
        !self.links.is_empty()
    }

    /// Kernel ids of the loaded programs (`bpftool prog show id ID`), for diagnostics and
    /// for checking that they are gone after drop.
    pub fn program_ids(&self) -> Vec<u32> {
        let prefix = self.mode.prefix();
        self.obj
            .progs()
            .filter(|p| p.name().to_str().is_some_and(|n| n.starts_with(prefix)))
            .filter_map(|p| libbpf_rs::Program::id_from_fd(p.as_fd()).ok())
            .collect()
    }

    /// Detach every program; in the ring modes, wait until the drain thread has read
    /// everything submitted and stopped. Idempotent; the counters stay readable.
    pub fn detach(&mut self) {
        if !self.links.is_empty() {
            // Closing the link descriptors detaches the programs.
            self.links.clear();
            tracing::debug!(mode = self.mode.name(), "BPF file observer detached");
        }
        if let Some(d) = self.drain.take() {
            d.stop.store(true, Ordering::Release);
            if d.thread.join().is_err() {
                tracing::warn!("the file observer's drain thread panicked");
            }
        }
    }

    /// Exempt `tgid` from [`ObserveMode::Filtered`]'s events (other modes ignore it).
    pub fn trust(&self, tgid: u32) -> Result<(), FileObserverError> {
        self.trusted
            .update(&tgid.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| map_error("trusted", "update", &e))
    }

    /// Counters so far (see [`ObserverStats`]).
    pub fn stats(&self) -> Result<ObserverStats, FileObserverError> {
        let by_kind;
        let mut undecodable = 0;
        if self.mode == ObserveMode::Count {
            let mut c = KindCounts::default();
            let per_cpu = self
                .totals
                .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| map_error("totals", "lookup", &e))?
                .unwrap_or_default();
            for v in &per_cpu {
                c.add(&KindCounts::decode(v).unwrap_or_default());
            }
            for key in self.procs.keys() {
                // An entry removed meanwhile (its process exited) is in `totals` now; a
                // racing read may miss or double it, which a final read after detach does
                // not.
                if let Ok(Some(v)) = self.procs.lookup(&key, MapFlags::ANY) {
                    c.add(&KindCounts::decode(&v).unwrap_or_default());
                }
            }
            by_kind = c;
        } else {
            let d = self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            by_kind = d.total;
            undecodable = d.undecodable;
        }
        Ok(ObserverStats {
            events: by_kind.total(),
            by_kind,
            submitted: self.counter(COUNTER_SUBMITTED)?,
            dropped: self.counter(COUNTER_DROPPED)?.saturating_add(undecodable),
            suppressed: self.counter(COUNTER_SUPPRESSED)?,
            untracked: self.counter(COUNTER_UNTRACKED)?,
        })
    }

    /// Events of process `tgid` so far, per kind: in the count mode, those of its live
    /// entry (a process that has exited is folded into the totals); in the ring modes,
    /// those delivered.
    pub fn counts_of(&self, tgid: u32) -> Result<KindCounts, FileObserverError> {
        if self.mode == ObserveMode::Count {
            let v = self
                .procs
                .lookup(&tgid.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| map_error("procs", "lookup", &e))?;
            Ok(v.and_then(|v| KindCounts::decode(&v)).unwrap_or_default())
        } else {
            let d = self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Ok(d.by_tgid.get(&tgid).copied().unwrap_or_default())
        }
    }

    fn counter(&self, index: u32) -> Result<u64, FileObserverError> {
        let per_cpu = self
            .counters
            .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| map_error("counters", "lookup", &e))?
            .unwrap_or_default();
        Ok(per_cpu
            .iter()
            .filter_map(|v| v.get(..8)?.try_into().ok())
            .map(u64::from_ne_bytes)
            .fold(0u64, u64::saturating_add))
    }
}

impl Drop for FileObserver {
    fn drop(&mut self) {
        self.detach();
    }
}

fn map_error(map: &'static str, op: &'static str, e: &libbpf_rs::Error) -> FileObserverError {
    FileObserverError::Map {
        map,
        op,
        message: format!("{e:#}"),
    }
}

/// Serialises tracefs mounting within this process.
static TRACEFS: Mutex<()> = Mutex::new(());
const TRACEFS_DIR: &str = "/sys/kernel/tracing";
/// libbpf prefers this one when it exists (debugfs mounted).
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// tracefs, available while this lives; unmounted on drop if it was mounted for it.
struct Tracefs {
    _serial: std::sync::MutexGuard<'static, ()>,
    root: PathBuf,
    mounted: bool,
}

impl Tracefs {
    fn ensure() -> Result<Tracefs, FileObserverError> {
        let serial = TRACEFS.lock().unwrap_or_else(PoisonError::into_inner);
        // The directory libbpf will read (it checks for the debugfs one first).
        let root = if Path::new(DEBUGFS_TRACING).exists() {
            PathBuf::from(DEBUGFS_TRACING)
        } else {
            PathBuf::from(TRACEFS_DIR)
        };
        if root.join("events").is_dir() {
            return Ok(Tracefs {
                _serial: serial,
                root,
                mounted: false,
            });
        }
        use nix::mount::{mount, MsFlags};
        mount(
            Some("tracefs"),
            &root,
            Some("tracefs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| {
            FileObserverError::Tracefs(format!("mounting it at {}: {e}", root.display()))
        })?;
        tracing::debug!("mounted tracefs at {} to attach", root.display());
        Ok(Tracefs {
            _serial: serial,
            root,
            mounted: true,
        })
    }

    /// Whether the kernel has this tracepoint.
    fn has(&self, category: &str, tp: &str) -> bool {
        self.root.join("events").join(category).join(tp).exists()
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.mounted {
            // The attached tracepoints do not need it any more.
            if let Err(e) = nix::mount::umount2(&self.root, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!("unmounting tracefs at {}: {e}", self.root.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_object_is_a_bpf_elf() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([OBJECT[18], OBJECT[19]]), 247);
    }

    #[test]
    fn program_names_fit_the_kernel_limit() {
        for (suffix, ..) in HOOKS {
            for mode in [ObserveMode::Count, ObserveMode::Ring, ObserveMode::Filtered] {
                assert!(mode.prefix().len() + suffix.len() <= 15, "{suffix}");
            }
        }
    }

    #[test]
    fn records_decode() {
        let mut d = Delivered::default();
        let mut rec = Vec::new();
        rec.extend_from_slice(&7u64.to_ne_bytes());
        rec.extend_from_slice(&42u32.to_ne_bytes());
        rec.extend_from_slice(&1u32.to_ne_bytes());
        d.record(&rec);
        d.record(&rec[..12]);
        let mut bad = rec.clone();
        bad[12] = 9;
        d.record(&bad);
        assert_eq!(d.total.get(FileEventKind::Write), 1);
        assert_eq!(d.by_tgid[&42].total(), 1);
        assert_eq!(d.undecodable, 2);
        let c = KindCounts::decode(&[1u8; 56]).unwrap();
        assert_eq!(c.total(), 7 * u64::from_ne_bytes([1; 8]));
        assert!(KindCounts::decode(&[0u8; 55]).is_none());
    }
}
