//! # ward-lab — the lab: safe ransomware simulator, corpus, scratch filesystems, eval, bench, demo
//!
//! Nothing in the agent depends on this crate; it exercises the agent from outside
//! (`ward simulate`, `ward eval`, `ward bench`, `ward demo` and the integration tests).
//!
//! This crate backs `ward simulate`, `ward demo`, `ward eval` and the
//! integration tests. It produces **real** file activity — real processes
//! reading, encrypting (ChaCha20, AES via `openssl`), renaming and deleting
//! real files — but only inside a *scratch directory* that it created itself.
//!
//! * [`init_corpus`] creates a scratch directory holding a realistic,
//!   deterministic (from a seed) hospital file share: letters, notes, CSV
//!   tables, `.docx`/`.xlsx` documents, text and scanned PDFs, PNG images,
//!   DICOM CT/MR images, SQLite databases, logs and already-compressed
//!   `.gz`/`.zip` files, in nested directories. It writes a marker file
//!   [`MARKER`] (`{"version":1,"seed":S,"files":[...]}`) listing every file.
//! * [`run`] executes an attack family or a benign look-alike workload
//!   (see [`profiles`]) against a scratch directory.
//! * [`child_one`] is the body of one fork-per-file child process.
//! * [`manifest_hashes`] hashes the corpus for byte-identical recovery checks.
//!
//! ## Safety rules (enforced in code, covered by tests)
//! 1. [`run`] and [`child_one`] refuse a directory without a valid marker
//!    ([`SimError::NotScratch`]); a marker that is a symlink is invalid.
//! 2. Only files listed in the marker, and files that the running profile
//!    created itself inside the directory, are ever modified or deleted.
//! 3. Before a path is touched it is checked with `symlink_metadata` (symlinks
//!    are never followed and are skipped), it must be a regular file, and the
//!    canonicalised parent directory must equal the expected directory inside
//!    the canonicalised scratch root (so no symlinked directory is ever
//!    traversed). Files are opened with `O_NOFOLLOW` and the opened inode is
//!    compared with the checked one; new files are created with `O_EXCL`.
//! 4. [`init_corpus`] refuses `/`, symlinks, and existing non-empty directories.
//! 5. External tools (openssl, gzip, tar, git, ...) only ever receive explicit
//!    paths inside the scratch directory. A missing tool yields
//!    [`SimError::MissingTool`] naming the Debian package to install.
//!
//! ## Profiles
//! Attacks (real ChaCha20 with a random key per run, or real openssl/gpg):
//! `inplace`, `new-then-delete` (WannaCry-like `.WNCRY` + `README_RESTORE.txt`
//! notes), `openssl`, `intermittent` (first 4 KiB), `fork-per-file`,
//! `rename-first`, `truncate-rewrite`, `header-preserving`,
//! `intermittent-blocks` (4 KiB every 64 KiB), `armoured` (base64),
//! `multi-threaded` (4 threads), `slow` (one file every 3 s), `mmap`, `gpg`,
//! `archive-then-wipe`.
//! Benign look-alikes: `gzip`, `tar`, `cp`, `git`, `sqlite`, `random-files`,
//! `zstd`, `xz`, `zip`, `encrypted-backup`, `rsync`, `editor-save`,
//! `logrotate`, `mass-delete`, `image-reencode`, `dicom-reencode`,
//! `one-file-encrypt`. See [`profiles`] for one-line descriptions.
//!
//! Attacks walk the tree in natural order (sorted `readdir`, symlinked
//! directories never entered), only pick files listed in the marker (so they
//! skip the marker and their own outputs), stop after
//! [`RunOptions::max_files`] and sleep [`RunOptions::delay`] between files.
//! Progress goes to stderr; [`run`] returns a [`RunReport`].
//!
//! ## Fork-per-file children
//! The `fork-per-file` profile spawns `EXE simulate __child --dir DIR REL` once
//! per file, where `EXE` is [`RunOptions::exe`]. The CLI routes that hidden
//! command to [`child_one`], which writes `REL.locked` (ChaCha20 ciphertext with
//! a small ransomware-style header) and then deletes `REL`. The crate ships a
//! tiny test helper binary, `ward-sim-child`, that accepts the same arguments.

#![deny(unsafe_code)]

pub mod bench;
pub mod cli;
mod corpus;
pub mod demo;
pub mod demo_smb;
pub mod driver;
pub mod eval;
pub mod floors;
pub mod formats;
mod profiles;
mod scratch;
pub mod scratchfs;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use profiles::{
    child_one, first_damage_in, mark_first_damage, profiles, run, FIRST_DAMAGE_TAG,
};
pub use scratch::{manifest_hashes, open_scratch, Scratch};

/// Name of the marker file at the root of every scratch directory.
pub const MARKER: &str = ".ward-sim.json";

/// Current marker format version.
pub const MARKER_VERSION: u32 = 1;

/// Default number of corpus files used by the CLI.
pub const DEFAULT_FILES: usize = 200;

/// Content of the marker file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub seed: u64,
    /// Corpus files, relative to the scratch directory, `/`-separated, sorted.
    pub files: Vec<String>,
}

/// Whether a profile is an attack or a benign look-alike workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Attack,
    Benign,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Attack => "attack",
            Kind::Benign => "benign",
        })
    }
}

/// Description of one simulation profile.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProfileInfo {
    pub name: &'static str,
    pub kind: Kind,
    pub description: &'static str,
}

/// Options for [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Pause between files (default 0). The `slow` profile uses at least 3 s.
    pub delay: Duration,
    /// Stop after this many files (victims for attacks, inputs for benign work).
    pub max_files: Option<usize>,
    /// Path of the `ward` binary, used by `fork-per-file` for its children.
    pub exe: PathBuf,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            delay: Duration::ZERO,
            max_files: None,
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ward")),
        }
    }
}

/// What a profile run did. Paths are relative to the scratch directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub profile: String,
    pub kind: Kind,
    /// Pre-existing files that were modified, replaced, renamed or deleted.
    pub files_touched: Vec<String>,
    /// Files created by the run that still exist at its end.
    pub files_created: Vec<String>,
    /// Pre-existing files that no longer exist at the end of the run.
    pub files_deleted: Vec<String>,
    /// Child processes spawned (external tools, fork-per-file children).
    pub processes_spawned: usize,
    /// Bytes written by the simulator itself (not counting external tools).
    pub bytes_written: u64,
    pub duration_ms: u64,
    /// Human-readable remarks (skipped files, transient files, ...).
    pub notes: Vec<String>,
}

/// Errors from the simulator. Messages say what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{dir} is not a ward-sim scratch directory ({reason}); the simulator only works inside a directory created by `ward simulate` corpus initialisation (ward_lab::init_corpus), which writes the marker file {MARKER}")]
    NotScratch { dir: PathBuf, reason: String },

    #[error("refusing to create a corpus in {dir}: {reason}; choose a new or empty directory")]
    Refused { dir: PathBuf, reason: String },

    #[error("unknown simulation profile `{0}`; run `ward simulate --list` to see the available profiles")]
    UnknownProfile(String),

    #[error("the `{tool}` program is required for this profile but was not found in PATH; install it with `apt-get install {package}`")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },

    #[error("`{command}` failed: {detail}")]
    ToolFailed { command: String, detail: String },

    #[error("refusing to touch {path}: {reason}")]
    UnsafePath { path: PathBuf, reason: String },

    #[error("profile `{profile}` found nothing to work on in {dir}: {reason}; re-create the corpus with a fresh directory")]
    NothingToDo {
        profile: String,
        dir: PathBuf,
        reason: String,
    },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("SQLite error on {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("invalid file format in {path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SimError {
    let path = path.into();
    move |source| SimError::Io { path, source }
}

/// Create `dir` (it must not exist, or be empty), write a realistic
/// hospital-share corpus of `files` files (deterministic from `seed`) and the
/// marker listing them.
pub fn init_corpus(dir: &Path, files: usize, seed: u64) -> Result<Manifest, SimError> {
    corpus::init_corpus(dir, files, seed)
}

/// Convenience: the set of corpus files with their SHA-256, see [`manifest_hashes`].
pub type Hashes = BTreeMap<String, String>;
