//! Throughput smoke test. Run with
//! `cargo test -p ward-engine --release --test perf -- --ignored --nocapture`.
mod common;
use common::*;
use std::time::Instant;
use ward_engine::*;

#[test]
#[ignore]
fn throughput() {
    let mut e = Engine::new(Config::default());
    let n = 2_000_000u64;
    let mut evs = Vec::with_capacity(n as usize);
    let shell = ProcId { pid: 10, start: 1 };
    evs.push(Event {
        time: 1,
        proc: shell,
        op: Op::Process(ProcInfo {
            id: shell,
            parent: None,
            exe: "/bin/sh".into(),
            cmdline: vec![],
            uid: 0,
            boundary: false,
        }),
    });
    for i in 0..n {
        let p = ProcId {
            pid: 100 + (i / 4 % 30_000) as u32,
            start: i / 4,
        };
        let t = 10 + i * 1000;
        let op = match i % 4 {
            0 => Op::Process(ProcInfo {
                id: p,
                parent: Some(shell),
                exe: "/bin/touch".into(),
                cmdline: vec!["touch".into()],
                uid: 0,
                boundary: false,
            }),
            1 => Op::Create {
                path: format!("/d/{}/f{i}", i % 100),
                file: Some(FileKey { dev: 1, ino: i }),
            },
            2 => Op::Delete {
                path: format!("/d/{}/f{}", i % 100, i - 1),
                file: Some(FileKey { dev: 1, ino: i - 1 }),
            },
            _ => Op::Exit,
        };
        evs.push(Event {
            time: t,
            proc: p,
            op,
        });
    }
    let t0 = Instant::now();
    for ev in &evs {
        e.observe(ev);
    }
    let dt = t0.elapsed();
    eprintln!(
        "process/create/delete/exit: {:.2} M events/s ({:?})",
        evs.len() as f64 / dt.as_secs_f64() / 1e6,
        e.stats()
    );

    // Content events: open + close_write of 16 KiB samples.
    let data = text(1, 100_000);
    let s = sample_of(&data);
    let p = ProcId { pid: 7, start: 7 };
    let m = 20_000u64;
    let t0 = Instant::now();
    for i in 0..m {
        let k = FileKey { dev: 2, ino: i };
        let path = format!("/c/f{i}");
        e.observe(&Event {
            time: 1,
            proc: p,
            op: Op::Open {
                file: k,
                path: path.clone(),
                sample: s.clone(),
                write: Some(true),
            },
        });
        e.observe(&Event {
            time: 2,
            proc: p,
            op: Op::CloseWrite {
                file: k,
                path,
                sample: s.clone(),
            },
        });
    }
    let dt = t0.elapsed();
    eprintln!(
        "content events (16 KiB samples): {:.0} events/s",
        2.0 * m as f64 / dt.as_secs_f64()
    );

    // Many tracked files: memory bound.
    let mut e = Engine::new(Config {
        max_files: 100_000,
        ..Config::default()
    });
    let s = sample_of(&text(2, 3000));
    for i in 0..300_000u64 {
        e.observe(&Event {
            time: i,
            proc: p,
            op: Op::Open {
                file: FileKey { dev: 3, ino: i },
                path: format!("/m/f{i}"),
                sample: s.clone(),
                write: Some(false),
            },
        });
    }
    let st = e.stats();
    eprintln!("{st:?}");
    assert!(st.processes_tracked <= 100_000 + 2);
    assert!(st.files_tracked <= 100_000 + 64);
}

/// Content events by kind of content (the verifying decoders cost more on some).
/// `cargo test -p ward-engine --release --test perf -- --ignored --nocapture content_kinds`
#[test]
#[ignore]
fn content_kinds() {
    let kinds: Vec<(&str, Vec<u8>)> = vec![
        ("text", text(1, 100_000)),
        ("random", random(2, 100_000)),
        ("gzip", gzip(&text(3, 300_000))),
        ("docx", docx(4)),
        ("png", png(5, 300, 200)),
        ("dicom", dicom(6)),
        ("base64", base64(&random(7, 60_000))),
    ];
    for (name, data) in kinds {
        let s = sample_of(&data);
        let mut e = Engine::new(Config::default());
        let p = ProcId { pid: 7, start: 7 };
        let m = 5_000u64;
        let t0 = Instant::now();
        for i in 0..m {
            let k = FileKey { dev: 2, ino: i };
            e.observe(&Event {
                time: i,
                proc: p,
                op: Op::CloseWrite {
                    file: k,
                    path: format!("/c/f{i}"),
                    sample: s.clone(),
                },
            });
        }
        let dt = t0.elapsed();
        eprintln!(
            "close_write {name:>7}: {:>8.0} events/s ({:.1} us each)",
            m as f64 / dt.as_secs_f64(),
            dt.as_secs_f64() * 1e6 / m as f64
        );
    }
}

/// The deflate decoder alone.
#[test]
#[ignore]
fn inflate_speed() {
    let g = gzip(&text(3, 300_000));
    let m = 2000;
    let t0 = Instant::now();
    let mut n = 0;
    for _ in 0..m {
        n += ward_engine::decode::gzip_prefix(&g).map_or(0, |r| r.produced);
    }
    let dt = t0.elapsed();
    eprintln!(
        "gzip_prefix: {:.1} us per call, {} bytes out",
        dt.as_secs_f64() * 1e6 / m as f64,
        n / m
    );
}
