//! Safety as root: a stopped or killed ward never stalls the machine, and protection
//! refuses bad input with exit status 2 and a helpful message.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};
use ward_lab::scratchfs::FsKind;

fn read_one(lab: &Lab) -> Duration {
    let file = lab.share.join(lab.before.keys().next().unwrap());
    let t = Instant::now();
    let out = Command::new("cat").arg(&file).output().unwrap();
    assert!(out.status.success());
    t.elapsed()
}

fn state(pid: u32) -> Option<char> {
    ward_sys::procfs::stat(pid).map(|s| s.state)
}

#[test]
fn stopped_ward_is_resumed_by_the_watchdog() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 150);
    let mut agent = lab.protect();
    let pid = agent.pid().unwrap();
    Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    // The open waits in a permission event no one answers until the watchdog acts.
    let waited = read_one(&lab);
    assert!(
        waited < Duration::from_secs(3),
        "open stalled for {waited:?}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_ne!(state(pid), Some('T'), "ward is still stopped");
    assert!(
        agent.log().contains("watchdog"),
        "watchdog said nothing: {}",
        agent.log()
    );
    // Still protecting: an attack is still contained.
    let status = lab.simulate("inplace");
    assert!(
        agent
            .wait_for("incident", Duration::from_secs(20))
            .is_some(),
        "{status}"
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Ok(0));
}

/// A ward whose main loop blocks (a deadlock, injected with WARD_FAULT=wedge) is killed by
/// the watchdog, and the open it was holding goes through within ~2 s.
#[test]
fn wedged_ward_is_killed_by_the_watchdog() {
    if !root_or_skip() {
        return;
    }
    use std::io::BufRead;
    let lab = Lab::new(FsKind::Ext4, 150);
    let mut ward = Command::new(WARD)
        .args(["protect", "--json", "--state-dir"])
        .arg(&lab.state)
        .arg(&lab.share)
        .env("WARD_FAULT", "wedge")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(ward.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"ready\""), "{first}");
    let waited = read_one(&lab);
    assert!(
        waited < Duration::from_secs(3),
        "open stalled for {waited:?}"
    );
    let status = ward.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "ward was not killed: {status}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut ward.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("killing it"), "{err}");
}

#[test]
fn killed_ward_fails_open() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 150);
    let agent = lab.protect();
    let pid = agent.pid().unwrap();
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let waited = read_one(&lab);
    assert!(
        waited < Duration::from_secs(1),
        "open stalled for {waited:?} after ward died"
    );
    drop(agent);
}

#[test]
fn bad_input_exits_2_with_advice() {
    if !root_or_skip() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["protect".into(), "/nonexistent/ward-test".into()],
            "cannot protect",
        ),
        (vec!["protect".into(), "/".into()], "refusing to protect /"),
        (
            vec!["protect".into(), d.path().join("f").display().to_string()],
            "cannot protect",
        ),
        (
            vec![
                "simulate".into(),
                "inplace".into(),
                "--dir".into(),
                d.path().display().to_string(),
            ],
            "scratch",
        ),
        (
            vec![
                "simulate".into(),
                "no-such-profile".into(),
                "--dir".into(),
                d.path().display().to_string(),
            ],
            "",
        ),
        (vec!["bogus-command".into()], ""),
        (
            vec![
                "protect".into(),
                "--config".into(),
                d.path().join("missing.toml").display().to_string(),
                d.path().display().to_string(),
            ],
            "cannot read the config file",
        ),
    ];
    for (args, want) in cases {
        let mut cmd = Command::new(WARD);
        if args[0] == "protect" {
            cmd.arg("protect")
                .arg("--state-dir")
                .arg(d.path().join("state"))
                .args(&args[1..]);
        } else {
            cmd.args(&args);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn not_root_exits_2_with_advice() {
    if !root_or_skip() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            WARD,
            "protect",
            "--state-dir",
        ])
        .arg(d.path().join("state"))
        .arg(d.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("must run as root"), "{err}");
}

#[test]
fn ready_reports_protections() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::new(FsKind::Ext4, 150);
    let mut agent = lab.protect();
    let ready = agent.of_type("ready")[0].clone();
    for k in ["open_perm", "name_events", "proc_connector", "watchdog"] {
        assert_eq!(ready["protections"][k], true, "{k}: {ready}");
    }
    assert_eq!(ready["filesystems"][0], "ext4");
    assert_eq!(agent.stop(Duration::from_secs(10)), Ok(0));
    // Decoys are removed on stop.
    assert!(!lab.share.join("!ward-decoy.docx").exists());
}
