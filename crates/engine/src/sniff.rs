//! File format detection from the head of a file.
//!
//! [`sniff`] looks at the first bytes of a file (the sensor samples up to 8 KiB) and the
//! file size, and returns a [`Format`]: what the file claims to be ([`Kind`]) and whether
//! the structure that can be checked inside the head is consistent (`valid`). Magic numbers
//! alone are not trusted: each known format gets a light validation that random bytes
//! pass only with negligible probability, for example
//!
//! * gzip: method 8, reserved flag bits zero, sane XFL/OS, optional fields inside the file,
//!   first deflate block type not the reserved value 3;
//! * zlib: CM = 8, window ≤ 32 KiB, header check (CMF·256 + FLG) divisible by 31;
//! * xz / 7z: the header CRC32 is verified;
//! * zip: sane version/method/name length; the chain of local headers is walked through the
//!   head (each entry must be followed by another `PK` record); the encryption flag (bit 0)
//!   or AES method 99 makes it an *encrypted container*;
//! * tar: "ustar" magic, header checksum, and the next header when it lies in the head;
//! * PNG: signature, IHDR, and every chunk CRC32 inside the head;
//! * JPEG: the marker segments are walked up to the start of scan;
//! * DICOM: "DICM" at 128, the file-meta group (0002) parses with explicit VRs, and the
//!   data set elements that follow keep parsing (ascending tags, valid VRs, sane lengths)
//!   until the pixel data or the end of the head. The transfer syntax decides whether the
//!   pixel data is compressed;
//! * SQLite: the 16-byte magic, a power-of-two page size, the fixed payload fractions,
//!   and the b-tree header of page 1.
//!
//! Explicitly **encrypted containers** are recognised as such: `openssl enc` ("Salted__"),
//! OpenPGP binary packets that start an encrypted message (public-key or symmetric-key
//! encrypted session key, symmetrically encrypted data, with or without integrity
//! protection), ASCII-armoured "-----BEGIN PGP MESSAGE-----", age (binary and armoured),
//! and zip archives with encrypted entries.
//!
//! Every function here is total: it never panics and never reads out of bounds, whatever the
//! input (it parses attacker-controlled bytes).

use serde::{Deserialize, Serialize};

use crate::decode;
use crate::stats::Histogram;

/// What a file claims to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Zero bytes.
    Empty,
    /// Printable UTF-8 (or Latin-1) text.
    Text,
    /// gzip stream.
    Gzip,
    /// zlib stream.
    Zlib,
    /// Zstandard frame.
    Zstd,
    /// xz stream.
    Xz,
    /// bzip2 stream.
    Bzip2,
    /// zip archive (and OOXML/ODF documents).
    Zip,
    /// 7-Zip archive.
    SevenZip,
    /// POSIX tar archive.
    Tar,
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// GIF image.
    Gif,
    /// PDF document.
    Pdf,
    /// DICOM file (Part 10).
    Dicom,
    /// SQLite 3 database.
    Sqlite,
    /// ELF executable or library.
    Elf,
    /// git pack file.
    GitPack,
    /// Microsoft compound file (OLE2: legacy .doc, .xls, .ppt, .msg).
    Ole2,
    /// RIFF container (WebP, WAV, AVI).
    Riff,
    /// ISO base media file (MP4, MOV, HEIC, AVIF).
    IsoMedia,
    /// TIFF image.
    Tiff,
    /// Ogg container.
    Ogg,
    /// FLAC audio.
    Flac,
    /// Matroska / WebM.
    Matroska,
    /// LZ4 frame.
    Lz4,
    /// RAR archive.
    Rar,
    /// `openssl enc` output ("Salted__" + salt + ciphertext).
    OpensslEnc,
    /// OpenPGP binary encrypted message.
    Gpg,
    /// ASCII-armoured OpenPGP message.
    PgpArmoured,
    /// age-encrypted file (binary or armoured).
    Age,
    /// zip archive whose first entry is encrypted (ZipCrypto or AES).
    ZipEncrypted,
    /// None of the above.
    Unknown,
}

impl Kind {
    /// Is this an explicitly encrypted container?
    pub fn is_encrypted(self) -> bool {
        matches!(
            self,
            Kind::OpensslEnc | Kind::Gpg | Kind::PgpArmoured | Kind::Age | Kind::ZipEncrypted
        )
    }

    /// A compressed stream format (gzip, zlib, zstd, xz, bzip2, lz4).
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Kind::Gzip | Kind::Zlib | Kind::Zstd | Kind::Xz | Kind::Bzip2 | Kind::Lz4
        )
    }

    /// A format that legitimately stores arbitrary (possibly random) binary data after its
    /// header: a database, an archive, a document container, a medical image.
    pub fn holds_arbitrary_data(self) -> bool {
        matches!(
            self,
            Kind::Sqlite
                | Kind::Zip
                | Kind::Tar
                | Kind::Pdf
                | Kind::Dicom
                | Kind::SevenZip
                | Kind::Ole2
        )
    }

    /// Lower-case name (e.g. `gzip`, `7z`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Empty => "empty",
            Kind::Text => "text",
            Kind::Gzip => "gzip",
            Kind::Zlib => "zlib",
            Kind::Zstd => "zstd",
            Kind::Xz => "xz",
            Kind::Bzip2 => "bzip2",
            Kind::Zip => "zip",
            Kind::SevenZip => "7z",
            Kind::Tar => "tar",
            Kind::Png => "png",
            Kind::Jpeg => "jpeg",
            Kind::Gif => "gif",
            Kind::Pdf => "pdf",
            Kind::Dicom => "dicom",
            Kind::Sqlite => "sqlite",
            Kind::Elf => "elf",
            Kind::GitPack => "git-pack",
            Kind::Ole2 => "ole2",
            Kind::Riff => "riff",
            Kind::IsoMedia => "iso-media",
            Kind::Tiff => "tiff",
            Kind::Ogg => "ogg",
            Kind::Flac => "flac",
            Kind::Matroska => "matroska",
            Kind::Lz4 => "lz4",
            Kind::Rar => "rar",
            Kind::OpensslEnc => "openssl-enc",
            Kind::Gpg => "gpg",
            Kind::PgpArmoured => "pgp-armoured",
            Kind::Age => "age",
            Kind::ZipEncrypted => "zip-encrypted",
            Kind::Unknown => "unknown",
        }
    }
}

/// Result of [`sniff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Format {
    /// What the file claims to be.
    pub kind: Kind,
    /// The structure checked inside the head is consistent. Always `true` for
    /// [`Kind::Text`] and [`Kind::Empty`], always `false` for [`Kind::Unknown`].
    pub valid: bool,
    /// The format declares a compressed or encrypted payload, so random-looking blocks
    /// after the header are expected (gzip, zip, PNG, JPEG, DICOM with a
    /// compressed transfer syntax, ...).
    pub packed: bool,
}

impl Format {
    /// An unrecognised format.
    pub const UNKNOWN: Format = Format {
        kind: Kind::Unknown,
        valid: false,
        packed: false,
    };

    fn new(kind: Kind, valid: bool, packed: bool) -> Format {
        Format {
            kind,
            valid,
            packed,
        }
    }

    /// A known format whose checked structure is valid (text and empty included).
    pub fn is_valid_known(&self) -> bool {
        self.valid && self.kind != Kind::Unknown
    }

    /// An explicitly encrypted container.
    pub fn is_encrypted(&self) -> bool {
        self.kind.is_encrypted() && self.valid
    }
}

// ---------------------------------------------------------------------------------------
// Small total readers.

fn get(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}
fn u16le(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes([get(b, i)?, get(b, i.checked_add(1)?)?]))
}
fn u16be(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([get(b, i)?, get(b, i.checked_add(1)?)?]))
}
fn u32le(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u32be(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

// ---------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, as used by PNG, gzip, zip, xz, 7z), table driven.

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

/// Continue a CRC-32: `crc32_update(crc32(a), b) == crc32(a ++ b)`.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

// ---------------------------------------------------------------------------------------

type Checker = fn(&[u8], u64) -> Option<Format>;

thread_local! {
    /// Nesting of [`sniff_nested`] (decoded payloads are sniffed, but not without end).
    static DEPTH: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// [`sniff`] of a decoded payload (its size is unknown: taken as large).
/// Nested decoding stops at depth 2, where stream formats are taken at their headers.
pub fn sniff_nested(head: &[u8]) -> Format {
    let d = DEPTH.with(|d| d.get());
    if d >= 2 {
        return Format::UNKNOWN;
    }
    DEPTH.with(|x| x.set(d + 1));
    let f = sniff_impl(head, u64::MAX / 2, None);
    DEPTH.with(|x| x.set(d));
    f
}

/// Detect the format of a file from its `head` (the first bytes) and its total `size`.
pub fn sniff(head: &[u8], size: u64) -> Format {
    sniff_impl(head, size, None)
}

/// [`sniff`] with the byte histogram of `head` already at hand (it must be
/// `Histogram::of(head)`): the text check is then answered from the counts.
pub(crate) fn sniff_with(head: &[u8], size: u64, hist: &Histogram) -> Format {
    sniff_impl(head, size, Some(hist))
}

fn sniff_impl(head: &[u8], size: u64, hist: Option<&Histogram>) -> Format {
    if head.is_empty() {
        return if size == 0 {
            Format::new(Kind::Empty, true, false)
        } else {
            Format::UNKNOWN
        };
    }
    // Checked in order of specificity; each checker returns None when its magic is absent.
    const CHECKERS: &[Checker] = &[
        openssl, age, pgp_armour, gzip, zstd, xz, bzip2, zip, seven_zip, png, jpeg, gif, pdf,
        sqlite, elf, git_pack, dicom, tar, ole2, media, gpg, zlib,
    ];
    for c in CHECKERS {
        if let Some(f) = c(head, size) {
            return f;
        }
    }
    let f = match hist {
        Some(h) => text(head, size, h),
        None => text(head, size, &Histogram::of(head)),
    };
    f.unwrap_or(Format::UNKNOWN)
}

fn openssl(h: &[u8], size: u64) -> Option<Format> {
    if !h.starts_with(b"Salted__") {
        return None;
    }
    // 8-byte magic + 8-byte salt + at least one cipher block (16 bytes).
    Some(Format::new(
        Kind::OpensslEnc,
        size >= 32 && h.len() >= 16,
        true,
    ))
}

fn age(h: &[u8], _: u64) -> Option<Format> {
    if h.starts_with(b"age-encryption.org/v1\n") {
        // The header continues with recipient stanzas "-> ".
        let valid = h.len() < 25 || h[22..].starts_with(b"-> ");
        return Some(Format::new(Kind::Age, valid, true));
    }
    if h.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----") {
        return Some(Format::new(Kind::Age, true, true));
    }
    None
}

fn pgp_armour(h: &[u8], _: u64) -> Option<Format> {
    // Allow leading whitespace.
    let start = h.iter().position(|b| !b.is_ascii_whitespace())?;
    if h[start..].starts_with(b"-----BEGIN PGP MESSAGE-----") {
        return Some(Format::new(Kind::PgpArmoured, true, true));
    }
    None
}

fn gzip(h: &[u8], size: u64) -> Option<Format> {
    if !h.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let bad = Some(Format::new(Kind::Gzip, false, true));
    if get(h, 2)? != 8 || size < 18 {
        return bad;
    }
    let flg = get(h, 3)?;
    if flg & 0xe0 != 0 {
        return bad;
    }
    let xfl = get(h, 8).unwrap_or(0);
    let os = get(h, 9).unwrap_or(0);
    if !matches!(xfl, 0 | 2 | 4) || !(os <= 13 || os == 255) {
        return bad;
    }
    // Skip the optional fields; if they run past the head we cannot check further.
    let mut p = 10usize;
    let ok = Some(Format::new(Kind::Gzip, true, true));
    if flg & 4 != 0 {
        let Some(xlen) = u16le(h, p) else { return ok };
        p += 2 + xlen as usize;
    }
    for bit in [8u8, 16] {
        if flg & bit != 0 {
            match h.get(p..).and_then(|s| s.iter().position(|&b| b == 0)) {
                Some(z) => p += z + 1,
                None => return ok,
            }
        }
    }
    if flg & 2 != 0 {
        p += 2;
    }
    if (p as u64) + 8 > size {
        return bad;
    }
    match get(h, p) {
        // BTYPE (bits 1-2) = 3 is reserved.
        Some(b) if (b >> 1) & 3 == 3 => return bad,
        None => return ok,
        _ => {}
    }
    // The deflate data must decode, and not to ciphertext (a "stored" block of random
    // bytes is a valid stream that compresses nothing).
    match decode::gzip_prefix(h) {
        Some(r) if !r.ok || r.payload_random() => bad,
        _ => ok,
    }
}

fn zlib(h: &[u8], size: u64) -> Option<Format> {
    let cmf = get(h, 0)?;
    let flg = get(h, 1)?;
    if cmf & 0x0f != 8 || cmf >> 4 > 7 || !(cmf as u16 * 256 + flg as u16).is_multiple_of(31) {
        return None;
    }
    // Preset dictionaries are essentially never used in files; a set FDICT bit on a
    // two-byte magic this weak is more likely a coincidence.
    if flg & 0x20 != 0 || size < 8 {
        return None;
    }
    match get(h, 2) {
        Some(b) if (b >> 1) & 3 == 3 => None,
        None => Some(Format::new(Kind::Zlib, true, true)),
        // A two-byte magic this weak is only zlib when the stream decodes (to something
        // that is not ciphertext).
        _ => match decode::zlib_prefix(h) {
            Some(r) if r.ok && !r.payload_random() => Some(Format::new(Kind::Zlib, true, true)),
            _ => None,
        },
    }
}

fn zstd(h: &[u8], _: u64) -> Option<Format> {
    if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // Frame header descriptor: bit 3 is reserved and must be zero.
        let valid = get(h, 4).is_none_or(|d| d & 0x08 == 0) && zstd_block_ok(h);
        return Some(Format::new(Kind::Zstd, valid, true));
    }
    // Skippable frames 0x184D2A50..=0x184D2A5F.
    if h.len() >= 4 && h[0] & 0xf0 == 0x50 && h[1..4] == [0x2a, 0x4d, 0x18] {
        return Some(Format::new(Kind::Zstd, true, true));
    }
    None
}

/// The first block of a zstd frame: not the reserved type, a sane size, and a raw
/// (uncompressed) block that is not ciphertext.
fn zstd_block_ok(h: &[u8]) -> bool {
    let Some(fhd) = get(h, 4) else { return true };
    let single = fhd & 0x20 != 0;
    let did = [0usize, 1, 2, 4][(fhd & 3) as usize];
    let fcs = match fhd >> 6 {
        0 => usize::from(single),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let b = 5 + usize::from(!single) + did + fcs;
    let (Some(b0), Some(b1), Some(b2)) = (get(h, b), get(h, b + 1), get(h, b + 2)) else {
        return true;
    };
    let bh = b0 as u32 | (b1 as u32) << 8 | (b2 as u32) << 16;
    let size = (bh >> 3) as usize;
    let ok = match (bh >> 1) & 3 {
        3 => false,
        2 => size <= 128 * 1024,
        0 => {
            let raw = h.get(b + 3..).map_or(&[][..], |r| &r[..r.len().min(size)]);
            !(crate::stats::looks_random(raw) || crate::stats::looks_armoured(raw))
        }
        _ => true,
    };
    // A last block that ends inside the head is followed by the frame checksum and then
    // only another frame (or nothing).
    let stored = match (bh >> 1) & 3 {
        1 => 1,
        _ => size,
    };
    let next = b + 3 + stored + if fhd & 4 != 0 { 4 } else { 0 };
    let follows_ok = bh & 1 == 0
        || h.get(next..next + 4).is_none_or(|m| {
            m == [0x28, 0xb5, 0x2f, 0xfd] || (m[0] & 0xf0 == 0x50 && m[1..] == [0x2a, 0x4d, 0x18])
        });
    ok && follows_ok
}

/// LZMA2 in the first block of an xz stream: the block header's CRC-32, and a first chunk
/// that resets the dictionary (an uncompressed first chunk must not be ciphertext).
fn xz_block_ok(h: &[u8]) -> bool {
    let Some(b) = get(h, 12) else { return true };
    if b == 0 {
        return true; // index: an empty stream
    }
    let real = (b as usize + 1) * 4;
    let (Some(hdr), Some(crc)) = (h.get(12..12 + real - 4), u32le(h, 12 + real - 4)) else {
        return true;
    };
    if crc32(hdr) != crc {
        return false;
    }
    let flags = hdr.get(1).copied().unwrap_or(0);
    if flags & 0x3c != 0 {
        return false; // reserved bits
    }
    if flags & 3 != 0 {
        return true; // a filter chain (BCJ, delta) before LZMA2: not checked further
    }
    // Skip the optional compressed / uncompressed sizes (varints), then the filter id.
    let mut p = 2usize;
    for bit in [0x40u8, 0x80] {
        if flags & bit != 0 {
            while hdr.get(p).is_some_and(|v| v & 0x80 != 0) {
                p += 1;
            }
            p += 1;
        }
    }
    if hdr.get(p) != Some(&0x21) {
        return true;
    }
    let d = 12 + real;
    match get(h, d) {
        None | Some(0) => true,
        Some(1) => {
            let raw = h.get(d + 3..).unwrap_or(&[]);
            let n = u16be(h, d + 1).map_or(0, |n| n as usize + 1);
            let raw = &raw[..raw.len().min(n)];
            !(crate::stats::looks_random(raw) || crate::stats::looks_armoured(raw))
        }
        Some(c) => c >= 0xe0,
    }
}

fn xz(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return None;
    }
    let valid = match (h.get(6..8), u32le(h, 8)) {
        (Some(flags), Some(crc)) => {
            flags[0] == 0 && matches!(flags[1], 0 | 1 | 4 | 10) && crc32(flags) == crc
        }
        _ => true,
    } && xz_block_ok(h);
    Some(Format::new(Kind::Xz, valid, true))
}

fn bzip2(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(b"BZh") {
        return None;
    }
    let level_ok = get(h, 3).is_none_or(|b| (b'1'..=b'9').contains(&b));
    let block = h.get(4..10);
    let block_ok = block.is_none_or(|b| {
        b == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59] || b == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90]
    });
    Some(Format::new(Kind::Bzip2, level_ok && block_ok, true))
}

fn zip(h: &[u8], size: u64) -> Option<Format> {
    if h.starts_with(b"PK\x05\x06") {
        // Empty archive: just the end-of-central-directory record.
        return Some(Format::new(Kind::Zip, size >= 22, true));
    }
    if !h.starts_with(b"PK\x03\x04") {
        return None;
    }
    let bad = Some(Format::new(Kind::Zip, false, true));
    let mut p = 0usize;
    let mut encrypted = false;
    let mut entries = 0;
    // Walk the local headers that lie inside the head.
    while let Some(sig) = u32le(h, p) {
        match sig {
            0x0403_4b50 => {}
            // Central directory, end of central directory, data descriptor, split marker.
            0x0201_4b50 | 0x0605_4b50 | 0x0807_4b50 | 0x3030_4b50 if entries > 0 => break,
            _ => return bad,
        }
        let (Some(ver), Some(flags), Some(method)) =
            (u16le(h, p + 4), u16le(h, p + 6), u16le(h, p + 8))
        else {
            break;
        };
        if ver & 0xff > 63
            || !matches!(method, 0 | 1 | 6 | 8 | 9 | 12 | 14 | 19 | 93 | 95 | 98 | 99)
        {
            return bad;
        }
        if flags & 1 != 0 || method == 99 {
            encrypted = true;
        }
        let (Some(csize), Some(nlen), Some(xlen)) =
            (u32le(h, p + 18), u16le(h, p + 26), u16le(h, p + 28))
        else {
            break;
        };
        if nlen == 0 || nlen > 1024 {
            return bad;
        }
        if let Some(name) = h.get(p + 30..p + 30 + nlen as usize) {
            if name.contains(&0) {
                return bad;
            }
        }
        entries += 1;
        let data = p as u64 + 30 + nlen as u64 + xlen as u64;
        if data > size {
            return bad;
        }
        // The entry's data inside the head must be what the header says: stored data with
        // its CRC-32, deflated data a stream that decodes.
        if !encrypted && !zip_entry_ok(h, data, csize, flags, method, u32le(h, p + 14)) {
            return bad;
        }
        // With a data descriptor (bit 3) or zip64 the sizes in the local header are not
        // usable: stop walking.
        if flags & 8 != 0 || csize == u32::MAX || encrypted {
            break;
        }
        let next = data + csize as u64;
        if next + 4 > size {
            // The archive must end with a central directory after the last entry.
            return bad;
        }
        p = match usize::try_from(next) {
            Ok(n) => n,
            Err(_) => break,
        };
        if p >= h.len() || entries > 10_000 {
            break;
        }
    }
    if encrypted {
        return Some(Format::new(Kind::ZipEncrypted, true, true));
    }
    Some(Format::new(Kind::Zip, true, true))
}

/// Check the part of one zip entry's data that lies in the head.
fn zip_entry_ok(
    h: &[u8],
    data: u64,
    csize: u32,
    flags: u16,
    method: u16,
    crc: Option<u32>,
) -> bool {
    let Ok(start) = usize::try_from(data) else {
        return true;
    };
    let Some(rest) = h.get(start..) else {
        return true;
    };
    let sized = flags & 8 == 0 && csize != u32::MAX;
    let len = if sized {
        (csize as usize).min(rest.len())
    } else {
        rest.len()
    };
    let d = &rest[..len];
    match method {
        0 if sized && (csize as usize) <= rest.len() => crc.is_none_or(|c| crc32(d) == c),
        8 if d.len() >= 16 => decode::inflate_prefix(d).ok,
        _ => true,
    }
}

fn seven_zip(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c]) {
        return None;
    }
    let valid = match (get(h, 6), u32le(h, 8), h.get(12..32)) {
        (Some(major), Some(crc), Some(start)) => major == 0 && crc32(start) == crc,
        (Some(major), _, _) => major == 0,
        _ => true,
    };
    Some(Format::new(Kind::SevenZip, valid, true))
}

fn png(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        return None;
    }
    let bad = Some(Format::new(Kind::Png, false, true));
    let mut p = 8usize;
    let mut first = true;
    let mut idat: Option<&[u8]> = None;
    while let (Some(len), Some(ty)) = (u32be(h, p), h.get(p + 4..p + 8)) {
        if len > 0x7fff_ffff || !ty.iter().all(|b| b.is_ascii_alphabetic()) {
            return bad;
        }
        if first && (ty != b"IHDR" || len != 13) {
            return bad;
        }
        first = false;
        let end = p as u64 + 12 + len as u64;
        let Ok(end) = usize::try_from(end) else { break };
        if ty == b"IDAT" && idat.is_none() {
            idat = h.get(p + 8..(end - 4).min(h.len()));
        }
        match (h.get(p + 4..end - 4), u32be(h, end - 4)) {
            (Some(body), Some(crc)) => {
                if crc32(body) != crc {
                    return bad;
                }
            }
            _ => break,
        }
        if ty == b"IEND" {
            break;
        }
        p = end;
    }
    if first && h.len() >= 33 {
        return bad;
    }
    // The image data is one zlib stream: its start (in the head) must decode.
    if let Some(d) = idat.filter(|d| d.len() >= 2) {
        match decode::zlib_prefix(d) {
            Some(r) if r.ok => {}
            _ => return bad,
        }
    }
    Some(Format::new(Kind::Png, true, true))
}

fn jpeg(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(&[0xff, 0xd8, 0xff]) {
        return None;
    }
    let bad = Some(Format::new(Kind::Jpeg, false, true));
    let mut p = 2usize;
    let mut segments = 0;
    while let (Some(ff), Some(m)) = (get(h, p), get(h, p + 1)) {
        if ff != 0xff {
            return bad;
        }
        match m {
            // Fill bytes.
            0xff => {
                p += 1;
                continue;
            }
            // Standalone markers.
            0x01 | 0xd0..=0xd7 => {
                p += 2;
                continue;
            }
            // Start of scan: entropy-coded data follows; stop here.
            0xda => break,
            0xd9 if segments > 0 => break,
            0xc0..=0xfe => {}
            _ => return bad,
        }
        let Some(len) = u16be(h, p + 2) else { break };
        if len < 2 {
            return bad;
        }
        p += 2 + len as usize;
        segments += 1;
    }
    Some(Format::new(Kind::Jpeg, true, true))
}

fn gif(h: &[u8], _: u64) -> Option<Format> {
    if !(h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a")) {
        return None;
    }
    let valid = match (u16le(h, 6), u16le(h, 8)) {
        (Some(w), Some(hh)) => w > 0 && hh > 0,
        _ => true,
    };
    Some(Format::new(Kind::Gif, valid, true))
}

fn pdf(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(b"%PDF-") {
        return None;
    }
    let valid = match (get(h, 5), get(h, 6), get(h, 7)) {
        (Some(a), Some(b'.'), Some(c)) => a.is_ascii_digit() && c.is_ascii_digit(),
        (Some(a), None, None) => a.is_ascii_digit(),
        (None, None, None) => true,
        _ => false,
    };
    // Not `packed`: most of a PDF is object syntax (text) between its compressed streams.
    // Every FlateDecode stream that starts in the head must decode (zlib); a PDF using its
    // own encryption (an /Encrypt dictionary) has encrypted streams and is not checked.
    let valid = valid && (find(h, b"/Encrypt").is_some() || pdf_streams_ok(h));
    Some(Format::new(Kind::Pdf, valid, false))
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || h.len() < needle.len() {
        return None;
    }
    h.windows(needle.len()).position(|w| w == needle)
}

/// The first (up to 4) `/FlateDecode` streams starting in the head decode as zlib.
fn pdf_streams_ok(h: &[u8]) -> bool {
    let mut from = 0usize;
    let mut checked = 0;
    while checked < 4 {
        let Some(i) = h.get(from..).and_then(|r| find(r, b"stream")) else {
            return true;
        };
        let kw = from + i;
        from = kw + 6;
        // "endstream" is not a stream start; the keyword is followed by CRLF or LF.
        if kw >= 3 && &h[kw - 3..kw] == b"end" {
            continue;
        }
        let data = match (get(h, kw + 6), get(h, kw + 7)) {
            (Some(b'\r'), Some(b'\n')) => kw + 8,
            (Some(b'\n'), _) => kw + 7,
            _ => continue,
        };
        // The stream's dictionary precedes the keyword (within its object).
        let dict = &h[kw.saturating_sub(512)..kw];
        let obj_start = dict
            .windows(3)
            .rposition(|w| w == b"obj")
            .map_or(0, |i| i + 3);
        let dict = &dict[obj_start..];
        if find(dict, b"/FlateDecode").is_none() || find(dict, b"/DecodeParms").is_some() {
            continue;
        }
        let Some(d) = h.get(data..).filter(|d| d.len() >= 16) else {
            return true;
        };
        checked += 1;
        match decode::zlib_prefix(d) {
            Some(r) if r.ok => {}
            _ => return false,
        }
    }
    true
}

fn sqlite(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(b"SQLite format 3\0") {
        return None;
    }
    let bad = Some(Format::new(Kind::Sqlite, false, false));
    let Some(ps) = u16be(h, 16) else {
        return Some(Format::new(Kind::Sqlite, true, false));
    };
    let page = if ps == 1 { 65536usize } else { ps as usize };
    if !page.is_power_of_two() || !(512..=65536).contains(&page) {
        return bad;
    }
    // File format versions, payload fractions (must be 64, 32, 32).
    if let Some(x) = h.get(18..24) {
        if !matches!(x[0], 1 | 2) || !matches!(x[1], 1 | 2) || x[3..6] != [64, 32, 32] {
            return bad;
        }
    }
    // B-tree page header of page 1 at offset 100.
    if let Some(t) = get(h, 100) {
        if !matches!(t, 2 | 5 | 10 | 13) {
            return bad;
        }
        let hdr = if matches!(t, 2 | 5) { 12 } else { 8 };
        if let (Some(cells), Some(content)) = (u16be(h, 103), u16be(h, 105)) {
            let content = if content == 0 {
                65536
            } else {
                content as usize
            };
            if 100 + hdr + 2 * cells as usize > page || content > page {
                return bad;
            }
            // Cell pointers inside the head must point into the cell content area.
            for i in 0..cells as usize {
                match u16be(h, 100 + hdr + 2 * i) {
                    Some(ptr) if (ptr as usize) >= content && (ptr as usize) < page => {}
                    Some(_) => return bad,
                    None => break,
                }
            }
        }
    }
    Some(Format::new(Kind::Sqlite, true, false))
}

fn elf(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(b"\x7fELF") {
        return None;
    }
    let valid = match (get(h, 4), get(h, 5), get(h, 6)) {
        (Some(c), Some(d), Some(v)) => matches!(c, 1 | 2) && matches!(d, 1 | 2) && v == 1,
        _ => true,
    };
    Some(Format::new(Kind::Elf, valid, false))
}

fn git_pack(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(b"PACK") {
        return None;
    }
    let valid = u32be(h, 4).is_none_or(|v| v == 2 || v == 3);
    Some(Format::new(Kind::GitPack, valid, true))
}

/// Transfer syntaxes with uncompressed pixel data.
const DICOM_UNCOMPRESSED: [&[u8]; 3] = [
    b"1.2.840.10008.1.2",
    b"1.2.840.10008.1.2.1",
    b"1.2.840.10008.1.2.2",
];

fn dicom_long_vr(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

fn dicom(h: &[u8], size: u64) -> Option<Format> {
    if h.get(128..132) != Some(b"DICM") {
        return None;
    }
    let bad = Some(Format::new(Kind::Dicom, false, false));
    let mut p = 132usize;
    let mut ts: Option<&[u8]> = None;
    let mut meta = 0;
    let mut last: u32 = 0;
    // File meta information: group 0002, always explicit VR little endian.
    loop {
        let (Some(g), Some(e)) = (u16le(h, p), u16le(h, p + 2)) else {
            // Head ends inside the meta group.
            return Some(Format::new(Kind::Dicom, meta > 0 || h.len() < 140, false));
        };
        if g != 2 {
            break;
        }
        let Some(vr) = h.get(p + 4..p + 6) else {
            return Some(Format::new(Kind::Dicom, true, false));
        };
        if !vr.iter().all(|b| b.is_ascii_uppercase()) {
            return bad;
        }
        let tag = (g as u32) << 16 | e as u32;
        if tag < last {
            return bad;
        }
        last = tag;
        let (len, hdr) = if dicom_long_vr(vr) {
            (u32le(h, p + 8), 12)
        } else {
            (u16le(h, p + 6).map(u32::from), 8)
        };
        let Some(len) = len else {
            return Some(Format::new(Kind::Dicom, true, false));
        };
        if len == u32::MAX || p as u64 + hdr as u64 + len as u64 > size || len > 65536 {
            return bad;
        }
        let vstart = p + hdr;
        let vend = vstart + len as usize;
        if e == 0x0010 {
            if let Some(v) = h.get(vstart..vend) {
                let v = v.strip_suffix(&[0]).unwrap_or(v);
                let v = v.strip_suffix(b" ").unwrap_or(v);
                ts = Some(v);
            }
        }
        meta += 1;
        p = vend;
    }
    if meta == 0 {
        return bad;
    }
    let Some(ts) = ts else {
        // Meta group without a transfer syntax (or beyond the head): accept.
        return Some(Format::new(Kind::Dicom, true, false));
    };
    let packed = !DICOM_UNCOMPRESSED.contains(&ts);
    let explicit = ts != b"1.2.840.10008.1.2";
    if ts == b"1.2.840.10008.1.2.1.99" {
        // Deflated data set: the rest is a deflate stream, which must decode.
        let ok = h
            .get(p..)
            .is_none_or(|d| d.len() < 16 || decode::inflate_prefix(d).ok);
        return Some(Format::new(Kind::Dicom, ok, true));
    }
    let big_endian = ts == b"1.2.840.10008.1.2.2";
    let rd16 = |b: &[u8], i: usize| if big_endian { u16be(b, i) } else { u16le(b, i) };
    let rd32 = |b: &[u8], i: usize| if big_endian { u32be(b, i) } else { u32le(b, i) };
    // Data set: walk top-level elements through the head.
    let mut last: u32 = 0;
    let mut n = 0;
    while let (Some(g), Some(e)) = (rd16(h, p), rd16(h, p + 2)) {
        let tag = (g as u32) << 16 | e as u32;
        if (tag <= last && n > 0) || (g < 8 && g != 0) || g == 0xfffe {
            return Some(Format::new(Kind::Dicom, false, packed));
        }
        last = tag;
        n += 1;
        let (len, hdr) = if explicit {
            let Some(vr) = h.get(p + 4..p + 6) else { break };
            if !vr.iter().all(|b| b.is_ascii_uppercase()) {
                return Some(Format::new(Kind::Dicom, false, packed));
            }
            if dicom_long_vr(vr) {
                (rd32(h, p + 8), 12)
            } else {
                (rd16(h, p + 6).map(u32::from), 8)
            }
        } else {
            (rd32(h, p + 4), 8)
        };
        let Some(len) = len else { break };
        if tag == 0x7fe0_0010 && len != u32::MAX && !packed {
            // Uncompressed pixel data re-encoded in place as a zlib or deflate stream (an
            // image archiver saving space) is compression, not damage.
            if let Some(v) = h.get(p + hdr..).filter(|v| v.len() >= 64) {
                let r = decode::zlib_prefix(v).unwrap_or_else(|| decode::inflate_prefix(v));
                if r.verified(v.len().min(256)) && !r.payload_random() {
                    return Some(Format::new(Kind::Dicom, true, true));
                }
            }
            break;
        }
        if tag == 0x7fe0_0010 || len == u32::MAX {
            // Pixel data, or a sequence / encapsulated item of undefined length: stop.
            break;
        }
        if p as u64 + hdr as u64 + len as u64 > size {
            return Some(Format::new(Kind::Dicom, false, packed));
        }
        p = match p.checked_add(hdr + len as usize) {
            Some(q) => q,
            None => break,
        };
        if p >= h.len() {
            break;
        }
    }
    Some(Format::new(Kind::Dicom, true, packed))
}

fn ole2(h: &[u8], _: u64) -> Option<Format> {
    if !h.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        return None;
    }
    // Major version 3 (512-byte sectors) or 4 (4096), byte order FFFE, mini sectors 64 B.
    let valid = match (
        u16le(h, 0x1a),
        u16le(h, 0x1c),
        u16le(h, 0x1e),
        u16le(h, 0x20),
    ) {
        (Some(major), Some(order), Some(shift), Some(mini)) => {
            order == 0xfffe && mini == 6 && matches!((major, shift), (3, 9) | (4, 12))
        }
        _ => true,
    };
    Some(Format::new(Kind::Ole2, valid, false))
}

/// Media and archive formats recognised by their magic and a field or two: their payload
/// is compressed, so only their headers are checked.
fn media(h: &[u8], _: u64) -> Option<Format> {
    let alnum4 = |b: Option<&[u8]>| {
        b.is_none_or(|b| b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b' '))
    };
    let (kind, valid) = if h.starts_with(b"RIFF") {
        (Kind::Riff, alnum4(h.get(8..12)))
    } else if h.get(4..8) == Some(b"ftyp") {
        let size = u32be(h, 0).unwrap_or(0);
        (Kind::IsoMedia, size >= 8 && alnum4(h.get(8..12)))
    } else if h.starts_with(b"II*\0") {
        (Kind::Tiff, u32le(h, 4).is_none_or(|o| o >= 8))
    } else if h.starts_with(b"MM\0*") {
        (Kind::Tiff, u32be(h, 4).is_none_or(|o| o >= 8))
    } else if h.starts_with(b"OggS") {
        (Kind::Ogg, get(h, 4).is_none_or(|v| v == 0))
    } else if h.starts_with(b"fLaC") {
        (Kind::Flac, get(h, 4).is_none_or(|t| t & 0x7f <= 6))
    } else if h.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        (Kind::Matroska, true)
    } else if h.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        // FLG: version 01, reserved bit 1 zero; BD: reserved bits zero.
        let flg = get(h, 4).is_none_or(|f| f >> 6 == 1 && f & 2 == 0);
        let bd = get(h, 5).is_none_or(|b| b & 0x8f == 0);
        (Kind::Lz4, flg && bd)
    } else if h.starts_with(b"Rar!\x1a\x07") {
        (Kind::Rar, get(h, 6).is_none_or(|v| v <= 1))
    } else {
        return None;
    };
    Some(Format::new(kind, valid, true))
}

fn tar_checksum_ok(hdr: &[u8]) -> bool {
    if hdr.len() < 512 {
        return true;
    }
    let field = &hdr[148..156];
    let mut stored: u32 = 0;
    let mut digits = 0;
    for &b in field {
        match b {
            b'0'..=b'7' => {
                stored = stored.saturating_mul(8).saturating_add((b - b'0') as u32);
                digits += 1;
            }
            b' ' | 0 if digits > 0 => break,
            b' ' => {}
            _ => return false,
        }
    }
    if digits == 0 {
        return false;
    }
    let sum: u32 = hdr[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == stored
}

fn tar_size(hdr: &[u8]) -> Option<u64> {
    let f = hdr.get(124..136)?;
    if f[0] & 0x80 != 0 {
        // Base-256 encoding (GNU) for large files.
        let mut v: u64 = 0;
        for &b in &f[4..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let mut v: u64 = 0;
    for &b in f {
        match b {
            b'0'..=b'7' => v = v.checked_mul(8)?.checked_add((b - b'0') as u64)?,
            b' ' | 0 => {}
            _ => return None,
        }
    }
    Some(v)
}

fn tar(h: &[u8], size: u64) -> Option<Format> {
    let magic = h.get(257..262)?;
    if magic != b"ustar" {
        return None;
    }
    let bad = Some(Format::new(Kind::Tar, false, false));
    let mut p = 0usize;
    while let Some(hdr) = h.get(p..p + 512) {
        if hdr.iter().all(|&b| b == 0) {
            break; // end-of-archive marker
        }
        if hdr.get(257..262) != Some(b"ustar") || !tar_checksum_ok(hdr) {
            return bad;
        }
        let Some(sz) = tar_size(hdr) else { return bad };
        let next = (p as u64)
            .saturating_add(512)
            .saturating_add(sz.div_ceil(512).saturating_mul(512));
        if next > size {
            return bad;
        }
        p = match usize::try_from(next) {
            Ok(n) if n < h.len() => n,
            _ => break,
        };
    }
    Some(Format::new(Kind::Tar, true, false))
}

fn gpg(h: &[u8], size: u64) -> Option<Format> {
    let b0 = get(h, 0)?;
    if b0 & 0x80 == 0 {
        return None;
    }
    let (tag, body) = if b0 & 0x40 != 0 {
        // New format: length in 1, 2 or 5 bytes (partial lengths allowed for data packets).
        let tag = b0 & 0x3f;
        let l0 = get(h, 1)?;
        let off = match l0 {
            0..=191 => 2,
            192..=223 => 3,
            224..=254 => 2,
            255 => 6,
        };
        (tag, off)
    } else {
        let tag = (b0 >> 2) & 0x0f;
        let off = match b0 & 3 {
            0 => 2,
            1 => 3,
            2 => 5,
            _ => 1,
        };
        (tag, off)
    };
    if size < 16 {
        return None;
    }
    let v = get(h, body);
    let ok = match tag {
        // Public-key encrypted session key: version 3 (or 6), then key id / algorithm.
        1 => matches!(v, Some(3 | 6)),
        // Symmetric-key encrypted session key: version 4, 5 or 6; cipher algorithm 1..=13.
        3 => {
            matches!(v, Some(4..=6))
                && get(h, body + 1).is_some_and(|c| (1..=13).contains(&c) || v != Some(4))
        }
        // Symmetrically encrypted data (no version byte): only old-style; accept when the
        // packet is long.
        9 => size >= 64,
        // Sym. encrypted integrity protected data: version 1 or 2.
        18 => matches!(v, Some(1 | 2)),
        // AEAD encrypted data: version 1.
        20 => v == Some(1),
        _ => return None,
    };
    if ok {
        Some(Format::new(Kind::Gpg, true, true))
    } else {
        None
    }
}

/// Bytes that rule out text: C0 controls other than tab, LF, FF, CR and ESC, and DEL.
const fn control_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = !matches!(b, 0x09 | 0x0a | 0x0d | 0x0c | 0x1b);
        b += 1;
    }
    t[0x7f] = true;
    t
}

static CONTROL: [bool; 256] = control_table();

/// UTF-16 text: a byte-order mark, or (without one) every other byte zero and the others
/// printable ASCII, in at least 90 % of the code units.
fn utf16_text(h: &[u8]) -> bool {
    if h.len() < 16 {
        return false;
    }
    if h.starts_with(&[0xff, 0xfe]) || h.starts_with(&[0xfe, 0xff]) {
        return true;
    }
    let units = h.len() / 2;
    let printable = |b: u8| (0x20..0x7f).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t');
    let le = h
        .chunks_exact(2)
        .filter(|c| printable(c[0]) && c[1] == 0)
        .count();
    let be = h
        .chunks_exact(2)
        .filter(|c| c[0] == 0 && printable(c[1]))
        .count();
    le.max(be) * 10 >= units * 9
}

/// `hist` is the byte histogram of `h`.
fn text(h: &[u8], size: u64, hist: &Histogram) -> Option<Format> {
    // UTF-16 without a byte-order mark needs a zero byte in 90 % of the code units.
    let bom = h.starts_with(&[0xff, 0xfe]) || h.starts_with(&[0xfe, 0xff]);
    let zeros = hist.count(0) as usize;
    if zeros != 0 && (bom || zeros * 10 >= (h.len() / 2) * 9) && utf16_text(h) {
        return Some(Format::new(Kind::Text, true, false));
    }
    // No control bytes (other than tab, LF, FF, CR, ESC).
    if (0..=255u8).any(|b| CONTROL[b as usize] && hist.count(b) != 0) {
        return None;
    }
    // Latin-1 / Windows-1252 text: a minority of high bytes, no controls.
    let high: u64 = (0x80..=0xffu8).map(|b| hist.count(b) as u64).sum();
    if high * 4 <= h.len() as u64 {
        return Some(Format::new(Kind::Text, true, false));
    }
    // UTF-8, allowing a multi-byte sequence cut at the end of the sample.
    let utf8 = match std::str::from_utf8(h) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && (h.len() as u64) < size,
    };
    if utf8 {
        return Some(Format::new(Kind::Text, true, false));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text check as it was written before it used the histogram.
    fn text_reference(h: &[u8], size: u64) -> Option<Format> {
        let utf8 = match std::str::from_utf8(h) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none() && (h.len() as u64) < size,
        };
        let mut high = 0usize;
        for &b in h {
            match b {
                b'\t' | b'\n' | b'\r' | 0x0c | 0x1b => {}
                0x00..=0x1f | 0x7f => return None,
                0x80..=0xff => high += 1,
                _ => {}
            }
        }
        if utf8 || high * 4 <= h.len() {
            return Some(Format::new(Kind::Text, true, false));
        }
        None
    }

    #[test]
    fn text_matches_reference() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = "Grüße, naïve café — 日本語 text\twith\r\nlines; ".repeat(40);
        for _ in 0..3000 {
            let len = (next() % 1200) as usize;
            let mut v: Vec<u8> = base.as_bytes()[..len.min(base.len())].to_vec();
            // A few random byte edits (controls, high bytes, broken sequences).
            for _ in 0..(next() % 4) {
                if !v.is_empty() {
                    let i = (next() as usize) % v.len();
                    v[i] = next() as u8;
                }
            }
            if next() % 3 == 0 {
                v = (0..len).map(|_| 0x80 | next() as u8).collect();
            }
            for size in [v.len() as u64, v.len() as u64 + 1] {
                assert_eq!(
                    text(&v, size, &Histogram::of(&v)),
                    text_reference(&v, size),
                    "{v:?} {size}"
                );
            }
        }
    }

    #[test]
    fn crc32_known() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32_update(crc32(b"1234"), b"56789"), 0xcbf4_3926);
    }

    #[test]
    fn basics() {
        assert_eq!(sniff(b"", 0).kind, Kind::Empty);
        assert_eq!(sniff(b"hello world\n", 12).kind, Kind::Text);
        assert_eq!(sniff("naïve café\n".as_bytes(), 100).kind, Kind::Text);
        let f = sniff(b"Salted__12345678abcdefghabcdefgh", 48);
        assert!(f.is_encrypted());
        assert_eq!(
            sniff(b"-----BEGIN PGP MESSAGE-----\n\nhQ", 500).kind,
            Kind::PgpArmoured
        );
        assert_eq!(
            sniff(b"age-encryption.org/v1\n-> X25519 abc\n", 500).kind,
            Kind::Age
        );
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\0", 5000).kind, Kind::Elf);
        assert_eq!(sniff(b"PACK\0\0\0\x02\0\0\0\x05", 5000).kind, Kind::GitPack);
        assert_eq!(sniff(&[0x78, 0x9c, 0x4b, 0x4c], 50).kind, Kind::Zlib);
        assert_eq!(sniff(&[0, 1, 2, 3, 0xff], 5).kind, Kind::Unknown);
    }

    #[test]
    fn xz_and_7z_crc() {
        let mut x = vec![0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4];
        x.extend_from_slice(&crc32(&[0, 4]).to_le_bytes());
        assert_eq!(sniff(&x, 100), Format::new(Kind::Xz, true, true));
        x[8] ^= 1;
        assert!(!sniff(&x, 100).valid);
    }

    #[test]
    fn gpg_packets() {
        // Old-format SKESK (tag 3, one-octet length), version 4, AES-256.
        assert_eq!(
            sniff(&[0x8c, 0x0d, 0x04, 0x09, 0x03, 0x08], 300).kind,
            Kind::Gpg
        );
        // New-format PKESK (0xc1), version 3.
        assert_eq!(sniff(&[0xc1, 0xc0, 0x4c, 0x03, 0, 0], 300).kind, Kind::Gpg);
        // Old-format PKESK 0x85 with a two-octet length.
        assert_eq!(sniff(&[0x85, 0x01, 0x0c, 0x03, 0, 0], 300).kind, Kind::Gpg);
        // SEIPD new format 0xd2, version 1.
        assert_eq!(sniff(&[0xd2, 0x50, 0x01, 0xaa], 300).kind, Kind::Gpg);
        // Literal data packet (tag 11) is not encryption.
        assert_ne!(sniff(&[0xcb, 0x10, b'b', 0], 300).kind, Kind::Gpg);
    }

    #[test]
    fn never_panics_on_prefixes_of_magics() {
        let magics: [&[u8]; 12] = [
            b"\x1f\x8b\x08\x1f",
            b"PK\x03\x04\x14\0\x08\0\x08\0",
            b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR",
            b"\xff\xd8\xff\xe0\0\x10JFIF",
            b"SQLite format 3\0\x10\0\x01\x01\0@  ",
            b"7z\xbc\xaf\x27\x1c\0\x04",
            b"\xfd7zXZ\0\0\x04",
            b"BZh91AY&SY",
            b"GIF89a\x01\0",
            b"%PDF-1.7\n",
            b"\xc3\x0d\x04\x09",
            b"\xff\xff\xff\xff\xff",
        ];
        for m in magics {
            for n in 0..=m.len() {
                for size in [0, n as u64, 10, 1 << 20, u64::MAX] {
                    let _ = sniff(&m[..n], size);
                }
            }
        }
        let mut d = vec![0u8; 600];
        d[128..132].copy_from_slice(b"DICM");
        for n in 0..d.len() {
            let _ = sniff(&d[..n], 1 << 20);
        }
        let mut t = vec![0u8; 1024];
        t[257..262].copy_from_slice(b"ustar");
        for n in 0..t.len() {
            let _ = sniff(&t[..n], u64::MAX);
        }
    }
}
