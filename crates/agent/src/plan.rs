//! Restore planning, shared by the agent (automatic restore after containment, resumed
//! after a restart) and `ward restore`: what a contained lineage did (the processes on
//! whose behalf files were preserved, its renames, the files it created) becomes a
//! [`PlanRecord`] stored with the incident; the vault turns it into actions.

use crate::agent::{Agent, UNSETTLED_MAX};
use crate::vaultd::Job;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use ward_engine::ProcId;
use ward_sensor::EventSource;
use ward_vault::{Owner, RestorePlan, RestoreReport, Vault};

/// The original paths the vaults can restore or rename back for this plan.
pub fn covered_paths<'a>(
    vaults: impl IntoIterator<Item = &'a Vault>,
    plan: &RestorePlan,
) -> std::collections::HashSet<PathBuf> {
    vaults
        .into_iter()
        .filter_map(|v| v.plan_restore(plan).ok())
        .flatten()
        .filter(|a| {
            !matches!(
                a.kind,
                ward_vault::ActionKind::Quarantine | ward_vault::ActionKind::Lost
            )
        })
        .map(|a| a.path)
        .collect()
}

/// A damaged file the vault holds nothing for was never preserved (vault full, file too
/// large, a copy that timed out, a kind of write ward cannot see): count it lost, so that
/// `files_lost` never claims more than the vault can deliver.
pub fn count_unpreserved(
    total: &mut RestoreReport,
    damaged: &[PathBuf],
    plan: &RestorePlan,
    covered: &std::collections::HashSet<PathBuf>,
) {
    let mut seen = std::collections::HashSet::new();
    for d in damaged {
        let orig = original_path(d, &plan.renames);
        if seen.insert(orig.clone()) && !covered.contains(&orig) {
            total.files_lost += 1;
            total.details.push((
                orig,
                "lost: damaged before containment, but never preserved".into(),
            ));
        }
    }
}

/// Map a path back through the lineage's renames (newest first) to the name it had.
fn original_path(p: &Path, renames: &[(PathBuf, PathBuf)]) -> PathBuf {
    let mut cur = p.to_path_buf();
    for (from, to) in renames.iter().rev() {
        if *to == cur {
            cur = from.clone();
        }
    }
    cur
}

/// Add one vault's restore report to the total.
pub fn merge(total: &mut RestoreReport, r: RestoreReport) {
    total.files_restored += r.files_restored;
    total.files_lost += r.files_lost;
    total.files_quarantined += r.files_quarantined;
    total.already_ok += r.already_ok;
    total.already_quarantined += r.already_quarantined;
    total.failed += r.failed;
    total.conflicts.extend(r.conflicts);
    total.details.extend(r.details);
}

/// The restore plan of an incident as recorded in the incident store (so a restart, or
/// `ward restore ID`, can finish it).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PlanRecord {
    /// Incident id.
    pub incident: String,
    /// Files the engine saw damaged (paths at the time of damage).
    #[serde(default)]
    pub damaged: Vec<PathBuf>,
    /// Vault directories holding the preserved files.
    pub vaults: Vec<PathBuf>,
    /// (pid, start time) of every process whose opens were preserved for this lineage.
    pub owners: Vec<(u32, u64)>,
    /// Renames the lineage made, in order.
    pub renames: Vec<(PathBuf, PathBuf)>,
    /// Files the lineage created (to quarantine).
    pub created: Vec<PathBuf>,
    /// Containment time, ns since the Unix epoch.
    pub contained_at_ns: u64,
}

impl PlanRecord {
    /// The vault's view of this plan.
    pub fn to_plan(&self) -> RestorePlan {
        RestorePlan {
            incident: self.incident.clone(),
            owners: self
                .owners
                .iter()
                .map(|&(pid, start)| Owner { pid, start })
                .collect(),
            renames: self.renames.clone(),
            created: self.created.clone(),
            contained_at: std::time::UNIX_EPOCH + Duration::from_nanos(self.contained_at_ns),
        }
    }
}

impl<S: EventSource> Agent<S> {
    /// What to restore for a contained lineage: the processes on whose behalf files were
    /// preserved, its renames and the files it created.
    pub(crate) fn plan_record(
        &self,
        incident: &str,
        root: ProcId,
        contained_at: SystemTime,
        damaged: &[String],
    ) -> PlanRecord {
        let in_lineage = |chain: &Vec<ProcId>| chain.contains(&root);
        let created: Vec<PathBuf> = self
            .engine
            .files_created_by(root)
            .into_iter()
            .map(PathBuf::from)
            .collect();
        PlanRecord {
            incident: incident.to_string(),
            // What the engine judged damaged, and what the lineage wrote although no copy
            // could be made: lost unless the vault holds it after all (count_unpreserved).
            damaged: damaged
                .iter()
                .chain(self.engine.damaged_since_verdict(root))
                .map(PathBuf::from)
                .chain(
                    self.unpreserved
                        .values()
                        // (not the lineage's own files: those are quarantined)
                        .filter(|(p, chain, written)| {
                            *written && in_lineage(chain) && !created.contains(p)
                        })
                        .map(|(p, _, _)| p.clone()),
                )
                .collect(),
            vaults: self
                .vault
                .as_ref()
                .map(|v| v.dirs.values().cloned().collect())
                .unwrap_or_default(),
            owners: self
                .owners
                .iter()
                .filter(|(p, chain)| **p == root || in_lineage(chain))
                .map(|(p, _)| (p.pid, p.start))
                .collect(),
            renames: self
                .renames
                .iter()
                .filter(|(chain, _, _)| in_lineage(chain))
                .map(|(_, a, b)| (PathBuf::from(a), PathBuf::from(b)))
                .collect(),
            created,
            contained_at_ns: contained_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }

    /// Record a restore plan durably (a restart resumes it).
    pub(crate) fn save_plan(&self, rec: &PlanRecord) {
        let (id, plan) = (
            rec.incident.clone(),
            serde_json::to_string(rec).expect("plan serialises"),
        );
        self.store.run(move |s| {
            if let Err(e) = s.put_plan(&id, &plan) {
                tracing::error!("recording the restore plan of {id}: {e}");
            }
        });
    }

    pub(crate) fn start_due_restores(&mut self) {
        // A member the responder ends (SMB cut-off) must be gone; others settled.
        fn done_with(d: &crate::agent::DueRestore, p: u32) -> bool {
            if d.until_gone {
                ward_response::state(p).is_none_or(|s| s == 'Z' || s == 'X')
            } else {
                ward_response::settled(p)
            }
        }
        if self.restores_due.is_empty() {
            return;
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.restores_due.drain(..).partition(|d| {
            d.due <= now && (d.give_up <= now || d.unsettled.iter().all(|&p| done_with(d, p)))
        });
        self.restores_due = later;
        for mut d in due {
            if !d.unsettled.is_empty() {
                // Settled only now (or given up): its last writes may have landed until now.
                let left: Vec<u32> = d
                    .unsettled
                    .iter()
                    .copied()
                    .filter(|&p| !done_with(&d, p))
                    .collect();
                if !left.is_empty() {
                    tracing::warn!(
                        "incident {}: process(es) {left:?} still inside a system call {} s after \
                         containment; restoring anyway (files they change later are kept as conflicts)",
                        d.incident,
                        UNSETTLED_MAX.as_secs()
                    );
                }
                d.contained_at = d.contained_at.max(std::time::SystemTime::now());
            }
            let rec = self.plan_record(&d.incident, d.root, d.contained_at, &d.damaged);
            self.save_plan(&rec);
            if let Some(v) = &self.vault {
                v.send(Job::Restore {
                    plan: rec.to_plan(),
                    damaged: rec.damaged.clone(),
                });
            }
        }
    }
}
