//! The detection rules, one module per indicator.
//!
//! # Damage rules (a pre-existing file destroyed by a lineage)
//!
//! * **(a) content-encrypted**: P closes a pre-existing file whose baseline was not
//!   encrypted-looking and whose new content is. Extra indicators on the same file:
//!   `format-broken` (the baseline was a valid known format, text included, and the new
//!   content is not valid), `encrypted-container`, `armoured-ciphertext`.
//!   The same judgement applies when a file is **renamed over** a pre-existing file
//!   (`mv tmp original`): the replaced file's last content is compared with the
//!   replacement's content (editor saves replace text with text: no damage).
//! * **(b) partial-encryption**: the head kept its (valid, known) format but sampled blocks
//!   went from not-random to random at the same offset — intermittent or header-preserving
//!   encryption. Formats that declare a compressed payload (gzip, zip, PNG, JPEG, PDF,
//!   DICOM with a compressed transfer syntax, ...) are exempt: their payload is random
//!   anyway. Formats that legitimately hold arbitrary binary data after a structured header
//!   (SQLite, tar, DICOM, ELF, zip, PDF, 7z) only count when the *body of the head* (after
//!   the first `min(512, len/2)` bytes) turned random — a database page full of random
//!   blobs deep in the file is normal, a schema page turned to noise is not. For SQLite
//!   and (uncompressed) DICOM the head after the first `min(1024, len/2)` bytes turning
//!   random counts as well (a 1 KiB header kept; a 4 KiB schema page still spans most of
//!   that window). For text, any sampled block counts.
//! * **(c) read-write-delete (funnel)**: the classic "write an encrypted copy, delete the
//!   original". A pre-existing, non-empty, not-already-encrypted file that process R read
//!   is deleted (or renamed away to an unknown extension) by a process D of the same
//!   lineage, and R writes new encrypted-looking files. Pairing is deliberately strict:
//!   - each encrypted output of R pays for one delete; outputs that are copies of
//!     encrypted-looking files R read (same content fingerprint) do not count
//!     (`cp`/`mv`/`rsync` of a tree that contains ciphertext is not encryption);
//!   - R gets no credit while its encrypted outputs are fewer than half of the plain
//!     files it read: an encryptor writes one output per victim, a backup tool (borg,
//!     restic, `tar | gpg`) many inputs per output, so "back up, then delete" is not damage.
//!     Reads of files under 64 bytes (locks, pid files, an empty keyring) and of files R
//!     created itself are not inputs;
//!   - an encrypted output named `<victim>.<any ext>` (`a.xlsx` → `a.xlsx.gpg`) pays for
//!     the delete of `<victim>` even without half-rule credit: `gpg` reads its keyring and
//!     trust db besides the victim, but names its one output after it;
//!   - a delete is *explained*, hence ignored, when R wrote a plain (not encrypted)
//!     output with the same content fingerprint (a copy or move) or named after the
//!     deleted file (`a.txt` → `a.txt.gz`, `a.png` → `a.jpg`).
//!
//!   Deletes that come before the encrypted output wait (pending) until R's next
//!   encrypted output within the window. The damage is counted at the lowest common
//!   ancestor of R and D and above (for `openssl` children that encrypt and `rm` children
//!   that delete, at the script that forks them). Deletes without encrypted output
//!   (`rm -rf`, `gzip --rm`, whose outputs are valid gzip) never count.
//! * **(e) content-wiped**: P overwrites a pre-existing file holding data (at least 64
//!   bytes, not encrypted-looking, not already constant) with one repeated byte value
//!   (zeros: every sampled block constant), and P's lineage writes an encrypted-looking
//!   output (not a copy) within the window, before or after the wipe — "archive, encrypt
//!   the archive, zero the originals". The damage counts at the deepest node of P's chain
//!   whose subtree wrote the encrypted output. Wipes without encrypted output (`shred -z`)
//!   and truncations to empty never count. A close-after-write the sensor reports *after*
//!   the delete of its file (`open; unlink; write; close`) is judged against the state the
//!   file had when deleted (kept 10 s for files still open).
//! * **(d) decoys**: [`Config::decoys`](crate::Config::decoys) are canary files placed by ward. Writing
//!   encrypted-looking content into one, renaming something encrypted over one, or renaming
//!   one to an unknown extension is an **immediate verdict**. Merely reading, copying,
//!   compressing or deleting a decoy (which `tar`, `gzip -r`, `rm -rf` do) is only recorded
//!   as the weak indicator `decoy-accessed`.
//!
//! Extra indicators (never a verdict alone, but they lower the damage threshold by one):
//! * `extension-appended`: a pre-existing file renamed to its name plus an unknown
//!   extension (`a.docx` → `a.docx.locked`), or an encrypted-looking new file named
//!   `<existing or deleted file>.<unknown ext>`. Numeric extensions (log rotation) and
//!   common data/archive/backup extensions (`.gz`, `.bak`, `.tmp`, ...) are not "unknown".
//! * `ransom-note`: small new files (16 B..8 KiB) with identical content (a 64-bit hash of the
//!   bytes) created by the lineage in at least 3 distinct directories.
//!
//! * **restarts** ([`restarts`]): the runs of one program started anew by a boundary
//!   parent (cron, systemd) add up by program identity.
//! * **fan-out** ([`fanout`]): many distinct SMB peers in a short time (a verdict alone).
//!
//! * **format collapse** ([`format`]): a valid known format (text included) became no known
//!   format, or its own format with a broken structure, without looking random (short-key
//!   XOR, weak ciphers).
//!
//! Where each rule lives: [`content`] (a), [`partial`] (b), [`format`] (collapse), [`funnel`] (c), [`wiped`] (e),
//! [`decoy`] (d), [`note`] (`ransom-note`), [`fanout`] (`smb-fanout`). `extension-appended`
//! is set where names change (renames in the event handlers, encrypted outputs in
//! [`funnel`]), with the extension lists of [`crate::naming`].

pub(crate) mod content;
pub(crate) mod decoy;
pub(crate) mod fanout;
pub(crate) mod format;
pub(crate) mod funnel;
pub(crate) mod note;
pub(crate) mod partial;
pub(crate) mod refused;
pub(crate) mod restarts;
pub(crate) mod wiped;

use crate::engine::Engine;
use crate::event::{FileKey, ProcId};
use crate::evidence::DamageRec;
use crate::profile::Profile;
use crate::verdict::{Indicator, Verdict};
use std::sync::Arc;

impl Engine {
    /// Set a node-level mark on p's chain and evaluate.
    pub(crate) fn mark_chain(&mut self, p: ProcId, i: Indicator) -> Option<Verdict> {
        let chain = self.chain(p);
        if chain.is_empty() || self.chain_convicted(&chain).is_some() {
            return None;
        }
        let now = self.now;
        for n in &chain {
            self.ev(*n).mark(i, now);
        }
        if i == Indicator::DecoyAccessed {
            return None;
        }
        self.evaluate(&chain, p, None)
    }

    /// Damage by rule (a)/(b) (or rename-over): counts on p's whole chain.
    pub(crate) fn damage(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        bits: u16,
    ) -> Option<Verdict> {
        let chain = self.chain(p);
        self.record_damage(&chain, p, k, path, bits)
    }

    pub(crate) fn record_damage(
        &mut self,
        chain: &[ProcId],
        culprit: ProcId,
        k: FileKey,
        path: &str,
        bits: u16,
    ) -> Option<Verdict> {
        if chain.is_empty() {
            return None;
        }
        self.files.set_damaged(k);
        let now = self.now;
        if let Some(root) = self.chain_convicted(chain) {
            let e = self.ev(root);
            if !e.after_keys.contains(&k) {
                e.after_keys.push(k);
                e.after.push(path.to_string());
            }
            return None;
        }
        let rec = Arc::new(DamageRec {
            file: k,
            path: path.to_string(),
            time: now,
            indicators: bits,
        });
        for n in chain {
            let e = self.ev(*n);
            e.activity += 1;
            if !e.damage.iter().any(|d| d.file == k) {
                e.damage.push_back(rec.clone());
            }
        }
        if let Some(v) = self.evaluate(chain, culprit, None) {
            return Some(v);
        }
        self.restart_damage(chain, culprit, &rec)
    }
}

pub(crate) trait ContentCheck {
    fn is_none_or_empty_or_encrypted(&self) -> bool;
}

impl ContentCheck for Option<Profile> {
    fn is_none_or_empty_or_encrypted(&self) -> bool {
        match self {
            None => true,
            Some(p) => p.is_empty() || p.encrypted_looking(),
        }
    }
}

/// Rules (a), (b) and format collapse: did the change from `base` to `new` destroy the content?
/// Returns the indicator bits when it did.
pub(crate) fn judge_change(base: &Profile, new: &Profile) -> Option<u16> {
    if base.is_empty() || base.encrypted_looking() {
        return None;
    }
    content::judge(base, new)
        .or_else(|| partial::judge(base, new))
        .or_else(|| format::judge(base, new))
}
