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
        k => k == bf.kind && !nf.valid,
    };
    collapsed.then(|| Indicator::FormatBroken.bit())
}
