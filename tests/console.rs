//! The console with a real agent: `ward console init/serve/enroll-token`, then
//! `ward protect --console URL --enroll-token TOKEN` on a scratch filesystem; a simulated
//! attack is contained and the console's API shows the host and the incident. Root only
//! (the agent needs fanotify); loopback only.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use ward_lab::driver::Ward;
use ward_lab::scratchfs::FsKind;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn api(url: &str, ca: &Path, token: &str, path: &str) -> Option<Value> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{url}{path}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[test]
fn agent_reports_a_contained_attack_to_the_console() {
    if !common::root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cstate = dir.path().join("console");
    let init = Command::new(common::WARD)
        .args(["console", "init", "--json", "--state-dir"])
        .arg(&cstate)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let init: Value = serde_json::from_slice(&init.stdout).unwrap();
    let admin = init["admin_token"].as_str().unwrap().to_string();
    let ca = std::path::PathBuf::from(init["ca_cert"].as_str().unwrap());
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let _server = Server(
        Command::new(common::WARD)
            .args(["console", "serve", "--state-dir"])
            .arg(&cstate)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while api(&url, &ca, &admin, "/api/v1/hosts").is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "console did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let token = Command::new(common::WARD)
        .args(["console", "enroll-token", "--state-dir"])
        .arg(&cstate)
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();

    let lab = common::Lab::new(FsKind::Ext4, 150);
    let mut ward = Ward::start(
        Path::new(common::WARD),
        &lab.state,
        &[lab.share.as_path()],
        &["--console", &url, "--enroll-token", &token],
        Duration::from_secs(30),
    )
    .expect("ward protect starts");
    // The host appears.
    let t0 = Instant::now();
    loop {
        let hosts = api(&url, &ca, &admin, "/api/v1/hosts").unwrap_or(Value::Null);
        if hosts.as_array().is_some_and(|h| !h.is_empty()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no host enrolled: {}",
            ward.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    lab.simulate("inplace");
    let inc = ward
        .wait_for("incident", Duration::from_secs(20))
        .expect("incident");
    let id = inc["id"].as_str().unwrap().to_string();
    // The console has the incident and the host is no longer healthy.
    let t0 = Instant::now();
    loop {
        let incs = api(&url, &ca, &admin, "/api/v1/incidents").unwrap_or(Value::Null);
        let found = incs
            .as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id.as_str()).cloned());
        if let Some(i) = found {
            assert!(i["host"].is_string(), "{i}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "incident not at the console"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let hosts = api(&url, &ca, &admin, "/api/v1/hosts").unwrap();
    let status = hosts[0]["status"].as_str().unwrap_or("").to_string();
    assert!(
        status == "contained" || status == "under-attack",
        "host status {status}: {hosts}"
    );
    let _ = ward.stop(Duration::from_secs(20));
}
