//! Rule (b), `partial-encryption`: the head kept its (valid, known) format but sampled
//! blocks went from not-random to random at the same offset (intermittent or
//! header-preserving encryption).
//!
//! The same rule on **written blocks** ([`Op::Written`](crate::Op::Written)): the sensor
//! saw the bytes of the blocks a process wrote, before and after. Striped encryption
//! (4 KiB of every 64 KiB) misses the sampled head, middle and tail blocks, but not the
//! blocks it writes. A written block *flips* when it held data that was neither random,
//! armoured nor one repeated byte value (text, records, uncompressed structure) and is
//! ciphertext-like now. The file is damaged when at least one written block flipped and
//! flips are at least half of the judged blocks (those with at least
//! [`WRITTEN_MIN`] bytes before and after). Not flips: a database rewriting random pages
//! (random before), writes into preallocated or freed space (constant before), appends
//! (nothing before), edits of text with text. Judged only for files that existed before
//! the writer opened them and whose baseline was not already encrypted-looking.

use crate::engine::Engine;
use crate::event::{FileKey, ProcId, WrittenBlock};
use crate::profile::{BlockProfile, Profile};
use crate::sniff::Kind;
use crate::verdict::{Indicator, Verdict};

/// Bytes a written block needs before and after to be judged.
pub const WRITTEN_MIN: usize = 256;

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

/// Written blocks (see the module docs): the indicator bits when the writes encrypted data.
pub(crate) fn judge_written(base: &Profile, blocks: &[WrittenBlock]) -> Option<u16> {
    if base.is_empty() || base.encrypted_looking() {
        return None;
    }
    let (mut judged, mut flips) = (0usize, 0usize);
    for b in blocks {
        if b.before.len() < WRITTEN_MIN || b.after.len() < WRITTEN_MIN {
            continue;
        }
        judged += 1;
        let old = BlockProfile::of(b.offset, &b.before, false);
        if old.ciphertext_like() || old.constant() {
            continue;
        }
        if BlockProfile::of(b.offset, &b.after, false).ciphertext_like() {
            flips += 1;
        }
    }
    (flips > 0 && 2 * flips >= judged).then(|| Indicator::PartialEncryption.bit())
}

/// Writes with flipped blocks awaiting their file's next sample, at most.
pub(crate) const MAX_WRITTEN: usize = 4096;

impl Engine {
    /// [`Op::Written`](crate::Op::Written) by `p`: the blocks that flipped against `p`'s
    /// baseline of the file are recorded, and judged with `p`'s next sample of the whole
    /// file ([`Engine::written_flips`]).
    pub(crate) fn on_written(&mut self, p: ProcId, k: FileKey, blocks: &[WrittenBlock]) {
        // A file never seen (opened before ward started) or created by `p`: nothing to judge.
        if !self.files.contains(k) || self.files.creator(k) == Some(p) {
            return;
        }
        self.touch(k);
        let Some(bits) = self
            .writer_baseline(p, k)
            .and_then(|base| judge_written(&base, blocks))
        else {
            return;
        };
        if self.written.len() >= MAX_WRITTEN {
            self.written.clear();
        }
        *self.written.entry((p, k)).or_default() |= bits;
    }

    /// Flipped blocks recorded for `p`'s write of `k` (see [`Op::Written`]), now that its
    /// new content `newp` is known: damage, unless the file as a whole is now a verified
    /// compressed format (an archiver or PACS re-encoding a body in place as a deflate
    /// stream flips every block it writes, and that is compression, not encryption).
    pub(crate) fn written_flips(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        newp: &crate::profile::Profile,
    ) -> Option<Verdict> {
        let bits = self.written.remove(&(p, k))?;
        if newp.format.packed && newp.format.valid {
            return None;
        }
        self.damage(p, k, path, bits)
    }
}
