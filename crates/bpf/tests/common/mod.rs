//! Test fixtures: a network namespace of the test's own with an interface carrying
//! 10.214.0.1-30 (and fd00:214::1), listeners inside it, child processes started in it,
//! and a lock so that only one test at a time attaches programs (the check that nothing
//! stays attached compares the cgroup's program list before and after).
//!
//! Everything is torn down on Drop, also when a test fails: children are killed (only the
//! ones the test started) and reaped, the namespace is deleted.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const ADDRS: u8 = 30;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip (print why, pass) when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("skipping: this test loads BPF programs and creates network namespaces, which needs root");
            return;
        }
    };
}

pub fn addr(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 214, 0, i)
}

pub const V6: &str = "fd00:214::1";

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace created by this test; deleted on Drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(tag: &str) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ward-bpf-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name }; // from here on, Drop deletes it
                                 // (No `dummy` driver on every kernel: a veth pair kept inside the namespace does.)
        let mut batch = String::from(
            "link set lo up\nlink add wd0 type veth peer name wd1\nlink set wd0 up\nlink set wd1 up\n",
        );
        for i in 1..=ADDRS {
            batch.push_str(&format!("addr add {}/24 dev wd0\n", addr(i)));
        }
        batch.push_str(&format!("addr add {V6}/64 dev wd0 nodad\n"));
        let mut child = Command::new("ip")
            .args(["-n", &ns.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("ip -batch");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(batch.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "configuring {}", ns.name);
        // Many short connections in the benchmark: a wide port range, no TIME_WAIT reuse issue.
        run(&[
            "ip",
            "netns",
            "exec",
            &ns.name,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_local_port_range=1024 65000",
        ]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Run `f` on a thread that has entered this namespace (network namespaces are
    /// per-thread); sockets it creates live in the namespace.
    pub fn in_ns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            let ns = File::open(&path).expect("open netns");
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// A thread in the namespace that accepts (and drops) connections on `addrs` until the
    /// returned guard is dropped.
    pub fn listen(&self, addrs: Vec<SocketAddr>) -> Listeners {
        self.listen_opts(addrs, false)
    }

    /// Like [`listen`](Self::listen), but keeps the accepted connections open (so the
    /// client's sockets stay ESTABLISHED) until the guard is dropped.
    pub fn listen_holding(&self, addrs: Vec<SocketAddr>) -> Listeners {
        self.listen_opts(addrs, true)
    }

    fn listen_opts(&self, addrs: Vec<SocketAddr>, hold: bool) -> Listeners {
        let path = self.path();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let ns = File::open(&path).expect("open netns");
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let ls: Vec<TcpListener> = addrs
                .iter()
                .map(|a| {
                    let l = TcpListener::bind(a).unwrap_or_else(|e| panic!("bind {a}: {e}"));
                    // A deep accept queue (listen() again updates the backlog), so that a
                    // burst never finds it full while this thread waits for a core.
                    let backlog = nix::sys::socket::Backlog::MAXCONN;
                    nix::sys::socket::listen(&l, backlog).expect("listen");
                    l.set_nonblocking(true).unwrap();
                    l
                })
                .collect();
            tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut held = Vec::new();
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                // Wake at once on a new connection (a full accept queue would drop SYNs and
                // turn a connect into a 1 s retransmission).
                let mut fds: Vec<nix::poll::PollFd> = ls
                    .iter()
                    .map(|l| nix::poll::PollFd::new(l.as_fd(), nix::poll::PollFlags::POLLIN))
                    .collect();
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u16));
                for l in &ls {
                    while let Ok((s, _)) = l.accept() {
                        if hold {
                            held.push(s);
                        }
                    }
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("listeners did not start");
        Listeners {
            stop,
            thread: Some(thread),
        }
    }

    /// Start `bash -c script` inside the namespace with piped stdin/stdout.
    pub fn bash(&self, script: &str) -> Kid {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "bash", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bash in netns");
        Kid::new(child)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub struct Listeners {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A child process the test started; killed and reaped on Drop.
pub struct Kid {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Kid {
    fn new(mut child: Child) -> Kid {
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Kid {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines of stdout up to and including one equal to `marker` (bounded wait).
    pub fn until(&self, marker: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l == marker => return got,
                Ok(l) => got.push(l),
                Err(e) => {
                    std::thread::sleep(Duration::from_millis(100));
                    let status = self.child_status();
                    let err = self
                        .stderr
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    panic!("child never printed {marker:?} ({e}; {status}); got {got:?}; stderr: {err}")
                }
            }
        }
    }

    fn child_status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map(|s| format!("stat: {s}"))
            .unwrap_or_else(|_| "exited".into())
    }

    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serialises the tests that attach programs, across test processes (nextest).
pub fn attach_lock() -> nix::fcntl::Flock<File> {
    let f = File::create("/run/lock/ward-bpf-tests.lock")
        .or_else(|_| File::create(std::env::temp_dir().join("ward-bpf-tests.lock")))
        .expect("lock file");
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut f = f;
    loop {
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => return l,
            Err((back, _)) if Instant::now() < deadline => {
                f = back;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((_, e)) => panic!("attach lock: {e}"),
        }
    }
}

/// IDs and names of the programs attached to `cgroup` itself, per bpftool.
pub fn attached(cgroup: &std::path::Path) -> Vec<(u64, String)> {
    let out = Command::new("bpftool")
        .args(["-j", "cgroup", "show"])
        .arg(cgroup)
        .output()
        .expect("bpftool (scripts/setup-bpf.sh installs it)");
    assert!(
        out.status.success(),
        "bpftool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_str(&text).expect("bpftool json");
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("id")?.as_u64()?, p.get("name")?.as_str()?.to_string())))
        .collect()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// IDs and names of every loaded BPF program whose name starts with `ward_`, per bpftool.
pub fn ward_programs() -> Vec<(u64, String)> {
    let out = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .expect("bpftool (scripts/setup-bpf.sh installs it)");
    assert!(out.status.success(), "bpftool prog show failed");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?;
            name.starts_with("ward_")
                .then(|| Some((p.get("id")?.as_u64()?, name.to_string())))?
        })
        .collect()
}
