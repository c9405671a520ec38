//! The web UI in a real headless Chromium (Debian's, through chromedriver): sign in, see a
//! host turn red when an agent reports an incident, press Restore, see the agent's callback
//! run and the host turn green. Screenshots of every screen go to
//! `target/console-screenshots/`.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use ward_console::protocol::ActionKind;
use ward_console::webdriver::Session;
use ward_model::{AgentEvent, Client};
use ward_outputs::Sink;

const W: Duration = Duration::from_secs(30);

struct Driver(Child);
impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> (Driver, String) {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            && std::path::Path::new("/usr/bin/chromedriver").exists(),
        "Debian chromium and chromium-driver are needed: run scripts/setup-console.sh"
    );
    let port = free_port();
    let child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let d = Driver(child);
    let base = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + W;
    loop {
        if ureq::get(&format!("{base}/status")).call().is_ok() {
            break;
        }
        assert!(Instant::now() < end, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (d, base)
}

fn shots() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn shot(s: &Session, name: &str) {
    let png = s.screenshot().unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

fn status_of(s: &Session, host_id: &str) -> Option<String> {
    let el = s.find(&format!("tr[data-host-id=\"{host_id}\"]")).ok()?;
    s.attr(&el, "data-status").ok().flatten()
}

fn wait_status(s: &Session, url: &str, host_id: &str, want: &str) {
    let end = Instant::now() + W;
    loop {
        s.goto(url).unwrap();
        if status_of(s, host_id).as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < end,
            "the fleet page never showed {host_id} as {want}: {}",
            s.source().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn sign_in_see_red_restore_see_green() {
    let console = Console::start(Backend::Sqlite);
    let admin = console.admin();
    admin.user("olivia", "operator", "correct horse battery");
    let s1 = tempfile::tempdir().unwrap();
    let s2 = tempfile::tempdir().unwrap();
    let (h1, rx1) = recording_handler();
    let mut a1 = console.agent(s1.path(), "pacs-01", Some(h1));
    let mut a2 = console.agent(s2.path(), "files-01", None);
    let mut r = ready();
    if let AgentEvent::Ready(r) = &mut r {
        r.paths = vec!["/var/lib/pacs".into()];
    }
    a1.send(&r).unwrap();
    a2.send(&ready()).unwrap();
    a1.status().update(|h| {
        h.vault_used_bytes = 734 << 20;
        h.vault_max_bytes = 20 << 30;
    });
    assert!(a1.wait_delivered(W) && a2.wait_delivered(W));
    let hid = admin.host_id("pacs-01");

    let (_driver, base) = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect();
    let s = Session::new(&base, &args).unwrap();
    let url = console.url();

    // sign in
    s.goto(&format!("{url}/")).unwrap();
    let user = s.find("#user").unwrap();
    shot(&s, "01-sign-in");
    s.type_into(&user, "olivia").unwrap();
    s.type_into(&s.find("#password").unwrap(), "correct horse battery")
        .unwrap();
    s.click(&s.find("#signin").unwrap()).unwrap();
    wait_status(&s, &format!("{url}/"), &hid, "healthy");
    assert!(s.source().unwrap().contains("olivia (operator)"));
    shot(&s, "02-fleet-healthy");

    // an attack on pacs-01 (local process) and one through Samba on files-01
    let damaged: Vec<String> = (1..=14)
        .map(|i| format!("/var/lib/pacs/study-{i:04}/IM{i:05}.dcm"))
        .chain(["/var/lib/pacs/<script>alert(1)</script>.dcm".to_string()])
        .collect();
    a1.send(&AgentEvent::Incident(incident(
        "1764583200004-31337",
        None,
        damaged,
    )))
    .unwrap();
    a2.send(&AgentEvent::Incident(incident(
        "1764583201000-900",
        Some(Client {
            ip: "10.20.30.40".into(),
            user: "HOSP\\nurse7".into(),
            share: "wards".into(),
        }),
        vec![
            "/srv/samba/wards/rota.xlsx".into(),
            "/srv/samba/wards/handover.docx".into(),
        ],
    )))
    .unwrap();
    wait_status(&s, &format!("{url}/"), &hid, "under-attack");
    assert_eq!(s.text(&s.find("#n-under-attack").unwrap()).unwrap(), "2");
    shot(&s, "03-fleet-under-attack");

    s.goto(&format!("{url}/major")).unwrap();
    let src = s.source().unwrap();
    assert!(src.contains("10.20.30.40") && src.contains("files-01") && src.contains("pacs-01"));
    shot(&s, "04-major-incident");

    let num = admin
        .ok("/api/v1/incidents")
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["host"] == "pacs-01")
        .unwrap()["num"]
        .as_i64()
        .unwrap();
    s.goto(&format!("{url}/")).unwrap();
    s.click(&s.find(&format!("#incident-link-{num}")).unwrap())
        .unwrap();
    let src = s.source().unwrap();
    assert!(src.contains("content-encrypted"));
    assert!(
        src.contains("&lt;script&gt;alert(1)&lt;/script&gt;.dcm"),
        "attacker file names are shown escaped"
    );
    shot(&s, "05-incident-detail");

    // press Restore: the action travels to the agent's callback, the agent restores
    s.click(&s.find(&format!("#restore-{num}")).unwrap())
        .unwrap();
    let got = rx1.recv_timeout(W).expect("the agent's callback ran");
    assert_eq!(
        got,
        ActionKind::Restore {
            incident: "1764583200004-31337".into()
        }
    );
    a1.send(&restored("1764583200004-31337", 15, 0)).unwrap();
    wait_status(&s, &format!("{url}/"), &hid, "healthy");
    shot(&s, "06-fleet-restored");
    let end = Instant::now() + W;
    loop {
        s.goto(&format!("{url}/incidents/{num}")).unwrap();
        let src = s.source().unwrap();
        if src.contains("15 files restored") && src.contains("restore done") {
            break;
        }
        assert!(
            Instant::now() < end,
            "incident page never showed the restore: {src}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    shot(&s, "07-incident-restored");
    s.goto(&format!("{url}/audit")).unwrap();
    let src = s.source().unwrap();
    assert!(src.contains("action-confirmed") && src.contains("host:pacs-01"));
    shot(&s, "08-audit-log");
    s.quit();
}
