//! Rule (b), `partial-encryption`: the head kept its (valid, known) format but sampled
//! blocks went from not-random to random at the same offset (intermittent or
//! header-preserving encryption).

use crate::profile::Profile;
use crate::sniff::Kind;
use crate::verdict::Indicator;

/// Rule (b): partial encryption with the head format kept.
pub(crate) fn judge(base: &Profile, new: &Profile) -> Option<u16> {
    let (bf, nf) = (base.format, new.format);
    if bf.kind != nf.kind || !bf.is_valid_known() || !nf.valid || bf.packed || nf.packed {
        return None;
    }
    let hit = if bf.kind.holds_arbitrary_data() || bf.kind == Kind::Elf {
        // Databases and (uncompressed) DICOM keep no random payload in their first pages:
        // noise after a kept 1 KiB header counts too.
        let deep = matches!(bf.kind, Kind::Sqlite | Kind::Dicom);
        match (base.head(), new.head()) {
            (Some(b), Some(n)) => {
                (!b.body_random() && n.body_random())
                    || (deep && !b.body1k_random() && n.body1k_random())
            }
            _ => false,
        }
    } else {
        new.blocks().iter().any(|nb| {
            base.blocks()
                .iter()
                .find(|bb| bb.offset == nb.offset)
                .is_some_and(|bb| !bb.ciphertext_like() && nb.ciphertext_like())
        })
    };
    hit.then(|| Indicator::PartialEncryption.bit())
}
