//! # ward-bpf
//!
//! ward's observation point for **worm fan-out**: which process on this server opens TCP
//! connections to the SMB ports (445, 139; configurable) of which addresses, and the means to
//! refuse every further connection of a convicted process *in the kernel*, before it reaches
//! another host. The detection rule (distinct addresses per lineage in a window) is the
//! engine's; this crate only observes and, when told, refuses.
//!
//! Two sources behind one small trait, [`ConnectSource`]:
//! - [`ConnectMonitor`] (feature `bpf`, default): a BPF program on the cgroup-v2 root's
//!   `connect4`/`connect6` hooks. It sees every `connect(2)` (and TCP fast-open
//!   `sendto`, and io_uring connects, which pass the same socket-layer hook) of every process
//!   in every cgroup and network namespace, *before* the connection is attempted, so
//!   connects to dead hosts count too. Events reach user space through a ring buffer;
//!   reservation failures are counted, never silent. Needs root and Linux ≥ 5.8, no BTF.
//! - [`ProcNetSource`]: polls `/proc/PID/net/tcp{,6}` of every network namespace for
//!   sockets in `SYN_SENT`/`ESTABLISHED`/`CLOSE_WAIT` towards a watched port and maps socket inodes to
//!   processes. For hosts where BPF is unavailable; it cannot refuse connections and misses
//!   connections shorter than its poll interval (see its docs).
//!
//! [`start_best`] tries the BPF monitor and falls back to procfs, returning why.
//!
//! What this crate must never do: refuse a connection of a process user space did not put
//! in the deny set; leave a program attached after the [`ConnectMonitor`] is dropped (it
//! attaches through `bpf_link`s, which the kernel detaches when their descriptors close,
//! also when ward crashes); drop an event without counting it; panic on what the kernel
//! or `/proc` hands it.
//!
//! Apart from that, behind the same feature: [`FileObserver`], BPF tracepoint programs on
//! the file syscalls and exec/fork/exit of every process, counting in the kernel or sending
//! every event through a ring buffer. It is what `ward bench --floors` times as the floor of
//! a BPF-tracepoint design; ward's protection does not use it.
//!
//! Times ([`ConnectEvent::time_ns`]) are `CLOCK_MONOTONIC` nanoseconds: the BPF side uses
//! `bpf_ktime_get_ns()`, which is the monotonic clock (it does not advance during suspend),
//! and the procfs fallback reads `CLOCK_MONOTONIC` when it first sees a socket.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cgroup;
mod event;
#[cfg(feature = "bpf")]
mod files;
#[cfg(feature = "bpf")]
mod monitor;
mod procnet;

use std::io;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

pub use cgroup::{cgroup2_root, parse_cgroup2_root};
pub use event::{decode_event, EVENT_SIZE};
#[cfg(feature = "bpf")]
pub use files::{
    FileEventKind, FileObserver, FileObserverError, KindCounts, ObserveMode, ObserverStats, KINDS,
};
#[cfg(feature = "bpf")]
pub use monitor::ConnectMonitor;
pub use procnet::ProcNetSource;

/// The ports watched by default: SMB over TCP (445) and NetBIOS session service (139).
pub const DEFAULT_PORTS: [u16; 2] = [445, 139];

/// One outbound connection attempt to a watched port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectEvent {
    /// Process id (thread-group id) of the caller.
    pub pid: u32,
    /// Thread id of the caller (equal to `pid` for the procfs fallback, which cannot tell).
    pub tid: u32,
    /// Real uid of the caller (procfs fallback: the socket's owner uid).
    pub uid: u32,
    /// Destination address. IPv4-mapped IPv6 destinations are reported as IPv4.
    pub addr: IpAddr,
    /// Destination port.
    pub port: u16,
    /// `CLOCK_MONOTONIC` nanoseconds of the attempt (BPF: at the connect; procfs: when
    /// first seen).
    pub time_ns: u64,
    /// The kernel refused this connect because `pid` is in the deny set ([`ConnectSource::deny`]).
    pub denied: bool,
}

/// Counters of a source, monotonically increasing over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectStats {
    /// Events delivered to user space by [`ConnectSource::read`].
    pub events: u64,
    /// Events lost: BPF ring buffer full (reservation failed in the kernel), or records
    /// that could not be decoded. Non-zero means the picture is incomplete; say so.
    pub dropped: u64,
    /// Connects refused in the kernel because the caller was in the deny set.
    pub denied: u64,
}

/// Which implementation a [`ConnectSource`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// [`ConnectMonitor`]: BPF cgroup connect hooks.
    Bpf,
    /// [`ProcNetSource`]: polling `/proc/PID/net/tcp{,6}`.
    ProcNet,
}

impl SourceKind {
    /// Stable short name for logs and the `ready` event.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Bpf => "bpf-cgroup-connect",
            SourceKind::ProcNet => "procfs-poll",
        }
    }
}

/// A source of [`ConnectEvent`]s that a poll loop can drive.
///
/// Integration: if [`fd`](Self::fd) is `Some`, add it to poll(2)/epoll for `POLLIN` and
/// call [`read`](Self::read) when it is readable; otherwise call `read` every
/// [`poll_interval`](Self::poll_interval). `read` never blocks either way, and calling it
/// more often is harmless (the procfs source scans at most once per interval).
///
/// ```no_run
/// use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
/// # fn main() -> Result<(), ward_bpf::BpfError> {
/// let (mut src, why) = ward_bpf::start_best(&ward_bpf::MonitorOptions::default())?;
/// if let Some(why) = why {
///     eprintln!("BPF unavailable ({why}); polling /proc: short connections can be missed");
/// }
/// let timeout = src
///     .poll_interval()
///     .map_or(PollTimeout::from(1000u16), |d| PollTimeout::from(d.as_millis() as u16));
/// let mut events = Vec::new();
/// loop {
///     if let Some(fd) = src.fd() {
///         // ... together with the loop's other descriptors
///         let _ = poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], timeout);
///     } else {
///         let _ = poll(&mut [], timeout);
///     }
///     events.clear();
///     src.read(&mut events)?;
///     for e in &events {
///         // e.denied: the kernel refused it (the process is already denied)
///         println!("{} (uid {}) -> {}:{} at {} ns", e.pid, e.uid, e.addr, e.port, e.time_ns);
///     }
///     if src.stats().dropped > 0 { /* report: the picture is incomplete */ }
///     # break;
/// }
/// # Ok(()) }
/// ```
pub trait ConnectSource: Send {
    /// What this source is.
    fn kind(&self) -> SourceKind;
    /// A descriptor that becomes readable (`POLLIN`) when events are pending, if the
    /// source has one.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// How often to call [`read`](Self::read) when [`fd`](Self::fd) is `None` (for a
    /// source with a descriptor: `None`).
    fn poll_interval(&self) -> Option<Duration>;
    /// Appends the pending events to `out` without blocking; returns how many it appended.
    fn read(&mut self, out: &mut Vec<ConnectEvent>) -> Result<usize, BpfError>;
    /// Counters so far.
    fn stats(&self) -> ConnectStats;
    /// Whether [`deny`](Self::deny) can refuse connections (only the BPF monitor can).
    fn can_deny(&self) -> bool;
    /// Refuse, in the kernel, every further connect (any port, TCP or UDP, IPv4 or IPv6)
    /// of process `tgid`: it fails with `EPERM`. Threads of `tgid` are covered; processes it
    /// forks afterwards only when [`deny_follows_lineage`](Self::deny_follows_lineage)
    /// (otherwise deny each member of the lineage).
    fn deny(&mut self, tgid: u32) -> Result<(), BpfError>;
    /// Whether the kernel extends a denial to processes the denied one forks, and drops
    /// the entry when the process has exited (BPF monitor with kernel BTF).
    fn deny_follows_lineage(&self) -> bool {
        false
    }
    /// Undo [`deny`](Self::deny); returns whether `tgid` was denied. Call it when the
    /// process has exited, so that a recycled pid is not refused.
    fn allow(&mut self, tgid: u32) -> Result<bool, BpfError>;
}

/// How to start a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorOptions {
    /// Destination ports to report (at most 64). Default: [`DEFAULT_PORTS`].
    pub ports: Vec<u16>,
    /// Report connects to this host itself (127.0.0.0/8, ::1, 0.0.0.0, ::, and their
    /// IPv4-mapped forms). Default `false`: a worm spreads to *other* hosts, while local SMB
    /// clients (smbclient to localhost, monitoring probes) are common and would only add
    /// noise. Denial applies to loopback destinations regardless.
    pub report_loopback: bool,
    /// Root of the cgroup-v2 hierarchy to attach to. Default: found with [`cgroup2_root`].
    pub cgroup: Option<PathBuf>,
    /// Ring buffer size in bytes (rounded up to a power of two, at least one page).
    /// Each event takes 48 bytes there. Default 256 KiB (about 5 400 events between reads).
    pub ring_bytes: u32,
    /// Poll interval of the procfs fallback. Default 250 ms: a connect to an unreachable
    /// host stays in `SYN_SENT` for at least 1 s (first retransmission), so a sweep of dead
    /// addresses is still seen whole, at about 1 % of a core (one scan costs ~2.7 ms of CPU
    /// here, mostly the kernel walking its TCP hash table once per read of the table).
    pub procfs_interval: Duration,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            ports: DEFAULT_PORTS.to_vec(),
            report_loopback: false,
            cgroup: None,
            ring_bytes: 256 * 1024,
            procfs_interval: Duration::from_millis(250),
        }
    }
}

/// Everything that can go wrong; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// Loading BPF programs needs root (CAP_BPF + CAP_NET_ADMIN).
    #[error("the BPF connect monitor needs root (CAP_BPF and CAP_NET_ADMIN); run ward as root, or accept the procfs fallback")]
    NotRoot,
    /// No cgroup-v2 hierarchy is mounted.
    #[error("no cgroup2 filesystem is mounted (looked for /sys/fs/cgroup and /sys/fs/cgroup/unified in /proc/self/mountinfo); mount one (`mount -t cgroup2 none /sys/fs/cgroup/unified`) or boot with systemd.unified_cgroup_hierarchy")]
    CgroupV2NotMounted,
    /// The cgroup directory could not be opened.
    #[error("cannot open cgroup {path}: {source}; pass an existing cgroup-v2 directory")]
    CgroupOpen {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// This build has no BPF support (built without the `bpf` feature).
    #[error("ward was built without BPF support (ward-bpf feature `bpf`); rebuild with it after `scripts/setup-bpf.sh`, or accept the procfs fallback")]
    NotBuilt,
    /// The options are unusable.
    #[error("invalid connect monitor options: {0}")]
    InvalidOptions(String),
    /// The kernel lacks something the program needs.
    #[error("this kernel cannot run the BPF connect monitor: {0}; it needs Linux >= 5.8 with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF (the procfs fallback works without)")]
    Unsupported(String),
    /// The kernel refused the program (verifier) or a map.
    #[error("loading the BPF connect program failed: {message}; verifier/libbpf log (head):\n{log_head}")]
    Load {
        /// libbpf's error.
        message: String,
        /// The first lines of what libbpf and the verifier said.
        log_head: String,
    },
    /// Attaching to the cgroup failed.
    #[error("attaching {hook} to cgroup {path} failed: {message}; is {path} the cgroup-v2 root, and does the kernel have CONFIG_CGROUP_BPF?")]
    Attach {
        /// `connect4` or `connect6`.
        hook: &'static str,
        /// The cgroup directory.
        path: PathBuf,
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
    /// The deny set is full.
    #[error("the in-kernel deny set is full ({0} processes); allow() exited processes first")]
    DenyFull(u32),
    /// This source cannot refuse connections.
    #[error("the {0} connect source cannot refuse connections in the kernel; freeze or kill the process instead")]
    DenyUnsupported(&'static str),
    /// Reading the ring buffer failed.
    #[error("reading the BPF ring buffer failed: {0}")]
    Ring(String),
    /// Reading /proc failed.
    #[error("reading {path} failed: {source}; is /proc mounted?")]
    Proc {
        /// What was read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Start the best source available: the BPF monitor, else the procfs fallback.
///
/// Returns the source and, when it is the fallback, why BPF could not be used (log it and
/// put it in the `ready` event: the fallback cannot refuse connections and misses short
/// ones).
pub fn start_best(
    opts: &MonitorOptions,
) -> Result<(Box<dyn ConnectSource>, Option<BpfError>), BpfError> {
    #[cfg(feature = "bpf")]
    let why = match ConnectMonitor::start(opts) {
        Ok(m) => return Ok((Box::new(m), None)),
        Err(e) => e,
    };
    #[cfg(not(feature = "bpf"))]
    let why = BpfError::NotBuilt;
    let fallback = ProcNetSource::new(opts)?;
    Ok((Box::new(fallback), Some(why)))
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of [`ConnectEvent::time_ns`].
pub fn monotonic_now_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec() as u64),
        Err(_) => 0,
    }
}

pub(crate) fn validate_ports(ports: &[u16]) -> Result<(), BpfError> {
    if ports.is_empty() {
        return Err(BpfError::InvalidOptions(
            "no ports to watch; give at least one (default 445, 139)".into(),
        ));
    }
    if ports.len() > 64 {
        return Err(BpfError::InvalidOptions(format!(
            "{} ports given, at most 64 are supported",
            ports.len()
        )));
    }
    if ports.contains(&0) {
        return Err(BpfError::InvalidOptions("port 0 cannot be watched".into()));
    }
    Ok(())
}
