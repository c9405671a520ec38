//! Slow attackers across process restarts (issue 10).
mod common;
use common::*;
use ward_engine::*;

fn files(sim: &mut Sim, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = format!("/srv/share/d{}/r{i}.txt", i % 3);
            sim.put(&p, text(i as u64, 9000));
            p
        })
        .collect()
}

fn spawn_as(sim: &mut Sim, parent: ProcId, exe: &str, uid: u32) -> ProcId {
    let id = sim.spawn(parent, exe);
    // Re-announce with the wanted uid (an exec keeps the identity).
    let info = ProcInfo {
        id,
        parent: Some(parent),
        exe: exe.into(),
        cmdline: vec![exe.into()],
        uid,
        boundary: false,
    };
    sim.emit(id, Op::Process(info));
    id
}

#[test]
fn one_file_per_cron_run_is_caught_at_the_third_run() {
    let mut sim = Sim::new();
    let fs = files(&mut sim, 6);
    let init = sim.init;
    let cron = sim.spawn_full(Some(init), "/usr/sbin/cron", true);
    sim.step = 10 * 60 * SEC / 4; // 10 minutes per run (4 events a run)
    let mut runs = 0;
    for (i, f) in fs.iter().enumerate() {
        let job = spawn_as(&mut sim, cron, "/var/tmp/.update", 33);
        let n = sim.content(f).len();
        sim.overwrite(job, f, random(i as u64, n));
        runs += 1;
        if !sim.verdicts.is_empty() {
            assert_eq!(sim.verdicts[0].root, job, "the running instance");
            break;
        }
        sim.exit(job);
    }
    assert_eq!(runs, 3);
    let v = &sim.verdicts[0];
    assert_eq!(v.damage_count, 3);
    assert!(v.indicators.contains(&Indicator::ContentEncrypted));
}

#[test]
fn one_file_per_child_of_a_script_adds_up_at_the_script() {
    let mut sim = Sim::new();
    let fs = files(&mut sim, 6);
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/usr/bin/python3");
    sim.step = 5 * 60 * SEC / 4;
    for (i, f) in fs.iter().enumerate() {
        let c = sim.spawn(script, "/usr/bin/openssl");
        let n = sim.content(f).len();
        sim.overwrite(c, f, random(i as u64, n));
        sim.exit(c);
        if !sim.verdicts.is_empty() {
            assert_eq!(i, 2);
            break;
        }
    }
    assert_eq!(sim.verdicts[0].root, script);
}

#[test]
fn different_programs_users_or_hours_apart_are_not_linked() {
    let mut sim = Sim::new();
    let fs = files(&mut sim, 8);
    let init = sim.init;
    let cron = sim.spawn_full(Some(init), "/usr/sbin/cron", true);
    sim.step = 60 * SEC;
    // Two runs each of two programs, two runs as another user.
    let plan = [
        ("/opt/a", 10),
        ("/opt/b", 10),
        ("/opt/a", 20),
        ("/opt/b", 10),
        ("/opt/a", 10),
    ];
    for (i, (exe, uid)) in plan.iter().enumerate() {
        let job = spawn_as(&mut sim, cron, exe, *uid);
        let n = sim.content(&fs[i]).len();
        sim.overwrite(job, &fs[i], random(i as u64, n));
        sim.exit(job);
    }
    // /opt/a as uid 10 damaged 2 files, /opt/b 2, /opt/a as uid 20 one: no identity at 3.
    sim.assert_no_verdict();
    // The same program again, more than an hour after its first run: the first run's file
    // has left the window.
    sim.step = 40 * 60 * SEC;
    let job = spawn_as(&mut sim, cron, "/opt/a", 10);
    let n = sim.content(&fs[6]).len();
    sim.overwrite(job, &fs[6], random(99, n));
    sim.assert_no_verdict();
}

#[test]
fn periodic_jobs_that_compress_or_rotate_are_quiet() {
    let mut sim = Sim::new();
    let init = sim.init;
    let cron = sim.spawn_full(Some(init), "/usr/sbin/cron", true);
    sim.step = 5 * SEC;
    for run in 0..30u64 {
        sim.put(&format!("/var/log/app.log.{run}"), text(run, 20_000));
        let job = spawn_as(&mut sim, cron, "/usr/sbin/logrotate", 0);
        let f = format!("/var/log/app.log.{run}");
        sim.read(job, &f);
        let d = gzip(&sim.content(&f));
        sim.write_new(job, &format!("{f}.gz"), d);
        sim.delete(job, &f);
        sim.exit(job);
    }
    sim.assert_no_verdict();
}

/// One cron, one interpreter, different scripts: `python3 /opt/a.py` and
/// `python3 /opt/b.py` are different programs (their damage is not added up), while the
/// same script re-launched is one program (a slow attacker's runs still add up).
#[test]
fn interpreter_runs_are_one_program_per_script() {
    let run = |scripts: &[&str]| {
        let mut sim = Sim::new();
        let fs = files(&mut sim, 6);
        let init = sim.init;
        let cron = sim.spawn_full(Some(init), "/usr/sbin/cron", true);
        sim.step = 10 * 60 * SEC / 4;
        for (i, f) in fs.iter().take(3).enumerate() {
            let job = sim.spawn(cron, "/usr/bin/python3.11");
            let info = ProcInfo {
                id: job,
                parent: Some(cron),
                exe: "/usr/bin/python3.11".into(),
                cmdline: vec!["python3".into(), scripts[i % scripts.len()].into()],
                uid: 33,
                boundary: false,
            };
            sim.emit(job, Op::Process(info));
            let n = sim.content(f).len();
            sim.overwrite(job, f, random(i as u64, n));
            sim.exit(job);
        }
        sim.verdicts.len()
    };
    assert_eq!(
        run(&["/opt/enc.py"]),
        1,
        "same script re-launched: one program"
    );
    assert_eq!(
        run(&["/opt/a.py", "/opt/b.py", "/opt/c.py"]),
        0,
        "three different scripts are three programs"
    );
}
