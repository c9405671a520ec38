//! SMB fan-out (issue 9): a lineage connecting to TCP 445/139 on many distinct addresses in
//! a short time is a worm; a job talking to one server many times is not.
mod common;
use common::*;
use ward_engine::*;

fn connect(sim: &mut Sim, p: ProcId, addr: &str, port: u16) -> Option<Verdict> {
    sim.emit(
        p,
        Op::Connect {
            addr: addr.to_string(),
            port,
        },
    )
}

#[test]
fn sweep_of_ten_addresses_is_a_verdict_at_the_tenth() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let w = sim.spawn(sh, "/tmp/.w/spread");
    for i in 1..=9 {
        assert!(
            connect(&mut sim, w, &format!("10.0.0.{i}"), 445).is_none(),
            "{i}"
        );
    }
    let v = connect(&mut sim, w, "10.0.0.10", 445).expect("verdict at the 10th address");
    assert_eq!(v.root, w);
    assert_eq!(v.culprit, w);
    assert!(v.indicators.contains(&Indicator::SmbFanout));
    assert_eq!(Indicator::SmbFanout.as_str(), "smb-fanout");
    assert!(v.files_damaged.is_empty());
    assert!(sim.eng.is_convicted(w));
    // No second verdict for the same lineage, nor for the shell above it.
    for i in 11..40 {
        assert!(connect(&mut sim, w, &format!("10.0.0.{i}"), 139).is_none());
    }
    assert_eq!(sim.verdicts.len(), 1);
}

#[test]
fn scanner_forking_one_child_per_address_convicts_the_scanner() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let scan = sim.spawn(sh, "/usr/bin/python3");
    let mut v = None;
    for i in 1..=12 {
        let c = sim.spawn(scan, "/usr/bin/smbclient");
        let r = connect(&mut sim, c, &format!("192.168.1.{i}"), 445);
        sim.exit(c);
        if r.is_some() {
            assert_eq!(i, 10, "verdict at the 10th distinct address");
            v = r;
            break;
        }
    }
    let v = v.expect("verdict");
    assert_eq!(
        v.root, scan,
        "the scanner, not one child, not the login shell"
    );
    assert!(v.indicators.contains(&Indicator::SmbFanout));
}

#[test]
fn backup_job_to_one_server_is_quiet() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let job = sim.spawn(sh, "/usr/bin/backup");
    for i in 0..30 {
        // One server, several ports and address spellings: one address.
        let (addr, port) = match i % 3 {
            0 => ("10.1.2.3", 445),
            1 => ("::ffff:10.1.2.3", 139),
            _ => ("10.1.2.3", 445),
        };
        connect(&mut sim, job, addr, port);
    }
    // A few other servers: still far below the threshold.
    for a in ["10.1.2.4", "10.1.2.5"] {
        connect(&mut sim, job, a, 445);
    }
    sim.assert_no_verdict();
}

#[test]
fn other_ports_and_slow_sweeps_do_not_count() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let crawler = sim.spawn(sh, "/usr/bin/curl");
    for i in 1..=50 {
        connect(&mut sim, crawler, &format!("10.9.0.{i}"), 443);
    }
    sim.assert_no_verdict();
    // 20 addresses, one every 5 s: never 10 within 30 s.
    let slow = sim.spawn(sh, "/usr/bin/monitor");
    sim.step = 5 * SEC;
    for i in 1..=20 {
        connect(&mut sim, slow, &format!("10.8.0.{i}"), 445);
    }
    sim.assert_no_verdict();
}

#[test]
fn boundary_process_is_never_blamed_and_threshold_is_configurable() {
    let mut sim = Sim::with(Config {
        fanout_threshold: 3,
        ..Config::default()
    });
    let sshd = sim.sshd;
    for i in 1..=20 {
        connect(&mut sim, sshd, &format!("10.0.1.{i}"), 445);
    }
    sim.assert_no_verdict();
    let sh = sim.login_shell();
    let w = sim.spawn(sh, "/tmp/w");
    connect(&mut sim, w, "10.0.2.1", 445);
    connect(&mut sim, w, "10.0.2.2", 445);
    let v = connect(&mut sim, w, "10.0.2.3", 445).expect("verdict at 3");
    assert_eq!(v.root, w);
    // The shell above keeps no fan-out evidence of the convicted worm: a second, separate
    // child of the shell connecting to one new address is not convicted.
    let other = sim.spawn(sh, "/usr/bin/smbclient");
    assert!(connect(&mut sim, other, "10.0.3.1", 445).is_none());
    assert_eq!(sim.verdicts.len(), 1);
}

#[test]
fn disabled_rule() {
    let mut sim = Sim::with(Config {
        fanout_threshold: 0,
        ..Config::default()
    });
    let sh = sim.login_shell();
    let w = sim.spawn(sh, "/tmp/w");
    for i in 1..=40 {
        connect(&mut sim, w, &format!("10.0.0.{i}"), 445);
    }
    sim.assert_no_verdict();
}

#[test]
fn connect_events_roundtrip_as_json() {
    let ev = Event {
        time: 5,
        proc: ProcId { pid: 9, start: 1 },
        op: Op::Connect {
            addr: "10.0.0.1".into(),
            port: 445,
        },
    };
    let j = serde_json::to_string(&ev).unwrap();
    assert!(j.contains("\"op\":\"connect\""), "{j}");
    assert_eq!(serde_json::from_str::<Event>(&j).unwrap(), ev);
}
