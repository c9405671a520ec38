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
//!
//! Each consumer runs on its own thread until dropped; it only ever answers "allow", so it
//! cannot block the workload for longer than a wake-up.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use ward_sys::decode;
use ward_sys::fanotify::{self as fan, Fanotify};

/// Which subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    /// Blocking `FAN_OPEN_PERM` + `FAN_CLOSE_WRITE`, answered at once.
    OpenPerm,
    /// Notification-only groups: close-write (fd) and names (FID).
    Notify,
}

impl Floor {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Floor::OpenPerm => "do-nothing FAN_OPEN_PERM consumer",
            Floor::Notify => "do-nothing notification consumer",
        }
    }
}

/// A running consumer; stopped (and its groups closed) when dropped.
pub struct Consumer {
    stop: Arc<AtomicBool>,
    events: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Consumer {
    /// Subscribe to the filesystem holding `path` and start consuming.
    pub fn start(floor: Floor, path: &Path) -> std::io::Result<Consumer> {
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
            stop,
            events,
            thread: Some(thread),
        })
    }

    /// Events consumed so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
