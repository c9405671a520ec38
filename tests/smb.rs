//! The hospital's own scenario, end to end with real components: smbd serving a share on a
//! scratch ext4 filesystem protected by `ward protect`, an encrypting client and an honest
//! client in network namespaces of the test's own (ward-smblab). Root only.

mod common;

use common::WARD;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use ward_lab::driver::Ward;
use ward_lab::scratchfs::FsKind;
use ward_smblab::{unavailable_reason, Lab as SmbLab, LabOptions, ShareSpec};

/// Root and a working Samba lab, or skip (outside CI) / fail (in CI).
fn available() -> bool {
    if !common::root_or_skip() {
        return false;
    }
    if let Some(why) = unavailable_reason() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the Samba lab must run in CI: {why} (scripts/setup-smb.sh installs it)");
        }
        eprintln!("skipping: Samba lab unavailable: {why}");
        return false;
    }
    true
}

struct Scenario {
    files: common::Lab,
    smb: SmbLab,
    ward: Ward,
    table: String,
    cfg: std::path::PathBuf,
}

fn start(clients: usize, extra_cfg: &str) -> Scenario {
    let files = common::Lab::new(FsKind::Ext4, 150);
    let smb = SmbLab::start(LabOptions::new(
        vec![ShareSpec::new("data", &files.share)],
        clients,
    ))
    .expect("samba lab");
    let table = format!("ward_t{}", std::process::id());
    let cfg = files.state.parent().unwrap().join("smb.toml");
    std::fs::write(
        &cfg,
        format!(
            "{extra_cfg}\n[smb]\nsmb_conf = {:?}\nnft_table = {:?}\n",
            smb.conf_path().display().to_string(),
            table
        ),
    )
    .unwrap();
    let ward = Ward::start(
        Path::new(WARD),
        &files.state,
        &[files.share.as_path()],
        &["--config", cfg.to_str().unwrap()],
        Duration::from_secs(30),
    )
    .expect("ward protect starts");
    Scenario {
        files,
        smb,
        ward,
        table,
        cfg,
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.ward.stop(Duration::from_secs(20));
        // ward removes its table on stop; make sure, even if it crashed.
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .stderr(std::process::Stdio::null())
            .status();
        self.smb.stop();
    }
}

fn wait_restored(ward: &mut Ward, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = ward.of_type("restored").into_iter().find(|r| r["id"] == id) {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no restored event: {}",
            ward.log()
        );
        ward.wait_for("restored", Duration::from_secs(5));
    }
}

fn attack(s: &mut Scenario, client: usize, mode: &str) -> (Value, ward_smblab::ScriptOutput) {
    let out = s
        .smb
        .client(client)
        .run(
            "attacker.py",
            &["--mode", mode, "--note", "--reconnect-secs", "3"],
            Duration::from_secs(120),
        )
        .expect("attacker runs");
    let inc = s
        .ward
        .wait_for("incident", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no incident: {} {:?}", s.ward.log(), out.lines));
    (inc, out)
}

fn check_attack(mode: &str) {
    if !available() {
        return;
    }
    let mut s = start(2, "");
    let honest = s
        .smb
        .client(1)
        .spawn("honest.py", &["--seconds", "12", "--interval", "0.1"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (inc, out) = attack(&mut s, 0, mode);
    let client = &s.smb.clients()[0];
    assert_eq!(inc["client"]["ip"], client.ip.to_string(), "{inc}");
    assert_eq!(inc["client"]["user"], "ward-smb1", "{inc}");
    assert_eq!(inc["client"]["share"], "data", "{inc}");
    assert_eq!(inc["action"], "client-blocked", "{inc}");
    let touched = inc["files_damaged"].as_u64().unwrap();
    assert!((1..=5).contains(&touched), "files damaged {touched}: {inc}");
    // The attacker was cut off and could not get back in (saved credentials reconnect).
    let summary = out.summary().expect("attacker summary");
    assert_ne!(
        summary["reconnected"], true,
        "attacker got back in: {summary}"
    );
    // Every file back, byte for byte.
    let id = inc["id"].as_str().unwrap().to_string();
    let r = wait_restored(&mut s.ward, &id);
    assert_eq!(r["files_lost"], 0, "{r}");
    let damaged = s.files.damaged();
    assert!(damaged.is_empty(), "not restored: {damaged:?}");
    // The honest client never failed.
    let h = honest.wait(Duration::from_secs(60)).unwrap();
    let hs = h.summary().expect("honest summary");
    assert_eq!(hs["failed"], 0, "honest client failed: {hs} {}", h.stderr);
    eprintln!(
        "MEASURED smb {mode}: files damaged {touched}, first damaging write -> cut-off {} ms \
         (freeze {} ms), attacker reconnected: {}, honest ops {} failed {}",
        inc["contain_ms"], inc["freeze_ms"], summary["reconnected"], hs["ops"], hs["failed"]
    );
    // Exactly one incident, and `ward incidents` shows the block in force.
    assert_eq!(s.ward.of_type("incident").len(), 1, "{:?}", s.ward.events);
    let list = std::process::Command::new(WARD)
        .args(["incidents", "--state-dir"])
        .arg(&s.files.state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(&client.ip.to_string()), "{text}");
}

#[test]
fn smb_attacker_inplace_is_cut_off_and_every_file_restored() {
    check_attack("inplace");
}

#[test]
fn smb_attacker_new_then_delete_is_cut_off_and_every_file_restored() {
    check_attack("new-then-delete");
}

#[test]
fn smb_attacker_rename_first_is_cut_off_and_every_file_restored() {
    check_attack("rename-first");
}

/// A fresh honest session from client `n`: did it work (no failed operation)?
fn session_works(s: &Scenario, n: usize) -> Result<(), String> {
    let quick = [
        "--seconds",
        "1",
        "--interval",
        "0.2",
        "--connect-timeout",
        "2",
        "--deadline-secs",
        "15",
    ];
    let h = s
        .smb
        .client(n)
        .run("honest.py", &quick, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    match h.summary() {
        Some(hs) if h.status.success() && hs["failed"] == 0 => Ok(()),
        other => Err(format!("{other:?} {:?} {}", h.lines, h.stderr)),
    }
}

#[test]
fn smb_block_holds_until_unblock() {
    if !available() {
        return;
    }
    let mut s = start(1, "");
    let (inc, _) = attack(&mut s, 0, "inplace");
    let ip = inc["client"]["ip"].as_str().unwrap().to_string();
    // Still blocked: a fresh session from the same address gets nowhere.
    assert!(
        session_works(&s, 0).is_err(),
        "the cut-off client got back in before `ward unblock`"
    );
    // `ward unblock` lets it back.
    let out = std::process::Command::new(WARD)
        .args(["unblock", &ip, "--state-dir"])
        .arg(&s.files.state)
        .arg("--config")
        .arg(&s.cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Err(e) = session_works(&s, 0) {
        panic!("still blocked after `ward unblock`: {e}");
    }
}

#[test]
fn two_attackers_at_once_are_both_cut_off() {
    if !available() {
        return;
    }
    let mut s = start(3, "");
    let honest = s
        .smb
        .client(2)
        .spawn("honest.py", &["--seconds", "12", "--interval", "0.1"])
        .unwrap();
    let a = s
        .smb
        .client(0)
        .spawn("attacker.py", &["--mode", "inplace"])
        .unwrap();
    let b = s
        .smb
        .client(1)
        .as_user(&s.smb.users()[1].clone())
        .spawn("attacker.py", &["--mode", "new-then-delete"])
        .unwrap();
    let _ = a.wait(Duration::from_secs(120));
    let _ = b.wait(Duration::from_secs(120));
    s.ward.drain(Duration::from_secs(3));
    let incidents: Vec<Value> = s.ward.of_type("incident").into_iter().cloned().collect();
    let ips: std::collections::BTreeSet<String> = incidents
        .iter()
        .map(|i| i["client"]["ip"].as_str().unwrap_or("").to_string())
        .collect();
    let want: std::collections::BTreeSet<String> = s.smb.clients()[..2]
        .iter()
        .map(|c| c.ip.to_string())
        .collect();
    assert_eq!(ips, want, "{incidents:?}");
    for i in &incidents {
        let r = wait_restored(&mut s.ward, i["id"].as_str().unwrap());
        assert_eq!(r["files_lost"], 0, "{r}");
    }
    assert!(
        s.files.damaged().is_empty(),
        "{:?}\nincidents: {incidents:?}\nlog:\n{}",
        s.files.damaged(),
        s.ward.log()
    );
    let h = honest.wait(Duration::from_secs(60)).unwrap();
    assert_eq!(h.summary().unwrap()["failed"], 0, "{}", h.stderr);
}

#[test]
fn honest_bulk_work_over_smb_is_quiet() {
    if !available() {
        return;
    }
    let mut s = start(1, "");
    for mode in ["copy-in", "zip-folder", "delete-old", "office-save"] {
        let out = s
            .smb
            .client(0)
            .run("bulk.py", &["--mode", mode], Duration::from_secs(120))
            .unwrap();
        let sum = out
            .summary()
            .unwrap_or_else(|| panic!("{mode}: {:?} {}", out.lines, out.stderr));
        assert_eq!(sum["failed"], 0, "{mode}: {sum}");
    }
    s.ward.drain(Duration::from_secs(2));
    assert!(
        s.ward.of_type("incident").is_empty(),
        "false incident: {:?}",
        s.ward.of_type("incident")
    );
}
