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
//! - ward's main thread used no CPU over [`GRACE`] (it is blocked: a deadlock, e.g. on
//!   its own permission event), or it is silent for [`HARD_LIMIT`] whatever it does
//!   (a livelock): the watchdog kills it with `SIGKILL`. The kernel then allows every
//!   pending permission event (fail open) and the watchdog reports it on stderr.
//!
//! A main thread that is merely slow (a heavily loaded machine) keeps using CPU and is
//! not killed before the hard limit. Worst-case stall of another process: `STALL + GRACE`
//! ≈ 1.5 s for a blocked or stopped ward, [`HARD_LIMIT`] for a spinning one. When ward
//! exits the pipe closes and the watchdog exits too.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Silence after which the watchdog acts.
pub const STALL: Duration = Duration::from_millis(1000);
/// Extra time given after a `SIGCONT`, or to show CPU progress, before killing.
pub const GRACE: Duration = Duration::from_millis(500);
/// Silence after which ward is killed even if its main thread is using CPU.
pub const HARD_LIMIT: Duration = Duration::from_secs(5);

/// CPU time (utime + stime, clock ticks) of ward's main thread.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    // After the command name: field 14 (utime) and 15 (stime) are f[11] and f[12].
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn state(pid: i32) -> Option<char> {
    ward_sys::procfs::stat(pid as u32).map(|s| s.state)
}

/// Run the watchdog for `pid`, reading heartbeats from stdin. Returns when ward exits.
pub fn run(pid: i32) -> i32 {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 256];
    let mut last = Instant::now();
    let mut continued_at: Option<Instant> = None;
    let mut cpu_at_check: Option<u64> = None;
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
                    cpu_at_check = None;
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
                let cpu = cpu_ticks(pid);
                if continued_at.is_none() {
                    // Silent: watch its CPU time over the grace period.
                    continued_at = Some(Instant::now());
                    cpu_at_check = cpu;
                    continue;
                }
                let progressing = cpu.is_some() && cpu != cpu_at_check;
                if progressing && last.elapsed() < HARD_LIMIT {
                    // Slow but working (a loaded machine): look again after another grace.
                    continued_at = Some(Instant::now());
                    cpu_at_check = cpu;
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
