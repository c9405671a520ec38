//! The vault: opening/recovery, preservation, eviction, statistics.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use rusqlite::{params, Connection};

use crate::fileio::{self, Stat};
use crate::index::{self, Entry};
use crate::reserve::{Reserve, ReserveStatus};
use crate::{
    ns_of, EvictReport, FileVersion, Limits, Method, Owner, Preserved, VaultError, VaultStats,
};

/// Prefix of half-written objects; removed when the vault is reopened.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

static SEQ: AtomicU64 = AtomicU64::new(0);

type Liveness = Box<dyn Fn(&Owner) -> bool + Send>;

/// A vault on one filesystem. See the crate docs.
pub struct Vault {
    pub(crate) dir: PathBuf,
    pub(crate) objects: PathBuf,
    objects_fd: File,
    pub(crate) quarantine: PathBuf,
    pub(crate) db: Connection,
    pub(crate) limits: Limits,
    pub(crate) reflink: bool,
    pub(crate) dev: u64,
    pub(crate) fs_root: PathBuf,
    /// Space given up when the filesystem is full (see [`crate::reserve`]).
    pub(crate) reserve: Reserve,
    liveness: Liveness,
    /// Exclusive `flock` on `DIR/lock` for the vault's lifetime: one user at a time, so
    /// that crash clean-up at open can never delete an object another process is writing.
    _lock: nix::fcntl::Flock<File>,
    /// Test hook run after each copied chunk (simulates a file changing mid-copy).
    #[cfg(test)]
    pub(crate) copy_hook: Option<Box<dyn FnMut(u64) + Send>>,
    /// Test hook: is the filesystem full, given the reserve? (simulates ENOSPC).
    #[cfg(test)]
    pub(crate) full_hook: Option<Box<dyn Fn(ReserveStatus) -> bool + Send>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .field("reflink", &self.reflink)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn ensure_private_dir(path: &Path) -> Result<(), VaultError> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(VaultError::io(path, e)),
    }
    let md = fs::symlink_metadata(path).map_err(|e| VaultError::io(path, e))?;
    if !md.is_dir() {
        return Err(VaultError::BadVaultDir {
            path: path.to_path_buf(),
            detail: "exists and is not a directory (or is a symlink); remove it".into(),
        });
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| VaultError::io(path, e))?;
    if nix::unistd::geteuid().is_root() && (md.uid() != 0 || md.gid() != 0) {
        std::os::unix::fs::chown(path, Some(0), Some(0)).map_err(|e| VaultError::io(path, e))?;
    }
    Ok(())
}

/// The mount point holding `dir`: walk up while the device stays the same.
fn fs_root_of(dir: &Path, dev: u64) -> PathBuf {
    let mut root = dir.to_path_buf();
    while let Some(parent) = root.parent() {
        match fs::metadata(parent) {
            Ok(md) if md.dev() == dev => root = parent.to_path_buf(),
            _ => break,
        }
    }
    root
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        fileio::errno(e),
        libc::EOPNOTSUPP | libc::EINVAL | libc::ENOTTY | libc::EXDEV | libc::ENOSYS | libc::EBADF
    )
}

fn now_ns() -> i64 {
    ns_of(SystemTime::now())
}

impl Vault {
    /// Open or create the vault in `dir` (created with mode 0700, owned by root when
    /// running as root). Reopening after a crash removes half-written objects, objects
    /// the index does not know, and index rows whose object is missing.
    pub fn open(dir: &Path, mut limits: Limits) -> Result<Vault, VaultError> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| VaultError::io(dir, e))?
                .join(dir)
        };
        if let Some(parent) = dir.parent() {
            if !parent.is_dir() {
                return Err(VaultError::BadVaultDir {
                    path: dir.clone(),
                    detail: format!("parent {} does not exist", parent.display()),
                });
            }
        }
        ensure_private_dir(&dir)?;
        let lock_path = dir.join("lock");
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| VaultError::io(&lock_path, e))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| VaultError::BadVaultDir {
                path: dir.clone(),
                detail: "in use by another process (a running `ward protect`? it restores \
                         automatically; stop it to run `ward restore` by hand)"
                    .into(),
            })?;
        let objects = dir.join("objects");
        let quarantine = dir.join("quarantine");
        ensure_private_dir(&objects)?;
        ensure_private_dir(&quarantine)?;
        let db_path = dir.join("index.db");
        let db = index::open(&db_path)?;
        let _ = fs::set_permissions(&db_path, fs::Permissions::from_mode(0o600));
        let objects_fd = File::open(&objects).map_err(|e| VaultError::io(&objects, e))?;
        let dev = fs::metadata(&dir)
            .map_err(|e| VaultError::io(&dir, e))?
            .dev();
        if limits.max_bytes == 0 {
            let sv = nix::sys::statvfs::fstatvfs(&objects_fd)
                .map_err(|e| VaultError::io(&dir, e.into()))?;
            limits.max_bytes = (sv.blocks() as u64).saturating_mul(sv.fragment_size() as u64) / 10;
        }
        let fs_root = fs_root_of(&dir, dev);
        let reserve =
            Reserve::open(&dir, limits.reserve_bytes).map_err(|e| VaultError::io(&dir, e))?;
        let mut v = Vault {
            _lock: lock,
            dir,
            objects,
            objects_fd,
            quarantine,
            db,
            limits,
            reflink: false,
            dev,
            fs_root,
            reserve,
            liveness: Box::new(|o: &Owner| o.is_alive()),
            #[cfg(test)]
            copy_hook: None,
            #[cfg(test)]
            full_hook: None,
        };
        v.recover()?;
        v.reflink = v.probe_reflink();
        if let Err(e) = v.replenish_reserve() {
            tracing::warn!("vault reserve in {}: {e}", v.dir.display());
        }
        let r = v.reserve.status();
        if r.target > 0 && r.held < r.target {
            tracing::warn!(
                "vault reserve on {}: only {} of {} MiB could be set aside (too little free \
                 space); it grows when space is freed",
                v.fs_root.display(),
                r.held >> 20,
                r.target >> 20
            );
        }
        tracing::debug!(dir = %v.dir.display(), reflink = v.reflink, max_bytes = v.limits.max_bytes, "vault open");
        Ok(v)
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The limits in force (with `max_bytes` resolved).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Does this filesystem support reflink (FICLONE)? Probed by [`Vault::open`].
    pub fn reflink_supported(&self) -> bool {
        self.reflink
    }

    /// Replace the "is this owner still running?" test used by eviction (default:
    /// [`Owner::is_alive`], which reads `/proc`). The agent may answer for whole
    /// lineages; tests use it to simulate exited owners.
    pub fn set_liveness(&mut self, f: impl Fn(&Owner) -> bool + Send + 'static) {
        self.liveness = Box::new(f);
    }

    /// Crash recovery: remove temp objects and unindexed objects, drop rows without
    /// an object.
    fn recover(&mut self) -> Result<(), VaultError> {
        let mut names = HashSet::new();
        let rd = fs::read_dir(&self.objects).map_err(|e| VaultError::io(&self.objects, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| VaultError::io(&self.objects, e))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                tracing::info!(object = %name, "vault recovery: removing half-written object");
                let _ = fs::remove_file(ent.path());
            } else {
                names.insert(name);
            }
        }
        let rows: Vec<(i64, String)> = {
            let mut st = self.db.prepare("SELECT id, object FROM entries")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut known = HashSet::new();
        for (id, object) in rows {
            if names.contains(&object) {
                known.insert(object);
            } else {
                tracing::warn!(id, object = %object, "vault recovery: object missing, dropping entry");
                index::delete_entry(&self.db, id)?;
            }
        }
        for name in names.difference(&known) {
            tracing::info!(object = %name, "vault recovery: removing unindexed object");
            let _ = fs::remove_file(self.objects.join(name));
        }
        Ok(())
    }

    fn probe_reflink(&self) -> bool {
        let a = self.objects.join(format!("{TMP_PREFIX}probe-a"));
        let b = self.objects.join(format!("{TMP_PREFIX}probe-b"));
        let ok = (|| -> io::Result<()> {
            fs::write(&a, b"ward reflink probe")?;
            let src = File::open(&a)?;
            let dst = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&b)?;
            ward_sys::xattr_clone::ficlone(dst.as_fd(), src.as_fd())
        })()
        .is_ok();
        let _ = fs::remove_file(&a);
        let _ = fs::remove_file(&b);
        ok
    }

    fn new_object_name(&self) -> String {
        format!(
            "{:x}-{:x}-{:x}",
            now_ns(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn check_file(&self, st: &Stat, path: &Path) -> Result<(), VaultError> {
        if !st.is_regular() {
            return Err(VaultError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        if st.dev != self.dev {
            return Err(VaultError::OtherFilesystem {
                path: path.to_path_buf(),
                vault: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// A content copy (copy or reflink) of exactly this version.
    fn find_copy(&self, v: &FileVersion) -> Result<Option<Entry>, VaultError> {
        Ok(
            index::entries_of_inode(&self.db, v.dev, v.ino, v.size, v.mtime_ns)?
                .into_iter()
                .find(|e| e.method.is_content_copy() && e.ctime_ns == v.ctime_ns),
        )
    }

    /// An entry that covers this version against unlink/rename: a content copy of it,
    /// or a hard link to this inode with unchanged size and mtime. (A link entry's ctime
    /// is not compared: linking, renaming and unlinking all change the inode's ctime.)
    fn find_cover(&self, v: &FileVersion) -> Result<Option<Entry>, VaultError> {
        Ok(
            index::entries_of_inode(&self.db, v.dev, v.ino, v.size, v.mtime_ns)?
                .into_iter()
                .find(|e| e.method == Method::Link || e.ctime_ns == v.ctime_ns),
        )
    }

    /// Does the vault hold a content copy (copy or reflink) of exactly this version
    /// (dev, ino, size, mtime, ctime)? Such a copy survives any later change, so the
    /// file needs no new preservation for any kind of open. A hard link does not count
    /// (it does not survive in-place writes): see [`Vault::has_link`].
    pub fn has_current(&self, st: &FileVersion) -> bool {
        self.find_copy(st).ok().flatten().is_some()
    }

    /// [`Vault::has_current`], and `owner` is already recorded against it: the agent
    /// can skip calling [`Vault::preserve_copy`] entirely. (If only `has_current` is
    /// true, calling `preserve_copy` is still needed to record the owner, so that a
    /// restore for that owner's lineage finds the entry; it copies nothing.)
    pub fn has_current_for(&self, st: &FileVersion, owner: Owner) -> bool {
        match self.find_copy(st) {
            Ok(Some(e)) => index::has_owner(&self.db, e.id, owner).unwrap_or(false),
            _ => false,
        }
    }

    /// Is this version covered against unlink and rename (a content copy of it, or a
    /// hard link to this unchanged inode)? Enough for a read-only open.
    pub fn has_link(&self, st: &FileVersion) -> bool {
        self.find_cover(st).ok().flatten().is_some()
    }

    /// Preserve the content of the file open on `fd` (a write-intent open): reflink
    /// where the filesystem supports it, else a streaming copy. Idempotent per version:
    /// if a content copy of this version is already held, only `owner` is recorded.
    pub fn preserve_copy(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &Path,
        owner: Owner,
    ) -> Result<Preserved, VaultError> {
        let mut st = fileio::fstat(fd).map_err(|e| VaultError::io(path, e))?;
        self.check_file(&st, path)?;
        let mut attempts = 0;
        let mut releases = 0;
        loop {
            let v = version(&st);
            if let Some(e) = self.find_copy(&v)? {
                index::add_owner(&self.db, e.id, owner)?;
                return Ok(Preserved {
                    id: e.id,
                    method: e.method,
                    bytes: e.charged,
                    reused: true,
                });
            }
            if !self.reflink && st.size > self.limits.max_file_bytes {
                return Err(VaultError::TooLarge {
                    path: path.to_path_buf(),
                    size: st.size,
                    max: self.limits.max_file_bytes,
                });
            }
            self.make_room(st.size)?;
            match self.write_and_index(fd, path, &st, owner) {
                Ok((id, method)) => {
                    return Ok(Preserved {
                        id,
                        method,
                        bytes: st.size,
                        reused: false,
                    })
                }
                Err(VaultError::Changed { .. }) if attempts < 2 => {
                    // Someone else wrote it meanwhile: preserve the new version.
                    attempts += 1;
                    st = fileio::fstat(fd).map_err(|e| VaultError::io(path, e))?;
                    self.check_file(&st, path)?;
                }
                // The filesystem is full: give up (part of) the reserve and try again;
                // the second time all of it.
                Err(e) if e.is_no_space() && releases < 2 => {
                    let need = match (releases, self.reflink) {
                        (0, true) => 0,
                        (0, false) => st.size,
                        _ => u64::MAX,
                    };
                    if self.release_reserve(need, path) == 0 {
                        return Err(e);
                    }
                    releases += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Copy (or reflink) the content of `fd` into a new object and index it.
    fn write_and_index(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &Path,
        st: &Stat,
        owner: Owner,
    ) -> Result<(i64, Method), VaultError> {
        let (object, method) = self.write_object(fd, path, st)?;
        let entry = Entry {
            id: 0,
            object,
            method,
            path: path.to_path_buf(),
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
            atime_ns: st.atime_ns,
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            xattrs: fileio::read_xattrs(fd),
            charged: st.size,
            preserved_ns: now_ns(),
        };
        let id = self.insert(&entry, owner)?;
        Ok((id, method))
    }

    /// The reserve's state (see [`crate::reserve`]).
    pub fn reserve(&self) -> ReserveStatus {
        self.reserve.status()
    }

    /// Grow the reserve back towards its target while that leaves at least the target
    /// free on the filesystem. Blocking (fallocate): call it from a worker thread.
    /// Returns the bytes added.
    pub fn replenish_reserve(&mut self) -> Result<u64, VaultError> {
        let grown = self
            .reserve
            .replenish()
            .map_err(|e| VaultError::io(self.reserve.path(), e))?;
        if grown > 0 {
            let s = self.reserve.status();
            tracing::info!(
                "vault reserve on {}: {} MiB held again (target {} MiB)",
                self.fs_root.display(),
                s.held >> 20,
                s.target >> 20
            );
        }
        Ok(grown)
    }

    /// Release reserve space for `need` bytes (`u64::MAX`: all of it) because writing
    /// for `path` found the filesystem full. Returns the bytes released.
    pub(crate) fn release_reserve(&self, need: u64, path: &Path) -> u64 {
        let t = std::time::Instant::now();
        let freed = self.reserve.release(need);
        if freed > 0 {
            tracing::warn!(
                "filesystem {} is full: released {} KiB of the vault reserve in {} us to keep {} \
                 ({} KiB left)",
                self.fs_root.display(),
                freed >> 10,
                t.elapsed().as_micros(),
                path.display(),
                self.reserve.status().held >> 10
            );
        }
        freed
    }

    /// Index an object already durable on disk; on failure remove the object.
    fn insert(&mut self, entry: &Entry, owner: Owner) -> Result<i64, VaultError> {
        match index::insert_entry(&mut self.db, entry, owner) {
            Ok(id) => Ok(id),
            Err(e) => {
                let _ = fs::remove_file(self.objects.join(&entry.object));
                Err(e.into())
            }
        }
    }

    /// Write `objects/<name>` with the content of `fd`: temp file, reflink or copy,
    /// fsync, check the source did not change, rename, fsync the directory.
    fn write_object(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &Path,
        st: &Stat,
    ) -> Result<(String, Method), VaultError> {
        #[cfg(test)]
        if self
            .full_hook
            .as_ref()
            .is_some_and(|f| f(self.reserve.status()))
        {
            return Err(VaultError::NoSpace {
                dir: self.dir.clone(),
            });
        }
        #[cfg(test)]
        let mut hook = self.copy_hook.take();
        #[cfg(test)]
        let hook_fn: &mut dyn FnMut(u64) = match hook.as_mut() {
            Some(h) => h.as_mut(),
            None => &mut |_| {},
        };
        #[cfg(not(test))]
        let hook_fn: &mut dyn FnMut(u64) = &mut |_| {};
        let name = self.new_object_name();
        let tmp = self.objects.join(format!("{TMP_PREFIX}{name}"));
        let r = self.write_object_at(fd, path, st, &tmp, &name, hook_fn);
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        #[cfg(test)]
        {
            self.copy_hook = hook;
        }
        r.map(|m| (name, m))
    }

    fn write_object_at(
        &self,
        fd: BorrowedFd<'_>,
        path: &Path,
        st: &Stat,
        tmp: &Path,
        name: &str,
        hook: &mut dyn FnMut(u64),
    ) -> Result<Method, VaultError> {
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
            .map_err(|e| self.io_error(path, e))?;
        let mut method = Method::Copy;
        if self.reflink {
            match ward_sys::xattr_clone::ficlone(out.as_fd(), fd) {
                Ok(()) => method = Method::Reflink,
                // Not clonable after all (e.g. nodatacow file): copy, within limits.
                Err(e) if is_unsupported(&e) && st.size > self.limits.max_file_bytes => {
                    return Err(VaultError::TooLarge {
                        path: path.to_path_buf(),
                        size: st.size,
                        max: self.limits.max_file_bytes,
                    })
                }
                Err(e) if is_unsupported(&e) => {}
                Err(e) => return Err(self.io_error(path, e)),
            }
        }
        if method == Method::Copy {
            fileio::copy_range(fd, out.as_fd(), st.size, hook).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    VaultError::Changed {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    }
                } else {
                    self.io_error(path, e)
                }
            })?;
        }
        out.sync_all().map_err(|e| self.io_error(path, e))?;
        drop(out);
        let after = fileio::fstat(fd).map_err(|e| self.io_error(path, e))?;
        if (after.size, after.mtime_ns, after.ctime_ns) != (st.size, st.mtime_ns, st.ctime_ns) {
            return Err(VaultError::Changed {
                path: path.to_path_buf(),
                detail: "size or timestamps changed during the copy".into(),
            });
        }
        fs::rename(tmp, self.objects.join(name)).map_err(|e| self.io_error(path, e))?;
        fileio::fsync_dir(&self.objects).map_err(|e| self.io_error(path, e))?;
        Ok(method)
    }

    fn io_error(&self, path: &Path, e: io::Error) -> VaultError {
        if fileio::errno(&e) == libc::ENOSPC || fileio::errno(&e) == libc::EDQUOT {
            VaultError::NoSpace {
                dir: self.dir.clone(),
            }
        } else {
            VaultError::io(path, e)
        }
    }

    /// Keep the inode of the file open on `fd` alive with a hard link in the vault (a
    /// read-only open): `linkat(fd, "", objects, name, AT_EMPTY_PATH)`. Costs no data.
    /// Idempotent per version: if this version is already covered, only `owner` is
    /// recorded.
    pub fn preserve_link(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &Path,
        owner: Owner,
    ) -> Result<Preserved, VaultError> {
        let st = fileio::fstat(fd).map_err(|e| VaultError::io(path, e))?;
        self.check_file(&st, path)?;
        if let Some(e) = self.find_cover(&version(&st))? {
            index::add_owner(&self.db, e.id, owner)?;
            return Ok(Preserved {
                id: e.id,
                method: e.method,
                bytes: e.charged,
                reused: true,
            });
        }
        let name = self.new_object_name();
        self.link_into_objects(fd, &st, &name, path)?;
        fileio::fsync_dir(&self.objects).map_err(|e| self.io_error(path, e))?;
        // Record the version as it is after the link (linking changed the ctime), so
        // that the next open of the same version finds it.
        let after = fileio::fstat(fd).map_err(|e| VaultError::io(path, e))?;
        let entry = Entry {
            id: 0,
            object: name,
            method: Method::Link,
            path: path.to_path_buf(),
            dev: after.dev,
            ino: after.ino,
            size: after.size,
            mtime_ns: after.mtime_ns,
            ctime_ns: after.ctime_ns,
            atime_ns: after.atime_ns,
            mode: after.mode,
            uid: after.uid,
            gid: after.gid,
            xattrs: fileio::read_xattrs(fd),
            charged: 0,
            preserved_ns: now_ns(),
        };
        let id = self.insert(&entry, owner)?;
        Ok(Preserved {
            id,
            method: Method::Link,
            bytes: 0,
            reused: false,
        })
    }

    fn link_into_objects(
        &self,
        fd: BorrowedFd<'_>,
        st: &Stat,
        name: &str,
        path: &Path,
    ) -> Result<(), VaultError> {
        let dirfd = Some(self.objects_fd.as_raw_fd());
        let r = nix::unistd::linkat(
            Some(fd.as_raw_fd()),
            "",
            dirfd,
            name,
            AtFlags::AT_EMPTY_PATH,
        );
        let r = match r {
            // Without CAP_DAC_READ_SEARCH AT_EMPTY_PATH fails with ENOENT: the
            // /proc/self/fd magic link works for anyone (and also fails with ENOENT
            // for a deleted file).
            Err(Errno::ENOENT) if st.nlink > 0 => nix::unistd::linkat(
                None,
                format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
                dirfd,
                name,
                AtFlags::AT_SYMLINK_FOLLOW,
            ),
            r => r,
        };
        match r {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) => Err(VaultError::Gone {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(self.io_error(path, e.into())),
        }
    }

    fn owners_gone(&self, id: i64) -> Result<bool, VaultError> {
        Ok(index::owners_of(&self.db, id)?
            .iter()
            .all(|o| !(self.liveness)(o)))
    }

    fn drop_entry(&self, e: &Entry) -> Result<(), VaultError> {
        // Row first: a crash between the two leaves an unindexed object, which the
        // next open removes; the reverse order could leave a row without its object.
        index::delete_entry(&self.db, e.id)?;
        match fs::remove_file(self.objects.join(&e.object)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(VaultError::io(self.objects.join(&e.object), err)),
        }
    }

    /// Evict unpinned copies of exited owners, older than the grace period, oldest
    /// first, until `need` more bytes fit in the budget.
    fn make_room(&mut self, need: u64) -> Result<(), VaultError> {
        let max = self.limits.max_bytes;
        let mut used = index::charged_total(&self.db)?;
        if used.saturating_add(need) <= max {
            return Ok(());
        }
        if need <= max {
            let cutoff = now_ns().saturating_sub(self.limits.grace.as_nanos() as i64);
            for e in index::all_entries(&self.db)? {
                if used.saturating_add(need) <= max {
                    break;
                }
                if e.charged == 0
                    || e.preserved_ns > cutoff
                    || index::is_pinned(&self.db, e.id)?
                    || !self.owners_gone(e.id)?
                {
                    continue;
                }
                self.drop_entry(&e)?;
                used -= e.charged.min(used);
            }
        }
        if used.saturating_add(need) <= max {
            Ok(())
        } else {
            Err(VaultError::Full { need, used, max })
        }
    }

    /// Periodic eviction: drop unpinned entries older than `retention` whose owners
    /// have all exited; then, if over budget (e.g. after the budget was lowered), drop
    /// unpinned copies oldest first — those of exited owners before those of live ones.
    /// Pinned entries (open incidents) are never dropped.
    pub fn evict(&mut self, now: SystemTime) -> Result<EvictReport, VaultError> {
        let mut rep = EvictReport::default();
        let cutoff = ns_of(now).saturating_sub(self.limits.retention.as_nanos() as i64);
        let count = |rep: &mut EvictReport, e: &Entry| {
            if e.method == Method::Link {
                rep.links_dropped += 1;
            } else {
                rep.copies_dropped += 1;
            }
            rep.bytes_freed += e.charged;
        };
        let mut live = Vec::new();
        for e in index::all_entries(&self.db)? {
            if index::is_pinned(&self.db, e.id)? {
                continue;
            }
            if e.preserved_ns < cutoff && self.owners_gone(e.id)? {
                self.drop_entry(&e)?;
                count(&mut rep, &e);
            } else {
                live.push(e);
            }
        }
        let max = self.limits.max_bytes;
        let mut used = index::charged_total(&self.db)?;
        if used > max {
            let mut gone = Vec::new();
            let mut alive = Vec::new();
            for e in live.into_iter().filter(|e| e.charged > 0) {
                if self.owners_gone(e.id)? {
                    gone.push(e);
                } else {
                    alive.push(e);
                }
            }
            for e in gone.into_iter().chain(alive) {
                if used <= max {
                    break;
                }
                self.drop_entry(&e)?;
                count(&mut rep, &e);
                used -= e.charged.min(used);
            }
        }
        Ok(rep)
    }

    /// Pin every entry preserved for `owners` to `incident`: eviction never drops them
    /// until [`Vault::release`]. Call it when a lineage is convicted (before killing it:
    /// its owners then count as exited). Returns the number of entries pinned.
    pub fn pin(&mut self, incident: &str, owners: &[Owner]) -> Result<usize, VaultError> {
        let tx = self.db.transaction()?;
        let mut n = 0;
        for o in owners {
            n += tx.execute(
                "INSERT OR IGNORE INTO pins(incident, entry_id)
                 SELECT ?1, entry_id FROM entry_owners WHERE pid = ?2 AND start = ?3",
                params![incident, o.pid as i64, o.start as i64],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Unpin the entries of an incident (after its restore is done and reviewed).
    pub fn release(&mut self, incident: &str) -> Result<(), VaultError> {
        self.db
            .execute("DELETE FROM pins WHERE incident = ?1", [incident])?;
        Ok(())
    }

    /// Entry counts and bytes charged.
    pub fn stats(&self) -> VaultStats {
        let q = |sql: &str| -> i64 {
            self.db
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .unwrap_or(0)
        };
        VaultStats {
            entries: q("SELECT COUNT(*) FROM entries") as usize,
            bytes: q("SELECT COALESCE(SUM(charged), 0) FROM entries") as u64,
            links: q("SELECT COUNT(*) FROM entries WHERE method = 'link'") as usize,
            copies: q("SELECT COUNT(*) FROM entries WHERE method = 'copy'") as usize,
            reflinks: q("SELECT COUNT(*) FROM entries WHERE method = 'reflink'") as usize,
            pinned: q("SELECT COUNT(DISTINCT entry_id) FROM pins") as usize,
            max_bytes: self.limits.max_bytes,
        }
    }
}

pub(crate) fn version(st: &Stat) -> FileVersion {
    FileVersion {
        dev: st.dev,
        ino: st.ino,
        size: st.size,
        mtime_ns: st.mtime_ns,
        ctime_ns: st.ctime_ns,
    }
}
