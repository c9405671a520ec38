//! The vault worker: preservation and restore run on their own thread.
//!
//! Why a thread: creating files in a vault on a watched filesystem generates fanotify
//! permission events for ward itself. The main thread must stay free to answer them (it
//! allows ward's own events at once), so it never does vault I/O. It holds the opener's
//! permission event while this thread preserves the file, and answers when told it is done
//! (or after [`PRESERVE_TIMEOUT`], failing open).
//!
//! The thread also keeps each vault's space reserve ([`ward_vault::reserve`]): the vault
//! gives it up by itself when a copy or a restore finds the filesystem full; this thread
//! grows it back (fallocate, blocking) every [`RESERVE_EVERY`] while space allows.

use crate::plan::{count_unpreserved, covered_paths, merge};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use ward_vault::{Limits, Owner, Preserved, RestorePlan, RestoreReport, Vault, VaultError};

/// Longest an opener is held while its file is preserved; then it is allowed anyway
/// (and the miss is reported).
pub const PRESERVE_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the vault thread tries to grow a depleted reserve back.
pub const RESERVE_EVERY: Duration = Duration::from_secs(10);

/// Why a file could not be preserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Miss {
    pub message: String,
    pub kind: MissKind,
}

/// Kinds of [`Miss`]: whether any copy at all could be made of this file now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissKind {
    /// The filesystem is full even after the vault gave up its reserve.
    NoSpace,
    /// Reading the file or writing the copy failed (I/O error).
    CopyError,
    /// Not copied by policy or circumstance: over the vault budget or the per-file
    /// limit, not a regular file, changed or gone meanwhile, no vault, index trouble.
    Skipped,
}

impl Miss {
    fn of(e: &VaultError) -> Miss {
        let kind = if e.is_no_space() {
            MissKind::NoSpace
        } else if matches!(e, VaultError::Io { .. }) {
            MissKind::CopyError
        } else {
            MissKind::Skipped
        };
        Miss {
            message: e.to_string(),
            kind,
        }
    }

    fn skipped(message: String) -> Miss {
        Miss {
            message,
            kind: MissKind::Skipped,
        }
    }
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Work for the vault thread.
pub enum Job {
    /// Copy (reflink where possible) the file behind `fd` into the vault of `dev`.
    Preserve {
        id: u64,
        dev: u64,
        fd: OwnedFd,
        path: PathBuf,
        owner: Owner,
    },
    Restore {
        plan: RestorePlan,
        /// Files the engine saw damaged: any the vault cannot restore is reported lost.
        damaged: Vec<PathBuf>,
    },
    /// Keep the entries of a convicted lineage from eviction until its restore is done.
    Pin {
        incident: String,
        owners: Vec<Owner>,
    },
    Evict,
    /// Run this once everything queued before it is done (e.g. announce an incident
    /// only after the files its attacker deleted were copied).
    Then(Box<dyn FnOnce() + Send>),
}

/// What the vault thread reports back.
pub enum Done {
    Preserved {
        id: u64,
        result: Result<Preserved, Miss>,
    },
    Restored {
        incident: String,
        /// The report, or the error and how many damaged files are still not restored.
        result: Result<RestoreReport, (String, usize)>,
    },
}

/// Handle to the vault thread.
pub struct VaultWorker {
    tx: Option<Sender<Job>>,
    rx: Receiver<Done>,
    /// Readable when results are waiting (poll it).
    pub wake: UnixStream,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Vault directory per device.
    pub dirs: HashMap<u64, PathBuf>,
    /// The worker thread is gone (it panicked): preservation is off.
    dead: std::cell::Cell<bool>,
    /// See [`VaultWorker::woken`].
    woken: std::cell::Cell<bool>,
}

/// Name of the vault directory.
pub const VAULT_NAME: &str = ".ward-vault";

/// The vault directory for a protected path: at the root of its filesystem (outside every
/// protected tree, so copies of the share, recursive tools and Samba clients never meet
/// ward's files), or inside the protected path when that path *is* the filesystem's root
/// (then `ready` says so: hide it from Samba with `veto files = /.ward-vault/`).
pub fn vault_dir(protected: &Path) -> PathBuf {
    mount_root(protected).join(VAULT_NAME)
}

/// The topmost directory above `p` on the same filesystem.
pub fn mount_root(p: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let Ok(dev) = std::fs::metadata(p).map(|m| m.dev()) else {
        return p.to_path_buf();
    };
    let mut cur = p.to_path_buf();
    while let Some(parent) = cur.parent() {
        match std::fs::metadata(parent) {
            Ok(m) if m.dev() == dev && parent != cur => cur = parent.to_path_buf(),
            _ => break,
        }
    }
    cur
}

impl VaultWorker {
    /// Open one vault per filesystem (the first protected path on each holds it).
    pub fn start(paths: &[PathBuf], limits: Limits) -> Result<VaultWorker, String> {
        let mut vaults: HashMap<u64, Vault> = HashMap::new();
        let mut dirs = HashMap::new();
        for p in paths {
            let dev = std::os::unix::fs::MetadataExt::dev(
                &std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?,
            );
            if vaults.contains_key(&dev) {
                continue;
            }
            let dir = vault_dir(p);
            let v = Vault::open(&dir, limits.clone()).map_err(|e| e.to_string())?;
            let r = v.reserve();
            if r.target > 0 {
                tracing::info!(
                    "vault {}: {} MiB reserve held for a full filesystem (target {} MiB)",
                    dir.display(),
                    r.held >> 20,
                    r.target >> 20
                );
            }
            dirs.insert(dev, dir);
            vaults.insert(dev, v);
        }
        let (tx, jobs) = mpsc::channel::<Job>();
        let (done_tx, rx) = mpsc::channel::<Done>();
        let (wake_r, wake_w) = UnixStream::pair().map_err(|e| e.to_string())?;
        wake_r.set_nonblocking(true).map_err(|e| e.to_string())?;
        wake_w.set_nonblocking(true).map_err(|e| e.to_string())?;
        let thread = std::thread::Builder::new()
            .name("vault".into())
            .spawn(move || worker(vaults, jobs, done_tx, wake_w))
            .map_err(|e| e.to_string())?;
        Ok(VaultWorker {
            tx: Some(tx),
            rx,
            wake: wake_r,
            thread: Some(thread),
            dirs,
            dead: std::cell::Cell::new(false),
            woken: std::cell::Cell::new(true),
        })
    }

    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.tx {
            if tx.send(job).is_err() && !self.dead.replace(true) {
                tracing::error!(
                    "the vault worker has died: files are no longer preserved (restart ward)"
                );
            }
        }
    }

    /// Whether preservation still works (the worker thread is alive).
    pub fn alive(&self) -> bool {
        !self.dead.get() && self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Results waiting now.
    pub fn results(&self) -> Vec<Done> {
        use std::io::Read;
        let mut buf = [0u8; 256];
        if self.woken.replace(true) {
            while (&self.wake).read(&mut buf).is_ok_and(|n| n > 0) {}
        }
        self.rx.try_iter().collect()
    }

    /// Whether the last wait found [`VaultWorker::wake`] readable, told before the next
    /// [`VaultWorker::results`]: an empty wake socket is not read (results are still
    /// taken). Untold, it is read.
    pub fn woken(&self, woken: bool) {
        self.woken.set(woken);
    }

    /// Finish queued work and stop.
    pub fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VaultWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker(
    mut vaults: HashMap<u64, Vault>,
    jobs: Receiver<Job>,
    done: Sender<Done>,
    wake: UnixStream,
) {
    use std::io::Write;
    let notify = |d: Done| {
        let _ = done.send(d);
        let _ = (&wake).write(b"!");
    };
    let mut reserve_checked = Instant::now();
    loop {
        match jobs.recv_timeout(RESERVE_EVERY) {
            Ok(job) => run(&mut vaults, job, &notify),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if reserve_checked.elapsed() >= RESERVE_EVERY {
            reserve_checked = Instant::now();
            replenish(&mut vaults);
        }
    }
}

/// Grow depleted reserves back where space allows.
fn replenish(vaults: &mut HashMap<u64, Vault>) {
    for v in vaults.values_mut() {
        let r = v.reserve();
        if r.held < r.target {
            if let Err(e) = v.replenish_reserve() {
                tracing::warn!("vault reserve in {}: {e}", v.dir().display());
            }
        }
    }
}

fn run(vaults: &mut HashMap<u64, Vault>, job: Job, notify: &dyn Fn(Done)) {
    match job {
        Job::Preserve {
            id,
            dev,
            fd,
            path,
            owner,
        } => {
            let result = match vaults.get_mut(&dev) {
                None => Err(Miss::skipped(format!("no vault for device {dev}"))),
                Some(v) => {
                    use std::os::fd::AsFd;
                    v.preserve_copy(fd.as_fd(), &path, owner)
                        .map_err(|e| Miss::of(&e))
                }
            };
            drop(fd);
            notify(Done::Preserved { id, result });
        }
        Job::Restore { plan, damaged } => {
            let incident = plan.incident.clone();
            let mut total = RestoreReport::default();
            let mut err = None;
            let covered = covered_paths(vaults.values(), &plan);
            for v in vaults.values_mut() {
                match v.restore(&plan, &mut |_, _| {}) {
                    Ok(r) => merge(&mut total, r),
                    Err(e) => err = Some(e.to_string()),
                }
            }
            count_unpreserved(&mut total, &damaged, &plan, &covered);
            let result = match err {
                Some(e) => Err((
                    e,
                    damaged
                        .len()
                        .saturating_sub(total.files_restored + total.already_ok),
                )),
                None => Ok(total),
            };
            notify(Done::Restored { incident, result });
        }
        Job::Pin { incident, owners } => {
            for v in vaults.values_mut() {
                if let Err(e) = v.pin(&incident, &owners) {
                    tracing::warn!("vault: pinning the files of incident {incident}: {e}");
                }
            }
        }
        Job::Then(f) => f(),
        Job::Evict => {
            for v in vaults.values_mut() {
                if let Err(e) = v.evict(std::time::SystemTime::now()) {
                    tracing::warn!("vault eviction: {e}");
                }
            }
        }
    }
}
