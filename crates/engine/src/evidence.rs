//! Evidence held by one process node, for itself and its subtree: damaged files, marks,
//! funnel accounting, notes, wipes, fan-out addresses, and what happened after a verdict.

use crate::event::{FileKey, ProcId};
use crate::hash::Map;
use crate::verdict::Indicator;
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct DamageRec {
    pub(crate) file: FileKey,
    pub(crate) path: String,
    pub(crate) time: u64,
    pub(crate) indicators: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) file: FileKey,
    pub(crate) path: String,
    pub(crate) time: u64,
    /// Lowest common ancestor of the reader and the deleter: where damage counts.
    pub(crate) lca: ProcId,
    pub(crate) content: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct Wipe {
    pub(crate) file: FileKey,
    pub(crate) path: String,
    pub(crate) time: u64,
}

#[derive(Debug, Default)]
pub(crate) struct NoteDirs {
    pub(crate) dirs: [u64; 3],
    pub(crate) n: u8,
    pub(crate) time: u64,
}

/// Evidence held by one process node (for itself and its subtree).
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    /// Damaged files in the subtree, in order (distinct files).
    pub(crate) damage: VecDeque<Arc<DamageRec>>,
    /// Node-level indicators (extension-appended, ransom-note, decoy-accessed) + time.
    pub(crate) marks: Vec<(Indicator, u64)>,
    /// Identical small new files: content hash → directories.
    pub(crate) notes: Map<u64, NoteDirs>,
    /// Activity for decoy blame: encrypted outputs + damage in the subtree.
    pub(crate) activity: u64,
    /// Last time (event time) the subtree wrote an encrypted output that is not a copy;
    /// 0 if never.
    pub(crate) enc_time: u64,
    /// Pre-existing files the subtree wiped (rule (e)) before any encrypted output.
    pub(crate) wipes: VecDeque<Wipe>,
    // --- Per-process funnel accounting (this process as reader/writer) ---
    pub(crate) enc_outputs: u32,
    /// Encrypted outputs that are copies of encrypted-looking files this process read
    /// (same content fingerprint): `cp`/`rsync` of ciphertext is not encryption.
    pub(crate) copied_outputs: u32,
    /// Fingerprints of the encrypted-looking files this process read (most recent 64).
    pub(crate) random_fps: VecDeque<u64>,
    /// Encrypted-looking files this process read (all of them: `random_fps` keeps only the
    /// most recent, and a `gzip -r` over a tree with hundreds of random files wraps every
    /// one of them).
    pub(crate) random_reads: u32,
    /// Encrypted-looking outputs that are compressed containers of ciphertext, counted as
    /// copies of encrypted-looking inputs (at most one per such input).
    pub(crate) wrapped_outputs: u32,
    /// Files read whose content was real, unencrypted data (at least 64 bytes, not
    /// created by this process).
    pub(crate) plain_reads: u32,
    pub(crate) funnel_used: u32,
    pub(crate) funnel_time: u64,
    /// Deletes of files this process read, waiting for its next encrypted output.
    pub(crate) pending: VecDeque<Pending>,
    /// Path hashes of `<stem>` for new encrypted files named `<stem>.<unknown ext>`.
    pub(crate) enc_stems: VecDeque<u64>,
    /// Path hashes of `<stem>` for new encrypted files (not copies) named `<stem>.<ext>`,
    /// whatever the extension (`a.xlsx` → `a.xlsx.gpg`): such an output pays for the
    /// delete of `<stem>` even when the half rule gives no credit.
    pub(crate) enc_named: VecDeque<u64>,
    /// Deletes this process can explain by a plain (not encrypted) output: path hashes of
    /// `<stem>` of its outputs named `<stem>.<ext>` (gzip, converters) and fingerprints of
    /// the content it wrote (copies, moves). Not evidence.
    pub(crate) explained: VecDeque<u64>,
    /// SMB fan-out: (address hash, last connect time) of the distinct addresses the
    /// subtree connected to on 445/139 within the fan-out window, oldest first.
    pub(crate) connects: VecDeque<(u64, u64)>,
    // --- Subtree funnel (pipelines: reader, encryptor and deleter are different members) ---
    /// Plain files read by the subtree.
    pub(crate) sub_reads: u32,
    /// Encrypted outputs (not copies) written by the subtree.
    pub(crate) sub_outputs: u32,
    /// Subtree outputs that paid for a delete.
    pub(crate) sub_used: u32,
    pub(crate) sub_time: u64,
    /// Time of the subtree's last plain read.
    pub(crate) sub_read_time: u64,
    /// Deletes of files the subtree read, soon after one of its encrypted containers:
    /// damage once the subtree writes a second one.
    pub(crate) post_deletes: VecDeque<Pending>,
    // --- After conviction ---
    pub(crate) after: Vec<String>,
    pub(crate) after_keys: Vec<FileKey>,
}

impl Evidence {
    pub(crate) fn expire(&mut self, now: u64, window: u64) {
        let old = |t: u64| now.saturating_sub(t) > window;
        while self.damage.front().is_some_and(|d| old(d.time)) {
            self.damage.pop_front();
        }
        while self.pending.front().is_some_and(|p| old(p.time)) {
            self.pending.pop_front();
        }
        self.marks.retain(|(_, t)| !old(*t));
        while self.wipes.front().is_some_and(|w| old(w.time)) {
            self.wipes.pop_front();
        }
        if old(self.enc_time) {
            self.enc_time = 0;
        }
        self.notes.retain(|_, n| !old(n.time));
        if old(self.sub_time) {
            self.sub_reads = 0;
            self.sub_outputs = 0;
            self.sub_used = 0;
            self.post_deletes.clear();
        }
        if old(self.funnel_time) {
            self.enc_outputs = 0;
            self.copied_outputs = 0;
            self.random_fps.clear();
            self.random_reads = 0;
            self.wrapped_outputs = 0;
            self.plain_reads = 0;
            self.funnel_used = 0;
            self.enc_stems.clear();
            self.enc_named.clear();
        }
    }

    /// Does this evidence still matter once its process has exited (and has no children)?
    /// Reads alone do not: a dead reader writes no more outputs, so its read counts and
    /// the fingerprints of what it read can never pay for or excuse anything again.
    pub(crate) fn matters_after_exit(&self) -> bool {
        !(self.damage.is_empty()
            && self.pending.is_empty()
            && self.wipes.is_empty()
            && self.enc_time == 0
            && self.marks.is_empty()
            && self.notes.is_empty()
            && self.enc_outputs == 0
            && self.connects.is_empty()
            && self.post_deletes.is_empty()
            && self.after.is_empty())
    }

    /// Give back spare capacity (an exited process's evidence no longer grows, but may be
    /// kept for a long time).
    pub(crate) fn shrink(&mut self) {
        self.damage.shrink_to_fit();
        self.marks.shrink_to_fit();
        self.notes.shrink_to_fit();
        self.wipes.shrink_to_fit();
        self.random_fps.shrink_to_fit();
        self.pending.shrink_to_fit();
        self.enc_stems.shrink_to_fit();
        self.enc_named.shrink_to_fit();
        self.explained.shrink_to_fit();
        self.connects.shrink_to_fit();
        self.post_deletes.shrink_to_fit();
        self.after.shrink_to_fit();
        self.after_keys.shrink_to_fit();
    }

    /// Forget connects older than the fan-out window.
    pub(crate) fn expire_connects(&mut self, now: u64, window: u64) {
        while self
            .connects
            .front()
            .is_some_and(|(_, t)| now.saturating_sub(*t) > window)
        {
            self.connects.pop_front();
        }
    }

    pub(crate) fn has_mark(&self, i: Indicator) -> bool {
        self.marks.iter().any(|(m, _)| *m == i)
    }

    pub(crate) fn mark(&mut self, i: Indicator, now: u64) {
        match self.marks.iter_mut().find(|(m, _)| *m == i) {
            Some(e) => e.1 = e.1.max(now),
            None => self.marks.push((i, now)),
        }
    }

    pub(crate) fn explain(&mut self, h: u64) {
        if self.explained.len() >= 256 {
            self.explained.pop_front();
        }
        self.explained.push_back(h);
    }

    /// Encrypted outputs not yet matched with a delete. An encryptor writes about one
    /// output per file it reads; a backup or archiver reads many files per output, so a
    /// reader whose outputs are fewer than half its reads gets no credit.
    pub(crate) fn credit(&self) -> u32 {
        let out = self.outputs();
        if (out as u64) * 2 < self.plain_reads as u64 {
            return 0;
        }
        out.saturating_sub(self.funnel_used)
    }

    /// Encrypted outputs that are not copies of ciphertext read.
    pub(crate) fn outputs(&self) -> u32 {
        self.enc_outputs.saturating_sub(self.copied_outputs)
    }

    /// Subtree-level credit: the half rule of [`Evidence::credit`] over the whole subtree.
    pub(crate) fn sub_credit(&self) -> u32 {
        if (self.sub_outputs as u64) * 2 < self.sub_reads as u64 {
            return 0;
        }
        self.sub_outputs.saturating_sub(self.sub_used)
    }

    /// An unpaid encrypted output named after the file at path hash `stem`.
    pub(crate) fn named_credit(&self, stem: u64) -> bool {
        self.outputs() > self.funnel_used && self.enc_named.contains(&stem)
    }
}
