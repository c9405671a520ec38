//! Test harness: a tiny simulated file system and process tree that emits the events the
//! sensor would emit, plus generators of realistic file contents.
#![allow(dead_code)]

use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io::Write;
use ward_engine::sniff::crc32;
use ward_engine::*;

pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000_000_000;

pub fn sample_of(data: &[u8]) -> Sample {
    let blocks = Sample::plan(data.len() as u64)
        .into_iter()
        .map(|(o, l)| Block {
            offset: o,
            data: data[o as usize..(o as usize + l).min(data.len())].to_vec(),
        })
        .collect();
    Sample::new(data.len() as u64, blocks)
}

pub struct Sim {
    pub eng: Engine,
    pub t: u64,
    pub step: u64,
    next_ino: u64,
    next_pid: u32,
    pub fs: BTreeMap<String, (FileKey, Vec<u8>)>,
    pub verdicts: Vec<Verdict>,
    pub events: Vec<Event>,
    pub init: ProcId,
    pub sshd: ProcId,
}

impl Sim {
    pub fn new() -> Sim {
        Self::with(Config::default())
    }

    pub fn with(cfg: Config) -> Sim {
        let mut s = Sim {
            eng: Engine::new(cfg),
            t: 1_000 * SEC,
            step: MS,
            next_ino: 1000,
            next_pid: 100,
            fs: BTreeMap::new(),
            verdicts: Vec::new(),
            events: Vec::new(),
            init: ProcId { pid: 1, start: 1 },
            sshd: ProcId { pid: 0, start: 0 },
        };
        let init = s.spawn_full(None, "/sbin/init", true);
        s.init = init;
        s.sshd = s.spawn_full(Some(init), "/usr/sbin/sshd", true);
        s
    }

    /// A login shell under sshd (the usual parent of everything a user runs).
    pub fn login_shell(&mut self) -> ProcId {
        let sshd = self.sshd;
        self.spawn(sshd, "/bin/bash")
    }

    pub fn emit(&mut self, proc: ProcId, op: Op) -> Option<Verdict> {
        self.t += self.step;
        let ev = Event {
            time: self.t,
            proc,
            op,
        };
        let v = self.eng.observe(&ev);
        self.events.push(ev);
        if let Some(v) = &v {
            self.verdicts.push(v.clone());
        }
        v
    }

    pub fn spawn_full(&mut self, parent: Option<ProcId>, exe: &str, boundary: bool) -> ProcId {
        self.next_pid += 1;
        let id = ProcId {
            pid: self.next_pid,
            start: self.t,
        };
        let info = ProcInfo {
            id,
            parent,
            exe: exe.to_string(),
            cmdline: vec![exe.to_string()],
            uid: 1000,
            boundary,
        };
        self.emit(id, Op::Process(info));
        id
    }

    pub fn spawn(&mut self, parent: ProcId, exe: &str) -> ProcId {
        self.spawn_full(Some(parent), exe, false)
    }

    pub fn exit(&mut self, p: ProcId) {
        self.emit(p, Op::Exit);
    }

    /// A pre-existing file (no events: it was there before ward started).
    pub fn put(&mut self, path: &str, data: Vec<u8>) {
        self.next_ino += 1;
        let k = FileKey {
            dev: 1,
            ino: self.next_ino,
        };
        self.fs.insert(path.to_string(), (k, data));
    }

    pub fn key(&self, path: &str) -> FileKey {
        self.fs[path].0
    }

    pub fn content(&self, path: &str) -> Vec<u8> {
        self.fs[path].1.clone()
    }

    pub fn read(&mut self, p: ProcId, path: &str) -> Option<Verdict> {
        let (k, data) = self.fs[path].clone();
        self.emit(
            p,
            Op::Open {
                file: k,
                path: path.to_string(),
                sample: sample_of(&data),
                write: Some(false),
            },
        )
    }

    /// Open for writing (the sample is the content before the open).
    pub fn open_write(&mut self, p: ProcId, path: &str) -> Option<Verdict> {
        let (k, data) = self.fs[path].clone();
        self.emit(
            p,
            Op::Open {
                file: k,
                path: path.to_string(),
                sample: sample_of(&data),
                write: Some(true),
            },
        )
    }

    pub fn close_write(&mut self, p: ProcId, path: &str, data: Vec<u8>) -> Option<Verdict> {
        let k = self.fs[path].0;
        self.fs.insert(path.to_string(), (k, data.clone()));
        self.emit(
            p,
            Op::CloseWrite {
                file: k,
                path: path.to_string(),
                sample: sample_of(&data),
            },
        )
    }

    /// Overwrite in place: open for write, close with new content.
    pub fn overwrite(&mut self, p: ProcId, path: &str, data: Vec<u8>) -> Option<Verdict> {
        let a = self.open_write(p, path);
        let b = self.close_write(p, path, data);
        a.or(b)
    }

    pub fn create(&mut self, p: ProcId, path: &str) -> Option<Verdict> {
        self.next_ino += 1;
        let k = FileKey {
            dev: 1,
            ino: self.next_ino,
        };
        self.fs.insert(path.to_string(), (k, Vec::new()));
        self.emit(
            p,
            Op::Create {
                path: path.to_string(),
                file: Some(k),
            },
        )
    }

    /// Create a new file and write it.
    pub fn write_new(&mut self, p: ProcId, path: &str, data: Vec<u8>) -> Option<Verdict> {
        let a = self.create(p, path);
        let b = self.close_write(p, path, data);
        a.or(b)
    }

    pub fn delete(&mut self, p: ProcId, path: &str) -> Option<Verdict> {
        let (k, _) = self.fs.remove(path).expect("delete of missing file");
        self.emit(
            p,
            Op::Delete {
                path: path.to_string(),
                file: Some(k),
            },
        )
    }

    pub fn rename(&mut self, p: ProcId, from: &str, to: &str) -> Option<Verdict> {
        let (k, d) = self.fs.remove(from).expect("rename of missing file");
        self.fs.insert(to.to_string(), (k, d));
        self.emit(
            p,
            Op::Rename {
                from: from.to_string(),
                to: to.to_string(),
                file: Some(k),
            },
        )
    }

    pub fn paths_under(&self, dir: &str) -> Vec<String> {
        self.fs
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect()
    }

    pub fn assert_no_verdict(&self) {
        assert!(
            self.verdicts.is_empty(),
            "unexpected verdict: {:#?}",
            self.verdicts
        );
    }
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

// ----------------------------------------------------------------------------------------
// Content generators.

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn random(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    rng(seed).fill_bytes(&mut v);
    v
}

const WORDS: &[&str] = &[
    "patient",
    "ward",
    "referral",
    "the",
    "of",
    "and",
    "scan",
    "rota",
    "clinic",
    "nurse",
    "discharge",
    "summary",
    "blood",
    "pressure",
    "normal",
    "review",
    "follow",
    "up",
    "in",
    "weeks",
    "consultant",
    "notes",
    "allergy",
    "none",
    "known",
    "medication",
    "dose",
    "daily",
    "a",
    "to",
];

pub fn text(seed: u64, n: usize) -> Vec<u8> {
    let mut r = rng(seed);
    let mut s = String::with_capacity(n + 32);
    let mut col = 0;
    while s.len() < n {
        let w = WORDS[(r.next_u32() as usize) % WORDS.len()];
        s.push_str(w);
        col += w.len() + 1;
        if col > 70 {
            s.push_str(".\n");
            col = 0;
        } else {
            s.push(' ');
        }
    }
    s.truncate(n);
    s.into_bytes()
}

pub fn csv(seed: u64, n: usize) -> Vec<u8> {
    let mut r = rng(seed);
    let mut s = String::from("id,surname,ward,admitted,score\n");
    let mut i = 0;
    while s.len() < n {
        let v = r.next_u32();
        s.push_str(&format!(
            "{},{},W{},2024-{:02}-{:02},{}.{}\n",
            i,
            ["Smith", "Jones", "Patel", "Nguyen", "Brown"][(v % 5) as usize],
            v % 17,
            1 + v % 12,
            1 + v % 28,
            v % 100,
            v % 10
        ));
        i += 1;
    }
    s.truncate(n);
    s.into_bytes()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A zip archive (deflated entries), e.g. an OOXML document.
pub fn zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let comp = deflate(data);
        let crc = crc32(data);
        let off = out.len() as u32;
        let mut hdr = Vec::new();
        hdr.extend_from_slice(b"PK\x03\x04");
        hdr.extend_from_slice(&20u16.to_le_bytes());
        hdr.extend_from_slice(&0u16.to_le_bytes()); // flags
        hdr.extend_from_slice(&8u16.to_le_bytes()); // deflate
        hdr.extend_from_slice(&0u16.to_le_bytes());
        hdr.extend_from_slice(&0x5821u16.to_le_bytes());
        hdr.extend_from_slice(&crc.to_le_bytes());
        hdr.extend_from_slice(&(comp.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&(data.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&(name.len() as u16).to_le_bytes());
        hdr.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&hdr);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&comp);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&hdr[4..]);
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&off.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

pub fn docx(seed: u64) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\"?><w:document><w:body><w:p>{}</w:p></w:body></w:document>",
        String::from_utf8(text(seed, 40_000)).unwrap()
    );
    zip(&[
        (
            "[Content_Types].xml",
            b"<?xml version=\"1.0\"?><Types><Default Extension=\"xml\"/></Types>".to_vec(),
        ),
        ("_rels/.rels", b"<Relationships></Relationships>".to_vec()),
        ("word/document.xml", body.into_bytes()),
        ("word/media/image1.bin", random(seed ^ 77, 20_000)),
    ])
}

pub fn pdf(seed: u64) -> Vec<u8> {
    let mut v =
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            .to_vec();
    for i in 0..40 {
        v.extend_from_slice(
            format!("{} 0 obj\n<< /Type /Page /Parent 2 0 R /Contents [(", i + 3).as_bytes(),
        );
        v.extend_from_slice(&text(seed + i, 800));
        v.extend_from_slice(b")] >>\nendobj\n");
    }
    let s = zlib(&text(seed + 1000, 20_000));
    v.extend_from_slice(
        format!(
            "99 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
            s.len()
        )
        .as_bytes(),
    );
    v.extend_from_slice(&s);
    v.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    v
}

fn png_chunk(out: &mut Vec<u8>, ty: &[u8], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut c = ty.to_vec();
    c.extend_from_slice(data);
    out.extend_from_slice(&c);
    out.extend_from_slice(&crc32(&c).to_be_bytes());
}

pub fn png(seed: u64, w: u32, h: u32) -> Vec<u8> {
    let mut r = rng(seed);
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0);
        for x in 0..w {
            let n = (r.next_u32() % 24) as u8;
            raw.extend_from_slice(&[(x as u8).wrapping_add(n), (y as u8).wrapping_add(n), n]);
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"tEXt", b"Comment\0scanned referral");
    png_chunk(&mut out, b"IDAT", &zlib(&raw));
    png_chunk(&mut out, b"IEND", b"");
    out
}

fn dcm_el(out: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], val: &[u8]) {
    let mut val = val.to_vec();
    if val.len() % 2 == 1 {
        val.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
    }
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UT" | b"UN") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(val.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(val.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&val);
}

/// A DICOM file. `ts` is the transfer syntax UID; `pixels` the pixel data value.
pub fn dicom_with(seed: u64, ts: &str, pixels: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let mut meta = Vec::new();
    dcm_el(&mut meta, 2, 1, b"OB", &[0, 1]);
    dcm_el(&mut meta, 2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.2");
    dcm_el(
        &mut meta,
        2,
        3,
        b"UI",
        format!("1.2.826.0.1.3680043.8.498.{seed}").as_bytes(),
    );
    dcm_el(&mut meta, 2, 0x10, b"UI", ts.as_bytes());
    dcm_el(&mut meta, 2, 0x12, b"UI", b"1.2.826.0.1.3680043.8.498.1");
    dcm_el(&mut out, 2, 0, b"UL", &(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    dcm_el(&mut out, 8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.2");
    dcm_el(
        &mut out,
        8,
        0x18,
        b"UI",
        format!("1.2.826.0.1.3680043.8.498.{seed}.1").as_bytes(),
    );
    dcm_el(&mut out, 8, 0x20, b"DA", b"20240312");
    dcm_el(&mut out, 8, 0x60, b"CS", b"CT");
    dcm_el(&mut out, 8, 0x1030, b"LO", b"CT HEAD WITHOUT CONTRAST");
    dcm_el(
        &mut out,
        0x10,
        0x10,
        b"PN",
        format!("DOE^JOHN{seed}").as_bytes(),
    );
    dcm_el(
        &mut out,
        0x10,
        0x20,
        b"LO",
        format!("NHS{seed:07}").as_bytes(),
    );
    dcm_el(&mut out, 0x10, 0x4000, b"LT", &text(seed, 600));
    dcm_el(
        &mut out,
        0x20,
        0x0d,
        b"UI",
        format!("1.2.826.0.1.3680043.8.498.{seed}.2").as_bytes(),
    );
    dcm_el(&mut out, 0x28, 0x10, b"US", &128u16.to_le_bytes());
    dcm_el(&mut out, 0x28, 0x11, b"US", &128u16.to_le_bytes());
    dcm_el(&mut out, 0x7fe0, 0x10, b"OW", &pixels);
    out
}

/// Uncompressed 128x128 16-bit CT-like image.
pub fn dicom(seed: u64) -> Vec<u8> {
    let mut r = rng(seed);
    let mut px = Vec::with_capacity(128 * 128 * 2);
    for y in 0..128u32 {
        for x in 0..128u32 {
            let d = ((x as i32 - 64).pow(2) + (y as i32 - 64).pow(2)) as u32;
            let v: u16 = if d < 3000 {
                1000 + (r.next_u32() % 40) as u16
            } else {
                0
            };
            px.extend_from_slice(&v.to_le_bytes());
        }
    }
    dicom_with(seed, "1.2.840.10008.1.2.1", px)
}

/// An SQLite-like database: valid header, schema page, `pages` table leaf pages whose
/// cells hold `blob(seed, page)` payloads.
pub fn sqlite(pages: usize, blob: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    const P: usize = 4096;
    let mut db = vec![0u8; P * (pages + 1)];
    db[..16].copy_from_slice(b"SQLite format 3\0");
    db[16..18].copy_from_slice(&(P as u16).to_be_bytes());
    db[18] = 1;
    db[19] = 1;
    db[21] = 64;
    db[22] = 32;
    db[23] = 32;
    db[28..32].copy_from_slice(&((pages + 1) as u32).to_be_bytes());
    db[44..48].copy_from_slice(&4u32.to_be_bytes());
    db[56..60].copy_from_slice(&1u32.to_be_bytes());
    // Page 1: leaf table b-tree with one schema cell.
    let schema = b"\x3a\x01\x06\x17\x11\x11\x01\x5btabletrecordsrecords\x02CREATE TABLE records(id INTEGER PRIMARY KEY, data BLOB)";
    let start = P - schema.len();
    db[100] = 13;
    db[103..105].copy_from_slice(&1u16.to_be_bytes());
    db[105..107].copy_from_slice(&(start as u16).to_be_bytes());
    db[108..110].copy_from_slice(&(start as u16).to_be_bytes());
    db[start..P].copy_from_slice(schema);
    for pg in 1..=pages {
        let base = pg * P;
        let payload = blob(pg);
        let cell_len = payload.len().min(P - 64);
        let start = P - cell_len;
        db[base] = 13;
        db[base + 3..base + 5].copy_from_slice(&1u16.to_be_bytes());
        db[base + 5..base + 7].copy_from_slice(&(start as u16).to_be_bytes());
        db[base + 8..base + 10].copy_from_slice(&(start as u16).to_be_bytes());
        db[base + start..base + P].copy_from_slice(&payload[..cell_len]);
    }
    db
}

pub fn sqlite_text(seed: u64, pages: usize) -> Vec<u8> {
    sqlite(pages, |pg| csv(seed + pg as u64, 4000))
}

pub fn tar(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0001750\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"14604450750\0");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0, pad));
    }
    out.extend(std::iter::repeat_n(0, 1024));
    out
}

pub fn openssl_enc(seed: u64, plain_len: usize) -> Vec<u8> {
    let mut v = b"Salted__".to_vec();
    v.extend_from_slice(&random(seed, 8));
    v.extend_from_slice(&random(seed + 1, (plain_len / 16 + 1) * 16));
    v
}

/// OpenPGP symmetrically encrypted message: SKESK v4 (AES-256, iterated S2K) + SEIPD v1.
pub fn gpg_msg(seed: u64, plain_len: usize) -> Vec<u8> {
    let mut v = vec![0x8c, 0x0d, 0x04, 0x09, 0x03, 0x08];
    v.extend_from_slice(&random(seed, 8));
    v.push(0xff);
    let body = random(seed + 1, plain_len + 40);
    v.push(0xd2);
    v.push(0xff);
    v.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    v.push(0x01);
    v.extend_from_slice(&body);
    v
}

pub fn base64(data: &[u8]) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut col = 0;
    for ch in data.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(A[(v >> 18) as usize & 63]);
        out.push(A[(v >> 12) as usize & 63]);
        out.push(if ch.len() > 1 {
            A[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if ch.len() > 2 {
            A[v as usize & 63]
        } else {
            b'='
        });
        col += 4;
        if col >= 76 {
            out.push(b'\n');
            col = 0;
        }
    }
    out
}
