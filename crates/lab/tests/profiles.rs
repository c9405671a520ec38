//! Profile behaviour and safety tests. Run without root, in tempdirs.
//!
//! `fork-per-file` uses the crate's `ward-sim-child` helper binary in place of
//! the `ward` executable (same `simulate __child --dir DIR REL` arguments).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use ward_lab::{
    child_one, init_corpus, manifest_hashes, open_scratch, profiles, run, Kind, RunOptions,
    SimError, MARKER,
};

fn corpus(files: usize) -> (tempfile::TempDir, PathBuf, BTreeMap<String, String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    init_corpus(&dir, files, 11).unwrap();
    let h = manifest_hashes(&dir).unwrap();
    (tmp, dir, h)
}

fn opts() -> RunOptions {
    RunOptions {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_ward-sim-child")),
        ..Default::default()
    }
}

/// Shannon entropy in bits per byte.
fn entropy(data: &[u8]) -> f64 {
    let mut c = [0usize; 256];
    for b in data {
        c[*b as usize] += 1;
    }
    let n = data.len() as f64;
    c.iter()
        .filter(|&&x| x > 0)
        .map(|&x| {
            let p = x as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn read(dir: &Path, rel: &str) -> Vec<u8> {
    fs::read(dir.join(rel)).unwrap()
}

fn big_enough(data: &[u8]) -> bool {
    data.len() >= 4096
}

#[test]
fn profile_list_has_first_group_and_names_are_unique() {
    let names: Vec<_> = profiles().iter().map(|p| p.name).collect();
    for n in [
        "inplace",
        "new-then-delete",
        "openssl",
        "intermittent",
        "fork-per-file",
    ] {
        let p = profiles().iter().find(|p| p.name == n).unwrap();
        assert_eq!(p.kind, Kind::Attack, "{n}");
    }
    for n in ["gzip", "tar", "cp", "git", "sqlite", "random-files"] {
        let p = profiles().iter().find(|p| p.name == n).unwrap();
        assert_eq!(p.kind, Kind::Benign, "{n}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    assert!(profiles().iter().all(|p| !p.description.is_empty()));
}

#[test]
fn corpus_is_deterministic_for_a_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = init_corpus(&tmp.path().join("a"), 60, 5).unwrap();
    let b = init_corpus(&tmp.path().join("b"), 60, 5).unwrap();
    let c = init_corpus(&tmp.path().join("c"), 60, 6).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.files, c.files);
    assert_eq!(c.seed, 6);
    let ha = manifest_hashes(&tmp.path().join("a")).unwrap();
    let hb = manifest_hashes(&tmp.path().join("b")).unwrap();
    let hc = manifest_hashes(&tmp.path().join("c")).unwrap();
    assert_eq!(ha.len(), 60);
    assert_eq!(ha, hb);
    assert_ne!(ha, hc);
}

// ------------------------------------------------------------ safety

#[test]
fn run_refuses_directory_without_marker() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("precious.txt"), b"do not touch").unwrap();
    for p in profiles() {
        let e = run(p.name, tmp.path(), &opts()).unwrap_err();
        assert!(matches!(e, SimError::NotScratch { .. }), "{}: {e}", p.name);
    }
    let e = child_one(tmp.path(), Path::new("precious.txt")).unwrap_err();
    assert!(matches!(e, SimError::NotScratch { .. }));
    assert!(e.to_string().contains(MARKER));
    assert_eq!(
        fs::read(tmp.path().join("precious.txt")).unwrap(),
        b"do not touch"
    );
}

#[test]
fn run_refuses_symlinked_or_invalid_marker() {
    let (tmp, dir, _) = corpus(20);
    // A symlinked marker pointing at a valid marker elsewhere.
    let other = tmp.path().join("other");
    init_corpus(&other, 5, 1).unwrap();
    fs::remove_file(dir.join(MARKER)).unwrap();
    symlink(other.join(MARKER), dir.join(MARKER)).unwrap();
    let e = run("inplace", &dir, &opts()).unwrap_err();
    assert!(matches!(e, SimError::NotScratch { .. }), "{e}");
    assert!(e.to_string().contains("symlink"));
    // Invalid JSON, wrong version, escaping paths.
    for bad in [
        "not json".to_string(),
        r#"{"version":2,"seed":1,"files":[]}"#.to_string(),
        r#"{"version":1,"seed":1,"files":["../outside.txt"]}"#.to_string(),
        r#"{"version":1,"seed":1,"files":["/etc/passwd"]}"#.to_string(),
    ] {
        fs::remove_file(dir.join(MARKER)).unwrap();
        fs::write(dir.join(MARKER), &bad).unwrap();
        let e = open_scratch(&dir).unwrap_err();
        assert!(matches!(e, SimError::NotScratch { .. }), "{bad}: {e}");
    }
}

#[test]
fn init_refuses_non_empty_dir_root_and_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("x"), b"x").unwrap();
    assert!(matches!(
        init_corpus(tmp.path(), 10, 1),
        Err(SimError::Refused { .. })
    ));
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    assert!(matches!(
        init_corpus(Path::new("/"), 10, 1),
        Err(SimError::Refused { .. })
    ));
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let link = tmp.path().join("link");
    symlink(&empty, &link).unwrap();
    assert!(matches!(
        init_corpus(&link, 10, 1),
        Err(SimError::Refused { .. })
    ));
    // An existing empty directory is fine.
    init_corpus(&empty, 10, 1).unwrap();
}

/// Replace one corpus file with a symlink to an outside file and one corpus
/// directory with a symlink to an outside directory holding same-named files:
/// no attack may modify or delete anything outside.
#[test]
fn attacks_never_follow_symlinks_out_of_the_scratch_dir() {
    for profile in [
        "inplace",
        "new-then-delete",
        "openssl",
        "intermittent",
        "fork-per-file",
        "truncate-rewrite",
        "mmap",
        "rename-first",
    ] {
        let (tmp, dir, _) = corpus(40);
        let m = open_scratch(&dir).unwrap().manifest().clone();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        // 1. file symlink
        let victim = m
            .files
            .iter()
            .find(|f| f.ends_with(".txt"))
            .unwrap()
            .clone();
        fs::write(outside.join("secret.txt"), b"outside secret").unwrap();
        fs::remove_file(dir.join(&victim)).unwrap();
        symlink(outside.join("secret.txt"), dir.join(&victim)).unwrap();
        // 2. directory symlink: move a corpus dir out, link it back in
        let sub = m
            .files
            .iter()
            .find(|f| f.starts_with("imaging/CT/"))
            .unwrap();
        let sub_dir = Path::new(sub).parent().unwrap().to_path_buf();
        let moved = outside.join("ct");
        fs::rename(dir.join(&sub_dir), &moved).unwrap();
        symlink(&moved, dir.join(&sub_dir)).unwrap();
        let before: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&moved)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let d = fs::read(&p).unwrap();
                (p, d)
            })
            .collect();

        let rep = run(profile, &dir, &opts()).unwrap();
        assert!(!rep.files_touched.is_empty(), "{profile}");
        assert!(!rep.files_touched.contains(&victim), "{profile}");
        assert_eq!(
            fs::read(outside.join("secret.txt")).unwrap(),
            b"outside secret",
            "{profile}"
        );
        for (p, d) in &before {
            assert_eq!(
                &fs::read(p).unwrap(),
                d,
                "{profile} touched {}",
                p.display()
            );
        }
        assert_eq!(
            fs::read_dir(&moved).unwrap().count(),
            before.len(),
            "{profile}"
        );
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 2, "{profile}");
        // child_one refuses the symlinked file too.
        assert!(child_one(&dir, Path::new(&victim)).is_err());
    }
}

#[test]
fn only_marker_listed_files_are_touched() {
    let (_tmp, dir, _) = corpus(30);
    fs::write(dir.join("not-in-marker.txt"), b"user file added later").unwrap();
    fs::write(dir.join("referrals/extra.docx"), b"also not listed").unwrap();
    for p in ["inplace", "intermittent", "new-then-delete"] {
        run(p, &dir, &opts()).unwrap();
    }
    assert_eq!(
        fs::read(dir.join("not-in-marker.txt")).unwrap(),
        b"user file added later"
    );
    assert_eq!(
        fs::read(dir.join("referrals/extra.docx")).unwrap(),
        b"also not listed"
    );
    let e = child_one(&dir, Path::new("not-in-marker.txt")).unwrap_err();
    assert!(matches!(e, SimError::UnsafePath { .. }), "{e}");
    assert!(child_one(&dir, Path::new("../share/not-in-marker.txt")).is_err());
    assert!(child_one(&dir, Path::new(MARKER)).is_err());
}

#[test]
fn unknown_profile_is_a_clear_error() {
    let (_tmp, dir, _) = corpus(5);
    let e = run("no-such-profile", &dir, &opts()).unwrap_err();
    assert!(matches!(e, SimError::UnknownProfile(_)));
    assert!(e.to_string().contains("--list"));
}

// ------------------------------------------------------------ attacks

#[test]
fn inplace_encrypts_every_file_same_length() {
    let (_tmp, dir, before) = corpus(40);
    let sizes: BTreeMap<_, _> = before
        .keys()
        .map(|k| (k.clone(), read(&dir, k).len()))
        .collect();
    let rep = run("inplace", &dir, &opts()).unwrap();
    assert_eq!(rep.files_touched.len(), before.len());
    let after = manifest_hashes(&dir).unwrap();
    for (k, h) in &before {
        assert_ne!(after.get(k), Some(h), "{k} unchanged");
        let d = read(&dir, k);
        assert_eq!(d.len(), sizes[k], "{k} length changed");
        if big_enough(&d) {
            assert!(entropy(&d) > 7.9, "{k}: entropy {}", entropy(&d));
        }
    }
}

#[test]
fn new_then_delete_writes_wncry_and_notes() {
    let (_tmp, dir, before) = corpus(40);
    let rep = run("new-then-delete", &dir, &opts()).unwrap();
    assert_eq!(rep.files_deleted.len(), before.len());
    assert!(manifest_hashes(&dir).unwrap().is_empty());
    let mut dirs = std::collections::BTreeSet::new();
    for k in before.keys() {
        assert!(!dir.join(k).exists());
        let d = read(&dir, &format!("{k}.WNCRY"));
        assert!(d.starts_with(b"WANACRY!"));
        if big_enough(&d) {
            assert!(entropy(&d) > 7.9);
        }
        dirs.insert(Path::new(k).parent().unwrap().to_path_buf());
    }
    let notes: Vec<Vec<u8>> = dirs
        .iter()
        .map(|d| fs::read(dir.join(d).join("README_RESTORE.txt")).unwrap())
        .collect();
    assert!(notes.windows(2).all(|w| w[0] == w[1]), "notes differ");
    assert!(
        rep.files_created
            .iter()
            .filter(|f| f.ends_with("README_RESTORE.txt"))
            .count()
            == dirs.len()
    );
}

#[test]
fn openssl_uses_child_processes() {
    let (_tmp, dir, before) = corpus(12);
    let rep = run("openssl", &dir, &opts()).unwrap();
    assert_eq!(rep.processes_spawned, 2 * before.len());
    for k in before.keys() {
        assert!(!dir.join(k).exists(), "{k} still there");
        assert!(read(&dir, &format!("{k}.enc")).starts_with(b"Salted__"));
    }
}

#[test]
fn intermittent_changes_only_first_4k() {
    let (_tmp, dir, before) = corpus(40);
    let orig: BTreeMap<_, _> = before.keys().map(|k| (k.clone(), read(&dir, k))).collect();
    run("intermittent", &dir, &opts()).unwrap();
    for (k, o) in &orig {
        let n = read(&dir, k);
        assert_eq!(n.len(), o.len());
        let cut = 4096.min(o.len());
        assert_ne!(&n[..cut], &o[..cut], "{k}");
        assert_eq!(&n[cut..], &o[cut..], "{k}");
    }
}

#[test]
fn fork_per_file_spawns_one_child_per_file() {
    let (_tmp, dir, before) = corpus(10);
    let rep = run("fork-per-file", &dir, &opts()).unwrap();
    assert_eq!(rep.processes_spawned, before.len());
    for k in before.keys() {
        assert!(!dir.join(k).exists());
        assert!(read(&dir, &format!("{k}.locked")).starts_with(b"WARDLOCK"));
    }
    // missing exe: clear error, nothing touched
    let (_tmp2, dir2, before2) = corpus(5);
    let bad = RunOptions {
        exe: PathBuf::from("/nonexistent/ward"),
        ..Default::default()
    };
    assert!(run("fork-per-file", &dir2, &bad).is_err());
    assert_eq!(manifest_hashes(&dir2).unwrap(), before2);
}

#[test]
fn max_files_and_delay_are_respected() {
    let (_tmp, dir, before) = corpus(20);
    let o = RunOptions {
        max_files: Some(3),
        delay: std::time::Duration::from_millis(50),
        ..opts()
    };
    let t = std::time::Instant::now();
    let rep = run("inplace", &dir, &o).unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(100));
    assert_eq!(rep.files_touched.len(), 3);
    let after = manifest_hashes(&dir).unwrap();
    let changed = before
        .iter()
        .filter(|(k, h)| after.get(*k) != Some(h))
        .count();
    assert_eq!(changed, 3);
    // natural (sorted walk) order: the first three files of the walk
    let mut sorted = rep.files_touched.clone();
    sorted.sort();
    assert_eq!(sorted, rep.files_touched);
}

// ------------------------------------------------------------ benign

#[test]
fn gzip_roundtrip_leaves_corpus_identical() {
    let (_tmp, dir, before) = corpus(40);
    let rep = run("gzip", &dir, &opts()).unwrap();
    assert!(rep.files_touched.len() >= 30);
    assert_eq!(manifest_hashes(&dir).unwrap(), before);
}

#[test]
fn tar_creates_archive_and_keeps_corpus() {
    let (_tmp, dir, before) = corpus(30);
    let rep = run("tar", &dir, &opts()).unwrap();
    assert_eq!(manifest_hashes(&dir).unwrap(), before);
    assert_eq!(rep.files_created.len(), 1);
    let out = Command::new("tar")
        .arg("tzf")
        .arg(dir.join(&rep.files_created[0]))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        before.len()
    );
}

#[test]
fn cp_copies_a_subtree() {
    let (_tmp, dir, before) = corpus(30);
    let rep = run("cp", &dir, &opts()).unwrap();
    assert_eq!(manifest_hashes(&dir).unwrap(), before);
    assert!(!rep.files_created.is_empty());
    for f in &rep.files_created {
        let (top, rest) = f.split_once('/').unwrap();
        let src = format!("{}/{rest}", top.trim_end_matches("-copy"));
        assert_eq!(read(&dir, f), read(&dir, &src));
    }
}

#[test]
fn git_commits_a_copy() {
    let (_tmp, dir, before) = corpus(30);
    let rep = run("git", &dir, &opts()).unwrap();
    assert_eq!(manifest_hashes(&dir).unwrap(), before);
    let work = rep.files_created[0].split('/').next().unwrap().to_string();
    assert!(dir.join(&work).join(".git").is_dir());
    let out = Command::new("git")
        .arg("-C")
        .arg(dir.join(&work))
        .args(["log", "--oneline"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn sqlite_bulk_inserts_keep_database_valid() {
    let (_tmp, dir, before) = corpus(40);
    let rep = run(
        "sqlite",
        &dir,
        &RunOptions {
            max_files: Some(10),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(rep.files_touched.len(), 1);
    let db = &rep.files_touched[0];
    let after = manifest_hashes(&dir).unwrap();
    for (k, h) in &before {
        if k != db {
            assert_eq!(&after[k], h);
        }
    }
    let conn = rusqlite::Connection::open(dir.join(db)).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM attachments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 250);
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn random_files_creates_100_files() {
    let (_tmp, dir, before) = corpus(10);
    let rep = run("random-files", &dir, &opts()).unwrap();
    assert_eq!(rep.files_created.len(), 100);
    assert!(rep.files_touched.is_empty());
    assert_eq!(manifest_hashes(&dir).unwrap(), before);
}
