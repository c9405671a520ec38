//! `format-broken` on its own: a pre-existing file in a valid known format (text
//! included) became content of no known format, or its own format with a broken structure
//! (chunk CRCs, stream data, entry checksums), without looking random.
//!
//! This is what short-key XOR and other statistically weak ciphers leave: the entropy
//! stays low, but a document, image, database or text is no longer one. Verified
//! compression (a zlib stream after a kept header) and one repeated byte (wipes, judged by
//! their own rule) are not collapse, and neither is anything under 64 bytes.

use crate::profile::Profile;
use crate::sniff::Kind;
use crate::stats::MIN_SAMPLE;
use crate::verdict::Indicator;

/// Did the format collapse from `base` to `new`? Returns the indicator bits.
pub(crate) fn judge(base: &Profile, new: &Profile) -> Option<u16> {
    let (bf, nf) = (base.format, new.format);
    if !bf.is_valid_known() || bf.kind == Kind::Empty {
        return None;
    }
    if base.size < MIN_SAMPLE as u64 || new.size < MIN_SAMPLE as u64 {
        return None;
    }
    if new.wiped() || new.has_stream() || new.format.is_encrypted() {
        return None;
    }
    let collapsed = match nf.kind {
        Kind::Unknown => true,
        Kind::Text if bf.kind == Kind::Text => substituted(base, new),
        k => k == bf.kind && !nf.valid,
    };
    collapsed.then(|| Indicator::FormatBroken.bit())
}

/// Text that is still text but whose byte values were permuted (single-byte XOR, Caesar
/// shifts, substitution): the head's entropy is unchanged (a permutation keeps the shape
/// of the distribution) while none of its four most frequent byte values is among the
/// original's. Edits, other texts of the same kind, case changes and re-encodings keep
/// some of them (space, newline, `e`, `,`, digits).
fn substituted(base: &Profile, new: &Profile) -> bool {
    let (Some(b), Some(n)) = (base.head(), new.head()) else {
        return false;
    };
    if base.size < 256 || new.size < 256 {
        return false;
    }
    let (bt, nt) = (base.top_bytes(), new.top_bytes());
    (b.entropy() - n.entropy()).abs() <= 0.15 && !bt.iter().any(|x| nt.contains(x))
}
