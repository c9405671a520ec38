//! End to end, as root: the real `ward protect` on a loop-mounted ext4 filesystem with a
//! realistic corpus, against real attacker processes and real benign workloads.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use ward_sim::scratchfs::FsKind;

/// Each attack: exactly one incident, the attacker killed, at most 5 files touched.
fn attack(profile: &str) {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 200);
    let mut agent = lab.protect();
    let t0 = Instant::now();
    let status = lab.simulate(profile);
    let elapsed = t0.elapsed();
    let inc = agent.wait_for("incident", Duration::from_secs(20));
    let extra = agent.drain(Duration::from_millis(1500));
    let damaged = lab.damaged();
    let log = agent.log();
    let inc = inc.unwrap_or_else(|| panic!("{profile}: no incident; status {status}; log:\n{log}"));
    assert_eq!(
        extra.iter().filter(|v| v["type"] == "incident").count(),
        0,
        "{profile}: more than one incident: {extra:?}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "{profile}: attacker was not killed (status {status}, ran {elapsed:?})"
    );
    assert!(
        damaged.len() <= 5,
        "{profile}: {} files touched before the freeze: {damaged:?}",
        damaged.len()
    );
    for k in [
        "id",
        "pid",
        "exe",
        "cmdline",
        "started_at",
        "detected_at",
        "contained_at",
        "action",
        "files_damaged",
        "indicators",
    ] {
        assert!(inc.get(k).is_some(), "incident lacks {k}: {inc}");
    }
    assert!(inc["client"].is_null());
    assert_eq!(inc["action"], "killed");
    eprintln!(
        "METRIC attack={profile} files_touched={} contain_ms={:.2} indicators={}",
        damaged.len(),
        inc["contain_ms"].as_f64().unwrap_or(f64::NAN),
        inc["indicators"]
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Ok(0));
    // The incident is durable.
    let out = std::process::Command::new(WARD)
        .args(["incidents", "--json", "--state-dir"])
        .arg(&lab.state)
        .output()
        .unwrap();
    let lines: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(inc["id"].as_str().unwrap()));
}

/// Each benign workload: runs to completion with zero incidents.
fn benign(profile: &str) {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 200);
    let mut agent = lab.protect();
    let status = lab.simulate(profile);
    assert!(status.success(), "{profile} failed: {status}");
    let events = agent.drain(Duration::from_millis(1500));
    let incidents: Vec<_> = events.iter().filter(|v| v["type"] == "incident").collect();
    assert!(
        incidents.is_empty(),
        "{profile}: false incident(s): {incidents:?}\nlog:\n{}",
        agent.log()
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Ok(0));
}

#[test]
fn attack_inplace() {
    attack("inplace");
}
#[test]
fn attack_new_then_delete_with_notes() {
    attack("new-then-delete");
}
#[test]
fn attack_openssl_per_file() {
    attack("openssl");
}
#[test]
fn attack_intermittent_head() {
    attack("intermittent");
}
#[test]
fn attack_fork_per_file() {
    attack("fork-per-file");
}

#[test]
fn benign_gzip_then_gunzip() {
    benign("gzip");
}
#[test]
fn benign_tar_czf() {
    benign("tar");
}
#[test]
fn benign_cp_a() {
    benign("cp");
}
#[test]
fn benign_git() {
    benign("git");
}
#[test]
fn benign_sqlite_bulk_inserts() {
    benign("sqlite");
}
#[test]
fn benign_new_random_files() {
    benign("random-files");
}
