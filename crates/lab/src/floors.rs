//! Do-nothing kernel consumers for `ward bench --floors`: what a subscription costs before
//! any of ward's own work, measured in the same run as ward (BRIEF §6 gives the same
//! table for a minimal C consumer).
//!
//! * [`Floor::OpenPerm`] — the subscription of ward's content group: `FAN_OPEN_PERM` and
//!   `FAN_CLOSE_WRITE` on the whole filesystem (fd mode), every permission event answered
//!   "allow" at once, nothing else done. The floor of any design that holds every open.
//! * [`Floor::Notify`] — notification only: `FAN_CLOSE_WRITE` (fd mode) plus `FAN_CREATE`,
//!   `FAN_DELETE`, `FAN_RENAME` with names (FID mode), events read and dropped. The floor
//!   of a design that holds nothing (no copy before the first write is possible).
//! * [`Floor::BpfCount`] — no fanotify: BPF tracepoint programs (ward-bpf's
//!   [`FileObserver`]) on the `sys_enter_*` tracepoints of the open (`openat`, `openat2`,
//!   `open`, `creat`), write (`write`, `pwrite64`, `writev`, `pwritev`, `pwritev2`,
//!   `copy_file_range`), unlink (`unlinkat`, `unlink`) and rename (`renameat2`,
//!   `renameat`, `rename`) calls and on `sched_process_exec`/`fork`/`exit`, of every process
//!   on the host, each event counted per process and kind in a BPF hash map; nothing
//!   reaches user space (the count is read at the end). The floor of a design that
//!   aggregates in the kernel and wakes user space only rarely (BRIEF §6's 1.065× row, with
//!   the legacy and vectored calls added, which gzip and cp make).
//! * [`Floor::BpfRing`] — the same hooks, every event (kind, tgid, time) through a BPF ring
//!   buffer to a user-space thread that counts it (ring-buffer overflows are counted and
//!   reported). The floor of "every event to user space through BPF".
//! * [`Floor::BpfFiltered`] — as `BpfRing`, but the kernel sends nothing for trusted
//!   processes (none during the bench) and of the writes only the first per process per
//!   100 ms. The floor of a design that filters in the kernel and sends only what changes
//!   its picture.
//!
//! The fanotify consumers watch the scratch filesystem only; the BPF floors see every
//! process on the host (a tracepoint cannot be scoped to a filesystem without reading the
//! call's arguments), so their event counts include whatever else runs meanwhile. Where
//! BPF cannot load (not root, no BPF, no tracefs), [`Consumer::start`] says why and the
//! bench reports the floor as unavailable.
//!
//! Each fanotify consumer runs on its own thread until dropped; it only ever answers
//! "allow", so it cannot block the workload for longer than a wake-up. The BPF programs
//! are detached when the consumer is dropped (also on a panic) or the process dies.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use ward_bpf::{FileObserver, ObserveMode};
use ward_sys::decode;
use ward_sys::fanotify::{self as fan, Fanotify};

/// Which subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    /// Blocking `FAN_OPEN_PERM` + `FAN_CLOSE_WRITE`, answered at once.
    OpenPerm,
    /// Notification-only groups: close-write (fd) and names (FID).
    Notify,
    /// BPF tracepoints counting per process in the kernel, nothing sent.
    BpfCount,
    /// BPF tracepoints, every event through a ring buffer to user space.
    BpfRing,
    /// BPF tracepoints, untrusted processes' events and their first write per 100 ms.
    BpfFiltered,
}

impl Floor {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Floor::OpenPerm => "do-nothing FAN_OPEN_PERM consumer",
            Floor::Notify => "do-nothing notification consumer",
            Floor::BpfCount => "BPF tracepoints, count in kernel",
            Floor::BpfRing => "BPF tracepoints, every event to ring",
            Floor::BpfFiltered => "BPF tracepoints, filtered to ring",
        }
    }
}

/// Why a consumer could not start.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// What a consumer saw, read when it is stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloorStats {
    /// Events consumed (fanotify: read; BPF count: counted in the kernel; BPF ring modes:
    /// delivered to user space).
    pub events: u64,
    /// Events lost on the way (BPF ring buffer full); fanotify groups here have unlimited
    /// queues.
    pub dropped: u64,
}

/// A running consumer; stopped (its groups closed, its programs detached) when dropped or
/// [`finish`](Consumer::finish)ed.
pub struct Consumer {
    inner: Inner,
}

enum Inner {
    Fanotify {
        stop: Arc<AtomicBool>,
        events: Arc<AtomicU64>,
        thread: Option<JoinHandle<()>>,
    },
    Bpf(Box<FileObserver>),
}

impl Consumer {
    /// Subscribe (fanotify: to the filesystem holding `path`; BPF: host-wide) and start
    /// consuming.
    pub fn start(floor: Floor, path: &Path) -> Result<Consumer, StartError> {
        let ev_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as libc::c_uint;
        let init = fan::FAN_CLOEXEC
            | fan::FAN_NONBLOCK
            | fan::FAN_UNLIMITED_QUEUE
            | fan::FAN_UNLIMITED_MARKS;
        let fs_mark = fan::FAN_MARK_ADD | fan::FAN_MARK_FILESYSTEM;
        let mut groups = Vec::new();
        match floor {
            Floor::OpenPerm => {
                let g = Fanotify::init(init | fan::FAN_CLASS_CONTENT, ev_flags)?;
                g.mark(fs_mark, fan::FAN_OPEN_PERM | fan::FAN_CLOSE_WRITE, path)?;
                groups.push(g);
            }
            Floor::BpfCount => return Consumer::bpf(ObserveMode::Count),
            Floor::BpfRing => return Consumer::bpf(ObserveMode::Ring),
            Floor::BpfFiltered => return Consumer::bpf(ObserveMode::Filtered),
            Floor::Notify => {
                let g = Fanotify::init(init | fan::FAN_CLASS_NOTIF, ev_flags)?;
                g.mark(fs_mark, fan::FAN_CLOSE_WRITE, path)?;
                groups.push(g);
                let n = Fanotify::init(
                    init | fan::FAN_CLASS_NOTIF | fan::FAN_REPORT_DFID_NAME,
                    ev_flags,
                )?;
                let names = fan::FAN_CREATE | fan::FAN_DELETE | fan::FAN_ONDIR;
                n.mark(fs_mark, names | fan::FAN_RENAME, path)
                    .or_else(|_| {
                        n.mark(
                            fs_mark,
                            names | fan::FAN_MOVED_FROM | fan::FAN_MOVED_TO,
                            path,
                        )
                    })?;
                groups.push(n);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(AtomicU64::new(0));
        let (s, e) = (Arc::clone(&stop), Arc::clone(&events));
        let thread = std::thread::Builder::new()
            .name(format!("floor-{floor:?}"))
            .spawn(move || consume(&groups, &s, &e))?;
        Ok(Consumer {
            inner: Inner::Fanotify {
                stop,
                events,
                thread: Some(thread),
            },
        })
    }

    fn bpf(mode: ObserveMode) -> Result<Consumer, StartError> {
        let o = FileObserver::start(mode)?;
        Ok(Consumer {
            inner: Inner::Bpf(Box::new(o)),
        })
    }

    /// Stop consuming (BPF: detach and drain what is pending) and say what was seen.
    pub fn finish(mut self) -> Result<FloorStats, StartError> {
        self.stop();
        match &self.inner {
            Inner::Fanotify { events, .. } => Ok(FloorStats {
                events: events.load(Ordering::Relaxed),
                dropped: 0,
            }),
            Inner::Bpf(o) => {
                let s = o.stats()?;
                Ok(FloorStats {
                    events: s.events,
                    dropped: s.dropped,
                })
            }
        }
    }

    fn stop(&mut self) {
        match &mut self.inner {
            Inner::Fanotify { stop, thread, .. } => {
                stop.store(true, Ordering::Relaxed);
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
            Inner::Bpf(o) => o.detach(),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn consume(groups: &[Fanotify], stop: &AtomicBool, events: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pfds: Vec<nix::poll::PollFd<'_>> = groups
        .iter()
        .map(|g| {
            use std::os::fd::AsFd;
            nix::poll::PollFd::new(g.as_fd(), nix::poll::PollFlags::POLLIN)
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        if nix::poll::poll(&mut pfds, nix::poll::PollTimeout::from(100u16)).is_err() {
            continue;
        }
        for g in groups {
            while let Ok(n) = g.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for ev in decode::events(&buf[..n]).flatten() {
                    events.fetch_add(1, Ordering::Relaxed);
                    if let Some(fd) = ev.fd.and_then(fan::own_event_fd) {
                        if ev.mask & fan::FAN_OPEN_PERM != 0 {
                            let _ = g.respond(fd.as_raw_fd(), true);
                        }
                    }
                }
            }
        }
    }
}
