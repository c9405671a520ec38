//! Written blocks (`Op::Written`): the sensor reports the old and new bytes of the blocks a
//! writer changed, so striped encryption between the sampled head, middle and tail blocks
//! (4 KiB of every 64 KiB from 64 KiB) is judged like the stripes the samples do see.
mod common;
use common::*;
use ward_engine::*;

const STRIPE: usize = 4096;
const STRIDE: usize = 65536;
/// Blocks per open the sensor reports at most.
const BUDGET: usize = 8;

/// `data` with 4 KiB of random bytes every 64 KiB from 64 KiB, and the written blocks (at
/// most [`BUDGET`], like the sensor).
fn stripe(seed: u64, data: &[u8]) -> (Vec<u8>, Vec<WrittenBlock>) {
    let mut out = data.to_vec();
    let mut blocks = Vec::new();
    let mut o = STRIDE;
    while o < data.len() {
        let end = (o + STRIPE).min(data.len());
        out[o..end].copy_from_slice(&random(seed ^ o as u64, end - o));
        if blocks.len() < BUDGET {
            blocks.push(WrittenBlock {
                offset: o as u64,
                before: data[o..end].to_vec(),
                after: out[o..end].to_vec(),
            });
        }
        o += STRIDE;
    }
    (out, blocks)
}

/// Open for writing, report the written blocks, close: the sensor's order.
fn write_blocks(
    sim: &mut Sim,
    p: ProcId,
    path: &str,
    data: Vec<u8>,
    blocks: Vec<WrittenBlock>,
) -> Option<Verdict> {
    let mut v = sim.open_write(p, path);
    let k = sim.key(path);
    if !blocks.is_empty() {
        v = v.or(sim.emit(
            p,
            Op::Written {
                file: k,
                path: path.to_string(),
                blocks,
            },
        ));
    }
    v.or(sim.close_write(p, path, data))
}

fn big_text(seed: u64) -> Vec<u8> {
    text(seed, 300_000)
}

fn big_docx(seed: u64) -> Vec<u8> {
    // A document whose parts are stored as written by office suites: deflated XML, and an
    // uncompressed (stored-like) part large enough to span several stripes.
    let body = format!(
        "<?xml version=\"1.0\"?><w:document><w:body><w:p>{}</w:p></w:body></w:document>",
        String::from_utf8(text(seed, 400_000)).unwrap()
    );
    zip(&[
        (
            "[Content_Types].xml",
            b"<?xml version=\"1.0\"?><Types><Default Extension=\"xml\"/></Types>".to_vec(),
        ),
        ("word/document.xml", body.into_bytes()),
    ])
}

fn big_pdf(seed: u64) -> Vec<u8> {
    let mut v = pdf(seed);
    // More uncompressed page objects before the trailer.
    let tail = v.split_off(v.len() - 30);
    for i in 0..300 {
        v.extend_from_slice(format!("{} 0 obj\n<< /Contents [(", i + 200).as_bytes());
        v.extend_from_slice(&text(seed + 5000 + i, 900));
        v.extend_from_slice(b")] >>\nendobj\n");
    }
    v.extend_from_slice(&tail);
    v
}

fn big_sqlite(seed: u64) -> Vec<u8> {
    sqlite_text(seed, 80)
}

/// The striped attack on files of one kind: a verdict by the threshold (the third file).
fn striped_attack(make: fn(u64) -> Vec<u8>, ext: &str) {
    let mut sim = Sim::new();
    let files: Vec<String> = (0..8)
        .map(|i| {
            let p = format!("/srv/share/d{}/f{i}.{ext}", i % 3);
            sim.put(&p, make(i));
            p
        })
        .collect();
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/usr/bin/python3");
    let mut at = None;
    for (i, f) in files.iter().enumerate() {
        let (new, blocks) = stripe(i as u64 + 100, &sim.content(f));
        assert!(
            !blocks.is_empty(),
            "{f}: the file is too small for a stripe"
        );
        if write_blocks(&mut sim, x, f, new, blocks).is_some() {
            at = Some(i + 1);
            break;
        }
    }
    assert_eq!(at, Some(3), "{ext}: verdict at the threshold");
    let v = &sim.verdicts[0];
    assert_eq!(v.root, x);
    assert!(v.indicators.contains(&Indicator::PartialEncryption));
}

#[test]
fn striped_text_is_convicted() {
    striped_attack(big_text, "txt");
}

#[test]
fn striped_csv_is_convicted() {
    striped_attack(|s| csv(s, 300_000), "csv");
}

#[test]
fn striped_pdf_is_convicted() {
    striped_attack(big_pdf, "pdf");
}

#[test]
fn striped_sqlite_is_convicted() {
    striped_attack(big_sqlite, "db");
}

/// Deflated parts of a zip are random-looking before the write: stripes over them are not
/// seen by this rule (the per-block statistics cannot tell deflate from ciphertext). A
/// docx whose stripes hit only deflated data is left to the other rules.
#[test]
fn striped_docx_over_deflate_is_not_a_flip() {
    let d = big_docx(1);
    let (new, blocks) = stripe(7, &d);
    let mut sim = Sim::new();
    sim.put("/srv/share/a.docx", d);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/usr/bin/python3");
    write_blocks(&mut sim, x, "/srv/share/a.docx", new, blocks);
    sim.assert_no_verdict();
}

/// Without the written blocks (a sensor without pre-content events), the same attack is
/// not seen: the stripes miss every sampled block.
#[test]
fn without_written_blocks_the_stripes_are_missed() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/usr/bin/python3");
    for i in 0..8u64 {
        let p = format!("/srv/share/f{i}.txt");
        sim.put(&p, big_text(i));
        let (new, _) = stripe(i, &sim.content(&p));
        write_blocks(&mut sim, x, &p, new, Vec::new());
    }
    sim.assert_no_verdict();
}

/// A database that rewrites random pages inside files already full of random data, writes
/// into zero-filled free pages, and appends to its logs: no verdict.
#[test]
fn database_rewrites_and_log_appends_are_quiet() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let db = sim.spawn(sh, "/usr/sbin/mysqld");
    for i in 0..20u64 {
        // Random blobs in every page.
        let p = format!("/var/lib/db/t{i}.db");
        let data = sqlite(80, |pg| random(i * 1000 + pg as u64, 4000));
        sim.put(&p, data.clone());
        let mut new = data.clone();
        let mut blocks = Vec::new();
        for j in 0..BUDGET {
            let o = 4096 * (3 + 9 * j);
            let page = random(i * 77 + j as u64, 4096);
            new[o..o + 4096].copy_from_slice(&page);
            blocks.push(WrittenBlock {
                offset: o as u64,
                before: data[o..o + 4096].to_vec(),
                after: page,
            });
        }
        assert!(write_blocks(&mut sim, db, &p, new, blocks).is_none());
        // Preallocated (zero-filled) space filled with random pages.
        let p = format!("/var/lib/db/ibdata{i}");
        let data = {
            let mut d = sqlite_text(i, 4);
            d.resize(400_000, 0);
            d
        };
        sim.put(&p, data.clone());
        let mut new = data.clone();
        let mut blocks = Vec::new();
        for j in 0..BUDGET {
            let o = 65536 + 4096 * j;
            let page = random(i * 91 + j as u64, 4096);
            new[o..o + 4096].copy_from_slice(&page);
            blocks.push(WrittenBlock {
                offset: o as u64,
                before: data[o..o + 4096].to_vec(),
                after: page,
            });
        }
        assert!(write_blocks(&mut sim, db, &p, new, blocks).is_none());
        // Log appends: nothing before, text after.
        let p = format!("/var/log/db/l{i}.log");
        let data = text(i + 300, 200_000);
        sim.put(&p, data.clone());
        let more = text(i + 400, 8192);
        let mut new = data.clone();
        new.extend_from_slice(&more);
        let blocks = vec![
            WrittenBlock {
                offset: data.len() as u64 / 4096 * 4096,
                before: data[data.len() / 4096 * 4096..].to_vec(),
                after: new[data.len() / 4096 * 4096..data.len() / 4096 * 4096 + 4096].to_vec(),
            },
            WrittenBlock {
                offset: (data.len() as u64 / 4096 + 1) * 4096,
                before: Vec::new(),
                after: new[(data.len() / 4096 + 1) * 4096..].to_vec(),
            },
        ];
        assert!(write_blocks(&mut sim, db, &p, new, blocks).is_none());
    }
    sim.assert_no_verdict();
}

/// An editor that rewrites a paragraph in the middle of many text files: no verdict.
#[test]
fn text_edits_in_the_middle_are_quiet() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let ed = sim.spawn(sh, "/usr/bin/sed");
    for i in 0..20u64 {
        let p = format!("/home/u/notes/n{i}.txt");
        let data = big_text(i);
        sim.put(&p, data.clone());
        let mut new = data.clone();
        let o = 131_072 + 4096 * i as usize;
        new[o..o + 4096].copy_from_slice(&text(i + 999, 4096));
        let blocks = vec![WrittenBlock {
            offset: o as u64,
            before: data[o..o + 4096].to_vec(),
            after: new[o..o + 4096].to_vec(),
        }];
        assert!(write_blocks(&mut sim, ed, &p, new, blocks).is_none());
    }
    sim.assert_no_verdict();
}

/// Blocks of the writer's own new file are never damage; a mixed rewrite where random
/// pages are fewer than half of the judged blocks is not either.
#[test]
fn own_files_and_mostly_plain_rewrites_are_quiet() {
    let mut sim = Sim::new();
    let sh = sim.login_shell();
    let app = sim.spawn(sh, "/opt/app/bin/app");
    for i in 0..10u64 {
        let p = format!("/srv/app/data{i}.db");
        let data = big_sqlite(i);
        sim.put(&p, data.clone());
        let mut blocks = Vec::new();
        let mut new = data.clone();
        for j in 0..6usize {
            let o = 4096 * (5 + 10 * j);
            let page = if j == 0 {
                random(i + j as u64, 4096)
            } else {
                csv(i * 13 + j as u64, 4096)
            };
            new[o..o + 4096].copy_from_slice(&page);
            blocks.push(WrittenBlock {
                offset: o as u64,
                before: data[o..o + 4096].to_vec(),
                after: page,
            });
        }
        assert!(write_blocks(&mut sim, app, &p, new, blocks).is_none());
    }
    for i in 0..10u64 {
        let p = format!("/srv/app/new{i}.txt");
        sim.write_new(app, &p, big_text(i + 50));
        let (new, blocks) = stripe(i, &sim.content(&p));
        assert!(write_blocks(&mut sim, app, &p, new, blocks).is_none());
    }
    sim.assert_no_verdict();
}

#[test]
fn written_events_roundtrip_through_json() {
    let ev = Event {
        time: 5,
        proc: ProcId { pid: 7, start: 1 },
        op: Op::Written {
            file: FileKey { dev: 1, ino: 2 },
            path: "/a".into(),
            blocks: vec![WrittenBlock {
                offset: 65536,
                before: b"abc".to_vec(),
                after: vec![0, 255],
            }],
        },
    };
    let s = serde_json::to_string(&ev).unwrap();
    assert!(s.contains("\"op\":\"written\""), "{s}");
    assert!(s.contains("\"before\":\"616263\""), "{s}");
    assert_eq!(serde_json::from_str::<Event>(&s).unwrap(), ev);
}

/// A PACS tool re-encoding scans in place as Deflated Explicit VR Little Endian: every
/// block it writes goes from plain pixel data to a deflate stream (ciphertext-like), but
/// the file as a whole is a verified compressed format: compression, not encryption.
#[test]
fn dicom_reencoded_in_place_as_deflate_is_quiet() {
    use std::io::Write as _;
    const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
    let meta_end = |d: &[u8]| {
        let len = u32::from_le_bytes(d[140..144].try_into().unwrap()) as usize;
        144 + len
    };
    let mut sim = Sim::new();
    let files: Vec<String> = (0..6).map(|i| format!("/pacs/CT/s{i}.dcm")).collect();
    for (i, f) in files.iter().enumerate() {
        sim.put(
            f,
            dicom_with(i as u64, "1.2.840.10008.1.2.1", text(i as u64, 400_000)),
        );
    }
    let sh = sim.login_shell();
    let tool = sim.spawn(sh, "/usr/bin/python3");
    for (i, f) in files.iter().enumerate() {
        let old = sim.content(f);
        let shape = dicom_with(i as u64, DEFLATED, text(i as u64, 400_000));
        let m = meta_end(&shape);
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&old[meta_end(&old)..]).unwrap();
        let mut new = shape[..m].to_vec();
        new.extend_from_slice(&z.finish().unwrap());
        let blocks: Vec<WrittenBlock> = (1..=BUDGET)
            .map(|b| b * STRIDE / 16)
            .filter(|o| o + STRIPE <= new.len())
            .map(|o| WrittenBlock {
                offset: o as u64,
                before: old[o..o + STRIPE].to_vec(),
                after: new[o..o + STRIPE].to_vec(),
            })
            .collect();
        assert!(!blocks.is_empty());
        write_blocks(&mut sim, tool, f, new, blocks);
    }
    sim.assert_no_verdict();
}
