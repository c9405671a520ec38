//! The vault's space reserve: a preallocated file `DIR/reserve` that the vault gives up,
//! part by part, when a copy or a restore fails because the filesystem is full.
//!
//! Why: an attacker can first fill the filesystem so that no copy fits, then encrypt. The
//! reserve is space ward set aside while there was room; releasing it makes the copies of
//! the first damaged files possible again (the agent denies further opens of a lineage
//! with evidence once even the reserve is gone, see `ward-agent`'s permit module).
//!
//! Sizing: [`crate::Limits::reserve_bytes`], never more than 1/[`MAX_SHARE`] of the
//! filesystem. The reserve is (re)grown only while at least its target size stays free
//! for everyone else after growing, so it never itself fills a filesystem.
//! [`crate::Vault::replenish_reserve`] does that; the agent calls it from its vault
//! thread, never from the thread that answers permission events.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The reserve is at most 1/MAX_SHARE of the filesystem (5 %).
pub const MAX_SHARE: u64 = 20;
/// Released on top of what a copy needs (index journal, directory and inode blocks).
const SLACK: u64 = 1 << 20;
/// Releases are rounded up to this.
const STEP: u64 = 1 << 20;

/// How much space the reserve holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReserveStatus {
    /// Size it is kept at when space allows (0: no reserve).
    pub target: u64,
    /// Bytes held now.
    pub held: u64,
}

pub(crate) struct Reserve {
    path: PathBuf,
    /// `None`: the reserve is off (target 0, or the file could not be made).
    file: Option<File>,
    target: u64,
}

/// Free bytes for unprivileged users and total size of the filesystem holding `f`.
pub(crate) fn space_of(f: &File) -> io::Result<(u64, u64)> {
    let sv = nix::sys::statvfs::fstatvfs(f).map_err(io::Error::from)?;
    let frag = sv.fragment_size() as u64;
    Ok((
        (sv.blocks_available() as u64).saturating_mul(frag),
        (sv.blocks() as u64).saturating_mul(frag),
    ))
}

impl Reserve {
    /// Open (or create) `dir/reserve` for a target of `want` bytes, capped at
    /// 1/[`MAX_SHARE`] of the filesystem. `want == 0` turns the reserve off and deletes a
    /// file left by an earlier run. Does not grow it: see [`Reserve::replenish`].
    pub(crate) fn open(dir: &Path, want: u64) -> io::Result<Reserve> {
        let path = dir.join("reserve");
        if want == 0 {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            return Ok(Reserve {
                path,
                file: None,
                target: 0,
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        let (_, total) = space_of(&file)?;
        let target = want.min(total / MAX_SHARE);
        let r = Reserve {
            path,
            file: Some(file),
            target,
        };
        if r.held() > target {
            r.set_len(target)?;
        }
        Ok(r)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn status(&self) -> ReserveStatus {
        ReserveStatus {
            target: self.target,
            held: self.held(),
        }
    }

    fn held(&self) -> u64 {
        self.file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        match &self.file {
            Some(f) => f.set_len(len),
            None => Ok(()),
        }
    }

    /// Give up enough of the reserve for `need` more bytes (plus a little for metadata),
    /// or all of it if `need` is `u64::MAX`. Returns the bytes released (0: nothing held).
    pub(crate) fn release(&self, need: u64) -> u64 {
        let held = self.held();
        if held == 0 {
            return 0;
        }
        let want = need
            .saturating_add(SLACK)
            .div_ceil(STEP)
            .saturating_mul(STEP);
        let keep = held.saturating_sub(want);
        match self.set_len(keep) {
            Ok(()) => held - keep,
            Err(e) => {
                tracing::error!("vault reserve {}: releasing: {e}", self.path.display());
                0
            }
        }
    }

    /// Grow the reserve towards its target, by as much as leaves at least the target
    /// free on the filesystem after growing. Returns the bytes added.
    pub(crate) fn replenish(&self) -> io::Result<u64> {
        let Some(f) = &self.file else { return Ok(0) };
        let held = self.held();
        let deficit = self.target.saturating_sub(held);
        if deficit == 0 {
            return Ok(0);
        }
        let (free, _) = space_of(f)?;
        let grow = deficit.min(free.saturating_sub(self.target));
        if grow == 0 {
            return Ok(0);
        }
        let r = nix::fcntl::fallocate(
            f.as_raw_fd(),
            nix::fcntl::FallocateFlags::empty(),
            held as libc::off_t,
            grow as libc::off_t,
        );
        if let Err(e) = r {
            // Give back whatever a failed call left allocated.
            let _ = f.set_len(held);
            return Err(e.into());
        }
        Ok(grow)
    }
}
