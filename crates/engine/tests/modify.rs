//! Writes through held descriptors (issue 10): `Op::Modify` samples are judged as the
//! attacker writes, not when it finally closes.
mod common;
use common::*;
use ward_engine::*;

fn modify(sim: &mut Sim, p: ProcId, path: &str, data: Vec<u8>) -> Option<Verdict> {
    let k = sim.key(path);
    sim.fs.insert(path.to_string(), (k, data.clone()));
    sim.emit(
        p,
        Op::Modify {
            file: k,
            path: path.to_string(),
            sample: sample_of(&data),
        },
    )
}

fn share(sim: &mut Sim, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = format!(
                "/srv/share/dept{}/f{i}.{}",
                i % 5,
                ["txt", "docx", "csv"][i % 3]
            );
            let data = match i % 3 {
                0 => text(i as u64, 9000),
                1 => docx(i as u64),
                _ => csv(i as u64, 7000),
            };
            sim.put(&p, data);
            p
        })
        .collect()
}

#[test]
fn open_everything_then_write_through_held_descriptors() {
    let mut sim = Sim::new();
    let files = share(&mut sim, 150);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/.cache/locker");
    for f in &files {
        assert!(sim.open_write(x, f).is_none());
    }
    let mut at = None;
    for (i, f) in files.iter().enumerate() {
        let n = sim.content(f).len();
        if modify(&mut sim, x, f, random(i as u64 + 9, n)).is_some() {
            at = Some(i + 1);
            break;
        }
    }
    assert_eq!(at, Some(3), "verdict after the third written file");
    let v = sim.verdicts[0].clone();
    assert_eq!(v.root, x);
    assert_eq!(v.damage_count, 3);
    assert!(v.indicators.contains(&Indicator::ContentEncrypted));
    // The closes that follow (and more modifies) count nothing twice and give no verdict.
    for (i, f) in files.iter().enumerate().take(10) {
        let n = sim.content(f).len();
        if i >= 3 {
            modify(&mut sim, x, f, random(i as u64 + 9, n));
        }
        sim.close_write(x, f, random(i as u64 + 9, n));
    }
    assert_eq!(sim.verdicts.len(), 1);
    assert_eq!(sim.eng.damaged_since_verdict(x).len(), 7);
}

#[test]
fn repeated_modify_samples_of_one_file_count_once() {
    let mut sim = Sim::new();
    let files = share(&mut sim, 4);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    sim.open_write(x, &files[0]);
    for s in 0..20 {
        let n = sim.content(&files[0]).len();
        modify(&mut sim, x, &files[0], random(s, n));
    }
    sim.close_write(x, &files[0], random(99, 9000));
    sim.assert_no_verdict();
}

#[test]
fn held_new_outputs_count_once_for_the_funnel() {
    // Write-new-then-delete where the encrypted copies are written through descriptors
    // still open when the originals are deleted.
    let mut sim = Sim::new();
    let files = share(&mut sim, 12);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    for (i, f) in files.iter().enumerate() {
        sim.read(x, f);
        let out = format!("{f}.enc1");
        sim.create(x, &out);
        let n = sim.content(f).len();
        modify(&mut sim, x, &out, random(i as u64, n));
        sim.delete(x, f);
        if !sim.verdicts.is_empty() {
            assert!(i < 3, "verdict only after file {}", i + 1);
            break;
        }
    }
    assert_eq!(sim.verdicts.len(), 1);
    assert!(sim.verdicts[0]
        .indicators
        .contains(&Indicator::ReadWriteDelete));
}

#[test]
fn database_held_open_and_appended_logs_are_quiet() {
    let mut sim = Sim::new();
    sim.put("/var/lib/app/records.db", sqlite_text(1, 12));
    for i in 0..5 {
        sim.put(&format!("/var/log/app{i}.log"), text(i, 3000));
    }
    let sh = sim.login_shell();
    let db = sim.spawn(sh, "/usr/bin/app");
    sim.open_write(db, "/var/lib/app/records.db");
    for s in 0..50u64 {
        // Pages change, the database stays a database.
        let data = sqlite(12 + (s as usize % 3), |pg| csv(s * 100 + pg as u64, 4000));
        modify(&mut sim, db, "/var/lib/app/records.db", data);
    }
    for i in 0..5 {
        let p = format!("/var/log/app{i}.log");
        sim.open_write(db, &p);
        for s in 0..10 {
            let mut data = sim.content(&p);
            data.extend_from_slice(&text(100 + s, 500));
            modify(&mut sim, db, &p, data);
        }
    }
    sim.assert_no_verdict();
}

#[test]
fn office_rewrite_sampled_mid_write_is_quiet() {
    // An application rewriting documents in place: the sample taken mid-write is an
    // unfinished zip (no central directory yet), the close has the valid document.
    let mut sim = Sim::new();
    let files: Vec<String> = (0..8)
        .map(|i| {
            let p = format!("/srv/share/d/r{i}.docx");
            sim.put(&p, docx(i));
            p
        })
        .collect();
    let sh = sim.login_shell();
    let word = sim.spawn(sh, "/usr/bin/soffice");
    for (i, f) in files.iter().enumerate() {
        sim.open_write(word, f);
        let full = docx(100 + i as u64);
        let half = full[..full.len() / 2].to_vec();
        modify(&mut sim, word, f, half);
        sim.close_write(word, f, full);
    }
    sim.assert_no_verdict();
}

#[test]
fn modify_of_a_file_never_seen_is_ignored() {
    let mut sim = Sim::new();
    sim.put("/srv/share/a.txt", text(1, 5000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    for i in 0..5 {
        let p = format!("/srv/share/unknown{i}");
        sim.put(&p, random(i, 5000));
        modify(&mut sim, x, &p, random(i + 10, 5000));
    }
    sim.assert_no_verdict();
}
