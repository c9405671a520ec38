//! The watchdog: a separate process that keeps a stopped or wedged ward from stalling the
//! machine.
//!
//! The kernel has no timeout for fanotify permission events: if ward stops answering, every
//! process that opens a protected file waits. So `ward protect` starts `ward __watchdog`
//! *before* it creates its fanotify groups (the watchdog holds none of them) and writes a
//! heartbeat byte to the watchdog's stdin every loop iteration (at least every 200 ms).
//!
//! If no heartbeat arrives for [`STALL`]:
//! - ward is stopped (`SIGSTOP`, Ctrl-Z, a debugger): the watchdog sends `SIGCONT`;
//! - otherwise, or if it is still silent [`GRACE`] later, ward is wedged: the watchdog
//!   kills it with `SIGKILL`. The kernel then allows every pending permission event
//!   (fail open) and the watchdog reports it on stderr.
//!
//! Worst-case stall of another process: `STALL + GRACE` ≈ 1.5 s. When ward exits the pipe
//! closes and the watchdog exits too.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Silence after which the watchdog acts.
pub const STALL: Duration = Duration::from_millis(1000);
/// Extra time given after a `SIGCONT` before killing.
pub const GRACE: Duration = Duration::from_millis(500);

fn state(pid: i32) -> Option<char> {
    ward_sys::procfs::stat(pid as u32).map(|s| s.state)
}

/// Run the watchdog for `pid`, reading heartbeats from stdin. Returns when ward exits.
pub fn run(pid: i32) -> i32 {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 256];
    let mut last = Instant::now();
    let mut continued_at: Option<Instant> = None;
    loop {
        let ready = {
            let fd = stdin.as_fd();
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) > 0
        };
        if ready {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return 0, // ward exited
                Ok(_) => {
                    last = Instant::now();
                    continued_at = None;
                }
            }
            continue;
        }
        if last.elapsed() < STALL {
            continue;
        }
        match state(pid) {
            None | Some('Z') | Some('X') => return 0,
            Some('T') | Some('t') if continued_at.is_none() => {
                eprintln!(
                    "ward watchdog: ward (pid {pid}) was stopped for {} ms; resuming it so \
                     file access on protected paths does not stall",
                    last.elapsed().as_millis()
                );
                let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
                continued_at = Some(Instant::now());
            }
            _ => {
                if continued_at.is_some_and(|t| t.elapsed() < GRACE) {
                    continue;
                }
                if continued_at.is_none() {
                    // Wedged but running: give it the grace period once.
                    continued_at = Some(Instant::now());
                    continue;
                }
                eprintln!(
                    "ward watchdog: ward (pid {pid}) has not answered for {} ms; killing it so \
                     the kernel allows all pending file access (protection is OFF until ward \
                     is restarted)",
                    last.elapsed().as_millis()
                );
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                return 1;
            }
        }
    }
}
