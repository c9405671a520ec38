//! The lab against a real smbd: an honest client works (0 failures) and the attacker really
//! encrypts a small corpus (no ward running). Root only; skips otherwise.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ward_smblab::{unavailable_reason, Lab, LabOptions, ScratchTmpfs, ShareSpec};

fn corpus(root: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for d in ["letters", "rota", "scans/2024"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for i in 0..12 {
        let (rel, body) = match i % 3 {
            0 => (
                format!("letters/letter-{i}.txt"),
                format!("Dear Dr Smith,\nPatient {i} referred for review.\n").repeat(30),
            ),
            1 => (
                format!("rota/week-{i}.csv"),
                "name,shift\nA,early\nB,late\n".repeat(40),
            ),
            _ => (
                format!("scans/2024/img-{i}.dcm"),
                format!("DICM{}", "x".repeat(3000 + i)),
            ),
        };
        std::fs::write(root.join(&rel), &body).unwrap();
        m.insert(rel, hex::encode(Sha256::digest(body.as_bytes())));
    }
    m
}

fn skip() -> bool {
    if let Some(why) = unavailable_reason() {
        println!("SKIP: Samba lab unavailable: {why}");
        return true;
    }
    false
}

#[test]
fn honest_client_works_and_attacker_really_encrypts() {
    if skip() {
        return;
    }
    let fs = ScratchTmpfs::new(64).unwrap();
    let share = fs.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let before = corpus(&share);
    let mut lab = Lab::start(LabOptions::new(vec![ShareSpec::new("data", &share)], 2)).unwrap();
    let (c0, c1) = (lab.clients()[0].clone(), lab.clients()[1].clone());
    assert_ne!(c0.ip, c1.ip);

    // Honest client in namespace 1 while the attacker works from namespace 0.
    let honest = lab
        .client(1)
        .spawn("honest.py", &["--seconds", "3", "--interval", "0.1"])
        .unwrap();
    let out = lab
        .client(0)
        .run(
            "attacker.py",
            &["--mode", "inplace", "--note", "--dir", "letters"],
            Duration::from_secs(60),
        )
        .unwrap();
    let s = out.summary().expect("attacker summary");
    assert_eq!(s["damaged"], 4, "{:?} {}", out.lines, out.stderr);
    assert_eq!(s["errors"], 0, "{:?}", out.lines);
    assert!(s["first_damage_ns"].as_u64().unwrap() > 0);
    let honest = honest.wait(Duration::from_secs(30)).unwrap();
    let hs = honest.summary().expect("honest summary");
    assert_eq!(hs["failed"], 0, "{:?} {}", honest.lines, honest.stderr);
    assert!(hs["ops"].as_u64().unwrap() >= 20, "{hs}");

    // The files were really encrypted: changed, same size, no longer text.
    for (rel, sum) in &before {
        let now = std::fs::read(share.join(rel)).unwrap();
        let changed = hex::encode(Sha256::digest(&now)) != *sum;
        assert_eq!(changed, rel.starts_with("letters/"), "{rel}");
        if changed {
            let printable = now.iter().filter(|b| b.is_ascii_graphic()).count();
            assert!(
                printable * 10 < now.len() * 6,
                "{rel} still looks like text"
            );
        }
    }
    assert!(share.join("letters/README_RESTORE_FILES.txt").exists());

    // The other modes, on the rest.
    let out = lab
        .client(0)
        .run(
            "attacker.py",
            &["--mode", "new-then-delete", "--dir", "rota"],
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(out.summary().unwrap()["damaged"], 4, "{:?}", out.lines);
    assert!(share.join("rota/week-1.csv.wncry").exists());
    assert!(!share.join("rota/week-1.csv").exists());
    let out = lab
        .client(0)
        .run(
            "attacker.py",
            &["--mode", "rename-first", "--dir", "scans"],
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(out.summary().unwrap()["damaged"], 4, "{:?}", out.lines);
    assert!(share.join("scans/2024/img-2.dcm.locked").exists());

    // Files written over SMB belong to the client's user: the smbd child ran as it.
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(share.join("letters/README_RESTORE_FILES.txt")).unwrap(),
    );
    let u = nix::unistd::User::from_name("ward-smb1").unwrap().unwrap();
    assert_eq!(owner, u.uid.as_raw());

    let conf = lab.conf_path().to_path_buf();
    let names: Vec<String> = lab.clients().iter().map(|c| c.netns.clone()).collect();
    lab.stop();
    assert!(!conf.exists(), "temp dir removed");
    let ns = String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for n in names {
        assert!(!ns.contains(&n), "namespace {n} left behind");
    }
}

#[test]
fn bulk_modes_run_cleanly() {
    if skip() {
        return;
    }
    let fs = ScratchTmpfs::new(64).unwrap();
    let share = fs.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let lab = Lab::start(LabOptions::new(vec![ShareSpec::new("data", &share)], 1)).unwrap();
    let t = Duration::from_secs(60);
    let c = lab.client(0);
    for args in [
        vec![
            "--mode",
            "copy-in",
            "--dir",
            "bulk",
            "--count",
            "10",
            "--deadline-secs",
            "15",
        ],
        vec!["--mode", "zip-folder", "--dir", "bulk"],
        vec!["--mode", "office-save", "--dir", "bulk"],
        vec!["--mode", "delete-old", "--dir", "bulk"],
    ] {
        let out = c.run("bulk.py", &args, t).unwrap();
        let s = out
            .summary()
            .unwrap_or_else(|| panic!("{args:?}: {}", out.stderr));
        assert_eq!(s["failed"], 0, "{args:?}: {:?}", out.lines);
        assert!(s["files"].as_u64().unwrap() >= 1, "{args:?}: {s}");
    }
    assert!(share.join("bulk.zip").exists());
    assert_eq!(std::fs::read_dir(share.join("bulk")).unwrap().count(), 0);
}
