//! The outputs as the agent wires them: sinks built from a TOML config, run by `Outputs`
//! with metrics, scraped over HTTP and asked over the status socket while events flow.

use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ward_model::*;
use ward_outputs::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    outputs: Vec<SinkConfig>,
}

fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn incident() -> Incident {
    Incident {
        id: "20261201T100000-77".into(),
        pid: 77,
        exe: "/usr/sbin/smbd".into(),
        cmdline: vec!["smbd".into()],
        client: Some(Client {
            ip: "10.0.0.5".into(),
            user: "alice".into(),
            share: "data".into(),
        }),
        started_at: t("2026-12-01T10:00:00Z"),
        detected_at: t("2026-12-01T10:00:00.02Z"),
        contained_at: t("2026-12-01T10:00:00.03Z"),
        action: Action::ClientBlocked,
        files_damaged: 2,
        indicators: vec!["content-encrypted".into()],
        uid: 1000,
        damaged: vec!["/srv/a.docx".into(), "/srv/b.docx".into()],
        created: vec![],
        processes: vec![77],
        contain_ms: 30.0,
        freeze_ms: 0.2,
        restore: RestoreStatus::Pending,
    }
}

fn events() -> Vec<AgentEvent> {
    vec![
        AgentEvent::Ready(Ready {
            version: "0.1.0".into(),
            pid: std::process::id(),
            paths: vec!["/srv".into()],
            state_dir: "/var/lib/ward".into(),
            filesystems: vec!["ext4".into()],
            protections: Protections::default(),
            vaults: vec![],
            sensor: "fanotify".into(),
            warnings: vec![],
        }),
        AgentEvent::Incident(incident()),
        AgentEvent::Restored(Restored {
            id: "20261201T100000-77".into(),
            files_restored: 2,
            files_lost: 0,
            files_quarantined: 0,
            conflicts: vec![],
            already_ok: 0,
        }),
        AgentEvent::Stopped(Stopped {}),
    ]
}

#[test]
fn every_output_gets_every_event_and_the_metrics_and_status_show_them() {
    let dir = tempfile::tempdir().unwrap();
    // Webhook receiver (ECS bodies) and UDP syslog receiver on loopback.
    let hook = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let hook_port = hook.server_addr().to_ip().unwrap().port();
    let got: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let (h, g) = (hook.clone(), got.clone());
    let receiver = std::thread::spawn(move || {
        for mut req in h.incoming_requests() {
            let id = req
                .headers()
                .iter()
                .find(|x| x.field.equiv("X-Ward-Event-Id"))
                .map(|x| x.value.to_string())
                .unwrap();
            let mut body = String::new();
            req.as_reader().read_to_string(&mut body).unwrap();
            g.lock()
                .unwrap()
                .push((id, serde_json::from_str(&body).unwrap()));
            req.respond(tiny_http::Response::empty(200)).unwrap();
        }
    });
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let file = dir.path().join("events.json");
    let cfg: Config = toml::from_str(&format!(
        r#"
        [[outputs]]
        type = "file"
        path = "{file}"

        [[outputs]]
        type = "syslog"
        transport = "udp"
        address = "{syslog}"
        format = "ecs"

        [[outputs]]
        type = "webhook"
        url = "http://127.0.0.1:{hook_port}/ward"
        format = "ecs"
        "#,
        file = file.display(),
        syslog = syslog.local_addr().unwrap(),
    ))
    .unwrap();
    let ctx = SinkContext::new(dir.path());
    let sinks = SinkConfig::build_all(&cfg.outputs, &ctx).unwrap();
    let metrics = Arc::new(Metrics::new());
    metrics.set_sensor("fanotify");
    let server = MetricsServer::start("127.0.0.1:0", metrics.clone()).unwrap();
    let m = metrics.clone();
    let status = StatusServer::start(dir.path().join("status.sock"), move || {
        let mut s = StatusSnapshot::new(&m);
        s.protected_paths = vec!["/srv".into()];
        s
    })
    .unwrap();
    let outputs = Outputs::start_with(
        sinks,
        OutputOptions {
            metrics: Some(metrics.clone()),
            ..OutputOptions::default()
        },
    );
    // The agent's hot thread answers permission events while events go out.
    let em = outputs.emitter();
    let hot = std::thread::spawn({
        let m = metrics.clone();
        move || {
            for ev in events() {
                for _ in 0..100 {
                    m.event(EventKind::Open);
                    m.perm_answer(PermAnswer::Allow, Duration::from_micros(15));
                }
                assert!(em.emit(ev));
            }
        }
    });
    hot.join().unwrap();
    // While the agent runs: scrape until the incident shows.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let url = format!("http://{}/metrics", server.local_addr());
    let t0 = Instant::now();
    let text = loop {
        let text = agent
            .get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        if text.contains("ward_incidents_total 1\n") || t0.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(text.contains("ward_incidents_total 1\n"), "{text}");
    assert!(
        text.contains("ward_events_total{kind=\"open\"} 400\n"),
        "{text}"
    );
    assert!(
        text.contains("ward_perm_answer_seconds_count 400\n"),
        "{text}"
    );
    let st = status_client(status.path()).unwrap();
    assert_eq!(st["metrics"]["incidents"], 1);
    assert_eq!(st["protected_paths"][0], "/srv");

    let report = outputs.close();
    // Every sink delivered all 4 (stopped included) before close returned.
    for (name, delivered, failed, disabled) in &report.sinks {
        assert_eq!((*delivered, *failed, *disabled), (4, 0, false), "{name}");
    }
    let lines: Vec<AgentEvent> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, events());
    let mut buf = vec![0u8; 65536];
    let mut kinds = Vec::new();
    for _ in 0..4 {
        let n = syslog.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        let m = syslog_loose::parse_message(msg, syslog_loose::Variant::RFC5424);
        let doc: serde_json::Value = serde_json::from_str(m.msg).unwrap();
        kinds.push(doc["event"]["action"].as_str().unwrap().to_string());
    }
    assert_eq!(
        kinds,
        [
            "agent-ready",
            "ransomware-contained",
            "files-restored",
            "agent-stopped"
        ]
    );
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    assert_eq!(got[1].0, "20261201T100000-77");
    assert_eq!(got[1].1["source"]["ip"], "10.0.0.5");
    assert_eq!(got[3].1["event"]["action"], "agent-stopped");
    // The same event id in every output of one event.
    assert_eq!(got[1].1["event"]["id"], got[1].0);
    hook.unblock();
    receiver.join().unwrap();
}
