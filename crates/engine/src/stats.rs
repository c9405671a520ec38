//! Byte statistics of a content sample.
//!
//! Two questions are asked of every sampled block:
//!
//! * **Does it look random?** ([`looks_random`]) Encrypted bytes are indistinguishable from
//!   uniform random bytes. For samples of 1024 bytes or more the test is Pearson's
//!   chi-square against the uniform distribution over 256 byte values (uniform random data
//!   gives 255 ± 23; text, executables, uncompressed images give thousands) together with
//!   the Shannon entropy. For 64 to 1023 bytes chi-square is unreliable (too few bytes per
//!   bin), so the plug-in entropy is compared with the entropy *expected* of that many
//!   uniform random bytes (a small sample of random bytes has fewer than 8 bits/byte simply
//!   because not every value can occur), with a margin of about five standard deviations,
//!   and the fraction of bytes that cannot occur in text must be near the 62 % of random
//!   data. Below 64 bytes the answer is always `false` (inconclusive).
//!   Note that compressed data (deflate, zstd, JPEG scans) also passes this test: randomness
//!   alone never proves encryption, the engine always combines it with the file format.
//! * **Is it armoured ciphertext?** ([`looks_armoured`]) Ransomware can base64- or
//!   hex-encode its output to keep the byte entropy low (6 or 4 bits/byte). Such a sample
//!   consists only of the base64 alphabet (or hex digits) plus line breaks, and the symbols
//!   are close to uniformly distributed over that alphabet. Ordinary text always contains
//!   spaces, punctuation or a skewed letter distribution, so it never qualifies.
//!
//! Everything works on a [`Histogram`] so several overlapping windows of one block can be
//! judged from a single pass over its bytes.

use std::f64::consts::LN_2;

/// Count `bytes` into four interleaved tables (the caller keeps them from overflowing).
#[inline]
fn count4(t: &mut [[u32; 256]; 4], bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        t[0][(x & 0xff) as usize] += 1;
        t[1][(x >> 8 & 0xff) as usize] += 1;
        t[2][(x >> 16 & 0xff) as usize] += 1;
        t[3][(x >> 24 & 0xff) as usize] += 1;
        t[0][(x >> 32 & 0xff) as usize] += 1;
        t[1][(x >> 40 & 0xff) as usize] += 1;
        t[2][(x >> 48 & 0xff) as usize] += 1;
        t[3][(x >> 56) as usize] += 1;
    }
    for &b in chunks.remainder() {
        t[0][b as usize] += 1;
    }
}

/// Smallest sample on which [`looks_random`] / [`looks_armoured`] can say `true`.
pub const MIN_SAMPLE: usize = 64;
/// From this size on, [`looks_random`] uses the chi-square test.
pub const CHI_SQUARE_MIN: usize = 1024;
/// Chi-square (255 degrees of freedom) below which a large sample is "uniform". Uniform
/// random data gives 255 ± 23, so this is about 6 standard deviations (p ≈ 2e-8 of
/// rejecting real ciphertext).
pub const CHI_SQUARE_MAX: f64 = 400.0;

/// Byte-value counts of a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: [u32; 256],
    n: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; 256],
            n: 0,
        }
    }
}

/// Printable ASCII, tab, CR or LF: 98 of the 256 byte values.
#[inline]
fn is_ascii_text(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\t' | b'\n' | b'\r')
}

#[inline]
fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Histogram of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = Self::new();
        h.add(bytes);
        h
    }

    /// Count more bytes.
    pub fn add(&mut self, bytes: &[u8]) {
        // Four interleaved tables avoid store-to-load stalls on runs of equal bytes.
        let mut t = [[0u32; 256]; 4];
        // Count in pieces so the u32 tables never overflow.
        for piece in bytes.chunks(1 << 30) {
            count4(&mut t, piece);
            self.fold(&mut t);
        }
        self.n += bytes.len() as u64;
    }

    /// Move the counts of the tables `t` into `self` (and clear them).
    fn fold(&mut self, t: &mut [[u32; 256]; 4]) {
        for (i, c) in self.counts.iter_mut().enumerate() {
            let sum = t[0][i] as u64 + t[1][i] as u64 + t[2][i] as u64 + t[3][i] as u64;
            *c = (*c as u64 + sum).min(u32::MAX as u64) as u32;
        }
        *t = [[0u32; 256]; 4];
    }

    /// Histograms of the prefixes `bytes[..cuts[i]]` (`cuts` ascending, each at most
    /// `bytes.len()`), from a single pass over the bytes.
    pub fn prefixes<const N: usize>(bytes: &[u8], cuts: [usize; N]) -> [Histogram; N] {
        let mut out: [Histogram; N] = std::array::from_fn(|_| Histogram::new());
        let ascending = cuts.windows(2).all(|w| w[0] <= w[1]);
        if !ascending || cuts.last().is_some_and(|&c| c > bytes.len()) || bytes.len() > 1 << 30 {
            // Not the fast case (never for sampled blocks): count each prefix separately.
            for (h, &c) in out.iter_mut().zip(cuts.iter()) {
                h.add(&bytes[..c.min(bytes.len())]);
            }
            return out;
        }
        // Four interleaved tables avoid store-to-load stalls on runs of equal bytes. They
        // are never reset: each prefix is the running total at its cut (no overflow, the
        // input is below 2^30 bytes).
        let mut t = [[0u32; 256]; 4];
        let mut start = 0usize;
        for (h, &cut) in out.iter_mut().zip(cuts.iter()) {
            count4(&mut t, &bytes[start..cut]);
            start = cut;
            for (i, c) in h.counts.iter_mut().enumerate() {
                *c = t[0][i] + t[1][i] + t[2][i] + t[3][i];
            }
            h.n = cut as u64;
        }
        out
    }

    /// The counts of `self` minus those of `part`, a histogram of a prefix (or any
    /// sub-multiset) of the bytes counted in `self`.
    pub fn minus(&self, part: &Histogram) -> Histogram {
        let mut h = self.clone();
        for (a, b) in h.counts.iter_mut().zip(part.counts.iter()) {
            *a = a.saturating_sub(*b);
        }
        h.n = h.n.saturating_sub(part.n);
        h
    }

    /// Add the counts of another histogram (the union of two disjoint windows).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.n += other.n;
    }

    /// The sum of two histograms.
    pub fn sum(a: &Histogram, b: &Histogram) -> Histogram {
        let mut h = a.clone();
        h.merge(b);
        h
    }

    /// Number of bytes counted.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// No bytes counted.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// How many times byte `b` occurred.
    pub fn count(&self, b: u8) -> u32 {
        self.counts[b as usize]
    }

    /// Shannon entropy of the byte distribution in bits per byte (0..=8).
    pub fn entropy(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        // H = log2 n - (1/n) Σ c log2 c, with c log2 c from a table for block-sized counts.
        let t = clog2_table();
        let mut s = 0.0;
        for &c in &self.counts {
            // Absent values add exactly 0.0 to a non-negative sum: skip them.
            if c == 0 {
                continue;
            }
            s += match t.get(c as usize) {
                Some(v) => *v,
                None => c as f64 * (c as f64).log2(),
            };
        }
        let nf = self.n as f64;
        (nf.log2() - s / nf).max(0.0)
    }

    /// Pearson chi-square statistic against the uniform distribution over 256 values.
    pub fn chi_square(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        // Σ (c - e)² / e = Σ c² / e - n, with e = n / 256 (exact integer sum of squares).
        // Every count is at most n, so for n <= 2^24 the sum is at most 2^56: no overflow,
        // and a plain (vectorisable) sum equals the saturating one.
        let sq: u64 = if self.n <= 1 << 24 {
            self.counts.iter().map(|&c| (c as u64) * (c as u64)).sum()
        } else {
            self.counts
                .iter()
                .map(|&c| (c as u64) * (c as u64))
                .fold(0u64, |a, x| a.saturating_add(x))
        };
        let nf = self.n as f64;
        (sq as f64 * 256.0 / nf - nf).max(0.0)
    }

    /// Fraction of bytes that are not printable ASCII / tab / CR / LF (≈ 0.62 for random).
    pub fn non_text_fraction(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let text: u64 = (0u8..=255)
            .filter(|&b| is_ascii_text(b))
            .map(|b| self.counts[b as usize] as u64)
            .sum();
        (self.n - text.min(self.n)) as f64 / self.n as f64
    }

    /// See [`looks_random`].
    pub fn looks_random(&self) -> bool {
        let n = self.len();
        if n < MIN_SAMPLE {
            return false;
        }
        if n >= CHI_SQUARE_MIN {
            // The entropy bound is implied by the chi-square bound for uniform data; it is
            // kept as a sanity check (computed only when chi-square passes: it costs logs).
            return self.chi_square() < CHI_SQUARE_MAX
                && self.entropy() >= expected_entropy(n, 256) - 0.3;
        }
        self.non_text_fraction() >= 0.4
            && self.entropy() >= expected_entropy(n, 256) - small_sample_margin(n)
    }

    /// See [`looks_armoured`].
    pub fn looks_armoured(&self) -> bool {
        // Quick reject: any byte outside the base64 alphabet, '=' and line breaks (text has
        // spaces and punctuation, binary data has everything).
        if self.counts.iter().enumerate().any(|(b, &c)| {
            c != 0 && !(is_base64(b as u8) || matches!(b as u8, b'\n' | b'\r' | b'='))
        }) {
            return false;
        }
        // Line breaks are ignored; everything else must be in the alphabet.
        let breaks = self.count(b'\n') as u64 + self.count(b'\r') as u64;
        let body = self.n.saturating_sub(breaks);
        if (body as usize) < MIN_SAMPLE {
            return false;
        }
        // Hex digits first (they are a subset of the base64 alphabet).
        let mut hex = [0u32; 16];
        let mut hex_total = 0u64;
        for b in 0u8..=255 {
            let c = self.counts[b as usize];
            if c == 0 {
                continue;
            }
            let v = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => continue,
            };
            hex[v as usize] = hex[v as usize].saturating_add(c);
            hex_total += c as u64;
        }
        if hex_total == body {
            return uniform_over(&hex, hex_total);
        }
        // Base64 (standard or URL-safe) with optional '=' padding.
        let pad = self.count(b'=') as u64;
        // Padding is at most two characters per encoded chunk; lots of '=' is not base64.
        if pad * 16 > body {
            return false;
        }
        let mut sym = Vec::with_capacity(66);
        let mut sym_total = 0u64;
        for b in 0u8..=255 {
            let c = self.counts[b as usize];
            if c == 0 || matches!(b, b'\n' | b'\r' | b'=') {
                continue;
            }
            if !is_base64(b) {
                return false;
            }
            sym.push(c);
            sym_total += c as u64;
        }
        // Pad the symbol list to the 64-symbol alphabet (absent symbols count 0).
        while sym.len() < 64 {
            sym.push(0);
        }
        uniform_over(&sym, sym_total)
    }
}

/// Is the symbol distribution `counts` (alphabet size = `counts.len()`) consistent with
/// uniform random symbols? Entropy close to the expected plug-in entropy and chi-square
/// within ~6 standard deviations of its mean.
fn uniform_over(counts: &[u32], total: u64) -> bool {
    let k = counts.len();
    let n = total as usize;
    if n < MIN_SAMPLE || k < 2 {
        return false;
    }
    let h = entropy_of(counts.iter().copied(), total);
    let expected = expected_entropy(n, k);
    let margin = if n >= 1024 {
        0.1
    } else {
        small_sample_margin(n) * 0.6
    };
    if h < expected - margin {
        return false;
    }
    let df = (k - 1) as f64;
    let chi = chi_square_of(counts.iter().copied(), total, k);
    chi < df + 6.0 * (2.0 * df).sqrt() + 10.0
}

fn small_sample_margin(n: usize) -> f64 {
    // About 5 standard deviations of the plug-in entropy of n uniform random bytes
    // (measured: sd 0.077 at n=64, 0.069 at 128, 0.052 at 256, 0.034 at 512).
    match n {
        0..=127 => 0.45,
        128..=255 => 0.36,
        256..=511 => 0.28,
        _ => 0.18,
    }
}

/// `c * log2(c)` for every count a sampled block can reach.
fn clog2_table() -> &'static [f64] {
    static T: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=crate::event::HEAD_LEN)
            .map(|c| {
                if c == 0 {
                    0.0
                } else {
                    c as f64 * (c as f64).log2()
                }
            })
            .collect()
    })
}

fn entropy_of(counts: impl Iterator<Item = u32>, n: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    let mut h = 0.0;
    for c in counts {
        if c > 0 {
            let p = c as f64 / nf;
            h -= p * p.log2();
        }
    }
    h.max(0.0)
}

fn chi_square_of(counts: impl Iterator<Item = u32>, n: u64, k: usize) -> f64 {
    if n == 0 || k == 0 {
        return 0.0;
    }
    let e = n as f64 / k as f64;
    let mut chi = 0.0;
    let mut seen = 0usize;
    for c in counts {
        let d = c as f64 - e;
        chi += d * d / e;
        seen += 1;
    }
    // Bins not present in the iterator have count 0.
    if seen < k {
        chi += (k - seen) as f64 * e;
    }
    chi
}

/// Expected plug-in (maximum-likelihood) entropy, in bits, of `n` symbols drawn uniformly
/// from an alphabet of `k` symbols. Exact (binomial sum) for small samples, Miller–Madow
/// approximation `log2 k - (k-1) / (2 n ln 2)` for `n >= 4k`.
pub fn expected_entropy(n: usize, k: usize) -> f64 {
    if n == 0 || k <= 1 {
        return 0.0;
    }
    let nf = n as f64;
    let kf = k as f64;
    if n >= 4 * k {
        return kf.log2() - (kf - 1.0) / (2.0 * nf * LN_2);
    }
    // E[H] = k * sum_{c>=1} P(C = c) * (-(c/n) log2(c/n)), C ~ Binomial(n, 1/k).
    let p = 1.0 / kf;
    let q = 1.0 - p;
    let mut pmf = q.powf(nf);
    let mut sum = 0.0;
    for c in 1..=n {
        let cf = c as f64;
        pmf *= (nf - cf + 1.0) / cf * (p / q);
        let x = cf / nf;
        sum -= pmf * x * x.log2();
        if cf > nf * p && pmf < 1e-15 {
            break;
        }
    }
    kf * sum
}

/// Shannon entropy of `bytes` in bits per byte.
pub fn entropy(bytes: &[u8]) -> f64 {
    Histogram::of(bytes).entropy()
}

/// Chi-square of `bytes` against uniform bytes.
pub fn chi_square(bytes: &[u8]) -> f64 {
    Histogram::of(bytes).chi_square()
}

/// Do these bytes look like uniform random data (ciphertext or compressed data)?
/// Always `false` below [`MIN_SAMPLE`] bytes.
pub fn looks_random(bytes: &[u8]) -> bool {
    Histogram::of(bytes).looks_random()
}

/// Do these bytes look like base64- or hex-encoded random data?
pub fn looks_armoured(bytes: &[u8]) -> bool {
    Histogram::of(bytes).looks_armoured()
}

/// A fast 64-bit hash of `bytes` (eight bytes per step, then a final mix): not
/// cryptographic, deterministic. Used for content fingerprints.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h ^= h >> 32;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 29)
}

/// A 64-bit hash of everything a [`Profile`](crate::Profile) is computed from: the sample's
/// size, each block's offset and length, and all sampled bytes. [`hash64`]'s step on four
/// independent lanes (32 bytes per round, so the multiplications overlap), the lanes then
/// folded together with the same step and a final mix. Each step is a bijection of both the
/// state and the word, so samples differing in one word never collide; other collisions of
/// non-adversarial data have a chance of about 2^-64. Never 0 (the file table's "none").
pub(crate) fn sample_hash(s: &crate::event::Sample) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    #[inline(always)]
    fn step(h: u64, w: u64) -> u64 {
        (h ^ w).wrapping_mul(K).rotate_left(29)
    }
    #[inline(always)]
    fn word(b: &[u8]) -> u64 {
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    let mut l = [
        0xcbf2_9ce4_8422_2325u64 ^ s.size.wrapping_mul(K),
        0x6a09_e667_f3bc_c908,
        0xbb67_ae85_84ca_a73b,
        0x3c6e_f372_fe94_f82b,
    ];
    for b in &s.blocks {
        l[0] = step(l[0], b.offset);
        l[1] = step(l[1], b.data.len() as u64);
        let mut chunks = b.data.chunks_exact(32);
        for c in &mut chunks {
            l[0] = step(l[0], word(&c[0..8]));
            l[1] = step(l[1], word(&c[8..16]));
            l[2] = step(l[2], word(&c[16..24]));
            l[3] = step(l[3], word(&c[24..32]));
        }
        let r = chunks.remainder();
        if !r.is_empty() {
            // Zero padding is unambiguous: the length was hashed.
            let mut last = [0u8; 32];
            last[..r.len()].copy_from_slice(r);
            for (i, h) in l.iter_mut().enumerate() {
                *h = step(*h, word(&last[i * 8..i * 8 + 8]));
            }
        }
    }
    let mut h = step(step(step(l[0], l[1]), l[2]), l[3]);
    h ^= h >> 32;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 29;
    if h == 0 {
        1
    } else {
        h
    }
}

/// FNV-1a, 64 bit: a fast non-cryptographic hash (used to recognise identical small files).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rnd(seed: u64, n: usize) -> Vec<u8> {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let mut v = vec![0; n];
        r.fill_bytes(&mut v);
        v
    }

    const TEXT: &str = "It was the best of times, it was the worst of times, it was the age \
        of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch \
        of incredulity, it was the season of Light, it was the season of Darkness, it was the \
        spring of hope, it was the winter of despair, we had everything before us, we had \
        nothing before us, we were all going direct to Heaven, we were all going direct the \
        other way.\n";

    fn text(n: usize) -> Vec<u8> {
        TEXT.bytes().cycle().take(n).collect()
    }

    fn csv(n: usize) -> Vec<u8> {
        let mut s = String::from("id,name,ward,admitted,score\n");
        let mut i = 0u64;
        while s.len() < n {
            s.push_str(&format!(
                "{},Patient {} {},W{},2024-0{}-1{},{}.{}\n",
                i,
                ["Smith", "Jones", "Patel", "Nguyen"][i as usize % 4],
                i * 7 % 13,
                i % 9,
                1 + i % 9,
                i % 10,
                i * 37 % 100,
                i % 10
            ));
            i += 1;
        }
        s.into_bytes()[..n].to_vec()
    }

    fn b64(data: &[u8], wrap: usize) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
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
        }
        if wrap > 0 {
            let mut w = Vec::new();
            for line in out.chunks(wrap) {
                w.extend_from_slice(line);
                w.push(b'\n');
            }
            return w;
        }
        out
    }

    #[test]
    fn entropy_basics() {
        assert_eq!(entropy(&[]), 0.0);
        assert_eq!(entropy(&[7; 100]), 0.0);
        let all: Vec<u8> = (0..=255).collect();
        assert!((entropy(&all) - 8.0).abs() < 1e-9);
        assert!(chi_square(&all) < 1e-9);
    }

    #[test]
    fn expected_entropy_matches_simulation() {
        // Measured means of the plug-in entropy of uniform random bytes.
        for (n, m) in [
            (64, 5.766),
            (128, 6.551),
            (256, 7.174),
            (512, 7.591),
            (1023, 7.809),
        ] {
            let e = expected_entropy(n, 256);
            assert!((e - m).abs() < 0.03, "n={n} e={e} m={m}");
        }
        assert!((expected_entropy(4096, 256) - 7.955).abs() < 0.01);
    }

    #[test]
    fn random_is_random_at_all_sizes() {
        for n in [
            64, 65, 100, 128, 200, 256, 511, 512, 1000, 1023, 1024, 4096, 8192,
        ] {
            for seed in 0..200 {
                assert!(
                    looks_random(&rnd(seed * 1000 + n as u64, n)),
                    "n={n} seed={seed}"
                );
            }
        }
    }

    #[test]
    fn small_is_inconclusive() {
        assert!(!looks_random(&rnd(1, 63)));
        assert!(!looks_random(&[]));
        assert!(!looks_armoured(&b64(&rnd(1, 30), 0)));
    }

    #[test]
    fn text_is_not_random_nor_armoured() {
        for n in [64, 100, 300, 1000, 1024, 4096, 8192] {
            for t in [text(n), csv(n)] {
                assert!(!looks_random(&t), "n={n}");
                assert!(!looks_armoured(&t), "n={n}");
            }
        }
        // Letters-and-digits only, no spaces: still a skewed distribution.
        let words: Vec<u8> = TEXT.bytes().filter(|b| b.is_ascii_alphanumeric()).collect();
        assert!(!looks_armoured(&words));
        let mut zeros = vec![0u8; 4096];
        zeros[10] = 1;
        assert!(!looks_random(&zeros));
    }

    #[test]
    fn half_random_is_not_random() {
        let mut v = text(2048);
        v.extend(rnd(5, 2048));
        assert!(!looks_random(&v));
    }

    #[test]
    fn armoured_base64_and_hex() {
        for n in [64, 100, 300, 3000, 6000] {
            let data = rnd(n as u64, n);
            let enc = b64(&data, 76);
            assert!(looks_armoured(&enc), "b64 n={n}");
            assert!(!looks_random(&enc), "b64 is not byte-random n={n}");
            let hexs: Vec<u8> = data
                .iter()
                .flat_map(|b| format!("{b:02x}").into_bytes())
                .collect();
            assert!(looks_armoured(&hexs), "hex n={n}");
            let mut wrapped = Vec::new();
            for line in hexs.chunks(64) {
                wrapped.extend_from_slice(line);
                wrapped.push(b'\n');
            }
            assert!(looks_armoured(&wrapped), "hex wrapped n={n}");
        }
        // Base64 of text is not uniform over the alphabet.
        assert!(!looks_armoured(&b64(&text(3000), 76)));
        // Hex of a counter is not uniform either.
        let low: Vec<u8> = (0..2000u32)
            .flat_map(|i| format!("{:04x}", i % 300).into_bytes())
            .collect();
        assert!(!looks_armoured(&low));
    }

    #[test]
    fn histogram_merge_equals_concatenation() {
        let a = rnd(1, 3000);
        let b = text(1000);
        let mut h = Histogram::of(&a);
        h.merge(&Histogram::of(&b));
        let mut all = a.clone();
        all.extend_from_slice(&b);
        assert_eq!(h, Histogram::of(&all));
    }

    #[test]
    fn prefixes_equal_separate_counts() {
        let mut v = rnd(9, 5000);
        v.extend(text(3192));
        for cuts in [
            [0, 0, 0, 0],
            [0, 512, 4096, 8192],
            [7, 1024, 4100, 8191],
            [1, 2, 3, 5],
        ] {
            let ps = Histogram::prefixes(&v, cuts);
            for (h, &c) in ps.iter().zip(cuts.iter()) {
                assert_eq!(*h, Histogram::of(&v[..c]));
                assert_eq!(
                    h.minus(&Histogram::of(&v[..c / 2])),
                    Histogram::of(&v[c / 2..c])
                );
            }
        }
        // Out-of-order or out-of-range cuts fall back to clamped separate counts.
        let ps = Histogram::prefixes(&v[..100], [50, 20, 200]);
        assert_eq!(ps[0], Histogram::of(&v[..50]));
        assert_eq!(ps[1], Histogram::of(&v[..20]));
        assert_eq!(ps[2], Histogram::of(&v[..100]));
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn sample_hash_sees_every_byte_size_and_offset() {
        use crate::event::{Block, Sample};
        let d = rnd(3, 20_000);
        let of = |d: &[u8]| Sample {
            unchanged: false,
            size: d.len() as u64,
            blocks: Sample::plan(d.len() as u64)
                .into_iter()
                .map(|(o, l)| Block {
                    offset: o,
                    data: d[o as usize..o as usize + l].to_vec(),
                })
                .collect(),
        };
        let base = of(&d);
        let h = sample_hash(&base);
        assert_ne!(h, 0);
        assert_eq!(h, sample_hash(&of(&d)));
        let mut seen = std::collections::HashSet::new();
        for b in 0..base.blocks.len() {
            for i in (0..base.blocks[b].data.len()).step_by(97) {
                let mut s = base.clone();
                s.blocks[b].data[i] ^= 0x80;
                assert!(seen.insert(sample_hash(&s)), "block {b} byte {i}");
            }
        }
        assert!(!seen.contains(&h));
        let mut s = base.clone();
        s.size += 1;
        assert_ne!(sample_hash(&s), h);
        let mut s = base.clone();
        s.blocks[1].offset += 4096;
        assert_ne!(sample_hash(&s), h);
        // Zero padding of a short block is not mistaken for bytes.
        let z = Sample {
            unchanged: false,
            size: 5,
            blocks: vec![Block {
                offset: 0,
                data: vec![0; 5],
            }],
        };
        let mut z6 = z.clone();
        z6.blocks[0].data.push(0);
        assert_ne!(sample_hash(&z), sample_hash(&z6));
        let empty = Sample {
            unchanged: false,
            size: 0,
            blocks: vec![],
        };
        assert_ne!(sample_hash(&empty), 0);
    }
}
