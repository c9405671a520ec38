//! Indicators, verdicts and conviction.
//!
//! Evidence of process P counts for P and each ancestor up to, excluding, the first
//! *boundary* process (pid 1, sshd, cron, smbd's parent...; see [`ProcInfo::boundary`](crate::ProcInfo::boundary)).
//! Ancestors never announced by a `Process` event are not part of the lineage; a process
//! of unknown parentage is its own lineage root. A boundary process itself collects no
//! evidence and is never blamed.
//!
//! A node **crosses** when its lineage has, within [`Config::window_ns`](crate::Config::window_ns) (default 1 hour,
//! so slow attacks add up; older evidence is dropped):
//! * at least [`Config::damage_threshold`](crate::Config::damage_threshold) (default 3) distinct damaged files, or
//! * at least `damage_threshold - 1` damaged files plus `extension-appended` or
//!   `ransom-note`.
//!
//! The verdict is returned by the very event that makes a node cross. When several nodes
//! of the chain cross at once, the **deepest** one is blamed (the most concentrated
//! evidence: for a script forking one `openssl` per file, the script, not the login shell
//! above it). For a decoy verdict every node "crosses"; the blamed node is the deepest one
//! holding more than half of its parent's activity (encrypted outputs and damage), so a
//! fork-per-file child touching a decoy brings down the script that spawned it.
//!
//! After a verdict the root is **convicted**: no second verdict for it, its descendants,
//! or (from the same evidence) its ancestors: the root's damaged files are subtracted from
//! the ancestors and its subtree's evidence stops propagating upward. Files its subtree
//! damages afterwards are listed by [`Engine::damaged_since_verdict`](crate::Engine::damaged_since_verdict).
//!

use crate::engine::Engine;
use crate::event::{FileKey, ProcId};
use serde::{Deserialize, Serialize};

/// A named piece of evidence. Serialised in kebab-case (e.g. `content-encrypted`).
/// Declared in alphabetical order, so sorting by `Ord` sorts by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Indicator {
    /// New content is base64/hex-encoded random data.
    ArmouredCiphertext,
    /// A pre-existing file's content became encrypted-looking.
    ContentEncrypted,
    /// A pre-existing file was overwritten with one repeated byte value (zeros) while its
    /// lineage wrote encrypted output.
    ContentWiped,
    /// A decoy was read, copied, compressed or deleted (weak).
    DecoyAccessed,
    /// A decoy was encrypted or renamed to an unknown extension (verdict).
    DecoyTouched,
    /// New content is an explicit encrypted container (openssl, gpg, age, encrypted zip).
    EncryptedContainer,
    /// A file got an unknown extension appended (`a.docx` → `a.docx.locked`).
    ExtensionAppended,
    /// A valid known format became invalid / unrecognised.
    FormatBroken,
    /// Blocks went from not-random to random while the header was kept.
    PartialEncryption,
    /// Identical small files created in several directories.
    RansomNote,
    /// A read file was deleted while the reader wrote encrypted files.
    ReadWriteDelete,
    /// The lineage connected to TCP 445/139 on many distinct addresses in a short time
    /// (worm-like spread over SMB).
    SmbFanout,
    /// A write of the lineage was refused because no copy of the file could be made (full
    /// disk) after it had already damaged files: it is stopped and what it damaged
    /// restored, instead of being left running with its damage in place.
    WriteRefused,
}

impl Indicator {
    /// Every indicator, in declaration (alphabetical) order.
    pub const ALL: [Indicator; 13] = [
        Indicator::ArmouredCiphertext,
        Indicator::ContentEncrypted,
        Indicator::ContentWiped,
        Indicator::DecoyAccessed,
        Indicator::DecoyTouched,
        Indicator::EncryptedContainer,
        Indicator::ExtensionAppended,
        Indicator::FormatBroken,
        Indicator::PartialEncryption,
        Indicator::RansomNote,
        Indicator::ReadWriteDelete,
        Indicator::SmbFanout,
        Indicator::WriteRefused,
    ];

    /// The kebab-case name (`content-encrypted`, `smb-fanout`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Indicator::ArmouredCiphertext => "armoured-ciphertext",
            Indicator::ContentEncrypted => "content-encrypted",
            Indicator::ContentWiped => "content-wiped",
            Indicator::DecoyAccessed => "decoy-accessed",
            Indicator::DecoyTouched => "decoy-touched",
            Indicator::EncryptedContainer => "encrypted-container",
            Indicator::ExtensionAppended => "extension-appended",
            Indicator::FormatBroken => "format-broken",
            Indicator::PartialEncryption => "partial-encryption",
            Indicator::RansomNote => "ransom-note",
            Indicator::ReadWriteDelete => "read-write-delete",
            Indicator::SmbFanout => "smb-fanout",
            Indicator::WriteRefused => "write-refused",
        }
    }

    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }

    pub(crate) fn from_bits(bits: u16) -> impl Iterator<Item = Indicator> {
        Indicator::ALL
            .into_iter()
            .filter(move |i| bits & i.bit() != 0)
    }
}

impl std::fmt::Display for Indicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine's decision that a lineage is attacking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Root of the guilty lineage: contain it and all its descendants.
    pub root: ProcId,
    /// The process whose event crossed the threshold.
    pub culprit: ProcId,
    /// The root and all its known descendants.
    pub members: Vec<ProcId>,
    /// Damaged pre-existing files (paths at the time of damage), in damage order.
    pub files_damaged: Vec<String>,
    /// Files the lineage created that still exist (current paths), for quarantine.
    pub files_created: Vec<String>,
    /// Evidence, sorted and unique.
    pub indicators: Vec<Indicator>,
    /// Event time of the first damage counted (of the deciding event for a decoy verdict
    /// without other damage).
    pub first_damage: u64,
    /// Event time of the deciding event.
    pub time: u64,
    /// Number of damaged files counted.
    pub damage_count: usize,
    /// 10 per damaged file, 5 per extra indicator, 100 for a decoy.
    pub score: u32,
}

impl Engine {
    pub(crate) fn crossed(&self, n: ProcId) -> bool {
        let Some(e) = self.procs.get(&n).and_then(|n| n.ev.as_ref()) else {
            return false;
        };
        let t = self.cfg.damage_threshold.max(1);
        let d = e.damage.len();
        let fanout = self.cfg.fanout_threshold;
        (fanout > 0 && e.connects.len() >= fanout)
            || d >= t
            || (d >= (t - 1).max(1)
                && (e.has_mark(Indicator::ExtensionAppended) || e.has_mark(Indicator::RansomNote)))
            || (d >= 1 && e.has_mark(Indicator::WriteRefused))
    }

    /// Evaluate the nodes of `chain` (deepest first) and convict the deepest that crossed.
    pub(crate) fn evaluate(
        &mut self,
        chain: &[ProcId],
        culprit: ProcId,
        decoy: Option<ProcId>,
    ) -> Option<Verdict> {
        if self.chain_convicted(chain).is_some() {
            return None;
        }
        let root = match decoy {
            Some(r) => r,
            None => chain.iter().copied().find(|n| self.crossed(*n))?,
        };
        Some(self.convict(root, culprit, decoy.is_some()))
    }

    pub(crate) fn convict(&mut self, root: ProcId, culprit: ProcId, decoy: bool) -> Verdict {
        let now = self.now;
        let window = self.cfg.window_ns;
        let members = self.members(root);
        // The convicted lineage's damage no longer counts for its program identity.
        if let Some(top) = self.chain_inner(root, false).last().copied() {
            if let Some(key) = self.restart_key(top) {
                self.groups.remove(&key);
            }
        }
        let files_created = self.files_created_by(root);
        let fanout = self.cfg.fanout_threshold;
        let node = self.node(root);
        node.convicted = true;
        let e = node.ev();
        e.expire(now, window);
        let files_damaged: Vec<String> = e.damage.iter().map(|d| d.path.clone()).collect();
        let keys: Vec<FileKey> = e.damage.iter().map(|d| d.file).collect();
        // Files of the verdict are not "damaged since" it when they are written again (a
        // close after a judged `Modify`).
        for k in &keys {
            if !e.after_keys.contains(k) {
                e.after_keys.push(*k);
            }
        }
        let first_damage = e.damage.iter().map(|d| d.time).min().unwrap_or(now);
        let mut bits = 0u16;
        for d in &e.damage {
            bits |= d.indicators;
        }
        for (m, _) in &e.marks {
            bits |= m.bit();
        }
        if decoy {
            bits |= Indicator::DecoyTouched.bit();
        }
        if fanout > 0 && e.connects.len() >= fanout {
            bits |= Indicator::SmbFanout.bit();
        }
        let addrs: Vec<u64> = e.connects.iter().map(|(a, _)| *a).collect();
        let indicators: Vec<Indicator> = Indicator::from_bits(bits).collect();
        // Subtract the root's evidence from its ancestors.
        let above = self.chain_inner(root, false);
        for a in above.iter().skip(1) {
            if let Some(e) = self.procs.get_mut(a).and_then(|n| n.ev.as_mut()) {
                e.damage.retain(|d| !keys.contains(&d.file));
                e.connects.retain(|(h, _)| !addrs.contains(h));
            }
        }
        let damage_count = files_damaged.len();
        let extra = indicators
            .iter()
            .filter(|i| {
                matches!(
                    i,
                    Indicator::ExtensionAppended | Indicator::RansomNote | Indicator::DecoyAccessed
                )
            })
            .count() as u32;
        let score = damage_count as u32 * 10 + extra * 5 + if decoy { 100 } else { 0 };
        Verdict {
            root,
            culprit,
            members,
            files_damaged,
            files_created,
            indicators,
            first_damage,
            time: now,
            damage_count,
            score,
        }
    }
}
