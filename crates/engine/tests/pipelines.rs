//! Multi-process pipelines (issue 10): reads, encryption and deletes split across
//! siblings and children of one lineage; and their benign twins.
mod common;
use common::*;
use ward_engine::*;

fn departments(sim: &mut Sim, depts: usize, per: usize) -> Vec<Vec<String>> {
    (0..depts)
        .map(|d| {
            (0..per)
                .map(|i| {
                    let p = format!(
                        "/srv/share/dept{d}/doc{i}.{}",
                        ["txt", "docx", "csv"][i % 3]
                    );
                    let data = match i % 3 {
                        0 => text((d * 100 + i) as u64, 7000),
                        1 => docx((d * 100 + i) as u64),
                        _ => csv((d * 100 + i) as u64, 5000),
                    };
                    sim.put(&p, data);
                    p
                })
                .collect()
        })
        .collect()
}

#[test]
fn per_file_pipeline_cat_openssl_rm_convicts_the_script() {
    let mut sim = Sim::new();
    let files: Vec<String> = departments(&mut sim, 2, 6).concat();
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/bin/bash");
    for (i, f) in files.iter().enumerate() {
        let cat = sim.spawn(script, "/bin/cat");
        let enc = sim.spawn(script, "/usr/bin/openssl");
        let rm = sim.spawn(script, "/bin/rm");
        sim.read(cat, f);
        let n = sim.content(f).len();
        sim.write_new(enc, &format!("{f}.enc"), openssl_enc(i as u64, n));
        sim.delete(rm, f);
        for p in [cat, enc, rm] {
            sim.exit(p);
        }
        if !sim.verdicts.is_empty() {
            assert!(i < 3, "verdict after {} files", i + 1);
            break;
        }
    }
    assert_eq!(sim.verdicts.len(), 1);
    assert_eq!(sim.verdicts[0].root, script);
    assert!(sim.verdicts[0]
        .indicators
        .contains(&Indicator::ReadWriteDelete));
}

#[test]
fn department_containers_written_by_a_sibling_then_deleted_by_a_third() {
    let mut sim = Sim::new();
    let depts = departments(&mut sim, 4, 5);
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/bin/sh");
    let mut done = 0;
    for (d, files) in depts.iter().enumerate() {
        let reader = sim.spawn(script, "/bin/tar");
        let enc = sim.spawn(script, "/usr/bin/gpg");
        let rm = sim.spawn(script, "/bin/rm");
        for f in files {
            sim.read(reader, f);
        }
        sim.write_new(
            enc,
            &format!("/srv/share/dept{d}.tar.gpg"),
            gpg_msg(d as u64, 30_000),
        );
        for f in files {
            sim.delete(rm, f);
            done += 1;
            if !sim.verdicts.is_empty() {
                break;
            }
        }
        if !sim.verdicts.is_empty() {
            break;
        }
    }
    assert_eq!(sim.verdicts.len(), 1, "no verdict");
    assert_eq!(sim.verdicts[0].root, script);
    // The first department is lost to the pattern, the second one shows it.
    assert!(done <= 5 + 3, "{done} files deleted before the verdict");
}

#[test]
fn xargs_parallel_workers_convict_xargs() {
    let mut sim = Sim::new();
    let files: Vec<String> = departments(&mut sim, 3, 6).concat();
    let sh = sim.login_shell();
    let xargs = sim.spawn(sh, "/usr/bin/xargs");
    let workers: Vec<ProcId> = (0..4).map(|_| sim.spawn(xargs, "/bin/sh")).collect();
    for (i, f) in files.iter().enumerate() {
        let w = workers[i % 4];
        let enc = sim.spawn(w, "/usr/bin/openssl");
        sim.read(enc, f);
        let n = sim.content(f).len();
        sim.write_new(enc, &format!("{f}.locked"), random(i as u64, n + 32));
        sim.exit(enc);
        let rm = sim.spawn(w, "/bin/rm");
        sim.delete(rm, f);
        sim.exit(rm);
        if !sim.verdicts.is_empty() {
            break;
        }
    }
    assert_eq!(sim.verdicts.len(), 1);
    let root = sim.verdicts[0].root;
    assert!(root == xargs || workers.contains(&root), "{root:?}");
    assert!(sim.eng.is_convicted(workers[0]) || root != xargs);
}

#[test]
fn tar_czf_then_rm_rf_per_department_is_quiet() {
    let mut sim = Sim::new();
    let depts = departments(&mut sim, 4, 6);
    let sh = sim.login_shell();
    for (d, files) in depts.iter().enumerate() {
        let tar = sim.spawn(sh, "/bin/tar");
        let gz = sim.spawn(tar, "/bin/gzip");
        let mut all = Vec::new();
        for f in files {
            sim.read(tar, f);
            all.extend_from_slice(&sim.content(f));
        }
        sim.write_new(gz, &format!("/srv/archive/dept{d}.tar.gz"), gzip(&all));
        let rm = sim.spawn(sh, "/bin/rm");
        for f in files {
            sim.delete(rm, f);
        }
    }
    sim.assert_no_verdict();
}

#[test]
fn rsync_remove_source_files_is_quiet() {
    let mut sim = Sim::new();
    let files: Vec<String> = departments(&mut sim, 3, 6).concat();
    let sh = sim.login_shell();
    let rsync = sim.spawn(sh, "/usr/bin/rsync");
    let recv = sim.spawn(rsync, "/usr/bin/rsync");
    for f in &files {
        sim.read(rsync, f);
        let d = sim.content(f);
        let to = f.replace("/srv/share/", "/mnt/backup/");
        sim.write_new(recv, &to, d);
        sim.delete(rsync, f);
    }
    sim.assert_no_verdict();
}

#[test]
fn one_encrypted_backup_then_cleanup_is_quiet() {
    let mut sim = Sim::new();
    let depts = departments(&mut sim, 2, 8);
    let sh = sim.login_shell();
    let tar = sim.spawn(sh, "/bin/tar");
    let gpg = sim.spawn(sh, "/usr/bin/gpg");
    for f in depts.concat() {
        sim.read(tar, &f);
    }
    sim.write_new(gpg, "/srv/backup/share.tar.gpg", gpg_msg(1, 200_000));
    let rm = sim.spawn(sh, "/bin/rm");
    for f in &depts[0] {
        sim.delete(rm, f);
    }
    sim.assert_no_verdict();
}

#[test]
fn the_deleting_sibling_of_an_encryptor_is_suspicious() {
    let mut sim = Sim::new();
    let files: Vec<String> = departments(&mut sim, 1, 3).concat();
    let sh = sim.login_shell();
    let script = sim.spawn(sh, "/bin/sh");
    let enc = sim.spawn(script, "/usr/bin/openssl");
    let rm = sim.spawn(script, "/bin/rm");
    assert!(!sim.eng.suspicious(rm));
    sim.write_new(enc, "/srv/share/x.enc", openssl_enc(1, 5000));
    assert!(
        sim.eng.suspicious(rm),
        "a member of the script wrote ciphertext"
    );
    let other = sim.login_shell();
    let cat = sim.spawn(other, "/bin/cat");
    sim.read(cat, &files[0]);
    assert!(!sim.eng.suspicious(cat));
}
