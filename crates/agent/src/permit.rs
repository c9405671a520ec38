//! The one decision per permission request ([`Agent::decide`]) and the one place that
//! answers it ([`Agent::answer`]).
//!
//! * A convicted lineage is denied every open (it is being frozen; a denied open cannot
//!   damage anything).
//! * A read-only open is allowed at once; for an untrusted reader a descriptor of the file
//!   is kept (no copy, no link: a link would change the file's link count, which tools such
//!   as gzip refuse) so its content can still be copied if the file is then deleted or
//!   renamed over.
//! * A write-intent open by an untrusted process waits while the vault copies the file
//!   (reflink where possible), at most [`crate::vaultd::PRESERVE_TIMEOUT`]; then it is
//!   allowed (fail open) and the miss is reported ([`Agent::decide_held`]).
//! * Except: when no copy can be made at all (the filesystem is full even after the vault
//!   gave up its reserve, or the copy failed with an I/O error) and the opener's lineage
//!   already shows evidence, the open is denied and reported: it would damage a file
//!   ward could not restore. Without evidence, for trusted programs and under alert-only
//!   paths it still fails open (benign programs on a full disk keep working).
//! * Everything else is allowed.

use crate::agent::{Agent, MAX_RENAMES};
use crate::vaultd::{Miss, MissKind};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ward_engine::Op;
use ward_outputs::{EventKind, PermAnswer};

/// Whether `exe` is a per-client server program (smbd).
fn is_smbd(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    ward_sensor::procs::PER_CLIENT_SERVERS.contains(&base)
}

/// The metrics label of an event.
fn kind(op: &Op) -> EventKind {
    match op {
        Op::Process(_) => EventKind::Process,
        Op::Exit => EventKind::Exit,
        Op::Open { .. } => EventKind::Open,
        Op::CloseWrite { .. } => EventKind::CloseWrite,
        Op::Create { .. } => EventKind::Create,
        Op::Delete { .. } => EventKind::Delete,
        Op::Rename { .. } => EventKind::Rename,
        Op::Connect { .. } => EventKind::Connect,
        _ => EventKind::Other,
    }
}
use ward_sensor::{EventSource, Observation, PermRequest};

/// What to do with a permission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allow at once.
    Allow,
    /// Deny (the opener's lineage is convicted).
    Deny,
    /// Allow, keeping a descriptor of the file (an untrusted reader).
    HoldDescriptor,
    /// Copy the file into the vault first, then allow (an untrusted writer).
    CopyFirst,
}

/// How the copy a held opener waited for ended.
#[derive(Clone, Copy, Debug)]
pub enum CopyOutcome<'a> {
    /// The vault has the file's content.
    Kept,
    /// No answer within [`crate::vaultd::PRESERVE_TIMEOUT`].
    TimedOut,
    /// The vault could not keep it.
    Missed(&'a Miss),
}

impl<S: EventSource> Agent<S> {
    /// The decision for a write-intent open that was held for its copy: [`Decision::Deny`]
    /// if its lineage was convicted meanwhile, or if no copy could be made
    /// ([`MissKind::NoSpace`], [`MissKind::CopyError`]) and its lineage already shows
    /// evidence ([`ward_engine::Engine::suspicious`]), unless it is a configured trusted
    /// program or the file is under an alert-only path; [`Decision::Allow`] otherwise
    /// (fail open: timeouts, policy skips, lineages without evidence).
    pub fn decide_held(&self, p: &PermRequest, outcome: CopyOutcome<'_>) -> Decision {
        if self.stopped(p.proc) {
            return Decision::Deny;
        }
        let CopyOutcome::Missed(m) = outcome else {
            return Decision::Allow;
        };
        let alert_only = p
            .path
            .as_deref()
            .is_some_and(|f| self.cfg.mode_for(f) == ward_config::Mode::Alert);
        if m.kind != MissKind::Skipped
            && !alert_only
            && !self.trusted_program(p.proc)
            && self.engine.suspicious(p.proc)
        {
            Decision::Deny
        } else {
            Decision::Allow
        }
    }

    /// The decision for a permission request; `write` is whether it is an open for
    /// writing (`None`: not an open).
    pub fn decide(&mut self, p: &PermRequest, write: Option<bool>) -> Decision {
        if self.stopped(p.proc) {
            return Decision::Deny;
        }
        match write {
            None => Decision::Allow,
            Some(false) if self.needs_preservation(p, false) => Decision::HoldDescriptor,
            Some(false) => Decision::Allow,
            Some(true) if self.needs_preservation(p, true) => Decision::CopyFirst,
            Some(true) => Decision::Allow,
        }
    }

    /// Is `proc` in a convicted lineage that ward is stopping (not an alert-only one)?
    pub(crate) fn stopped(&self, proc: ward_engine::ProcId) -> bool {
        if !self.engine.is_convicted(proc) {
            return false;
        }
        if self.alerted.is_empty() {
            return true;
        }
        let chain = self.engine.lineage(proc);
        !self.alerted.iter().any(|r| *r == proc || chain.contains(r))
    }

    /// Answer a permission request (every answer goes through here).
    pub(crate) fn answer(&mut self, p: PermRequest, allow: bool) {
        self.answer_after(p, allow, self.waited());
    }

    /// How long the request of the event being handled has waited.
    fn waited(&self) -> Duration {
        Duration::from_nanos(self.now().saturating_sub(self.cur_time))
    }

    /// Answer a request that has waited `waited` since the kernel handed it over.
    pub(crate) fn answer_after(&mut self, p: PermRequest, allow: bool, waited: Duration) {
        drop(self.answer_keep(p, allow, waited));
    }

    /// [`Agent::answer_after`], keeping the file's descriptor for reading after the
    /// answer (`None` when the request had none or the source is closed).
    fn answer_keep(&mut self, p: PermRequest, allow: bool, waited: Duration) -> Option<OwnedFd> {
        if allow {
            self.stats.allowed += 1;
        } else {
            self.stats.denied += 1;
        }
        self.metrics.perm_answer(
            if allow {
                PermAnswer::Allow
            } else {
                PermAnswer::Deny
            },
            waited,
        );
        match self.source.as_mut() {
            Some(s) => s.answer_keep(p, allow),
            // The source is closed: dropping the request allows it.
            None => {
                drop(p);
                None
            }
        }
    }

    /// Answer a request that waited for preservation (see [`Agent::decide_held`]).
    pub(crate) fn release(&mut self, p: PermRequest, held_since: Instant, outcome: CopyOutcome) {
        let allow = self.decide_held(&p, outcome) == Decision::Allow;
        if !allow && !self.stopped(p.proc) {
            let (exe, path) = (
                self.engine
                    .process(p.proc)
                    .map_or("?", |i| i.exe.as_str())
                    .to_string(),
                p.path
                    .as_deref()
                    .unwrap_or(Path::new("?"))
                    .display()
                    .to_string(),
            );
            self.stats.denied_unpreserved += 1;
            if let CopyOutcome::Missed(m) = outcome {
                tracing::warn!(
                    "denied pid {} ({exe}) writing {path}: no copy could be made ({m}) and its \
                     lineage shows evidence",
                    p.proc.pid
                );
            }
        }
        if allow && !matches!(outcome, CopyOutcome::Kept) {
            self.note_unpreserved(&p);
        }
        let refused = !allow && !self.stopped(p.proc);
        let proc = p.proc;
        self.answer_after(p, allow, held_since.elapsed());
        // A lineage that damaged files and keeps writing where nothing can be kept is
        // stopped (and its damage restored) rather than left running, refused.
        if refused {
            if let Some(v) = self.engine.write_refused(proc) {
                self.contain(&v);
            }
        }
    }

    /// Handle one observation: record it, keep preservation bookkeeping, let the engine
    /// judge it, contain what it convicts, and answer its permission request (if any)
    /// through [`Agent::decide`].
    pub fn handle(&mut self, mut o: Observation) {
        self.cur_time = o.event.time;
        self.metrics.event(kind(&o.event.op));
        if o.deferred.is_some() {
            // A read-only open: answer first (a read cannot damage), sample after, through
            // the request's own descriptor (kept after the answer, and by `hold`).
            let (fd, hold) = match o.perm.take() {
                Some(p) => self.answer_read(p),
                None => (None, None),
            };
            let engine = &self.engine;
            o.fill_sample(fd.as_ref().map(|f| f.as_fd()), |file, size| {
                engine.has_sample_profile(file, size)
            });
            if let (Some((st, path)), Some(fd)) = (hold, fd) {
                self.hold_fd(st, path, fd);
            }
        }
        if let Some(r) = self.recorder.as_mut() {
            let _ = serde_json::to_writer(&mut *r, &o.event);
            let _ = r.write_all(b"\n");
        }
        if let Some(smb) = &self.smb {
            // Who an smbd worker serves, learned while its session is fresh (procfs now,
            // Samba's word in the background), forgotten when it exits.
            match &o.event.op {
                Op::Process(info) if !info.boundary && is_smbd(&info.exe) => {
                    smb.attributor.prefetch(info.id)
                }
                Op::Exit => smb.attributor.forget(o.event.proc.pid),
                _ => {}
            }
        }
        match &o.event.op {
            Op::Rename { from, to, .. } => {
                if self.renames.len() >= MAX_RENAMES {
                    self.renames.pop_front();
                }
                self.renames.push_back((
                    self.engine.lineage(o.event.proc),
                    from.clone(),
                    to.clone(),
                ));
                // A held file replaced by the rename is gone: keep its content.
                self.release_held(Path::new(to), o.event.proc);
                if let Some(key) = self.held_paths.remove(Path::new(from)) {
                    if let Some(h) = self.held.get_mut(&key) {
                        h.path = PathBuf::from(to);
                        self.held_paths.insert(PathBuf::from(to), key);
                    }
                }
            }
            Op::Delete { path, .. } => self.release_held(Path::new(path), o.event.proc),
            Op::CloseWrite { file, path, .. } => {
                let key = (file.dev, file.ino);
                self.note_written(o.event.proc, key);
                self.own_version(o.event.proc, key, Path::new(path));
            }
            _ => {}
        }
        if let Some(v) = self.engine.observe(&o.event) {
            self.contain(&v);
        }
        let Some(p) = o.perm else { return };
        let write = match &o.event.op {
            Op::Open { write, .. } => Some(*write != Some(false)),
            _ => None,
        };
        match self.decide(&p, write) {
            Decision::Allow => self.answer(p, true),
            Decision::Deny => self.answer(p, false),
            Decision::HoldDescriptor => {
                self.hold(&p);
                self.answer(p, true);
            }
            Decision::CopyFirst => match self.copy_job(&p) {
                // Held until the vault has the copy (see `vault_results`, `expire_pending`).
                Some((id, job)) => {
                    if let Some(v) = &self.vault {
                        v.send(job);
                    }
                    self.pending.insert(id, (p, Instant::now()));
                }
                None => self.answer(p, true),
            },
        }
    }

    /// Answer a read-only open; returns the request's descriptor, and for an untrusted
    /// reader the file to hold it for ([`Agent::hold_fd`]: no copy, no link, since a link
    /// would change the file's link count, which tools such as gzip refuse to work with).
    /// If the file is then deleted or renamed over, its content is copied from it.
    fn answer_read(
        &mut self,
        p: PermRequest,
    ) -> (Option<OwnedFd>, Option<(ward_sys::fs::Stat, PathBuf)>) {
        let d = self.decide(&p, Some(false));
        let hold = match (d, p.stat, &p.path) {
            (Decision::HoldDescriptor, Some(st), Some(path)) => Some((st, path.clone())),
            _ => None,
        };
        (
            self.answer_keep(p, d != Decision::Deny, self.waited()),
            hold,
        )
    }
}
