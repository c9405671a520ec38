//! The console end to end over real TLS: enrollment, heartbeats, incidents, actions to the
//! agent and back, the API's shape, audit — on SQLite and on a real PostgreSQL.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;
use ward_console::protocol::ActionKind;
use ward_model::Client;
use ward_outputs::Sink;

const W: Duration = Duration::from_secs(20);

fn fleet_flow(backend: Backend) {
    let console = Console::start(backend);
    let admin = console.admin();
    let operator = admin.user("olivia", "operator", "correct horse battery");
    let op = console.api(&operator);

    let s1 = tempfile::tempdir().unwrap();
    let s2 = tempfile::tempdir().unwrap();
    let (h1, rx1) = recording_handler();
    let (h2, rx2) = recording_handler();
    let mut a1 = console.agent(s1.path(), "pacs-01", Some(h1));
    let mut a2 = console.agent(s2.path(), "files-01", Some(h2));
    a1.send(&ready()).unwrap();
    a2.send(&ready()).unwrap();
    wait_for("both hosts healthy", W, || {
        admin.host_status("pacs-01").as_deref() == Some("healthy")
            && admin.host_status("files-01").as_deref() == Some("healthy")
    });
    let hosts = admin.ok("/api/v1/hosts");
    let h = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "pacs-01")
        .unwrap();
    assert_eq!(h["version"], "0.1.0");
    assert_eq!(h["sensor"], "fanotify");
    assert_eq!(h["paths"][1], "/var/lib/pacs");
    assert!(h["last_seen"].as_str().unwrap().ends_with('Z'));

    // a local attack on pacs-01: red
    a1.send(&ward_model::AgentEvent::Incident(incident(
        "1764583200004-31337",
        None,
        vec!["/var/lib/pacs/a.dcm".into(), "/var/lib/pacs/b.dcm".into()],
    )))
    .unwrap();
    wait_for("pacs-01 under attack", W, || {
        admin.host_status("pacs-01").as_deref() == Some("under-attack")
    });
    assert_eq!(admin.host_status("files-01").as_deref(), Some("healthy"));
    let incs = admin.ok("/api/v1/incidents");
    let inc = &incs[0];
    assert_eq!(inc["host"], "pacs-01");
    assert_eq!(inc["id"], "1764583200004-31337");
    assert_eq!(inc["action"], "killed");
    assert_eq!(inc["files_damaged"], 2);
    assert_eq!(inc["restore"], "pending");
    assert_eq!(inc["client"], serde_json::Value::Null);
    assert_eq!(inc["started_at"], "2026-12-01T10:00:00Z");
    let num = inc["num"].as_i64().unwrap();
    let detail = admin.ok(&format!("/api/v1/incidents/{num}"));
    assert_eq!(detail["damaged"][1], "/var/lib/pacs/b.dcm");
    assert_eq!(detail["indicators"][0], "content-encrypted");

    // the operator asks for a restore; it reaches the agent's callback over its connection
    let hid = admin.host_id("pacs-01");
    let (c, v) = op.post(
        "/api/v1/actions",
        json!({"host_id": hid, "kind": "restore", "incident": "1764583200004-31337"}),
    );
    assert_eq!(c, 200, "{v}");
    let got = rx1.recv_timeout(W).expect("restore reached the agent");
    assert_eq!(
        got,
        ActionKind::Restore {
            incident: "1764583200004-31337".into()
        }
    );
    a1.send(&restored("1764583200004-31337", 2, 0)).unwrap();
    wait_for("pacs-01 healthy again", W, || {
        admin.host_status("pacs-01").as_deref() == Some("healthy")
    });
    wait_for("action confirmed", W, || {
        admin.ok("/api/v1/actions")[0]["status"] == "done"
    });
    let a = admin.ok("/api/v1/actions");
    assert_eq!(a[0]["result"], "restore done");
    assert_eq!(a[0]["requested_by"], "olivia");
    let i = admin.ok(&format!("/api/v1/incidents/{num}"));
    assert_eq!(i["restore"], "done");
    assert_eq!(i["files_restored"], 2);
    assert_eq!(i["files_lost"], 0);

    // an SMB client on files-01: the block keeps the host "contained" until lifted
    let client = Client {
        ip: "10.20.30.40".into(),
        user: "HOSP\\nurse7".into(),
        share: "wards".into(),
    };
    a2.send(&ward_model::AgentEvent::Incident(incident(
        "1764583300000-900",
        Some(client),
        vec!["/srv/samba/shares/rota.xlsx".into()],
    )))
    .unwrap();
    wait_for("files-01 under attack", W, || {
        admin.host_status("files-01").as_deref() == Some("under-attack")
    });
    let major = admin.ok("/api/v1/major");
    assert_eq!(major["clients"][0]["ip"], "10.20.30.40");
    assert_eq!(major["clients"][0]["hosts"][0], "files-01");
    a2.send(&restored("1764583300000-900", 1, 0)).unwrap();
    wait_for("files-01 contained (block in force)", W, || {
        admin.host_status("files-01").as_deref() == Some("contained")
    });
    let hid2 = admin.host_id("files-01");
    let (c, _) = op.post(
        "/api/v1/actions",
        json!({"host_id": hid2, "kind": "lift-block", "ip": "10.20.30.40"}),
    );
    assert_eq!(c, 200);
    assert_eq!(
        rx2.recv_timeout(W).unwrap(),
        ActionKind::LiftBlock {
            ip: "10.20.30.40".into()
        }
    );
    wait_for("files-01 healthy after the block is lifted", W, || {
        admin.host_status("files-01").as_deref() == Some("healthy")
    });

    // acknowledge; isolate and release
    let (c, _) = op.post(&format!("/api/v1/incidents/{num}/acknowledge"), json!({}));
    assert_eq!(c, 200);
    let (c, _) = op.post(&format!("/api/v1/incidents/{num}/acknowledge"), json!({}));
    assert_eq!(c, 404, "acknowledging twice is refused");
    op.post(
        "/api/v1/actions",
        json!({"host_id": hid, "kind": "isolate"}),
    );
    assert_eq!(rx1.recv_timeout(W).unwrap(), ActionKind::Isolate);
    wait_for("pacs-01 contained (isolated)", W, || {
        admin.host_status("pacs-01").as_deref() == Some("contained")
    });
    op.post(
        "/api/v1/actions",
        json!({"host_id": hid, "kind": "release"}),
    );
    assert_eq!(rx1.recv_timeout(W).unwrap(), ActionKind::Release);
    wait_for("pacs-01 released", W, || {
        admin.host_status("pacs-01").as_deref() == Some("healthy")
    });

    // every step is in the audit log
    let audit = admin.ok("/api/v1/audit");
    let has = |action: &str, actor: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == action && r["actor"] == actor && r["ok"] == true)
    };
    assert!(has("enroll", "agent"));
    assert!(has("action-requested", "olivia"));
    assert!(has("action-confirmed", "host:pacs-01"));
    assert!(has("acknowledge", "olivia"));
    assert!(has("create-user", "admin"));
    // the host detail lists its events in order
    let d = admin.ok(&format!("/api/v1/hosts/{hid}"));
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ready", "incident", "restored"]);
    drop(a1);
    drop(a2);
}

#[test]
fn fleet_flow_sqlite() {
    fleet_flow(Backend::Sqlite);
}

#[test]
fn fleet_flow_postgres() {
    fleet_flow(Backend::Postgres);
}

#[test]
fn a_host_that_stops_reporting_turns_silent() {
    let console = Console::start_with(Backend::Sqlite, Duration::from_millis(800));
    let admin = console.admin();
    let s = tempfile::tempdir().unwrap();
    let mut a = console.agent(s.path(), "quiet-01", None);
    a.send(&ready()).unwrap();
    wait_for("healthy", W, || {
        admin.host_status("quiet-01").as_deref() == Some("healthy")
    });
    drop(a);
    wait_for("silent", W, || {
        admin.host_status("quiet-01").as_deref() == Some("silent")
    });
}

#[test]
fn state_survives_a_console_restart_and_backends_migrate_once() {
    let mut console = Console::start(Backend::Postgres);
    let s = tempfile::tempdir().unwrap();
    let mut a = console.agent(s.path(), "db-01", None);
    a.send(&ready()).unwrap();
    a.send(&ward_model::AgentEvent::Incident(incident(
        "x-1",
        None,
        vec!["/d/f".into()],
    )))
    .unwrap();
    assert!(a.wait_delivered(W));
    console.restart();
    let admin = console.admin();
    wait_for("incident still there", W, || {
        admin.get("/api/v1/incidents").1.as_array().map(|a| a.len()) == Some(1)
    });
    assert_eq!(admin.host_status("db-01").as_deref(), Some("under-attack"));
}

#[test]
fn two_agents_with_one_name_are_told_apart() {
    let console = Console::start(Backend::Sqlite);
    let admin = console.admin();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut x = console.agent(a.path(), "srv", None);
    let mut y = console.agent(b.path(), "srv", None);
    x.send(&ready()).unwrap();
    y.send(&ready()).unwrap();
    assert!(x.wait_delivered(W) && y.wait_delivered(W));
    let hosts = admin.ok("/api/v1/hosts");
    let mut names: Vec<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["srv", "srv (2)"]);
}
