//! Restore after an incident: plan (which entry for which original path, what to rename
//! back, what to quarantine), then execute each step idempotently, recording outcomes
//! in the index so that an interrupted restore can be completed. Semantics: crate docs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::fileio;
use crate::index::{self, Entry};
use crate::vault::Vault;
use crate::{
    ns_of, time_of, Method, RestorePlan, RestoreReport, RestoreState, RestoreStatus, VaultError,
};

/// One step of a restore, as planned (see [`Vault::plan_restore`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The path the step is about: an original path (restore, rename back) or a path to
    /// quarantine.
    pub path: PathBuf,
    pub kind: ActionKind,
    /// Why (e.g. which entry, which version was skipped).
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    /// Put back the content of vault entry `entry` (preserved at `preserved_at`).
    Restore {
        entry: i64,
        method: Method,
        preserved_at: PathBuf,
    },
    /// The vault holds no intact pre-attack version of this file.
    Lost,
    /// Undo one rename of a pre-existing file or directory the vault holds no entry
    /// for: move `from` back to the action's path. If `evict_first` (a file the lineage
    /// created sits there), that file is quarantined first. `counts`: this is the
    /// first rename of the chain (the file's original name), counted as restored.
    RenameBack {
        from: PathBuf,
        evict_first: bool,
        counts: bool,
    },
    /// Move into the incident's quarantine folder.
    Quarantine,
}

/// Outcome of one executed (or dry-run) step, as stored in `restore_steps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Restored,
    Conflict,
    Ok,
    Lost,
    Quarantined,
    AlreadyQuarantined,
    Skipped,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Restored => "restored",
            Outcome::Conflict => "conflict",
            Outcome::Ok => "ok",
            Outcome::Lost => "lost",
            Outcome::Quarantined => "quarantined",
            Outcome::AlreadyQuarantined => "already-quarantined",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// Is `p` equal to `base` or inside it (component-wise)?
fn under(p: &Path, base: &Path) -> bool {
    p.starts_with(base)
}

fn rebase(p: &Path, from: &Path, to: &Path) -> PathBuf {
    match p.strip_prefix(from) {
        Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
        Ok(rest) => to.join(rest),
        Err(_) => p.to_path_buf(),
    }
}

/// Characters safe in a file name for the incident id.
fn safe_name(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out == "." || out == ".." {
        "incident".into()
    } else {
        out
    }
}

/// `name` + suffix, keeping the result within NAME_MAX (255 bytes).
fn with_suffix(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or(b"file");
    let room = 255usize.saturating_sub(prefix.len() + suffix.len());
    let mut cut = name.len().min(room);
    // Stay on a UTF-8 boundary when possible (cosmetic only).
    while cut > 0 && cut < name.len() && (name[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let mut n = Vec::with_capacity(255);
    n.extend_from_slice(prefix.as_bytes());
    n.extend_from_slice(&name[..cut]);
    n.extend_from_slice(suffix.as_bytes());
    let n = <OsString as std::os::unix::ffi::OsStringExt>::from_vec(n);
    path.with_file_name(n)
}

/// What the forward simulation of the lineage's renames says.
struct Sim {
    /// Per rename: the original path of the pre-existing file or directory it moved,
    /// or `None` if it moved something the lineage created.
    origin: Vec<Option<PathBuf>>,
    /// Where the lineage's created files are now.
    created_now: Vec<PathBuf>,
    /// Pre-existing paths the lineage moved: (original, current).
    moved: Vec<(PathBuf, PathBuf)>,
}

fn simulate(plan: &RestorePlan) -> Sim {
    let mut created_now: Vec<PathBuf> = Vec::new();
    for c in &plan.created {
        if !created_now.contains(c) {
            created_now.push(c.clone());
        }
    }
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut origin = Vec::with_capacity(plan.renames.len());
    for (from, to) in &plan.renames {
        let created = created_now.iter().any(|p| under(from, p));
        let tracked = moved
            .iter()
            .find(|(_, cur)| cur == from)
            .map(|(o, _)| o.clone());
        // Whatever sat at `to` is replaced by the renamed object.
        created_now.retain(|p| p != to);
        moved.retain(|(_, cur)| cur != to);
        for p in created_now.iter_mut() {
            if under(p, from) {
                *p = rebase(p, from, to);
            }
        }
        for (_, cur) in moved.iter_mut() {
            if under(cur, from) {
                *cur = rebase(cur, from, to);
            }
        }
        if created {
            origin.push(None);
        } else {
            let o = tracked.unwrap_or_else(|| from.clone());
            if !moved.iter().any(|(mo, _)| *mo == o) {
                moved.push((o.clone(), to.clone()));
            }
            origin.push(Some(o));
        }
    }
    Sim {
        origin,
        created_now,
        moved,
    }
}

/// An entry's original path: its path mapped back through the renames, newest first,
/// skipping renames of files the lineage created.
fn original_path(p: &Path, plan: &RestorePlan, sim: &Sim) -> PathBuf {
    let mut p = p.to_path_buf();
    for (i, (from, to)) in plan.renames.iter().enumerate().rev() {
        if sim.origin[i].is_some() && under(&p, to) {
            p = rebase(&p, to, from);
        }
    }
    p
}

/// Outcome counters of one run.
#[derive(Default)]
struct Run {
    report: RestoreReport,
}

impl Run {
    fn note(&mut self, path: &Path, s: impl Into<String>) {
        self.report.details.push((path.to_path_buf(), s.into()));
    }

    fn count(&mut self, o: Outcome) {
        let r = &mut self.report;
        match o {
            Outcome::Restored | Outcome::Conflict => r.files_restored += 1,
            Outcome::Ok => r.already_ok += 1,
            Outcome::Lost => r.files_lost += 1,
            Outcome::Quarantined => r.files_quarantined += 1,
            Outcome::AlreadyQuarantined => r.already_quarantined += 1,
            Outcome::Failed => r.failed += 1,
            Outcome::Skipped => {}
        }
    }
}

fn lstat(p: &Path) -> io::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Vault {
    fn object_path(&self, e: &Entry) -> PathBuf {
        self.objects.join(&e.object)
    }

    /// Is this entry's object still the content that was preserved?
    fn intact(&self, e: &Entry) -> Result<(), String> {
        let md = match fs::metadata(self.object_path(e)) {
            Ok(m) => m,
            Err(err) => return Err(format!("vault object missing ({err})")),
        };
        let mtime_ns = md.mtime() * 1_000_000_000 + md.mtime_nsec();
        match e.method {
            Method::Link if md.len() != e.size || mtime_ns != e.mtime_ns => Err(format!(
                "preserved by hard link only, and the file was modified in place after \
                 preservation (size {} -> {}); no copy of the earlier content",
                e.size,
                md.len()
            )),
            _ if md.len() != e.size => Err(format!(
                "vault copy has {} bytes, expected {}",
                md.len(),
                e.size
            )),
            _ => Ok(()),
        }
    }

    fn in_vault(&self, p: &Path) -> bool {
        under(p, &self.dir)
    }

    /// The steps a restore of `plan` consists of, in execution order (rename-backs,
    /// restores, quarantines). Read-only.
    pub fn plan_restore(&self, plan: &RestorePlan) -> Result<Vec<Action>, VaultError> {
        let sim = simulate(plan);
        let entries = index::entries_of_owners(&self.db, &plan.owners)?;
        let mut groups: BTreeMap<PathBuf, Vec<Entry>> = BTreeMap::new();
        for e in entries {
            let orig = original_path(&e.path, plan, &sim);
            if self.in_vault(&orig) {
                continue;
            }
            groups.entry(orig).or_default().push(e);
        }
        let created: BTreeSet<&PathBuf> =
            sim.created_now.iter().chain(plan.created.iter()).collect();
        // Pre-existing files/directories the lineage only renamed: undo those renames,
        // newest first. A file the vault holds an entry for is restored from the entry
        // instead, and its renamed copy quarantined.
        let mut undo = Vec::new();
        for (i, (from, to)) in plan.renames.iter().enumerate().rev() {
            let Some(orig) = &sim.origin[i] else { continue };
            if groups.contains_key(orig) || self.in_vault(from) || self.in_vault(to) {
                continue;
            }
            undo.push(Action {
                path: from.clone(),
                kind: ActionKind::RenameBack {
                    from: to.clone(),
                    evict_first: created.contains(from),
                    counts: from == orig,
                },
                note: format!("renamed by the lineage to {}", to.display()),
            });
        }
        let mut restores = Vec::new();
        for (orig, group) in &groups {
            let mut skipped = Vec::new();
            let mut chosen = None;
            for e in group {
                match self.intact(e) {
                    Ok(()) => {
                        chosen = Some(e);
                        break;
                    }
                    Err(why) => skipped.push(format!(
                        "entry {} ({} at {}): {why}",
                        e.id,
                        e.method.as_str(),
                        e.path.display()
                    )),
                }
            }
            match chosen {
                Some(e) => {
                    let mut note = format!(
                        "entry {} ({}, preserved at {})",
                        e.id,
                        e.method.as_str(),
                        e.path.display()
                    );
                    if !skipped.is_empty() {
                        note.push_str("; older versions unusable: ");
                        note.push_str(&skipped.join("; "));
                    }
                    restores.push(Action {
                        path: orig.clone(),
                        kind: ActionKind::Restore {
                            entry: e.id,
                            method: e.method,
                            preserved_at: e.path.clone(),
                        },
                        note,
                    });
                }
                None => restores.push(Action {
                    path: orig.clone(),
                    kind: ActionKind::Lost,
                    note: skipped.join("; "),
                }),
            }
        }
        // Quarantine: what the lineage created, and the renamed copies of files
        // restored from the vault — at their current (end-of-attack) paths.
        let mut quarantine: Vec<PathBuf> = Vec::new();
        let candidates = sim.created_now.iter().chain(
            sim.moved
                .iter()
                .filter(|(o, _)| groups.contains_key(o))
                .map(|(_, cur)| cur),
        );
        for p in candidates {
            if groups.contains_key(p) || self.in_vault(p) || quarantine.contains(p) {
                continue;
            }
            quarantine.push(p.clone());
        }
        // Moving a directory moves what is inside it.
        let all = quarantine.clone();
        quarantine.retain(|p| !all.iter().any(|q| q != p && under(p, q)));
        quarantine.sort();
        // Quarantine first (paths are end-of-attack paths, which undoing renames would
        // change), except created directories holding a file to be renamed back: those
        // go last.
        let holds_undone = |p: &PathBuf| {
            sim.moved
                .iter()
                .any(|(o, cur)| !groups.contains_key(o) && cur != p && under(cur, p))
        };
        let (late, early): (Vec<PathBuf>, Vec<PathBuf>) =
            quarantine.into_iter().partition(|p| holds_undone(p));
        let q = |p: PathBuf| Action {
            path: p,
            kind: ActionKind::Quarantine,
            note: "created or renamed by the lineage".into(),
        };
        let mut actions: Vec<Action> = early.into_iter().map(q).collect();
        actions.extend(undo);
        actions.extend(restores);
        actions.extend(late.into_iter().map(q));
        Ok(actions)
    }

    /// What [`Vault::restore`] would do now, without changing anything: the report of
    /// a dry run (counts and one detail line per step).
    pub fn restore_dry_run(&self, plan: &RestorePlan) -> Result<RestoreReport, VaultError> {
        let actions = self.plan_restore(plan)?;
        let mut run = Run::default();
        run.report.incident = plan.incident.clone();
        for a in &actions {
            let o = self.step(a, plan, &mut run, true);
            run.count(o);
        }
        Ok(run.report)
    }

    /// Restore after an incident (see the crate docs for the exact semantics).
    /// Pins the lineage's entries, records the plan and the state in the index, runs
    /// every step, calling `progress(done, total)` after each, and marks the restore
    /// done. Safe to run again: finished steps are found already in place.
    pub fn restore(
        &mut self,
        plan: &RestorePlan,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RestoreReport, VaultError> {
        let incident = plan.incident.clone();
        let plan_json = serde_json::to_string(plan).unwrap_or_default();
        let mut released = false;
        loop {
            let r = self.pin(&incident, &plan.owners).and_then(|_| {
                self.db.execute(
                    "INSERT INTO restores(incident, state, plan, runs, steps, updated_ns)
                     VALUES (?1, 'in-progress', ?2, 1, 0, ?3)
                     ON CONFLICT(incident) DO UPDATE SET state = 'in-progress', plan = ?2,
                        runs = runs + 1, updated_ns = ?3",
                    params![incident, plan_json, ns_of(SystemTime::now())],
                )?;
                Ok(())
            });
            match r {
                // The index cannot grow on a full filesystem: make room once.
                Err(e)
                    if e.is_no_space() && !released && self.release_reserve(0, &self.dir) > 0 =>
                {
                    released = true
                }
                r => break r?,
            }
        }
        let actions = self.plan_restore(plan)?;
        self.db.execute(
            "UPDATE restores SET steps = ?2 WHERE incident = ?1",
            params![incident, actions.len() as i64],
        )?;
        let mut run = Run::default();
        run.report.incident = incident.clone();
        let total = actions.len();
        progress(0, total);
        let mut pending: Vec<(String, Outcome, String)> = Vec::new();
        for (i, a) in actions.iter().enumerate() {
            let before = run.report.details.len();
            let o = self.step(a, plan, &mut run, false);
            run.count(o);
            let detail = run.report.details[before..]
                .iter()
                .map(|(_, d)| d.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            pending.push((step_key(a), o, detail));
            // Outcomes are only bookkeeping (each step re-checks the file system), so
            // they are committed in batches.
            if pending.len() >= 64 {
                self.record_steps(&incident, &mut pending)?;
            }
            progress(i + 1, total);
        }
        self.record_steps(&incident, &mut pending)?;
        self.db.execute(
            "UPDATE restores SET state = 'done', updated_ns = ?2 WHERE incident = ?1",
            params![incident, ns_of(SystemTime::now())],
        )?;
        Ok(run.report)
    }

    /// Re-run the restore of an incident from the plan stored in the index (after a
    /// crash, or `ward restore ID`).
    pub fn resume(
        &mut self,
        incident: &str,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RestoreReport, VaultError> {
        let plan = self
            .stored_plan(incident)
            .ok_or_else(|| VaultError::UnknownIncident(incident.to_string()))?;
        self.restore(&plan, progress)
    }

    /// The plan last used to restore `incident`, if any.
    pub fn stored_plan(&self, incident: &str) -> Option<RestorePlan> {
        let json: String = self
            .db
            .query_row(
                "SELECT plan FROM restores WHERE incident = ?1",
                [incident],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()?;
        serde_json::from_str(&json).ok()
    }

    /// Incidents whose restore was started but not finished (to resume on start-up).
    pub fn unfinished_restores(&self) -> Result<Vec<String>, VaultError> {
        let mut st = self
            .db
            .prepare("SELECT incident FROM restores WHERE state != 'done' ORDER BY updated_ns")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Cumulative status of an incident's restore over all runs.
    pub fn restore_status(&self, incident: &str) -> Option<RestoreStatus> {
        let (state, runs, steps): (String, i64, i64) = self
            .db
            .query_row(
                "SELECT state, runs, steps FROM restores WHERE incident = ?1",
                [incident],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .ok()
            .flatten()?;
        let count = |o: &str| -> usize {
            self.db
                .query_row(
                    "SELECT COUNT(*) FROM restore_steps WHERE incident = ?1 AND outcome = ?2",
                    params![incident, o],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap_or(0) as usize
        };
        let conflicts = count("conflict");
        Some(RestoreStatus {
            incident: incident.to_string(),
            state: RestoreState::parse(&state),
            runs: runs as u32,
            steps: steps as usize,
            files_restored: count("restored") + conflicts,
            files_lost: count("lost"),
            files_quarantined: count("quarantined") + count("already-quarantined"),
            conflicts,
            already_ok: count("ok"),
            failed: count("failed"),
        })
    }

    /// Store step outcomes. A step keeps its first real outcome ("restored" stays
    /// "restored" when a later run finds the file already fine); failures are replaced.
    fn record_steps(
        &mut self,
        incident: &str,
        pending: &mut Vec<(String, Outcome, String)>,
    ) -> Result<(), VaultError> {
        if pending.is_empty() {
            return Ok(());
        }
        let tx = self.db.transaction()?;
        for (key, o, detail) in pending.drain(..) {
            let prev: Option<String> = tx
                .query_row(
                    "SELECT outcome FROM restore_steps WHERE incident = ?1 AND key = ?2",
                    params![incident, key],
                    |r| r.get(0),
                )
                .optional()?;
            let keep = match prev.as_deref() {
                None | Some("failed") | Some("skipped") => false,
                Some(_) => matches!(o, Outcome::Ok | Outcome::AlreadyQuarantined),
            };
            if !keep {
                tx.execute(
                    "INSERT OR REPLACE INTO restore_steps(incident, key, outcome, detail)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![incident, key, o.as_str(), detail],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn step(&self, a: &Action, plan: &RestorePlan, run: &mut Run, dry: bool) -> Outcome {
        let r = match &a.kind {
            ActionKind::Restore { entry, .. } => self.step_restore(a, *entry, plan, run, dry),
            ActionKind::Lost => {
                run.note(&a.path, format!("lost: {}", a.note));
                Ok(Outcome::Lost)
            }
            ActionKind::RenameBack {
                from,
                evict_first,
                counts,
            } => self.step_rename_back(&a.path, from, *evict_first, *counts, plan, run, dry),
            ActionKind::Quarantine => self.step_quarantine(&a.path, plan, run, dry),
        };
        match r {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(path = %a.path.display(), error = %e, "restore step failed");
                run.note(&a.path, format!("failed: {e}"));
                Outcome::Failed
            }
        }
    }

    fn load_entry(&self, id: i64) -> Result<Entry, VaultError> {
        let e = self.db.query_row(
            &format!(
                "SELECT {} FROM entries e WHERE e.id = ?1",
                index::ENTRY_COLS
            ),
            [id],
            index::entry_of,
        )?;
        Ok(e)
    }

    fn step_restore(
        &self,
        a: &Action,
        id: i64,
        plan: &RestorePlan,
        run: &mut Run,
        dry: bool,
    ) -> Result<Outcome, VaultError> {
        let orig = &a.path;
        let e = self.load_entry(id)?;
        let obj_path = self.object_path(&e);
        let obj = File::open(&obj_path).map_err(|err| VaultError::io(&obj_path, err))?;
        let parent = orig.parent().unwrap_or(Path::new("/")).to_path_buf();
        // Never write through a symlinked directory planted in the path.
        if parent.exists() {
            let canon = fs::canonicalize(&parent).map_err(|err| VaultError::io(&parent, err))?;
            if canon != parent && parent.is_absolute() && !has_dots(&parent) {
                return Err(VaultError::io(
                    &parent,
                    io::Error::other(format!(
                        "resolves to {} (a symlink in the path); not restoring through it",
                        canon.display()
                    )),
                ));
            }
        }
        let cur_md = lstat(orig).map_err(|err| VaultError::io(orig, err))?;
        let mut target = orig.clone();
        let mut conflict = false;
        if let Some(md) = &cur_md {
            let identical = md.file_type().is_file()
                && match fileio::open_nofollow(orig) {
                    Ok(f) => fileio::same_content(obj.as_fd(), f.as_fd())
                        .map_err(|err| VaultError::io(orig, err))?,
                    Err(_) => false,
                };
            if identical {
                let meta_ok =
                    md.mode() & 0o7777 == e.mode & 0o7777 && md.uid() == e.uid && md.gid() == e.gid;
                if meta_ok {
                    return Ok(Outcome::Ok);
                }
                if !dry {
                    let f = fileio::open_nofollow(orig).map_err(|err| VaultError::io(orig, err))?;
                    std::os::unix::fs::fchown(&f, Some(e.uid), Some(e.gid))
                        .map_err(|err| VaultError::io(orig, err))?;
                    f.set_permissions(fs::Permissions::from_mode(e.mode & 0o7777))
                        .map_err(|err| VaultError::io(orig, err))?;
                }
                run.note(orig, "content intact; mode/owner repaired");
                return Ok(Outcome::Restored);
            }
            // Changed by someone after containment (the attacker was frozen by then)?
            // mtime, not ctime: ctime also moves when anyone's read is preserved by a
            // hard link into the vault, which is not a change of content.
            let mtime_ns = md.mtime() * 1_000_000_000 + md.mtime_nsec();
            if mtime_ns > ns_of(plan.contained_at) {
                conflict = true;
                target = with_suffix(
                    orig,
                    "",
                    &format!(".ward-restored-{}", safe_name(&plan.incident)),
                );
            }
        }
        if conflict {
            run.report.conflicts.push(orig.clone());
            if let Ok(f) = fileio::open_nofollow(&target) {
                if fileio::same_content(obj.as_fd(), f.as_fd()).unwrap_or(false) {
                    return Ok(Outcome::Ok);
                }
            }
        }
        if dry {
            run.note(
                orig,
                if conflict {
                    format!(
                        "would keep the current file (changed after containment) and write the \
                         preserved version to {}; {}",
                        target.display(),
                        a.note
                    )
                } else {
                    format!("would restore from {}", a.note)
                },
            );
        } else {
            if !parent.exists() {
                fs::create_dir_all(&parent).map_err(|err| VaultError::io(&parent, err))?;
                run.note(orig, format!("recreated directory {}", parent.display()));
            }
            self.write_restored(&e, &obj, &target, plan, run)?;
            run.note(
                orig,
                if conflict {
                    format!(
                        "conflict: the current file changed after containment and is kept; \
                         preserved version written to {}",
                        target.display()
                    )
                } else {
                    format!("restored from {}", a.note)
                },
            );
        }
        Ok(if conflict {
            Outcome::Conflict
        } else {
            Outcome::Restored
        })
    }

    /// Write the preserved content and metadata to a temp file next to `target`, fsync,
    /// rename over `target`, fsync the directory.
    fn write_restored(
        &self,
        e: &Entry,
        obj: &File,
        target: &Path,
        plan: &RestorePlan,
        run: &mut Run,
    ) -> Result<(), VaultError> {
        let tmp = with_suffix(
            target,
            ".",
            &format!(".ward-restore-{}.tmp", safe_name(&plan.incident)),
        );
        let _ = fs::remove_file(&tmp); // left over by an interrupted run
        let mut attempt = || -> io::Result<()> {
            let out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let cloned =
                self.reflink && ward_sys::xattr_clone::ficlone(out.as_fd(), obj.as_fd()).is_ok();
            if !cloned {
                fileio::copy_range(obj.as_fd(), out.as_fd(), e.size, &mut |_| {})?;
            }
            // Order matters: chown clears setuid bits and file capabilities, and an
            // ACL xattr rewrites the mode bits.
            std::os::unix::fs::fchown(&out, Some(e.uid), Some(e.gid))?;
            let failed = fileio::write_xattrs(out.as_fd(), &e.xattrs);
            if !failed.is_empty() {
                run.note(
                    target,
                    format!("could not restore xattrs {failed:?} (best effort)"),
                );
            }
            out.set_permissions(fs::Permissions::from_mode(e.mode & 0o7777))?;
            out.set_times(
                fs::FileTimes::new()
                    .set_accessed(time_of(e.atime_ns))
                    .set_modified(time_of(e.mtime_ns)),
            )?;
            out.sync_all()?;
            fs::rename(&tmp, target)?;
            fileio::fsync_dir(target.parent().unwrap_or(Path::new("/")))
        };
        // A full filesystem (an attacker may have filled it): give up the vault's
        // reserve, first what this file needs, then all of it.
        let mut r = attempt();
        for need in [if self.reflink { 0 } else { e.size }, u64::MAX] {
            match &r {
                Err(err) if fileio::errno(err) == libc::ENOSPC => {
                    let _ = fs::remove_file(&tmp);
                    if self.release_reserve(need, target) == 0 {
                        break;
                    }
                    r = attempt();
                }
                _ => break,
            }
        }
        r.map_err(|err| {
            let _ = fs::remove_file(&tmp);
            if fileio::errno(&err) == libc::ENOSPC {
                VaultError::io(
                    target,
                    io::Error::other(
                        "filesystem full while restoring: free space and run the restore again",
                    ),
                )
            } else {
                VaultError::io(target, err)
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn step_rename_back(
        &self,
        orig: &Path,
        from: &Path,
        evict_first: bool,
        counts: bool,
        plan: &RestorePlan,
        run: &mut Run,
        dry: bool,
    ) -> Result<Outcome, VaultError> {
        let cur = lstat(from).map_err(|e| VaultError::io(from, e))?;
        let at_orig = lstat(orig).map_err(|e| VaultError::io(orig, e))?;
        // Directories are not counted as files.
        let is_dir = cur
            .as_ref()
            .or(at_orig.as_ref())
            .is_some_and(|m| m.is_dir());
        let counts = counts && !is_dir;
        let done = if counts {
            Outcome::Restored
        } else {
            Outcome::Skipped
        };
        match (cur, at_orig) {
            (None, Some(_)) => Ok(if counts {
                Outcome::Ok
            } else {
                Outcome::Skipped
            }),
            (None, None) if counts => {
                run.note(
                    orig,
                    format!(
                        "lost: renamed to {} by the lineage, gone since, never preserved",
                        from.display()
                    ),
                );
                Ok(Outcome::Lost)
            }
            (None, None) => Ok(Outcome::Skipped),
            (Some(_), Some(_)) if !evict_first => {
                run.note(
                    orig,
                    format!(
                        "not renamed back from {}: the original path is occupied",
                        from.display()
                    ),
                );
                Ok(Outcome::Skipped)
            }
            (Some(_), occupied) => {
                if dry {
                    run.note(orig, format!("would rename back from {}", from.display()));
                    return Ok(done);
                }
                if evict_first && occupied.is_some() {
                    self.step_quarantine(orig, plan, run, false)?;
                }
                if let Some(parent) = orig.parent() {
                    if !parent.exists() {
                        fs::create_dir_all(parent).map_err(|e| VaultError::io(parent, e))?;
                    }
                }
                fs::rename(from, orig).map_err(|e| VaultError::io(orig, e))?;
                if let Some(p) = orig.parent() {
                    let _ = fileio::fsync_dir(p);
                }
                if let Some(p) = from.parent() {
                    let _ = fileio::fsync_dir(p);
                }
                run.note(
                    orig,
                    format!(
                        "renamed back from {} (no preserved copy: content as found)",
                        from.display()
                    ),
                );
                Ok(done)
            }
        }
    }

    /// Where `p` goes in the quarantine of `incident`.
    fn quarantine_dest(&self, p: &Path, incident: &str) -> PathBuf {
        let base = self.quarantine.join(safe_name(incident));
        match p.strip_prefix(&self.fs_root) {
            Ok(rel) if !rel.as_os_str().is_empty() && !has_dots(rel) => base.join(rel),
            _ => {
                let flat: Vec<u8> = p
                    .as_os_str()
                    .as_bytes()
                    .iter()
                    .map(|&b| if b == b'/' { b'_' } else { b })
                    .collect();
                base.join(<OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                    flat,
                ))
            }
        }
    }

    fn step_quarantine(
        &self,
        p: &Path,
        plan: &RestorePlan,
        run: &mut Run,
        dry: bool,
    ) -> Result<Outcome, VaultError> {
        let dest = self.quarantine_dest(p, &plan.incident);
        let Some(md) = lstat(p).map_err(|e| VaultError::io(p, e))? else {
            if lstat(&dest).ok().flatten().is_some() || self.step_done(&plan.incident, p) {
                return Ok(Outcome::AlreadyQuarantined);
            }
            run.note(p, "created by the lineage, already gone");
            return Ok(Outcome::Skipped);
        };
        if md.dev() != self.dev {
            run.note(
                p,
                "on another filesystem: quarantined by that filesystem's vault",
            );
            return Ok(Outcome::Skipped);
        }
        let mut dest_free = dest.clone();
        let mut n = 1;
        while lstat(&dest_free).ok().flatten().is_some() {
            dest_free = with_suffix(&dest, "", &format!(".{n}"));
            n += 1;
        }
        if dry {
            run.note(p, format!("would quarantine to {}", dest_free.display()));
            return Ok(Outcome::Quarantined);
        }
        if let Some(parent) = dest_free.parent() {
            fs::create_dir_all(parent).map_err(|e| VaultError::io(parent, e))?;
        }
        fs::rename(p, &dest_free).map_err(|e| VaultError::io(p, e))?;
        if let Some(parent) = p.parent() {
            let _ = fileio::fsync_dir(parent);
        }
        if let Some(parent) = dest_free.parent() {
            let _ = fileio::fsync_dir(parent);
        }
        run.note(p, format!("quarantined to {}", dest_free.display()));
        Ok(Outcome::Quarantined)
    }

    fn step_done(&self, incident: &str, p: &Path) -> bool {
        self.db
            .query_row(
                "SELECT outcome FROM restore_steps WHERE incident = ?1 AND key = ?2",
                params![incident, format!("quarantine:{}", p.display())],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .ok()
            .flatten()
            .is_some_and(|o| o == "quarantined" || o == "already-quarantined")
    }
}

fn has_dots(p: &Path) -> bool {
    p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
}

fn step_key(a: &Action) -> String {
    let kind = match a.kind {
        ActionKind::Restore { .. } | ActionKind::Lost => "restore",
        ActionKind::RenameBack { .. } => "rename",
        ActionKind::Quarantine => "quarantine",
    };
    match &a.kind {
        ActionKind::RenameBack { from, .. } => {
            format!("{kind}:{}<-{}", a.path.display(), from.display())
        }
        _ => format!("{kind}:{}", a.path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn plan(renames: &[(&str, &str)], created: &[&str]) -> RestorePlan {
        RestorePlan {
            incident: "t".into(),
            owners: vec![],
            renames: renames
                .iter()
                .map(|(a, b)| (PathBuf::from(a), PathBuf::from(b)))
                .collect(),
            created: created.iter().map(PathBuf::from).collect(),
            contained_at: UNIX_EPOCH,
        }
    }

    #[test]
    fn maps_back_through_chains_and_directories() {
        let p = plan(&[("/d/a", "/d/a.locked"), ("/d", "/e")], &[]);
        let s = simulate(&p);
        assert_eq!(
            original_path(Path::new("/e/a.locked"), &p, &s),
            Path::new("/d/a")
        );
        assert_eq!(original_path(Path::new("/d/a"), &p, &s), Path::new("/d/a"));
        assert_eq!(
            s.moved,
            vec![
                (PathBuf::from("/d/a"), PathBuf::from("/e/a.locked")),
                (PathBuf::from("/d"), PathBuf::from("/e"))
            ]
        );
        assert_eq!(
            s.origin,
            vec![Some(PathBuf::from("/d/a")), Some(PathBuf::from("/d"))]
        );
    }

    #[test]
    fn rename_over_from_a_created_file_is_not_followed_back() {
        let p = plan(&[("/d/a.tmp", "/d/a")], &["/d/a.tmp"]);
        let s = simulate(&p);
        assert_eq!(original_path(Path::new("/d/a"), &p, &s), Path::new("/d/a"));
        assert_eq!(s.created_now, vec![PathBuf::from("/d/a")]);
        assert!(s.moved.is_empty());
        assert_eq!(s.origin, vec![None]);
    }

    #[test]
    fn long_names_stay_within_name_max() {
        let long = "x".repeat(255);
        let p = with_suffix(&Path::new("/d").join(&long), ".", ".ward-restore-i.tmp");
        assert!(p.file_name().unwrap().len() <= 255);
        assert_eq!(safe_name("a/b c"), "a_b_c");
        assert_eq!(safe_name(".."), "incident");
    }
}
