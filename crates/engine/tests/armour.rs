//! Armour of every common kind (issue 10): readable before, a printable encoding of random
//! bytes after. The encodings are decoded and the decoded bytes judged.
mod common;
use common::*;
use proptest::prelude::*;
use ward_engine::decode::{armour, Encoding};
use ward_engine::*;

fn hex(d: &[u8], upper: bool, sep: &str, prefix: &str, per_line: usize) -> Vec<u8> {
    let mut s = String::new();
    for (i, b) in d.iter().enumerate() {
        if i > 0 {
            s.push_str(if i % per_line == 0 { "\n" } else { sep });
        }
        s.push_str(prefix);
        s.push_str(&if upper {
            format!("{b:02X}")
        } else {
            format!("{b:02x}")
        });
    }
    s.into_bytes()
}

fn base32(d: &[u8]) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &b in d {
        acc = acc << 8 | b as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(A[(acc >> bits) as usize & 31]);
            if out.len() % 73 == 72 {
                out.push(b'\n');
            }
        }
    }
    out
}

fn pem(d: &[u8], label: &str) -> Vec<u8> {
    let mut v = format!("-----BEGIN {label}-----\nProc-Type: 4,ENCRYPTED\n\n").into_bytes();
    v.extend_from_slice(&base64(d));
    v.extend_from_slice(format!("\n-----END {label}-----\n").as_bytes());
    v
}

fn ascii85(d: &[u8]) -> Vec<u8> {
    let mut out = b"<~".to_vec();
    for ch in d.chunks(4) {
        let mut w = [0u8; 4];
        w[..ch.len()].copy_from_slice(ch);
        let mut v = u32::from_be_bytes(w) as u64;
        let mut g = [0u8; 5];
        for k in (0..5).rev() {
            g[k] = (v % 85) as u8 + b'!';
            v /= 85;
        }
        out.extend_from_slice(&g[..ch.len() + 1]);
        if out.len() % 76 == 75 {
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"~>");
    out
}

fn uuencode(d: &[u8]) -> Vec<u8> {
    let enc = |v: u32| if v == 0 { b'`' } else { v as u8 + b' ' };
    let mut out = b"begin 644 data.bin\n".to_vec();
    for line in d.chunks(45) {
        out.push(enc(line.len() as u32));
        for ch in line.chunks(3) {
            let mut w = [0u8; 3];
            w[..ch.len()].copy_from_slice(ch);
            let v = (w[0] as u32) << 16 | (w[1] as u32) << 8 | w[2] as u32;
            for k in 0..4 {
                out.push(enc(v >> (18 - 6 * k) & 63));
            }
        }
        out.push(b'\n');
    }
    out.extend_from_slice(b"`\nend\n");
    out
}

type Enc = fn(&[u8]) -> Vec<u8>;

fn encodings() -> Vec<(&'static str, Enc)> {
    vec![
        ("hex", |d| hex(d, false, "", "", 32)),
        ("HEX", |d| hex(d, true, "", "", 40)),
        ("hex-space", |d| hex(d, false, " ", "", 16)),
        ("hex-colon", |d| hex(d, true, ":", "", 20)),
        ("hex-0x", |d| hex(d, false, ", ", "0x", 12)),
        ("base32", base32),
        ("base64", base64),
        ("pem", |d| pem(d, "ENCRYPTED DATA")),
        ("ascii85", ascii85),
        ("uuencode", uuencode),
    ]
}

#[test]
fn decoders_recognise_each_encoding() {
    let d = random(1, 3000);
    for (name, enc) in encodings() {
        let (e, dec) = armour(&enc(&d)).unwrap_or_else(|| panic!("{name}"));
        let n = dec.len().min(2000);
        assert_eq!(&dec[..n], &d[..n], "{name} {e:?}");
    }
    assert_eq!(armour(&uuencode(&d)).unwrap().0, Encoding::Uuencode);
}

#[test]
fn text_replaced_by_armoured_ciphertext_is_caught() {
    for (name, enc) in encodings() {
        for gen in [(|s| text(s, 9000)) as fn(u64) -> Vec<u8>, |s| csv(s, 9000)] {
            let mut sim = Sim::new();
            let files: Vec<String> = (0..6)
                .map(|i| {
                    let p = format!("/srv/share/d{}/f{i}.txt", i % 3);
                    sim.put(&p, gen(i));
                    p
                })
                .collect();
            let sh = sim.login_shell();
            let x = sim.spawn(sh, "/tmp/armour");
            let mut at = None;
            for (i, f) in files.iter().enumerate() {
                let n = sim.content(f).len();
                sim.overwrite(x, f, enc(&random(i as u64 + 7, n / 2)));
                if !sim.verdicts.is_empty() {
                    at = Some(i + 1);
                    break;
                }
            }
            assert!(at.is_some_and(|n| n <= 3), "{name}: {at:?}");
            assert!(sim.verdicts[0]
                .indicators
                .contains(&Indicator::ArmouredCiphertext));
        }
    }
}

#[test]
fn write_new_armoured_then_delete_is_caught() {
    let mut sim = Sim::new();
    let files: Vec<String> = (0..6)
        .map(|i| {
            let p = format!("/srv/share/d{}/f{i}.docx", i % 3);
            sim.put(&p, docx(i));
            p
        })
        .collect();
    let sh = sim.login_shell();
    let x = sim.spawn(sh, "/tmp/armour");
    for (i, f) in files.iter().enumerate() {
        sim.read(x, f);
        let n = sim.content(f).len();
        sim.write_new(x, &format!("{f}.b32"), base32(&random(i as u64, n)));
        sim.delete(x, f);
        if !sim.verdicts.is_empty() {
            assert!(i < 3);
            return;
        }
    }
    panic!("no verdict");
}

/// A certificate-like DER blob: names and OIDs around a random key and signature.
fn der_cert(seed: u64) -> Vec<u8> {
    let mut v = vec![
        0x30, 0x82, 0x03, 0x80, 0x30, 0x82, 0x02, 0x68, 0xa0, 0x03, 0x02, 0x01, 0x02,
    ];
    v.extend_from_slice(b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x05\x00");
    v.extend_from_slice(b"\x31\x0b\x30\x09\x06\x03\x55\x04\x06\x13\x02GB");
    v.extend_from_slice(b"\x0c\x1cNHS Trust Issuing CA - Ward 3");
    v.extend_from_slice(&text(seed, 200));
    v.extend_from_slice(&random(seed, 256));
    v.extend_from_slice(b"\x02\x03\x01\x00\x01\xa3\x53\x30\x51");
    v.extend_from_slice(&text(seed + 1, 150));
    v.extend_from_slice(&random(seed + 2, 256));
    v
}

#[test]
fn legitimate_armour_is_quiet() {
    let mut sim = Sim::new();
    let mut srcs = Vec::new();
    for i in 0..6u64 {
        // Source code and CSVs full of hex ids, edited in place.
        let mut code = String::from("// generated ids\nstatic IDS: &[u64] = &[\n");
        let mut csv_ids = String::from("id,object,checksum\n");
        for (k, b) in random(i, 600).chunks(8).enumerate() {
            let v = u64::from_le_bytes(b.try_into().unwrap());
            code.push_str(&format!("    0x{v:016x}, // entry {k}\n"));
            csv_ids.push_str(&format!("{k},scan-{k}.dcm,{v:016x}{:08x}\n", v >> 7));
        }
        code.push_str("];\n");
        let a = format!("/srv/src/ids{i}.rs");
        let b = format!("/srv/share/ids{i}.csv");
        sim.put(&a, code.clone().into_bytes());
        sim.put(&b, csv_ids.clone().into_bytes());
        srcs.push((a, code, b, csv_ids));
    }
    let sh = sim.login_shell();
    let ed = sim.spawn(sh, "/usr/bin/vim");
    for (a, code, b, csv_ids) in &srcs {
        sim.overwrite(ed, a, format!("{code}// edited\n").into_bytes());
        sim.overwrite(
            ed,
            b,
            format!("{csv_ids}99,extra.dcm,00ff00ff\n").into_bytes(),
        );
    }
    // A person base64-encodes one file; certificates and keys are created new.
    let me = sim.spawn(sh, "/usr/bin/base64");
    sim.put("/home/u/report.pdf", pdf(3));
    sim.read(me, "/home/u/report.pdf");
    let d = sim.content("/home/u/report.pdf");
    sim.write_new(me, "/home/u/report.pdf.b64", base64(&d));
    let ca = sim.spawn(sh, "/usr/bin/openssl");
    for i in 0..6 {
        let mut chain = pem(&der_cert(i), "CERTIFICATE");
        chain.extend_from_slice(&pem(&der_cert(i + 10), "CERTIFICATE"));
        sim.write_new(ca, &format!("/etc/ssl/ward/host{i}.pem"), chain);
    }
    // Hex dumps of documents (`xxd -p`) replacing... nothing: new files.
    for i in 0..4 {
        sim.write_new(
            ed,
            &format!("/srv/share/dump{i}.hex"),
            hex(&docx(i)[..3000], false, "", "", 30),
        );
    }
    sim.assert_no_verdict();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn armour_decoder_is_total(data in prop::collection::vec(any::<u8>(), 0..4000)) {
        let _ = armour(&data);
    }

    #[test]
    fn armour_decoder_is_total_on_printable(data in prop::collection::vec(0x20u8..0x7f, 0..4000), nl in 1usize..80) {
        let mut v = data.clone();
        for i in (0..v.len()).step_by(nl) { v[i] = b'\n'; }
        let _ = armour(&v);
    }
}
