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
//! A content is **encrypted-looking** (see [`Profile::encrypted_looking`]) when it is an
//! explicitly encrypted container (openssl `Salted__`, OpenPGP, age, encrypted zip), or
//! when it has no valid known format and its head is random or base64/hex "armoured"
//! random data, or when it is text that is in fact armoured random data. Valid gzip,
//! zstd, xz, zip, PNG, DICOM, SQLite... are *not* encryption, however random their payload.
//!
//! # Damage rules (a pre-existing file destroyed by a lineage)
//!
//! * **(a) content-encrypted**: P closes a pre-existing file whose baseline was not
//!   encrypted-looking and whose new content is. Extra indicators on the same file:
//!   `format-broken` (the baseline was a valid known format, text included, and the new
//!   content is not valid), `encrypted-container`, `armoured-ciphertext`.
//!   The same judgement applies when a file is **renamed over** a pre-existing file
//!   (`mv tmp original`): the replaced file's last content is compared with the
//!   replacement's content (editor saves replace text with text: no damage).
//! * **(b) partial-encryption**: the head kept its (valid, known) format but sampled blocks
//!   went from not-random to random at the same offset — intermittent or header-preserving
//!   encryption. Formats that declare a compressed payload (gzip, zip, PNG, JPEG, PDF,
//!   DICOM with a compressed transfer syntax, ...) are exempt: their payload is random
//!   anyway. Formats that legitimately hold arbitrary binary data after a structured header
//!   (SQLite, tar, DICOM, ELF, zip, PDF, 7z) only count when the *body of the head* (after
//!   the first `min(512, len/2)` bytes) turned random — a database page full of random
//!   blobs deep in the file is normal, a schema page turned to noise is not. For SQLite
//!   and (uncompressed) DICOM the head after the first `min(1024, len/2)` bytes turning
//!   random counts as well (a 1 KiB header kept; a 4 KiB schema page still spans most of
//!   that window). For text, any sampled block counts.
//! * **(c) read-write-delete (funnel)**: the classic "write an encrypted copy, delete the
//!   original". A pre-existing, non-empty, not-already-encrypted file that process R read
//!   is deleted (or renamed away to an unknown extension) by a process D of the same
//!   lineage, and R writes new encrypted-looking files. Pairing is deliberately strict:
//!   - each encrypted output of R pays for one delete; outputs that are copies of
//!     encrypted-looking files R read (same content fingerprint) do not count
//!     (`cp`/`mv`/`rsync` of a tree that contains ciphertext is not encryption);
//!   - R gets no credit while its encrypted outputs are fewer than half of the plain
//!     files it read: an encryptor writes one output per victim, a backup tool (borg,
//!     restic, `tar | gpg`) many inputs per output, so "back up, then delete" is not damage.
//!     Reads of files under 64 bytes (locks, pid files, an empty keyring) and of files R
//!     created itself are not inputs;
//!   - an encrypted output named `<victim>.<any ext>` (`a.xlsx` → `a.xlsx.gpg`) pays for
//!     the delete of `<victim>` even without half-rule credit: `gpg` reads its keyring and
//!     trust db besides the victim, but names its one output after it;
//!   - a delete is *explained*, hence ignored, when R wrote a plain (not encrypted)
//!     output with the same content fingerprint (a copy or move) or named after the
//!     deleted file (`a.txt` → `a.txt.gz`, `a.png` → `a.jpg`).
//!
//!   Deletes that come before the encrypted output wait (pending) until R's next
//!   encrypted output within the window. The damage is counted at the lowest common
//!   ancestor of R and D and above (for `openssl` children that encrypt and `rm` children
//!   that delete, at the script that forks them). Deletes without encrypted output
//!   (`rm -rf`, `gzip --rm`, whose outputs are valid gzip) never count.
//! * **(e) content-wiped**: P overwrites a pre-existing file holding data (at least 64
//!   bytes, not encrypted-looking, not already constant) with one repeated byte value
//!   (zeros: every sampled block constant), and P's lineage writes an encrypted-looking
//!   output (not a copy) within the window, before or after the wipe — "archive, encrypt
//!   the archive, zero the originals". The damage counts at the deepest node of P's chain
//!   whose subtree wrote the encrypted output. Wipes without encrypted output (`shred -z`)
//!   and truncations to empty never count. A close-after-write the sensor reports *after*
//!   the delete of its file (`open; unlink; write; close`) is judged against the state the
//!   file had when deleted (kept 10 s for files still open).
//! * **(d) decoys**: [`Config::decoys`] are canary files placed by ward. Writing
//!   encrypted-looking content into one, renaming something encrypted over one, or renaming
//!   one to an unknown extension is an **immediate verdict**. Merely reading, copying,
//!   compressing or deleting a decoy (which `tar`, `gzip -r`, `rm -rf` do) is only recorded
//!   as the weak indicator `decoy-accessed`.
//!
//! Extra indicators (never a verdict alone, but they lower the damage threshold by one):
//! * `extension-appended`: a pre-existing file renamed to its name plus an unknown
//!   extension (`a.docx` → `a.docx.locked`), or an encrypted-looking new file named
//!   `<existing or deleted file>.<unknown ext>`. Numeric extensions (log rotation) and
//!   common data/archive/backup extensions (`.gz`, `.bak`, `.tmp`, ...) are not "unknown".
//! * `ransom-note`: small new files (16 B..8 KiB) with identical content (FNV-1a of the
//!   bytes) created by the lineage in at least 3 distinct directories.
//!
//! # Lineages and verdicts
//!
//! Evidence of process P counts for P and each ancestor up to, excluding, the first
//! *boundary* process (pid 1, sshd, cron, smbd's parent...; see [`ProcInfo::boundary`]).
//! Ancestors never announced by a `Process` event are not part of the lineage; a process
//! of unknown parentage is its own lineage root. A boundary process itself collects no
//! evidence and is never blamed.
//!
//! A node **crosses** when its lineage has, within [`Config::window_ns`] (default 1 hour,
//! so slow attacks add up; older evidence is dropped):
//! * at least [`Config::damage_threshold`] (default 3) distinct damaged files, or
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
//! damages afterwards are listed by [`Engine::damaged_since_verdict`].
//!
//! # Bounded memory
//!
//! At most [`Config::max_files`] files are tracked (default 100 000); the least recently
//! touched ones are evicted first, except files damaged or decoys. A tracked file costs a
//! fixed-size 72-byte record (no heap allocation) plus about 13 bytes of index slots, so
//! about 85 bytes (85 MiB for a million files, 8.5 MiB at the default): the record holds
//! the file key, a 64-bit hash of its path (lookups by path compare hashes, not strings), the
//! LRU links and 32-bit ids of its content profile, creator and up to 4 holders with their
//! baselines. Profiles and process ids are interned with reference counts, so a content
//! shared by a file and its holders' baselines (the common case) or by several files is
//! stored once (about 85 bytes per distinct content). Only files created by a process keep
//! their full path (for [`Verdict::files_created`]), at about 80 bytes more each. An evicted file loses nothing that matters for long: its
//! baseline is sampled again at its next open. Exited processes are forgotten once they
//! have no live children and no evidence, after [`Config::dead_ttl_ns`] (or earlier when
//! more than [`Config::max_dead`] exited processes are retained).
//!
//! # Known limits
//!
//! Files smaller than 64 bytes cannot be judged random. An encryptor that keeps the
//! first 8 KiB intact is only caught by the block rule for text and by the funnel, decoy and
//! naming rules. A fake compressed header (`1f 8b 08 ...` in front of ciphertext) passes as
//! valid gzip. Data that flows through a pipe (`tar | openssl > x; rm -rf tree`) is not
//! linked to the deletes (the reader is not the encrypting writer). An encryptor that
//! reads all its victims before writing any output gets funnel credit only once its outputs
//! reach half of its reads (in-place overwrites are judged immediately regardless).
//! A ransomware writing a plain decoy output named after each victim evades the funnel.

use crate::event::{Event, FileKey, Op, ProcId, ProcInfo, Sample};
use crate::files::{FileState, Files, Hold, MAX_HOLDS};
use crate::profile::Profile;
use crate::sniff::Kind;
use crate::stats::{fnv1a, MIN_SAMPLE};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// Tunables. `Default` gives the production values.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Damaged pre-existing files in one lineage that make a verdict.
    pub damage_threshold: usize,
    /// Paths of decoy files placed by ward. Damaging one is an immediate verdict.
    pub decoys: Vec<String>,
    /// Evidence older than this (event time, ns) is forgotten.
    pub window_ns: u64,
    /// Maximum number of files tracked (least recently touched evicted first).
    pub max_files: usize,
    /// Exited processes without evidence are forgotten this long after their exit.
    pub dead_ttl_ns: u64,
    /// Maximum number of exited processes retained (older ones are forgotten early).
    pub max_dead: usize,
    /// Distinct addresses a lineage must connect to on TCP 445/139 within
    /// [`Config::fanout_window_ns`] for an `smb-fanout` verdict (0 disables the rule).
    pub fanout_threshold: usize,
    /// Window of the SMB fan-out rule (event time, ns).
    pub fanout_window_ns: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            damage_threshold: 3,
            decoys: Vec::new(),
            window_ns: 3_600 * 1_000_000_000,
            max_files: 100_000,
            dead_ttl_ns: 600 * 1_000_000_000,
            max_dead: 100_000,
            fanout_threshold: 10,
            fanout_window_ns: 30 * 1_000_000_000,
        }
    }
}

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
}

impl Indicator {
    pub const ALL: [Indicator; 12] = [
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
    ];

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
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    fn from_bits(bits: u16) -> impl Iterator<Item = Indicator> {
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

/// Counters for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub events: u64,
    pub files_tracked: usize,
    pub processes_tracked: usize,
    pub verdicts: u64,
    pub files_evicted: u64,
    pub processes_forgotten: u64,
}

// ----------------------------------------------------------------------------------------
// Deterministic hashing (no per-process random seeds: replays are bit-identical).

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        // fmix64 so that the low bits (used for bucket selection) depend on all input bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Hash of a path (SipHash with fixed keys: deterministic, resistant to crafted names).
fn path_hash(path: &str) -> u64 {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

fn file_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The extension of the last path component (without the dot), if any.
fn extension(path: &str) -> Option<&str> {
    let name = file_name(path);
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext)
}

/// Extensions that benign tools append or use: data formats, compressors, archives,
/// backups, temporary files, rotations.
const BENIGN_EXT: &[&str] = &[
    "txt",
    "csv",
    "tsv",
    "log",
    "md",
    "json",
    "xml",
    "yaml",
    "yml",
    "ini",
    "cfg",
    "conf",
    "html",
    "htm",
    "css",
    "js",
    "py",
    "rs",
    "c",
    "h",
    "cpp",
    "sh",
    "doc",
    "docx",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "odt",
    "ods",
    "odp",
    "rtf",
    "pdf",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "tif",
    "tiff",
    "svg",
    "webp",
    "heic",
    "dcm",
    "dicom",
    "gz",
    "tgz",
    "bz2",
    "tbz",
    "tbz2",
    "xz",
    "txz",
    "zst",
    "zstd",
    "lz4",
    "lzma",
    "lz",
    "z",
    "zip",
    "7z",
    "rar",
    "tar",
    "cpio",
    "bak",
    "old",
    "orig",
    "tmp",
    "temp",
    "swp",
    "swo",
    "part",
    "partial",
    "new",
    "save",
    "sav",
    "backup",
    "db",
    "sqlite",
    "sqlite3",
    "journal",
    "wal",
    "shm",
    "mp3",
    "mp4",
    "wav",
    "avi",
    "mkv",
    "mov",
    "lock",
    "pid",
    "dpkg-new",
    "dpkg-old",
    "dpkg-dist",
    "rpmnew",
    "rpmsave",
    "rej",
    "diff",
    "patch",
    "pack",
    "idx",
    // Standard extensions of file-encryption tools used by people (gpg, age, ccrypt,
    // aescrypt, openssl): a ransomware using them needs one more damaged file.
    "gpg",
    "pgp",
    "asc",
    "age",
    "cpt",
    "aes",
    "enc",
];

fn benign_ext(ext: &str) -> bool {
    ext.is_empty()
        || ext.len() > 16
        || ext.bytes().all(|b| b.is_ascii_digit())
        || ext.ends_with('~')
        || BENIGN_EXT.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

/// `to` is `from` plus `.<unknown extension>`.
fn appended_unknown_ext(from: &str, to: &str) -> bool {
    match to.strip_prefix(from).and_then(|r| r.strip_prefix('.')) {
        Some(ext) => !ext.is_empty() && !ext.contains('/') && !benign_ext(ext),
        None => false,
    }
}

/// The rename gives the file an unknown extension it did not have.
fn renamed_to_unknown_ext(from: &str, to: &str) -> bool {
    match extension(to) {
        Some(e) => extension(from) != Some(e) && !benign_ext(e),
        None => false,
    }
}

// ----------------------------------------------------------------------------------------
// State.

#[derive(Debug)]
struct DamageRec {
    file: FileKey,
    path: String,
    time: u64,
    indicators: u16,
}

#[derive(Debug, Clone)]
struct Pending {
    file: FileKey,
    path: String,
    time: u64,
    /// Lowest common ancestor of the reader and the deleter: where damage counts.
    lca: ProcId,
    content: u16,
}

#[derive(Debug, Clone)]
struct Wipe {
    file: FileKey,
    path: String,
    time: u64,
}

#[derive(Debug, Default)]
struct NoteDirs {
    dirs: [u64; 3],
    n: u8,
    time: u64,
}

/// Evidence held by one process node (for itself and its subtree).
#[derive(Debug, Default)]
struct Evidence {
    /// Damaged files in the subtree, in order (distinct files).
    damage: VecDeque<Arc<DamageRec>>,
    /// Node-level indicators (extension-appended, ransom-note, decoy-accessed) + time.
    marks: Vec<(Indicator, u64)>,
    /// Identical small new files: content hash → directories.
    notes: Map<u64, NoteDirs>,
    /// Activity for decoy blame: encrypted outputs + damage in the subtree.
    activity: u64,
    /// Last time (event time) the subtree wrote an encrypted output that is not a copy;
    /// 0 if never.
    enc_time: u64,
    /// Pre-existing files the subtree wiped (rule (e)) before any encrypted output.
    wipes: VecDeque<Wipe>,
    // --- Per-process funnel accounting (this process as reader/writer) ---
    enc_outputs: u32,
    /// Encrypted outputs that are copies of encrypted-looking files this process read
    /// (same content fingerprint): `cp`/`rsync` of ciphertext is not encryption.
    copied_outputs: u32,
    /// Fingerprints of the encrypted-looking files this process read (most recent 64).
    random_fps: VecDeque<u64>,
    /// Files read whose content was real, unencrypted data (at least 64 bytes, not
    /// created by this process).
    plain_reads: u32,
    funnel_used: u32,
    funnel_time: u64,
    /// Deletes of files this process read, waiting for its next encrypted output.
    pending: VecDeque<Pending>,
    /// Path hashes of `<stem>` for new encrypted files named `<stem>.<unknown ext>`.
    enc_stems: VecDeque<u64>,
    /// Path hashes of `<stem>` for new encrypted files (not copies) named `<stem>.<ext>`,
    /// whatever the extension (`a.xlsx` → `a.xlsx.gpg`): such an output pays for the
    /// delete of `<stem>` even when the half rule gives no credit.
    enc_named: VecDeque<u64>,
    /// Deletes this process can explain by a plain (not encrypted) output: path hashes of
    /// `<stem>` of its outputs named `<stem>.<ext>` (gzip, converters) and fingerprints of
    /// the content it wrote (copies, moves). Not evidence.
    explained: VecDeque<u64>,
    /// SMB fan-out: (address hash, last connect time) of the distinct addresses the
    /// subtree connected to on 445/139 within the fan-out window, oldest first.
    connects: VecDeque<(u64, u64)>,
    // --- After conviction ---
    after: Vec<String>,
    after_keys: Vec<FileKey>,
}

impl Evidence {
    fn expire(&mut self, now: u64, window: u64) {
        let old = |t: u64| now.saturating_sub(t) > window;
        while self.damage.front().is_some_and(|d| old(d.time)) {
            self.damage.pop_front();
        }
        while self.pending.front().is_some_and(|p| old(p.time)) {
            self.pending.pop_front();
        }
        self.marks.retain(|(_, t)| !old(*t));
        while self.wipes.front().is_some_and(|w| old(w.time)) {
            self.wipes.pop_front();
        }
        if old(self.enc_time) {
            self.enc_time = 0;
        }
        self.notes.retain(|_, n| !old(n.time));
        if old(self.funnel_time) {
            self.enc_outputs = 0;
            self.copied_outputs = 0;
            self.random_fps.clear();
            self.plain_reads = 0;
            self.funnel_used = 0;
            self.enc_stems.clear();
            self.enc_named.clear();
        }
    }

    fn is_empty(&self) -> bool {
        self.damage.is_empty()
            && self.pending.is_empty()
            && self.wipes.is_empty()
            && self.enc_time == 0
            && self.marks.is_empty()
            && self.notes.is_empty()
            && self.enc_outputs == 0
            && self.random_fps.is_empty()
            && self.plain_reads == 0
            && self.connects.is_empty()
            && self.after.is_empty()
    }

    /// Forget connects older than the fan-out window.
    fn expire_connects(&mut self, now: u64, window: u64) {
        while self
            .connects
            .front()
            .is_some_and(|(_, t)| now.saturating_sub(*t) > window)
        {
            self.connects.pop_front();
        }
    }

    fn has_mark(&self, i: Indicator) -> bool {
        self.marks.iter().any(|(m, _)| *m == i)
    }

    fn mark(&mut self, i: Indicator, now: u64) {
        match self.marks.iter_mut().find(|(m, _)| *m == i) {
            Some(e) => e.1 = e.1.max(now),
            None => self.marks.push((i, now)),
        }
    }

    fn explain(&mut self, h: u64) {
        if self.explained.len() >= 256 {
            self.explained.pop_front();
        }
        self.explained.push_back(h);
    }

    /// Encrypted outputs not yet matched with a delete. An encryptor writes about one
    /// output per file it reads; a backup or archiver reads many files per output, so a
    /// reader whose outputs are fewer than half its reads gets no credit.
    fn credit(&self) -> u32 {
        let out = self.outputs();
        if (out as u64) * 2 < self.plain_reads as u64 {
            return 0;
        }
        out.saturating_sub(self.funnel_used)
    }

    /// Encrypted outputs that are not copies of ciphertext read.
    fn outputs(&self) -> u32 {
        self.enc_outputs.saturating_sub(self.copied_outputs)
    }

    /// An unpaid encrypted output named after the file at path hash `stem`.
    fn named_credit(&self, stem: u64) -> bool {
        self.outputs() > self.funnel_used && self.enc_named.contains(&stem)
    }
}

#[derive(Debug, Default)]
struct ProcNode {
    info: Option<ProcInfo>,
    /// Children, possibly with stale entries (forgotten or re-parented processes); see
    /// `nchildren` for the live count. Compacted lazily.
    children: Vec<ProcId>,
    nchildren: u32,
    alive: bool,
    exit_time: u64,
    convicted: bool,
    ev: Option<Box<Evidence>>,
}

impl ProcNode {
    fn ev(&mut self) -> &mut Evidence {
        self.ev.get_or_insert_with(Default::default)
    }
    fn boundary(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.boundary)
    }
}

const MAX_DEPTH: usize = 64;
const MAX_PENDING: usize = 4096;
const MAX_NOTES: usize = 256;
const NOTE_MIN: u64 = 16;
const NOTE_MAX: u64 = 8192;
const MAX_WIPES: usize = 256;
const MAX_TOMBS: usize = 64;
/// Distinct addresses remembered per lineage node for the fan-out rule.
const MAX_CONNECTS: usize = 1024;
/// TCP ports of SMB (direct-hosted and NetBIOS session service).
const SMB_PORTS: [u16; 2] = [445, 139];

/// Hash of a peer address, the same for an IPv4 address and its IPv4-mapped IPv6 form, and
/// for any letter case and surrounding brackets / whitespace.
fn addr_hash(addr: &str) -> u64 {
    let a = addr.trim().trim_start_matches('[').trim_end_matches(']');
    let lower = a.to_ascii_lowercase();
    let a = lower.strip_prefix("::ffff:").unwrap_or(&lower);
    path_hash(a)
}
/// A close-after-write reported after the delete of its file is matched with the deleted
/// file's state for this long.
const TOMB_TTL_NS: u64 = 10 * 1_000_000_000;

/// The engine. Feed it events in order with [`Engine::observe`].
pub struct Engine {
    cfg: Config,
    decoys: HashSet<Box<str>, BuildHasherDefault<DefaultHasher>>,
    procs: Map<ProcId, ProcNode>,
    /// Tracked files (with the path hash → file index and the LRU order).
    files: Files,
    /// `Create` events without a file key: path hash → creator.
    pending_creates: Map<u64, ProcId>,
    dead: VecDeque<(u64, ProcId)>,
    /// Recently deleted files that a process still had open (delete time, state): the
    /// sensor may report their close-after-write after the delete.
    tombs: VecDeque<(u64, FileKey, FileState)>,
    seq: u64,
    now: u64,
    stats: EngineStats,
}

impl Engine {
    pub fn new(cfg: Config) -> Self {
        let decoys = cfg.decoys.iter().map(|d| d.as_str().into()).collect();
        Engine {
            cfg,
            decoys,
            procs: Map::default(),
            files: Files::new(),
            pending_creates: Map::default(),
            dead: VecDeque::new(),
            tombs: VecDeque::new(),
            seq: 0,
            now: 0,
            stats: EngineStats::default(),
        }
    }

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
    /// all: damage, indicators, encrypted outputs or deletes awaiting one, or a conviction?
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
                        || !e.pending.is_empty()
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

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            files_tracked: self.files.len(),
            processes_tracked: self.procs.len(),
            ..self.stats
        }
    }

    // ------------------------------------------------------------------------------------
    // Lineage helpers.

    /// Chain of nodes collecting evidence of `p`: p (unless boundary), then announced,
    /// non-boundary ancestors. With `stop_at_convicted`, ends at (including) the first
    /// convicted node.
    fn chain_inner(&self, p: ProcId, stop_at_convicted: bool) -> Vec<ProcId> {
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

    fn chain(&self, p: ProcId) -> Vec<ProcId> {
        self.chain_inner(p, true)
    }

    /// The chain starting at `from` (which must be an evidence node) upward.
    fn chain_from(&self, from: ProcId) -> Vec<ProcId> {
        self.chain(from)
    }

    fn node(&mut self, p: ProcId) -> &mut ProcNode {
        self.procs.entry(p).or_insert_with(|| ProcNode {
            alive: true,
            ..Default::default()
        })
    }

    fn ev(&mut self, p: ProcId) -> &mut Evidence {
        let (now, window, fw) = (self.now, self.cfg.window_ns, self.cfg.fanout_window_ns);
        let e = self.node(p).ev();
        e.expire(now, window);
        e.expire_connects(now, fw);
        e
    }

    fn chain_convicted(&self, chain: &[ProcId]) -> Option<ProcId> {
        let last = *chain.last()?;
        self.procs
            .get(&last)
            .is_some_and(|n| n.convicted)
            .then_some(last)
    }

    // ------------------------------------------------------------------------------------
    // Housekeeping: forget dead processes, bound the file table.

    fn housekeeping(&mut self) {
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

    fn try_forget(&mut self, p: ProcId, force: bool) {
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
        let has_ev = n.ev.as_ref().is_some_and(|e| !e.is_empty());
        if n.nchildren > 0 || (has_ev && !force) {
            if has_ev && n.nchildren == 0 {
                self.dead.push_back((now, p));
            }
            return;
        }
        let parent = n.info.as_ref().and_then(|i| i.parent);
        self.procs.remove(&p);
        self.stats.processes_forgotten += 1;
        if let Some(pp) = parent {
            self.unlink_child(pp);
            if let Some(pn) = self.procs.get_mut(&pp) {
                if pn.nchildren == 0 && (!pn.alive || pn.info.is_none()) {
                    if pn.info.is_none() {
                        self.procs.remove(&pp);
                    } else {
                        self.dead.push_back((pn.exit_time, pp));
                    }
                }
            }
        }
    }

    /// One child of `parent` went away (forgotten or re-parented): update the live count
    /// and compact the list when it is mostly stale.
    fn unlink_child(&mut self, parent: ProcId) {
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

    fn touch(&mut self, k: FileKey) {
        self.seq += 1;
        self.files.touch(k);
    }

    fn evict(&mut self) {
        let mut budget = 64;
        while self.files.len() > self.cfg.max_files && budget > 0 {
            budget -= 1;
            let Some(k) = self.files.oldest() else {
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

    fn remove_file(&mut self, k: FileKey) -> Option<FileState> {
        self.files.remove(k)
    }

    fn is_decoy(&self, path: &str) -> bool {
        !self.decoys.is_empty() && self.decoys.contains(path)
    }

    /// Look up a file by path (by its 64-bit path hash).
    fn by_path(&self, path: &str) -> Option<FileKey> {
        self.files.by_path(path_hash(path))
    }

    /// Make sure `k` is tracked at `path`, keeping the path index current.
    fn file_entry(&mut self, k: FileKey, path: &str) {
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
    fn set_creator(&mut self, k: FileKey, c: Option<ProcId>, path: &str) {
        self.files.set_creator(k, c, self.seq, path);
    }

    // ------------------------------------------------------------------------------------
    // Event handlers.

    fn on_process(&mut self, info: &ProcInfo) {
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

    fn on_exit(&mut self, p: ProcId) {
        let now = self.now;
        if let Some(n) = self.procs.get_mut(&p) {
            if n.alive {
                n.alive = false;
                n.exit_time = now;
                self.dead.push_back((now, p));
            }
        }
    }

    fn on_create(&mut self, p: ProcId, path: &str, file: Option<FileKey>) {
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

    fn on_open(&mut self, p: ProcId, k: FileKey, path: &str, sample: &Sample) -> Option<Verdict> {
        let prof = Profile::of(sample);
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
        self.files.set_profile(k, Some(prof));
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
            } else {
                e.plain_reads = e.plain_reads.saturating_add(1);
            }
            e.funnel_time = now;
        }
        if decoy {
            self.mark_chain(p, Indicator::DecoyAccessed);
        }
        None
    }

    fn on_close_write(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        sample: &Sample,
    ) -> Option<Verdict> {
        let newp = Profile::of(sample);
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
            let v = self.judge_close(p, k, path, sample, &newp, Some(t));
            self.remove_file(k);
            return v;
        }
        self.judge_close(p, k, path, sample, &newp, None)
    }

    fn untomb(&mut self, k: FileKey, path: &str) -> Option<FileState> {
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

    fn judge_close(
        &mut self,
        p: ProcId,
        k: FileKey,
        path: &str,
        sample: &Sample,
        newp: &Profile,
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
        self.files.set_profile(k, Some(newp));

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
            if newp.encrypted_looking() {
                v = self.encrypted_output(p, path, newp.fingerprint());
            } else if !newp.is_empty() {
                let e = self.ev(p);
                e.explain(newp.fingerprint());
                // `dir/a.b.gz` explains deletes of `dir/a.b` and `dir/a`.
                let name_start = path.len() - file_name(path).len();
                for (i, c) in path.char_indices().skip(name_start + 1) {
                    if c == '.' {
                        e.explain(path_hash(&path[..i]));
                    }
                }
            }
            if v.is_none() && (NOTE_MIN..=NOTE_MAX).contains(&newp.size) {
                let head = sample.head();
                if head.len() as u64 == newp.size {
                    v = self.note(p, path, fnv1a(head) ^ newp.size);
                }
            }
            v
        }
    }

    fn on_delete(&mut self, p: ProcId, path: &str, file: Option<FileKey>) -> Option<Verdict> {
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

    fn on_rename(
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

    // ------------------------------------------------------------------------------------
    // Rules.

    /// SMB fan-out: `p` connected to `addr:port`. Counts distinct addresses (not ports, not
    /// repeated connections) on 445/139 per lineage node within the fan-out window.
    fn on_connect(&mut self, p: ProcId, addr: &str, port: u16) -> Option<Verdict> {
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

    /// Funnel: `p` deleted (or renamed away) file `k` (state `f`, at `path`).
    fn funnel(&mut self, p: ProcId, k: FileKey, path: &str, f: &FileState) -> Option<Verdict> {
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
    fn encrypted_output(&mut self, p: ProcId, path: &str, fp: u64) -> Option<Verdict> {
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
        let copy = self.ev(p).random_fps.contains(&fp);
        for n in &chain {
            let e = self.ev(*n);
            e.activity += 1;
            if appended {
                e.mark(Indicator::ExtensionAppended, now);
            }
            if !copy {
                e.enc_time = now;
            }
        }
        // Files wiped earlier by this subtree now count (rule (e)), at the deepest node
        // holding them.
        let mut verdict = None;
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

    /// Rule (e): `p` overwrote pre-existing data with one repeated byte value. Damage at
    /// the deepest node of p's chain whose subtree wrote an encrypted output within the
    /// window; kept pending on the chain otherwise.
    fn wipe(&mut self, p: ProcId, k: FileKey, path: &str) -> Option<Verdict> {
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

    /// A small new file: ransom note candidate.
    fn note(&mut self, p: ProcId, path: &str, hash: u64) -> Option<Verdict> {
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

    /// Set a node-level mark on p's chain and evaluate.
    fn mark_chain(&mut self, p: ProcId, i: Indicator) -> Option<Verdict> {
        let chain = self.chain(p);
        if chain.is_empty() || self.chain_convicted(&chain).is_some() {
            return None;
        }
        let now = self.now;
        for n in &chain {
            self.ev(*n).mark(i, now);
        }
        if i == Indicator::DecoyAccessed {
            return None;
        }
        self.evaluate(&chain, p, None)
    }

    /// Damage by rule (a)/(b) (or rename-over): counts on p's whole chain.
    fn damage(&mut self, p: ProcId, k: FileKey, path: &str, bits: u16) -> Option<Verdict> {
        let chain = self.chain(p);
        self.record_damage(&chain, p, k, path, bits)
    }

    fn record_damage(
        &mut self,
        chain: &[ProcId],
        culprit: ProcId,
        k: FileKey,
        path: &str,
        bits: u16,
    ) -> Option<Verdict> {
        if chain.is_empty() {
            return None;
        }
        self.files.set_damaged(k);
        let now = self.now;
        if let Some(root) = self.chain_convicted(chain) {
            let e = self.ev(root);
            if !e.after_keys.contains(&k) {
                e.after_keys.push(k);
                e.after.push(path.to_string());
            }
            return None;
        }
        let rec = Arc::new(DamageRec {
            file: k,
            path: path.to_string(),
            time: now,
            indicators: bits,
        });
        for n in chain {
            let e = self.ev(*n);
            e.activity += 1;
            if !e.damage.iter().any(|d| d.file == k) {
                e.damage.push_back(rec.clone());
            }
        }
        self.evaluate(chain, culprit, None)
    }

    fn crossed(&self, n: ProcId) -> bool {
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
    }

    /// Evaluate the nodes of `chain` (deepest first) and convict the deepest that crossed.
    fn evaluate(
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

    fn decoy_verdict(&mut self, p: ProcId, k: FileKey, path: &str) -> Option<Verdict> {
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

    fn convict(&mut self, root: ProcId, culprit: ProcId, decoy: bool) -> Verdict {
        let now = self.now;
        let window = self.cfg.window_ns;
        let members = self.members(root);
        let files_created = self.files_created_by(root);
        let fanout = self.cfg.fanout_threshold;
        let node = self.node(root);
        node.convicted = true;
        let e = node.ev();
        e.expire(now, window);
        let files_damaged: Vec<String> = e.damage.iter().map(|d| d.path.clone()).collect();
        let keys: Vec<FileKey> = e.damage.iter().map(|d| d.file).collect();
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

trait ContentCheck {
    fn is_none_or_empty_or_encrypted(&self) -> bool;
}

impl ContentCheck for Option<Profile> {
    fn is_none_or_empty_or_encrypted(&self) -> bool {
        match self {
            None => true,
            Some(p) => p.is_empty() || p.encrypted_looking(),
        }
    }
}

/// Real data that a wipe destroys: judgeable size, not ciphertext, not already constant.
fn holds_data(base: &Profile) -> bool {
    base.size >= MIN_SAMPLE as u64 && !base.encrypted_looking() && !base.wiped()
}

/// Rules (a) and (b): did the change from `base` to `new` destroy the content?
/// Returns the indicator bits when it did.
fn judge_change(base: &Profile, new: &Profile) -> Option<u16> {
    if base.is_empty() || base.encrypted_looking() {
        return None;
    }
    if new.encrypted_looking() {
        let mut bits = Indicator::ContentEncrypted.bit();
        if base.format.is_valid_known() && !new.format.is_valid_known() {
            bits |= Indicator::FormatBroken.bit();
        }
        if new.format.is_encrypted() {
            bits |= Indicator::EncryptedContainer.bit();
        }
        if new.armoured() {
            bits |= Indicator::ArmouredCiphertext.bit();
        }
        return Some(bits);
    }
    // (b) partial encryption with the head format kept.
    let (bf, nf) = (base.format, new.format);
    if bf.kind != nf.kind || !bf.is_valid_known() || !nf.valid || bf.packed || nf.packed {
        return None;
    }
    let hit = if bf.kind.holds_arbitrary_data() || bf.kind == Kind::Elf {
        // Databases and (uncompressed) DICOM keep no random payload in their first pages:
        // noise after a kept 1 KiB header counts too.
        let deep = matches!(bf.kind, Kind::Sqlite | Kind::Dicom);
        match (base.head(), new.head()) {
            (Some(b), Some(n)) => {
                (!b.body_random() && n.body_random())
                    || (deep && !b.body1k_random() && n.body1k_random())
            }
            _ => false,
        }
    } else {
        new.blocks().iter().any(|nb| {
            base.blocks()
                .iter()
                .find(|bb| bb.offset == nb.offset)
                .is_some_and(|bb| !bb.ciphertext_like() && nb.ciphertext_like())
        })
    };
    hit.then(|| Indicator::PartialEncryption.bit())
}
