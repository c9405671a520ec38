//! The scratch directory: marker validation and the path-safety checks that
//! every write, rename and delete goes through.

use crate::{io_err, Manifest, SimError, MARKER, MARKER_VERSION};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// A validated scratch directory.
#[derive(Debug, Clone)]
pub struct Scratch {
    root: PathBuf,
    manifest: Manifest,
    files: BTreeSet<String>,
}

/// A pre-existing file that passed the safety checks.
#[derive(Debug)]
pub(crate) struct Checked {
    pub abs: PathBuf,
    pub meta: Metadata,
}

/// Validate a relative path: non-empty, only normal components, not the marker.
pub(crate) fn valid_rel(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty()
        && !rel.contains('\0')
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && rel != MARKER
}

fn not_scratch(dir: &Path, reason: impl Into<String>) -> SimError {
    SimError::NotScratch {
        dir: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Load and validate the marker of `dir`.
pub fn open_scratch(dir: &Path) -> Result<Scratch, SimError> {
    let root =
        fs::canonicalize(dir).map_err(|e| not_scratch(dir, format!("cannot open it: {e}")))?;
    if !root.is_dir() {
        return Err(not_scratch(dir, "it is not a directory"));
    }
    if root == Path::new("/") {
        return Err(not_scratch(dir, "it is the root directory"));
    }
    let marker = root.join(MARKER);
    let meta = fs::symlink_metadata(&marker)
        .map_err(|e| not_scratch(dir, format!("marker {MARKER} missing: {e}")))?;
    if meta.file_type().is_symlink() {
        return Err(not_scratch(dir, format!("marker {MARKER} is a symlink")));
    }
    if !meta.is_file() {
        return Err(not_scratch(
            dir,
            format!("marker {MARKER} is not a regular file"),
        ));
    }
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&marker)
        .map_err(|e| not_scratch(dir, format!("cannot read marker: {e}")))?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| not_scratch(dir, format!("cannot read marker: {e}")))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| not_scratch(dir, format!("marker is not valid JSON: {e}")))?;
    if manifest.version != MARKER_VERSION {
        return Err(not_scratch(
            dir,
            format!(
                "marker version {} is not supported (expected {MARKER_VERSION})",
                manifest.version
            ),
        ));
    }
    let mut files = BTreeSet::new();
    for rel in &manifest.files {
        if !valid_rel(rel) {
            return Err(not_scratch(
                dir,
                format!("marker lists an invalid path {rel:?}"),
            ));
        }
        files.insert(rel.clone());
    }
    Ok(Scratch {
        root,
        manifest,
        files,
    })
}

impl Scratch {
    /// Canonical path of the scratch directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// True if `rel` is a corpus file listed in the marker.
    pub fn is_corpus_file(&self, rel: &str) -> bool {
        self.files.contains(rel)
    }

    /// Lexically join a relative path to the root, rejecting anything odd.
    pub(crate) fn abs(&self, rel: &str) -> Result<PathBuf, SimError> {
        if !valid_rel(rel) {
            return Err(SimError::UnsafePath {
                path: PathBuf::from(rel),
                reason: "not a plain relative path inside the scratch directory".into(),
            });
        }
        Ok(self.root.join(rel))
    }

    /// The canonicalised parent of `rel` must be exactly root/parent(rel):
    /// this proves no component is a symlink and the file stays inside.
    pub(crate) fn check_parent(&self, rel: &str) -> Result<(), SimError> {
        let abs = self.abs(rel)?;
        let parent = abs.parent().unwrap_or(&self.root);
        let canon = fs::canonicalize(parent).map_err(io_err(parent))?;
        if canon != parent || !canon.starts_with(&self.root) {
            return Err(SimError::UnsafePath {
                path: abs,
                reason: format!(
                    "its directory resolves to {} (symlinked directory or outside {})",
                    canon.display(),
                    self.root.display()
                ),
            });
        }
        Ok(())
    }

    /// Check a pre-existing file before touching it. Returns `Ok(None)` when
    /// the path should be skipped (missing, symlink, not a regular file).
    pub(crate) fn check_existing(&self, rel: &str) -> Result<Option<Checked>, SimError> {
        let abs = self.abs(rel)?;
        let meta = match fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&abs)(e)),
        };
        if !meta.file_type().is_file() {
            return Ok(None);
        }
        match self.check_parent(rel) {
            Ok(()) => Ok(Some(Checked { abs, meta })),
            Err(SimError::UnsafePath { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Open a checked file (read-only or read-write) without following
    /// symlinks, verifying it is still the same inode.
    pub(crate) fn open_checked(&self, c: &Checked, write: bool) -> Result<File, SimError> {
        let f = OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&c.abs)
            .map_err(io_err(&c.abs))?;
        let m = f.metadata().map_err(io_err(&c.abs))?;
        if m.dev() != c.meta.dev() || m.ino() != c.meta.ino() || !m.is_file() {
            return Err(SimError::UnsafePath {
                path: c.abs.clone(),
                reason: "file was replaced while being checked".into(),
            });
        }
        Ok(f)
    }

    /// Create the directories leading to `rel` (each checked) and return the
    /// absolute path; the file itself must not exist yet.
    pub(crate) fn prepare_new(&self, rel: &str) -> Result<PathBuf, SimError> {
        let abs = self.abs(rel)?;
        if let Some(parent) = abs.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        self.check_parent(rel)?;
        match fs::symlink_metadata(&abs) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(abs),
            Ok(_) => Err(SimError::UnsafePath {
                path: abs,
                reason: "it already exists".into(),
            }),
            Err(e) => Err(io_err(&abs)(e)),
        }
    }

    /// Create a new file (O_EXCL, never follows or replaces anything).
    pub(crate) fn create_new(&self, rel: &str) -> Result<File, SimError> {
        let abs = self.prepare_new(rel)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&abs)
            .map_err(io_err(&abs))
    }

    /// True if nothing at all exists at `rel` (not even a dangling symlink).
    pub(crate) fn is_free(&self, rel: &str) -> bool {
        match self.abs(rel) {
            Ok(abs) => {
                matches!(fs::symlink_metadata(abs), Err(e) if e.kind() == ErrorKind::NotFound)
            }
            Err(_) => false,
        }
    }

    /// First free name among `base`, `base-2`, `base-3`, ... (suffix before `ext`).
    pub(crate) fn unique(&self, base: &str, ext: &str) -> String {
        let mut n = 1;
        loop {
            let rel = if n == 1 {
                format!("{base}{ext}")
            } else {
                format!("{base}-{n}{ext}")
            };
            if self.is_free(&rel) {
                return rel;
            }
            n += 1;
        }
    }

    /// Walk the tree in natural (sorted readdir) order without following
    /// symlinks and return every regular file, relative, `/`-separated.
    pub(crate) fn walk_all(&self) -> Result<Vec<String>, SimError> {
        let mut out = Vec::new();
        self.walk_dir(&self.root, "", &mut out)?;
        Ok(out)
    }

    /// Walk a subdirectory (relative) and return its regular files.
    pub(crate) fn walk_under(&self, rel_dir: &str) -> Result<Vec<String>, SimError> {
        let mut out = Vec::new();
        let abs = self.abs(rel_dir)?;
        match fs::symlink_metadata(&abs) {
            Ok(m) if m.file_type().is_dir() => {}
            _ => return Ok(out),
        }
        self.walk_dir(&abs, &format!("{rel_dir}/"), &mut out)?;
        Ok(out)
    }

    fn walk_dir(&self, abs: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), SimError> {
        let mut entries: Vec<_> = fs::read_dir(abs)
            .map_err(io_err(abs))?
            .collect::<Result<_, _>>()
            .map_err(io_err(abs))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let ft = e.file_type().map_err(io_err(e.path()))?; // does not follow symlinks
            let rel = format!("{prefix}{name}");
            if ft.is_dir() {
                self.walk_dir(&e.path(), &format!("{rel}/"), out)?;
            } else if ft.is_file() && rel != MARKER {
                out.push(rel);
            }
        }
        Ok(())
    }

    /// Corpus files (listed in the marker) present as regular files, in walk order.
    pub(crate) fn corpus_targets(&self) -> Result<Vec<String>, SimError> {
        Ok(self
            .walk_all()?
            .into_iter()
            .filter(|r| self.files.contains(r))
            .collect())
    }
}

/// SHA-256 (hex) of every corpus file listed in the marker that currently
/// exists as a regular file. Missing files (and symlinks) are omitted, so a
/// comparison with an earlier manifest reveals them.
pub fn manifest_hashes(dir: &Path) -> Result<BTreeMap<String, String>, SimError> {
    let s = open_scratch(dir)?;
    let mut out = BTreeMap::new();
    for rel in &s.manifest.files {
        let Some(c) = s.check_existing(rel)? else {
            continue;
        };
        let mut f = s.open_checked(&c, false)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(io_err(&c.abs))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        out.insert(rel.clone(), hex::encode(h.finalize()));
    }
    Ok(out)
}
