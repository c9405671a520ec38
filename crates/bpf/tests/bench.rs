//! What the connect monitor costs: `connect(2)` latency inside a network namespace of the
//! test's own, with and without the programs attached, to an SMB port (445: an event per
//! connect, drained by a poll loop on `ConnectMonitor::fd()`) and to a port that is not
//! watched (8080: the program runs and returns at once). Printed, never asserted on time.
//!
//! `cargo test -p ward-bpf --release --test bench -- --ignored --nocapture` (as root).

#![cfg(feature = "bpf")]

mod common;

use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{addr, attach_lock, Netns};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
};
use ward_bpf::{ConnectMonitor, ConnectStats, MonitorOptions};

const TOTAL: usize = 10_000;
/// Many short interleaved rounds: on a shared 2-core machine the load drifts within seconds.
const ROUNDS: usize = 50;

/// `n` connects to `port`; the latency of each `connect(2)` call in ns.
fn connects(ns: &Netns, port: u16, n: usize) -> Vec<u64> {
    ns.in_ns(move || {
        let dst = SockaddrIn::from(SocketAddrV4::new(addr(1), port));
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("socket");
            // Close with RST: no TIME_WAIT pile-up over 40 000 connections.
            setsockopt(
                &fd,
                sockopt::Linger,
                &libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            )
            .expect("SO_LINGER");
            let t = Instant::now();
            connect(fd.as_raw_fd(), &dst).expect("connect");
            lat.push(t.elapsed().as_nanos() as u64);
        }
        lat
    })
}

/// A poll loop like ward's: wait on the monitor's fd, drain, until stopped.
fn drain(mut m: ConnectMonitor, stop: Arc<AtomicBool>) -> (ConnectStats, u64) {
    let mut buf = Vec::new();
    let mut seen = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let ready = {
            let mut fds = [PollFd::new(m.fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(20u16)).unwrap_or(0)
        };
        if ready > 0 {
            seen += m.read(&mut buf).expect("read") as u64;
            buf.clear();
        }
    }
    seen += m.read(&mut buf).expect("read") as u64;
    (m.stats(), seen)
}

/// `kernel.bpf_stats_enabled` on for the benchmark (run time per program), restored on Drop.
struct BpfStats(String);

impl BpfStats {
    fn enable() -> BpfStats {
        let p = "/proc/sys/kernel/bpf_stats_enabled";
        let old = std::fs::read_to_string(p).unwrap_or_else(|_| "0".into());
        let _ = std::fs::write(p, "1");
        BpfStats(old.trim().to_string())
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", &self.0);
    }
}

/// (run_cnt, run_time_ns) of the program `name` attached to `cgroup` (ours: the lock keeps
/// other tests of this crate out; ids present before are excluded by the caller).
fn prog_runtime(ids: &[u64]) -> (u64, u64) {
    let mut cnt = 0;
    let mut ns = 0;
    for id in ids {
        let out = std::process::Command::new("bpftool")
            .args(["-j", "prog", "show", "id", &id.to_string()])
            .output()
            .expect("bpftool");
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        cnt += v.get("run_cnt").and_then(|x| x.as_u64()).unwrap_or(0);
        ns += v.get("run_time_ns").and_then(|x| x.as_u64()).unwrap_or(0);
    }
    (cnt, ns)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn summary(name: &str, v: &mut [u64]) -> (f64, f64) {
    v.sort_unstable();
    let median = v[v.len() / 2] as f64;
    let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
    let p99 = v[v.len() * 99 / 100] as f64;
    let slow = v.iter().filter(|&&l| l > 100_000_000).count();
    println!(
        "{name:<24} n={:<6} median {:>6.0} ns  mean {:>8.0} ns  p99 {:>7.0} ns  >100ms: {slow}",
        v.len(),
        median,
        mean,
        p99
    );
    (median, mean)
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture, as root"]
fn connect_latency_with_and_without_the_monitor() {
    require_root!();
    let _lock = attach_lock();
    let ns = Netns::create("bench");
    let _listeners = ns.listen(vec![(addr(1), 445).into(), (addr(1), 8080).into()]);
    // Warm up (routes, listener, caches).
    connects(&ns, 445, 500);
    connects(&ns, 8080, 500);

    let per = TOTAL / ROUNDS;
    let (mut off445, mut off8080, mut on445, mut on8080) = (vec![], vec![], vec![], vec![]);
    let (mut ratio445, mut ratio8080) = (vec![], vec![]);
    let mut events = 0;
    let mut dropped = 0;
    let _stats = BpfStats::enable();
    let root = ward_bpf::cgroup2_root().unwrap();
    let before: Vec<u64> = common::attached(&root)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let (mut run445, mut run8080) = ((0u64, 0u64), (0u64, 0u64));
    let med = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v[v.len() / 2] as f64
    };
    for round in 0..ROUNDS {
        // Alternate the order so that drift in the machine's load hits both sides alike.
        let attached_first = round % 2 == 1;
        let (mut r_on445, mut r_on8080, mut r_off445, mut r_off8080) = (0.0, 0.0, 0.0, 0.0);
        for phase in 0..2 {
            if (phase == 0) == attached_first {
                let m = ConnectMonitor::start(&MonitorOptions::default()).expect("start");
                let ids: Vec<u64> = common::attached(&root)
                    .into_iter()
                    .filter(|(id, n)| !before.contains(id) && n == "ward_connect4")
                    .map(|(id, _)| id)
                    .collect();
                let stop = Arc::new(AtomicBool::new(false));
                let stop2 = Arc::clone(&stop);
                let drainer = std::thread::spawn(move || drain(m, stop2));
                let a = prog_runtime(&ids);
                let l = connects(&ns, 445, per);
                r_on445 = med(&l);
                on445.extend(l);
                let b = prog_runtime(&ids);
                let l = connects(&ns, 8080, per);
                r_on8080 = med(&l);
                on8080.extend(l);
                let c = prog_runtime(&ids);
                run445 = (run445.0 + b.0 - a.0, run445.1 + b.1 - a.1);
                run8080 = (run8080.0 + c.0 - b.0, run8080.1 + c.1 - b.1);
                stop.store(true, Ordering::Relaxed);
                let (stats, seen) = drainer.join().expect("drain thread");
                events += seen;
                dropped += stats.dropped;
            } else {
                let l = connects(&ns, 445, per);
                r_off445 = med(&l);
                off445.extend(l);
                let l = connects(&ns, 8080, per);
                r_off8080 = med(&l);
                off8080.extend(l);
            }
        }
        ratio445.push(r_on445 / r_off445);
        ratio8080.push(r_on8080 / r_off8080);
    }
    println!("connect(2) latency in a test namespace, {TOTAL} connects per line, {ROUNDS} interleaved rounds:");
    let (m_off445, a_off445) = summary("445, no program", &mut off445);
    let (m_on445, a_on445) = summary("445, monitor attached", &mut on445);
    let (m_off80, a_off80) = summary("8080, no program", &mut off8080);
    let (m_on80, a_on80) = summary("8080, monitor attached", &mut on8080);
    println!(
        "ratio attached/none: port 445 median {:.3} mean {:.3}; port 8080 median {:.3} mean {:.3}",
        m_on445 / m_off445,
        a_on445 / a_off445,
        m_on80 / m_off80,
        a_on80 / a_off80
    );
    println!(
        "median of {ROUNDS} per-round ratios of medians: port 445 {:.3}, port 8080 {:.3}",
        median(&mut ratio445),
        median(&mut ratio8080)
    );
    let per_run = |(cnt, ns): (u64, u64)| {
        if cnt == 0 {
            0.0
        } else {
            ns as f64 / cnt as f64
        }
    };
    println!(
        "in-kernel run time of ward_connect4 (kernel.bpf_stats_enabled): port 445 {:.0} ns/connect over {} runs (ring buffer record), port 8080 {:.0} ns/connect over {} runs",
        per_run(run445),
        run445.0,
        per_run(run8080),
        run8080.0
    );
    println!("events delivered while attached: {events} (expected >= {TOTAL}), dropped: {dropped}");
    assert!(events >= TOTAL as u64, "every SMB connect reported");
    assert_eq!(dropped, 0);
}

/// What one scan of the procfs fallback costs on this host (it runs once per interval).
#[test]
#[ignore = "benchmark: run with --ignored --nocapture, as root"]
fn procfs_fallback_scan_cost() {
    require_root!();
    use ward_bpf::{ConnectSource, ProcNetSource};
    let mut src = ProcNetSource::new(&MonitorOptions {
        procfs_interval: Duration::from_millis(10),
        ..Default::default()
    })
    .unwrap();
    let procs = std::fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .count();
    let mut out = Vec::new();
    let cpu = || {
        let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
        t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
    };
    let (mut wall, mut on_cpu) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(11));
        let (t, c) = (Instant::now(), cpu());
        src.read(&mut out).unwrap();
        on_cpu.push(cpu() - c);
        wall.push(t.elapsed().as_micros() as u64);
    }
    wall.sort_unstable();
    on_cpu.sort_unstable();
    let namespaces: std::collections::BTreeSet<_> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path().join("ns/net")).ok())
        .collect();
    println!(
        "procfs fallback: one scan ({procs} processes, {} network namespaces): CPU median {} us, wall median {} us, wall max {} us; at the default 250 ms interval {:.2}% of one core",
        namespaces.len(),
        on_cpu[on_cpu.len() / 2],
        wall[wall.len() / 2],
        wall[wall.len() - 1],
        on_cpu[on_cpu.len() / 2] as f64 / 250_000.0 * 100.0
    );
}
