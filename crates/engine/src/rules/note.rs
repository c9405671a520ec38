//! `ransom-note`: small new files (16 B..8 KiB) with identical content created by the
//! lineage in at least 3 distinct directories.

use crate::engine::Engine;
use crate::event::ProcId;
use crate::hash::path_hash;
use crate::naming::parent_dir;
use crate::verdict::{Indicator, Verdict};

/// Distinct note contents tracked per node.
pub(crate) const MAX_NOTES: usize = 256;
/// Smallest note size.
pub(crate) const NOTE_MIN: u64 = 16;
/// Largest note size.
pub(crate) const NOTE_MAX: u64 = 8192;

impl Engine {
    /// A small new file: ransom note candidate.
    pub(crate) fn note(&mut self, p: ProcId, path: &str, hash: u64) -> Option<Verdict> {
        let chain = self.chain(p);
        if chain.is_empty() || self.chain_convicted(&chain).is_some() {
            return None;
        }
        let dir = path_hash(parent_dir(path));
        let now = self.now;
        let mut hit = false;
        for n in &chain {
            let e = self.ev(*n);
            if e.notes.len() >= MAX_NOTES && !e.notes.contains_key(&hash) {
                e.notes.retain(|_, d| d.n >= 2);
                if e.notes.len() >= MAX_NOTES {
                    e.notes.clear();
                }
            }
            let d = e.notes.entry(hash).or_default();
            d.time = now;
            let n_dirs = (d.n as usize).min(3);
            if !d.dirs[..n_dirs].contains(&dir) && n_dirs < 3 {
                d.dirs[n_dirs] = dir;
                d.n += 1;
            }
            if d.n >= 3 {
                e.mark(Indicator::RansomNote, now);
                hit = true;
            }
        }
        if hit {
            return self.evaluate(&chain, p, None);
        }
        None
    }
}
