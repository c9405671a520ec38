//! # ward-response
//!
//! Containment of a guilty process lineage: **freeze first, then kill**.
//!
//! 1. *Freeze*: `SIGSTOP` to the lineage root, then to every descendant found in `/proc`,
//!    rescanning until no new member appears (a fork racing the freeze is caught on the
//!    next pass, and a stopped parent cannot fork again). Stopped processes can do no
//!    more damage, and their open files and memory stay intact for inspection.
//! 2. *Kill*: `SIGKILL` to every frozen member.
//!
//! Safety: a process is signalled only if it is the root or a descendant of it, and its
//! start time matches the identity the engine convicted (so a reused pid is never hit).
//! pid 1, ward itself and ward's ancestors are refused, whatever the caller says.
//!
//! The agent talks to responders through the [`Responder`] trait: [`LineageResponder`]
//! (freeze, then kill a local process tree) is the one here; the SMB client responder
//! (freeze the client's smbd process, block its address, end its session) implements the
//! same trait. This crate never decides *whether* to act: the engine and agent do.

#![forbid(unsafe_code)]

pub mod smb;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A process identity: pid and start time (`/proc/PID/stat` field 22). `start == 0`
/// means "unknown": then only the pid is checked.
pub use ward_model::ProcId as Target;
use ward_model::{Action, Client, ProcId};

/// What to contain: a convicted lineage, and the SMB client behind it if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// Root of the lineage (for an SMB client: the smbd process serving it).
    pub root: ProcId,
    /// Members the engine knows of (contained too if the root already exited).
    pub members: Vec<ProcId>,
    /// The SMB client the lineage serves.
    pub client: Option<Client>,
}

/// A way of stopping an attack. `freeze` must be fast (it decides how many more files
/// the attacker reaches); `finish` may take longer (kill, block, end a session).
pub trait Responder: Send {
    /// Short name for logs (`lineage`, `smb-client`).
    fn name(&self) -> &'static str;
    /// Whether this responder is the one for `s`.
    fn handles(&self, s: &Subject) -> bool;
    /// Stop the subject from doing anything more, at once.
    fn freeze(&mut self, s: &Subject) -> Containment;
    /// Finish the containment: with `kill`, end the frozen processes (or the client's
    /// session); without, leave them frozen. Returns what was done.
    fn finish(&mut self, s: &Subject, c: &mut Containment, kill: bool) -> Action;
}

/// Local process lineages: SIGSTOP the tree, then SIGKILL it.
#[derive(Debug, Default)]
pub struct LineageResponder;

impl Responder for LineageResponder {
    fn name(&self) -> &'static str {
        "lineage"
    }

    fn handles(&self, _: &Subject) -> bool {
        true
    }

    fn freeze(&mut self, s: &Subject) -> Containment {
        freeze(s.root, &s.members)
    }

    fn finish(&mut self, _: &Subject, c: &mut Containment, kill: bool) -> Action {
        if c.frozen.is_empty() {
            Action::Exited
        } else if kill {
            kill_frozen(c);
            Action::Killed
        } else {
            Action::Frozen
        }
    }
}

/// What a containment did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Containment {
    /// Processes stopped, root first.
    pub frozen: Vec<u32>,
    /// Processes killed.
    pub killed: Vec<u32>,
    /// Time spent freezing.
    pub freeze_time: Duration,
    /// The root had already exited: nothing to freeze (its damage is still recorded).
    pub root_gone: bool,
}

fn stat(pid: u32) -> Option<(char, u32, u64)> {
    ward_sys::procfs::stat(pid).map(|s| (s.state, s.ppid, s.start))
}

/// Map of every live process to its parent.
fn process_tree() -> BTreeMap<u32, u32> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some((_, ppid, _)) = stat(pid) {
                    m.insert(pid, ppid);
                }
            }
        }
    }
    m
}

/// pids that must never be signalled: 0, 1, 2, ourselves and our ancestors.
pub fn untouchable() -> BTreeSet<u32> {
    ward_sys::procfs::self_and_ancestors()
}

/// Descendants of `root` (not including it) in `tree`.
fn descendants(tree: &BTreeMap<u32, u32>, root: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in tree {
            if pp == p && c != root && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// Freeze the lineage rooted at `root` (and the extra `members` the engine knows of, if
/// they are still descendants or the root). Returns the pids stopped.
pub fn freeze(root: Target, members: &[Target]) -> Containment {
    let t0 = Instant::now();
    let never = untouchable();
    let mut c = Containment::default();
    let alive = |t: &Target| match stat(t.pid) {
        Some((state, _, start)) => state != 'Z' && (t.start == 0 || start == t.start),
        None => false,
    };
    let mut roots = Vec::new();
    if alive(&root) {
        roots.push(root.pid);
    } else {
        c.root_gone = true;
        // The root exited (a short-lived process); its live known members are contained
        // instead, each with its own descendants.
        roots.extend(members.iter().filter(|m| alive(m)).map(|m| m.pid));
    }
    roots.retain(|p| !never.contains(p));
    let mut frozen: BTreeSet<u32> = BTreeSet::new();
    for &r in &roots {
        if kill(Pid::from_raw(r as i32), Signal::SIGSTOP).is_ok() && frozen.insert(r) {
            c.frozen.push(r);
        }
    }
    // Rescan until stable: children forked before their parent stopped are caught.
    for _ in 0..10 {
        let tree = process_tree();
        let mut new = 0;
        for &r in &roots {
            for d in descendants(&tree, r) {
                if never.contains(&d) || frozen.contains(&d) {
                    continue;
                }
                if kill(Pid::from_raw(d as i32), Signal::SIGSTOP).is_ok() {
                    frozen.insert(d);
                    c.frozen.push(d);
                    new += 1;
                }
            }
        }
        if new == 0 {
            break;
        }
    }
    // A stop takes effect when the target next passes through the kernel: wait (briefly)
    // until no member is still running on a CPU, so "contained" means it can do nothing
    // more. Sleeping members ('S', or 'D' such as one waiting in ward's own permission
    // event) stop as soon as they wake.
    let deadline = Instant::now() + Duration::from_millis(200);
    while Instant::now() < deadline && c.frozen.iter().any(|&p| state(p) == Some('R')) {
        std::thread::sleep(Duration::from_micros(200));
    }
    c.freeze_time = t0.elapsed();
    c
}

/// Kill every process `freeze` stopped.
pub fn kill_frozen(c: &mut Containment) {
    for &p in &c.frozen {
        if kill(Pid::from_raw(p as i32), Signal::SIGKILL).is_ok() {
            c.killed.push(p);
        }
    }
}

/// Has `pid` finished every system call it had under way: stopped (`T`, `t`), exited
/// (zombie, or gone)? A stop or a kill takes effect only at the next return to user
/// space, so a member sleeping in the kernel (`D`: a write waiting for a lock or the
/// disk; `S`) may still complete one more write or truncate after it was signalled.
/// Every thread counts: SIGSTOP stops the whole process, but a thread inside a system
/// call (smbd's pool threads doing the client's pwrite, a multi-threaded encryptor)
/// finishes it first, while `/proc/PID/stat` shows only the main thread.
pub fn settled(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true; // gone
    };
    tasks.flatten().all(|t| {
        let state = std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| ward_sys::procfs::parse_stat(&s))
            .map(|s| s.state);
        !matches!(state, Some('R' | 'D' | 'S' | 'I' | 'W' | 'P'))
    })
}

/// Wait until every process of `pids` is [`settled`], at most `max`, polling every
/// 200 µs. Returns the ones still unsettled (empty: all settled). Killed members settle
/// within microseconds (a kill also cancels their waits on ward's own permission
/// events); a frozen member blocked on a permission event ward has not answered yet
/// stays unsettled until it is answered.
pub fn await_settled(pids: &[u32], max: Duration) -> Vec<u32> {
    let deadline = Instant::now() + max;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| !settled(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Resume processes (used when a freeze turns out to be unwarranted, and by tests).
pub fn thaw(pids: &[u32]) {
    let never = untouchable();
    for &p in pids {
        if !never.contains(&p) {
            let _ = kill(Pid::from_raw(p as i32), Signal::SIGCONT);
        }
    }
}

/// The state letter of a process (`T` when stopped), for tests and diagnostics.
pub fn state(pid: u32) -> Option<char> {
    stat(pid).map(|s| s.0)
}

/// The start time of a process, if alive.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn freezes_and_kills_a_tree_but_never_ourselves() {
        // sh -> (sleep, sleep)
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("sleep 30 & sleep 30 & wait")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let root = Target {
            pid: child.id(),
            start: start_time(child.id()).unwrap(),
        };
        let mut c = freeze(root, &[]);
        assert_eq!(c.frozen.first(), Some(&child.id()));
        assert_eq!(c.frozen.len(), 3, "sh and both sleeps: {:?}", c.frozen);
        std::thread::sleep(Duration::from_millis(50));
        for &p in &c.frozen {
            assert_eq!(state(p), Some('T'), "pid {p} stopped");
        }
        kill_frozen(&mut c);
        child.wait().unwrap();
        assert!(!c.frozen.contains(&std::process::id()));
    }

    #[test]
    fn a_running_member_settles_once_stopped_or_killed() {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("while :; do :; done")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(50));
        // Busy in user space: runnable, not settled.
        assert_eq!(await_settled(&[pid], Duration::from_millis(20)), vec![pid]);
        kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
        assert!(await_settled(&[pid], Duration::from_secs(2)).is_empty());
        assert_eq!(state(pid), Some('T'));
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        assert!(await_settled(&[pid], Duration::from_secs(2)).is_empty());
        child.wait().unwrap();
        assert!(settled(pid), "a reaped process is settled");
    }

    #[test]
    fn a_thread_still_running_keeps_its_process_unsettled() {
        // The main thread has exited (a zombie leader, which is all `/proc/PID/stat`
        // shows) while a second thread still runs: not settled until the process is.
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import ctypes,threading\n\
                 def spin():\n    while True: pass\n\
                 threading.Thread(target=spin).start()\n\
                 ctypes.CDLL(None).pthread_exit(None)",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(state(pid), Some('Z'), "the main thread has exited");
        assert_eq!(await_settled(&[pid], Duration::from_millis(20)), vec![pid]);
        kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
        assert!(await_settled(&[pid], Duration::from_secs(2)).is_empty());
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn refuses_self_and_wrong_start_time() {
        let me = Target {
            pid: std::process::id(),
            start: 0,
        };
        assert!(freeze(me, &[]).frozen.is_empty());
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let wrong = Target {
            pid: child.id(),
            start: 1,
        };
        let c = freeze(wrong, &[]);
        assert!(c.frozen.is_empty() && c.root_gone);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
