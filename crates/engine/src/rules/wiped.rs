//! Rule (e), `content-wiped`: a pre-existing file overwritten with one repeated byte value
//! while the lineage writes encrypted output ("archive, encrypt the archive, zero the
//! originals").

use crate::engine::Engine;
use crate::event::{FileKey, ProcId};
use crate::evidence::Wipe;
use crate::profile::Profile;
use crate::stats::MIN_SAMPLE;
use crate::verdict::{Indicator, Verdict};

/// Wipes kept per node while no encrypted output is seen.
pub(crate) const MAX_WIPES: usize = 256;

/// Real data that a wipe destroys: judgeable size, not ciphertext, not already constant.
pub(crate) fn holds_data(base: &Profile) -> bool {
    base.size >= MIN_SAMPLE as u64 && !base.encrypted_looking() && !base.wiped()
}

impl Engine {
    /// Rule (e): `p` overwrote pre-existing data with one repeated byte value. Damage at
    /// the deepest node of p's chain whose subtree wrote an encrypted output within the
    /// window; kept pending on the chain otherwise.
    pub(crate) fn wipe(&mut self, p: ProcId, k: FileKey, path: &str) -> Option<Verdict> {
        let chain = self.chain(p);
        if chain.is_empty() {
            return None;
        }
        let (now, window) = (self.now, self.cfg.window_ns);
        let at = chain.iter().position(|n| {
            self.procs
                .get(n)
                .and_then(|x| x.ev.as_ref())
                .is_some_and(|e| e.enc_time > 0 && now.saturating_sub(e.enc_time) <= window)
        });
        if let Some(i) = at {
            let at = chain[i..].to_vec();
            return self.record_damage(&at, p, k, path, Indicator::ContentWiped.bit());
        }
        if self.chain_convicted(&chain).is_some() {
            return None;
        }
        for n in &chain {
            let e = self.ev(*n);
            if e.wipes.len() >= MAX_WIPES {
                e.wipes.pop_front();
            }
            if !e.wipes.iter().any(|w| w.file == k) {
                e.wipes.push_back(Wipe {
                    file: k,
                    path: path.to_string(),
                    time: now,
                });
            }
        }
        None
    }
}
