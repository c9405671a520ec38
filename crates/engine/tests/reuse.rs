//! Re-opens of unchanged files reuse the stored profile; changed content is profiled again
//! (and judged as before: encrypting files in place is still caught).

mod common;
use common::*;
use ward_engine::*;

fn counters(sim: &Sim) -> (u64, u64) {
    let s = sim.eng.stats();
    (s.samples_profiled, s.profiles_reused)
}

#[test]
fn unchanged_reopen_reuses_profile_changed_content_is_reprofiled() {
    let mut sim = Sim::new();
    let files: Vec<String> = (0..6).map(|i| format!("/home/u/docs/f{i}.txt")).collect();
    for (i, f) in files.iter().enumerate() {
        sim.put(f, text(i as u64, 20_000 + 3000 * i));
    }
    let sh = sim.login_shell();
    let grep = sim.spawn(sh, "/usr/bin/grep");

    // First sightings: nothing to reuse.
    for f in &files {
        sim.read(grep, f);
    }
    assert_eq!(counters(&sim), (6, 0));

    // Unchanged: every re-open (by the same or another process) reuses the profile.
    let cp = sim.spawn(sh, "/usr/bin/cp");
    for f in &files {
        sim.read(grep, f);
        sim.read(cp, f);
    }
    assert_eq!(counters(&sim), (18, 12));

    // An edit that writes the same bytes back reuses it at the close too.
    let ed = sim.spawn(sh, "/usr/bin/vi");
    let same = sim.content(&files[0]);
    sim.overwrite(ed, &files[0], same);
    assert_eq!(counters(&sim), (20, 14));

    // A change outside the head (one byte of the tail block) is a new sample: profiled.
    let mut d = sim.content(&files[1]);
    let n = d.len();
    d[n - 10] ^= 1;
    sim.overwrite(ed, &files[1], d);
    assert_eq!(counters(&sim), (22, 15), "open reused, close re-profiled");
    sim.read(grep, &files[1]);
    assert_eq!(counters(&sim), (23, 16), "the new content is reused next");
    sim.assert_no_verdict();

    // Encrypting the files in place: each close is a new content, profiled and judged.
    let x = sim.spawn(sh, "/tmp/.x/crypt");
    let before = counters(&sim);
    let mut caught = None;
    for (i, f) in files.iter().enumerate() {
        let n = sim.content(f).len();
        let v = sim.overwrite(x, f, random(1000 + i as u64, n));
        let (s, r) = counters(&sim);
        assert_eq!(
            (s - before.0, r - before.1),
            (2 * (i as u64 + 1), i as u64 + 1),
            "the open of {f} reuses, its close does not"
        );
        if v.is_some() {
            caught = Some(i);
            break;
        }
    }
    let i = caught.expect("in-place encryption not detected");
    assert!(i < 3, "verdict only after file {}", i + 1);
    assert_eq!(sim.verdicts[0].culprit, x);
    assert!(sim.verdicts[0]
        .indicators
        .contains(&Indicator::ContentEncrypted));
}

#[test]
fn same_size_different_bytes_is_not_reused() {
    // Files replaced by other content of the same size under the same inode, with no
    // events in between (e.g. written while ward was not watching): profiled afresh, so
    // the random replacement is seen as random.
    let mut sim = Sim::new();
    sim.put("/srv/a.txt", text(7, 12_000));
    let sh = sim.login_shell();
    let r = sim.spawn(sh, "/usr/bin/cat");
    sim.read(r, "/srv/a.txt");
    let k = sim.key("/srv/a.txt");
    let enc = random(9, 12_000);
    sim.fs.insert("/srv/a.txt".into(), (k, enc));
    sim.read(r, "/srv/a.txt");
    assert_eq!(counters(&sim), (2, 0));
}

/// A read-only open the sensor did not sample (the file's stamp is unchanged): the
/// engine's profile of the file's last sample stands in for it.
fn read_unread(sim: &mut Sim, p: ProcId, path: &str) -> Option<Verdict> {
    let (k, data) = sim.fs[path].clone();
    assert!(
        sim.eng.has_sample_profile(k, data.len() as u64),
        "the agent only sends an unread sample when the engine holds the profile"
    );
    sim.emit(
        p,
        Op::Open {
            file: k,
            path: path.to_string(),
            sample: Sample::unchanged(data.len() as u64),
            write: Some(false),
        },
    )
}

#[test]
fn unread_samples_reuse_the_last_sample_and_detection_holds() {
    let mut sim = Sim::new();
    let files: Vec<String> = (0..6).map(|i| format!("/srv/share/r{i}.txt")).collect();
    for (i, f) in files.iter().enumerate() {
        sim.put(f, text(40 + i as u64, 30_000 + 1000 * i));
    }
    let sh = sim.login_shell();
    let grep = sim.spawn(sh, "/usr/bin/grep");
    let k0 = sim.key(&files[0]);
    assert!(!sim.eng.has_sample_profile(k0, 30_000), "never sampled");
    for f in &files {
        sim.read(grep, f);
    }
    // Re-reads by another program: nothing read, nothing profiled, all reused.
    let cp = sim.spawn(sh, "/usr/bin/cp");
    for f in &files {
        read_unread(&mut sim, cp, f);
    }
    let s = sim.eng.stats();
    assert_eq!(
        (s.samples_profiled, s.profiles_reused, s.samples_unread),
        (12, 6, 6)
    );
    // Only a profile of the same size counts (a sensor stamp includes the size anyway).
    assert!(!sim.eng.has_sample_profile(k0, 30_001));

    // After an edit, the close-write's sample is the one reused.
    let ed = sim.spawn(sh, "/usr/bin/vi");
    let edited = text(99, 31_500);
    sim.overwrite(ed, &files[0], edited);
    assert!(sim.eng.has_sample_profile(k0, 31_500));
    assert!(!sim.eng.has_sample_profile(k0, 30_000));
    read_unread(&mut sim, cp, &files[0]);
    sim.assert_no_verdict();

    // A reader-then-encryptor whose reads were all unread samples is still caught: its
    // baselines are the stored (plain) profiles.
    let x = sim.spawn(sh, "/tmp/.x/crypt");
    let mut caught = None;
    for (i, f) in files.iter().enumerate() {
        read_unread(&mut sim, x, f);
        let n = sim.content(f).len();
        if sim.overwrite(x, f, random(500 + i as u64, n)).is_some() {
            caught = Some(i);
            break;
        }
    }
    let i = caught.expect("in-place encryption after unread reads not detected");
    assert!(i < 3, "verdict only after file {}", i + 1);
}

#[test]
fn an_unread_sample_without_a_profile_is_unknown_content_not_a_panic() {
    // Cannot happen live (the agent asks the engine first, on the same thread); a replayed
    // or hand-made trace may still carry one.
    let mut sim = Sim::new();
    sim.put("/srv/b.txt", text(3, 9000));
    let sh = sim.login_shell();
    let r = sim.spawn(sh, "/usr/bin/cat");
    let k = sim.key("/srv/b.txt");
    let v = sim.emit(
        r,
        Op::Open {
            file: k,
            path: "/srv/b.txt".into(),
            sample: Sample::unchanged(9000),
            write: Some(false),
        },
    );
    assert!(v.is_none());
    assert_eq!(sim.eng.stats().samples_unread, 0);
    sim.read(r, "/srv/b.txt");
    sim.assert_no_verdict();
}
