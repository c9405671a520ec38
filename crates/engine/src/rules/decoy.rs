//! `decoy-touched` / `decoy-accessed`: canary files placed by ward.
//!
//! Writing encrypted-looking content into a decoy, renaming something encrypted over one,
//! or renaming one to an unknown extension is an immediate verdict; reading, copying,
//! compressing or deleting one is only the weak `decoy-accessed`. The blamed node is the
//! deepest one of the chain holding more than half of its parent's activity.

use crate::engine::Engine;
use crate::event::{FileKey, ProcId};
use crate::verdict::{Indicator, Verdict};

impl Engine {
    pub(crate) fn decoy_verdict(&mut self, p: ProcId, k: FileKey, path: &str) -> Option<Verdict> {
        let chain = self.chain(p);
        if chain.is_empty() {
            return None;
        }
        let now = self.now;
        if let Some(root) = self.chain_convicted(&chain) {
            let e = self.ev(root);
            if !e.after_keys.contains(&k) {
                e.after_keys.push(k);
                e.after.push(path.to_string());
            }
            return None;
        }
        for n in &chain {
            let e = self.ev(*n);
            e.activity += 1;
            e.mark(Indicator::DecoyTouched, now);
        }
        self.files.set_damaged(k);
        // Blame: deepest node holding more than half of its parent's activity.
        let act = |s: &Self, n: ProcId| {
            s.procs
                .get(&n)
                .and_then(|n| n.ev.as_ref())
                .map_or(0, |e| e.activity)
        };
        let mut root = *chain.last().unwrap_or(&p);
        for w in chain.windows(2) {
            if 2 * act(self, w[0]) > act(self, w[1]) {
                root = w[0];
                break;
            }
        }
        let mut v = self.evaluate(&chain, p, Some(root))?;
        if !v.files_damaged.iter().any(|d| d == path) {
            v.files_damaged.push(path.to_string());
            v.damage_count = v.files_damaged.len();
        }
        Some(v)
    }
}
