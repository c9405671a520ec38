//! Preservation: keeping a file's content before an untrusted process can damage it.
//!
//! Trust only spares preservation, never detection: configured programs (package
//! managers) and, if enabled, long-running processes are trusted while their lineage shows
//! no evidence. Copies are made on the vault thread; the opener waits for its copy (see
//! [`crate::permit`]). Files an untrusted process only read are kept as held descriptors,
//! copied only if a suspicious lineage deletes or replaces them ("doomed" files, decided
//! once the deleter's other events are in).

use crate::agent::{Agent, Held, CLK_TCK, DOOMED_GRACE, HELD_FOR, MAX_OWNERS};
use crate::permit::CopyOutcome;
use crate::vaultd::{Done, Job, PRESERVE_TIMEOUT};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;
use ward_engine::ProcId;
use ward_model::{AgentEvent, RestoreFailed, RestoreStatus, Restored};
use ward_sensor::{EventSource, PermRequest};
use ward_vault::Owner;

/// How long after a copy a lineage's own later versions of that file need no new copy
/// (see [`Agent::own_version`]): at most one copy per file per lineage in this time.
pub(crate) const OWN_VERSIONS_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

impl<S: EventSource> Agent<S> {
    /// Does this open need the file's current content kept? Untrusted opener, non-empty
    /// file on a filesystem with a vault, and not already kept for this lineage.
    pub(crate) fn needs_preservation(&mut self, p: &PermRequest, write: bool) -> bool {
        let Some(vault) = self.vault.as_ref().filter(|v| v.alive()) else {
            return false;
        };
        let Some(st) = p.stat else { return false };
        if st.size == 0 || !vault.dirs.contains_key(&st.dev) || self.trusted(p.proc) {
            return false;
        }
        if !write {
            return !self.held.contains_key(&(st.dev, st.ino));
        }
        // Each version once per lineage.
        let top = self.lineage_top(p.proc);
        !matches!(
            self.preserved.get(&(st.dev, st.ino)),
            Some(&(size, mtime, who, _)) if size == st.size && mtime == st.mtime_ns && who == top
        )
    }

    /// `proc` closed `key` (at `path`) after writing it (see [`OWN_VERSIONS_FOR`]). When
    /// the vault already holds the version from before this lineage's first write, what
    /// the lineage wrote since is its
    /// own: a restore only ever needs the content from before its first write, so its next
    /// write-open of the file needs no new copy. Without this, a program that rewrites
    /// the same large file over and over (an image editor, a block-updating database
    /// tool) fills the vault with its own versions until nothing is left for the next
    /// attack's victims. A write by anybody else changes the file's mtime again, so the
    /// next write-open of this lineage copies that version.
    pub(crate) fn own_version(&mut self, proc: ProcId, key: (u64, u64), path: &Path) {
        let Some(entry) = self.preserved.get(&key).copied() else {
            return;
        };
        // Refreshed now and then, so a lineage that lives for days (an smbd session) keeps a
        // recent fallback should its first copy expire.
        if entry.2 != self.lineage_top(proc) || entry.3.elapsed() >= OWN_VERSIONS_FOR {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(path) {
            Ok(m) if (m.dev(), m.ino()) == key => {
                let mtime = m.mtime() * 1_000_000_000 + m.mtime_nsec();
                self.preserved
                    .insert(key, (m.size(), mtime, entry.2, entry.3));
            }
            _ => {}
        }
    }

    /// A write-intent open let through without a copy (see `Agent::unpreserved`).
    pub(crate) fn note_unpreserved(&mut self, p: &PermRequest) {
        let (Some(st), Some(path)) = (p.stat, p.path.clone()) else {
            return;
        };
        if self.unpreserved.len() >= MAX_OWNERS {
            self.unpreserved.clear();
        }
        let mut chain = self.engine.lineage(p.proc);
        if chain.is_empty() {
            chain.push(p.proc);
        }
        self.unpreserved
            .insert((st.dev, st.ino), (path, chain, false));
    }

    /// `proc` closed `key` after writing it: if `key` was let through without a copy to
    /// `proc`'s lineage, that lineage has now written it (see `Agent::unpreserved`).
    pub(crate) fn note_written(&mut self, proc: ProcId, key: (u64, u64)) {
        let same = match self.unpreserved.get(&key) {
            Some((_, chain, _)) => {
                chain.contains(&proc) || self.engine.lineage(proc).iter().any(|n| chain.contains(n))
            }
            None => return,
        };
        if !same {
            return;
        }
        if let Some(u) = self.unpreserved.get_mut(&key) {
            u.2 = true;
        }
    }

    /// The topmost process of `proc`'s lineage (below the boundary).
    pub(crate) fn lineage_top(&self, proc: ProcId) -> ProcId {
        self.engine.lineage(proc).last().copied().unwrap_or(proc)
    }

    pub(crate) fn remember_owner(&mut self, proc: ProcId) {
        if self.owners.len() >= MAX_OWNERS {
            self.owners.clear();
        }
        if !self.owners.contains_key(&proc) {
            let chain = self.engine.lineage(proc);
            self.owners.insert(proc, chain);
        }
    }

    /// A content copy (reflink where possible) before a write-intent open proceeds.
    pub(crate) fn copy_job(&mut self, p: &PermRequest) -> Option<(u64, Job)> {
        let st = p.stat?;
        let path = p.path.clone()?;
        let fd = p.dup_fd().ok()?;
        self.remember_owner(p.proc);
        let id = self.next_job;
        self.next_job += 1;
        let owner = Owner {
            pid: p.proc.pid,
            start: p.proc.start,
        };
        Some((
            id,
            Job::Preserve {
                id,
                dev: st.dev,
                fd,
                path,
                owner,
            },
        ))
    }

    /// Keep a descriptor of a file an untrusted process opened for reading.
    pub(crate) fn hold(&mut self, p: &PermRequest) {
        let (Some(st), Some(path)) = (p.stat, p.path.clone()) else {
            return;
        };
        let Ok(fd) = p.dup_fd() else { return };
        self.hold_fd(st, path, fd);
    }

    /// [`Agent::hold`] with the descriptor given (the answered request's own).
    pub(crate) fn hold_fd(&mut self, st: ward_sys::fs::Stat, path: PathBuf, fd: OwnedFd) {
        while self.held.len() >= self.max_held {
            match self.held_order.pop_front() {
                Some((k, _)) => {
                    if let Some(h) = self.held.remove(&k) {
                        self.held_paths.remove(&h.path);
                    }
                }
                None => break,
            }
        }
        let key = (st.dev, st.ino);
        self.held_paths.insert(path.clone(), key);
        self.held_order.push_back((key, Instant::now()));
        self.held.insert(
            key,
            Held {
                fd,
                path,
                dev: st.dev,
            },
        );
    }

    /// Let go of descriptors held longer than [`HELD_FOR`].
    pub(crate) fn release_old_held(&mut self) {
        while let Some(&(k, t)) = self.held_order.front() {
            if t.elapsed() < HELD_FOR {
                break;
            }
            self.held_order.pop_front();
            if let Some(h) = self.held.remove(&k) {
                self.held_paths.remove(&h.path);
            }
        }
    }

    /// The file at `path` is being deleted or replaced: if ward holds it, copy its
    /// content into the vault on behalf of `by` (the deleter).
    pub(crate) fn release_held(&mut self, path: &Path, by: ProcId) {
        let Some(key) = self.held_paths.remove(path) else {
            return;
        };
        let Some(h) = self.held.remove(&key) else {
            return;
        };
        if self.trusted(by) {
            return;
        }
        // Decided in `settle_doomed`, once the deleter's other events are in.
        self.doomed
            .entry(by)
            .or_default()
            .push_back((h, Instant::now()));
    }

    /// Held files that were deleted or replaced: copy them into the vault if the deleter's
    /// lineage is suspicious (it wrote encrypted-looking files, was convicted, ...); let
    /// them go after [`DOOMED_GRACE`] otherwise (gzip, rm -rf, editors: no copy cost).
    /// The decision waits because a delete is often seen before the encrypted copy that
    /// preceded it (the two come from different fanotify queues).
    pub(crate) fn settle_doomed(&mut self) {
        if self.doomed.is_empty() {
            return;
        }
        let deleters: Vec<ProcId> = self.doomed.keys().copied().collect();
        for by in deleters {
            if self.engine.suspicious(by) {
                let files = self.doomed.remove(&by).unwrap_or_default();
                self.remember_owner(by);
                for (h, _) in files {
                    let id = self.next_job;
                    self.next_job += 1;
                    if let Some(v) = &self.vault {
                        v.send(Job::Preserve {
                            id,
                            dev: h.dev,
                            fd: h.fd,
                            path: h.path,
                            owner: Owner {
                                pid: by.pid,
                                start: by.start,
                            },
                        });
                    }
                }
            } else if let Some(files) = self.doomed.get_mut(&by) {
                while files
                    .front()
                    .is_some_and(|(_, t)| t.elapsed() >= DOOMED_GRACE)
                {
                    files.pop_front();
                }
                if files.is_empty() {
                    self.doomed.remove(&by);
                }
            }
        }
    }

    /// Is `proc` one of the configured trusted programs (package managers), evidence or
    /// not? (Such a program is never denied an open for lack of a copy.)
    pub(crate) fn trusted_program(&self, proc: ProcId) -> bool {
        self.engine.process(proc).is_some_and(|info| {
            let base = info.exe.rsplit('/').next().unwrap_or(&info.exe);
            self.cfg.trusted_programs.iter().any(|t| t == base)
        })
    }

    /// Trusted processes are spared preservation (never detection): configured programs
    /// (package managers), and long-running processes whose lineage shows no evidence.
    pub(crate) fn trusted(&self, proc: ProcId) -> bool {
        if self.trusted_program(proc) {
            return !self.engine.suspicious(proc);
        }
        if self.cfg.trust_after_secs == 0 || proc.start == 0 {
            return false;
        }
        let age = self.uptime - proc.start as f64 / CLK_TCK;
        age >= self.cfg.trust_after_secs as f64 && !self.engine.suspicious(proc)
    }

    pub(crate) fn vault_results(&mut self) {
        let Some(v) = &self.vault else { return };
        for d in v.results() {
            if let Done::Preserved { id, result } = &d {
                if let Some((p, since)) = self.pending.remove(id) {
                    match result {
                        Ok(_) => {
                            self.stats.preserved += 1;
                            if let Some(st) = p.stat {
                                if self.preserved.len() >= MAX_OWNERS {
                                    self.preserved.clear();
                                }
                                let top = self.lineage_top(p.proc);
                                self.preserved.insert(
                                    (st.dev, st.ino),
                                    (st.size, st.mtime_ns, top, Instant::now()),
                                );
                            }
                        }
                        Err(e) => {
                            self.stats.preserve_failed += 1;
                            tracing::warn!(
                                "could not preserve {}: {e}",
                                p.path.as_deref().unwrap_or(Path::new("?")).display()
                            );
                        }
                    }
                    let outcome = match result {
                        Ok(_) => CopyOutcome::Kept,
                        Err(m) => CopyOutcome::Missed(m),
                    };
                    self.release(p, since, outcome);
                } else {
                    // The copy of a held file that was deleted or replaced.
                    match result {
                        Ok(_) => self.stats.preserved += 1,
                        Err(e) => {
                            self.stats.preserve_failed += 1;
                            tracing::warn!("could not keep a deleted or replaced file: {e}");
                        }
                    }
                }
                continue;
            }
            self.vault_done(d);
        }
    }

    pub(crate) fn vault_done(&mut self, d: Done) {
        let Done::Restored { incident, result } = d else {
            return;
        };
        match result {
            Ok(r) => {
                let status = if r.files_lost == 0 {
                    RestoreStatus::Done
                } else {
                    RestoreStatus::Partial
                };
                tracing::info!(
                    "incident {incident}: restored {} file(s), {} lost, {} quarantined, {} conflict(s) kept side by side",
                    r.files_restored,
                    r.files_lost,
                    r.files_quarantined,
                    r.conflicts.len()
                );
                for (path, what) in &r.details {
                    tracing::debug!("  {}: {what}", path.display());
                }
                let id = incident.clone();
                self.store.run(move |s| {
                    if let Err(e) = s.finish_restore(&id, status) {
                        tracing::error!("recording the restore of {id}: {e}");
                    }
                });
                self.out.emit(AgentEvent::Restored(Restored {
                    id: incident,
                    files_restored: r.files_restored,
                    files_lost: r.files_lost,
                    files_quarantined: r.files_quarantined,
                    conflicts: r.conflicts,
                    already_ok: r.already_ok,
                }));
            }
            Err((e, pending)) => {
                let retry = format!("ward restore {incident}");
                tracing::error!(
                    "restore of incident {incident} failed: {e}; the vault keeps the copies of \
                     its {pending} damaged file(s): free space or fix the error, then run `{retry}` \
                     (ward also retries at its next start)"
                );
                self.out.emit(AgentEvent::RestoreFailed(RestoreFailed {
                    id: incident,
                    error: e,
                    files_pending: pending,
                    retry,
                }));
            }
        }
    }

    /// Fail open: an opener held longer than the timeout is allowed.
    pub(crate) fn expire_pending(&mut self) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, t))| t.elapsed() >= PRESERVE_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some((p, since)) = self.pending.remove(&id) {
                self.stats.preserve_timeouts += 1;
                tracing::warn!(
                    "preserving {} took longer than {:?}: allowing the open without a copy",
                    p.path.as_deref().unwrap_or(Path::new("?")).display(),
                    PRESERVE_TIMEOUT
                );
                self.release(p, since, CopyOutcome::TimedOut);
            }
        }
    }
}
