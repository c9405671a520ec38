//! # ward-vault: preserve files before damage, restore them after an incident
//!
//! ward's promise is *zero files lost*: detection freezes an attacking lineage after a
//! handful of files, and the vault makes those few files whole again.
//!
//! ## Where preservation hooks in
//!
//! The agent holds a process in a fanotify permission event (`FAN_OPEN_PERM`, or a
//! pre-content event before the first write) when a lineage it does not trust opens a
//! pre-existing file. Before it allows the open, a worker thread of the agent (never the
//! thread that answers permission events: the vault itself creates files on the watched
//! filesystem, which raises permission events the main thread must answer) calls
//!
//! * [`Vault::preserve_copy`] for a **write-intent** open (`O_WRONLY`/`O_RDWR`/`O_TRUNC`,
//!   or a pre-content event): the *content* must be kept, because the process is about to
//!   change the inode in place. The vault makes a **reflink** (`FICLONE`: btrfs, xfs with
//!   reflink; instant and free until the original diverges) and falls back to a streaming
//!   **copy** (`copy_file_range`, then `pread`/`pwrite`) elsewhere (ext4).
//! * [`Vault::preserve_link`] for a **read-only** open: a hard link
//!   `linkat(event_fd, "", objects/, name, AT_EMPTY_PATH)` (root has
//!   `CAP_DAC_READ_SEARCH`). It costs no data and no time, yet keeps the inode alive
//!   when the file is later **unlinked or renamed over**, the two operations that raise
//!   no fanotify event we could block on (the classic *read original, write
//!   `x.WNCRY`, delete original* and *write `x.tmp`, rename over `x`* patterns).
//!   A hard link is useless against in-place writes; those go through a write-intent
//!   open (or a pre-content event) and thus through `preserve_copy`.
//!
//!   **The agent (`ward protect`) does not use links**: a link raises the file's link
//!   count, and tools such as gzip then refuse to touch the file ("has 1 other link"),
//!   which breaks honest work. Instead it keeps the read-only open's *descriptor*; when
//!   the file is deleted or renamed over by a suspicious lineage, it calls
//!   `preserve_copy` on that descriptor (a deleted inode stays readable while a
//!   descriptor is open). `preserve_link` remains for callers that can afford it.
//!
//! Preservation is per **file version** (dev, ino, size, mtime, ctime): a version held
//! once is not copied again; a second owner is merely recorded against it
//! ([`Vault::has_current`], [`Vault::has_current_for`]).
//!
//! ## Store
//!
//! One vault per filesystem, on that filesystem (links and reflinks cannot cross
//! filesystems), e.g. `<protected dir>/.ward-vault`, mode 0700, owned by root:
//!
//! * `index.db` — SQLite in WAL mode with `synchronous=FULL`: every committed
//!   preservation survives power loss. A preservation commits one small WAL append +
//!   fsync; `NORMAL` would save that fsync but a power cut could then forget an entry
//!   whose object is on disk, and crash recovery would delete the object — a silent loss
//!   of exactly the data the vault exists for.
//! * `objects/` — one file per entry: copies/reflinks (0600, root) and hard links (the
//!   original inode). Objects are written as `.tmp-*`, fsynced, renamed to their final
//!   name, the directory fsynced, and only then indexed. Reopening after a crash deletes
//!   `.tmp-*` files and objects the index does not know, and drops index rows whose
//!   object is missing.
//! * `quarantine/<incident>/…` — what the attacker created, moved aside by restore.
//!
//! **Budget and retention** ([`Limits`]): copies and reflinks are charged their size
//! (a reflink becomes real space exactly when the original is overwritten — the attack
//! case), links are charged nothing. When a copy would exceed the budget the vault first
//! evicts, oldest first, unpinned entries whose owners have all exited and that are older
//! than the grace period; if that does not make room it refuses with
//! [`VaultError::Full`] rather than evict entries of live, unjudged processes (which may
//! be an attack in progress). Files above `max_file_bytes` are not copied on filesystems
//! without reflink ([`VaultError::TooLarge`]). [`Vault::evict`] drops entries older than
//! `retention` whose owners are gone, and trims copies beyond the budget. Entries pinned
//! for an open incident ([`Vault::pin`], done by [`Vault::restore`]) are never dropped
//! until [`Vault::release`].
//!
//! **Reserve** ([`reserve`], [`Limits::reserve_bytes`]): a preallocated `DIR/reserve` (at
//! most 5 % of the filesystem) held against an attacker who first fills the filesystem so
//! that no copy fits. When a copy, a restore or the index finds the filesystem full, the
//! vault releases what that write needs (plus 1 MiB), then, if still full, all of it, and
//! retries. [`Vault::replenish_reserve`] grows it back while its target stays free.
//!
//! ## Restore semantics
//!
//! [`Vault::restore`] takes a [`RestorePlan`]: the convicted lineage's owners, the
//! renames it did (in order), the paths it created (as created), and the containment
//! time.
//!
//! * **Which entries**: every entry preserved on behalf of one of the plan's owners.
//! * **Original path**: the entry's path mapped back through the plan's renames, newest
//!   first, following chains and directory renames (`a` → `a.locked` → `b/a.locked`
//!   maps back to `a`). Renames whose source the lineage itself created (`a.tmp` →
//!   `a`, rename-over) are not followed back: the entry at `a` is the original `a`.
//! * **Which version**: with several entries for one original path, the **oldest** —
//!   the content before the lineage touched it. A link entry whose inode changed after
//!   preservation (size or mtime differ from those recorded) no longer holds that
//!   content; the oldest intact entry is used instead and the detail says so. With no
//!   intact entry the file counts as **lost**.
//! * **Already fine**: if the file at the original path has the preserved content (size,
//!   then a streaming byte compare) it is `already_ok` (mode/owner are repaired if they
//!   differ).
//! * **Restore**: otherwise the preserved content is written to a temporary file in the
//!   same directory (reflink when possible), then owner, mode, xattrs and atime/mtime are
//!   set, it is fsynced and renamed over the original path (atomic), and the directory
//!   is fsynced.
//! * **Conflict**: if the current file was changed after containment (mtime >
//!   `contained_at`) and differs, it was changed by someone else (the lineage was
//!   frozen): it is kept, and the preserved version is written next to it as
//!   `<name>.ward-restored-<incident>` and listed in `conflicts`.
//! * **Renamed but never preserved**: a pre-existing file the lineage only renamed (no
//!   entry) is renamed back when its original path is free.
//! * **Quarantine**: every created path (followed through the renames) and every rename
//!   target that still exists and is not an original path being restored is moved to
//!   `quarantine/<incident>/<path relative to the filesystem root>`.
//! * **Idempotent, resumable**: the plan, each step's outcome and the restore state
//!   (pending / in progress / done) are kept in the index. Re-running a restore (after a
//!   `kill -9`, or by hand) redoes only what is not yet in place and reports the rest as
//!   `already_ok` / already quarantined; [`Vault::unfinished_restores`] lists what to
//!   resume on start-up and [`Vault::restore_status`] gives cumulative counts.
//!
//! ## What is NOT covered
//!
//! * `unlink(2)`, `rename(2)` over, or `truncate(2)` *by path* of a file the lineage never
//!   opened: no open, so no preservation (pre-content events cover `truncate(2)` where
//!   the agent uses them; unlink/rename give no blocking event at all).
//! * Writes through file descriptors opened before ward started (no open event).
//! * Opens through io_uring `IORING_OP_OPENAT` in kernels/configurations where they
//!   bypass fanotify permission events.
//! * A link entry is only as good as the inode it pins: if the file is later written in
//!   place without a write-intent open being seen (e.g. an fd opened before ward), the
//!   original content is gone and restore reports the file as lost.
//! * The content must be preserved before the lineage's first change: entries are
//!   assumed to hold pre-existing content (the agent only preserves files that existed
//!   before the lineage touched them).
//!
//! It has no `unsafe` code: FICLONE and the fd xattr calls are in `ward-sys`.

#![forbid(unsafe_code)]

mod fileio;
mod index;
pub mod reserve;
mod restore;
#[cfg(test)]
mod tests;
mod vault;

use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use reserve::ReserveStatus;
pub use restore::{Action, ActionKind};
pub use vault::Vault;

/// Size and time limits of a vault.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Budget for copies and reflinks, in bytes. 0 = 10 % of the filesystem's size,
    /// computed by [`Vault::open`].
    pub max_bytes: u64,
    /// Entries whose owners have all exited are dropped after this long. Default 24 h.
    pub retention: Duration,
    /// Larger files are not copied on a filesystem without reflink. Default 1 GiB.
    pub max_file_bytes: u64,
    /// To make room, only entries older than this (and whose owners have exited) are
    /// evicted: the engine may still be judging a lineage that just exited. Default 10 min.
    pub grace: Duration,
    /// Space set aside on the filesystem and given up when a copy or a restore finds it
    /// full (see [`reserve`]), in bytes, at most 5 % of the filesystem. 0 (the default
    /// here) = no reserve.
    pub reserve_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 0,
            retention: Duration::from_secs(24 * 3600),
            max_file_bytes: 1 << 30,
            grace: Duration::from_secs(600),
            reserve_bytes: 0,
        }
    }
}

/// The process on whose behalf a file was preserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Process start time: field 22 (`starttime`, clock ticks since boot) of
    /// `/proc/PID/stat`, so that a reused pid is a different owner.
    pub start: u64,
}

impl Owner {
    /// Is this very process (pid and start time) still running? Reads `/proc`.
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let Some(close) = stat.rfind(')') else {
            return false;
        };
        // After the command name: field 3 (state) is index 0, starttime (22) index 19.
        stat[close + 1..]
            .split_whitespace()
            .nth(19)
            .and_then(|s| s.parse::<u64>().ok())
            == Some(self.start)
    }
}

/// How an entry's content is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// A `FICLONE` clone: a copy sharing extents with the original.
    Reflink,
    /// A byte copy.
    Copy,
    /// A hard link to the original inode.
    Link,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Reflink => "reflink",
            Method::Copy => "copy",
            Method::Link => "link",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Method> {
        match s {
            "reflink" => Some(Method::Reflink),
            "copy" => Some(Method::Copy),
            "link" => Some(Method::Link),
            _ => None,
        }
    }

    /// Does this entry hold its content independently of the original inode?
    pub fn is_content_copy(self) -> bool {
        !matches!(self, Method::Link)
    }
}

/// Result of a preservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preserved {
    /// Index id of the entry.
    pub id: i64,
    pub method: Method,
    /// Bytes charged to the budget by this entry (0 for links).
    pub bytes: u64,
    /// The version was already held: only the owner was recorded, nothing was copied.
    pub reused: bool,
}

/// Identity of one version of a file: the key for "preserve each version once".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileVersion {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl FileVersion {
    /// The version of the file open on `fd` (one `fstat`).
    pub fn of(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<FileVersion> {
        let st = fileio::fstat(fd)?;
        Ok(FileVersion {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
        })
    }
}

/// What to undo after an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePlan {
    /// Incident id (used in quarantine paths and conflict names; `/` and other
    /// unusual characters are replaced by `_` there).
    pub incident: String,
    /// Every process of the convicted lineage.
    pub owners: Vec<Owner>,
    /// Renames the lineage did, `(from, to)`, in the order it did them.
    pub renames: Vec<(PathBuf, PathBuf)>,
    /// Paths the lineage created, as they were named when created.
    pub created: Vec<PathBuf>,
    /// When the lineage was frozen: later changes are someone else's.
    pub contained_at: SystemTime,
}

/// Outcome of one [`Vault::restore`] run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    pub incident: String,
    /// Files written back (or renamed back) by this run, conflicts included.
    pub files_restored: usize,
    /// Files whose pre-attack content the vault does not hold.
    pub files_lost: usize,
    /// Paths moved into quarantine by this run.
    pub files_quarantined: usize,
    /// Paths found already in quarantine (earlier run).
    pub already_quarantined: usize,
    /// Original paths kept as they are (changed after containment); the preserved
    /// version is next to each as `<name>.ward-restored-<incident>`.
    pub conflicts: Vec<PathBuf>,
    /// Files that already had their preserved content.
    pub already_ok: usize,
    /// Steps that failed with an error (see `details`); the run can be repeated.
    pub failed: usize,
    /// Per-path notes: what was done and why.
    pub details: Vec<(PathBuf, String)>,
}

/// State of an incident's restore, kept in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreState {
    /// Planned (entries pinned), not started.
    Pending,
    /// Started but not finished (ward may have been killed): run it again.
    InProgress,
    /// Finished (individual steps may have failed: see `failed`).
    Done,
}

impl RestoreState {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreState::Pending => "pending",
            RestoreState::InProgress => "in-progress",
            RestoreState::Done => "done",
        }
    }

    pub(crate) fn parse(s: &str) -> RestoreState {
        match s {
            "done" => RestoreState::Done,
            "in-progress" => RestoreState::InProgress,
            _ => RestoreState::Pending,
        }
    }
}

/// Cumulative restore status of an incident over all runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStatus {
    pub incident: String,
    pub state: RestoreState,
    pub runs: u32,
    /// Steps of the plan (files to restore + paths to quarantine).
    pub steps: usize,
    pub files_restored: usize,
    pub files_lost: usize,
    pub files_quarantined: usize,
    pub conflicts: usize,
    pub already_ok: usize,
    pub failed: usize,
}

/// Counts returned by [`Vault::evict`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvictReport {
    pub links_dropped: usize,
    pub copies_dropped: usize,
    pub bytes_freed: u64,
}

/// Counts returned by [`Vault::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultStats {
    pub entries: usize,
    /// Bytes charged to the budget (copies and reflinks).
    pub bytes: u64,
    pub links: usize,
    pub copies: usize,
    pub reflinks: usize,
    pub pinned: usize,
    pub max_bytes: u64,
}

/// Errors of the vault. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "vault full: preserving {need} bytes would exceed the budget ({used} of {max} bytes \
         used, nothing evictable); raise the vault budget (max_bytes) or release finished incidents"
    )]
    Full { need: u64, used: u64, max: u64 },
    #[error(
        "filesystem full while writing to the vault at {dir}: free space on this filesystem \
         or lower the vault budget"
    )]
    NoSpace { dir: PathBuf },
    #[error(
        "{path}: {size} bytes is above the per-file limit of {max} bytes on a filesystem \
         without reflink; raise max_file_bytes (ward config: vault_max_file_mib) or use btrfs/xfs (reflink) for this data"
    )]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("{path}: not a regular file; only regular files are preserved")]
    NotRegular { path: PathBuf },
    #[error(
        "{path}: on another filesystem than the vault at {vault}; each filesystem needs its \
         own vault"
    )]
    OtherFilesystem { path: PathBuf, vault: PathBuf },
    #[error("{path}: changed or truncated while being preserved: {detail}")]
    Changed { path: PathBuf, detail: String },
    #[error("{path}: deleted before it could be linked into the vault")]
    Gone { path: PathBuf },
    #[error("vault directory {path}: {detail}")]
    BadVaultDir { path: PathBuf, detail: String },
    #[error("no restore plan stored for incident {0}")]
    UnknownIncident(String),
    #[error("vault index: {0} (the index is kept in index.db of the vault directory)")]
    Index(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl VaultError {
    /// Did this fail because the filesystem (or the quota) is full?
    pub fn is_no_space(&self) -> bool {
        match self {
            VaultError::NoSpace { .. } => true,
            VaultError::Index(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            VaultError::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::ENOSPC) | Some(libc::EDQUOT)
            ),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> VaultError {
        VaultError::Io {
            path: path.into(),
            source,
        }
    }
}

pub(crate) fn ns_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

pub(crate) fn time_of(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}
