//! The verifying decoders against a reference compressor, and on noise.
mod common;
use common::*;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use proptest::prelude::*;
use std::io::Write;
use ward_engine::decode::*;

fn deflate(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn real_streams_verify_at_every_level_and_prefix() {
    let inputs = [
        text(1, 30_000),
        csv(2, 20_000),
        dicom(3),
        sqlite_text(4, 4),
        [text(5, 3000), random(6, 3000)].concat(),
    ];
    for data in &inputs {
        for level in 0..=9 {
            let c = deflate(data, level);
            let full = inflate_prefix(&c);
            assert!(full.ok, "level {level}");
            if c.len() <= MAX_INPUT && data.len() <= MAX_OUTPUT {
                assert!(full.done, "level {level}");
                assert_eq!(full.produced, data.len().min(MAX_OUTPUT));
            }
            for cut in [1, 7, 100, 1000, 4096, 8192] {
                let r = inflate_prefix(&c[..cut.min(c.len())]);
                assert!(r.ok, "level {level} cut {cut}");
            }
            let z = zlib(data);
            assert!(zlib_prefix(&z).unwrap().verified(256));
            let g = gzip(data);
            let r = gzip_prefix(&g).unwrap();
            assert!(r.verified(256) && !r.payload_random());
        }
    }
}

#[test]
fn noise_does_not_verify() {
    let mut verified = 0;
    for seed in 0..2000 {
        let r = inflate_prefix(&random(seed, 4096));
        if r.verified(256) {
            verified += 1;
        }
    }
    assert_eq!(verified, 0);
    // A copied gzip header in front of ciphertext.
    for seed in 0..200 {
        let mut fake = gzip(b"hello")[..10].to_vec();
        fake.extend_from_slice(&random(seed, 4000));
        assert!(!gzip_prefix(&fake).unwrap().verified(256), "{seed}");
    }
}

#[test]
fn stored_ciphertext_verifies_but_decodes_to_noise() {
    let c = deflate(&random(9, 5000), 0);
    let r = inflate_prefix(&c);
    assert!(r.verified(256));
    assert!(r.payload_random());
}

#[test]
fn find_stream_after_a_header() {
    let mut v = dicom(7)[..700].to_vec();
    let at = v.len();
    v.extend_from_slice(&zlib(&dicom(8)));
    v.truncate(8192);
    assert_eq!(find_stream(&v, 0, 64), Some(at));
    let mut w = dicom(7)[..700].to_vec();
    w.extend_from_slice(&random(3, 7000));
    assert_eq!(find_stream(&w, 0, 64), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn decoders_are_total(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        let _ = inflate_prefix(&data);
        let _ = zlib_prefix(&data);
        let _ = gzip_prefix(&data);
        let _ = find_stream(&data, 0, 8);
    }

    #[test]
    fn corrupted_streams_never_panic(seed in 0u64..1000, flips in prop::collection::vec((0usize..4000, any::<u8>()), 1..8)) {
        let mut c = deflate(&text(seed, 8000), (seed % 10) as u32);
        for (i, b) in flips {
            let n = c.len();
            c[i % n] ^= b;
        }
        let _ = inflate_prefix(&c);
    }
}

#[test]
fn gzip_of_documents_and_images_is_compression() {
    for d in [
        text(0, 6000),
        csv(1, 20000),
        docx(2),
        dicom(3),
        png(4, 120, 90),
        pdf(5),
    ] {
        let g = gzip(&d);
        let f = ward_engine::sniff::sniff(&g[..g.len().min(8192)], g.len() as u64);
        assert!(f.valid, "{f:?}");
        assert!(!gzip_prefix(&g).unwrap().payload_random());
    }
    // A gzip of ciphertext is not.
    let g = gzip(&random(1, 20000));
    assert!(!ward_engine::sniff::sniff(&g[..8192], g.len() as u64).valid);
}
