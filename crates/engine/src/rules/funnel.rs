//! Rule (c), `read-write-delete`: the funnel "write an encrypted copy, delete the
//! original", paired strictly (see the [rules](super) documentation).

use super::ContentCheck;
use crate::engine::Engine;
use crate::event::{FileKey, ProcId};
use crate::evidence::Pending;
use crate::files::FileState;
use crate::hash::path_hash;
use crate::naming::{benign_ext, extension};
use crate::profile::Profile;
use crate::verdict::{Indicator, Verdict};

/// Deletes waiting for an encrypted output, per reader.
pub(crate) const MAX_PENDING: usize = 4096;
/// Deletes this soon after an encrypted container of the lineage belong to it.
pub(crate) const CONTAINER_GAP_NS: u64 = 60 * 1_000_000_000;

impl Engine {
    /// Funnel: `p` deleted (or renamed away) file `k` (state `f`, at `path`).
    pub(crate) fn funnel(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        f: &FileState,
    ) -> Option<Verdict> {
        if !f.pre_existing_for(p) {
            return None;
        }
        let dchain = self.chain(p);
        if dchain.is_empty() {
            return None;
        }
        let now = self.now;
        // Readers of the file in the deleter's lineage, with their common ancestor.
        let mut readers: Vec<(ProcId, ProcId)> = Vec::new();
        for h in f.holds.iter() {
            // The content the reader saw must have been real, unencrypted data.
            let content = h.baseline.or(f.profile);
            if content.is_none_or_empty_or_encrypted() || f.creator == Some(h.proc) {
                continue;
            }
            // Moved, copied or transformed into a plain output by the reader: not damage.
            let stem = extension(path).map(|x| path_hash(&path[..path.len() - x.len() - 1]));
            let explained = self
                .procs
                .get(&h.proc)
                .and_then(|n| n.ev.as_ref())
                .is_some_and(|e| {
                    e.explained.contains(&path_hash(path))
                        || stem.is_some_and(|s| e.explained.contains(&s))
                        || content.is_some_and(|c| e.explained.contains(&c.fingerprint()))
                });
            if explained {
                continue;
            }
            let rchain = self.chain_inner(h.proc, false);
            if let Some(lca) = dchain.iter().copied().find(|n| rchain.contains(n)) {
                readers.push((h.proc, lca));
            }
        }
        if readers.is_empty() {
            return None;
        }
        let bits = Indicator::ReadWriteDelete.bit();
        let stem = path_hash(path);
        // A reader that already wrote an unpaid encrypted output pays for this delete now.
        let payer = readers.iter().copied().find(|(r, _)| {
            let e = self.ev(*r);
            e.credit() > 0 || e.named_credit(stem)
        });
        if let Some((r, lca)) = payer {
            let e = self.ev(r);
            e.funnel_used += 1;
            e.funnel_time = now;
            let appended = e.enc_stems.contains(&stem);
            let lca_chain = self.chain_from(lca);
            if appended {
                for n in &lca_chain {
                    self.ev(*n).mark(Indicator::ExtensionAppended, now);
                }
            }
            return self.record_damage(&lca_chain, p, k, path, bits);
        }
        // Pipelines: the reader is not the encryptor. The lineage (from the common ancestor
        // of reader and deleter up) pays when its members wrote about one encrypted output
        // per file they read; or, for containers made of many files, when the deletes come
        // right after a container and the lineage then writes another container (one per
        // department: container, deletes, container): a backup followed by the clean-up of
        // what it saved (borg, `tar | gpg; rm -rf`) ends with the deletes and stays quiet.
        let (_, lca) = readers[0];
        let lca_chain = self.chain_from(lca);
        if let Some(i) = lca_chain.iter().position(|n| self.ev(*n).sub_credit() > 0) {
            for n in &lca_chain[i..] {
                self.ev(*n).sub_used += 1;
            }
            return self.record_damage(&lca_chain[i..], p, k, path, bits);
        }
        // Reads, then the container, then the deletes: no read by the subtree since.
        let fresh = lca_chain.iter().position(|n| {
            let e = self.ev(*n);
            e.enc_time > 0
                && now.saturating_sub(e.enc_time) <= CONTAINER_GAP_NS
                && e.sub_read_time <= e.enc_time
        });
        if let Some(i) = fresh {
            let e = self.ev(lca_chain[i]);
            if e.post_deletes.len() >= MAX_PENDING {
                e.post_deletes.pop_front();
            }
            e.post_deletes.push_back(Pending {
                file: k,
                path: path.to_string(),
                time: now,
                lca: lca_chain[i],
                content: bits,
            });
            e.sub_time = now;
        }
        // Otherwise wait for the next encrypted output of any of the readers.
        for (r, lca) in readers {
            let e = self.ev(r);
            if e.pending.len() >= MAX_PENDING {
                e.pending.pop_front();
            }
            e.pending.push_back(Pending {
                file: k,
                path: path.to_string(),
                time: now,
                lca,
                content: bits,
            });
            e.funnel_time = now;
        }
        None
    }

    /// `p` wrote a new encrypted-looking file at `path`.
    pub(crate) fn encrypted_output(
        &mut self,
        p: ProcId,
        path: &str,
        prof: &Profile,
    ) -> Option<Verdict> {
        let fp = prof.fingerprint();
        let now = self.now;
        let chain = self.chain(p);
        if chain.is_empty() {
            return None;
        }
        // Named `<existing pre-existing file>.<unknown ext>`?
        let mut appended = false;
        let mut stem_hash = None;
        if let Some(ext) = extension(path) {
            if !benign_ext(ext) {
                let stem = &path[..path.len() - ext.len() - 1];
                stem_hash = Some(path_hash(stem));
                // ... of a pre-existing file that was not itself encrypted-looking (copying
                // `x.bin` to `x.bin.1234` is not encrypting it).
                appended = self.by_path(stem).is_some_and(|s| {
                    self.files.creator(s) != Some(p)
                        && self
                            .files
                            .profile(s)
                            .is_some_and(|pr| !pr.encrypted_looking())
                });
            }
        }
        // A copy of ciphertext read (same fingerprint), or ciphertext read and wrapped in a
        // compressed container (`gzip -r` over `.gpg` files): at most one wrapped output per
        // encrypted-looking input.
        let e = self.ev(p);
        let wrapped = prof.format.kind.is_stream() && !prof.format.valid;
        let copy = e.random_fps.contains(&fp) || (wrapped && e.wrapped_outputs < e.random_reads);
        if wrapped && copy {
            e.wrapped_outputs = e.wrapped_outputs.saturating_add(1);
        }
        for n in &chain {
            let e = self.ev(*n);
            e.activity += 1;
            if appended {
                e.mark(Indicator::ExtensionAppended, now);
            }
            if !copy {
                e.enc_time = now;
                e.sub_outputs = e.sub_outputs.saturating_add(1);
                e.sub_time = now;
            }
        }
        // Deletes that followed an earlier container of a node's subtree count now that it
        // writes another one after them.
        let mut verdict = None;
        if !copy {
            for (i, n) in chain.iter().enumerate() {
                let e = self.ev(*n);
                // The new container must follow new reads (the next department's files).
                let read_since = e
                    .post_deletes
                    .back()
                    .is_some_and(|pd| e.sub_read_time > pd.time);
                if e.post_deletes.is_empty() || !read_since {
                    continue;
                }
                let pend = std::mem::take(&mut e.post_deletes);
                let at = chain[i..].to_vec();
                for pd in pend {
                    let v = self.record_damage(&at, p, pd.file, &pd.path, pd.content);
                    verdict = verdict.or(v);
                }
            }
        }
        // Files wiped earlier by this subtree now count (rule (e)), at the deepest node
        // holding them.
        if !copy {
            if let Some(i) = chain.iter().position(|n| !self.ev(*n).wipes.is_empty()) {
                let wipes = std::mem::take(&mut self.ev(chain[i]).wipes);
                for n in &chain[i + 1..] {
                    self.ev(*n).wipes.clear();
                }
                let at = chain[i..].to_vec();
                for w in wipes {
                    let v =
                        self.record_damage(&at, p, w.file, &w.path, Indicator::ContentWiped.bit());
                    verdict = verdict.or(v);
                }
            }
        }
        let e = self.ev(p);
        e.enc_outputs = e.enc_outputs.saturating_add(1);
        e.funnel_time = now;
        if copy {
            e.copied_outputs = e.copied_outputs.saturating_add(1);
        }
        if let Some(s) = stem_hash {
            if e.enc_stems.len() >= 64 {
                e.enc_stems.pop_front();
            }
            e.enc_stems.push_back(s);
        }
        let named = extension(path).map(|x| path_hash(&path[..path.len() - x.len() - 1]));
        if let (Some(s), false) = (named, copy) {
            if e.enc_named.len() >= 64 {
                e.enc_named.pop_front();
            }
            e.enc_named.push_back(s);
            // A delete of `<stem>` waiting for this output is paid by it.
            if let Some(i) = e.pending.iter().position(|pd| path_hash(&pd.path) == s) {
                if let Some(pd) = e.pending.remove(i) {
                    e.funnel_used += 1;
                    let lca_chain = self.chain_from(pd.lca);
                    let v = self.record_damage(&lca_chain, p, pd.file, &pd.path, pd.content);
                    verdict = verdict.or(v);
                }
            }
        }
        // Pay pending deletes.
        loop {
            let e = self.ev(p);
            if e.credit() == 0 {
                break;
            }
            let Some(pd) = e.pending.pop_front() else {
                break;
            };
            e.funnel_used += 1;
            let lca_chain = self.chain_from(pd.lca);
            let v = self.record_damage(&lca_chain, p, pd.file, &pd.path, pd.content);
            if verdict.is_none() {
                verdict = v;
            }
        }
        if verdict.is_none() && appended {
            verdict = self.evaluate(&chain, p, None);
        }
        verdict
    }
}
