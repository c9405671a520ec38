//! Behaviour classes of issue 10, each an attack and its benign twin: weak ciphers (format
//! collapse), striped / partial encryption at any stride, header-preserving encryption of
//! compressed formats, and verifiable compression.
mod common;
use common::*;
use ward_engine::*;

type Gen = fn(u64) -> Vec<u8>;

fn formats() -> Vec<(&'static str, Gen)> {
    vec![
        ("txt", |s| text(s, 30_000)),
        ("csv", |s| csv(s, 24_000)),
        ("docx", docx),
        ("pdf", pdf),
        ("png", |s| png(s, 200, 150)),
        ("dcm", dicom),
        ("sqlite", |s| sqlite_text(s, 10)),
    ]
}

fn tree(sim: &mut Sim, n: usize, ext: &str, gen: Gen) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = format!("/srv/share/dept{}/file{i}.{ext}", i % 3);
            sim.put(&p, gen(i as u64 + 1));
            p
        })
        .collect()
}

/// Apply `transform` in place to each file in turn; returns the number of files touched
/// when the (single) verdict came, or None.
fn run(
    sim: &mut Sim,
    files: &[String],
    p: ProcId,
    transform: impl Fn(usize, &[u8]) -> Vec<u8>,
) -> Option<usize> {
    for (i, f) in files.iter().enumerate() {
        let new = transform(i, &sim.content(f));
        sim.overwrite(p, f, new);
        if !sim.verdicts.is_empty() {
            assert_eq!(sim.verdicts.len(), 1);
            return Some(i + 1);
        }
    }
    None
}

fn xor(data: &[u8], key: &[u8]) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % key.len()])
        .collect()
}

/// Encrypt (with random bytes) `len` bytes every `stride` bytes from `skip` on.
fn striped(data: &[u8], seed: u64, skip: usize, stride: usize, len: usize) -> Vec<u8> {
    let mut v = data.to_vec();
    let r = random(seed, data.len());
    let mut o = skip;
    while o < v.len() {
        let e = (o + len).min(v.len());
        v[o..e].copy_from_slice(&r[o..e]);
        o += stride;
    }
    v
}

// ---------------------------------------------------------------------------------------
// Short-key XOR and weak ciphers.

#[test]
fn short_key_xor_of_every_format_is_caught() {
    for key in [&[0x5a][..], &[0x13, 0x37], b"\x8f\x01\xa7\x44", b"secretK!"] {
        for (ext, gen) in formats() {
            let mut sim = Sim::new();
            let files = tree(&mut sim, 6, ext, gen);
            let sh = sim.login_shell();
            let x = sim.spawn(sh, "/tmp/xor");
            let at = run(&mut sim, &files, x, |_, d| xor(d, key));
            assert!(at.is_some_and(|n| n <= 3), "{ext} key {key:?}: {at:?}");
            assert!(sim.verdicts[0]
                .indicators
                .contains(&Indicator::FormatBroken));
        }
    }
}

#[test]
fn caesar_and_byte_substitution_are_caught() {
    for (ext, gen) in formats() {
        let mut sim = Sim::new();
        let files = tree(&mut sim, 6, ext, gen);
        let sh = sim.login_shell();
        let x = sim.spawn(sh, "/tmp/rot");
        // A fixed byte permutation (a "substitution cipher").
        let at = run(&mut sim, &files, x, |_, d| {
            d.iter()
                .map(|b| b.wrapping_mul(167).wrapping_add(13))
                .collect()
        });
        assert!(at.is_some_and(|n| n <= 3), "{ext}: {at:?}");
    }
}

#[test]
fn conversions_that_stay_valid_are_quiet() {
    let mut sim = Sim::new();
    let texts = tree(&mut sim, 6, "txt", |s| text(s, 8000));
    let pngs = tree(&mut sim, 6, "png", |s| png(s, 120, 90));
    let docs = tree(&mut sim, 6, "docx", docx);
    let sh = sim.login_shell();
    let conv = sim.spawn(sh, "/usr/bin/iconv");
    // Text to UTF-16 (with and without a byte-order mark) and back.
    for (i, f) in texts.iter().enumerate() {
        let d = sim.content(f);
        let mut u: Vec<u8> = if i % 2 == 0 { vec![0xff, 0xfe] } else { vec![] };
        for &b in &d {
            u.extend_from_slice(&[b, 0]);
        }
        sim.overwrite(conv, f, u);
    }
    // Images re-saved (another valid PNG), documents re-saved (another valid docx).
    let edit = sim.spawn(sh, "/usr/bin/soffice");
    for (i, f) in pngs.iter().enumerate() {
        sim.overwrite(edit, f, png(100 + i as u64, 130, 80));
    }
    for (i, f) in docs.iter().enumerate() {
        sim.overwrite(edit, f, docx(200 + i as u64));
    }
    sim.assert_no_verdict();
}

// ---------------------------------------------------------------------------------------
// Striped and partial encryption.

#[test]
fn striped_encryption_at_any_stride_is_caught() {
    // (skip, stride, len): every other 4 KiB, 1 KiB of every 16 KiB, only past the head.
    let patterns = [
        (0, 8192, 4096),
        (0, 16_384, 1024),
        (8192, 4096, 4096),
        (12_288, 4096, 2048),
        (256, 65_536, 65_536),
    ];
    for (skip, stride, len) in patterns {
        for (ext, gen) in [
            ("txt", (|s| text(s, 200_000)) as Gen),
            ("csv", |s| csv(s, 200_000)),
            ("dcm", dicom),
        ] {
            let mut sim = Sim::new();
            let files = tree(&mut sim, 6, ext, gen);
            let sh = sim.login_shell();
            let x = sim.spawn(sh, "/tmp/stripe");
            let at = run(&mut sim, &files, x, |i, d| {
                striped(d, i as u64, skip, stride, len)
            });
            // An encryption pattern that misses every sampled block cannot be seen by
            // sampling; these all hit at least one of head, middle or tail.
            assert!(
                at.is_some_and(|n| n <= 3),
                "{ext} skip {skip} stride {stride} len {len}: {at:?}"
            );
        }
    }
}

#[test]
fn zip_and_pdf_encrypted_past_the_head_lose_their_tail_structure() {
    for (ext, gen) in [("docx", docx as Gen), ("pdf", pdf)] {
        let mut sim = Sim::new();
        let files = tree(&mut sim, 6, ext, gen);
        let sh = sim.login_shell();
        let x = sim.spawn(sh, "/tmp/skiphead");
        let at = run(&mut sim, &files, x, |i, d| {
            striped(d, i as u64, 8192, 1 << 20, 1 << 20)
        });
        assert!(at.is_some_and(|n| n <= 3), "{ext}: {at:?}");
        assert!(sim.verdicts[0]
            .indicators
            .contains(&Indicator::PartialEncryption));
    }
}

#[test]
fn appending_and_editing_in_place_is_quiet() {
    let mut sim = Sim::new();
    let logs = tree(&mut sim, 8, "log", |s| text(s, 50_000));
    let dbs = tree(&mut sim, 4, "sqlite", |s| sqlite_text(s, 20));
    let sh = sim.login_shell();
    let app = sim.spawn(sh, "/usr/bin/app");
    for (i, f) in logs.iter().enumerate() {
        let mut d = sim.content(f);
        d.extend_from_slice(&text(50 + i as u64, 9000));
        sim.overwrite(app, f, d);
    }
    for (i, f) in dbs.iter().enumerate() {
        // A database whose rows now hold random blobs (tokens, thumbnails) in deep pages.
        let d = sqlite(20, |pg| {
            if pg > 10 {
                random(pg as u64 + i as u64, 4000)
            } else {
                csv(pg as u64, 4000)
            }
        });
        sim.overwrite(app, f, d);
    }
    sim.assert_no_verdict();
}

// ---------------------------------------------------------------------------------------
// Header-preserving encryption of compressed formats.

#[test]
fn header_preserving_encryption_of_compressed_formats_is_caught() {
    for keep in [16usize, 64, 600, 2048] {
        for (ext, gen) in [
            ("docx", docx as Gen),
            ("png", |s| png(s, 200, 150)),
            ("pdf", pdf),
            ("gz", |s| gzip(&text(s, 40_000))),
        ] {
            let mut sim = Sim::new();
            let files = tree(&mut sim, 6, ext, gen);
            let sh = sim.login_shell();
            let x = sim.spawn(sh, "/tmp/hp");
            let at = run(&mut sim, &files, x, |i, d| {
                let mut v = d[..keep.min(d.len())].to_vec();
                v.extend_from_slice(&random(i as u64, d.len().saturating_sub(keep)));
                v
            });
            assert!(at.is_some_and(|n| n <= 3), "{ext} keep {keep}: {at:?}");
        }
    }
}

#[test]
fn zip_entries_with_recomputed_headers_but_encrypted_data_are_caught() {
    // The attacker keeps every local header (names, sizes) and encrypts only the deflated
    // entry data: the walk of headers still succeeds, the deflate streams do not decode.
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "docx", docx);
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/zipcrypt");
    let at = run(&mut sim, &files, x, |i, d| {
        let mut v = d.to_vec();
        let mut p = 0usize;
        let r = random(i as u64, d.len());
        while v.get(p..p + 4) == Some(b"PK\x03\x04") {
            let csize = u32::from_le_bytes(v[p + 18..p + 22].try_into().unwrap()) as usize;
            let n = u16::from_le_bytes(v[p + 26..p + 28].try_into().unwrap()) as usize;
            let x = u16::from_le_bytes(v[p + 28..p + 30].try_into().unwrap()) as usize;
            let s = p + 30 + n + x;
            v[s..s + csize].copy_from_slice(&r[s..s + csize]);
            p = s + csize;
        }
        v
    });
    assert!(at.is_some_and(|n| n <= 3), "{at:?}");
}

// ---------------------------------------------------------------------------------------
// Verifiable compression.

/// An archiver re-encoding image bodies in place: the header kept, the rest replaced by a
/// zlib (or raw deflate, or gzip) stream of the original body.
#[test]
fn image_archiver_recompressing_bodies_in_place_is_quiet() {
    for keep in [132usize, 512, 1024, 2000] {
        for wrap in 0..3 {
            let mut sim = Sim::new();
            let dcm = tree(&mut sim, 6, "dcm", dicom);
            let pngs = tree(&mut sim, 6, "png", |s| png(s, 200, 150));
            let bins = tree(&mut sim, 6, "raw", |s| {
                let mut v = text(s, 700);
                v.extend_from_slice(&dicom(s)[300..]);
                v
            });
            let sh = sim.login_shell();
            let arch = sim.spawn(sh, "/opt/pacs/bin/archiver");
            for f in dcm.iter().chain(&pngs).chain(&bins) {
                let d = sim.content(f);
                let k = keep.min(d.len());
                let mut v = d[..k].to_vec();
                match wrap {
                    0 => v.extend_from_slice(&zlib(&d[k..])),
                    1 => v.extend_from_slice(&gzip(&d[k..])),
                    _ => v.extend_from_slice(&zlib(&d[k..])[2..]), // raw deflate
                }
                sim.overwrite(arch, f, v);
            }
            // Raw deflate after an arbitrary header is not recognised (no zlib or gzip
            // header to find), except for DICOM pixel data (known offset).
            if wrap == 2 {
                continue;
            }
            assert!(
                sim.verdicts.is_empty(),
                "keep {keep} wrap {wrap}: {:#?}",
                sim.verdicts
            );
        }
    }
}

#[test]
fn dicom_pixel_data_recompressed_as_raw_deflate_is_quiet() {
    let mut sim = Sim::new();
    let files = tree(&mut sim, 8, "dcm", dicom);
    let sh = sim.login_shell();
    let arch = sim.spawn(sh, "/opt/pacs/bin/archiver");
    for (i, f) in files.iter().enumerate() {
        let mut r = rng(i as u64);
        let _ = &mut r;
        let d = sim.content(f);
        // The pixel data element is the last one: value starts after its 12-byte header.
        let at = d.len() - 128 * 128 * 2;
        let mut v = d[..at].to_vec();
        let body = if i % 2 == 0 {
            zlib(&d[at..])
        } else {
            zlib(&d[at..])[2..].to_vec()
        };
        v.extend_from_slice(&body);
        sim.overwrite(arch, f, v);
    }
    sim.assert_no_verdict();
}

#[test]
fn fake_compressed_header_in_front_of_ciphertext_is_caught() {
    let headers: [&[u8]; 3] = [
        &[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03],
        &[0x78, 0x9c],
        &[0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00, 0x01, 0x00, 0x00],
    ];
    for h in headers {
        let mut sim = Sim::new();
        let files = tree(&mut sim, 6, "txt", |s| text(s, 20_000));
        let sh = sim.login_shell();
        let x = sim.spawn(sh, "/tmp/fakegz");
        let at = run(&mut sim, &files, x, |i, d| {
            let mut v = h.to_vec();
            v.extend_from_slice(&random(i as u64, d.len()));
            v
        });
        assert!(at.is_some_and(|n| n <= 3), "{h:?}: {at:?}");
    }
}

#[test]
fn gzip_stored_block_of_ciphertext_is_caught() {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut sim = Sim::new();
    let files = tree(&mut sim, 6, "csv", |s| csv(s, 20_000));
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/storedgz");
    let at = run(&mut sim, &files, x, |i, d| {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::none());
        e.write_all(&random(i as u64, d.len())).unwrap();
        e.finish().unwrap()
    });
    assert!(at.is_some_and(|n| n <= 3), "{at:?}");
}

#[test]
fn gzip_in_place_and_gzip_of_compressed_files_are_quiet() {
    let mut sim = Sim::new();
    let mut files = Vec::new();
    for (ext, gen) in formats() {
        files.extend(tree(&mut sim, 3, ext, gen));
    }
    let sh = sim.login_shell();
    // A compressor that rewrites files in place (compressed content, same name).
    let z = sim.spawn(sh, "/usr/bin/inplace-gzip");
    for f in &files {
        let d = sim.content(f);
        sim.overwrite(z, f, gzip(&d));
    }
    sim.assert_no_verdict();
}

#[test]
fn text_rewritten_as_other_text_is_quiet() {
    let mut sim = Sim::new();
    let prose = tree(&mut sim, 6, "txt", |s| text(s, 12_000));
    let tables = tree(&mut sim, 6, "csv", |s| csv(s, 12_000));
    let sh = sim.login_shell();
    let gen = sim.spawn(sh, "/usr/bin/report-gen");
    for (i, f) in prose.iter().enumerate() {
        let new = match i % 3 {
            0 => text(500 + i as u64, 9000),
            1 => csv(600 + i as u64, 9000),
            _ => sim.content(f).to_ascii_uppercase(),
        };
        sim.overwrite(gen, f, new);
    }
    for (i, f) in tables.iter().enumerate() {
        let new = if i % 2 == 0 {
            csv(700 + i as u64, 15_000)
        } else {
            text(800 + i as u64, 15_000)
        };
        sim.overwrite(gen, f, new);
    }
    sim.assert_no_verdict();
}
