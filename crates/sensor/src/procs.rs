//! Process attribution: who is pid N, who is its parent, what does it run.
//!
//! Sources, in order of preference: the process-events connector (fork/exec/exit, so that
//! the parent of a child that has already been reaped is still known), then `/proc` read
//! at first sighting. Entries are keyed by pid and checked against the start time so a
//! reused pid is never confused with the process that had it before.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use ward_engine::{ProcId, ProcInfo};
use ward_sys::proc_connector::ProcEvent;

/// What ward knows about one process.
#[derive(Clone, Debug)]
struct Entry {
    start: u64,
    ppid: Option<u32>,
    exe: Option<String>,
    cmdline: Option<Vec<String>>,
    uid: u32,
    /// The engine has been told about this process (with the current exe/cmdline).
    announced: bool,
    exited: Option<Instant>,
}

impl Entry {
    /// A process first seen in `/proc` (exe and cmdline filled in by the caller).
    fn new(f: &ProcFacts) -> Entry {
        Entry {
            start: f.start,
            ppid: Some(f.ppid),
            exe: None,
            cmdline: None,
            uid: f.uid,
            announced: false,
            exited: None,
        }
    }
}

/// Facts read from `/proc/PID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcFacts {
    pub ppid: u32,
    pub start: u64,
    pub uid: u32,
    pub exe: String,
    pub cmdline: Vec<String>,
}

/// Read `/proc/PID/{stat,status,exe,cmdline}`. `None` if the process is gone.
pub fn read_proc(pid: u32) -> Option<ProcFacts> {
    let ward_sys::procfs::ProcStat { ppid, start, .. } = ward_sys::procfs::stat(pid)?;
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|u| u.parse().ok())
        })
        .unwrap_or(u32::MAX);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| parse_cmdline(&b))
        .unwrap_or_default();
    Some(ProcFacts {
        ppid,
        start,
        uid,
        exe,
        cmdline,
    })
}

fn parse_cmdline(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Daemons that fork one worker per client connection, each worker running the daemon's
/// own program for one client (Samba's smbd). The daemon is a boundary; each worker is the
/// root of that client's lineage, so two clients are never one lineage and the daemon is
/// never blamed.
pub const PER_CLIENT_SERVERS: &[&str] = &["smbd"];

/// The process table.
pub struct ProcTable {
    entries: HashMap<u32, Entry>,
    /// Pids that are never blamed: 0, 1, 2, ward and its ancestors.
    boundary: std::collections::BTreeSet<u32>,
    /// Executable base names treated as boundaries (daemons that spawn unrelated work).
    boundary_exes: Vec<String>,
    /// How long the entry of an exited process is kept for late events.
    linger: Duration,
    /// Exits of processes the engine knows, not yet handed out (see [`ProcTable::take_exits`]).
    exits: Vec<ProcId>,
}

impl ProcTable {
    /// `boundary_exes`: base names such as `sshd`, `cron`, `systemd`.
    pub fn new(boundary_exes: Vec<String>) -> ProcTable {
        ProcTable {
            entries: HashMap::new(),
            boundary: ward_sys::procfs::self_and_ancestors(),
            boundary_exes,
            linger: Duration::from_secs(30),
            exits: Vec::new(),
        }
    }

    /// Whether `pid` is ward itself or one of its ancestors (or pid 1/2).
    pub fn is_protected_pid(&self, pid: u32) -> bool {
        self.boundary.contains(&pid)
    }

    /// Apply a connector event.
    pub fn apply(&mut self, ev: ProcEvent, now: Instant) {
        match ev {
            ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
            } if child_pid == child_tgid => {
                let facts = read_proc(child_tgid);
                let parent = self.entries.get(&parent_tgid).cloned();
                let e = Entry {
                    start: facts.as_ref().map(|f| f.start).unwrap_or(0),
                    ppid: Some(parent_tgid),
                    // A fork runs its parent's program until it execs.
                    exe: facts
                        .as_ref()
                        .map(|f| f.exe.clone())
                        .or_else(|| parent.as_ref().and_then(|p| p.exe.clone())),
                    cmdline: facts
                        .as_ref()
                        .map(|f| f.cmdline.clone())
                        .or_else(|| parent.as_ref().and_then(|p| p.cmdline.clone())),
                    uid: facts.as_ref().map(|f| f.uid).unwrap_or(u32::MAX),
                    announced: false,
                    exited: None,
                };
                self.entries.insert(child_tgid, e);
            }
            ProcEvent::Fork { .. } => {}
            ProcEvent::Exec { tgid } => {
                if let Some(f) = read_proc(tgid) {
                    let e = self.entries.entry(tgid).or_insert_with(|| Entry::new(&f));
                    e.exe = Some(f.exe);
                    e.cmdline = Some(f.cmdline);
                    e.uid = f.uid;
                    e.announced = false;
                } else if let Some(e) = self.entries.get_mut(&tgid) {
                    e.announced = false;
                }
            }
            ProcEvent::Exit { pid, tgid } if pid == tgid => {
                if let Some(e) = self.entries.get_mut(&tgid) {
                    e.exited = Some(now);
                    if e.announced && self.exits.len() < 100_000 {
                        self.exits.push(ProcId {
                            pid: tgid,
                            start: e.start,
                        });
                    }
                }
            }
            ProcEvent::Exit { .. } => {}
        }
    }

    /// Forget exited processes older than the linger time.
    pub fn expire(&mut self, now: Instant) {
        let linger = self.linger;
        self.entries
            .retain(|_, e| e.exited.is_none_or(|t| now.duration_since(t) < linger));
    }

    fn ensure(&mut self, pid: u32) -> bool {
        if let Some(e) = self.entries.get(&pid) {
            if e.exited.is_some() || e.exe.is_some() {
                return true;
            }
        }
        match read_proc(pid) {
            Some(f) => {
                let e = self.entries.entry(pid).or_insert_with(|| Entry::new(&f));
                if e.start != f.start && e.start != 0 {
                    // pid reused: a new process.
                    *e = Entry::new(&f);
                }
                e.start = f.start;
                e.ppid = Some(f.ppid);
                e.exe = Some(f.exe);
                e.cmdline = Some(f.cmdline);
                e.uid = f.uid;
                true
            }
            None => self.entries.contains_key(&pid),
        }
    }

    /// The identity of `pid`, resolving it (and its ancestors) if needed. Appends a
    /// `ProcInfo` to `announce` for every process of the chain the engine has not been
    /// told about yet, ancestors first.
    pub fn resolve(&mut self, pid: u32, announce: &mut Vec<ProcInfo>) -> ProcId {
        let mut chain = Vec::new();
        let mut p = pid;
        for _ in 0..64 {
            if !self.ensure(p) {
                break;
            }
            chain.push(p);
            let e = &self.entries[&p];
            if e.announced && p != pid {
                break;
            }
            match e.ppid {
                Some(pp) if pp > 0 && p > 1 => p = pp,
                _ => break,
            }
        }
        for &p in chain.iter().rev() {
            let boundary = self.is_boundary(p);
            let parent = self.entries[&p].ppid.and_then(|pp| {
                self.entries.get(&pp).map(|pe| ProcId {
                    pid: pp,
                    start: pe.start,
                })
            });
            let e = self.entries.get_mut(&p).expect("chain entries exist");
            if !e.announced {
                e.announced = true;
                announce.push(ProcInfo {
                    id: ProcId {
                        pid: p,
                        start: e.start,
                    },
                    parent,
                    exe: e.exe.clone().unwrap_or_default(),
                    cmdline: e.cmdline.clone().unwrap_or_default(),
                    uid: e.uid,
                    boundary,
                });
            }
        }
        ProcId {
            pid,
            start: self.entries.get(&pid).map(|e| e.start).unwrap_or(0),
        }
    }

    /// Exits of processes the engine was told about, since the last call (in order).
    pub fn take_exits(&mut self) -> Vec<ProcId> {
        std::mem::take(&mut self.exits)
    }

    fn is_boundary(&self, pid: u32) -> bool {
        if self.boundary.contains(&pid) {
            return true;
        }
        let Some(e) = self.entries.get(&pid) else {
            return false;
        };
        let Some(exe) = &e.exe else { return false };
        let base = exe.rsplit('/').next().unwrap_or(exe);
        if !self.boundary_exes.iter().any(|b| b == base) {
            return false;
        }
        // A per-client server's worker (an smbd child serving one SMB client) is the root
        // of its own lineage, not a boundary: its parent, the daemon, is the boundary.
        if PER_CLIENT_SERVERS.contains(&base) {
            let parent_same = e
                .ppid
                .and_then(|pp| self.entries.get(&pp))
                .and_then(|pe| pe.exe.as_deref())
                .is_some_and(|pexe| pexe.rsplit('/').next() == Some(base));
            if parent_same {
                return false;
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has an entry for `pid` (from the connector or `/proc`).
    pub fn knows(&self, pid: u32) -> bool {
        self.entries.contains_key(&pid)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Open `/proc/TID/syscall` files, kept between events: a process that opens thousands of
/// files costs one `pread` per open instead of open, stat, two reads and a close. A kept
/// file names the task it was opened for: once that task is gone it reads as an error
/// (`ESRCH`), never as another process that reused the pid, and is opened again.
#[derive(Default)]
pub struct SyscallFiles {
    files: HashMap<u32, std::fs::File>,
}

/// Syscall files kept at most (then all are closed and reopened as needed).
const MAX_SYSCALL_FILES: usize = 256;

impl SyscallFiles {
    /// Does `pid` intend to write the file it is opening right now?
    ///
    /// While a process waits in a fanotify permission event for an open, the open's flags
    /// are visible in `/proc/PID/syscall` (`257 dirfd path flags mode ...` for `openat`,
    /// `2 path flags mode` for `open`). Without `FAN_REPORT_TID` the event names the
    /// process, not the thread, so every thread is checked. `Some(true)` for write access
    /// or `O_TRUNC`, `Some(false)` for a read-only open, `None` when it cannot be told
    /// (`openat2`, whose flags are behind a pointer; io_uring; the process is gone).
    pub fn open_write_intent(&mut self, pid: u32) -> Option<bool> {
        if let Some(w) = self.line(pid).and_then(|s| parse_open_syscall(&s)) {
            return w;
        }
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        let mut found = None;
        for t in tasks.flatten() {
            let tid = t.file_name();
            if tid.to_str() == Some(&pid.to_string()) {
                continue;
            }
            if let Some(w) = std::fs::read_to_string(t.path().join("syscall"))
                .ok()
                .and_then(|s| parse_open_syscall(&s))
            {
                match w {
                    Some(true) | None => return w,
                    Some(false) => found = Some(Some(false)),
                }
            }
        }
        found.flatten()
    }

    /// Is thread `tid`, held in a pre-content permission event, *reading* its file?
    ///
    /// `FAN_PRE_ACCESS` does not say read or write; the blocked thread's
    /// `/proc/TID/syscall` does (`read`, `pread64`, `readv`, `preadv`, `preadv2`). `false`
    /// for writes and for anything that cannot be told (a page fault, `sendfile`,
    /// `splice`, `copy_file_range`, the thread is gone): those count as possible writes.
    pub fn access_is_read(&mut self, tid: u32) -> bool {
        self.line(tid).is_some_and(|s| parse_read_syscall(&s))
    }

    /// Forget the file of `pid` (it exited).
    pub fn forget(&mut self, pid: u32) {
        self.files.remove(&pid);
    }

    /// The current `/proc/TID/syscall` line of `tid` (opened again once if the kept file
    /// no longer reads).
    fn line(&mut self, tid: u32) -> Option<String> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 512];
        for fresh in [false, true] {
            if fresh || !self.files.contains_key(&tid) {
                self.files.remove(&tid);
                if self.files.len() >= MAX_SYSCALL_FILES {
                    self.files.clear();
                }
                let f = std::fs::File::open(format!("/proc/{tid}/syscall")).ok()?;
                self.files.insert(tid, f);
            }
            let f = self.files.get(&tid)?;
            match f.read_at(&mut buf, 0) {
                Ok(n) if n > 0 => {
                    return std::str::from_utf8(&buf[..n]).ok().map(str::to_owned);
                }
                _ => {
                    self.files.remove(&tid);
                }
            }
        }
        None
    }
}

/// Parse one `/proc/TID/syscall` line. Outer `None`: the thread is not in an open call.
/// Inner value as for [`SyscallFiles::open_write_intent`].
pub fn parse_open_syscall(line: &str) -> Option<Option<bool>> {
    let mut it = line.split_whitespace();
    let nr: i64 = it.next()?.parse().ok()?;
    let args: Vec<u64> = it
        .take(6)
        .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .collect();
    let flags = match nr {
        2 => *args.get(1)?,            // open(path, flags, mode)
        257 => *args.get(2)?,          // openat(dirfd, path, flags, mode)
        85 => return Some(Some(true)), // creat
        437 => return Some(None),      // openat2: flags behind a pointer
        _ => return None,
    };
    const O_ACCMODE: u64 = 3;
    const O_TRUNC: u64 = 0o1000;
    Some(Some(flags & O_ACCMODE != 0 || flags & O_TRUNC != 0))
}

/// See [`SyscallFiles::access_is_read`]: whether a `/proc/TID/syscall` line is a read call.
pub fn parse_read_syscall(line: &str) -> bool {
    // x86_64 numbers, like `parse_open_syscall`.
    const READS: [i64; 5] = [0, 17, 19, 295, 327];
    line.split_whitespace()
        .next()
        .and_then(|n| n.parse::<i64>().ok())
        .is_some_and(|n| cfg!(target_arch = "x86_64") && READS.contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_syscall_files_read_again_and_never_outlive_their_task() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let mut files = SyscallFiles::default();
        // The child is in a sleep call; each read of the kept file is a fresh line.
        let mut lines = Vec::new();
        for _ in 0..50 {
            lines = (0..3).filter_map(|_| files.line(pid)).collect();
            if lines.iter().all(|l| !l.starts_with("running")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(lines.len(), 3, "three reads of one kept file: {lines:?}");
        assert!(lines.iter().all(|l| l == &lines[0]), "{lines:?}");
        assert_eq!(files.files.len(), 1);
        assert_eq!(files.open_write_intent(pid), None, "not in an open call");
        child.kill().unwrap();
        child.wait().unwrap();
        // Gone: the kept file fails, the pid cannot be opened again, nothing is kept.
        assert_eq!(files.line(pid), None);
        assert!(files.files.is_empty());
    }

    #[test]
    fn parses_read_syscalls() {
        assert!(parse_read_syscall(
            "17 0x5 0x7ffe42a4bde0 0x64 0x2000 0x0 0x0 0x7ff 0x7f"
        ));
        assert!(parse_read_syscall(
            "0 0x3 0x7ffe 0x1000 0x0 0x0 0x0 0x7ff 0x7f"
        ));
        assert!(!parse_read_syscall(
            "18 0x5 0x7ffe42a4bde0 0x1000 0x10000 0x0 0x0 0x7 0x7"
        ));
        assert!(!parse_read_syscall(
            "1 0x5 0x7ffe 0x1000 0x0 0x0 0x0 0x7ff 0x7f"
        ));
        assert!(!parse_read_syscall("-1 0x7ffe 0x7f"));
        assert!(!parse_read_syscall("running"));
        assert!(!parse_read_syscall(""));
    }

    #[test]
    fn parses_open_syscalls() {
        assert_eq!(
            parse_open_syscall("257 0xffffff9c 0x7ffe 0x80201 0x1b6 0x0 0x0 0x7ff 0x7f"),
            Some(Some(true))
        );
        assert_eq!(
            parse_open_syscall("257 0xffffff9c 0x7ffe 0x80000 0x0 0x0 0x0 0x7ff 0x7f"),
            Some(Some(false))
        );
        assert_eq!(
            parse_open_syscall("2 0x7ffe 0x42 0x1b6 0x0 0x0 0x0 0x7ff 0x7f"),
            Some(Some(true))
        );
        assert_eq!(
            parse_open_syscall("2 0x7ffe 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7f"),
            Some(Some(false))
        );
        assert_eq!(
            parse_open_syscall("257 0xffffff9c 0x7ffe 0x200 0x0 0x0 0x0 0x7ff 0x7f"),
            Some(Some(true))
        );
        assert_eq!(
            parse_open_syscall("437 0x1 0x2 0x3 0x18 0x0 0x0 0x7ff 0x7f"),
            Some(None)
        );
        assert_eq!(
            parse_open_syscall("0 0x3 0x7ffe 0x1000 0x0 0x0 0x0 0x7ff 0x7f"),
            None
        );
        assert_eq!(parse_open_syscall("running"), None);
        assert_eq!(parse_open_syscall(""), None);
    }

    #[test]
    fn resolves_self_chain_as_boundary() {
        let mut t = ProcTable::new(vec![]);
        let mut ann = Vec::new();
        let me = t.resolve(std::process::id(), &mut ann);
        assert_eq!(me.pid, std::process::id());
        assert!(!ann.is_empty());
        assert!(ann.iter().all(|p| p.boundary));
        // Second resolution announces nothing new.
        let mut again = Vec::new();
        t.resolve(std::process::id(), &mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn child_is_not_boundary_and_links_parent() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut t = ProcTable::new(vec![]);
        let mut ann = Vec::new();
        let id = t.resolve(child.id(), &mut ann);
        let info = ann.iter().find(|p| p.id == id).unwrap();
        assert!(!info.boundary);
        assert_eq!(info.parent.map(|p| p.pid), Some(std::process::id()));
        assert!(info.exe.ends_with("sleep"));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn smbd_workers_are_lineage_roots_and_the_daemon_a_boundary() {
        let mut t = ProcTable::new(vec!["smbd".into(), "sshd".into()]);
        let e = |ppid, exe: &str| Entry {
            start: 1,
            ppid: Some(ppid),
            exe: Some(exe.into()),
            cmdline: Some(vec![]),
            uid: 0,
            announced: false,
            exited: None,
        };
        // pids far above pid_max defaults, so they never name a live process.
        t.entries.insert(90_000_001, e(1, "/usr/sbin/smbd"));
        t.entries
            .insert(90_000_002, e(90_000_001, "/usr/sbin/smbd"));
        t.entries.insert(90_000_003, e(1, "/usr/sbin/sshd"));
        t.entries
            .insert(90_000_004, e(90_000_003, "/usr/sbin/sshd"));
        assert!(t.is_boundary(90_000_001), "the smbd daemon is a boundary");
        assert!(
            !t.is_boundary(90_000_002),
            "an smbd client worker is a lineage root"
        );
        assert!(t.is_boundary(90_000_003) && t.is_boundary(90_000_004));
    }

    #[test]
    fn a_process_gone_before_its_first_event_is_linked_once_its_fork_is_applied() {
        // A short-lived child (rm in `xargs sh -c '... && rm'`) that exited before ward
        // read its event: /proc has nothing, so only the connector's fork tells its parent.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut t = ProcTable::new(vec![]);
        let mut ann = Vec::new();
        let id = t.resolve(pid, &mut ann);
        assert!(!t.knows(pid), "nothing in /proc for a reaped child");
        assert!(ann.is_empty());
        assert_eq!(id.start, 0);
        t.apply(
            ProcEvent::Fork {
                parent_tgid: std::process::id(),
                child_pid: pid,
                child_tgid: pid,
            },
            Instant::now(),
        );
        assert!(t.knows(pid));
        let mut ann = Vec::new();
        let again = t.resolve(pid, &mut ann);
        assert_eq!(again, id, "the same identity the first event was given");
        let info = ann.iter().find(|p| p.id == again).expect("announced now");
        assert_eq!(info.parent.map(|p| p.pid), Some(std::process::id()));
    }
}
