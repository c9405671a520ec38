//! The engine: state, event dispatch, the public queries, the file table helpers and the
//! event handlers. The rules live in `rules/`, conviction in [`crate::verdict`],
//! the process table in `lineage`.
//!
//! Scoring of process lineages: the detection rules of ward.
//!
//! # What is judged
//!
//! ward judges **what a group of related processes does to files that existed before
//! they touched them**. Creating, reading, copying, compressing or deleting files is
//! normal; turning many existing readable files into unreadable ciphertext is not.
//!
//! For every file the engine keeps a compact [`Profile`] of its content (size, format,
//! randomness of a few sampled blocks — never the bytes). When process P *opens* a file,
//! the content seen at that moment becomes P's **baseline** for the file (kept until P
//! closes it after writing, so a process re-opening a file it is writing keeps the original
//! baseline). When P *closes the file after writing*, the new content is compared with the
//! baseline. A file is **pre-existing** for P unless P created it (a `Create` event by P, or
//! a first sighting right after P's `Create` of that path); files created by other
//! processes are pre-existing. Empty files hold no data and are never "damaged".
//!
//! A content is **encrypted-looking** (see [`Profile::encrypted_looking`](crate::Profile::encrypted_looking)) when it is an
//! explicitly encrypted container (openssl `Salted__`, OpenPGP, age, encrypted zip), or
//! when it has no valid known format and its head is random or base64/hex "armoured"
//! random data, or when it is text that is in fact armoured random data. Valid gzip,
//! zstd, xz, zip, PNG, DICOM, SQLite... are *not* encryption, however random their payload.
//!
//!
//! # Bounded memory
//!
//! At most [`Config::max_files`](crate::Config::max_files) files are tracked (default 100 000); files not touched
//! lately are evicted first (CLOCK order, an approximation of least recently touched),
//! except files damaged or decoys. A tracked file costs a fixed-size 32-byte record (no heap
//! allocation) plus about 10 bytes of index slots, so about 42 bytes (42 MiB for a million
//! files, 4.2 MiB at the default): the record holds the file key, a 64-bit hash of its path
//! (lookups by path compare hashes, not strings), the 32-bit id of its content profile, its
//! one holder with its baseline (the ids of 2 to 4 holders are in a pooled chunk of 16 or 32
//! bytes instead) and its flags. Profiles (each with the hash of a sample it was computed
//! from) and process ids are interned with reference counts, so a content
//! shared by a file and its holders' baselines (the common case) or by several files is
//! stored once (about 90 bytes per distinct content, [`PROFILE_BYTES`]). Only files created by a process keep
//! their creator and full path (for [`Verdict::files_created`](crate::Verdict::files_created)), at about 100 bytes more each, while that process is remembered (a forgotten process's files become pre-existing to everyone, and its holds stop counting). An evicted file loses nothing that matters for long: its
//! baseline is sampled again at its next open. Exited processes are forgotten once they
//! have no live children and no evidence, after [`Config::dead_ttl_ns`](crate::Config::dead_ttl_ns) (or earlier when
//! more than [`Config::max_dead`](crate::Config::max_dead) exited processes are retained).
//!
//! # Unchanged content is not profiled again
//!
//! Most opens are of files whose content did not change since the last sample (`grep -r`,
//! backups, `cp -a` reading the same files again). A sample whose 64-bit hash (all sampled
//! bytes, the size and the block offsets; `stats::sample_hash`) equals the
//! one the file's stored profile was computed from reuses that profile: it is the profile
//! [`Profile::of`](crate::Profile::of) would compute again, unless the hashes collide. The
//! hash is not cryptographic. A collision is astronomically unlikely for data nobody crafts
//! (about 2^-64 per changed sample); to exploit one, an attacker would have to produce
//! ciphertext whose sample hashes to the value of the victim's *old* plain content, which
//! it would have to read first and then search a 64-bit space for, per file — an encryptor
//! that did so would be slower than one that is caught. Changed content (any byte of the
//! sampled blocks, or the size) is profiled afresh.
//!
//! # Known limits
//!
//! Files smaller than 64 bytes cannot be judged random. Only the sampled blocks are seen
//! (the head, a middle block and the last 4 KiB): an encryptor that keeps the head intact
//! and misses both other blocks (a stride that avoids them) is only caught through the
//! blocks it wrote ([`Op::Written`], where the sensor has pre-content events; not over
//! data that was random already, such as deflated zip members), the format's end
//! structure (zip, PDF, PNG), the funnel, decoy and naming rules. bzip2 and
//! the LZMA chunks of xz are checked structurally, not decoded; raw deflate after an
//! arbitrary header is recognised only at DICOM pixel data. One single-byte-XOR'd text is
//! "substituted text" only when its four most frequent byte values all changed. A single
//! container written from many files and followed by deletes is not damage (a backup and
//! its clean-up); the second such cycle in one lineage is. An encryptor that reads all its
//! victims before writing any output gets funnel credit only once its outputs reach half
//! of its reads (in-place overwrites are judged immediately regardless). A ransomware
//! writing a plain decoy output named after each victim evades the funnel. `Modify`
//! samples of a file whose format does not validate yet are left to the close.

pub use crate::config::Config;
pub use crate::verdict::{Indicator, Verdict};

use crate::event::{Event, FileKey, Op, ProcId, ProcInfo, Sample};
use crate::files::{FileState, Files, Hold, MAX_HOLDS};
use crate::hash::{path_hash, FxHasher, Map};
use crate::lineage::{ProcNode, MAX_DEPTH};
use crate::naming::{appended_unknown_ext, file_name, renamed_to_unknown_ext};
use crate::profile::Profile;
use crate::rules::judge_change;
use crate::rules::note::{NOTE_MAX, NOTE_MIN};
use crate::rules::wiped::holds_data;
use crate::sniff::Kind;
use crate::stats::{hash64, sample_hash, MIN_SAMPLE};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasherDefault;

/// Counters for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineStats {
    /// Events observed.
    pub events: u64,
    /// Files tracked now.
    pub files_tracked: usize,
    /// Processes tracked now (live, and exited ones not yet forgotten).
    pub processes_tracked: usize,
    /// Verdicts returned.
    pub verdicts: u64,
    /// Files evicted from the table (least recently touched first).
    pub files_evicted: u64,
    /// Exited processes forgotten.
    pub processes_forgotten: u64,
    /// Content samples profiled (open, close-after-write, modify).
    pub samples_profiled: u64,
    /// ... of which the file's stored profile was reused (same sample hash: unchanged).
    pub profiles_reused: u64,
    /// ... of which the sensor did not even read the sample (file unchanged since).
    pub samples_unread: u64,
    /// Bytes of the samples profiled anew (not reused): what content analysis read.
    pub bytes_analysed: u64,
    /// Distinct content profiles stored now (shared by the files and baselines that have
    /// them; each costs about [`PROFILE_BYTES`]).
    pub contents_tracked: usize,
}

/// Approximate memory of one distinct stored content profile (the profile, its reference
/// count and sample hash, its index slot).
pub const PROFILE_BYTES: usize = std::mem::size_of::<Profile>() + 4 + 8 + 5;

const MAX_TOMBS: usize = 64;
/// A close-after-write reported after the delete of its file is matched with the deleted
/// file's state for this long.
const TOMB_TTL_NS: u64 = 10 * 1_000_000_000;

/// The engine. Feed it events in order with [`Engine::observe`](crate::Engine::observe).
pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) decoys: HashSet<Box<str>, BuildHasherDefault<DefaultHasher>>,
    pub(crate) procs: Map<ProcId, Box<ProcNode>>,
    /// Tracked files (with the path hash → file index and the LRU order).
    pub(crate) files: Files,
    /// `Create` events without a file key: path hash → creator.
    pub(crate) pending_creates: Map<u64, ProcId>,
    /// Blocks a writer flipped from plain to ciphertext-like ([`Op::Written`]), judged at
    /// its next sample of the file (close-write or modify): (writer, file) → indicators.
    pub(crate) written: Map<(ProcId, FileKey), u16>,
    pub(crate) dead: VecDeque<(u64, ProcId)>,
    /// Recently deleted files that a process still had open (delete time, state): the
    /// sensor may report their close-after-write after the delete.
    pub(crate) tombs: VecDeque<(u64, FileKey, FileState)>,
    pub(crate) seq: u64,
    pub(crate) now: u64,
    pub(crate) stats: EngineStats,
    /// Damage by program identity for lineages under a boundary parent (slow attackers
    /// restarted by cron or systemd; see `rules/restarts.rs`).
    pub(crate) groups: Map<u64, VecDeque<(std::sync::Arc<crate::evidence::DamageRec>, ProcId)>>,
}

impl Engine {
    /// An engine with the given tunables and no state.
    pub fn new(cfg: Config) -> Self {
        let decoys = cfg.decoys.iter().map(|d| d.as_str().into()).collect();
        let files = Files::with_capacity(cfg.max_files);
        Engine {
            cfg,
            decoys,
            procs: Map::default(),
            files,
            pending_creates: Map::default(),
            written: Map::default(),
            dead: VecDeque::new(),
            tombs: VecDeque::new(),
            seq: 0,
            now: 0,
            stats: EngineStats::default(),
            groups: Map::default(),
        }
    }

    /// The tunables in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Feed one event; returns a verdict when this event makes a lineage cross.
    pub fn observe(&mut self, ev: &Event) -> Option<Verdict> {
        self.stats.events += 1;
        self.seq += 1;
        self.now = ev.time;
        self.housekeeping();
        let p = ev.proc;
        let v = match &ev.op {
            Op::Process(info) => {
                self.on_process(info);
                None
            }
            Op::Exit => {
                self.on_exit(p);
                None
            }
            Op::Open {
                file, path, sample, ..
            } => self.on_open(p, *file, path, sample),
            Op::CloseWrite { file, path, sample } => self.on_close_write(p, *file, path, sample),
            Op::Modify { file, path, sample } => self.on_modify(p, *file, path, sample),
            Op::Written { file, blocks, .. } => {
                self.on_written(p, *file, blocks);
                None
            }
            Op::Create { path, file } => {
                self.on_create(p, path, *file);
                None
            }
            Op::Delete { path, file } => self.on_delete(p, path, *file),
            Op::Rename { from, to, file } => self.on_rename(p, from, to, *file),
            Op::Connect { addr, port } => self.on_connect(p, addr, *port),
        };
        if v.is_some() {
            self.stats.verdicts += 1;
        }
        v
    }

    /// Is `p` or any of its ancestors a convicted root? (The sensor denies its opens.)
    pub fn is_convicted(&self, p: ProcId) -> bool {
        let mut cur = p;
        for _ in 0..MAX_DEPTH {
            let Some(n) = self.procs.get(&cur) else {
                return false;
            };
            if n.convicted {
                return true;
            }
            match n.info.as_ref().and_then(|i| i.parent) {
                Some(pp) if pp != cur => cur = pp,
                _ => return false,
            }
        }
        false
    }

    /// Does `p`'s lineage (it and its ancestors up to the boundary) show any evidence at
    /// all: damage, indicators, encrypted outputs (its own or, for an ancestor, of any
    /// member of its subtree) or deletes awaiting one, a fan-out half-way to the threshold,
    /// or a conviction?
    /// A suspicious lineage loses the trust that would spare it preservation.
    pub fn suspicious(&self, p: ProcId) -> bool {
        if self.is_convicted(p) {
            return true;
        }
        self.chain_inner(p, false).iter().any(|q| {
            self.procs
                .get(q)
                .and_then(|n| n.ev.as_ref())
                .is_some_and(|e| {
                    !e.damage.is_empty()
                        || !e.marks.is_empty()
                        || e.enc_outputs > 0
                        || e.sub_outputs > 0
                        || !e.pending.is_empty()
                        || !e.post_deletes.is_empty()
                        || (self.cfg.fanout_threshold > 0
                            && 2 * e.connects.len() >= self.cfg.fanout_threshold)
                })
        })
    }

    /// What the engine knows about a process.
    pub fn process(&self, p: ProcId) -> Option<&ProcInfo> {
        self.procs.get(&p).and_then(|n| n.info.as_ref())
    }

    /// `p` and its ancestors up to (excluding) the first boundary or unannounced ancestor.
    /// Empty if `p` itself is a boundary process.
    pub fn lineage(&self, p: ProcId) -> Vec<ProcId> {
        self.chain_inner(p, false)
    }

    /// Pre-existing files damaged by the subtree of convicted `root` after its verdict.
    pub fn damaged_since_verdict(&self, root: ProcId) -> &[String] {
        self.procs
            .get(&root)
            .and_then(|n| n.ev.as_ref())
            .map(|e| e.after.as_slice())
            .unwrap_or(&[])
    }

    /// Current paths of tracked files created by `root` or its known descendants, in
    /// creation order. O(tracked files): meant for after a verdict.
    pub fn files_created_by(&self, root: ProcId) -> Vec<String> {
        let members: HashSet<ProcId, BuildHasherDefault<FxHasher>> =
            self.members(root).into_iter().collect();
        let mut v: Vec<(u64, &str)> = self
            .files
            .created()
            .filter(|(c, _, _)| members.contains(c))
            .map(|(_, seq, path)| (seq, path))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, p)| p.to_string()).collect()
    }

    /// `root` and all its known descendants (breadth first).
    pub fn members(&self, root: ProcId) -> Vec<ProcId> {
        let mut out = vec![root];
        let mut seen: HashSet<ProcId, BuildHasherDefault<FxHasher>> = HashSet::default();
        seen.insert(root);
        let mut i = 0;
        while i < out.len() {
            let me = out[i];
            if let Some(n) = self.procs.get(&me) {
                for c in &n.children {
                    let is_child = self
                        .procs
                        .get(c)
                        .and_then(|cn| cn.info.as_ref())
                        .is_some_and(|ci| ci.parent == Some(me));
                    if is_child && seen.insert(*c) {
                        out.push(*c);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            files_tracked: self.files.len(),
            contents_tracked: self.files.contents(),
            processes_tracked: self.procs.len(),
            ..self.stats
        }
    }
}

impl Engine {
    pub(crate) fn touch(&mut self, k: FileKey) {
        self.seq += 1;
        self.files.touch(k);
    }

    pub(crate) fn evict(&mut self) {
        let mut budget = 64;
        while self.files.len() > self.cfg.max_files && budget > 0 {
            budget -= 1;
            let Some(k) = self.files.victim() else {
                break;
            };
            let involved = self.files.damaged(k)
                || self.files.decoy(k)
                || self.files.holders(k).any(|p| {
                    self.procs
                        .get(&p)
                        .and_then(|n| n.ev.as_ref())
                        .is_some_and(|e| !e.damage.is_empty() || e.enc_outputs > 0)
                });
            if involved {
                self.seq += 1;
                self.files.touch(k);
                continue;
            }
            self.remove_file(k);
            self.stats.files_evicted += 1;
        }
    }

    pub(crate) fn remove_file(&mut self, k: FileKey) -> Option<FileState> {
        self.files.remove(k)
    }

    pub(crate) fn is_decoy(&self, path: &str) -> bool {
        !self.decoys.is_empty() && self.decoys.contains(path)
    }

    /// Look up a file by path (by its 64-bit path hash).
    pub(crate) fn by_path(&self, path: &str) -> Option<FileKey> {
        self.files.by_path(path_hash(path))
    }

    /// Make sure `k` is tracked at `path`, keeping the path index current.
    pub(crate) fn file_entry(&mut self, k: FileKey, path: &str) {
        let h = path_hash(path);
        if !self.files.contains(k) {
            let creator = self.pending_creates.remove(&h);
            self.seq += 1;
            let decoy = self.is_decoy(path);
            let st = FileState::new(h, decoy);
            self.files.insert(k, &st, true);
            if creator.is_some() {
                self.files.set_creator(k, creator, self.seq, path);
            }
            self.touch(k);
            self.evict();
        } else if self.files.path_hash(k) != Some(h) {
            if let Some(other) = self.files.set_path(k, h, path) {
                // Another file was known under this path: it is gone (replaced).
                if other != k {
                    self.files.remove(other);
                }
            }
            if self.is_decoy(path) {
                self.files.set_decoy(k);
            }
        }
        self.touch(k);
        if !self.files.contains(k) {
            // Evicted at once (tiny `max_files`): track it afresh.
            self.files.insert(k, &FileState::new(h, false), false);
        }
    }

    /// Set the creator of `k` (at `path`).
    pub(crate) fn set_creator(&mut self, k: FileKey, c: Option<ProcId>, path: &str) {
        self.files.set_creator(k, c, self.seq, path);
    }

    // ------------------------------------------------------------------------------------
    // Event handlers.

    /// The profile of `sample` of file `k`, with the sample's hash: the file's stored
    /// profile when it was computed from the same sample (unchanged content), else computed.
    pub(crate) fn profile(&mut self, k: FileKey, sample: &Sample) -> (Profile, u64) {
        self.stats.samples_profiled += 1;
        if sample.unchanged {
            if let Some(ph) = self.files.sample_profile(k, sample.size) {
                self.stats.profiles_reused += 1;
                self.stats.samples_unread += 1;
                return ph;
            }
            // The profile is gone since the agent asked (cannot happen live: both run on
            // one thread); an unread sample profiles as unknown content.
        }
        let h = sample_hash(sample);
        if let Some(p) = self.files.profile_of_sample(k, h, sample.size) {
            // Test and debug builds check that the reused profile is the one computed anew.
            debug_assert!(p == Profile::of(sample), "sample hash collision");
            self.stats.profiles_reused += 1;
            return (p, h);
        }
        self.stats.bytes_analysed += sample.bytes_read();
        (Profile::of(sample), h)
    }

    /// Whether the engine still holds a profile of file `k` computed from a sample of
    /// `size` bytes: then an open of the unchanged file needs no new sample
    /// ([`Sample::unchanged`]).
    pub fn has_sample_profile(&self, k: FileKey, size: u64) -> bool {
        self.files.sample_profile(k, size).is_some()
    }

    pub(crate) fn on_create(&mut self, p: ProcId, path: &str, file: Option<FileKey>) {
        let h = path_hash(path);
        match file {
            Some(k) => {
                // A new inode (a previous state under this key is stale: inode reuse).
                if let Some(old) = self.by_path(path) {
                    if old != k {
                        self.remove_file(old);
                    }
                }
                self.remove_file(k);
                self.tombs.retain(|(_, tk, _)| *tk != k);
                self.pending_creates.remove(&h);
                self.file_entry(k, path);
                self.set_creator(k, Some(p), path);
            }
            None => {
                if self.pending_creates.len() > 65_536 {
                    self.pending_creates.clear();
                }
                self.pending_creates.insert(h, p);
            }
        }
    }

    pub(crate) fn on_open(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        sample: &Sample,
    ) -> Option<Verdict> {
        let (prof, sh) = self.profile(k, sample);
        let known = self.files.contains(k);
        let creator_hint = self.pending_creates.get(&path_hash(path)).copied();
        self.file_entry(k, path);
        let mut creator = self.files.creator(k);
        if !known && creator.is_none() && creator_hint.is_some() {
            creator = creator_hint;
            self.set_creator(k, creator, path);
        }
        let decoy = self.files.decoy(k);
        let own = creator == Some(p);
        let mut new_hold = false;
        let mut holds = self.files.holds(k);
        match holds.as_mut_slice().iter_mut().find(|h| h.proc == p) {
            Some(h) if h.baseline.is_some() => {}
            Some(h) => {
                h.baseline = Some(prof);
                new_hold = true;
            }
            None => {
                if holds.len() >= MAX_HOLDS {
                    let i = holds.iter().position(|h| h.baseline.is_none()).unwrap_or(0);
                    holds.remove(i);
                }
                holds.push(Hold {
                    proc: p,
                    baseline: Some(prof),
                });
                new_hold = true;
            }
        }
        self.files.set_holds(k, &holds);
        self.files.set_profile(k, Some(prof), sh);
        // Reading encrypted-looking data (whoever created it) offsets encrypted outputs in
        // the funnel: copying ciphertext is not encrypting.
        // Files too small to judge (locks, pid files, empty keyrings) and files the
        // process wrote itself are not inputs.
        if new_hold && prof.size >= MIN_SAMPLE as u64 && !own {
            let now = self.now;
            let e = self.ev(p);
            if prof.encrypted_looking() {
                if e.random_fps.len() >= 64 {
                    e.random_fps.pop_front();
                }
                e.random_fps.push_back(prof.fingerprint());
                e.random_reads = e.random_reads.saturating_add(1);
            } else {
                e.plain_reads = e.plain_reads.saturating_add(1);
                // The lineage reads too (pipelines: one member reads, another encrypts).
                for n in self.chain(p) {
                    let e = self.ev(n);
                    e.sub_reads = e.sub_reads.saturating_add(1);
                    e.sub_time = now;
                    e.sub_read_time = now;
                }
                self.ev(p).funnel_time = now;
                return self.open_tail(p, decoy);
            }
            e.funnel_time = now;
        }
        self.open_tail(p, decoy)
    }

    fn open_tail(&mut self, p: ProcId, decoy: bool) -> Option<Verdict> {
        if decoy {
            self.mark_chain(p, Indicator::DecoyAccessed);
        }
        None
    }

    pub(crate) fn on_close_write(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        sample: &Sample,
    ) -> Option<Verdict> {
        let (newp, sh) = self.profile(k, sample);
        let known = self.files.contains(k);
        let creator_hint = self.pending_creates.get(&path_hash(path)).copied();
        // Deleted while open (`open; unlink; write; close`): judge against the state the
        // file had when it was deleted, then forget it again.
        let tomb = if known || creator_hint.is_some() {
            None
        } else {
            self.untomb(k, path)
        };
        if let Some(t) = tomb {
            let v = self.judge_close(p, k, path, sample, (&newp, sh), Some(t));
            self.remove_file(k);
            return v;
        }
        self.judge_close(p, k, path, sample, (&newp, sh), None)
    }

    /// What `p` saw of `k` before writing it: its own hold's baseline, else the file's
    /// recorded profile.
    pub(crate) fn writer_baseline(&self, p: ProcId, k: FileKey) -> Option<Profile> {
        let held = self
            .files
            .holds(k)
            .iter()
            .find(|h| h.proc == p)
            .and_then(|h| h.baseline);
        held.or_else(|| self.files.profile(k))
    }

    pub(crate) fn untomb(&mut self, k: FileKey, path: &str) -> Option<FileState> {
        let now = self.now;
        while self
            .tombs
            .front()
            .is_some_and(|(t, _, _)| now.saturating_sub(*t) > TOMB_TTL_NS)
        {
            self.tombs.pop_front();
        }
        let i = self
            .tombs
            .iter()
            .position(|(_, tk, f)| *tk == k && f.path_hash == path_hash(path))?;
        self.tombs.remove(i).map(|(_, _, f)| f)
    }

    pub(crate) fn judge_close(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        sample: &Sample,
        (newp, sh): (&Profile, u64),
        restored: Option<FileState>,
    ) -> Option<Verdict> {
        let newp = *newp;
        let known = restored.is_some() || self.files.contains(k);
        let creator_hint = self.pending_creates.get(&path_hash(path)).copied();
        if let Some(st) = restored {
            self.files.insert(k, &st, true);
        }
        self.file_entry(k, path);
        let mut creator = self.files.creator(k);
        if !known && creator.is_none() && creator_hint.is_some() {
            creator = creator_hint;
            self.set_creator(k, creator, path);
        }
        let mut holds = self.files.holds(k);
        let held = holds
            .as_mut_slice()
            .iter_mut()
            .find(|h| h.proc == p)
            .and_then(|h| h.baseline.take());
        if held.is_some() {
            self.files.set_holds(k, &holds);
        }
        let pre_existing_for = creator != Some(p);
        let baseline = match held {
            Some(b) => Some(b),
            None if pre_existing_for => self.files.profile(k),
            None => None,
        };
        let pre_existing = pre_existing_for && baseline.is_some_and(|b| !b.is_empty());
        let decoy = self.files.decoy(k);
        self.files.set_profile(k, Some(newp), sh);
        if let Some(v) = self.written_flips(p, k, path, &newp) {
            return Some(v);
        }

        if decoy && newp.encrypted_looking() {
            return self.decoy_verdict(p, k, path);
        }
        if pre_existing {
            let base = baseline.unwrap_or(newp);
            if let Some(bits) = judge_change(&base, &newp) {
                return self.damage(p, k, path, bits);
            }
            if newp.wiped() && holds_data(&base) {
                return self.wipe(p, k, path);
            }
            None
        } else {
            let mut v = None;
            let seen = self.files.output_seen(k);
            if seen {
                self.files.set_output_seen(k, false);
            }
            if newp.encrypted_looking() {
                if !seen {
                    v = self.encrypted_output(p, path, &newp);
                }
            } else if !newp.is_empty() {
                let e = self.ev(p);
                e.explain(newp.fingerprint());
                // `dir/a.b.gz` explains deletes of `dir/a.b` and `dir/a`.
                let name_start = path.len() - file_name(path).len();
                let mut stems = Vec::new();
                for (i, c) in path.char_indices().skip(name_start + 1) {
                    if c == '.' {
                        let h = path_hash(&path[..i]);
                        e.explain(h);
                        stems.push(h);
                    }
                }
                // ... also when the delete was seen first (the sensor reads its groups in
                // turn: `gzip`'s unlink of the original often arrives before the
                // close-write of its `.gz`): it no longer waits for an encrypted output.
                if !stems.is_empty() {
                    let explained =
                        |pd: &crate::evidence::Pending| !stems.contains(&path_hash(&pd.path));
                    e.pending.retain(explained);
                    for n in self.chain(p) {
                        self.ev(n).post_deletes.retain(explained);
                    }
                }
            }
            if v.is_none() && (NOTE_MIN..=NOTE_MAX).contains(&newp.size) {
                let head = sample.head();
                if head.len() as u64 == newp.size {
                    v = self.note(p, path, hash64(head) ^ newp.size);
                }
            }
            v
        }
    }

    /// A sample of a file `p` still holds open for writing. Pre-existing files are judged
    /// against `p`'s baseline like at close (damage counts once per file), but the baseline
    /// is kept, the file's recorded content is not replaced, and content that is merely
    /// unfinished is not judged: the baseline's known format that does not validate yet (a zip
    /// without its central directory yet); wipes are left to the close (preallocation). A new file of `p` that is
    /// encrypted-looking counts as one encrypted output (not again at its close).
    pub(crate) fn on_modify(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        sample: &Sample,
    ) -> Option<Verdict> {
        // No baseline for a file never seen (opened before ward started): nothing to judge.
        if !self.files.contains(k) {
            return None;
        }
        let (newp, _) = self.profile(k, sample);
        self.touch(k);
        let creator = self.files.creator(k);
        if creator == Some(p) {
            if newp.encrypted_looking() && !self.files.output_seen(k) {
                self.files.set_output_seen(k, true);
                return self.encrypted_output(p, path, &newp);
            }
            return None;
        }
        let base = self.writer_baseline(p, k)?;
        if self.files.decoy(k) && newp.encrypted_looking() {
            return self.decoy_verdict(p, k, path);
        }
        let unfinished = newp.format.kind == base.format.kind
            && newp.format.kind != Kind::Unknown
            && !newp.format.valid;
        if base.is_empty() || unfinished {
            return None;
        }
        let bits = judge_change(&base, &newp)?;
        self.damage(p, k, path, bits)
    }

    pub(crate) fn on_delete(
        &mut self,
        p: ProcId,
        path: &str,
        file: Option<FileKey>,
    ) -> Option<Verdict> {
        self.pending_creates.remove(&path_hash(path));
        let k = match file {
            Some(k) if self.files.contains(k) => k,
            _ => self.by_path(path)?,
        };
        let f = self.remove_file(k)?;
        if f.decoy {
            self.mark_chain(p, Indicator::DecoyAccessed);
        }
        let v = self.funnel(p, k, path, &f);
        // Still open by a process that may be writing it: keep its state for a late
        // close-after-write.
        if f.holds.iter().any(|h| h.baseline.is_some()) {
            if self.tombs.len() >= MAX_TOMBS {
                self.tombs.pop_front();
            }
            self.tombs.push_back((self.now, k, f));
        }
        v
    }

    pub(crate) fn on_rename(
        &mut self,
        p: ProcId,
        from: &str,
        to: &str,
        file: Option<FileKey>,
    ) -> Option<Verdict> {
        let k = match file {
            Some(k) if self.files.contains(k) => Some(k),
            Some(k) => match self.by_path(from) {
                Some(b) => Some(b),
                None => {
                    // First sighting: a file that existed before ward saw it.
                    self.file_entry(k, from);
                    Some(k)
                }
            },
            None => self.by_path(from),
        };
        // The file previously at `to` is replaced.
        let replaced = self.by_path(to).filter(|g| Some(*g) != k);
        let src_prof = k.and_then(|k| self.files.profile(k));
        let src_decoy = k.is_some_and(|k| self.files.decoy(k)) || self.is_decoy(from);
        let mut verdict = None;

        if let Some(g) = replaced {
            if let Some(gs) = self.remove_file(g) {
                let enc = src_prof.is_some_and(|s| s.encrypted_looking());
                if (gs.decoy || self.is_decoy(to)) && enc {
                    return self.decoy_verdict(p, g, to);
                }
                if let (Some(old), Some(new)) = (gs.profile, src_prof) {
                    if gs.pre_existing_for(p) && !old.is_empty() {
                        if let Some(bits) = judge_change(&old, &new) {
                            verdict = self.damage(p, g, to, bits);
                        }
                    }
                }
            }
        }

        let Some(k) = k else {
            if let Some(c) = self.pending_creates.remove(&path_hash(from)) {
                self.pending_creates.insert(path_hash(to), c);
            }
            return verdict;
        };
        let unknown_ext = renamed_to_unknown_ext(from, to);
        if src_decoy && unknown_ext {
            return self.decoy_verdict(p, k, from);
        }
        if src_decoy {
            self.mark_chain(p, Indicator::DecoyAccessed);
        }
        let pre_existing = self.files.contains(k) && self.files.creator(k) != Some(p);
        if pre_existing && appended_unknown_ext(from, to) {
            if let Some(v) = self.mark_chain(p, Indicator::ExtensionAppended) {
                return Some(v);
            }
        }
        let fstate_snapshot = if pre_existing && unknown_ext {
            self.files.get(k)
        } else {
            None
        };
        self.file_entry(k, to);
        if let Some(tmp) = fstate_snapshot {
            if let Some(v) = self.funnel(p, k, from, &tmp) {
                return Some(v);
            }
        }
        verdict
    }
}
