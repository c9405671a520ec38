//! Second-group profiles: each runs on a small corpus and does what it says.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ward_lab::formats;
use ward_lab::{init_corpus, manifest_hashes, run, RunOptions, RunReport};

fn corpus(files: usize) -> (tempfile::TempDir, PathBuf, BTreeMap<String, Vec<u8>>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    let m = init_corpus(&dir, files, 23).unwrap();
    let orig = m
        .files
        .iter()
        .map(|f| (f.clone(), fs::read(dir.join(f)).unwrap()))
        .collect();
    (tmp, dir, orig)
}

fn go(profile: &str, dir: &Path) -> RunReport {
    run(profile, dir, &RunOptions::default()).unwrap_or_else(|e| panic!("{profile}: {e}"))
}

fn entropy(data: &[u8]) -> f64 {
    let mut c = [0usize; 256];
    for b in data {
        c[*b as usize] += 1;
    }
    let n = data.len() as f64;
    c.iter()
        .filter(|&&x| x > 0)
        .map(|&x| -(x as f64 / n) * (x as f64 / n).log2())
        .sum()
}

fn unchanged(dir: &Path, orig: &BTreeMap<String, Vec<u8>>) -> bool {
    let h = manifest_hashes(dir).unwrap();
    h.len() == orig.len()
        && orig.iter().all(|(k, v)| {
            use sha2::Digest;
            h.get(k) == Some(&hex::encode(sha2::Sha256::digest(v)))
        })
}

fn has(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Same-length in-place encryption checks.
fn check_inplace(dir: &Path, orig: &BTreeMap<String, Vec<u8>>, rep: &RunReport) {
    assert_eq!(rep.files_touched.len(), orig.len());
    for (k, o) in orig {
        let n = fs::read(dir.join(k)).unwrap();
        assert_eq!(n.len(), o.len(), "{k}");
        assert_ne!(&n, o, "{k}");
        if n.len() > 4096 {
            assert!(entropy(&n) > 7.9, "{k}");
        }
    }
}

#[test]
fn rename_first() {
    let (_t, dir, orig) = corpus(25);
    let rep = go("rename-first", &dir);
    for (k, o) in &orig {
        assert!(!dir.join(k).exists());
        let n = fs::read(dir.join(format!("{k}.locked"))).unwrap();
        assert_eq!(n.len(), o.len());
        assert_ne!(&n, o);
    }
    assert_eq!(rep.files_deleted.len(), orig.len());
}

#[test]
fn truncate_rewrite() {
    let (_t, dir, orig) = corpus(25);
    let rep = go("truncate-rewrite", &dir);
    check_inplace(&dir, &orig, &rep);
}

#[test]
fn header_preserving() {
    let (_t, dir, orig) = corpus(25);
    go("header-preserving", &dir);
    for (k, o) in &orig {
        let n = fs::read(dir.join(k)).unwrap();
        let keep = 1024.min(o.len() / 2);
        assert_eq!(&n[..keep], &o[..keep], "{k}");
        assert_ne!(&n[keep..], &o[keep..], "{k}");
        if k.ends_with(".dcm") {
            assert_eq!(&n[128..132], b"DICM");
        }
    }
}

#[test]
fn intermittent_blocks() {
    let (_t, dir, orig) = corpus(25);
    go("intermittent-blocks", &dir);
    for (k, o) in &orig {
        let n = fs::read(dir.join(k)).unwrap();
        assert_eq!(n.len(), o.len());
        let mut off = 0;
        while off < o.len() {
            let end = (off + 4096).min(o.len());
            assert_ne!(&n[off..end], &o[off..end], "{k} block {off}");
            let next = (off + 65536).min(o.len());
            assert_eq!(&n[end..next], &o[end..next], "{k} gap after {off}");
            off += 65536;
        }
    }
}

#[test]
fn armoured_is_low_entropy_base64() {
    let (_t, dir, orig) = corpus(25);
    go("armoured", &dir);
    for (k, o) in &orig {
        let n = fs::read(dir.join(k)).unwrap();
        assert!(n.len() > o.len(), "{k}");
        assert!(n
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=\n".contains(b)));
        if n.len() > 4096 {
            let e = entropy(&n);
            assert!(e > 5.8 && e < 6.2, "{k}: {e}");
        }
    }
}

#[test]
fn multi_threaded() {
    let (_t, dir, orig) = corpus(25);
    let rep = go("multi-threaded", &dir);
    check_inplace(&dir, &orig, &rep);
}

#[test]
fn mmap_writes() {
    let (_t, dir, orig) = corpus(25);
    let rep = go("mmap", &dir);
    check_inplace(&dir, &orig, &rep);
}

#[test]
fn slow_waits_three_seconds_between_files() {
    let (_t, dir, _orig) = corpus(10);
    let t = Instant::now();
    let rep = run(
        "slow",
        &dir,
        &RunOptions {
            max_files: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(t.elapsed() >= Duration::from_secs(3));
    assert_eq!(rep.files_touched.len(), 2);
}

#[test]
fn gpg_symmetric() {
    if !has("gpg") {
        eprintln!("gpg missing: skipped (apt-get install gpg)");
        return;
    }
    let (_t, dir, orig) = corpus(8);
    let rep = go("gpg", &dir);
    assert_eq!(rep.files_deleted.len(), orig.len());
    for k in orig.keys() {
        assert!(!dir.join(k).exists());
        let g = fs::read(dir.join(format!("{k}.gpg"))).unwrap();
        assert!(g[0] & 0x80 != 0, "{k}.gpg is not an OpenPGP packet");
    }
}

#[test]
fn archive_then_wipe() {
    let (_t, dir, orig) = corpus(25);
    let rep = go("archive-then-wipe", &dir);
    assert_eq!(rep.files_deleted.len(), orig.len());
    assert!(manifest_hashes(&dir).unwrap().is_empty());
    let locked = rep
        .files_created
        .iter()
        .find(|f| f.ends_with(".tar.locked"))
        .unwrap();
    assert!(fs::read(dir.join(locked)).unwrap().starts_with(b"WARDLOCK"));
    assert!(!dir.join("archive.tar").exists());
}

#[test]
fn zstd_and_xz_roundtrip() {
    for (p, tool) in [("zstd", "zstd"), ("xz", "xz")] {
        if !has(tool) {
            eprintln!("{tool} missing: skipped");
            continue;
        }
        let (_t, dir, orig) = corpus(25);
        let rep = go(p, &dir);
        assert!(!rep.files_touched.is_empty());
        assert!(unchanged(&dir, &orig), "{p}");
        assert!(rep.files_created.is_empty(), "{p}: {:?}", rep.files_created);
    }
}

#[test]
fn zip_archive() {
    if !has("zip") {
        return;
    }
    let (_t, dir, orig) = corpus(25);
    let rep = go("zip", &dir);
    assert!(unchanged(&dir, &orig));
    let z = zip::ZipArchive::new(fs::File::open(dir.join(&rep.files_created[0])).unwrap()).unwrap();
    assert_eq!(z.len(), orig.len());
}

#[test]
fn encrypted_backup_is_one_file() {
    let (_t, dir, orig) = corpus(25);
    let rep = go("encrypted-backup", &dir);
    assert!(unchanged(&dir, &orig));
    assert_eq!(rep.files_created.len(), 1);
    let d = fs::read(dir.join(&rep.files_created[0])).unwrap();
    assert!(d.starts_with(b"Salted__"));
    assert!(d.len() > 10_000);
}

#[test]
fn rsync_mirror() {
    if !has("rsync") {
        return;
    }
    let (_t, dir, orig) = corpus(25);
    let rep = go("rsync", &dir);
    assert!(unchanged(&dir, &orig));
    assert!(!rep.files_created.is_empty());
    for f in &rep.files_created {
        let (top, rest) = f.split_once('/').unwrap();
        let src = format!("{}/{rest}", top.trim_end_matches("-copy"));
        assert_eq!(
            fs::read(dir.join(f)).unwrap(),
            fs::read(dir.join(src)).unwrap()
        );
    }
}

#[test]
fn editor_save_appends_and_renames() {
    let (_t, dir, orig) = corpus(40);
    let rep = go("editor-save", &dir);
    assert!(!rep.files_touched.is_empty());
    for (k, o) in &orig {
        let n = fs::read(dir.join(k)).unwrap();
        if rep.files_touched.contains(k) {
            assert!(n.starts_with(o) && n.len() > o.len(), "{k}");
        } else {
            assert_eq!(&n, o, "{k}");
        }
    }
    assert!(rep.files_created.is_empty());
}

#[test]
fn logrotate_rotates_and_compresses() {
    let (_t, dir, orig) = corpus(40);
    let rep = go("logrotate", &dir);
    assert!(!rep.files_touched.is_empty());
    for k in &rep.files_touched {
        assert!(k.ends_with(".log"));
        assert_eq!(fs::read(dir.join(k)).unwrap().len(), 0);
        let gz = fs::read(dir.join(format!("{k}.1.gz"))).unwrap();
        assert_eq!(&formats::gunzip(&gz).unwrap(), &orig[k]);
    }
}

#[test]
fn mass_delete_removes_one_subtree() {
    let (_t, dir, orig) = corpus(40);
    let rep = go("mass-delete", &dir);
    assert!(!rep.files_deleted.is_empty());
    let top = rep.files_deleted[0].split('/').next().unwrap().to_string();
    for (k, o) in &orig {
        if k.starts_with(&format!("{top}/")) {
            assert!(!dir.join(k).exists());
        } else {
            assert_eq!(&fs::read(dir.join(k)).unwrap(), o);
        }
    }
}

#[test]
fn image_reencode_keeps_pixels() {
    let (_t, dir, orig) = corpus(40);
    let rep = go("image-reencode", &dir);
    assert!(!rep.files_touched.is_empty());
    for k in &rep.files_touched {
        let n = fs::read(dir.join(k)).unwrap();
        assert_ne!(&n, &orig[k]);
        assert_eq!(
            formats::png_decode(&n).unwrap(),
            formats::png_decode(&orig[k]).unwrap()
        );
    }
}

#[test]
fn dicom_reencode_deflates_dataset() {
    let (_t, dir, _orig) = corpus(40);
    let rep = go("dicom-reencode", &dir);
    assert!(!rep.files_touched.is_empty());
    for k in &rep.files_touched {
        let n = fs::read(dir.join(k)).unwrap();
        let p = formats::dicom_parse(&n).unwrap();
        assert_eq!(p.transfer_syntax, formats::TS_DEFLATED_LE);
    }
    assert!(rep.files_created.is_empty());
}

#[test]
fn one_file_encrypt_keeps_original() {
    let (_t, dir, orig) = corpus(25);
    let rep = go("one-file-encrypt", &dir);
    assert!(unchanged(&dir, &orig));
    assert_eq!(rep.files_created.len(), 1);
    assert!(fs::read(dir.join(&rep.files_created[0]))
        .unwrap()
        .starts_with(b"Salted__"));
}
