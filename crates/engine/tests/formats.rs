//! The content generators used by the scenario tests produce what they claim, and the
//! sniffer/profile classify them as expected.
mod common;
use common::*;
use ward_engine::sniff::{sniff, Kind};
use ward_engine::Profile;

fn kind(d: &[u8]) -> (Kind, bool) {
    let f = sniff(&d[..d.len().min(8192)], d.len() as u64);
    (f.kind, f.valid)
}

#[test]
fn generators_sniff_valid() {
    assert_eq!(kind(&text(1, 30_000)), (Kind::Text, true));
    assert_eq!(kind(&csv(1, 30_000)), (Kind::Text, true));
    assert_eq!(kind(&gzip(&text(1, 30_000))), (Kind::Gzip, true));
    assert_eq!(kind(&zlib(&text(1, 300))), (Kind::Zlib, true));
    assert_eq!(kind(&docx(1)), (Kind::Zip, true));
    assert_eq!(kind(&pdf(1)), (Kind::Pdf, true));
    assert_eq!(kind(&png(1, 200, 120)), (Kind::Png, true));
    assert_eq!(kind(&dicom(1)), (Kind::Dicom, true));
    assert_eq!(kind(&sqlite_text(1, 10)), (Kind::Sqlite, true));
    assert_eq!(
        kind(&tar(&[("a.txt", text(1, 3000)), ("b.txt", text(2, 9000))])),
        (Kind::Tar, true)
    );
    assert_eq!(kind(&openssl_enc(1, 30_000)), (Kind::OpensslEnc, true));
    assert_eq!(kind(&gpg_msg(1, 30_000)), (Kind::Gpg, true));
    assert_eq!(kind(&random(1, 30_000)), (Kind::Unknown, false));
}

#[test]
fn profiles() {
    for d in [
        text(1, 30_000),
        csv(2, 5000),
        docx(3),
        pdf(4),
        png(5, 200, 120),
        dicom(6),
        sqlite_text(7, 10),
    ] {
        let p = Profile::of(&sample_of(&d));
        assert!(!p.encrypted_looking(), "{:?}", p.format);
        assert!(p.format.is_valid_known());
    }
    for d in [
        random(1, 30_000),
        openssl_enc(2, 5000),
        gpg_msg(3, 100),
        base64(&random(4, 20_000)),
    ] {
        assert!(Profile::of(&sample_of(&d)).encrypted_looking());
    }
}

#[test]
fn header_preserving_breaks_deep_validation() {
    for (d, keep) in [
        (dicom(1), 512),
        (sqlite_text(2, 10), 512),
        (docx(3), 200),
        (png(4, 200, 120), 50),
    ] {
        let mut e = d.clone();
        let r = random(9, e.len() - keep);
        e[keep..].copy_from_slice(&r);
        let f = sniff(&e[..8192.min(e.len())], e.len() as u64);
        let p = Profile::of(&sample_of(&e));
        assert!(
            !f.valid || p.encrypted_looking() || f.kind == Kind::Sqlite,
            "{f:?}"
        );
    }
}

#[test]
fn dicom_compressed_transfer_syntax_is_packed() {
    let d = dicom_with(1, "1.2.840.10008.1.2.4.90", random(5, 30_000));
    let f = sniff(&d[..8192], d.len() as u64);
    assert_eq!(f.kind, Kind::Dicom);
    assert!(f.valid && f.packed);
    assert!(!Profile::of(&sample_of(&d)).encrypted_looking());
}
