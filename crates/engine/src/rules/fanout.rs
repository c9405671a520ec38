//! `smb-fanout`: worm-like spread. A lineage node whose subtree connected to TCP 445/139
//! on at least [`crate::Config::fanout_threshold`] distinct addresses within
//! [`crate::Config::fanout_window_ns`] crosses (an immediate verdict, like a decoy). Ports
//! other than 445/139 are ignored; repeated connections and other ports to one address
//! count once. When the root is convicted its addresses are subtracted from its ancestors.

use crate::engine::Engine;
use crate::event::ProcId;
use crate::hash::path_hash;
use crate::verdict::Verdict;

/// Distinct addresses remembered per lineage node for the fan-out rule.
pub(crate) const MAX_CONNECTS: usize = 1024;
/// TCP ports of SMB (direct-hosted and NetBIOS session service).
pub(crate) const SMB_PORTS: [u16; 2] = [445, 139];

/// Hash of a peer address, the same for an IPv4 address and its IPv4-mapped IPv6 form, and
/// for any letter case and surrounding brackets / whitespace.
pub(crate) fn addr_hash(addr: &str) -> u64 {
    let a = addr.trim().trim_start_matches('[').trim_end_matches(']');
    let lower = a.to_ascii_lowercase();
    let a = lower.strip_prefix("::ffff:").unwrap_or(&lower);
    path_hash(a)
}

impl Engine {
    /// SMB fan-out: `p` connected to `addr:port`. Counts distinct addresses (not ports, not
    /// repeated connections) on 445/139 per lineage node within the fan-out window.
    pub(crate) fn on_connect(&mut self, p: ProcId, addr: &str, port: u16) -> Option<Verdict> {
        let threshold = self.cfg.fanout_threshold;
        if threshold == 0 || !SMB_PORTS.contains(&port) {
            return None;
        }
        let chain = self.chain(p);
        if chain.is_empty() || self.chain_convicted(&chain).is_some() {
            return None;
        }
        let h = addr_hash(addr);
        let now = self.now;
        // Enough to decide, bounded whatever the threshold.
        let cap = threshold.saturating_mul(2).clamp(16, MAX_CONNECTS);
        for n in &chain {
            let e = self.ev(*n);
            if let Some(i) = e.connects.iter().position(|(a, _)| *a == h) {
                e.connects.remove(i);
            } else if e.connects.len() >= cap {
                e.connects.pop_front();
            }
            e.connects.push_back((h, now));
        }
        self.evaluate(&chain, p, None)
    }
}
