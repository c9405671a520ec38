//! Attacks that must give a verdict at or before the third damaged file.
mod common;
use common::*;
use ward_engine::*;

type Gen = fn(u64) -> Vec<u8>;

fn formats() -> Vec<(&'static str, Gen)> {
    vec![
        ("txt", |s| text(s, 20_000)),
        ("csv", |s| csv(s, 12_000)),
        ("docx", docx),
        ("pdf", pdf),
        ("png", |s| png(s, 160, 120)),
        ("dcm", dicom),
        ("sqlite", |s| sqlite_text(s, 8)),
    ]
}

/// Put `n` pre-existing files of one format in 3 directories; returns their paths.
fn tree(sim: &mut Sim, n: usize, ext: &str, gen: Gen) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = format!("/srv/share/dept{}/file{i}.{ext}", i % 3);
            sim.put(&p, gen(i as u64 + 1));
            p
        })
        .collect()
}

/// Run `attack` on each file in turn; the verdict must come within the first 3 files.
fn expect_verdict_by_3rd(
    sim: &mut Sim,
    files: &[String],
    mut attack: impl FnMut(&mut Sim, usize, &str),
) -> Verdict {
    for (i, f) in files.iter().enumerate() {
        attack(sim, i, f);
        if !sim.verdicts.is_empty() {
            assert!(i < 3, "verdict only after file {}", i + 1);
            break;
        }
    }
    assert!(!sim.verdicts.is_empty(), "no verdict");
    assert_eq!(
        sim.verdicts.len(),
        1,
        "more than one verdict: {:#?}",
        sim.verdicts
    );
    sim.verdicts[0].clone()
}

#[test]
fn in_place_random_overwrite_all_formats() {
    for (ext, gen) in formats() {
        let mut sim = Sim::new();
        let files = tree(&mut sim, 8, ext, gen);
        let sh = sim.login_shell();
        let x = sim.spawn(sh, "/tmp/.x/crypt");
        let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
            let n = s.content(f).len();
            s.overwrite(x, f, random(1000 + i as u64, n));
        });
        assert_eq!(v.root, x, "{ext}");
        assert_eq!(v.culprit, x);
        assert_eq!(v.files_damaged.len(), 3, "{ext}");
        assert!(v.indicators.contains(&Indicator::ContentEncrypted), "{ext}");
        assert!(v.indicators.contains(&Indicator::FormatBroken), "{ext}");
    }
}

#[test]
fn wannacry_like_write_new_delete_with_notes() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 9, "docx", docx);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/wcry");
    let note = b"Ooops, your important files are encrypted. Send $300 worth of bitcoin.\n".to_vec();
    let mut noted = std::collections::BTreeSet::new();
    let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        let dir = f.rsplit_once('/').unwrap().0.to_string();
        if noted.insert(dir.clone()) {
            s.write_new(x, &format!("{dir}/@Please_Read_Me@.txt"), note.clone());
        }
        s.read(x, f);
        let n = s.content(f).len();
        s.write_new(x, &format!("{f}.WNCRY"), random(i as u64 + 50, n + 16));
        s.delete(x, f);
    });
    assert_eq!(v.root, x);
    assert!(v.indicators.contains(&Indicator::ReadWriteDelete));
    assert!(v.indicators.contains(&Indicator::ExtensionAppended));
    assert!(v.files_created.iter().any(|p| p.ends_with(".WNCRY")));
    assert!(v
        .files_created
        .iter()
        .any(|p| p.ends_with("@Please_Read_Me@.txt")));
}

#[test]
fn ransom_notes_lower_threshold() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "txt", |s| text(s, 5000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    for d in 0..3 {
        sim.write_new(
            x,
            &format!("/srv/share/dept{d}/README_DECRYPT.txt"),
            b"pay us, files encrypted".to_vec(),
        );
    }
    sim.assert_no_verdict();
    sim.overwrite(x, &files[0], random(1, 5000));
    sim.assert_no_verdict();
    sim.overwrite(x, &files[1], random(2, 5000));
    assert_eq!(sim.verdicts.len(), 1);
    assert!(sim.verdicts[0].indicators.contains(&Indicator::RansomNote));
}

#[test]
fn fork_per_file_openssl_blames_the_script() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 8, "csv", |s| csv(s, 20_000));
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/bin/sh");
    let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        let c = s.spawn(script, "/usr/bin/openssl");
        s.read(c, f);
        let n = s.content(f).len();
        s.write_new(c, &format!("{f}.enc"), openssl_enc(i as u64, n));
        s.exit(c);
        let r = s.spawn(script, "/bin/rm");
        s.delete(r, f);
        s.exit(r);
    });
    assert_eq!(
        v.root, script,
        "the script, not a child nor the login shell"
    );
    assert!(v.indicators.contains(&Indicator::ReadWriteDelete));
    assert!(v.members.len() >= 5);
    assert!(v.members.contains(&script));
    assert!(!v.members.contains(&sh));
    assert!(sim.eng.is_convicted(script));
    assert!(!sim.eng.is_convicted(sh));
}

#[test]
fn fork_per_file_openssl_in_place_children() {
    // Each child reads, writes the .enc and deletes the original itself.
    let mut sim = Sim::new();
    let files = tree(&mut sim, 8, "txt", |s| text(s, 9000));
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/usr/bin/python3");
    let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        let c = s.spawn(script, "/usr/bin/openssl");
        s.read(c, f);
        s.write_new(c, &format!("{f}.bin"), openssl_enc(i as u64, 9000));
        s.delete(c, f);
        s.exit(c);
    });
    assert_eq!(v.root, script);
}

#[test]
fn rename_first_then_overwrite() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "docx", docx);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        let to = format!("{f}.locked");
        s.rename(x, f, &to);
        let n = s.content(&to).len();
        s.overwrite(x, &to, random(i as u64, n));
    });
    assert_eq!(v.root, x);
    assert!(v.indicators.contains(&Indicator::ExtensionAppended));
    assert!(v.indicators.contains(&Indicator::ContentEncrypted));
}

#[test]
fn intermittent_first_4k_only() {
    for (ext, gen) in [
        ("txt", (|s| text(s, 50_000)) as Gen),
        ("csv", |s| csv(s, 40_000)),
        ("docx", docx),
        ("dcm", dicom),
        ("sqlite", |s| sqlite_text(s, 12)),
        ("pdf", pdf),
    ] {
        let mut sim = Sim::new();
        let files = tree(&mut sim, 6, ext, gen);
        let sh = sim.login_shell();
        let x = sim.spawn(sh, "/tmp/x");
        let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
            let mut d = s.content(f);
            d[..4096].copy_from_slice(&random(i as u64, 4096));
            s.overwrite(x, f, d);
        });
        assert_eq!(v.root, x, "{ext}");
    }
}

#[test]
fn intermittent_middle_blocks_of_text() {
    // Head intact, every other 4 KiB block encrypted further in (text keeps its format).
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "txt", |s| text(s, 100_000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        let mut d = s.content(f);
        for off in (8192..d.len()).step_by(4096) {
            let end = (off + 4096).min(d.len());
            d[off..end].copy_from_slice(&random(i as u64 * 1000 + off as u64, end - off));
        }
        s.overwrite(x, f, d);
    });
    assert!(v.indicators.contains(&Indicator::PartialEncryption));
}

#[test]
fn header_preserving() {
    for keep in [16usize, 100, 512] {
        for (ext, gen) in [
            ("txt", (|s| text(s, 30_000)) as Gen),
            ("csv", |s| csv(s, 30_000)),
            ("dcm", dicom),
            ("sqlite", |s| sqlite_text(s, 10)),
            ("pdf", pdf),
        ] {
            let mut sim = Sim::new();
            let files = tree(&mut sim, 6, ext, gen);
            let sh = sim.login_shell();
            let x = sim.spawn(sh, "/tmp/x");
            let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
                let mut d = s.content(f);
                let n = d.len();
                d[keep..].copy_from_slice(&random(i as u64, n - keep));
                s.overwrite(x, f, d);
            });
            assert_eq!(v.root, x, "{ext} keep {keep}");
        }
    }
    // zip: only detectable while the kept header does not cover the central entries.
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "docx", docx);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        let mut d = s.content(f);
        let n = d.len();
        d[64..].copy_from_slice(&random(i as u64, n - 64));
        s.overwrite(x, f, d);
    });
}

#[test]
fn base64_armoured_ciphertext() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "txt", |s| text(s, 20_000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        s.overwrite(x, f, base64(&random(i as u64, 15_000)));
    });
    assert!(v.indicators.contains(&Indicator::ArmouredCiphertext));
}

#[test]
fn hex_armoured_ciphertext_write_new_delete() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "csv", |s| csv(s, 20_000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        s.read(x, f);
        let hex: Vec<u8> = random(i as u64, 10_000)
            .iter()
            .flat_map(|b| format!("{b:02x}").into_bytes())
            .collect();
        s.write_new(x, &format!("{f}.hex"), hex);
        s.delete(x, f);
    });
}

#[test]
fn multi_threaded_interleaved() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 9, "pdf", pdf);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    // Three "threads" of the same process open three files each, interleaved.
    for chunk in files.chunks(3) {
        for f in chunk {
            sim.open_write(x, f);
        }
        for (i, f) in chunk.iter().enumerate() {
            let n = sim.content(f).len();
            sim.close_write(x, f, random(i as u64 + 9, n));
        }
        if !sim.verdicts.is_empty() {
            break;
        }
    }
    assert_eq!(sim.verdicts.len(), 1);
    assert_eq!(sim.verdicts[0].files_damaged.len(), 3);
    // Re-opening a file being written keeps the original baseline.
    let mut sim = Sim::new();
    let files = tree(&mut sim, 4, "txt", |s| text(s, 9000));
    let x = sim.spawn(sim.init, "/tmp/y");
    for f in &files[..3] {
        sim.open_write(x, f);
        let n = sim.content(f).len();
        sim.fs.get_mut(f.as_str()).unwrap().1 = random(3, n);
        sim.open_write(x, f); // sample is now random, baseline must stay text
        sim.close_write(x, f, random(4, n));
    }
    assert_eq!(sim.verdicts.len(), 1);
}

#[test]
fn slow_attack_one_file_every_5s() {
    let mut sim = Sim::new();
    sim.step = 5 * SEC;
    let files = tree(&mut sim, 6, "txt", |s| text(s, 20_000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        s.read(x, f);
        s.write_new(x, &format!("{f}.crypt"), random(i as u64, 20_000));
        s.delete(x, f);
    });
}

#[test]
fn gpg_outputs_with_separate_rm() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "dcm", dicom);
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/bin/bash");
    let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        let g = s.spawn(script, "/usr/bin/gpg");
        s.read(g, f);
        s.write_new(g, &format!("{f}.gpg"), gpg_msg(i as u64, 30_000));
        s.exit(g);
        let r = s.spawn(script, "/bin/rm");
        s.delete(r, f);
        s.exit(r);
    });
    assert_eq!(v.root, script);
    assert!(v.indicators.contains(&Indicator::ReadWriteDelete));
}

#[test]
fn delete_before_write_order() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "txt", |s| text(s, 20_000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        s.read(x, f);
        s.delete(x, f);
        s.write_new(x, &format!("/tmp/out{i}"), random(i as u64, 20_000));
    });
}

#[test]
fn encrypted_temp_renamed_over_original() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "txt", |s| text(s, 20_000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
        s.read(x, f);
        let tmp = format!("{f}.tmp");
        s.write_new(x, &tmp, random(i as u64, 20_000));
        s.rename(x, &tmp, f);
    });
}

#[test]
fn decoy_encrypted_is_immediate() {
    let mut cfg = Config::default();
    cfg.decoys.push("/srv/share/dept0/~$decoy.docx".into());
    let mut sim = Sim::with(cfg);
    sim.put("/srv/share/dept0/~$decoy.docx", docx(1));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    sim.overwrite(x, "/srv/share/dept0/~$decoy.docx", random(1, 40_000));
    assert_eq!(sim.verdicts.len(), 1);
    let v = &sim.verdicts[0];
    assert_eq!(v.root, x);
    assert!(v.indicators.contains(&Indicator::DecoyTouched));
    assert_eq!(
        v.files_damaged,
        vec!["/srv/share/dept0/~$decoy.docx".to_string()]
    );
}

#[test]
fn decoy_renamed_to_unknown_extension() {
    let mut cfg = Config::default();
    cfg.decoys.push("/srv/a/decoy.xlsx".into());
    let mut sim = Sim::with(cfg);
    sim.put("/srv/a/decoy.xlsx", docx(1));
    let x = sim.spawn(sim.sshd, "/tmp/x");
    sim.rename(x, "/srv/a/decoy.xlsx", "/srv/a/decoy.xlsx.locky");
    assert_eq!(sim.verdicts.len(), 1);
}

#[test]
fn decoy_hit_by_fork_per_file_child_blames_script() {
    let mut cfg = Config::default();
    cfg.decoys.push("/srv/share/dept1/file1.txt".into());
    let mut sim = Sim::with(cfg);
    let files = tree(&mut sim, 4, "txt", |s| text(s, 9000));
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/bin/sh");
    for (i, f) in files.iter().enumerate() {
        let c = sim.spawn(script, "/usr/bin/openssl");
        sim.read(c, f);
        sim.write_new(c, &format!("{f}.enc"), openssl_enc(i as u64, 9000));
        sim.exit(c);
        if f.ends_with("file1.txt") {
            break;
        }
    }
    // The decoy was only read (copied into an encrypted file): weak indicator only.
    sim.assert_no_verdict();
    let c = sim.spawn(script, "/usr/bin/openssl");
    sim.overwrite(c, "/srv/share/dept1/file1.txt", openssl_enc(9, 9000));
    assert_eq!(sim.verdicts.len(), 1);
    assert_eq!(sim.verdicts[0].root, script);
}

#[test]
fn verdict_details_and_after_verdict() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 8, "txt", |s| text(s, 9000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    let kid = sim.spawn(x, "/tmp/x-worker");
    sim.write_new(x, "/srv/share/dept0/HOW_TO_DECRYPT.txt", b"...".to_vec());
    for (i, f) in files.iter().enumerate().take(3) {
        sim.overwrite(kid, f, random(i as u64, 9000));
    }
    assert_eq!(sim.verdicts.len(), 1);
    let v = sim.verdicts[0].clone();
    assert_eq!(v.root, kid, "deepest crossing node");
    assert_eq!(v.culprit, kid);
    assert_eq!(v.members, vec![kid]);
    assert_eq!(v.files_damaged, files[..3].to_vec());
    assert!(v.first_damage <= v.time);
    let mut sorted = v.indicators.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, v.indicators);
    assert!(v.score >= 30);
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.contains("content-encrypted"));
    assert_eq!(Indicator::ReadWriteDelete.as_str(), "read-write-delete");
    // No second verdict for the root, its ancestors (same evidence) or descendants.
    for (i, f) in files.iter().enumerate().skip(3).take(2) {
        sim.overwrite(kid, f, random(i as u64, 9000));
    }
    let g = sim.spawn(kid, "/tmp/grandchild");
    sim.overwrite(g, &files[5], random(5, 9000));
    assert_eq!(sim.verdicts.len(), 1);
    assert!(sim.eng.is_convicted(g));
    assert!(!sim.eng.is_convicted(x));
    assert_eq!(sim.eng.damaged_since_verdict(kid).len(), 3);
    // x's own fresh damage can still convict x later (new evidence), with kid's subtracted.
    sim.overwrite(x, &files[6], random(6, 9000));
    sim.overwrite(x, &files[7], random(7, 9000));
    assert_eq!(
        sim.verdicts.len(),
        1,
        "x has only 2 damaged files of its own"
    );
    assert_eq!(sim.eng.lineage(g), vec![g, kid, x, sh]);
}

#[test]
fn unknown_parentage_is_own_root() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 4, "txt", |s| text(s, 9000));
    let ghost = ProcId {
        pid: 4242,
        start: 7,
    };
    for (i, f) in files.iter().enumerate().take(3) {
        sim.overwrite(ghost, f, random(i as u64, 9000));
    }
    assert_eq!(sim.verdicts.len(), 1);
    assert_eq!(sim.verdicts[0].root, ghost);
}

#[test]
fn boundary_process_is_never_blamed() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 4, "txt", |s| text(s, 9000));
    let sshd = sim.sshd;
    for (i, f) in files.iter().enumerate().take(3) {
        sim.overwrite(sshd, f, random(i as u64, 9000));
    }
    sim.assert_no_verdict();
    // Two sessions under sshd do not add up.
    let a = sim.login_shell();
    let b = sim.login_shell();
    sim.overwrite(a, &files[3], random(7, 9000));
    let mut sim2 = Sim::new();
    let files = tree(&mut sim2, 4, "txt", |s| text(s, 9000));
    let a = sim2.login_shell();
    let b2 = sim2.login_shell();
    sim2.overwrite(a, &files[0], random(1, 9000));
    sim2.overwrite(a, &files[1], random(2, 9000));
    sim2.overwrite(b2, &files[2], random(3, 9000));
    sim2.assert_no_verdict();
    let _ = b;
}

#[test]
fn evidence_window() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 4, "txt", |s| text(s, 9000));
    let x = sim.spawn(sim.sshd, "/tmp/x");
    sim.step = 40 * 60 * SEC;
    for (i, f) in files.iter().enumerate().take(3) {
        sim.overwrite(x, f, random(i as u64, 9000));
    }
    sim.assert_no_verdict();
}

#[test]
fn gpg_per_file_with_keyring_housekeeping() {
    // `gpg --symmetric -o FILE.gpg FILE` per file (a fresh gpg each time, children of the
    // script), then `rm FILE`. Each gpg also reads its keyring and trust db, takes lock
    // files, and reads then rewrites a random `random_seed`: none of that may dilute the
    // pairing of its encrypted output with the deleted original.
    for keyring in [32usize, 3000] {
        let mut sim = Sim::new();
        let files = tree(&mut sim, 8, "xlsx", docx);
        let sh = sim.login_shell();
        let script = sim.spawn(sh, "/tmp/enc.sh");
        let home = "/srv/share/.gnupg-sim";
        sim.put(&format!("{home}/trustdb.gpg"), text(77, 1200));
        let mut seed_n = 0u64;
        let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
            let g = s.spawn(script, "/usr/bin/gpg");
            let kbx = format!("{home}/pubring.kbx");
            if i == 0 {
                s.write_new(g, &kbx, text(5, keyring));
                s.write_new(g, &format!("{home}/random_seed"), random(99, 600));
            }
            let lock = format!("{home}/.#lk0x{i}.vm.{}", g.pid);
            s.write_new(g, &lock, b"     1234\nvm\n".to_vec());
            s.read(g, &lock);
            s.read(g, &kbx);
            s.read(g, &format!("{home}/trustdb.gpg"));
            s.read(g, f);
            s.read(g, &format!("{home}/random_seed"));
            let n = s.content(f).len();
            s.write_new(g, &format!("{f}.gpg"), gpg_msg(i as u64, n));
            seed_n += 1;
            s.overwrite(g, &format!("{home}/random_seed"), random(100 + seed_n, 600));
            s.delete(g, &lock);
            s.exit(g);
            let rm = s.spawn(script, "/usr/bin/rm");
            s.delete(rm, f);
            s.exit(rm);
        });
        assert_eq!(v.root, script, "keyring {keyring}");
        assert!(v.indicators.contains(&Indicator::ReadWriteDelete));
    }
}

/// Emit a close-after-write of `path` (new content `data`) *after* its delete, as the
/// sensor reports `open; unlink; write; close`.
fn close_after_delete(sim: &mut Sim, p: ProcId, path: &str, data: Vec<u8>) -> Option<Verdict> {
    let k = sim.key(path);
    let v = sim.delete(p, path);
    let w = sim.emit(
        p,
        Op::CloseWrite {
            file: k,
            path: path.to_string(),
            sample: sample_of(&data),
        },
    );
    v.or(w)
}

#[test]
fn archive_encrypt_then_zero_wipe() {
    for late_close in [false, true] {
        let mut sim = Sim::new();
        let mut files = Vec::new();
        for (ext, gen) in formats() {
            files.extend(tree(&mut sim, 2, ext, gen));
        }
        let sh = sim.login_shell();
        let x = sim.spawn(sh, "/tmp/x");
        let tar_p = sim.spawn(x, "/usr/bin/tar");
        sim.create(tar_p, "/srv/share/archive.tar");
        let mut entries = Vec::new();
        for f in &files {
            sim.read(tar_p, f);
            entries.push((f.as_str(), sim.content(f)));
        }
        let archive = tar(&entries[..3]);
        sim.close_write(tar_p, "/srv/share/archive.tar", archive.clone());
        sim.exit(tar_p);
        sim.read(x, "/srv/share/archive.tar");
        sim.write_new(x, "/srv/share/archive.dat", random(1, archive.len()));
        sim.delete(x, "/srv/share/archive.tar");
        let v = expect_verdict_by_3rd(&mut sim, &files, |s, _, f| {
            let n = s.content(f).len();
            s.open_write(x, f);
            if late_close {
                close_after_delete(s, x, f, vec![0; n]);
            } else {
                s.close_write(x, f, vec![0; n]);
                s.delete(x, f);
            }
        });
        assert_eq!(v.root, x, "late close {late_close}");
        assert!(v.indicators.contains(&Indicator::ContentWiped));
    }
}

#[test]
fn zero_wipe_before_the_encrypted_archive() {
    // The victims are read into memory and wiped first; the encrypted archive comes last.
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "csv", |s| csv(s, 9000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/x");
    for f in &files {
        sim.read(x, f);
    }
    for f in &files {
        let n = sim.content(f).len();
        sim.overwrite(x, f, vec![0xff; n]);
    }
    sim.assert_no_verdict();
    let v = sim.write_new(x, "/srv/share/all.bin", random(3, 60_000));
    let v = v.expect("verdict on the encrypted output");
    assert_eq!(v.root, x);
    assert!(v.damage_count >= 3);
    assert!(v.indicators.contains(&Indicator::ContentWiped));
}

#[test]
fn header_preserving_1k_databases_and_dicom() {
    // The first min(1 KiB, half) bytes kept (magic, DICOM meta group, SQLite header and
    // b-tree header survive), the rest encrypted in place.
    for (ext, gen) in [
        ("dcm", dicom as Gen),
        ("sqlite", |s| sqlite_text(s, 10)),
        ("sqlite", |s| sqlite_text(s, 1)),
    ] {
        let mut sim = Sim::new();
        let files = tree(&mut sim, 6, ext, gen);
        let sh = sim.login_shell();
        let x = sim.spawn(sh, "/tmp/x");
        let v = expect_verdict_by_3rd(&mut sim, &files, |s, i, f| {
            let mut d = s.content(f);
            let n = d.len();
            let keep = 1024.min(n / 2);
            d[keep..].copy_from_slice(&random(i as u64, n - keep));
            s.overwrite(x, f, d);
        });
        assert_eq!(v.root, x, "{ext}");
        if ext == "sqlite" {
            assert!(v.indicators.contains(&Indicator::PartialEncryption));
        }
    }
}
