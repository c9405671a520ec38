//! Rule (b), `partial-encryption`: the head kept its (valid, known) format but sampled
//! blocks went from not-random to random at the same offset (intermittent or
//! header-preserving encryption).

use crate::profile::Profile;
use crate::sniff::Kind;
use crate::verdict::Indicator;

/// Rule (b): partial encryption with the head format kept.
pub(crate) fn judge(base: &Profile, new: &Profile) -> Option<u16> {
    let (bf, nf) = (base.format, new.format);
    if bf.kind != nf.kind || !bf.is_valid_known() || !nf.valid {
        return None;
    }
    // The end structure of the format (zip central directory, PDF trailer, PNG IEND) was
    // in the sampled tail and is gone: the file was encrypted past its head, at any stride.
    let tail_gone = base.tail().is_some_and(|t| t.tail_ok())
        && new.tail().is_some_and(|t| !t.tail_ok())
        && !new.has_stream();
    if tail_gone {
        return Some(Indicator::PartialEncryption.bit() | Indicator::FormatBroken.bit());
    }
    if bf.packed || nf.packed {
        return None;
    }
    let hit = if bf.kind.holds_arbitrary_data() || bf.kind == Kind::Elf {
        // Databases and (uncompressed) DICOM keep no random payload in their first pages:
        // noise after a kept 1 KiB header counts too.
        let deep = matches!(bf.kind, Kind::Sqlite | Kind::Dicom);
        let head = match (base.head(), new.head()) {
            (Some(b), Some(n)) => {
                (!b.body_random() && n.body_random())
                    || (deep && !b.body1k_random() && n.body1k_random())
            }
            _ => false,
        };
        // Uncompressed images and compound documents: a deeper sampled block turning to
        // noise counts too (encryption that skips the first blocks), unless the head shows
        // the body was re-encoded as a verified compressed stream.
        let deeper = matches!(bf.kind, Kind::Dicom | Kind::Ole2)
            && !new.has_stream()
            && flipped(base, new, |b| b.offset > 0);
        head || deeper
    } else {
        flipped(base, new, |_| true)
    };
    hit.then(|| Indicator::PartialEncryption.bit())
}

/// Some sampled block (selected by `which`) went from not ciphertext-like to
/// ciphertext-like at the same offset.
fn flipped(
    base: &Profile,
    new: &Profile,
    which: impl Fn(&crate::profile::BlockProfile) -> bool,
) -> bool {
    new.blocks().iter().filter(|b| which(b)).any(|nb| {
        base.blocks()
            .iter()
            .find(|bb| bb.offset == nb.offset)
            .is_some_and(|bb| !bb.ciphertext_like() && nb.ciphertext_like())
    })
}
