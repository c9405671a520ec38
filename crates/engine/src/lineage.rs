//! Process lineages: the process table, the chains evidence flows up, and forgetting
//! exited processes.
//!
//! Evidence of process P counts for P and each ancestor up to, excluding, the first
//! boundary process (`ProcInfo::boundary`). An exited process (`Op::Exit`) is forgotten
//! once it has no retained children and no evidence, `Config::dead_ttl_ns` after its exit
//! (or at once when more than `Config::max_dead` exited processes are retained); a parent
//! whose last child is forgotten is queued for the same check. Without `Exit` events the
//! process table only grows.

use crate::engine::Engine;
use crate::event::{ProcId, ProcInfo};
use crate::evidence::Evidence;

#[derive(Debug, Default)]
pub(crate) struct ProcNode {
    pub(crate) info: Option<ProcInfo>,
    /// Children, possibly with stale entries (forgotten or re-parented processes); see
    /// `nchildren` for the live count. Compacted lazily.
    pub(crate) children: Vec<ProcId>,
    pub(crate) nchildren: u32,
    pub(crate) alive: bool,
    pub(crate) exit_time: u64,
    pub(crate) convicted: bool,
    pub(crate) ev: Option<Box<Evidence>>,
}

impl ProcNode {
    pub(crate) fn ev(&mut self) -> &mut Evidence {
        self.ev.get_or_insert_with(Default::default)
    }
    pub(crate) fn boundary(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.boundary)
    }
}

/// Longest chain followed (cycles and absurd depths are cut).
pub(crate) const MAX_DEPTH: usize = 64;

impl Engine {
    // ------------------------------------------------------------------------------------
    // Lineage helpers.

    /// Chain of nodes collecting evidence of `p`: p (unless boundary), then announced,
    /// non-boundary ancestors. With `stop_at_convicted`, ends at (including) the first
    /// convicted node.
    pub(crate) fn chain_inner(&self, p: ProcId, stop_at_convicted: bool) -> Vec<ProcId> {
        let mut v = Vec::with_capacity(4);
        let node = self.procs.get(&p);
        if node.is_some_and(|n| n.boundary()) {
            return v;
        }
        v.push(p);
        let mut cur = node;
        while let Some(n) = cur {
            if stop_at_convicted && n.convicted {
                break;
            }
            let Some(pp) = n.info.as_ref().and_then(|i| i.parent) else {
                break;
            };
            let Some(pn) = self.procs.get(&pp) else { break };
            if pn.info.is_none() || pn.boundary() || v.contains(&pp) || v.len() >= MAX_DEPTH {
                break;
            }
            v.push(pp);
            cur = Some(pn);
        }
        v
    }

    pub(crate) fn chain(&self, p: ProcId) -> Vec<ProcId> {
        self.chain_inner(p, true)
    }

    /// The chain starting at `from` (which must be an evidence node) upward.
    pub(crate) fn chain_from(&self, from: ProcId) -> Vec<ProcId> {
        self.chain(from)
    }

    pub(crate) fn node(&mut self, p: ProcId) -> &mut ProcNode {
        self.procs.entry(p).or_insert_with(|| {
            Box::new(ProcNode {
                alive: true,
                ..Default::default()
            })
        })
    }

    pub(crate) fn ev(&mut self, p: ProcId) -> &mut Evidence {
        let (now, window, fw) = (self.now, self.cfg.window_ns, self.cfg.fanout_window_ns);
        let e = self.node(p).ev();
        e.expire(now, window);
        e.expire_connects(now, fw);
        e
    }

    pub(crate) fn chain_convicted(&self, chain: &[ProcId]) -> Option<ProcId> {
        let last = *chain.last()?;
        self.procs
            .get(&last)
            .is_some_and(|n| n.convicted)
            .then_some(last)
    }

    // ------------------------------------------------------------------------------------
    // Housekeeping: forget dead processes.

    pub(crate) fn housekeeping(&mut self) {
        let mut budget = 8;
        while budget > 0 {
            let Some(&(t, p)) = self.dead.front() else {
                break;
            };
            let over = self.dead.len() > self.cfg.max_dead;
            if !over && self.now.saturating_sub(t) < self.cfg.dead_ttl_ns {
                break;
            }
            budget -= 1;
            self.dead.pop_front();
            self.try_forget(p, over);
        }
    }

    pub(crate) fn try_forget(&mut self, p: ProcId, force: bool) {
        let (now, window) = (self.now, self.cfg.window_ns);
        let Some(n) = self.procs.get_mut(&p) else {
            return;
        };
        if n.alive || n.convicted {
            return;
        }
        let fw = self.cfg.fanout_window_ns;
        if let Some(e) = n.ev.as_mut() {
            e.expire(now, window);
            e.expire_connects(now, fw);
        }
        let has_ev = n.ev.as_ref().is_some_and(|e| e.matters_after_exit());
        if n.nchildren > 0 || (has_ev && !force) {
            if has_ev && n.nchildren == 0 {
                self.dead.push_back((now, p));
            }
            return;
        }
        let parent = n.info.as_ref().and_then(|i| i.parent);
        self.procs.remove(&p);
        self.files.forget_process(p);
        self.stats.processes_forgotten += 1;
        if let Some(pp) = parent {
            self.unlink_child(pp);
            if let Some(pn) = self.procs.get_mut(&pp) {
                if pn.nchildren == 0 && (!pn.alive || pn.info.is_none()) {
                    if pn.info.is_none() {
                        self.procs.remove(&pp);
                        self.files.forget_process(pp);
                    } else {
                        self.dead.push_back((pn.exit_time, pp));
                    }
                }
            }
        }
    }

    /// One child of `parent` went away (forgotten or re-parented): update the live count
    /// and compact the list when it is mostly stale.
    pub(crate) fn unlink_child(&mut self, parent: ProcId) {
        let Some(pn) = self.procs.get_mut(&parent) else {
            return;
        };
        pn.nchildren = pn.nchildren.saturating_sub(1);
        if pn.children.len() <= 2 * pn.nchildren as usize + 8 {
            return;
        }
        let mut kids = std::mem::take(&mut pn.children);
        kids.retain(|c| {
            self.procs
                .get(c)
                .and_then(|n| n.info.as_ref())
                .is_some_and(|i| i.parent == Some(parent))
        });
        kids.dedup();
        if let Some(pn) = self.procs.get_mut(&parent) {
            pn.nchildren = kids.len() as u32;
            pn.children = kids;
        }
    }

    // ------------------------------------------------------------------------------------
    // Process events.

    pub(crate) fn on_process(&mut self, info: &ProcInfo) {
        let id = info.id;
        let old_parent = self
            .procs
            .get(&id)
            .and_then(|n| n.info.as_ref())
            .and_then(|i| i.parent);
        let node = self.node(id);
        let relink = node.info.is_none() || old_parent != info.parent;
        node.info = Some(info.clone());
        node.alive = true;
        if relink {
            if let Some(op) = old_parent.filter(|op| Some(*op) != info.parent) {
                self.unlink_child(op);
            }
            if let Some(pp) = info.parent.filter(|pp| *pp != id) {
                let pn = self.node(pp);
                pn.children.push(id);
                pn.nchildren += 1;
            }
        }
    }

    pub(crate) fn on_exit(&mut self, p: ProcId) {
        let now = self.now;
        if let Some(n) = self.procs.get_mut(&p) {
            if n.alive {
                n.alive = false;
                n.exit_time = now;
                n.children.shrink_to_fit();
                if let Some(e) = n.ev.as_mut() {
                    e.shrink();
                }
                self.dead.push_back((now, p));
            }
        }
    }
}
