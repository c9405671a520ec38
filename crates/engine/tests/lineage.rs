//! The process table: exits let it shrink; evidence outlives exited members.
mod common;
use common::*;
use ward_engine::*;

/// A shell running many short-lived commands (each reads a file and exits): with `Exit`
/// events the table stays bounded by what is alive plus the retained dead.
#[test]
fn exits_keep_the_process_table_bounded() {
    let mut sim = Sim::with(Config {
        dead_ttl_ns: 2 * SEC,
        max_dead: 500,
        ..Config::default()
    });
    sim.put("/srv/share/a.txt", text(1, 4000));
    let sh = sim.login_shell();
    let mut peak = 0;
    for i in 0..20_000 {
        let c = sim.spawn(sh, if i % 2 == 0 { "/bin/cat" } else { "/bin/grep" });
        sim.read(c, "/srv/share/a.txt");
        sim.exit(c);
        peak = peak.max(sim.eng.stats().processes_tracked);
    }
    let s = sim.eng.stats();
    // init, sshd, the shell, and at most max_dead exited ones (plus the housekeeping lag).
    assert!(peak <= 3 + 500 + 16, "peak {peak}");
    assert!(s.processes_forgotten >= 19_000, "{s:?}");
    sim.assert_no_verdict();
    // Time passes: everything exited goes.
    sim.step = 3 * SEC;
    for _ in 0..200 {
        let c = sim.spawn(sh, "/bin/true");
        sim.exit(c);
    }
    assert!(
        sim.eng.stats().processes_tracked <= 3 + 2,
        "{:?}",
        sim.eng.stats()
    );
}

/// With the production defaults too (10 min TTL, 4096 retained): a day of cron-like
/// churn stays bounded by the TTL.
#[test]
fn default_ttl_forgets_after_ten_minutes() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    sim.step = 100 * MS;
    for _ in 0..30_000 {
        let c = sim.spawn(sh, "/usr/bin/stat");
        sim.exit(c);
    }
    // 2 events per process at 100 ms: ~3000 processes per 10 minutes.
    let n = sim.eng.stats().processes_tracked;
    assert!(n <= 3 + 3_000 + 16, "{n}");
    assert!(n >= 1_000, "{n}: forgotten before the TTL");
}

/// Processes without a `Process` event (first seen by a file event) are forgotten too.
#[test]
fn unannounced_processes_are_forgotten() {
    let mut sim = Sim::with(Config {
        dead_ttl_ns: SEC,
        max_dead: 100,
        ..Config::default()
    });
    sim.put("/srv/share/a.txt", text(1, 4000));
    for pid in 0..5_000u32 {
        let p = ProcId {
            pid: 50_000 + pid,
            start: 7,
        };
        sim.read(p, "/srv/share/a.txt");
        sim.exit(p);
    }
    assert!(sim.eng.stats().processes_tracked <= 2 + 100 + 16);
}

/// Fork-per-file encryption whose children all exit at once still adds up at the parent,
/// and the children that carry the evidence are not forgotten before the verdict.
#[test]
fn evidence_outlives_exited_children() {
    let mut sim = Sim::with(Config {
        dead_ttl_ns: SEC,
        max_dead: 2,
        ..Config::default()
    });
    let files: Vec<String> = (0..6)
        .map(|i| {
            let p = format!("/srv/share/d{i}/f.txt");
            sim.put(&p, text(i, 6000));
            p
        })
        .collect();
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/bin/sh");
    sim.step = 2 * SEC;
    for (i, f) in files.iter().enumerate() {
        let c = sim.spawn(script, "/usr/bin/openssl");
        sim.overwrite(c, f, random(i as u64, 6000));
        sim.exit(c);
        if !sim.verdicts.is_empty() {
            break;
        }
    }
    assert_eq!(sim.verdicts.len(), 1, "{:?}", sim.verdicts);
    assert_eq!(sim.verdicts[0].root, script);
    assert_eq!(sim.verdicts[0].damage_count, 3);
}

/// A forgotten process takes its bookkeeping with it: the files it created are no longer
/// claimed by it (no lineage can quarantine them any more), while the files of a live
/// creator still are.
#[test]
fn forgotten_creators_release_their_files() {
    let mut sim = Sim::with(Config {
        dead_ttl_ns: SEC,
        max_dead: 100,
        ..Config::default()
    });
    let sh = sim.login_shell();
    let keeper = sim.spawn(sh, "/usr/bin/tee");
    sim.write_new(keeper, "/srv/share/kept.txt", text(9, 3000));
    let mut gone = Vec::new();
    for i in 0..400 {
        let c = sim.spawn(sh, "/usr/bin/touch");
        sim.write_new(c, &format!("/srv/share/new{i}.txt"), text(i, 2000));
        sim.exit(c);
        gone.push(c);
    }
    sim.step = 2 * SEC;
    for _ in 0..50 {
        let c = sim.spawn(sh, "/bin/true");
        sim.exit(c);
    }
    let forgotten = gone
        .iter()
        .filter(|c| sim.eng.process(**c).is_none())
        .collect::<Vec<_>>();
    // Small new files are ransom-note evidence kept for the window: all but the last
    // `max_dead` are forgotten by the cap.
    assert!(forgotten.len() >= 400 - 100 - 16, "{}", forgotten.len());
    for c in forgotten {
        assert!(sim.eng.files_created_by(*c).is_empty());
    }
    assert_eq!(
        sim.eng.files_created_by(keeper),
        vec!["/srv/share/kept.txt"]
    );
    sim.assert_no_verdict();
}
