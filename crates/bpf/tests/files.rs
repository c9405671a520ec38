//! The BPF file observer for real: in each mode, this test process opens, writes, renames
//! and unlinks files a known number of times and starts a child; the observer must have
//! counted (count mode) or delivered (ring mode, without a drop) at least that many events
//! for this process, the filtered mode must hold back all but the first write of a window,
//! and nothing may stay loaded after the observer is dropped, also when dropped by a panic.
//! Root only (skips with a message otherwise).

#![cfg(feature = "bpf")]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{renameat2, RenameFlags};
use nix::unistd::{unlinkat, UnlinkatFlags};
use ward_bpf::{FileEventKind as K, FileObserver, KindCounts, ObserveMode};

/// Files per round: each one opened once, written three times, renamed and unlinked.
const N: u64 = 300;

/// Does the known work in `dir`: N opens (`openat`), 3N writes, N renames, N unlinks (half
/// through the `*at` calls, half through std, which uses the legacy `rename(2)`/`unlink(2)`
/// on x86-64), and one child process.
fn work(dir: &Path) {
    for i in 0..N {
        let a = dir.join(format!("f{i}"));
        let b = dir.join(format!("g{i}"));
        let mut f = std::fs::File::create(&a).unwrap();
        for _ in 0..3 {
            f.write_all(b"0123456789abcdef").unwrap();
        }
        drop(f);
        if i % 2 == 0 {
            renameat2(None, &a, None, &b, RenameFlags::empty()).unwrap();
            unlinkat(None, &b, UnlinkatFlags::NoRemoveDir).unwrap();
        } else {
            std::fs::rename(&a, &b).unwrap();
            std::fs::remove_file(&b).unwrap();
        }
    }
    let st = std::process::Command::new("true").status().unwrap();
    assert!(st.success());
}

fn loaded(ids: &[u32]) -> Vec<(u64, String)> {
    common::ward_programs()
        .into_iter()
        .filter(|(id, _)| ids.iter().any(|i| u64::from(*i) == *id))
        .collect()
}

/// The programs are gone (the kernel frees them after an RCU grace period).
fn assert_unloaded(ids: &[u32]) {
    let t = Instant::now();
    loop {
        let left = loaded(ids);
        if left.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still loaded 10 s after drop: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tracefs_mounted() -> bool {
    Path::new("/sys/kernel/tracing/events").is_dir()
}

fn run(mode: ObserveMode) -> (KindCounts, ward_bpf::ObserverStats, Vec<u32>) {
    let dir = tempfile::tempdir().unwrap();
    let tracefs_before = tracefs_mounted();
    let mut o = FileObserver::start(mode).unwrap_or_else(|e| panic!("start {mode:?}: {e}"));
    assert_eq!(
        tracefs_mounted(),
        tracefs_before,
        "tracefs is left as it was found"
    );
    assert!(o.attached());
    let ids = o.program_ids();
    assert!(ids.len() >= 8, "every required hook loaded: {ids:?}");
    assert_eq!(loaded(&ids).len(), ids.len(), "bpftool sees them");
    work(dir.path());
    o.detach();
    assert!(!o.attached());
    let stats = o.stats().unwrap();
    let mine = o.counts_of(std::process::id()).unwrap();
    println!("{mode:?}: this process {mine:?}; all {stats:?}");
    drop(o);
    assert_unloaded(&ids);
    (mine, stats, ids)
}

#[test]
fn count_mode_counts_this_process_in_the_kernel() {
    require_root!();
    let _lock = common::attach_lock();
    let (mine, stats, _) = run(ObserveMode::Count);
    assert!(mine.get(K::Open) >= N, "{mine:?}");
    assert!(mine.get(K::Write) >= 3 * N, "{mine:?}");
    assert!(mine.get(K::Rename) >= N, "{mine:?}");
    assert!(mine.get(K::Unlink) >= N, "{mine:?}");
    assert!(mine.get(K::Fork) >= 1, "{mine:?}");
    // The totals include this process and every other one on the host.
    for k in K::ALL {
        assert!(stats.by_kind.get(k) >= mine.get(k), "{k:?}: {stats:?}");
    }
    // `true` exec'd and exited (as its own process, not this one).
    assert!(stats.by_kind.get(K::Exec) >= 1 && stats.by_kind.get(K::Exit) >= 1);
    assert_eq!(stats.events, stats.by_kind.total());
    assert_eq!(stats.submitted, 0, "nothing goes to user space");
    assert_eq!(stats.dropped, 0);
}

#[test]
fn ring_mode_delivers_every_event_without_drops() {
    require_root!();
    let _lock = common::attach_lock();
    let (mine, stats, _) = run(ObserveMode::Ring);
    assert!(mine.get(K::Open) >= N, "{mine:?}");
    assert!(mine.get(K::Write) >= 3 * N, "{mine:?}");
    assert!(mine.get(K::Rename) >= N, "{mine:?}");
    assert!(mine.get(K::Unlink) >= N, "{mine:?}");
    assert!(mine.get(K::Fork) >= 1, "{mine:?}");
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(
        stats.events, stats.submitted,
        "after detach every submitted record is delivered: {stats:?}"
    );
}

#[test]
fn filtered_mode_sends_the_first_write_of_a_window() {
    require_root!();
    let _lock = common::attach_lock();
    let t = Instant::now();
    let (mine, stats, _) = run(ObserveMode::Filtered);
    let windows = t.elapsed().as_millis() as u64 / 100 + 2;
    assert!(mine.get(K::Open) >= N, "opens are all sent: {mine:?}");
    assert!(mine.get(K::Unlink) >= N, "{mine:?}");
    assert!(
        (1..=windows).contains(&mine.get(K::Write)),
        "at most one write per 100 ms window ({windows}): {mine:?}"
    );
    assert!(stats.suppressed >= 3 * N - windows, "{stats:?}");
    assert_eq!(stats.dropped, 0, "{stats:?}");
}

#[test]
fn a_trusted_process_sends_nothing() {
    require_root!();
    let _lock = common::attach_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut o = FileObserver::start(ObserveMode::Filtered).unwrap();
    o.trust(std::process::id()).unwrap();
    work(dir.path());
    o.detach();
    let mine = o.counts_of(std::process::id()).unwrap();
    // Before trust() there were only the observer's own opens: libbpf reads each later
    // hook's tracepoint id from tracefs once the openat hook is attached.
    assert!(mine.get(K::Open) < 20, "{mine:?}");
    assert_eq!(mine.total(), mine.get(K::Open), "{mine:?}");
    assert!(o.stats().unwrap().suppressed >= 6 * N);
}

#[test]
fn a_panic_leaves_nothing_attached() {
    require_root!();
    let _lock = common::attach_lock();
    let ids = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(|| {
        let o = FileObserver::start(ObserveMode::Ring).unwrap();
        ids.lock().unwrap().extend(o.program_ids());
        panic!("deliberate");
    });
    assert!(r.is_err());
    let ids = ids.into_inner().unwrap();
    assert!(!ids.is_empty());
    assert_unloaded(&ids);
}
