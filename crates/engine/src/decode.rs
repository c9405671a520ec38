//! Verifying decoders: is this really a compressed stream, and what does it decode to?
//!
//! "Verifiable compression is not encryption": a valid deflate, zlib or gzip stream is
//! compression whatever its entropy, while ciphertext behind a copied gzip header is not.
//! [`inflate_prefix`] decodes a *prefix* of a raw deflate stream (the sampled head ends
//! somewhere inside the file): running out of input is fine, any structural error
//! (reserved block type, bad stored length, over-subscribed or incomplete Huffman code,
//! invalid symbol, distance before the start of the output) is not. Random bytes fail within
//! a few dozen bytes with overwhelming probability. The decoded bytes are counted into a
//! [`Histogram`] so the caller can judge *them* (a "stored" deflate block full of ciphertext
//! is a valid stream of random bytes).
//!
//! The decoder follows the structure of zlib's `puff.c` (canonical Huffman codes decoded
//! bit by bit); it is total (never panics, never reads out of bounds) and bounded: at most
//! [`MAX_INPUT`] input bytes and [`MAX_OUTPUT`] output bytes are processed per call.

use crate::stats::Histogram;

/// Input bytes examined at most (a prefix this long is plenty to tell a stream from noise).
pub const MAX_INPUT: usize = 8192;
/// Output bytes produced at most.
pub const MAX_OUTPUT: usize = 8192;
/// Decoded bytes counted into [`Inflated::hist`].
pub const HIST_BYTES: usize = 8192;

/// Result of decoding a stream prefix.
#[derive(Clone, Debug)]
pub struct Inflated {
    /// No structural error before the input (or the output budget) ran out.
    pub ok: bool,
    /// The final block ended (the whole stream was in the input).
    pub done: bool,
    /// Input bytes consumed (whole bytes, rounded up), headers included.
    pub consumed: usize,
    /// Input bytes offered (headers included).
    pub input: usize,
    /// Output bytes produced.
    pub produced: usize,
    /// Histogram of the first [`HIST_BYTES`] decoded bytes.
    pub hist: Histogram,
    /// The first [`HIST_BYTES`] decoded bytes.
    pub head: Vec<u8>,
}

impl Inflated {
    /// A verified stream: no error, and enough of it decoded to mean something: at least
    /// `min_input` bytes of input (or all of it), or a stream that ended after at least 64
    /// bytes or just before the end of the input (room for a zlib or gzip trailer). A
    /// random "stream" that ends after a few bytes in the middle of the data is not one.
    pub fn verified(&self, min_input: usize) -> bool {
        self.ok
            && (self.consumed >= min_input.min(self.input)
                || (self.done
                    && (self.consumed >= 64 || self.input.saturating_sub(self.consumed) <= 12)))
    }

    /// The decoded bytes look like ciphertext: random or armoured, and not a valid known
    /// format (a gzip of a `.docx` or `.png` decodes to compressed, random-looking data that
    /// is still a valid document or image).
    pub fn payload_random(&self) -> bool {
        (self.hist.looks_random() || self.hist.looks_armoured())
            && !crate::sniff::sniff_nested(&self.head).is_valid_known()
    }
}

#[derive(Debug)]
enum Stop {
    /// Input ran out (fine for a prefix).
    Eof,
    /// Structural error.
    Bad,
    /// Output budget reached.
    Full,
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    cnt: u32,
}

impl Bits<'_> {
    fn need(&mut self, n: u32) -> Result<(), Stop> {
        while self.cnt < n {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(Stop::Eof);
            };
            self.pos += 1;
            self.buf |= (b as u64) << self.cnt;
            self.cnt += 8;
        }
        Ok(())
    }
    fn bits(&mut self, n: u32) -> Result<u32, Stop> {
        if n == 0 {
            return Ok(0);
        }
        self.need(n)?;
        let v = (self.buf & ((1u64 << n) - 1)) as u32;
        self.buf >>= n;
        self.cnt -= n;
        Ok(v)
    }
    fn align(&mut self) {
        let r = self.cnt % 8;
        self.buf >>= r;
        self.cnt -= r;
    }
}

const MAXBITS: usize = 15;

/// Bits resolved by the lookup table (longer codes take the canonical walk).
const LUT_BITS: u32 = 9;

struct Huffman {
    count: [u16; MAXBITS + 1],
    symbol: [u16; 288],
    /// Bit-reversed code of up to [`LUT_BITS`] bits → symbol | length << 9 (0: not a
    /// short code).
    lut: [u16; 1 << LUT_BITS],
}

impl Huffman {
    /// Build from code lengths. Returns the number of unused codes (0: complete), or None
    /// when over-subscribed.
    fn build(&mut self, lengths: &[u8]) -> Option<i32> {
        self.count = [0; MAXBITS + 1];
        for &l in lengths {
            self.count[l as usize & 15] += 1;
        }
        if self.count[0] as usize == lengths.len() {
            return Some(0);
        }
        let mut left: i32 = 1;
        for len in 1..=MAXBITS {
            left <<= 1;
            left -= self.count[len] as i32;
            if left < 0 {
                return None;
            }
        }
        let mut offs = [0u16; MAXBITS + 1];
        for len in 1..MAXBITS {
            offs[len + 1] = offs[len] + self.count[len];
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[l as usize & 15];
                if let Some(s) = self.symbol.get_mut(*o as usize) {
                    *s = sym as u16;
                }
                *o += 1;
            }
        }
        // Canonical codes in (length, symbol) order, as the walk in `decode` assigns them.
        self.lut = [0; 1 << LUT_BITS];
        let mut code: u32 = 0;
        let mut idx = 0usize;
        for len in 1..=MAXBITS as u32 {
            for _ in 0..self.count[len as usize] {
                if len <= LUT_BITS {
                    let sym = self.symbol.get(idx).copied().unwrap_or(0);
                    let rev = code.reverse_bits() >> (32 - len);
                    let mut f = rev as usize;
                    while f < (1 << LUT_BITS) {
                        self.lut[f] = sym | (len as u16) << 9;
                        f += 1 << len;
                    }
                }
                idx += 1;
                code += 1;
            }
            code <<= 1;
        }
        Some(left)
    }

    fn decode(&self, s: &mut Bits) -> Result<u16, Stop> {
        // Fast path: with 15 bits at hand, walk the code lengths on a copy of them and
        // consume once (same canonical decoding as below, without a call per bit).
        if s.need(MAXBITS as u32).is_ok() {
            let bits = s.buf;
            let e = self.lut[(bits & ((1 << LUT_BITS) - 1)) as usize];
            if e != 0 {
                let len = (e >> 9) as u32;
                s.buf >>= len;
                s.cnt -= len;
                return Ok(e & 0x1ff);
            }
            let mut code: i32 = 0;
            let mut first: i32 = 0;
            let mut index: i32 = 0;
            for len in 1..=MAXBITS {
                code |= ((bits >> (len - 1)) & 1) as i32;
                let count = self.count[len] as i32;
                if code - count < first {
                    s.buf >>= len;
                    s.cnt -= len as u32;
                    return self
                        .symbol
                        .get((index + (code - first)) as usize)
                        .copied()
                        .ok_or(Stop::Bad);
                }
                index += count;
                first += count;
                first <<= 1;
                code <<= 1;
            }
            return Err(Stop::Bad);
        }
        let mut code: i32 = 0;
        let mut first: i32 = 0;
        let mut index: i32 = 0;
        for len in 1..=MAXBITS {
            code |= s.bits(1)? as i32;
            let count = self.count[len] as i32;
            if code - count < first {
                return self
                    .symbol
                    .get((index + (code - first)) as usize)
                    .copied()
                    .ok_or(Stop::Bad);
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err(Stop::Bad)
    }
}

const LBASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEXT: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DBASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DEXT: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

struct Out {
    buf: Vec<u8>,
}

impl Out {
    fn push(&mut self, b: u8) -> Result<(), Stop> {
        if self.buf.len() >= MAX_OUTPUT {
            return Err(Stop::Full);
        }
        self.buf.push(b);
        Ok(())
    }
}

fn codes(s: &mut Bits, out: &mut Out, len: &Huffman, dist: &Huffman) -> Result<(), Stop> {
    loop {
        let sym = len.decode(s)?;
        match sym {
            0..=255 => out.push(sym as u8)?,
            256 => return Ok(()),
            _ => {
                let i = (sym - 257) as usize;
                if i >= 29 {
                    return Err(Stop::Bad);
                }
                let n = LBASE[i] as usize + s.bits(LEXT[i] as u32)? as usize;
                let d = dist.decode(s)? as usize;
                if d >= 30 {
                    return Err(Stop::Bad);
                }
                let back = DBASE[d] as usize + s.bits(DEXT[d] as u32)? as usize;
                if back > out.buf.len() {
                    return Err(Stop::Bad);
                }
                if out.buf.len() + n > MAX_OUTPUT {
                    return Err(Stop::Full);
                }
                let start = out.buf.len() - back;
                for i in 0..n {
                    let b = out.buf[start + i];
                    out.buf.push(b);
                }
            }
        }
    }
}

fn stored(s: &mut Bits, out: &mut Out) -> Result<(), Stop> {
    s.align();
    let len = s.bits(16)?;
    let nlen = s.bits(16)?;
    if len != !nlen & 0xffff {
        return Err(Stop::Bad);
    }
    for _ in 0..len {
        let b = s.bits(8)? as u8;
        out.push(b)?;
    }
    Ok(())
}

/// The fixed literal/length and distance codes (RFC 1951 3.2.6), built once.
fn fixed_tables() -> &'static (Huffman, Huffman) {
    static T: std::sync::OnceLock<(Huffman, Huffman)> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut l = [0u8; 288];
        l[..144].fill(8);
        l[144..256].fill(9);
        l[256..280].fill(7);
        l[280..].fill(8);
        let mut h = (new_huffman(), new_huffman());
        h.0.build(&l);
        h.1.build(&[5u8; 30]);
        h
    })
}

fn fixed(s: &mut Bits, out: &mut Out) -> Result<(), Stop> {
    let h = fixed_tables();
    codes(s, out, &h.0, &h.1)
}

fn dynamic(s: &mut Bits, out: &mut Out, h: &mut (Huffman, Huffman)) -> Result<(), Stop> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlen = s.bits(5)? as usize + 257;
    let ndist = s.bits(5)? as usize + 1;
    let ncode = s.bits(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(Stop::Bad);
    }
    let mut lengths = [0u8; 320];
    for &o in ORDER.iter().take(ncode) {
        lengths[o] = s.bits(3)? as u8;
    }
    if h.0.build(&lengths[..19]) != Some(0) {
        return Err(Stop::Bad);
    }
    let mut i = 0;
    while i < nlen + ndist {
        let sym = h.0.decode(s)?;
        if sym < 16 {
            lengths[i] = sym as u8;
            i += 1;
            continue;
        }
        let (val, rep) = match sym {
            16 => {
                if i == 0 {
                    return Err(Stop::Bad);
                }
                (lengths[i - 1], 3 + s.bits(2)? as usize)
            }
            17 => (0, 3 + s.bits(3)? as usize),
            _ => (0, 11 + s.bits(7)? as usize),
        };
        if i + rep > nlen + ndist {
            return Err(Stop::Bad);
        }
        lengths[i..i + rep].fill(val);
        i += rep;
    }
    if lengths[256] == 0 {
        return Err(Stop::Bad);
    }
    let (lens, dists) = lengths[..nlen + ndist].split_at(nlen);
    // An incomplete code is only allowed for a single code of length 1 (as in puff).
    match h.0.build(lens) {
        Some(0) => {}
        Some(_) if nlen as u16 == h.0.count[0] + h.0.count[1] => {}
        _ => return Err(Stop::Bad),
    }
    match h.1.build(dists) {
        Some(0) => {}
        Some(_) if ndist as u16 == h.1.count[0] + h.1.count[1] => {}
        _ => return Err(Stop::Bad),
    }
    let (a, b) = (&h.0, &h.1);
    codes(s, out, a, b)
}

fn new_huffman() -> Huffman {
    Huffman {
        count: [0; MAXBITS + 1],
        symbol: [0; 288],
        lut: [0; 1 << LUT_BITS],
    }
}

/// Decode a prefix of a raw deflate stream (RFC 1951). See the module documentation.
pub fn inflate_prefix(input: &[u8]) -> Inflated {
    let mut scratch = Scratch::new();
    let r = inflate_core(input, &mut scratch);
    r.finish(scratch.out.buf)
}

/// Buffers reused across decoding attempts (the output and the dynamic Huffman tables).
struct Scratch {
    out: Out,
    h: Box<(Huffman, Huffman)>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            out: Out {
                buf: Vec::with_capacity(4096),
            },
            h: Box::new((new_huffman(), new_huffman())),
        }
    }
}

/// What [`inflate_core`] found, before the decoded bytes are counted.
struct Core {
    ok: bool,
    done: bool,
    consumed: usize,
    input: usize,
    produced: usize,
}

impl Core {
    /// [`Inflated::verified`] on the core result (`Inflated` takes its fields from it).
    fn verified(&self, min_input: usize) -> bool {
        self.ok
            && (self.consumed >= min_input.min(self.input)
                || (self.done
                    && (self.consumed >= 64 || self.input.saturating_sub(self.consumed) <= 12)))
    }

    fn finish(self, mut buf: Vec<u8>) -> Inflated {
        buf.truncate(HIST_BYTES);
        Inflated {
            ok: self.ok,
            done: self.done,
            consumed: self.consumed,
            input: self.input,
            produced: self.produced,
            hist: Histogram::of(&buf),
            head: buf,
        }
    }
}

/// The decoder proper: decodes into `sc.out` (cleared first).
fn inflate_core(input: &[u8], sc: &mut Scratch) -> Core {
    let input = &input[..input.len().min(MAX_INPUT)];
    let mut s = Bits {
        data: input,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    let out = &mut sc.out;
    out.buf.clear();
    // Fresh tables for every stream, as for a single call.
    *sc.h = (new_huffman(), new_huffman());
    let mut done = false;
    let res = loop {
        let last = match s.bits(1) {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        let r = match s.bits(2) {
            Ok(0) => stored(&mut s, out),
            Ok(1) => fixed(&mut s, out),
            Ok(2) => dynamic(&mut s, out, &mut sc.h),
            Ok(_) => Err(Stop::Bad),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            break Err(e);
        }
        if last == 1 {
            done = true;
            break Ok(());
        }
    };
    Core {
        ok: !matches!(res, Err(Stop::Bad)),
        done,
        consumed: s.pos,
        input: input.len(),
        produced: out.buf.len(),
    }
}

/// Is `h[0..2]` a plausible zlib header (deflate, window ≤ 32 KiB, check bits, no preset
/// dictionary)?
pub fn zlib_header(h: &[u8]) -> bool {
    match (h.first(), h.get(1)) {
        (Some(&cmf), Some(&flg)) => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (cmf as u16 * 256 + flg as u16).is_multiple_of(31)
                && flg & 0x20 == 0
        }
        _ => false,
    }
}

/// Decode a prefix of a zlib stream (RFC 1950); `None` when the header is not zlib.
pub fn zlib_prefix(input: &[u8]) -> Option<Inflated> {
    if !zlib_header(input) {
        return None;
    }
    let mut r = inflate_prefix(&input[2..]);
    r.consumed += 2;
    r.input += 2;
    Some(r)
}

/// Offset of the deflate data in a gzip member (RFC 1952), `None` when the header is not
/// gzip or runs past `h`.
pub fn gzip_data_offset(h: &[u8]) -> Option<usize> {
    if h.len() < 10 || h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3] & 0xe0 != 0 {
        return None;
    }
    let flg = h[3];
    let mut p = 10usize;
    if flg & 4 != 0 {
        let x = h.get(p..p + 2)?;
        p += 2 + u16::from_le_bytes([x[0], x[1]]) as usize;
    }
    for bit in [8u8, 16] {
        if flg & bit != 0 {
            p += h.get(p..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flg & 2 != 0 {
        p += 2;
    }
    (p <= h.len()).then_some(p)
}

/// Decode a prefix of a gzip member; `None` when the header is not gzip.
pub fn gzip_prefix(input: &[u8]) -> Option<Inflated> {
    let p = gzip_data_offset(input)?;
    let mut r = inflate_prefix(&input[p..]);
    r.consumed += p;
    r.input += p;
    Some(r)
}

/// Does any byte of `v` equal zero?
#[inline]
fn has_zero_byte(v: u64) -> bool {
    v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080 != 0
}

/// Offset of the first byte `b` in `h`.
fn find_byte(h: &[u8], b: u8) -> Option<usize> {
    memchr::memchr(b, h)
}

/// Find a verified zlib or gzip stream that starts in `h` at or after `from` and runs to
/// the end of `h` (or ends cleanly), decoding to something that is not ciphertext. Returns
/// its offset. At most `max_tries` candidate offsets are decoded.
pub fn find_stream(h: &[u8], from: usize, max_tries: usize) -> Option<usize> {
    let mut tries = 0;
    let end = h.len().saturating_sub(16);
    let mut i = from;
    // One set of buffers for all the candidates; the decoded bytes are only counted for a
    // candidate that verifies.
    let mut scratch: Option<Scratch> = None;
    while i < end && tries < max_tries {
        // Cheap filter first: a zlib CMF has CM = 8 and CINFO <= 7 (b & 0x8f == 8); gzip
        // starts with 0x1f. Eight offsets at a time while none can start a stream.
        if i + 8 <= end {
            let w = u64::from_le_bytes(h[i..i + 8].try_into().unwrap_or([0; 8]));
            if !has_zero_byte((w & 0x8f8f_8f8f_8f8f_8f8f) ^ 0x0808_0808_0808_0808)
                && !has_zero_byte(w ^ 0x1f1f_1f1f_1f1f_1f1f)
            {
                i += 8;
                continue;
            }
        }
        let b = h[i];
        if b & 0x8f != 0x08 && b != 0x1f {
            i += 1;
            continue;
        }
        let at = &h[i..];
        let skip = if zlib_header(at) {
            Some(2)
        } else if b == 0x1f && h.get(i + 1) == Some(&0x8b) {
            gzip_data_offset(at)
        } else {
            None
        };
        if let Some(p) = skip {
            tries += 1;
            let sc = scratch.get_or_insert_with(Scratch::new);
            let mut r = inflate_core(&at[p..], sc);
            r.consumed += p;
            r.input += p;
            let rest = h.len() - i;
            if r.verified(rest.min(256)) {
                let buf = std::mem::take(&mut sc.out.buf);
                let full = r.finish(buf);
                if !full.payload_random() {
                    return Some(i);
                }
                sc.out.buf = full.head;
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_fixed_blocks() {
        // A final stored block "abc".
        let s = [0x01, 0x03, 0x00, 0xfc, 0xff, b'a', b'b', b'c'];
        let r = inflate_prefix(&s);
        assert!(r.ok && r.done, "{r:?}");
        assert_eq!(r.produced, 3);
        // Fixed-Huffman "a" (zlib's deflate of "a": 4b 04 00).
        let r = inflate_prefix(&[0x4b, 0x04, 0x00]);
        assert!(r.ok && r.done && r.produced == 1, "{r:?}");
        // Reserved block type.
        assert!(!inflate_prefix(&[0x07, 0, 0]).ok);
        // Bad stored length check.
        assert!(!inflate_prefix(&[0x01, 0x03, 0x00, 0xfc, 0xfe]).ok);
        // Truncated input is fine.
        let r = inflate_prefix(&s[..6]);
        assert!(r.ok && !r.done);
    }

    #[test]
    fn headers() {
        assert!(zlib_header(&[0x78, 0x9c]));
        assert!(!zlib_header(&[0x78, 0x9d]));
        assert_eq!(
            gzip_data_offset(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0]),
            Some(10)
        );
        assert_eq!(
            gzip_data_offset(&[0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3]),
            None
        );
    }
}

// ----------------------------------------------------------------------------------------
// Armour: printable encodings of binary data.

/// A printable encoding of binary data recognised by [`armour`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Hex digits, with or without separators (spaces, `:`, `,`, `-`, `0x`), either case.
    Hex,
    /// RFC 4648 base32.
    Base32,
    /// Base64 (standard or URL-safe), with line breaks, PEM-like banners and headers.
    Base64,
    /// Ascii85 / base85 (Adobe `<~ ~>` or bare).
    Ascii85,
    /// uuencode (`begin MODE NAME` lines).
    Uuencode,
}

/// Decoded bytes kept at most.
pub const ARMOUR_MAX: usize = 6144;

/// Decode the armour of a text sample: banner lines (`-----BEGIN ...`), header lines
/// (`Key: value`), `begin`/`end` lines and blank lines are skipped; the rest must be one
/// encoding's alphabet only, using most of it (so that decimal numbers are not "hex" and a
/// CSV is not "ascii85"). Returns the encoding and up to [`ARMOUR_MAX`] decoded bytes.
pub fn armour(text: &[u8]) -> Option<(Encoding, Vec<u8>)> {
    if text.len() < 96 || !may_be_armour(text) {
        return None;
    }
    armour_full(text)
}

/// [`armour`] without its pre-check.
fn armour_full(text: &[u8]) -> Option<(Encoding, Vec<u8>)> {
    if text.len() < 96 {
        return None;
    }
    let mut uu = false;
    let mut seen = [false; 256];
    let mut body_lines: Vec<&[u8]> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = trim(line);
        if trimmed.is_empty() || trimmed.starts_with(b"-----") || colon_space(trimmed) {
            continue;
        }
        if trimmed.starts_with(b"begin ") {
            uu = true;
            continue;
        }
        if trimmed == b"end" || trimmed == b"`" {
            continue;
        }
        for &b in trimmed {
            seen[b as usize] = true;
        }
        body_lines.push(trimmed);
    }
    if body_lines.is_empty() {
        return None;
    }
    let distinct =
        |f: &dyn Fn(u8) -> bool| (0..=255u8).filter(|&b| seen[b as usize] && f(b)).count();
    let only = |f: &dyn Fn(u8) -> bool| (0..=255u8).all(|b| !seen[b as usize] || f(b));
    let sep = |b: u8| matches!(b, b' ' | b'\t' | b':' | b',' | b';' | b'-' | b'x' | b'X');
    if uu {
        return Some((Encoding::Uuencode, uudecode(&body_lines)));
    }
    if only(&|b| b.is_ascii_hexdigit() || sep(b)) && distinct(&|b| b.is_ascii_hexdigit()) >= 12 {
        return Some((Encoding::Hex, hexdecode(&body_lines)));
    }
    let b32 =
        |b: u8| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b) || b == b'=' || b == b' ';
    if only(&b32) && distinct(&|b| b != b'=' && b != b' ') >= 24 {
        return Some((Encoding::Base32, base32decode(&body_lines)));
    }
    let b64 =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=' | b' ');
    if only(&b64) && distinct(&|b| b != b'=' && b != b' ') >= 48 {
        return Some((Encoding::Base64, base64decode(&body_lines)));
    }
    let a85 = |b: u8| (b'!'..=b'u').contains(&b) || matches!(b, b'z' | b' ' | b'~' | b'<' | b'>');
    if only(&a85) && distinct(&|b| (b'!'..=b'u').contains(&b)) >= 64 {
        return Some((Encoding::Ascii85, a85decode(&body_lines)));
    }
    None
}

/// A cheap exact pre-check of [`armour`]: `false` only when `armour` returns `None`.
///
/// `armour` answers `Some` for a `begin ` line (uuencode) or when the bytes of the body
/// lines stay inside one alphabet. Once the body lines seen so far leave every alphabet
/// (ordinary text does so within a line or two), only a later `begin ` line can change
/// the answer, so the rest is only searched for one.
fn may_be_armour(text: &[u8]) -> bool {
    // Bit i of `fits[b]`: byte value b belongs to alphabet i.
    static FITS: std::sync::OnceLock<[u8; 256]> = std::sync::OnceLock::new();
    let fits = FITS.get_or_init(|| {
        let hex = |b: u8| {
            b.is_ascii_hexdigit()
                || matches!(b, b' ' | b'\t' | b':' | b',' | b';' | b'-' | b'x' | b'X')
        };
        let b32 =
            |b: u8| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b) || b == b'=' || b == b' ';
        let b64 = |b: u8| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=' | b' ')
        };
        let a85 =
            |b: u8| (b'!'..=b'u').contains(&b) || matches!(b, b'z' | b' ' | b'~' | b'<' | b'>');
        let mut t = [0u8; 256];
        for (b, f) in t.iter_mut().enumerate() {
            let b = b as u8;
            *f = hex(b) as u8 | (b32(b) as u8) << 1 | (b64(b) as u8) << 2 | (a85(b) as u8) << 3;
        }
        t
    });
    // Alphabets all body bytes so far belong to.
    let mut alive = 0x0fu8;
    let mut body = false;
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = match find_byte(rest, b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = trim(line);
        if trimmed.is_empty() || trimmed.starts_with(b"-----") || colon_space(trimmed) {
            continue;
        }
        if trimmed.starts_with(b"begin ") {
            return true;
        }
        if trimmed == b"end" || trimmed == b"`" {
            continue;
        }
        body = true;
        for &b in trimmed {
            alive &= fits[b as usize];
        }
        if alive == 0 {
            return begin_line(rest);
        }
    }
    body
}

/// Does `text` hold a line that [`armour`] takes for a uuencode `begin ` line?
fn begin_line(text: &[u8]) -> bool {
    for i in memchr::memmem::find_iter(text, b"begin ") {
        // Only (trimmed) whitespace between the start of the line and `begin`.
        let start = memchr::memrchr(b'\n', &text[..i]).map_or(0, |s| s + 1);
        if !text[start..i].iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let end = find_byte(&text[i..], b'\n').map_or(text.len(), |e| e + i);
        let line = text[start..end]
            .strip_suffix(b"\r")
            .unwrap_or(&text[start..end]);
        if !colon_space(trim(line)) {
            return true;
        }
    }
    false
}

/// Does the line hold `": "` (a `Key: value` header line)?
fn colon_space(l: &[u8]) -> bool {
    memchr::memchr_iter(b':', l).any(|i| l.get(i + 1) == Some(&b' '))
}

fn trim(l: &[u8]) -> &[u8] {
    let s = l
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(l.len());
    let e = l
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &l[s..e.max(s)]
}

fn hexdecode(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut hi: Option<u8> = None;
    for l in lines {
        let mut i = 0;
        while i < l.len() && out.len() < ARMOUR_MAX {
            let c = l[i];
            // "0x" / "0X" prefixes.
            if c == b'0' && matches!(l.get(i + 1), Some(b'x' | b'X')) && hi.is_none() {
                i += 2;
                continue;
            }
            if let Some(v) = (c as char).to_digit(16) {
                match hi.take() {
                    Some(h) => out.push(h << 4 | v as u8),
                    None => hi = Some(v as u8),
                }
            }
            i += 1;
        }
    }
    out
}

fn base32decode(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &c in lines.iter().flat_map(|l| l.iter()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        acc = acc << 5 | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            if out.len() >= ARMOUR_MAX {
                break;
            }
        }
    }
    out
}

fn base64decode(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &c in lines.iter().flat_map(|l| l.iter()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue,
        };
        acc = acc << 6 | v as u64;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            if out.len() >= ARMOUR_MAX {
                break;
            }
        }
    }
    out
}

fn a85decode(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut group = [0u8; 5];
    let mut n = 0;
    for &c in lines.iter().flat_map(|l| a85_strip(l).iter()) {
        if out.len() >= ARMOUR_MAX {
            break;
        }
        match c {
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = c - b'!';
                n += 1;
                if n == 5 {
                    let v = group
                        .iter()
                        .fold(0u64, |a, &d| a * 85 + d as u64)
                        .min(u32::MAX as u64) as u32;
                    out.extend_from_slice(&v.to_be_bytes());
                    n = 0;
                }
            }
            _ => {}
        }
    }
    out
}

fn a85_strip(l: &[u8]) -> &[u8] {
    let l = l.strip_prefix(b"<~").unwrap_or(l);
    l.strip_suffix(b"~>").unwrap_or(l)
}

fn uudecode(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        let Some((&len, rest)) = l.split_first() else {
            continue;
        };
        let want = ((len.wrapping_sub(b' ')) & 63) as usize;
        let mut got = 0;
        for ch in rest.chunks(4) {
            let v = ch
                .iter()
                .chain(std::iter::repeat(&b' '))
                .take(4)
                .fold(0u32, |a, &c| a << 6 | ((c.wrapping_sub(b' ')) & 63) as u32);
            for k in 0..3 {
                if got < want && out.len() < ARMOUR_MAX {
                    out.push((v >> (16 - 8 * k)) as u8);
                    got += 1;
                }
            }
        }
        if out.len() >= ARMOUR_MAX {
            break;
        }
    }
    out
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// xorshift bytes.
    fn bytes(seed: &mut u64, n: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                alphabet[(*seed % alphabet.len() as u64) as usize]
            })
            .collect()
    }

    /// `find_stream` as it was written before its fast scan and shared buffers.
    fn find_stream_reference(h: &[u8], from: usize, max_tries: usize) -> Option<usize> {
        let mut tries = 0;
        let end = h.len().saturating_sub(16);
        let mut i = from;
        while i < end && tries < max_tries {
            let r = if zlib_header(&h[i..]) {
                zlib_prefix(&h[i..])
            } else if h[i] == 0x1f && h.get(i + 1) == Some(&0x8b) {
                gzip_prefix(&h[i..])
            } else {
                None
            };
            if let Some(r) = r {
                tries += 1;
                let rest = h.len() - i;
                if r.verified(rest.min(256)) && !r.payload_random() {
                    return Some(i);
                }
            }
            i += 1;
        }
        None
    }

    #[test]
    fn find_stream_matches_reference() {
        let all: Vec<u8> = (0..=255).collect();
        let mut seed = 0x1234_5678_9abc_def1u64;
        // A real zlib stream of text (stored + fixed blocks are enough: a final fixed
        // block of literals "abc" and a stored block).
        let zl: Vec<u8> = vec![0x78, 0x9c, 0x4b, 0x4c, 0x4a, 0x06, 0x00];
        for round in 0..400 {
            let n = 16 + (round * 37) % 3000;
            let mut v = bytes(&mut seed, n, &all);
            if round % 3 == 0 && n > 40 {
                let at = (round * 13) % (n - 20);
                v[at..at + zl.len()].copy_from_slice(&zl);
            }
            if round % 5 == 0 && n > 40 {
                let at = (round * 7) % (n - 30);
                v[at..at + 10].copy_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
            }
            for (from, tries) in [(0, 16), (3, 2), (0, 1000)] {
                assert_eq!(
                    find_stream(&v, from, tries),
                    find_stream_reference(&v, from, tries),
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn armour_precheck_is_exact() {
        let mut seed = 0x0bad_cafe_f00d_0001u64;
        let alphabets: [&[u8]; 7] = [
            b"0123456789abcdef \n",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=\n",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r",
            b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstu~<> \n",
            b"the quick brown fox jumps over lazy dog.,: \n\r\t-",
            b"begin 644 abc: \n-----BEGIN x\nend`\tvwxyz",
            b"\n\n  \t\r",
        ];
        for round in 0..3000 {
            let a = alphabets[round % alphabets.len()];
            let n = 90 + (round * 53) % 2000;
            let mut v = bytes(&mut seed, n, a);
            // Mix in a line of another alphabet now and then.
            if round % 4 == 1 {
                let b = alphabets[(round / 4) % alphabets.len()];
                let extra = bytes(&mut seed, 80, b);
                let at = (round * 11) % v.len();
                v.splice(at..at, extra);
            }
            if round % 9 == 0 {
                let at = (round * 17) % v.len();
                v.splice(at..at, b"\n  begin 644 f\n".iter().copied());
            }
            if !may_be_armour(&v) {
                assert!(armour_full(&v).is_none(), "round {round}: {v:?}");
            }
            assert_eq!(
                armour(&v).map(|x| x.0),
                armour_full(&v).map(|x| x.0),
                "round {round}"
            );
        }
    }
}
