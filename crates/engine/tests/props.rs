//! Property tests: the sniffer and the engine are total on arbitrary input, and benign
//! workloads never produce a verdict.
mod common;
use common::*;
use proptest::prelude::*;
use ward_engine::sniff::sniff;
use ward_engine::*;

fn valid_files() -> Vec<Vec<u8>> {
    vec![
        text(1, 9000),
        gzip(&text(2, 9000)),
        zlib(&text(3, 500)),
        docx(4),
        pdf(5),
        png(6, 60, 40),
        dicom(7),
        sqlite_text(8, 3),
        tar(&[("a", text(9, 700)), ("b", random(9, 3000))]),
        openssl_enc(10, 100),
        gpg_msg(11, 100),
        b"-----BEGIN PGP MESSAGE-----\n\nhQEMA".to_vec(),
        b"age-encryption.org/v1\n-> X25519 abc\n".to_vec(),
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec(),
        b"PACK\0\0\0\x02\0\0\0\x01".to_vec(),
        b"7z\xbc\xaf\x27\x1c\0\x04".to_vec(),
        b"BZh91AY&SY".to_vec(),
        b"GIF89a\x10\0\x10\0".to_vec(),
        b"\xff\xd8\xff\xe0\0\x10JFIF\0".to_vec(),
        b"\xfd7zXZ\0\0\x04".to_vec(),
        b"\x28\xb5\x2f\xfd\x24\0".to_vec(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(i, v)| Mutation::Splice(i, v)),
    ]
}

fn apply(mut d: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = d.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if !d.is_empty() {
                    let i = i % n;
                    d[i] ^= b;
                }
            }
            Mutation::Truncate(i) => d.truncate(i % (n + 1)),
            Mutation::Insert(i, v) => {
                let i = i % (d.len() + 1);
                d.splice(i..i, v.iter().copied());
            }
            Mutation::Splice(i, v) => {
                let i = i % (d.len() + 1);
                let end = (i + v.len()).min(d.len());
                d.splice(i..end, v.iter().copied());
            }
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sniff_is_total_on_random_bytes(d in prop::collection::vec(any::<u8>(), 0..2000), size in any::<u64>()) {
        let _ = sniff(&d, size);
        let _ = sniff(&d, d.len() as u64);
        let _ = Profile::of(&sample_of(&d));
    }

    #[test]
    fn sniff_is_total_on_mutated_valid_files(which in 0usize..21, ms in prop::collection::vec(mutation(), 0..6), size_delta in -10_000i64..10_000) {
        let files = valid_files();
        let d = apply(files[which % files.len()].clone(), &ms);
        let head = &d[..d.len().min(8192)];
        let _ = sniff(head, d.len() as u64);
        let _ = sniff(head, (d.len() as i64 + size_delta).max(0) as u64);
        let _ = Profile::of(&sample_of(&d));
    }
}

// ----------------------------------------------------------------------------------------
// Random event sequences.

fn pid(i: u8) -> ProcId {
    ProcId {
        pid: 100 + (i % 8) as u32,
        start: (i % 8) as u64,
    }
}

fn fkey(i: u8) -> FileKey {
    FileKey {
        dev: 1,
        ino: (i % 16) as u64,
    }
}

fn fpath(i: u8) -> String {
    format!(
        "/d{}/f{}.{}",
        i % 3,
        i % 16,
        ["txt", "docx", "locked", "gz", "1"][(i % 5) as usize]
    )
}

fn content(kind: u8, seed: u8) -> Vec<u8> {
    let s = seed as u64;
    match kind % 8 {
        0 => Vec::new(),
        1 => text(s, 100 + 300 * s as usize),
        2 => random(s, 50 + 700 * s as usize),
        3 => gzip(&text(s, 2000)),
        4 => openssl_enc(s, 3000),
        5 => base64(&random(s, 5000)),
        6 => docx(s),
        _ => random(s, 30),
    }
}

#[derive(Debug, Clone)]
enum RawOp {
    Process(u8, Option<u8>, bool),
    Exit(u8),
    Open(u8, u8, u8, u8, Option<bool>),
    Close(u8, u8, u8, u8),
    Create(u8, u8, bool),
    Delete(u8, u8, bool),
    Rename(u8, u8, u8, bool),
    Connect(u8, u8, bool),
    Modify(u8, u8, u8, u8),
}

fn raw_op() -> impl Strategy<Value = RawOp> {
    prop_oneof![
        (any::<u8>(), any::<Option<u8>>(), any::<bool>())
            .prop_map(|(a, b, c)| RawOp::Process(a, b, c)),
        any::<u8>().prop_map(RawOp::Exit),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<Option<bool>>()
        )
            .prop_map(|(a, b, c, d, e)| RawOp::Open(a, b, c, d, e)),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| RawOp::Close(a, b, c, d)),
        (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, c)| RawOp::Create(a, b, c)),
        (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, c)| RawOp::Delete(a, b, c)),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(a, b, c, d)| RawOp::Rename(a, b, c, d)),
        (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, c)| RawOp::Connect(a, b, c)),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| RawOp::Modify(a, b, c, d)),
    ]
}

fn to_event(op: &RawOp, time: u64) -> Event {
    let (proc, op) = match op.clone() {
        RawOp::Process(p, parent, boundary) => (
            pid(p),
            Op::Process(ProcInfo {
                id: pid(p),
                parent: parent.map(pid),
                exe: "x".into(),
                cmdline: vec![],
                uid: 0,
                boundary,
            }),
        ),
        RawOp::Exit(p) => (pid(p), Op::Exit),
        RawOp::Open(p, f, k, s, w) => (
            pid(p),
            Op::Open {
                file: fkey(f),
                path: fpath(f),
                sample: sample_of(&content(k, s % 40)),
                write: w,
            },
        ),
        RawOp::Close(p, f, k, s) => (
            pid(p),
            Op::CloseWrite {
                file: fkey(f),
                path: fpath(f.wrapping_add(s % 2)),
                sample: sample_of(&content(k, s % 40)),
            },
        ),
        RawOp::Create(p, f, key) => (
            pid(p),
            Op::Create {
                path: fpath(f),
                file: key.then(|| fkey(f)),
            },
        ),
        RawOp::Delete(p, f, key) => (
            pid(p),
            Op::Delete {
                path: fpath(f),
                file: key.then(|| fkey(f)),
            },
        ),
        RawOp::Rename(p, a, b, key) => (
            pid(p),
            Op::Rename {
                from: fpath(a),
                to: format!("{}{}", fpath(b), if b % 3 == 0 { ".crypt" } else { "" }),
                file: key.then(|| fkey(a)),
            },
        ),
        RawOp::Modify(p, f, k, s) => (
            pid(p),
            Op::Modify {
                file: fkey(f),
                path: fpath(f),
                sample: sample_of(&content(k, s % 40)),
            },
        ),
        RawOp::Connect(p, a, smb) => (
            pid(p),
            Op::Connect {
                addr: format!("10.0.{}.{}", a % 4, a),
                port: if smb { 445 } else { 80 },
            },
        ),
    };
    Event { time, proc, op }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn engine_is_total_on_random_sequences(
        ops in prop::collection::vec((raw_op(), 0u64..5_000_000_000_000), 1..120),
        threshold in 0usize..4,
        max_files in 0usize..20,
    ) {
        let cfg = Config {
            damage_threshold: threshold,
            decoys: vec![fpath(1), fpath(2)],
            max_files,
            max_dead: 2,
            dead_ttl_ns: 1_000_000,
            ..Config::default()
        };
        let mut e = Engine::new(cfg);
        for (op, t) in &ops {
            let ev = to_event(op, *t);
            if let Some(v) = e.observe(&ev) {
                prop_assert!(v.members.contains(&v.root));
                prop_assert!(e.is_convicted(v.root));
            }
            let _ = e.lineage(ev.proc);
            let _ = e.is_convicted(ev.proc);
        }
        let s = e.stats();
        prop_assert_eq!(s.events, ops.len() as u64);
        prop_assert!(s.files_tracked <= max_files.max(1) + 64);
    }
}

// ----------------------------------------------------------------------------------------
// Benign-only workloads.

#[derive(Debug, Clone)]
enum Benign {
    /// A new file with valid-format (or random) content.
    CreateNew(u8, u8, u8),
    Read(u8, u8),
    /// rm, without any encrypted output.
    Delete(u8, u8),
    /// cp: read, write a new file with the same content.
    Copy(u8, u8),
    /// gzip: read, write valid gzip, delete.
    Compress(u8, u8),
    /// Rename to a benign name.
    Rotate(u8, u8),
    /// Rewrite in place keeping a valid format.
    Rewrite(u8, u8, u8),
    Spawn(u8),
}

fn benign() -> impl Strategy<Value = Benign> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| Benign::CreateNew(a, b, c)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Benign::Read(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Benign::Delete(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Benign::Copy(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Benign::Compress(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Benign::Rotate(a, b)),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| Benign::Rewrite(a, b, c)),
        any::<u8>().prop_map(Benign::Spawn),
    ]
}

fn valid_content(kind: u8, seed: u64) -> Vec<u8> {
    match kind % 7 {
        0 => text(seed, 200 + 97 * seed as usize % 20_000),
        1 => csv(seed, 3000),
        2 => docx(seed),
        3 => png(seed, 40, 30),
        4 => dicom(seed),
        5 => gzip(&text(seed, 5000)),
        _ => pdf(seed),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn benign_workloads_never_convict(ops in prop::collection::vec(benign(), 1..150)) {
        let cfg = Config {
            decoys: vec!["/srv/d0/f0".into(), "/srv/d1/f1".into()],
            ..Config::default()
        };
        let mut sim = Sim::with(cfg);
        for i in 0..12u64 {
            sim.put(&format!("/srv/d{}/f{i}", i % 3), valid_content(i as u8, i));
        }
        let sh = sim.login_shell();
        // Random content comes from another session's `dd`.
        let other = sim.login_shell();
        let dd = sim.spawn(other, "/bin/dd");
        let mut procs = vec![sh];
        let mut n = 0u64;
        for op in ops {
            n += 1;
            let files: Vec<String> = sim.fs.keys().cloned().collect();
            let pick = |i: u8| files.get(i as usize % files.len().max(1)).cloned();
            let proc = |i: u8| procs[i as usize % procs.len()];
            match op {
                Benign::Spawn(p) => {
                    let parent = proc(p);
                    let c = sim.spawn(parent, "/usr/bin/tool");
                    procs.push(c);
                }
                Benign::CreateNew(p, k, d) => {
                    // Random content comes from a writer that reads nothing (`dd` from
                    // /dev/urandom): a process that reads user files and writes new random
                    // files while its siblings delete those files is the funnel itself.
                    let (w, data) = if k % 9 == 8 { (dd, random(n, 4000)) } else { (proc(p), valid_content(k, n)) };
                    sim.write_new(w, &format!("/srv/d{}/new{n}", d % 3), data);
                }
                Benign::Read(p, f) => {
                    if let Some(f) = pick(f) { sim.read(proc(p), &f); }
                }
                Benign::Delete(p, f) => {
                    if let Some(f) = pick(f) { sim.delete(proc(p), &f); }
                }
                Benign::Copy(p, f) => {
                    if let Some(f) = pick(f) {
                        let pr = proc(p);
                        sim.read(pr, &f);
                        let d = sim.content(&f);
                        sim.write_new(pr, &format!("{f}.copy{n}"), d);
                    }
                }
                Benign::Compress(p, f) => {
                    if let Some(f) = pick(f) {
                        let pr = proc(p);
                        sim.read(pr, &f);
                        let d = gzip(&sim.content(&f));
                        sim.write_new(pr, &format!("{f}.{n}.gz"), d);
                        sim.delete(pr, &f);
                    }
                }
                Benign::Rotate(p, f) => {
                    if let Some(f) = pick(f) {
                        let to = format!("{f}.{}", ["1", "bak", "old", "gz"][(n % 4) as usize]);
                        if !sim.fs.contains_key(&to) { sim.rename(proc(p), &f, &to); }
                    }
                }
                Benign::Rewrite(p, f, k) => {
                    if let Some(f) = pick(f) {
                        let old = sim.content(&f);
                        let was_random = Profile::of(&sample_of(&old)).encrypted_looking();
                        let new = if was_random { random(n, 3000) } else { valid_content(k, n + 1000) };
                        sim.overwrite(proc(p), &f, new);
                    }
                }
            }
        }
        prop_assert!(sim.verdicts.is_empty(), "{:#?}", sim.verdicts);
    }
}

#[test]
fn events_roundtrip_through_json() {
    let mut sim = Sim::new();
    sim.put("/a.txt", text(1, 3000));
    let x = sim.spawn(sim.sshd, "/tmp/x");
    sim.overwrite(x, "/a.txt", random(1, 3000));
    for ev in &sim.events {
        let j = serde_json::to_string(ev).unwrap();
        let back: Event = serde_json::from_str(&j).unwrap();
        assert_eq!(&back, ev);
    }
    // Replaying a recorded trace gives identical verdicts.
    let mut a = Sim::new();
    let files: Vec<String> = (0..5).map(|i| format!("/f{i}")).collect();
    for (i, f) in files.iter().enumerate() {
        a.put(f, csv(i as u64, 9000));
    }
    let x = a.spawn(a.sshd, "/tmp/x");
    for (i, f) in files.iter().enumerate() {
        a.overwrite(x, f, random(i as u64, 9000));
    }
    let mut e = Engine::new(Config::default());
    let replay: Vec<Verdict> = a.events.iter().filter_map(|ev| e.observe(ev)).collect();
    assert_eq!(replay, a.verdicts);
}
