//! End to end, as root: the real `ward protect` on loop-mounted ext4, xfs and btrfs
//! filesystems with a realistic corpus, against real attacker processes and real benign
//! workloads. Every attack must be contained after at most 5 files and end with zero
//! files lost (SHA-256 of every corpus file identical to before the attack).

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use ward_lab::scratchfs::FsKind;

/// Each attack: exactly one incident, the attacker killed, at most 5 files touched, and
/// after the automatic restore every original byte-identical, attacker files quarantined.
fn attack(profile: &str, fs: FsKind) {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(fs, 200);
    let mut agent = lab.protect();
    let t0 = Instant::now();
    let status = lab.simulate(profile);
    let elapsed = t0.elapsed();
    let inc = agent.wait_for("incident", Duration::from_secs(20));
    let damaged = lab.damaged();
    let log = agent.log();
    let inc = inc.unwrap_or_else(|| panic!("{profile}: no incident; status {status}; log:\n{log}"));
    let restored = agent.wait_for("restored", Duration::from_secs(30));
    let extra = agent.drain(Duration::from_millis(1000));
    let lost = lab.damaged();
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
    let restored =
        restored.unwrap_or_else(|| panic!("{profile}: no restored event; log:\n{}", agent.log()));
    assert_eq!(restored["id"], inc["id"]);
    assert_eq!(restored["files_lost"], 0, "{restored}");
    assert!(
        lost.is_empty(),
        "{profile} on {}: files lost after restore: {lost:?}\n{restored}\nlog:\n{}",
        fs.name(),
        agent.log()
    );
    if !damaged.is_empty() {
        assert!(
            restored["files_quarantined"].as_u64().unwrap_or(0) > 0
                || profile == "inplace"
                || profile == "intermittent"
                || profile == "truncate-rewrite"
                || profile == "mmap"
                || profile == "multi-threaded",
            "{profile}: nothing quarantined: {restored}"
        );
    }
    eprintln!(
        "METRIC fs={} attack={profile} files_touched={} contain_ms={:.2} restored={} quarantined={} lost={} indicators={}",
        fs.name(),
        damaged.len(),
        inc["contain_ms"].as_f64().unwrap_or(f64::NAN),
        restored["files_restored"],
        restored["files_quarantined"],
        lost.len(),
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

macro_rules! attacks {
    ($($name:ident: $profile:literal,)*) => {
        mod ext4 {
            use super::*;
            $( #[test] fn $name() { attack($profile, FsKind::Ext4) } )*
        }
        mod xfs {
            use super::*;
            $( #[test] fn $name() { attack($profile, FsKind::Xfs) } )*
        }
        mod btrfs {
            use super::*;
            $( #[test] fn $name() { attack($profile, FsKind::Btrfs) } )*
        }
    };
}

attacks! {
    attack_inplace: "inplace",
    attack_new_then_delete_with_notes: "new-then-delete",
    attack_openssl_per_file: "openssl",
    attack_intermittent_head: "intermittent",
    attack_fork_per_file: "fork-per-file",
    attack_rename_first: "rename-first",
    attack_truncate_rewrite: "truncate-rewrite",
    attack_mmap_writes: "mmap",
    attack_multi_threaded: "multi-threaded",
}

/// ward is killed (-9) right after containment, before or while it restores: a restart
/// with the same state directory finishes the restore and nothing is lost.
#[test]
fn restore_survives_kill_9() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 200);
    let mut agent = lab.protect();
    let status = lab.simulate("new-then-delete");
    let inc = agent
        .wait_for("incident", Duration::from_secs(20))
        .expect("incident");
    let pid = agent.pid().unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    drop(agent);
    assert_eq!(status.signal(), Some(9));
    let mut again = lab.protect();
    let restored = again
        .wait_for("restored", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("restart did not finish the restore; log:\n{}", again.log()));
    assert_eq!(restored["id"], inc["id"]);
    assert!(
        lab.damaged().is_empty(),
        "lost after restart: {:?}",
        lab.damaged()
    );
    assert_eq!(again.stop(Duration::from_secs(10)), Ok(0));
    // `ward restore` afterwards is idempotent: nothing left to do.
    let out = std::process::Command::new(WARD)
        .args(["restore", "--state-dir"])
        .arg(&lab.state)
        .arg(inc["id"].as_str().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 file(s) restored"), "{text}");
    assert!(lab.damaged().is_empty());
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

/// With a vault that may copy nothing (ext4, `vault_max_file_mib = 0`), ward still
/// contains the attack and reports exactly the files it could not restore as lost (it
/// never claims 0 falsely).
#[test]
fn full_vault_reports_losses_honestly() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 200);
    let cfg = lab.state.parent().unwrap().join("tiny-vault.toml");
    std::fs::write(&cfg, "vault_max_file_mib = 0\n").unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let mut agent = ward_lab::driver::Ward::start(
        std::path::Path::new(WARD),
        &lab.state,
        &[lab.share.as_path()],
        &["--config", &cfg],
        Duration::from_secs(30),
    )
    .unwrap();
    let status = lab.simulate("inplace");
    assert_eq!(status.signal(), Some(9), "not contained");
    let restored = agent
        .wait_for("restored", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no restored event; log:\n{}", agent.log()));
    let lost = lab.damaged();
    assert!(!lost.is_empty(), "nothing was damaged: {restored}");
    assert_eq!(
        restored["files_lost"].as_u64(),
        Some(lost.len() as u64),
        "reported {restored} but these differ from before the attack: {lost:?}\nlog:\n{}",
        agent.log()
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Ok(0));
}

/// ward's own reads (content samples of every open, copies into the vault) leave the
/// users' access times alone: archive and backup tools rely on them. The reader here
/// opens with O_NOATIME itself, so any atime change would be ward's.
#[test]
fn ward_reads_leave_access_times_alone() {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 200);
    let old = filetime_days_ago(&lab, 400);
    let mut agent = lab.protect();
    let mut read = 0;
    for rel in lab.before.keys().take(40) {
        let p = lab.share.join(rel);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(&p)
            .unwrap();
        let mut b = [0u8; 16];
        let _ = std::io::Read::read(&mut f, &mut b);
        read += 1;
    }
    agent.drain(Duration::from_millis(500));
    let changed: Vec<&String> = lab
        .before
        .keys()
        .take(read)
        .filter(|rel| std::fs::metadata(lab.share.join(rel)).unwrap().atime() != old)
        .collect();
    assert!(
        changed.is_empty(),
        "ward changed the access time of {changed:?}"
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Ok(0));
}

/// Set every corpus file's access time to `days` ago (whole seconds); returns it.
fn filetime_days_ago(lab: &Lab, days: i64) -> i64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - days * 86_400;
    for rel in lab.before.keys() {
        let p = lab.share.join(rel);
        let f = std::fs::File::open(&p).unwrap();
        let times = std::fs::FileTimes::new()
            .set_accessed(std::time::UNIX_EPOCH + Duration::from_secs(t as u64));
        f.set_times(times).unwrap();
    }
    t
}
