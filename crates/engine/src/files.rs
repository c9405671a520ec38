//! The engine's file table: fixed-size records in one slab, no per-file heap allocation.
//!
//! A tracked file costs one [`Rec`] (32 bytes) plus about 10 bytes of index slots (file key
//! and path hash → slot, open addressing at a load factor of 0.5..0.8). The record holds the
//! process holding the file open inline when there is one; the holds of a file with two
//! (three or four) holders live in a pooled 16-byte (32-byte) chunk instead, and the creator
//! of a file created by a process in a side table keyed by slot, paid for only by the files
//! that have them.
//! Content profiles and
//! process identities are interned with reference counts: a file and the processes holding
//! it refer to them by 32-bit ids, so identical contents (a file and its holders' baselines,
//! copies, empty files) are stored once. Paths are not kept, only their 64-bit hash, except
//! for files created by a process (kept for [`crate::Engine::files_created_by`]). Eviction
//! follows CLOCK (a "touched" bit per record and a hand sweeping the slab), an
//! approximation of least-recently-touched order that costs one bit instead of two list
//! links per file and makes a touch a single store.

use crate::event::{FileKey, ProcId};
use crate::profile::Profile;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

const NIL: u32 = u32::MAX;
pub(crate) const MAX_HOLDS: usize = 4;

const F_DAMAGED: u8 = 1;
const F_DECOY: u8 = 2;
/// An encrypted output of its creator was already counted from a `Modify` sample.
const F_OUTPUT_SEEN: u8 = 4;
/// The file has an entry in [`Files::created`] (a creator).
const F_CREATED: u8 = 8;
/// Touched since the eviction hand last passed it (the CLOCK "referenced" bit).
const F_REF: u8 = 16;
/// Referenced records the eviction hand clears in one call before it takes the record it
/// is at anyway: bounds the pause of a sweep over a table whose files were all touched.
const MAX_SWEEP: usize = 4096;
/// Slots whose holds are tidied per forgotten process (see [`Files::tidy`]).
const TIDY_PER_FORGET: usize = 64;

/// A process holding a file open, with the content it saw at open time (`None` once it
/// closed the file after writing).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hold {
    pub proc: ProcId,
    pub baseline: Option<Profile>,
}

/// Up to [`MAX_HOLDS`] holds, most recent last.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Holds {
    items: [Hold; MAX_HOLDS],
    n: u8,
}

impl Default for Holds {
    fn default() -> Self {
        Holds {
            items: [Hold {
                proc: ProcId { pid: 0, start: 0 },
                baseline: None,
            }; MAX_HOLDS],
            n: 0,
        }
    }
}

impl Holds {
    pub fn as_slice(&self) -> &[Hold] {
        &self.items[..self.n as usize]
    }
    pub fn as_mut_slice(&mut self) -> &mut [Hold] {
        &mut self.items[..self.n as usize]
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Hold> {
        self.as_slice().iter()
    }
    pub fn len(&self) -> usize {
        self.n as usize
    }
    pub fn remove(&mut self, i: usize) {
        let n = self.n as usize;
        if i < n {
            self.items.copy_within(i + 1..n, i);
            self.n -= 1;
        }
    }
    pub fn push(&mut self, h: Hold) {
        if (self.n as usize) < MAX_HOLDS {
            self.items[self.n as usize] = h;
            self.n += 1;
        }
    }
}

/// A file's state taken out of the table (deleted files kept for a late close, rename
/// snapshots).
#[derive(Clone, Debug)]
pub(crate) struct FileState {
    pub path_hash: u64,
    /// Only for files created by a process.
    pub path: Option<Box<str>>,
    pub profile: Option<Profile>,
    pub creator: Option<ProcId>,
    pub created_seq: u64,
    pub holds: Holds,
    pub damaged: bool,
    pub decoy: bool,
}

impl FileState {
    pub fn new(path_hash: u64, decoy: bool) -> Self {
        FileState {
            path_hash,
            path: None,
            profile: None,
            creator: None,
            created_seq: 0,
            holds: Holds::default(),
            damaged: false,
            decoy,
        }
    }
    pub fn pre_existing_for(&self, p: ProcId) -> bool {
        self.creator != Some(p)
    }
}

/// One tracked file. All fields at most 4-byte aligned: 32 bytes.
#[derive(Clone, Copy, Debug)]
struct Rec {
    ino: [u32; 2],
    path_hash: [u32; 2],
    /// Interned profile id; for a free record, the next free slot.
    profile: u32,
    /// With one hold: (process id, baseline profile id). With more: `[chunk, NIL]`, the
    /// index in [`Files::pool`] of the holds' chunk (of [`chunk_len`] entries).
    hold: [u32; 2],
    /// Index into [`Files::devs`].
    dev: u16,
    nholds: u8,
    flags: u8,
}

/// Device indices must fit [`Rec::dev`] (with `u16::MAX` for a free record).
const MAX_DEVS: usize = u16::MAX as usize;

const EMPTY_REC: Rec = Rec {
    ino: [0; 2],
    path_hash: [0; 2],
    profile: NIL,
    hold: [NIL; 2],
    dev: u16::MAX,
    nholds: 0,
    flags: 0,
};

/// A file created by a process: its creator, creation sequence and current path.
#[derive(Debug)]
struct Created {
    seq: u64,
    creator: u32,
    path: Box<str>,
}

fn split(v: u64) -> [u32; 2] {
    [v as u32, (v >> 32) as u32]
}
fn join(v: [u32; 2]) -> u64 {
    v[0] as u64 | (v[1] as u64) << 32
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

fn key_hash(k: FileKey) -> u64 {
    mix(k.ino ^ k.dev.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

// ----------------------------------------------------------------------------------------
// Open-addressing index of u32 ids; the keys live elsewhere (hash and equality are given
// by the caller). Linear probing, backward-shift deletion, any capacity (fast range).

#[derive(Debug, Default)]
struct Index {
    slots: Vec<u32>,
    len: usize,
}

impl Index {
    fn home(&self, h: u64) -> usize {
        ((h as u128 * self.slots.len() as u128) >> 64) as usize
    }

    fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let cap = self.slots.len();
        let mut i = self.home(h);
        loop {
            let s = self.slots[i];
            if s == NIL {
                return None;
            }
            if eq(s) {
                return Some(s);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// Insert `id` (not present). `hash_of` gives the hash of any stored id.
    fn insert(&mut self, h: u64, id: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            let cap = (self.slots.len() * 3 / 2).max(16).max((self.len + 1) * 2);
            let old = std::mem::replace(&mut self.slots, vec![NIL; cap]);
            for s in old.into_iter().filter(|s| *s != NIL) {
                self.place(hash_of(s), s);
            }
        }
        self.place(h, id);
        self.len += 1;
    }

    fn place(&mut self, h: u64, id: u32) {
        let cap = self.slots.len();
        let mut i = self.home(h);
        while self.slots[i] != NIL {
            i += 1;
            if i == cap {
                i = 0;
            }
        }
        self.slots[i] = id;
    }

    /// Remove `id` (stored under hash `h`).
    fn remove(&mut self, h: u64, id: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let cap = self.slots.len();
        let mut i = self.home(h);
        loop {
            let s = self.slots[i];
            if s == NIL {
                return false;
            }
            if s == id {
                break;
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
        // Backward shift.
        let mut j = i;
        loop {
            j += 1;
            if j == cap {
                j = 0;
            }
            let s = self.slots[j];
            if s == NIL {
                break;
            }
            let k = self.home(hash_of(s));
            let movable = if i <= j {
                k <= i || k > j
            } else {
                k <= i && k > j
            };
            if movable {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = NIL;
        self.len -= 1;
        true
    }
}

// ----------------------------------------------------------------------------------------
// Reference-counted interning.

#[derive(Debug)]
struct Interner<T> {
    items: Vec<(T, u32)>,
    free: Vec<u32>,
    index: Index,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            items: Vec::new(),
            free: Vec::new(),
            index: Index::default(),
        }
    }
}

fn hash_of<T: Hash>(v: &T) -> u64 {
    let mut h = crate::hash::FxHasher::default();
    v.hash(&mut h);
    mix(h.finish())
}

impl<T: Hash + Eq + Copy> Interner<T> {
    fn get(&self, id: u32) -> T {
        self.items[id as usize].0
    }

    fn intern(&mut self, v: T) -> u32 {
        let h = hash_of(&v);
        let items = &self.items;
        if let Some(id) = self.index.find(h, |s| items[s as usize].0 == v) {
            self.items[id as usize].1 += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.items[id as usize] = (v, 1);
                id
            }
            None => {
                self.items.push((v, 1));
                (self.items.len() - 1) as u32
            }
        };
        let items = &self.items;
        self.index.insert(h, id, |s| hash_of(&items[s as usize].0));
        id
    }

    /// The id of `v` if it is interned.
    fn find(&self, v: &T) -> Option<u32> {
        let items = &self.items;
        self.index.find(hash_of(v), |s| items[s as usize].0 == *v)
    }

    /// Drop one reference; true if that freed `id`.
    fn release(&mut self, id: u32) -> bool {
        if id == NIL {
            return false;
        }
        let e = &mut self.items[id as usize];
        e.1 -= 1;
        if e.1 == 0 {
            let h = hash_of(&e.0);
            let items = &self.items;
            self.index.remove(h, id, |s| hash_of(&items[s as usize].0));
            self.free.push(id);
            return true;
        }
        false
    }
}

// ----------------------------------------------------------------------------------------
// The table.

type Map<K, V> = HashMap<K, V, BuildHasherDefault<crate::hash::FxHasher>>;

#[derive(Debug, Default)]
pub(crate) struct Files {
    recs: Vec<Rec>,
    free: u32,
    len: usize,
    by_key: Index,
    by_path: Index,
    /// The eviction hand: the slot [`Files::victim`] looks at next.
    hand: u32,
    /// The slot [`Files::forget_process`] tidies next.
    tidy: u32,
    devs: Vec<u64>,
    profiles: Interner<Profile>,
    /// Per profile id: [`crate::stats::sample_hash`] of a sample that profile was computed
    /// from (the latest one seen); 0: none known. Equal samples give equal profiles, so
    /// one hash per distinct profile answers "is this sample's profile stored?" for every
    /// file that has it (a wrong "no" only costs a recomputation).
    profile_samples: Vec<u64>,
    procs: Interner<ProcId>,
    /// Files created by a process (flag [`F_CREATED`]): slot → creator, creation sequence
    /// and current path.
    created: Map<u32, Created>,
    /// Creator process id → slots it created (possibly stale: a slot counts only while
    /// its [`Created::creator`] is that id), so that forgetting a process drops its
    /// creations' paths ([`Files::forget_process`]).
    by_creator: Map<u32, Vec<u32>>,
    /// Per process id: the process was forgotten by the engine. Its holds no longer count
    /// (it closed everything when it exited) and are dropped when the file's holds are
    /// next stored; cleared when the id is interned again or freed.
    proc_gone: Vec<bool>,
    /// Holds of files held by more than one process: chunks of [`chunk_len`] (process id,
    /// baseline profile id) pairs, `Rec::nholds` of them used. A free chunk links the next
    /// free one of its size in its first entry.
    pool: Vec<[u32; 2]>,
    /// Free chunks of 2 and of [`MAX_HOLDS`] entries.
    pool_free: [u32; 2],
}

/// Is slot `s` (still) a file created by process id `id`? (Entries of
/// [`Files::by_creator`] go stale when a file changes creator or goes away.)
fn created_by(created: &Map<u32, Created>, s: u32, id: u32) -> bool {
    created.get(&s).is_some_and(|c| c.creator == id)
}

/// Entries of the pool chunk for `n` (> 1) holds, and its size class.
fn chunk_len(n: usize) -> (usize, usize) {
    if n <= 2 {
        (2, 0)
    } else {
        (MAX_HOLDS, 1)
    }
}

impl Files {
    pub fn new() -> Self {
        Files {
            free: NIL,
            pool_free: [NIL; 2],
            ..Default::default()
        }
    }

    /// A table sized for `n` files: the record slab is reserved (untouched memory until
    /// used) and the indexes are allocated at once for `n` at their highest load, so that
    /// filling the table never copies them (a resize holds the old and new slots at once).
    pub fn with_capacity(n: usize) -> Self {
        let mut f = Self::new();
        // Beyond 16 M files the slab grows on demand instead.
        let n = n.min(1 << 24);
        f.recs.reserve_exact(n + 64);
        let slots = (n + 64) * 5 / 4 + 16;
        f.by_key.slots = vec![NIL; slots];
        f.by_path.slots = vec![NIL; slots];
        f
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Distinct profiles stored.
    pub fn contents(&self) -> usize {
        self.profiles.items.len() - self.profiles.free.len()
    }

    fn rec_key(&self, r: &Rec) -> FileKey {
        FileKey {
            dev: self.devs[r.dev as usize],
            ino: join(r.ino),
        }
    }

    fn slot(&self, k: FileKey) -> Option<u32> {
        let dev = self.devs.iter().position(|d| *d == k.dev)? as u16;
        let ino = split(k.ino);
        let recs = &self.recs;
        self.by_key.find(key_hash(k), |s| {
            let r = &recs[s as usize];
            r.ino == ino && r.dev == dev
        })
    }

    pub fn contains(&self, k: FileKey) -> bool {
        self.slot(k).is_some()
    }

    /// The file last indexed under path hash `h`.
    pub fn by_path(&self, h: u64) -> Option<FileKey> {
        let hh = split(h);
        let recs = &self.recs;
        let s = self
            .by_path
            .find(mix(h), |s| recs[s as usize].path_hash == hh)?;
        Some(self.rec_key(&self.recs[s as usize]))
    }

    pub fn path_hash(&self, k: FileKey) -> Option<u64> {
        self.slot(k).map(|s| join(self.recs[s as usize].path_hash))
    }

    pub fn profile(&self, k: FileKey) -> Option<Profile> {
        let s = self.slot(k)?;
        self.prof(self.recs[s as usize].profile)
    }

    fn prof(&self, id: u32) -> Option<Profile> {
        (id != NIL).then(|| self.profiles.get(id))
    }

    /// Set the file's profile, computed from a sample with [`crate::stats::sample_hash`]
    /// `sample_hash` (0: not from a sample, or unknown).
    pub fn set_profile(&mut self, k: FileKey, p: Option<Profile>, sample_hash: u64) {
        let Some(s) = self.slot(k) else { return };
        let new = p.map_or(NIL, |p| self.profiles.intern(p));
        if new != NIL && sample_hash != 0 {
            let i = new as usize;
            if self.profile_samples.len() <= i {
                self.profile_samples.resize(i + 1, 0);
            }
            self.profile_samples[i] = sample_hash;
        }
        let r = &mut self.recs[s as usize];
        let old = std::mem::replace(&mut r.profile, new);
        self.release_profile(old);
    }

    fn release_profile(&mut self, id: u32) {
        if self.profiles.release(id) {
            if let Some(h) = self.profile_samples.get_mut(id as usize) {
                *h = 0;
            }
        }
    }

    /// The sample hash known for profile id `id` (0: none).
    fn sample_of(&self, id: u32) -> u64 {
        self.profile_samples.get(id as usize).copied().unwrap_or(0)
    }

    /// The file's profile if it was computed from a sample of `size` bytes with hash
    /// `sample_hash` (the profile of that same sample again, without computing it).
    pub fn profile_of_sample(&self, k: FileKey, sample_hash: u64, size: u64) -> Option<Profile> {
        if sample_hash == 0 {
            return None;
        }
        let r = &self.recs[self.slot(k)? as usize];
        if r.profile == NIL || self.sample_of(r.profile) != sample_hash {
            return None;
        }
        self.prof(r.profile).filter(|p| p.size == size)
    }

    /// The file's profile and its sample hash, if it was computed from a sample of
    /// `size` bytes (see [`crate::Sample::unchanged`]).
    pub fn sample_profile(&self, k: FileKey, size: u64) -> Option<(Profile, u64)> {
        let r = &self.recs[self.slot(k)? as usize];
        let h = self.sample_of(r.profile);
        if r.profile == NIL || h == 0 {
            return None;
        }
        let p = self.prof(r.profile).filter(|p| p.size == size)?;
        Some((p, h))
    }

    pub fn creator(&self, k: FileKey) -> Option<ProcId> {
        let s = self.slot(k)?;
        self.creator_of(s)
    }

    fn creator_of(&self, s: u32) -> Option<ProcId> {
        if self.recs[s as usize].flags & F_CREATED == 0 {
            return None;
        }
        self.created.get(&s).map(|c| self.procs.get(c.creator))
    }

    /// Set the creator; the path is kept (for `files_created_by`) while there is one.
    pub fn set_creator(&mut self, k: FileKey, c: Option<ProcId>, seq: u64, path: &str) {
        let Some(s) = self.slot(k) else { return };
        let new = c.map_or(NIL, |c| self.intern_proc(c));
        let r = &mut self.recs[s as usize];
        if new == NIL {
            r.flags &= !F_CREATED;
            if let Some(old) = self.created.remove(&s) {
                self.release_proc(old.creator);
            }
            return;
        }
        r.flags |= F_CREATED;
        match self.created.get_mut(&s) {
            Some(e) => {
                let old = std::mem::replace(&mut e.creator, new);
                if old != new {
                    self.note_creation(new, s);
                }
                self.release_proc(old);
            }
            None => {
                self.created.insert(
                    s,
                    Created {
                        seq,
                        creator: new,
                        path: path.into(),
                    },
                );
                self.note_creation(new, s);
            }
        }
    }

    /// Record that process id `id` created slot `s` (in [`Files::by_creator`]), compacting
    /// its list when it doubles.
    fn note_creation(&mut self, id: u32, s: u32) {
        let created = &self.created;
        let v = self.by_creator.entry(id).or_default();
        v.push(s);
        if v.len() >= 64 && v.len().is_power_of_two() {
            v.retain(|x| created_by(created, *x, id));
            v.sort_unstable();
            v.dedup();
            v.shrink_to(v.len() * 2);
        }
    }

    fn release_proc(&mut self, id: u32) {
        if self.procs.release(id) {
            self.by_creator.remove(&id);
            if let Some(g) = self.proc_gone.get_mut(id as usize) {
                *g = false;
            }
        }
    }

    /// Intern process `p` (known again if it had been forgotten).
    fn intern_proc(&mut self, p: ProcId) -> u32 {
        let id = self.procs.intern(p);
        if let Some(g) = self.proc_gone.get_mut(id as usize) {
            *g = false;
        }
        id
    }

    fn gone(&self, id: u32) -> bool {
        self.proc_gone.get(id as usize).copied().unwrap_or(false)
    }

    /// Process `p` is forgotten: its holds stop counting, and the files it created lose
    /// their creator (and path). No later process has its identity, so to everyone they
    /// are now pre-existing files, and no lineage can claim them any more.
    pub fn forget_process(&mut self, p: ProcId) {
        let Some(id) = self.procs.find(&p) else {
            return;
        };
        let i = id as usize;
        if self.proc_gone.len() <= i {
            self.proc_gone.resize(i + 1, false);
        }
        self.proc_gone[i] = true;
        self.tidy(TIDY_PER_FORGET);
        let Some(slots) = self.by_creator.remove(&id) else {
            return;
        };
        for s in slots {
            if created_by(&self.created, s, id) {
                self.created.remove(&s);
                self.recs[s as usize].flags &= !F_CREATED;
                self.release_proc(id);
            }
        }
    }

    pub fn holds(&self, k: FileKey) -> Holds {
        match self.slot(k) {
            Some(s) => self.holds_of(s),
            None => Holds::default(),
        }
    }

    /// The (process id, baseline profile id) pairs of slot `s`.
    fn hold_ids(&self, s: u32) -> ([[u32; 2]; MAX_HOLDS], usize) {
        let r = &self.recs[s as usize];
        let mut ids = [[NIL; 2]; MAX_HOLDS];
        let n = r.nholds as usize;
        match n {
            0 => {}
            1 => ids[0] = r.hold,
            _ => {
                let c = r.hold[0] as usize;
                ids[..n].copy_from_slice(&self.pool[c..c + n]);
            }
        }
        (ids, n)
    }

    fn holds_of(&self, s: u32) -> Holds {
        let mut h = Holds::default();
        let (ids, n) = self.hold_ids(s);
        for [p, b] in ids[..n].iter().filter(|[p, _]| !self.gone(*p)) {
            h.push(Hold {
                proc: self.procs.get(*p),
                baseline: self.prof(*b),
            });
        }
        h
    }

    /// Processes holding the file (cheap: no profiles).
    pub fn holders(&self, k: FileKey) -> impl Iterator<Item = ProcId> + '_ {
        let (ids, n) = match self.slot(k) {
            Some(s) => self.hold_ids(s),
            None => ([[NIL; 2]; MAX_HOLDS], 0),
        };
        (0..n)
            .filter(move |i| !self.gone(ids[*i][0]))
            .map(move |i| self.procs.get(ids[i][0]))
    }

    pub fn set_holds(&mut self, k: FileKey, h: &Holds) {
        let Some(s) = self.slot(k) else { return };
        self.store_holds(s, h);
    }

    fn store_holds(&mut self, s: u32, h: &Holds) {
        let mut ids = [[NIL; 2]; MAX_HOLDS];
        for (i, x) in h.iter().enumerate() {
            ids[i] = [
                self.intern_proc(x.proc),
                x.baseline.map_or(NIL, |b| self.profiles.intern(b)),
            ];
        }
        let (old, n) = self.hold_ids(s);
        let len = h.len();
        // The old chunk, kept if it is of the right size, else freed.
        let mut chunk = None;
        if n > 1 {
            let c = self.recs[s as usize].hold[0];
            let class = chunk_len(n).1;
            if len > 1 && chunk_len(len).1 == class {
                chunk = Some(c);
            } else {
                self.pool[c as usize] = [self.pool_free[class], NIL];
                self.pool_free[class] = c;
            }
        }
        let hold = match len {
            0 => [NIL; 2],
            1 => ids[0],
            _ => {
                let (size, class) = chunk_len(len);
                let c = match chunk {
                    Some(c) => c,
                    None if self.pool_free[class] != NIL => {
                        let c = self.pool_free[class];
                        self.pool_free[class] = self.pool[c as usize][0];
                        c
                    }
                    None => {
                        self.pool.resize(self.pool.len() + size, [NIL; 2]);
                        (self.pool.len() - size) as u32
                    }
                };
                let c0 = c as usize;
                self.pool[c0..c0 + size].copy_from_slice(&ids[..size]);
                [c, NIL]
            }
        };
        let r = &mut self.recs[s as usize];
        r.hold = hold;
        r.nholds = len as u8;
        for [p, b] in &old[..n] {
            self.release_proc(*p);
            self.release_profile(*b);
        }
    }

    fn flag(&self, k: FileKey, f: u8) -> bool {
        self.slot(k)
            .is_some_and(|s| self.recs[s as usize].flags & f != 0)
    }

    fn set_flag(&mut self, k: FileKey, f: u8) {
        if let Some(s) = self.slot(k) {
            self.recs[s as usize].flags |= f;
        }
    }

    pub fn damaged(&self, k: FileKey) -> bool {
        self.flag(k, F_DAMAGED)
    }
    pub fn set_damaged(&mut self, k: FileKey) {
        self.set_flag(k, F_DAMAGED)
    }
    pub fn decoy(&self, k: FileKey) -> bool {
        self.flag(k, F_DECOY)
    }
    pub fn set_decoy(&mut self, k: FileKey) {
        self.set_flag(k, F_DECOY)
    }
    /// Was an encrypted output already counted for this file from a `Modify` sample?
    pub fn output_seen(&self, k: FileKey) -> bool {
        self.flag(k, F_OUTPUT_SEEN)
    }
    /// Set (`true`) or clear the "output counted on modify" mark.
    pub fn set_output_seen(&mut self, k: FileKey, on: bool) {
        if let Some(s) = self.slot(k) {
            let f = &mut self.recs[s as usize].flags;
            if on {
                *f |= F_OUTPUT_SEEN;
            } else {
                *f &= !F_OUTPUT_SEEN;
            }
        }
    }

    fn path_index_remove(&mut self, s: u32) {
        let h = join(self.recs[s as usize].path_hash);
        let recs = &self.recs;
        self.by_path
            .remove(mix(h), s, |x| mix(join(recs[x as usize].path_hash)));
    }

    /// Index slot `s` under its path hash, replacing the file indexed there (returned).
    fn path_index_insert(&mut self, s: u32) -> Option<FileKey> {
        let h = join(self.recs[s as usize].path_hash);
        let hh = split(h);
        let recs = &self.recs;
        let prev = self
            .by_path
            .find(mix(h), |x| recs[x as usize].path_hash == hh);
        if prev == Some(s) {
            return None;
        }
        if let Some(p) = prev {
            self.path_index_remove(p);
        }
        let recs = &self.recs;
        self.by_path
            .insert(mix(h), s, |x| mix(join(recs[x as usize].path_hash)));
        prev.map(|p| self.rec_key(&self.recs[p as usize]))
    }

    /// The file is now at path `path` (hash `h`): un-index its old path (if indexed for
    /// it) and index the new one. Returns the file previously indexed under `h`.
    pub fn set_path(&mut self, k: FileKey, h: u64, path: &str) -> Option<FileKey> {
        let s = self.slot(k)?;
        let old = join(self.recs[s as usize].path_hash);
        let oh = split(old);
        let recs = &self.recs;
        if self
            .by_path
            .find(mix(old), |x| recs[x as usize].path_hash == oh)
            == Some(s)
        {
            self.path_index_remove(s);
        }
        self.recs[s as usize].path_hash = split(h);
        if let Some(e) = self.created.get_mut(&s) {
            e.path = path.into();
        }
        self.path_index_insert(s)
    }

    /// Track a new file (not present), marked touched. `index_path`: index
    /// it under its path hash (replacing any file indexed there).
    ///
    /// Files of a device beyond the 65 535th distinct one are not tracked.
    pub fn insert(&mut self, k: FileKey, st: &FileState, index_path: bool) {
        let dev = match self.devs.iter().position(|d| *d == k.dev) {
            Some(d) => d as u16,
            None if self.devs.len() < MAX_DEVS => {
                self.devs.push(k.dev);
                (self.devs.len() - 1) as u16
            }
            None => return,
        };
        let s = if self.free != NIL {
            let s = self.free;
            self.free = self.recs[s as usize].profile;
            s
        } else {
            self.recs.push(EMPTY_REC);
            (self.recs.len() - 1) as u32
        };
        let mut r = EMPTY_REC;
        r.ino = split(k.ino);
        r.dev = dev;
        r.path_hash = split(st.path_hash);
        r.flags = if st.damaged { F_DAMAGED } else { 0 } | if st.decoy { F_DECOY } else { 0 };
        r.profile = st.profile.map_or(NIL, |p| self.profiles.intern(p));
        if let Some(c) = st.creator {
            r.flags |= F_CREATED;
            let id = self.intern_proc(c);
            let created = Created {
                seq: st.created_seq,
                creator: id,
                path: st.path.clone().unwrap_or_default(),
            };
            self.created.insert(s, created);
            self.note_creation(id, s);
        }
        self.recs[s as usize] = r;
        self.store_holds(s, &st.holds);
        let recs = &self.recs;
        let devs = &self.devs;
        self.by_key.insert(key_hash(k), s, |x| {
            let r = &recs[x as usize];
            key_hash(FileKey {
                dev: devs[r.dev as usize],
                ino: join(r.ino),
            })
        });
        self.len += 1;
        self.recs[s as usize].flags |= F_REF;
        if index_path {
            self.path_index_insert(s);
        }
    }

    /// Stop tracking `k`; its state is returned.
    pub fn remove(&mut self, k: FileKey) -> Option<FileState> {
        let s = self.slot(k)?;
        let r = self.recs[s as usize];
        let recs = &self.recs;
        let devs = &self.devs;
        self.by_key.remove(key_hash(k), s, |x| {
            let r = &recs[x as usize];
            key_hash(FileKey {
                dev: devs[r.dev as usize],
                ino: join(r.ino),
            })
        });
        let h = join(r.path_hash);
        let recs = &self.recs;
        if self
            .by_path
            .find(mix(h), |x| recs[x as usize].path_hash == r.path_hash)
            == Some(s)
        {
            self.path_index_remove(s);
        }
        let holds = self.holds_of(s);
        let created = self.created.remove(&s);
        let st = FileState {
            path_hash: h,
            profile: self.prof(r.profile),
            creator: created.as_ref().map(|c| self.procs.get(c.creator)),
            created_seq: created.as_ref().map_or(0, |c| c.seq),
            path: created.as_ref().map(|c| c.path.clone()),
            holds,
            damaged: r.flags & F_DAMAGED != 0,
            decoy: r.flags & F_DECOY != 0,
        };
        self.store_holds(s, &Holds::default());
        self.release_profile(r.profile);
        if let Some(c) = created {
            self.release_proc(c.creator);
        }
        let fr = &mut self.recs[s as usize];
        *fr = EMPTY_REC;
        fr.profile = self.free;
        self.free = s;
        self.len -= 1;
        Some(st)
    }

    /// A copy of the state of `k`.
    pub fn get(&self, k: FileKey) -> Option<FileState> {
        let s = self.slot(k)?;
        let r = &self.recs[s as usize];
        let created = self.created.get(&s);
        Some(FileState {
            path_hash: join(r.path_hash),
            path: created.map(|c| c.path.clone()),
            profile: self.prof(r.profile),
            creator: created.map(|c| self.procs.get(c.creator)),
            created_seq: created.map_or(0, |c| c.seq),
            holds: self.holds_of(s),
            damaged: r.flags & F_DAMAGED != 0,
            decoy: r.flags & F_DECOY != 0,
        })
    }

    // --- Eviction order: CLOCK, an approximation of least recently touched ---

    /// Mark `k` touched: the eviction hand passes over it once more.
    pub fn touch(&mut self, k: FileKey) {
        if let Some(s) = self.slot(k) {
            self.recs[s as usize].flags |= F_REF;
        }
    }

    /// Drop the holds of forgotten processes from slot `s` (they no longer count; this
    /// gives back pooled chunks of files not opened again).
    fn prune_holds(&mut self, s: u32) {
        let (ids, n) = self.hold_ids(s);
        if ids[..n].iter().any(|[p, _]| self.gone(*p)) {
            let h = self.holds_of(s);
            self.store_holds(s, &h);
        }
    }

    /// Prune the holds of the next `n` slots (a cursor over the slab): the holds of
    /// forgotten processes in files nobody opens again go within a few sweeps, with the
    /// pooled chunks and interned process ids they keep.
    fn tidy(&mut self, n: usize) {
        let len = self.recs.len();
        for _ in 0..n.min(len) {
            let s = self.tidy as usize % len;
            self.tidy = ((s + 1) % len) as u32;
            if self.recs[s].dev != u16::MAX && self.recs[s].nholds > 0 {
                self.prune_holds(s as u32);
            }
        }
    }

    /// The next file to evict: the first one at or after the hand not touched since the
    /// hand last passed it (the hand clears the marks it passes; after [`MAX_SWEEP`] of
    /// them it takes the file it is at). The hand moves past it.
    pub fn victim(&mut self) -> Option<FileKey> {
        let n = self.recs.len();
        if self.len == 0 || n == 0 {
            return None;
        }
        let mut cleared = 0;
        loop {
            let s = (self.hand as usize) % n;
            self.hand = ((s + 1) % n) as u32;
            let r = &mut self.recs[s];
            if r.dev == u16::MAX {
                continue;
            }
            if r.flags & F_REF != 0 && cleared < MAX_SWEEP {
                r.flags &= !F_REF;
                cleared += 1;
                self.prune_holds(s as u32);
                continue;
            }
            r.flags &= !F_REF;
            return Some(self.rec_key(&self.recs[s]));
        }
    }

    /// Creators, creation sequences and current paths of files created by a process.
    pub fn created(&self) -> impl Iterator<Item = (ProcId, u64, &str)> + '_ {
        self.created
            .values()
            .map(|c| (self.procs.get(c.creator), c.seq, &*c.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_small() {
        assert_eq!(std::mem::size_of::<Rec>(), 32);
        assert!(std::mem::size_of::<Profile>() <= 72);
    }

    #[test]
    fn holds_inline_and_pooled() {
        let mut f = Files::new();
        let k = |ino| FileKey { dev: 7, ino };
        let hold = |pid| Hold {
            proc: ProcId { pid, start: 1 },
            baseline: None,
        };
        for ino in 0..3 {
            f.insert(k(ino), &FileState::new(ino, false), true);
        }
        for n in [1, 3, 4, 2, 1, 0, 4, 0] {
            for ino in 0..3 {
                let mut h = Holds::default();
                for i in 0..n {
                    h.push(hold(ino as u32 * 10 + i));
                }
                f.set_holds(k(ino), &h);
            }
            for ino in 0..3 {
                let got: Vec<u32> = f.holders(k(ino)).map(|p| p.pid).collect();
                let want: Vec<u32> = (0..n).map(|i| ino as u32 * 10 + i).collect();
                assert_eq!(got, want);
            }
        }
        assert!(f.pool.len() <= 3 * (2 + MAX_HOLDS));
        f.set_creator(k(1), Some(ProcId { pid: 5, start: 1 }), 9, "/a");
        assert_eq!(f.creator(k(1)), Some(ProcId { pid: 5, start: 1 }));
        assert_eq!(f.creator(k(0)), None);
        let st = f.remove(k(1)).unwrap();
        assert_eq!((st.creator.map(|c| c.pid), st.created_seq), (Some(5), 9));
        assert_eq!(f.created().count(), 0);
    }

    #[test]
    fn forgotten_process_loses_holds_and_creations() {
        let mut f = Files::new();
        let k = |ino| FileKey { dev: 3, ino };
        let p = ProcId { pid: 9, start: 2 };
        let q = ProcId { pid: 10, start: 2 };
        for ino in 0..200 {
            f.insert(k(ino), &FileState::new(ino, false), true);
            f.set_creator(k(ino), Some(if ino % 2 == 0 { p } else { q }), ino, "/x");
            let mut h = Holds::default();
            h.push(Hold {
                proc: p,
                baseline: None,
            });
            h.push(Hold {
                proc: q,
                baseline: None,
            });
            f.set_holds(k(ino), &h);
        }
        // Some of p's files change hands or go away: its list has stale slots.
        for ino in (0..200).step_by(4) {
            f.set_creator(k(ino), Some(q), ino, "/x");
        }
        f.remove(k(2));
        f.forget_process(p);
        assert_eq!(f.created().filter(|(c, _, _)| *c == p).count(), 0);
        assert_eq!(f.created().count(), 150);
        assert!(f.holders(k(7)).eq([q]));
        assert_eq!(f.holds(k(7)).len(), 1);
        assert_eq!(f.creator(k(6)), None);
        assert_eq!(f.creator(k(4)), Some(q));
        // Seen again (a late event): its new holds count.
        let mut h = f.holds(k(7));
        h.push(Hold {
            proc: p,
            baseline: None,
        });
        f.set_holds(k(7), &h);
        assert!(f.holders(k(7)).eq([q, p]));
    }

    #[test]
    fn sample_hash_is_kept_per_profile() {
        let mut f = Files::new();
        let k = |ino| FileKey { dev: 3, ino };
        let text = b"some plain text, long enough to be judged as text".to_vec();
        let sample = crate::event::Sample::new(
            text.len() as u64,
            vec![crate::event::Block {
                offset: 0,
                data: text,
            }],
        );
        let prof = Profile::of(&sample);
        for ino in 0..2 {
            f.insert(k(ino), &FileState::new(ino, false), true);
        }
        f.set_profile(k(0), Some(prof), 77);
        assert_eq!(f.profile_of_sample(k(0), 77, prof.size), Some(prof));
        assert_eq!(f.profile_of_sample(k(0), 78, prof.size), None);
        assert_eq!(f.sample_profile(k(0), prof.size), Some((prof, 77)));
        // Another file with the same content shares the profile and its sample hash.
        f.set_profile(k(1), Some(prof), 77);
        f.set_profile(k(0), None, 0);
        assert_eq!(f.sample_profile(k(0), prof.size), None);
        assert_eq!(f.sample_profile(k(1), prof.size), Some((prof, 77)));
        // Freed profiles forget their sample.
        f.set_profile(k(1), None, 0);
        f.set_profile(k(1), Some(prof), 0);
        assert_eq!(f.sample_profile(k(1), prof.size), None);
    }

    #[test]
    fn clock_evicts_untouched_files_first() {
        let mut f = Files::with_capacity(100);
        let k = |ino| FileKey { dev: 1, ino };
        for ino in 0..100 {
            f.insert(k(ino), &FileState::new(ino, false), true);
        }
        assert_eq!(f.recs.capacity(), 164);
        // A first sweep clears every mark and takes the first file; from then on the
        // files touched since the hand passed them are spared.
        assert_eq!(f.victim(), Some(k(0)));
        f.remove(k(0));
        for ino in (1..100).filter(|i| i % 3 == 0) {
            f.touch(k(ino));
        }
        let mut taken = Vec::new();
        for _ in 0..60 {
            let v = f.victim().unwrap();
            f.remove(v);
            taken.push(v.ino);
        }
        assert!(taken.iter().all(|i| i % 3 != 0), "{taken:?}");
        // Freed slots are reused and skipped by the hand while free.
        f.insert(k(500), &FileState::new(500, false), true);
        assert!(f.contains(k(500)));
        let left = f.len();
        for _ in 0..left {
            let v = f.victim().unwrap();
            f.remove(v);
        }
        assert_eq!((f.len(), f.victim()), (0, None));
    }

    #[test]
    fn index_insert_find_remove() {
        let keys: Vec<u64> = (0..5000u64).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        let mut ix = Index::default();
        let h = |s: u32| mix(keys[s as usize]);
        for s in 0..keys.len() as u32 {
            ix.insert(h(s), s, h);
        }
        for s in (0..keys.len() as u32).step_by(3) {
            assert!(ix.remove(h(s), s, h));
        }
        for s in 0..keys.len() as u32 {
            let found = ix.find(h(s), |x| x == s);
            assert_eq!(found.is_some(), s % 3 != 0);
        }
    }
}
