//! `write-refused`: a write the agent refused because no copy could be made (full disk).
mod common;
use common::*;
use ward_engine::*;

#[test]
fn a_refused_write_convicts_a_lineage_that_already_damaged_a_file() {
    let mut sim = Sim::new();
    let files: Vec<String> = (0..3)
        .map(|i| {
            let p = format!("/srv/share/r{i}.txt");
            sim.put(&p, text(i, 9000));
            p
        })
        .collect();
    let sh = sim.login_shell();
    let a = sim.spawn(sh, "/tmp/enc");
    let n = sim.content(&files[0]).len();
    sim.overwrite(a, &files[0], random(1, n));
    sim.assert_no_verdict();
    // One file damaged, then a write refused: stopped.
    let v = sim.eng.write_refused(a).expect("convicted");
    assert_eq!(v.root, a);
    assert_eq!(v.files_damaged, vec![files[0].clone()]);
    assert!(v.indicators.contains(&Indicator::WriteRefused));
    assert!(v.indicators.contains(&Indicator::ContentEncrypted));
    assert_eq!(Indicator::WriteRefused.as_str(), "write-refused");
}

#[test]
fn a_refusal_for_a_lineage_without_damage_stays_quiet() {
    let mut sim = Sim::new();
    sim.put("/srv/share/a.txt", text(1, 5000));
    let sh = sim.login_shell();
    let ed = sim.spawn(sh, "/usr/bin/vim");
    for _ in 0..5 {
        assert!(sim.eng.write_refused(ed).is_none());
    }
    sim.overwrite(ed, "/srv/share/a.txt", text(2, 5200));
    sim.assert_no_verdict();
}

#[test]
fn damage_after_a_refusal_convicts() {
    let mut sim = Sim::new();
    sim.put("/srv/share/a.txt", text(1, 9000));
    let sh = sim.login_shell();
    let a = sim.spawn(sh, "/tmp/enc");
    // No damage yet: a refusal alone convicts nobody (benign programs on a full disk).
    assert!(sim.eng.write_refused(a).is_none());
    sim.assert_no_verdict();
    let v = sim
        .overwrite(a, "/srv/share/a.txt", random(2, 9000))
        .expect("a refused lineage that then damages a file is stopped");
    assert!(v.indicators.contains(&Indicator::WriteRefused));
}
