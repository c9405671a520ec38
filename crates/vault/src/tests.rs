//! Unit tests on tempdirs in /tmp (ext4 here: the copy path), plus a root-only reflink
//! test on a loop-mounted btrfs.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Deterministic pseudo-random bytes.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

struct Fx {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    vault_dir: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::Builder::new()
            .prefix("ward-vault-test")
            .tempdir_in("/tmp")
            .unwrap();
        let root = tmp.path().join("data");
        fs::create_dir(&root).unwrap();
        let vault_dir = tmp.path().join(".ward-vault");
        Fx {
            _tmp: tmp,
            root,
            vault_dir,
        }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn vault(&self) -> Vault {
        self.vault_with(Limits::default())
    }

    fn vault_with(&self, limits: Limits) -> Vault {
        Vault::open(&self.vault_dir, limits).unwrap()
    }
}

const A: Owner = Owner {
    pid: 4_000_001,
    start: 7,
};
const B: Owner = Owner {
    pid: 4_000_002,
    start: 9,
};

fn ro(p: &Path) -> File {
    File::open(p).unwrap()
}

fn overwrite(p: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(p)
        .unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn plan(
    incident: &str,
    owners: &[Owner],
    renames: &[(&Path, &Path)],
    created: &[&Path],
) -> RestorePlan {
    RestorePlan {
        incident: incident.into(),
        owners: owners.to_vec(),
        renames: renames
            .iter()
            .map(|(a, b)| (a.to_path_buf(), b.to_path_buf()))
            .collect(),
        created: created.iter().map(|p| p.to_path_buf()).collect(),
        contained_at: SystemTime::now(),
    }
}

fn restore(v: &mut Vault, p: &RestorePlan) -> RestoreReport {
    v.restore(p, &mut |_, _| {}).unwrap()
}

fn objects_in(v: &Vault) -> Vec<String> {
    fs::read_dir(v.dir().join("objects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn copy_and_restore_byte_identical_with_metadata() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("report.docx");
    let orig = data(3 << 20, 1); // several copy chunks
    fs::write(&a, &orig).unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&a, Some(1234), Some(2345)).unwrap();
    }
    let f = ro(&a);
    ward_sys::xattr_clone::fsetxattr(f.as_fd(), "user.ward.test".as_ref(), b"hello").unwrap();
    let mtime = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    let fw = OpenOptions::new().write(true).open(&a).unwrap();
    fw.set_modified(mtime).unwrap();
    drop(fw);
    let before = fs::metadata(&a).unwrap();

    let f = ro(&a);
    let p = v.preserve_copy(f.as_fd(), &a, A).unwrap();
    assert_eq!(p.method, Method::Copy, "ext4 has no reflink");
    assert_eq!(p.bytes, orig.len() as u64);
    assert!(!p.reused);
    assert!(v.has_current(&FileVersion::of(f.as_fd()).unwrap()));
    drop(f);

    // The attack: encrypt in place, change mode, drop the xattr.
    overwrite(&a, &data(1000, 99));
    fs::set_permissions(&a, fs::Permissions::from_mode(0o666)).unwrap();
    std::thread::sleep(Duration::from_millis(5));

    let rep = restore(&mut v, &plan("i1", &[A], &[], &[]));
    assert_eq!(rep.files_restored, 1, "{rep:?}");
    assert_eq!(rep.files_lost, 0);
    assert_eq!(fs::read(&a).unwrap(), orig);
    let after = fs::metadata(&a).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(after.modified().unwrap(), mtime);
    let f = ro(&a);
    assert_eq!(
        ward_sys::xattr_clone::fgetxattr(f.as_fd(), "user.ward.test".as_ref()).unwrap(),
        b"hello"
    );
    // No temp file left next to it.
    assert_eq!(fs::read_dir(&fx.root).unwrap().count(), 1);
    let st = v.restore_status("i1").unwrap();
    assert_eq!(st.state, RestoreState::Done);
    assert_eq!(st.files_restored, 1);
}

#[test]
fn link_entry_survives_unlink_and_restores() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("photo.jpg");
    let orig = data(100_000, 2);
    fs::write(&a, &orig).unwrap();
    let f = ro(&a);
    let p = v.preserve_link(f.as_fd(), &a, A).unwrap();
    assert_eq!((p.method, p.bytes), (Method::Link, 0));
    let ver = FileVersion::of(f.as_fd()).unwrap();
    assert!(v.has_link(&ver));
    assert!(
        !v.has_current(&ver),
        "a link does not protect against in-place writes"
    );
    // The next read-open of the same version reuses the entry.
    assert!(v.preserve_link(f.as_fd(), &a, A).unwrap().reused);
    drop(f);
    fs::remove_file(&a).unwrap();
    let s = v.stats();
    assert_eq!((s.entries, s.links, s.bytes), (1, 1, 0));

    let rep = restore(&mut v, &plan("i2", &[A], &[], &[]));
    assert_eq!(rep.files_restored, 1, "{rep:?}");
    assert_eq!(fs::read(&a).unwrap(), orig);
}

#[test]
fn rename_chain_restores_original_and_quarantines_target() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("a.txt");
    let locked = fx.p("a.txt.locked");
    let locked2 = fx.p("a.txt.locked.final");
    let orig = data(50_000, 3);
    fs::write(&a, &orig).unwrap();
    // rename first, then open for write (preserved at the new name), encrypt in place,
    // rename again.
    fs::rename(&a, &locked).unwrap();
    let f = ro(&locked);
    v.preserve_copy(f.as_fd(), &locked, A).unwrap();
    drop(f);
    let enc = data(50_000, 33);
    overwrite(&locked, &enc);
    fs::rename(&locked, &locked2).unwrap();
    std::thread::sleep(Duration::from_millis(5));

    let pl = plan("inc-3", &[A], &[(&a, &locked), (&locked, &locked2)], &[]);
    let actions = v.plan_restore(&pl).unwrap();
    assert_eq!(actions.len(), 2, "{actions:?}");
    let rep = restore(&mut v, &pl);
    assert_eq!(
        (rep.files_restored, rep.files_quarantined),
        (1, 1),
        "{rep:?}"
    );
    assert_eq!(fs::read(&a).unwrap(), orig);
    assert!(!locked2.exists());
    let rel = locked2.strip_prefix("/").unwrap();
    let q = v.dir().join("quarantine/inc-3").join(rel);
    assert_eq!(fs::read(&q).unwrap(), enc, "quarantined at {}", q.display());
}

#[test]
fn write_new_then_delete_restores_from_link_and_quarantines() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("ledger.xlsx");
    let wncry = fx.p("ledger.xlsx.WNCRY");
    let note = fx.p("README_DECRYPT.txt");
    let orig = data(70_000, 4);
    fs::write(&a, &orig).unwrap();
    let f = ro(&a); // read-only open by the attacker: hard link
    assert_eq!(
        v.preserve_link(f.as_fd(), &a, A).unwrap().method,
        Method::Link
    );
    drop(f);
    fs::write(&wncry, data(70_016, 44)).unwrap();
    fs::write(&note, b"pay up").unwrap();
    fs::remove_file(&a).unwrap();
    std::thread::sleep(Duration::from_millis(5));

    let rep = restore(&mut v, &plan("i4", &[A], &[], &[&wncry, &note]));
    assert_eq!(
        (rep.files_restored, rep.files_quarantined),
        (1, 2),
        "{rep:?}"
    );
    assert_eq!(fs::read(&a).unwrap(), orig);
    assert!(!wncry.exists() && !note.exists());
}

#[test]
fn rename_over_original_keeps_original_name() {
    // write x.tmp, rename it over x: the entry at x must restore x (not x.tmp).
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("x");
    let tmp = fx.p("x.tmp");
    let orig = data(10_000, 5);
    fs::write(&a, &orig).unwrap();
    let f = ro(&a);
    v.preserve_link(f.as_fd(), &a, A).unwrap();
    drop(f);
    fs::write(&tmp, data(10_000, 55)).unwrap();
    fs::rename(&tmp, &a).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let rep = restore(&mut v, &plan("i5", &[A], &[(&tmp, &a)], &[&tmp]));
    assert_eq!(rep.files_restored, 1, "{rep:?}");
    assert_eq!(rep.files_quarantined, 0);
    assert_eq!(fs::read(&a).unwrap(), orig);
    assert!(!tmp.exists());
}

#[test]
fn rename_only_is_renamed_back() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("b.pdf");
    let moved = fx.p("b.pdf.enc");
    fs::write(&a, b"content").unwrap();
    fs::rename(&a, &moved).unwrap();
    let rep = restore(&mut v, &plan("i6", &[A], &[(&a, &moved)], &[]));
    assert_eq!(
        (rep.files_restored, rep.files_quarantined),
        (1, 0),
        "{rep:?}"
    );
    assert_eq!(fs::read(&a).unwrap(), b"content");
    assert!(!moved.exists());
}

#[test]
fn directory_rename_and_rename_only_files_are_undone() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let d = fx.p("d");
    let d_locked = fx.p("d.locked");
    fs::create_dir(&d).unwrap();
    let (x, y) = (d.join("x"), d.join("y"));
    let (xd, yd) = (data(6000, 30), data(7000, 31));
    fs::write(&x, &xd).unwrap();
    fs::write(&y, &yd).unwrap();
    // The attack: rename y, encrypt x in place, drop a note, rename the directory.
    let y_enc = d.join("y.enc");
    fs::rename(&y, &y_enc).unwrap();
    v.preserve_copy(ro(&x).as_fd(), &x, A).unwrap();
    overwrite(&x, b"encrypted");
    let note = d.join("NOTE.txt");
    fs::write(&note, b"pay").unwrap();
    fs::rename(&d, &d_locked).unwrap();
    std::thread::sleep(Duration::from_millis(5));

    let pl = plan("i11", &[A], &[(&y, &y_enc), (&d, &d_locked)], &[&note]);
    let rep = restore(&mut v, &pl);
    assert_eq!(
        (
            rep.files_restored,
            rep.files_quarantined,
            rep.files_lost,
            rep.failed
        ),
        (2, 1, 0, 0),
        "{rep:?}"
    );
    assert_eq!(fs::read(&x).unwrap(), xd);
    assert_eq!(fs::read(&y).unwrap(), yd);
    assert!(!d_locked.exists() && !y_enc.exists() && !note.exists());
    let rep = restore(&mut v, &pl);
    assert_eq!(
        (rep.files_restored, rep.already_ok, rep.already_quarantined),
        (0, 2, 1),
        "{rep:?}"
    );
}

#[test]
fn conflict_keeps_both() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("notes.md");
    let orig = data(5000, 6);
    fs::write(&a, &orig).unwrap();
    let f = ro(&a);
    v.preserve_copy(f.as_fd(), &a, A).unwrap();
    drop(f);
    overwrite(&a, &data(5000, 66)); // the attack
    std::thread::sleep(Duration::from_millis(5));
    let pl = plan("i7", &[A], &[], &[]);
    std::thread::sleep(Duration::from_millis(20));
    overwrite(&a, b"the user's new work"); // after containment
    let rep = restore(&mut v, &pl);
    assert_eq!(rep.conflicts, vec![a.clone()], "{rep:?}");
    assert_eq!(fs::read(&a).unwrap(), b"the user's new work");
    let side = fx.p("notes.md.ward-restored-i7");
    assert_eq!(fs::read(&side).unwrap(), orig);
    // Again: nothing changes, reported already ok, still a conflict.
    let rep = restore(&mut v, &pl);
    assert_eq!((rep.files_restored, rep.already_ok), (0, 1), "{rep:?}");
    assert_eq!(rep.conflicts, vec![a.clone()]);
    assert_eq!(v.restore_status("i7").unwrap().conflicts, 1);
}

#[test]
fn double_restore_is_idempotent() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let mut files = Vec::new();
    for i in 0..5 {
        let p = fx.p(&format!("f{i}"));
        let d = data(20_000 + i * 7, 10 + i as u64);
        fs::write(&p, &d).unwrap();
        let f = ro(&p);
        if i % 2 == 0 {
            v.preserve_copy(f.as_fd(), &p, A).unwrap();
            overwrite(&p, &data(20_000, 100 + i as u64));
        } else {
            v.preserve_link(f.as_fd(), &p, B).unwrap();
            fs::remove_file(&p).unwrap();
        }
        files.push((p, d));
    }
    let note = fx.p("HOW_TO_DECRYPT.txt");
    fs::write(&note, b"note").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let pl = plan("i8", &[A, B], &[], &[&note]);
    let dry = v.restore_dry_run(&pl).unwrap();
    assert_eq!(
        (dry.files_restored, dry.files_quarantined),
        (5, 1),
        "{dry:?}"
    );
    assert!(note.exists(), "dry run changes nothing");

    let mut calls = Vec::new();
    let r1 = v.restore(&pl, &mut |d, t| calls.push((d, t))).unwrap();
    assert_eq!(calls.last(), Some(&(6, 6)));
    assert_eq!((r1.files_restored, r1.files_quarantined), (5, 1), "{r1:?}");
    let r2 = restore(&mut v, &pl);
    assert_eq!(
        (
            r2.files_restored,
            r2.already_ok,
            r2.files_quarantined,
            r2.already_quarantined
        ),
        (0, 5, 0, 1),
        "{r2:?}"
    );
    for (p, d) in &files {
        assert_eq!(&fs::read(p).unwrap(), d);
    }
    let st = v.restore_status("i8").unwrap();
    assert_eq!(
        (
            st.state,
            st.runs,
            st.files_restored,
            st.files_quarantined,
            st.already_ok
        ),
        (RestoreState::Done, 2, 5, 1, 0)
    );
}

#[test]
fn interrupted_restore_is_finished_after_reopen() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let mut files = Vec::new();
    for i in 0..4 {
        let p = fx.p(&format!("g{i}"));
        let d = data(9000, 20 + i as u64);
        fs::write(&p, &d).unwrap();
        let f = ro(&p);
        v.preserve_copy(f.as_fd(), &p, A).unwrap();
        overwrite(&p, b"encrypted");
        files.push((p, d));
    }
    std::thread::sleep(Duration::from_millis(5));
    let pl = plan("crash", &[A], &[], &[]);
    // "kill -9" after the second file: unwind out of restore mid-way.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        v.restore(&pl, &mut |done, _| {
            if done == 2 {
                panic!("simulated crash");
            }
        })
    }));
    assert!(r.is_err());
    drop(v);
    assert_eq!(fs::read(&files[3].0).unwrap(), b"encrypted");

    let mut v = fx.vault();
    assert_eq!(v.unfinished_restores().unwrap(), vec!["crash".to_string()]);
    assert_eq!(
        v.restore_status("crash").unwrap().state,
        RestoreState::InProgress
    );
    let rep = v.resume("crash", &mut |_, _| {}).unwrap();
    assert_eq!((rep.files_restored, rep.already_ok), (2, 2), "{rep:?}");
    for (p, d) in &files {
        assert_eq!(&fs::read(p).unwrap(), d);
    }
    assert!(v.unfinished_restores().unwrap().is_empty());
    assert_eq!(v.restore_status("crash").unwrap().state, RestoreState::Done);
}

#[test]
fn reopen_cleans_half_written_and_orphaned_objects() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("a");
    let b = fx.p("b");
    fs::write(&a, b"aaaa").unwrap();
    fs::write(&b, b"bbbb").unwrap();
    let pa = v.preserve_copy(ro(&a).as_fd(), &a, A).unwrap();
    v.preserve_copy(ro(&b).as_fd(), &b, A).unwrap();
    let objs = objects_in(&v);
    assert_eq!(objs.len(), 2);
    let dir = v.dir().to_path_buf();
    drop(v);
    // Crash leftovers: a half-written object, an object without a row (crash between
    // rename and insert), and a row without an object.
    fs::write(dir.join("objects/.tmp-123-1-1"), b"half").unwrap();
    fs::write(dir.join("objects/dead-beef-1"), b"orphan").unwrap();
    let db = rusqlite::Connection::open(dir.join("index.db")).unwrap();
    let obj_a: String = db
        .query_row("SELECT object FROM entries WHERE id = ?1", [pa.id], |r| {
            r.get(0)
        })
        .unwrap();
    drop(db);
    fs::remove_file(dir.join("objects").join(&obj_a)).unwrap();

    let v = fx.vault();
    let left = objects_in(&v);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left
        .iter()
        .any(|n| n.starts_with(".tmp-") || n == "dead-beef-1"));
    assert_eq!(v.stats().entries, 1);
    assert_eq!(
        fs::metadata(v.dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn eviction_respects_budget_and_pins() {
    let fx = Fx::new();
    let mut v = fx.vault_with(Limits {
        max_bytes: 10_000,
        grace: Duration::ZERO,
        ..Limits::default()
    });
    // Owner A has exited, B is alive (as far as the vault is told).
    v.set_liveness(|o| *o == B);
    let mk = |name: &str, n: usize, seed: u64| {
        let p = fx.p(name);
        fs::write(&p, data(n, seed)).unwrap();
        p
    };
    let f1 = mk("f1", 4000, 1);
    let f2 = mk("f2", 4000, 2);
    let f3 = mk("f3", 4000, 3);
    let e1 = v.preserve_copy(ro(&f1).as_fd(), &f1, A).unwrap();
    v.preserve_copy(ro(&f2).as_fd(), &f2, B).unwrap();
    // Budget: 8000 used; f3 needs 4000: the exited owner's oldest copy goes.
    v.preserve_copy(ro(&f3).as_fd(), &f3, A).unwrap();
    assert_eq!(v.stats().bytes, 8000);
    assert!(!v.has_current(&FileVersion::of(ro(&f1).as_fd()).unwrap()));
    let _ = e1;

    // Pin A's remaining entry (f3): now only B's (alive) and pinned copies remain.
    assert_eq!(v.pin("inc", &[A]).unwrap(), 1);
    let f4 = mk("f4", 4000, 4);
    match v.preserve_copy(ro(&f4).as_fd(), &f4, A) {
        Err(VaultError::Full { need, used, max }) => {
            assert_eq!((need, used, max), (4000, 8000, 10_000));
            let msg = VaultError::Full { need, used, max }.to_string();
            assert!(msg.contains("raise the vault budget"), "{msg}");
        }
        other => panic!("expected Full, got {other:?}"),
    }
    // Links cost nothing against the budget.
    let f5 = mk("f5", 4000, 5);
    v.preserve_link(ro(&f5).as_fd(), &f5, A).unwrap();

    // Retention: 2 days later A's unpinned link goes, the pinned copy stays, B's
    // entry (alive owner) stays.
    let later = SystemTime::now() + Duration::from_secs(2 * 86_400);
    let rep = v.evict(later).unwrap();
    assert_eq!((rep.links_dropped, rep.copies_dropped), (1, 0), "{rep:?}");
    assert_eq!(v.stats().entries, 2);
    assert_eq!(v.stats().pinned, 1);
    v.release("inc").unwrap();
    let rep = v.evict(later).unwrap();
    assert_eq!((rep.copies_dropped, rep.bytes_freed), (1, 4000));
    let s = v.stats();
    assert_eq!((s.entries, s.bytes, s.pinned), (1, 4000, 0));
}

#[test]
fn file_changing_mid_copy_is_an_error_not_a_panic() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("growing.log");
    fs::write(&a, data(2 << 20, 7)).unwrap();
    // Another process keeps appending while we copy: every attempt sees a change.
    let a2 = a.clone();
    v.copy_hook = Some(Box::new(move |_| {
        let mut f = OpenOptions::new().append(true).open(&a2).unwrap();
        f.write_all(b"more").unwrap();
    }));
    let f = ro(&a);
    match v.preserve_copy(f.as_fd(), &a, A) {
        Err(VaultError::Changed { path, .. }) => assert_eq!(path, a),
        other => panic!("expected Changed, got {other:?}"),
    }
    assert!(objects_in(&v).is_empty(), "temp objects are removed");
    assert_eq!(v.stats().entries, 0);

    // Truncated once mid-copy: the copy is retried on the new version.
    let b = fx.p("shrinking");
    fs::write(&b, data(3 << 20, 8)).unwrap();
    let b2 = b.clone();
    let mut once = true;
    v.copy_hook = Some(Box::new(move |_| {
        if std::mem::take(&mut once) {
            OpenOptions::new()
                .write(true)
                .open(&b2)
                .unwrap()
                .set_len(10)
                .unwrap();
        }
    }));
    let p = v.preserve_copy(ro(&b).as_fd(), &b, A).unwrap();
    assert_eq!(p.bytes, 10);
    v.copy_hook = None;

    // Deleted before it could be linked: Gone. Its content can still be copied.
    let c = fx.p("deleted");
    fs::write(&c, b"still readable").unwrap();
    let f = ro(&c);
    fs::remove_file(&c).unwrap();
    assert!(matches!(
        v.preserve_link(f.as_fd(), &c, A),
        Err(VaultError::Gone { .. })
    ));
    assert_eq!(v.preserve_copy(f.as_fd(), &c, A).unwrap().bytes, 14);

    // Not a regular file.
    let fifo = fx.p("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    assert!(matches!(
        v.preserve_copy(f.as_fd(), &fifo, A),
        Err(VaultError::NotRegular { .. })
    ));
}

#[test]
fn too_large_on_a_filesystem_without_reflink() {
    let fx = Fx::new();
    let mut v = fx.vault_with(Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    });
    let a = fx.p("big.iso");
    fs::write(&a, data(2000, 9)).unwrap();
    let e = v.preserve_copy(ro(&a).as_fd(), &a, A).unwrap_err();
    assert!(matches!(e, VaultError::TooLarge { size: 2000, .. }), "{e}");
    // A hard link is still possible.
    assert_eq!(
        v.preserve_link(ro(&a).as_fd(), &a, A).unwrap().method,
        Method::Link
    );
}

#[test]
fn each_version_once_owners_recorded_and_oldest_restored() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("doc");
    let v1 = data(3000, 11);
    fs::write(&a, &v1).unwrap();
    let f = ro(&a);
    let p1 = v.preserve_copy(f.as_fd(), &a, A).unwrap();
    let ver = FileVersion::of(f.as_fd()).unwrap();
    assert!(v.has_current_for(&ver, A));
    assert!(!v.has_current_for(&ver, B));
    let p2 = v.preserve_copy(f.as_fd(), &a, B).unwrap();
    assert!(p2.reused && p2.id == p1.id);
    assert!(v.has_current_for(&ver, B));
    // A read-open of a version held as a copy needs no link.
    assert!(v.preserve_link(f.as_fd(), &a, B).unwrap().reused);
    drop(f);
    assert_eq!(v.stats().entries, 1);

    // B damages it, then its next write-open preserves the damaged version too:
    // restore uses the oldest (v1).
    overwrite(&a, &data(3000, 12));
    v.preserve_copy(ro(&a).as_fd(), &a, B).unwrap();
    overwrite(&a, &data(3000, 13));
    std::thread::sleep(Duration::from_millis(5));
    let rep = restore(&mut v, &plan("i9", &[B], &[], &[]));
    assert_eq!(rep.files_restored, 1, "{rep:?}");
    assert_eq!(fs::read(&a).unwrap(), v1);
}

#[test]
fn link_entry_written_in_place_is_reported_lost() {
    let fx = Fx::new();
    let mut v = fx.vault();
    let a = fx.p("db.sqlite");
    fs::write(&a, data(8000, 14)).unwrap();
    v.preserve_link(ro(&a).as_fd(), &a, A).unwrap();
    overwrite(&a, &data(4000, 15)); // in place, no copy taken
    std::thread::sleep(Duration::from_millis(5));
    let rep = restore(&mut v, &plan("i10", &[A], &[], &[]));
    assert_eq!((rep.files_lost, rep.files_restored), (1, 0), "{rep:?}");
    assert!(rep.details[0].1.contains("modified in place"), "{rep:?}");
}

/// Reflink on btrfs (root only: loop mount). ext4 uses Method::Copy (tested above).
#[test]
fn reflink_on_btrfs() {
    if !is_root() {
        eprintln!("skipping reflink_on_btrfs: needs root to loop-mount a btrfs image");
        return;
    }
    use ward_lab::scratchfs::{FsKind, ScratchFs};
    let fs_ = match ScratchFs::create(FsKind::Btrfs, 256) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("skipping reflink_on_btrfs: {e}");
            return;
        }
    };
    let root = fs_.path().join("data");
    fs::create_dir(&root).unwrap();
    let mut v = Vault::open(&fs_.path().join(".ward-vault"), Limits::default()).unwrap();
    assert!(v.reflink_supported());
    let a = root.join("big.bin");
    let orig = data(4 << 20, 16);
    fs::write(&a, &orig).unwrap();
    let p = v.preserve_copy(ro(&a).as_fd(), &a, A).unwrap();
    assert_eq!(p.method, Method::Reflink);
    overwrite(&a, &data(4 << 20, 17));
    std::thread::sleep(Duration::from_millis(5));
    let rep = restore(&mut v, &plan("r1", &[A], &[], &[]));
    assert_eq!(rep.files_restored, 1, "{rep:?}");
    assert_eq!(fs::read(&a).unwrap(), orig);
    assert_eq!(v.stats().reflinks, 1);
    drop(v);
}

/// One user at a time: a second open (e.g. `ward restore` while `ward protect` runs) is
/// refused with advice, and works again once the first is closed.
#[test]
fn a_vault_has_one_user_at_a_time() {
    let fx = Fx::new();
    let v = fx.vault();
    match Vault::open(v.dir(), Limits::default()) {
        Err(VaultError::BadVaultDir { detail, .. }) => {
            assert!(detail.contains("in use"), "{detail}")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("second open succeeded"),
    }
    let dir = v.dir().to_path_buf();
    drop(v);
    Vault::open(&dir, Limits::default()).expect("reopens once closed");
}

/// The vault is moved to the agent's preservation worker thread.
#[test]
fn vault_is_send() {
    fn send<T: Send>() {}
    send::<Vault>();
}

/// Filesystem full mid-copy (root only: a 4 MiB tmpfs): NoSpace, no temp object left,
/// and the vault keeps working.
#[test]
fn filesystem_full_is_reported_and_cleaned_up() {
    if !is_root() {
        eprintln!("skipping filesystem_full_is_reported_and_cleaned_up: needs root to mount tmpfs");
        return;
    }
    use ward_lab::scratchfs::{FsKind, ScratchFs};
    let fs_ = match ScratchFs::create(FsKind::Tmpfs, 4) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    let mut v = Vault::open(
        &fs_.path().join(".ward-vault"),
        Limits {
            max_bytes: 1 << 40,
            ..Limits::default()
        },
    )
    .unwrap();
    let a = fs_.path().join("big");
    fs::write(&a, data(2600 << 10, 40)).unwrap();
    let e = v.preserve_copy(ro(&a).as_fd(), &a, A).unwrap_err();
    assert!(matches!(e, VaultError::NoSpace { .. }), "{e}");
    assert!(e.to_string().contains("free space"), "{e}");
    assert!(objects_in(&v).is_empty());
    // A link needs no space for data.
    assert_eq!(
        v.preserve_link(ro(&a).as_fd(), &a, A).unwrap().method,
        Method::Link
    );
    drop(v);
}

#[test]
fn reserve_is_made_at_open_capped_and_off_at_zero() {
    let fx = Fx::new();
    let v = fx.vault_with(Limits {
        reserve_bytes: 4 << 20,
        ..Limits::default()
    });
    let r = v.reserve();
    assert_eq!(r.target, 4 << 20, "{r:?}");
    assert_eq!(r.held, 4 << 20, "{r:?}");
    let md = fs::metadata(fx.vault_dir.join("reserve")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o600);
    // Allocated, not sparse.
    assert!(md.blocks() * 512 >= 4 << 20, "{} blocks", md.blocks());
    drop(v);
    // Never more than 5 % of the filesystem.
    let v = fx.vault_with(Limits {
        reserve_bytes: u64::MAX / 2,
        ..Limits::default()
    });
    let sv = nix::sys::statvfs::statvfs(&fx.vault_dir).unwrap();
    let total = sv.blocks() as u64 * sv.fragment_size() as u64;
    assert_eq!(v.reserve().target, total / 20);
    drop(v);
    // 0 = off: the file of an earlier run is given back.
    let v = fx.vault();
    assert_eq!(v.reserve(), ReserveStatus::default());
    assert!(!fx.vault_dir.join("reserve").exists());
}

#[test]
fn a_full_filesystem_releases_the_reserve_and_the_copy_is_made() {
    let fx = Fx::new();
    let mut v = fx.vault_with(Limits {
        reserve_bytes: 8 << 20,
        ..Limits::default()
    });
    // "Full" while the reserve is whole: the first release makes room.
    v.full_hook = Some(Box::new(|r| r.held == r.target));
    let a = fx.p("a");
    fs::write(&a, data(3 << 20, 1)).unwrap();
    let p = v.preserve_copy(ro(&a).as_fd(), &a, A).unwrap();
    assert!(!p.reused);
    // Released what the copy needed (3 MiB + 1 MiB slack), kept the rest.
    assert_eq!(v.reserve().held, 4 << 20, "{:?}", v.reserve());
    overwrite(&a, b"encrypted");
    let obj = objects_in(&v);
    assert_eq!(obj.len(), 1);
    assert_eq!(
        fs::read(v.dir().join("objects").join(&obj[0])).unwrap(),
        data(3 << 20, 1)
    );

    // Full even after the first release: all of it goes, then the copy fits.
    v.full_hook = Some(Box::new(|r| r.held > 0));
    let b = fx.p("b");
    fs::write(&b, data(100, 2)).unwrap();
    v.preserve_copy(ro(&b).as_fd(), &b, A).unwrap();
    assert_eq!(v.reserve().held, 0);

    // Full with nothing left to release: the error says so.
    v.full_hook = Some(Box::new(|_| true));
    let c = fx.p("c");
    fs::write(&c, data(100, 3)).unwrap();
    let e = v.preserve_copy(ro(&c).as_fd(), &c, A).unwrap_err();
    assert!(e.is_no_space(), "{e}");

    // Space is back: the reserve grows to its target again.
    v.full_hook = None;
    assert_eq!(v.replenish_reserve().unwrap(), 8 << 20);
    assert_eq!(v.reserve().held, 8 << 20);
    assert_eq!(v.replenish_reserve().unwrap(), 0);
}

#[test]
fn no_space_is_recognised_in_every_form() {
    assert!(VaultError::NoSpace { dir: "/v".into() }.is_no_space());
    assert!(VaultError::io("/x", std::io::Error::from_raw_os_error(libc::ENOSPC)).is_no_space());
    assert!(VaultError::io("/x", std::io::Error::from_raw_os_error(libc::EDQUOT)).is_no_space());
    let full =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
    assert!(VaultError::Index(full).is_no_space());
    assert!(!VaultError::io("/x", std::io::Error::from_raw_os_error(libc::EIO)).is_no_space());
    assert!(!VaultError::TooLarge {
        path: "/x".into(),
        size: 2,
        max: 1
    }
    .is_no_space());
}

/// Root: a real full tmpfs. The reserve is released for the copy and for the restore,
/// and grows back once the filler is gone.
#[test]
fn a_really_full_filesystem_keeps_copies_and_restores_through_the_reserve() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    use ward_lab::scratchfs::{FsKind, ScratchFs};
    let fs_ = match ScratchFs::create(FsKind::Tmpfs, 40) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    let mut v = Vault::open(
        &fs_.path().join(".ward-vault"),
        Limits {
            reserve_bytes: 64 << 20,
            ..Limits::default()
        },
    )
    .unwrap();
    assert_eq!(v.reserve().held, 2 << 20, "{:?}", v.reserve());
    let a = fs_.path().join("a");
    fs::write(&a, data(300 << 10, 7)).unwrap();
    // Fill the filesystem.
    let fill = fs_.path().join("fill");
    {
        let mut f = File::create(&fill).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write(&chunk).is_ok_and(|n| n > 0) {}
    }
    let p = v.preserve_copy(ro(&a).as_fd(), &a, A).unwrap();
    assert_eq!(p.method, Method::Copy);
    assert!(v.reserve().held < 2 << 20);
    let left = v.reserve().held;
    // In place, same length: fits on the full filesystem.
    let mut f = OpenOptions::new().write(true).open(&a).unwrap();
    f.write_all(&data(300 << 10, 8)).unwrap();
    drop(f);
    // Nothing grows back while the filesystem is full.
    assert_eq!(v.replenish_reserve().unwrap(), 0);
    let plan = RestorePlan {
        incident: "inc-full".into(),
        owners: vec![A],
        renames: vec![],
        created: vec![],
        contained_at: SystemTime::now(),
    };
    let rep = v.restore(&plan, &mut |_, _| {}).unwrap();
    assert_eq!((rep.files_restored, rep.files_lost), (1, 0), "{rep:?}");
    assert_eq!(fs::read(&a).unwrap(), data(300 << 10, 7));
    assert!(v.reserve().held <= left);
    fs::remove_file(&fill).unwrap();
    assert!(v.replenish_reserve().unwrap() > 0);
    assert_eq!(v.reserve().held, 2 << 20);
}
