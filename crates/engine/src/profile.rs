//! Compact content profiles: what the engine remembers about a file's content.
//!
//! A [`Profile`] is computed once from a [`Sample`] and keeps no raw bytes: the size, the
//! sniffed [`Format`], and for each sampled block (at most 3) its offset, its entropy
//! (quantised to 1/32 bit) and a few flags. It is 72 bytes, and the engine stores each
//! distinct profile once (interned, shared by the files and baselines that have it).
//!
//! Block flags:
//! * `random`: one of the block's windows looks like uniform random bytes. The windows are
//!   the whole block, each half, and for the head block the *body* after the first
//!   `min(512, len/2)` bytes. Halves catch intermittent encryption (only the first 4 KiB
//!   encrypted: the first half of the 8 KiB head is random, the whole is not); the body
//!   window catches header-preserving encryption (the first 16..512 bytes kept).
//! * `body_random` (head only): the body window is random.
//! * `body1k_random` (head only): the window after the first `min(1024, len/2)` bytes is
//!   random (a header of up to 1 KiB kept).
//! * `armoured`: the whole block is base64/hex-encoded random data.
//! * `constant`: every byte of the block has the same value (zero-filled, wiped).

use crate::event::Sample;
use crate::sniff::{self, Format, Kind};
use crate::stats::Histogram;

const F_RANDOM: u8 = 1;
const F_ARMOURED: u8 = 2;
const F_BODY_RANDOM: u8 = 4;
const F_CONSTANT: u8 = 8;
const F_BODY1K_RANDOM: u8 = 16;
const F_TAIL_OK: u8 = 32;
const F_STREAM: u8 = 64;
const F_TAIL: u8 = 128;

/// Profile of one sampled block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BlockProfile {
    /// Offset of the block in the file.
    pub offset: u64,
    entropy_q: u8,
    flags: u8,
}

impl BlockProfile {
    /// Analyse one block. `head` selects the extra body window.
    pub fn of(offset: u64, data: &[u8], head: bool) -> BlockProfile {
        Self::with_histogram(offset, data, head).0
    }

    /// [`BlockProfile::of`], also returning the histogram of the whole block.
    fn with_histogram(offset: u64, data: &[u8], head: bool) -> (BlockProfile, Histogram) {
        let len = data.len();
        let half = len / 2;
        let skip = if head { half.min(512) } else { 0 };
        let skip1k = if head { half.min(1024) } else { 0 };
        // One pass over the bytes, cut at skip, skip1k, half and len: the windows are the
        // whole block, prefixes of it, or the whole minus a prefix.
        let [p_skip, p_skip1k, first, whole] = Histogram::prefixes(data, [skip, skip1k, half, len]);
        let body = whole.minus(&p_skip);
        let body1k = whole.minus(&p_skip1k);
        let c2 = whole.minus(&first);
        let body_random = head && skip > 0 && body.looks_random();
        let body1k_random = head && skip1k > skip && (body_random || body1k.looks_random());
        let random =
            whole.looks_random() || first.looks_random() || c2.looks_random() || body_random;
        let mut flags = 0;
        if random {
            flags |= F_RANDOM;
        }
        if body_random {
            flags |= F_BODY_RANDOM;
        }
        if body1k_random {
            flags |= F_BODY1K_RANDOM;
        }
        if whole.looks_armoured() {
            flags |= F_ARMOURED;
        }
        if len > 0 && whole.count(data[0]) as usize == len {
            flags |= F_CONSTANT;
        }
        let entropy_q = (whole.entropy() * 32.0).round().clamp(0.0, 255.0) as u8;
        (
            BlockProfile {
                offset,
                entropy_q,
                flags,
            },
            whole,
        )
    }

    /// Some window of the block looks like uniform random bytes.
    pub fn random(&self) -> bool {
        self.flags & F_RANDOM != 0
    }
    /// The whole block is base64/hex-encoded random data.
    pub fn armoured(&self) -> bool {
        self.flags & F_ARMOURED != 0
    }
    /// The head after its first `min(512, len/2)` bytes is random.
    pub fn body_random(&self) -> bool {
        self.flags & F_BODY_RANDOM != 0
    }
    /// The head after its first `min(1024, len/2)` bytes is random.
    pub fn body1k_random(&self) -> bool {
        self.flags & F_BODY1K_RANDOM != 0
    }
    /// Every byte of the block has the same value.
    pub fn constant(&self) -> bool {
        self.flags & F_CONSTANT != 0
    }
    /// Random or armoured.
    pub fn ciphertext_like(&self) -> bool {
        self.flags & (F_RANDOM | F_ARMOURED) != 0
    }
    /// The block ends the file (the tail block).
    pub fn tail(&self) -> bool {
        self.flags & F_TAIL != 0
    }
    /// A tail block holding the end structure its format requires (zip end of central
    /// directory, PDF `%%EOF`, PNG `IEND`).
    pub fn tail_ok(&self) -> bool {
        self.flags & F_TAIL_OK != 0
    }
    /// (Head only.) A verified zlib/gzip stream starts in the head and runs to its end: the
    /// random-looking part of the head is compression (the flags describe only what
    /// precedes the stream).
    pub fn stream(&self) -> bool {
        self.flags & F_STREAM != 0
    }
    /// Entropy of the whole block in bits per byte (quantised to 1/32).
    pub fn entropy(&self) -> f32 {
        self.entropy_q as f32 / 32.0
    }
}

/// The four most frequent byte values (ties broken by the lower value).
fn top4(h: &Histogram) -> [u8; 4] {
    let mut best = [(0u32, 0u8); 4];
    for b in 0..=255u8 {
        let c = h.count(b);
        if c > best[3].0 {
            best[3] = (c, b);
            let mut i = 3;
            while i > 0 && best[i].0 > best[i - 1].0 {
                best.swap(i, i - 1);
                i -= 1;
            }
        }
    }
    let first = best[0].1;
    best.map(|(c, b)| if c == 0 { first } else { b })
}

/// Does a tail block hold the end structure of its format?
fn tail_ok(kind: Kind, data: &[u8]) -> bool {
    let has = |n: &[u8]| data.windows(n.len()).any(|w| w == n);
    match kind {
        Kind::Zip | Kind::ZipEncrypted => has(b"PK\x05\x06"),
        Kind::Pdf => has(b"%%EOF"),
        Kind::Png => has(b"IEND"),
        _ => false,
    }
}

/// Compact summary of a file's content. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// File size in bytes.
    pub size: u64,
    /// The sniffed format.
    pub format: Format,
    blocks: [BlockProfile; 3],
    n: u8,
    /// The four most frequent byte values of the head, most frequent first (all equal to
    /// the first when fewer distinct values occur); zeros when no head was sampled.
    top: [u8; 4],
    fp: u64,
}

impl Profile {
    /// Profile of a sample. At most three blocks are kept: the head and the first two
    /// others in sample order.
    pub fn of(sample: &Sample) -> Profile {
        let head = sample.head();
        let mut blocks = [BlockProfile::default(); 3];
        let mut n = 0usize;
        let mut top = [0u8; 4];
        let format = if head.is_empty() {
            sniff::sniff(head, sample.size)
        } else {
            let (b, whole) = BlockProfile::with_histogram(0, head, true);
            blocks[0] = b;
            n = 1;
            top = top4(&whole);
            sniff::sniff_with(head, sample.size, &whole)
        };
        // A random-looking head that is a header followed by a verified compressed stream
        // (an archiver re-encoding an image body in place) is compression: judge the header.
        let suspect = blocks[0].ciphertext_like() && !(format.valid && format.packed);
        if n == 1 && (suspect || !format.is_valid_known()) {
            if let Some(x) = crate::decode::find_stream(head, 0, 16) {
                let pre = &head[..x];
                let keep = blocks[0].flags & F_ARMOURED;
                let mut f = keep | F_STREAM;
                if crate::stats::looks_random(pre) {
                    f |= F_RANDOM;
                }
                blocks[0].flags = f;
            }
        }
        // Text that is a printable encoding (hex with separators, base32, base64 with
        // banners, ascii85, uuencode) of random bytes: armoured ciphertext.
        if n == 1 && format.kind == Kind::Text && !blocks[0].armoured() {
            if let Some((_, dec)) = crate::decode::armour(head) {
                let h = Histogram::of(&dec);
                if dec.len() >= 64
                    && h.looks_random()
                    && !sniff::sniff_nested(&dec).is_valid_known()
                {
                    blocks[0].flags |= F_ARMOURED;
                }
            }
        }
        for b in &sample.blocks {
            if n >= 3 {
                break;
            }
            if b.offset == 0 || b.data.is_empty() {
                continue;
            }
            let mut bp = BlockProfile::of(b.offset, &b.data, false);
            if b.offset + b.data.len() as u64 == sample.size {
                bp.flags |= F_TAIL;
                if tail_ok(format.kind, &b.data) {
                    bp.flags |= F_TAIL_OK;
                }
            }
            blocks[n] = bp;
            n += 1;
        }
        let mut fp =
            crate::stats::hash64(&head[..head.len().min(512)]) ^ sample.size.rotate_left(29);
        for b in &blocks[..n] {
            fp = (fp ^ (b.offset << 8 | b.entropy_q as u64)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Profile {
            size: sample.size,
            format,
            blocks,
            n: n as u8,
            top,
            fp,
        }
    }

    /// The four most frequent byte values of the head (see the field).
    pub fn top_bytes(&self) -> [u8; 4] {
        self.top
    }

    /// A cheap content fingerprint (size, first 512 bytes, block entropies): equal for a
    /// file and its copy, different for a transformed file.
    pub fn fingerprint(&self) -> u64 {
        self.fp
    }

    /// The analysed blocks, head first.
    pub fn blocks(&self) -> &[BlockProfile] {
        &self.blocks[..(self.n as usize).min(3)]
    }

    /// The head block's profile, if the head was sampled.
    pub fn head(&self) -> Option<&BlockProfile> {
        self.blocks().first().filter(|b| b.offset == 0)
    }

    /// Zero bytes.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Non-empty content whose every sampled block is one repeated byte value (all zeros
    /// after a wipe): whatever data was there is gone.
    pub fn wiped(&self) -> bool {
        !self.is_empty() && !self.blocks().is_empty() && self.blocks().iter().all(|b| b.constant())
    }

    /// The head ends in a verified compressed stream (see [`BlockProfile::stream`]).
    pub fn has_stream(&self) -> bool {
        self.head().is_some_and(|h| h.stream())
    }

    /// The sampled tail block, if any.
    pub fn tail(&self) -> Option<&BlockProfile> {
        self.blocks().iter().find(|b| b.tail())
    }

    /// The head is base64/hex-encoded random data.
    pub fn armoured(&self) -> bool {
        self.head().is_some_and(|h| h.armoured())
    }

    /// Does this content look like the output of encryption?
    ///
    /// * an explicitly encrypted container (openssl, gpg, age, encrypted zip), or
    /// * no valid known format and the head (some window of it) is random or armoured, or
    /// * "text" that is in fact armoured random data.
    ///
    /// A random block deep inside an otherwise unrecognised file is *not* enough: such files
    /// (office documents with embedded pictures, proprietary formats with compressed
    /// sections) are common, and encryptors practically always encrypt the start of a file.
    pub fn encrypted_looking(&self) -> bool {
        if self.format.is_encrypted() {
            return true;
        }
        let head = self.head();
        if !self.format.is_valid_known() && head.is_some_and(|h| h.ciphertext_like()) {
            return true;
        }
        self.format.kind == Kind::Text && self.armoured()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Block;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn sample(data: &[u8]) -> Sample {
        let blocks = Sample::plan(data.len() as u64)
            .into_iter()
            .map(|(o, l)| Block {
                offset: o,
                data: data[o as usize..o as usize + l].to_vec(),
            })
            .collect();
        Sample {
            unchanged: false,
            size: data.len() as u64,
            blocks,
        }
    }

    fn rnd(n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        ChaCha8Rng::seed_from_u64(n as u64).fill_bytes(&mut v);
        v
    }

    fn text(n: usize) -> Vec<u8> {
        b"The quick brown fox jumps over the lazy dog; 0123456789.\n"
            .iter()
            .copied()
            .cycle()
            .take(n)
            .collect()
    }

    #[test]
    fn text_and_random() {
        let t = Profile::of(&sample(&text(50_000)));
        assert_eq!(t.format.kind, Kind::Text);
        assert_eq!(t.blocks().len(), 3);
        assert!(!t.encrypted_looking());
        let r = Profile::of(&sample(&rnd(50_000)));
        assert!(r.encrypted_looking());
        assert!(r.blocks().iter().all(|b| b.random()));
        assert!(r.head().unwrap().entropy() > 7.9);
    }

    #[test]
    fn header_preserving_and_intermittent() {
        let mut hp = text(3000);
        hp[100..].copy_from_slice(&rnd(2900));
        let p = Profile::of(&sample(&hp));
        assert!(p.head().unwrap().body_random());
        assert!(p.encrypted_looking());
        let mut im = text(50_000);
        im[..4096].copy_from_slice(&rnd(4096));
        let p = Profile::of(&sample(&im));
        assert!(p.encrypted_looking());
        assert!(!p.blocks()[1].random());
    }

    #[test]
    fn empty_and_small() {
        let p = Profile::of(&Sample::default());
        assert!(p.is_empty());
        assert!(p.head().is_none());
        assert!(!p.encrypted_looking());
        assert!(!Profile::of(&sample(&rnd(40))).encrypted_looking());
    }
}
