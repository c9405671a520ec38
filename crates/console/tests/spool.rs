//! The agent's durable spool: the console down while an incident happens, agent restarts,
//! re-sent batches — every event arrives exactly once, in order.

mod common;
use common::*;
use std::time::Duration;
use ward_console::{ClientOptions, ConsoleClient};
use ward_model::AgentEvent;
use ward_outputs::Sink;

const W: Duration = Duration::from_secs(20);

fn event_kinds(admin: &Api, host: &str) -> Vec<(i64, String)> {
    let id = admin.host_id(host);
    let d = admin.ok(&format!("/api/v1/hosts/{id}"));
    let mut v: Vec<(i64, String)> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().unwrap(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.reverse();
    v
}

fn spool_files(state: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(state.join("console/spool"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn console_down_while_an_incident_happens_then_up_arrives_exactly_once() {
    let mut console = Console::start(Backend::Sqlite);
    let s = tempfile::tempdir().unwrap();
    let mut a = console.agent(s.path(), "ward-01", None);
    a.send(&ready()).unwrap();
    assert!(a.wait_delivered(W));

    console.stop();
    let t0 = std::time::Instant::now();
    a.send(&AgentEvent::Incident(incident(
        "down-1",
        None,
        vec!["/srv/a".into()],
    )))
    .unwrap();
    a.send(&restored("down-1", 1, 0)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "send never waits on the network"
    );
    std::thread::sleep(Duration::from_millis(600)); // several failed delivery attempts
    assert_eq!(a.pending(), 2);
    assert_eq!(spool_files(s.path()).len(), 2);

    console.restart();
    assert!(a.wait_delivered(W));
    let admin = console.admin();
    let incs = admin.ok("/api/v1/incidents");
    assert_eq!(incs.as_array().unwrap().len(), 1);
    assert_eq!(
        incs[0]["restore"], "done",
        "order kept: the restore came after the incident"
    );
    let kinds = event_kinds(&admin, "ward-01");
    let names: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(names, ["ready", "incident", "restored"]);
    assert!(kinds.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn agent_restart_and_resent_batches_duplicate_nothing() {
    let mut console = Console::start(Backend::Sqlite);
    let s = tempfile::tempdir().unwrap();
    {
        let mut a = console.agent(s.path(), "ward-02", None);
        a.send(&ready()).unwrap();
        assert!(a.wait_delivered(W));
    }
    console.stop();
    // the agent "crashes" with an undelivered incident in its spool
    {
        let mut o = ClientOptions::new(console.url(), s.path());
        o.retry_every = Duration::from_millis(100);
        let mut a = ConsoleClient::start(o, None).unwrap();
        a.send(&AgentEvent::Incident(incident(
            "crash-1",
            None,
            vec!["/srv/b".into()],
        )))
        .unwrap();
    }
    let kept = spool_files(s.path());
    assert_eq!(kept.len(), 1);
    let copy = std::fs::read(&kept[0]).unwrap();

    console.restart();
    // restarted agent: no token needed, spool delivered
    let mut o = ClientOptions::new(console.url(), s.path());
    o.heartbeat_every = Duration::from_millis(100);
    o.retry_every = Duration::from_millis(100);
    let mut a = ConsoleClient::start(o, None).unwrap();
    assert!(a.wait_delivered(W));
    assert_eq!(a.delivered(), 1);
    // as if the spool file had survived its delivery (answer lost): sent again, stored once
    std::fs::write(&kept[0], &copy).unwrap();
    assert!(a.wait_delivered(W));
    assert_eq!(
        a.delivered(),
        1,
        "the console counted the replay as a duplicate"
    );
    a.send(&restored("crash-1", 1, 0)).unwrap();
    assert!(a.wait_delivered(W));
    let admin = console.admin();
    assert_eq!(admin.ok("/api/v1/incidents").as_array().unwrap().len(), 1);
    let kinds = event_kinds(&admin, "ward-02");
    let names: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(names, ["ready", "incident", "restored"]);
    assert!(
        kinds.windows(2).all(|w| w[0].0 < w[1].0),
        "sequence continues after a restart: {kinds:?}"
    );
}

#[test]
fn an_agent_started_while_the_console_is_down_enrolls_and_delivers_later() {
    let mut console = Console::start(Backend::Sqlite);
    let token = console.token();
    console.stop();
    let s = tempfile::tempdir().unwrap();
    let mut o = ClientOptions::new(console.url(), s.path());
    o.enroll_token = Some(token);
    o.name = "late-01".into();
    o.retry_every = Duration::from_millis(100);
    let mut a = ConsoleClient::start(o, None).unwrap();
    a.send(&ready()).unwrap();
    a.send(&AgentEvent::Incident(incident(
        "early-1",
        None,
        vec!["/srv/c".into()],
    )))
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ConsoleClient::is_enrolled(s.path()));
    console.restart();
    assert!(a.wait_delivered(W));
    assert!(ConsoleClient::is_enrolled(s.path()));
    let admin = console.admin();
    assert_eq!(
        admin.host_status("late-01").as_deref(),
        Some("under-attack")
    );
}
