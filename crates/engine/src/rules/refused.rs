//! `write-refused`: the agent refused a write-intent open of a lineage because no copy of
//! the file could be made (the filesystem is full even after the vault's reserve) while
//! the lineage already showed evidence. A lineage that has damaged at least one file and
//! then keeps writing where nothing can be preserved is convicted (see
//! [`Engine::crossed`](crate::Engine)): stopped, and the files it damaged restored,
//! rather than left running, refused, with its damage in place.

use crate::engine::Engine;
use crate::event::ProcId;
use crate::verdict::{Indicator, Verdict};

impl Engine {
    /// The agent refused a write-intent open by `p` (no copy could be made). Marks `p`'s
    /// lineage; returns the verdict when that convicts it (the lineage has damaged at
    /// least one file).
    pub fn write_refused(&mut self, p: ProcId) -> Option<Verdict> {
        let chain = self.chain(p);
        if chain.is_empty() {
            return None;
        }
        let now = self.now;
        for n in &chain {
            self.ev(*n).mark(Indicator::WriteRefused, now);
        }
        let v = self.evaluate(&chain, p, None);
        if v.is_some() {
            self.stats.verdicts += 1;
        }
        v
    }
}
