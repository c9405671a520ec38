//! Benign look-alikes that must never give a verdict.
mod common;
use common::*;
use ward_engine::sniff::crc32;
use ward_engine::*;

/// A mixed tree of user files (30 files in 3 directories), some of them decoys.
fn user_tree(sim: &mut Sim) -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..30u64 {
        let dir = format!("/srv/share/d{}", i % 3);
        let (name, data) = match i % 6 {
            0 => (format!("notes{i}.txt"), text(i, 6000 + 500 * i as usize)),
            1 => (format!("rota{i}.csv"), csv(i, 20_000)),
            2 => (format!("letter{i}.docx"), docx(i)),
            3 => (format!("scan{i}.dcm"), dicom(i)),
            4 => (format!("photo{i}.png"), png(i, 120, 90)),
            _ => (format!("report{i}.pdf"), pdf(i)),
        };
        let p = format!("{dir}/{name}");
        sim.put(&p, data);
        v.push(p);
    }
    v
}

fn sim_with_decoys() -> (Sim, Vec<String>) {
    let cfg = Config {
        decoys: vec![
            "/srv/share/d0/notes0.txt".into(),
            "/srv/share/d1/rota1.csv".into(),
        ],
        ..Config::default()
    };
    let mut sim = Sim::with(cfg);
    let files = user_tree(&mut sim);
    (sim, files)
}

#[test]
fn gzip_r_then_gunzip_r() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let g = sim.spawn(sh, "/usr/bin/gzip");
    for f in &files {
        sim.read(g, f);
        let gz = gzip(&sim.content(f));
        sim.write_new(g, &format!("{f}.gz"), gz);
        sim.delete(g, f);
    }
    sim.exit(g);
    let g = sim.spawn(sh, "/usr/bin/gunzip");
    for f in &files {
        let gzp = format!("{f}.gz");
        sim.read(g, &gzp);
        sim.write_new(g, f, text(1, 100)); // content irrelevant here: valid text
        sim.delete(g, &gzp);
    }
    sim.assert_no_verdict();
}

/// A zstd frame whose one compressed block holds random-looking entropy-coded data (the
/// frame and block headers are structurally valid, as a real compressor writes them).
fn zstd_frame(payload_seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00];
    let n = n.min(128 * 1024);
    let bh = 1u32 | 2 << 1 | (n as u32) << 3;
    v.extend_from_slice(&bh.to_le_bytes()[..3]);
    v.extend_from_slice(&random(payload_seed, n));
    v
}

/// An xz stream: stream header, an LZMA2 block header with its CRC-32, an LZMA chunk.
fn xz_stream(payload_seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4];
    v.extend_from_slice(&crc32(&[0, 4]).to_le_bytes());
    let hdr = [0x02u8, 0x00, 0x21, 0x01, 0x16, 0, 0, 0];
    v.extend_from_slice(&hdr);
    v.extend_from_slice(&crc32(&hdr).to_le_bytes());
    v.push(0xe0);
    v.extend_from_slice(&random(payload_seed, n));
    v
}

#[test]
fn zstd_and_xz_with_removal() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    for (i, f) in files.iter().enumerate() {
        // One compressor process per file, as `find -exec zstd --rm` does.
        let c = sim.spawn(
            sh,
            if i % 2 == 0 {
                "/usr/bin/zstd"
            } else {
                "/usr/bin/xz"
            },
        );
        sim.read(c, f);
        let n = sim.content(f).len() / 3;
        let out = if i % 2 == 0 {
            (format!("{f}.zst"), zstd_frame(i as u64, n))
        } else {
            (format!("{f}.xz"), xz_stream(i as u64, n))
        };
        sim.write_new(c, &out.0, out.1);
        sim.delete(c, f);
        sim.exit(c);
    }
    sim.assert_no_verdict();
}

#[test]
fn tar_czf_of_the_tree() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let t = sim.spawn(sh, "/bin/tar");
    let z = sim.spawn(t, "/bin/gzip");
    let mut all = Vec::new();
    for f in &files {
        sim.read(t, f);
        all.extend_from_slice(&sim.content(f));
    }
    sim.write_new(z, "/backup/share.tar.gz", gzip(&all));
    // And an uncompressed tar too.
    let t2 = sim.spawn(sh, "/bin/tar");
    for f in &files {
        sim.read(t2, f);
    }
    let entries: Vec<(&str, Vec<u8>)> = files[..5]
        .iter()
        .map(|f| (&f[1..], sim.content(f)))
        .collect();
    sim.write_new(t2, "/backup/share.tar", tar(&entries));
    sim.assert_no_verdict();
}

#[test]
fn cp_a_and_rsync() {
    let (mut sim, _files) = sim_with_decoys();
    // Some already-random files in the tree (encrypted archives, unknown binaries).
    for i in 0..5 {
        let p = format!("/srv/share/d{}/blob{i}.bin", i % 3);
        sim.put(&p, random(i, 30_000));
    }
    let all = sim.paths_under("/srv/share/");
    let sh = sim.login_shell();
    let cp = sim.spawn(sh, "/bin/cp");
    for f in &all {
        sim.read(cp, f);
        let d = sim.content(f);
        sim.write_new(cp, &f.replace("/srv/share/", "/mnt/copy/"), d);
    }
    sim.exit(cp);
    // rsync updating the copy: temp file then rename over (delta transfer reads the basis).
    let rs = sim.spawn(sh, "/usr/bin/rsync");
    for (i, f) in all.iter().enumerate() {
        let dst = f.replace("/srv/share/", "/mnt/copy/");
        sim.read(rs, f);
        sim.read(rs, &dst);
        let (dir, name) = dst.rsplit_once('/').unwrap();
        let tmp = format!("{dir}/.{name}.Xy{i}Zq");
        let d = sim.content(f);
        sim.write_new(rs, &tmp, d);
        sim.rename(rs, &tmp, &dst);
    }
    // rsync --remove-source-files / mv across filesystems: read, copy, delete the source.
    let mv = sim.spawn(sh, "/bin/mv");
    for f in &all {
        sim.read(mv, f);
        let d = sim.content(f);
        sim.write_new(mv, &f.replace("/srv/share/", "/mnt/moved/"), d);
        sim.delete(mv, f);
    }
    sim.assert_no_verdict();
}

#[test]
fn git_init_commit_gc() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let src: Vec<String> = (0..40)
        .map(|i| format!("/home/u/proj/src/m{i}.rs"))
        .collect();
    for (i, p) in src.iter().enumerate() {
        sim.put(p, text(i as u64, 3000));
    }
    let git = sim.spawn(sh, "/usr/bin/git");
    let mut objs = Vec::new();
    for (i, p) in src.iter().enumerate() {
        sim.read(git, p);
        let o = format!("/home/u/proj/.git/objects/{:02x}/{:038x}", i, i * 7919);
        let blob = zlib(&sim.content(p));
        sim.write_new(git, &o, blob);
        objs.push(o);
    }
    sim.exit(git);
    let gc = sim.spawn(sh, "/usr/bin/git");
    let po = sim.spawn(gc, "/usr/lib/git-core/git-pack-objects");
    for o in &objs {
        sim.read(po, o);
    }
    let mut pack = b"PACK\0\0\0\x02\0\0\0\x28".to_vec();
    pack.extend_from_slice(&random(5, 60_000));
    sim.write_new(po, "/home/u/proj/.git/objects/pack/tmp_pack_a", pack);
    sim.rename(
        po,
        "/home/u/proj/.git/objects/pack/tmp_pack_a",
        "/home/u/proj/.git/objects/pack/pack-1.pack",
    );
    let mut idx = b"\xfftOc\0\0\0\x02".to_vec();
    idx.extend_from_slice(&random(6, 3000));
    sim.write_new(po, "/home/u/proj/.git/objects/pack/pack-1.idx", idx);
    sim.exit(po);
    let prune = sim.spawn(gc, "/usr/lib/git-core/git-prune-packed");
    for o in &objs {
        sim.delete(prune, o);
    }
    sim.assert_no_verdict();
}

#[test]
fn sqlite_bulk_inserts() {
    let mut sim = Sim::new();
    sim.put("/var/lib/app/app.db", sqlite_text(1, 4));
    sim.put("/var/lib/app/other.db", sqlite_text(2, 4));
    sim.put("/var/lib/app/third.db", sqlite_text(3, 4));
    let svc = sim.spawn(sim.init, "/usr/bin/app-server");
    for round in 0..20usize {
        for db in [
            "/var/lib/app/app.db",
            "/var/lib/app/other.db",
            "/var/lib/app/third.db",
        ] {
            let journal = format!("{db}-journal");
            sim.write_new(svc, &journal, sim.content(db)[..4096].to_vec());
            sim.open_write(svc, db);
            let pages = 4 + round * 2;
            let new = sqlite(pages, |pg| {
                if pg > 4 {
                    random(pg as u64 + round as u64 * 100, 4000)
                } else {
                    csv(pg as u64, 4000)
                }
            });
            sim.close_write(svc, db, new);
            sim.delete(svc, &journal);
        }
    }
    sim.assert_no_verdict();
}

#[test]
fn many_new_random_files() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    for i in 0..200u64 {
        let dd = sim.spawn(sh, "/bin/dd");
        sim.write_new(dd, &format!("/data/test/r{i}.bin"), random(i, 10_000));
        sim.exit(dd);
    }
    // And a single process making temp random files then deleting them (test suites).
    let t = sim.spawn(sh, "/usr/bin/cargo");
    for i in 0..100u64 {
        let p = format!("/tmp/t{i}");
        sim.write_new(t, &p, random(i + 1000, 5000));
        sim.read(t, &p);
        sim.delete(t, &p);
    }
    sim.assert_no_verdict();
}

#[test]
fn editor_saves() {
    let mut sim = Sim::new();
    let docs: Vec<String> = (0..10).map(|i| format!("/home/u/doc{i}.txt")).collect();
    for (i, d) in docs.iter().enumerate() {
        sim.put(d, text(i as u64, 4000));
    }
    let sh = sim.login_shell();
    let vim = sim.spawn(sh, "/usr/bin/vim");
    for (i, d) in docs.iter().enumerate() {
        sim.read(vim, d);
        // backup copy by rename, write new, remove backup
        sim.rename(vim, d, &format!("{d}~"));
        sim.write_new(vim, d, text(i as u64 + 50, 4100));
        sim.delete(vim, &format!("{d}~"));
    }
    let gedit = sim.spawn(sh, "/usr/bin/gedit");
    for (i, d) in docs.iter().enumerate() {
        sim.read(gedit, d);
        let tmp = format!("/home/u/.goutputstream-{i}");
        sim.write_new(gedit, &tmp, text(i as u64 + 99, 4200));
        sim.rename(gedit, &tmp, d);
    }
    // sed -i on all of them
    let sed = sim.spawn(sh, "/bin/sed");
    for (i, d) in docs.iter().enumerate() {
        sim.read(sed, d);
        let tmp = format!("/home/u/sed{i}XYZ");
        sim.write_new(sed, &tmp, text(i as u64 + 7, 4200));
        sim.rename(sed, &tmp, d);
    }
    sim.assert_no_verdict();
}

#[test]
fn log_rotation() {
    let mut sim = Sim::new();
    let logs: Vec<String> = (0..8).map(|i| format!("/var/log/app{i}.log")).collect();
    for (i, l) in logs.iter().enumerate() {
        sim.put(l, text(i as u64, 30_000));
        sim.put(&format!("{l}.1"), text(i as u64 + 100, 30_000));
    }
    let cron = sim.spawn_full(Some(sim.init), "/usr/sbin/cron", true);
    let lr = sim.spawn(cron, "/usr/sbin/logrotate");
    for l in &logs {
        let l1 = format!("{l}.1");
        let l2 = format!("{l}.2.gz");
        let g = sim.spawn(lr, "/bin/gzip");
        sim.read(g, &l1);
        let gz = gzip(&sim.content(&l1));
        sim.write_new(g, &l2, gz);
        sim.delete(g, &l1);
        sim.exit(g);
        sim.rename(lr, l, &l1);
        sim.create(lr, l);
    }
    sim.assert_no_verdict();
}

#[test]
fn mass_deletion() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let grep = sim.spawn(sh, "/bin/grep");
    for f in &files {
        sim.read(grep, f);
    }
    let rm = sim.spawn(sh, "/bin/rm");
    for f in &files {
        sim.delete(rm, f);
    }
    sim.assert_no_verdict();
}

#[test]
fn one_file_encrypted_by_a_person() {
    // openssl + rm of the original
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let o = sim.spawn(sh, "/usr/bin/openssl");
    sim.read(o, &files[2]);
    sim.write_new(o, &format!("{}.enc", files[2]), openssl_enc(1, 40_000));
    sim.exit(o);
    let rm = sim.spawn(sh, "/bin/rm");
    sim.delete(rm, &files[2]);
    sim.assert_no_verdict();
    // gpg deleting the original itself, with an unusual output name
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let g = sim.spawn(sh, "/usr/bin/gpg");
    sim.read(g, &files[3]);
    sim.write_new(g, &format!("{}.secret", files[3]), gpg_msg(2, 40_000));
    sim.delete(g, &files[3]);
    sim.assert_no_verdict();
    // in place with a tool that rewrites the file then renames it (ccrypt)
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let c = sim.spawn(sh, "/usr/bin/ccrypt");
    let n = sim.content(&files[4]).len();
    sim.overwrite(c, &files[4], random(3, n));
    sim.rename(c, &files[4], &format!("{}.cpt", files[4]));
    sim.assert_no_verdict();
}

#[test]
fn two_files_encrypted_with_standard_tools() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    for (i, f) in files[2..4].iter().enumerate() {
        let g = sim.spawn(sh, "/usr/bin/gpg");
        sim.read(g, f);
        sim.write_new(g, &format!("{f}.gpg"), gpg_msg(i as u64, 40_000));
        sim.delete(g, f);
        sim.exit(g);
    }
    sim.assert_no_verdict();
}

#[test]
fn gzip_r_then_one_gpg_in_same_shell() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let g = sim.spawn(sh, "/usr/bin/gzip");
    for f in &files[..20] {
        sim.read(g, f);
        let gz = gzip(&sim.content(f));
        sim.write_new(g, &format!("{f}.gz"), gz);
        sim.delete(g, f);
    }
    sim.exit(g);
    let p = sim.spawn(sh, "/usr/bin/gpg");
    sim.read(p, &files[25]);
    sim.write_new(p, &format!("{}.gpg", files[25]), gpg_msg(1, 9000));
    sim.delete(p, &files[25]);
    sim.assert_no_verdict();
}

#[test]
fn encrypted_backup_into_one_file() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let b = sim.spawn(sh, "/usr/bin/backup-tool");
    for f in &files {
        sim.read(b, f);
    }
    sim.write_new(b, "/backup/share.tar.gpg", gpg_msg(1, 2_000_000));
    sim.write_new(b, "/backup/share.bin", random(2, 2_000_000));
    // borg/restic-like: many encrypted segments, prune deletes old (encrypted) segments.
    let borg = sim.spawn(sh, "/usr/bin/borg");
    for i in 0..5 {
        sim.put(&format!("/backup/repo/data/{i}"), random(100 + i, 50_000));
    }
    for f in &files {
        sim.read(borg, f);
    }
    for i in 5..15 {
        sim.write_new(
            borg,
            &format!("/backup/repo/data/{i}"),
            random(200 + i, 50_000),
        );
    }
    for i in 0..5 {
        let p = format!("/backup/repo/data/{i}");
        sim.read(borg, &p);
        sim.delete(borg, &p);
    }
    sim.assert_no_verdict();
}

#[test]
fn dicom_and_png_reencoding() {
    let mut sim = Sim::new();
    let scans: Vec<String> = (0..10).map(|i| format!("/pacs/s{i}.dcm")).collect();
    let imgs: Vec<String> = (0..10).map(|i| format!("/pacs/i{i}.png")).collect();
    for (i, s) in scans.iter().enumerate() {
        sim.put(s, dicom(i as u64));
    }
    for (i, s) in imgs.iter().enumerate() {
        sim.put(s, png(i as u64, 100, 100));
    }
    let sh = sim.login_shell();
    let dc = sim.spawn(sh, "/usr/bin/dcmcjp2k");
    for (i, s) in scans.iter().enumerate() {
        // JPEG 2000 lossless: compressed pixel data (random-looking), valid meta.
        let new = dicom_with(i as u64, "1.2.840.10008.1.2.4.90", random(i as u64, 12_000));
        sim.overwrite(dc, s, new);
    }
    let op = sim.spawn(sh, "/usr/bin/optipng");
    for (i, s) in imgs.iter().enumerate() {
        sim.overwrite(op, s, png(i as u64 + 1000, 100, 100));
    }
    // Converting PNGs to JPEGs (new files) and deleting the PNGs.
    let cv = sim.spawn(sh, "/usr/bin/convert");
    for (i, s) in imgs.iter().enumerate() {
        sim.read(cv, s);
        let mut jpg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpg.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xda\0\x08");
        jpg.extend_from_slice(&random(i as u64, 20_000));
        sim.write_new(cv, &s.replace(".png", ".jpg"), jpg);
        sim.delete(cv, s);
    }
    sim.assert_no_verdict();
}

#[test]
fn package_manager_and_compiler() {
    let mut sim = Sim::new();
    let bins: Vec<String> = (0..20).map(|i| format!("/usr/lib/x/lib{i}.so")).collect();
    let elf = |seed: u64| {
        let mut v = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
        v.extend_from_slice(&text(seed, 20_000));
        v.extend_from_slice(&random(seed, 20_000));
        v
    };
    for (i, b) in bins.iter().enumerate() {
        sim.put(b, elf(i as u64));
    }
    let dpkg = sim.spawn(sim.init, "/usr/bin/dpkg");
    for (i, b) in bins.iter().enumerate() {
        let new = format!("{b}.dpkg-new");
        sim.write_new(dpkg, &new, elf(i as u64 + 100));
        sim.rename(dpkg, &new, b);
    }
    // Object files rebuilt in place.
    let objs: Vec<String> = (0..10).map(|i| format!("/home/u/p/o{i}.o")).collect();
    for (i, o) in objs.iter().enumerate() {
        sim.put(o, elf(i as u64 + 500));
    }
    let make = sim.spawn(sim.init, "/usr/bin/make");
    for (i, o) in objs.iter().enumerate() {
        let cc = sim.spawn(make, "/usr/bin/cc");
        sim.overwrite(cc, o, elf(i as u64 + 900));
        sim.exit(cc);
    }
    sim.assert_no_verdict();
}

#[test]
fn encrypted_backup_then_delete_originals() {
    let (mut sim, files) = sim_with_decoys();
    let sh = sim.login_shell();
    let borg = sim.spawn(sh, "/usr/bin/borg");
    for f in &files {
        sim.read(borg, f);
    }
    for i in 0..6 {
        sim.write_new(
            borg,
            &format!("/backup/repo/data/{i}"),
            random(300 + i, 50_000),
        );
    }
    sim.exit(borg);
    let rm = sim.spawn(sh, "/bin/rm");
    for f in &files {
        sim.delete(rm, f);
    }
    sim.assert_no_verdict();
}

#[test]
fn wipes_and_truncations_without_encrypted_output() {
    // `shred -z` (final pass zeros), `truncate`, `: > log`, preallocated files rewritten with
    // zeros: no encrypted output anywhere in the lineage, no verdict.
    let mut sim = Sim::new();
    let files: Vec<String> = (0..8).map(|i| format!("/home/u/old/f{i}.txt")).collect();
    for (i, f) in files.iter().enumerate() {
        sim.put(f, text(i as u64, 20_000));
    }
    let logs: Vec<String> = (0..8).map(|i| format!("/var/log/app{i}.log")).collect();
    for (i, f) in logs.iter().enumerate() {
        sim.put(f, text(100 + i as u64, 30_000));
    }
    let sh = sim.login_shell();
    for f in &files {
        let shred = sim.spawn(sh, "/usr/bin/shred");
        let n = sim.content(f).len();
        sim.overwrite(shred, f, vec![0; n]);
        sim.delete(shred, f);
        sim.exit(shred);
    }
    sim.assert_no_verdict();
    // Truncations to empty in a lineage that does write an encrypted file.
    let sh2 = sim.login_shell();
    let o = sim.spawn(sh2, "/usr/bin/openssl");
    sim.write_new(o, "/home/u/secret.enc", openssl_enc(1, 20_000));
    sim.exit(o);
    for f in &logs {
        let t = sim.spawn(sh2, "/usr/bin/truncate");
        sim.overwrite(t, f, Vec::new());
        sim.exit(t);
    }
    // One `shred -z` of the plain original after encrypting it: one file, not three.
    sim.put("/home/u/secret", text(9, 20_000));
    let o = sim.spawn(sh2, "/usr/bin/gpg");
    sim.read(o, "/home/u/secret");
    sim.write_new(o, "/home/u/secret.gpg", gpg_msg(1, 20_000));
    let shred = sim.spawn(sh2, "/usr/bin/shred");
    sim.overwrite(shred, "/home/u/secret", vec![0; 20_000]);
    sim.delete(shred, "/home/u/secret");
    // Zero-filled preallocated files (no data before) rewritten with zeros.
    for i in 0..5 {
        let p = format!("/var/lib/vm/disk{i}.img");
        sim.put(&p, vec![0; 100_000]);
        let q = sim.spawn(sh2, "/usr/bin/qemu-img");
        sim.overwrite(q, &p, vec![0; 100_000]);
    }
    sim.assert_no_verdict();
}

#[test]
fn copies_of_ciphertext_do_not_pay_for_deletes() {
    // A sync tool copies a tree with encrypted files and plain files, then removes the
    // sources (`rsync --remove-source-files`): its encrypted outputs are copies.
    let mut sim = Sim::new();
    let mut src = Vec::new();
    for i in 0..10u64 {
        let p = format!("/data/in/p{i}.txt");
        sim.put(&p, text(i, 9000));
        src.push(p);
        let q = format!("/data/in/s{i}.enc");
        sim.put(&q, openssl_enc(i, 9000));
        src.push(q);
    }
    let sh = sim.login_shell();
    let rs = sim.spawn(sh, "/usr/bin/rsync");
    for f in &src {
        sim.read(rs, f);
        let d = sim.content(f);
        let name = f.rsplit('/').next().unwrap();
        // Temporary name, then renamed (rsync style).
        let tmp = format!("/data/out/.{name}.XXXX");
        sim.write_new(rs, &tmp, d);
        sim.rename(rs, &tmp, &format!("/data/out/{name}"));
        sim.delete(rs, f);
    }
    sim.assert_no_verdict();
}

#[test]
fn sqlite_second_page_gets_random_blob() {
    // An application storing encrypted/compressed blobs: page 2 of small databases turns
    // random while page 1 (schema) is kept: not header-preserving encryption.
    let mut sim = Sim::new();
    let dbs: Vec<String> = (0..6).map(|i| format!("/var/lib/kr/k{i}.db")).collect();
    for (i, d) in dbs.iter().enumerate() {
        sim.put(d, sqlite_text(i as u64, 3));
    }
    let svc = sim.spawn(sim.init, "/usr/bin/keyring-daemon");
    for (i, d) in dbs.iter().enumerate() {
        let new = sqlite(3, |pg| {
            if pg == 1 {
                random(i as u64 * 10 + pg as u64, 4000)
            } else {
                csv(i as u64 + pg as u64, 4000)
            }
        });
        sim.overwrite(svc, d, new);
    }
    sim.assert_no_verdict();
}

/// `gzip -r` over a large tree in which one file in five is already random (compressed
/// media, encrypted backups): gzip wraps every random file in a valid stream of stored
/// blocks (random-looking output) and deletes every original. With more random inputs than
/// the engine keeps fingerprints of (64), the wrapped outputs beyond that must still count
/// as copies of what was read, never as encrypted outputs paying for the deletes of the
/// plain originals (`ward bench`'s own warm-up was convicted by this).
#[test]
fn gzip_r_over_hundreds_of_random_files() {
    let mut sim = Sim::new();
    let mut files = Vec::new();
    for i in 0..750u64 {
        let dir = format!("/srv/share/dept{}/case{}", i / 250, i / 25);
        let (name, data) = if i % 5 == 0 {
            (
                format!("img{i:05}.bin"),
                random(i, 1024 + (i as usize * 97) % 60_000),
            )
        } else {
            (
                format!("note{i:05}.txt"),
                text(i, 1024 + (i as usize * 131) % 60_000),
            )
        };
        let p = format!("{dir}/{name}");
        sim.put(&p, data);
        files.push(p);
    }
    // gzip -r walks the random files of a directory before its notes often enough that
    // the wrapped outputs come in runs.
    files.sort_by_key(|f| (!f.ends_with(".bin"), f.clone()));
    let sh = sim.login_shell();
    let g = sim.spawn(sh, "/usr/bin/gzip");
    for (i, f) in files.iter().enumerate() {
        sim.read(g, f);
        let gz = gzip(&sim.content(f));
        let out = format!("{f}.gz");
        sim.create(g, &out);
        // The sensor's groups are read in turn: the delete of the original (a FID event)
        // is often seen before the close-write of its compressed copy (an fd event).
        if i % 2 == 0 {
            sim.delete(g, f);
            sim.close_write(g, &out, gz);
        } else {
            sim.close_write(g, &out, gz);
            sim.delete(g, f);
        }
    }
    sim.exit(g);
    sim.assert_no_verdict();
}
