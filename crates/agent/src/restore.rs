//! `ward restore [--state-dir DIR] [--dry-run] ID`: re-run or complete the restore of an
//! incident. Idempotent: files already restored are left alone, so it is safe to run
//! again after an interruption (it is also what `ward protect` does at start-up for
//! restores that did not finish).

use crate::plan::{count_unpreserved, covered_paths, merge, PlanRecord};
use crate::AgentError;
use std::io::Write;
use std::path::Path;
use ward_vault::{Limits, RestoreReport, Vault};

/// Run `ward restore`: restore (or with `dry_run` list) what incident `id` damaged.
pub fn run(state_dir: &Path, id: &str, dry_run: bool) -> Result<(), AgentError> {
    if !state_dir.join("ward.db").exists() {
        return Err(AgentError::usage(format!(
            "no incident database in {}; give the --state-dir that `ward protect` used",
            state_dir.display()
        )));
    }
    let store = ward_store::Store::open(state_dir).map_err(|e| AgentError::usage(e.to_string()))?;
    if store
        .get(id)
        .map_err(|e| AgentError::runtime(e.to_string()))?
        .is_none()
    {
        return Err(AgentError::usage(format!(
            "no incident {id} in {}; `ward incidents` lists them",
            state_dir.display()
        )));
    }
    let plan = store
        .plan(id)
        .map_err(|e| AgentError::runtime(e.to_string()))?
        .ok_or_else(|| {
            AgentError::usage(format!(
                "incident {id} has no restore plan: the vault was not active when it happened"
            ))
        })?;
    let rec: PlanRecord = serde_json::from_str(&plan)
        .map_err(|e| AgentError::runtime(format!("restore plan of {id} is unreadable: {e}")))?;
    let plan = rec.to_plan();
    let mut total = RestoreReport::default();
    let mut vaults = Vec::new();
    for dir in &rec.vaults {
        if !dir.exists() {
            return Err(AgentError::runtime(format!(
                "vault {} is missing: the preserved files of {id} are gone",
                dir.display()
            )));
        }
        vaults.push(
            Vault::open(dir, Limits::default())
                .map_err(|e| AgentError::runtime(format!("{}: {e}", dir.display())))?,
        );
    }
    let covered = covered_paths(vaults.iter(), &plan);
    for vault in &mut vaults {
        if dry_run {
            let actions = vault
                .plan_restore(&plan)
                .map_err(|e| AgentError::runtime(e.to_string()))?;
            for a in actions {
                let what = match &a.kind {
                    ward_vault::ActionKind::Restore { method, .. } => {
                        format!("restore ({})", method.as_str())
                    }
                    ward_vault::ActionKind::Lost => "LOST".to_string(),
                    ward_vault::ActionKind::RenameBack { from, .. } => {
                        format!("rename back from {}", from.display())
                    }
                    ward_vault::ActionKind::Quarantine => "quarantine".to_string(),
                };
                println!("{what:<24} {}  {}", a.path.display(), a.note);
            }
            continue;
        }
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut progress = |done: usize, all: usize| {
            if tty && all > 0 {
                let width = 30;
                let filled = done * width / all.max(1);
                eprint!(
                    "\rrestoring [{}{}] {done}/{all}",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                let _ = std::io::stderr().flush();
            }
        };
        let r = vault.restore(&plan, &mut progress).map_err(|e| {
            AgentError::runtime(format!("restore failed: {e}; run the command again"))
        })?;
        if tty {
            eprintln!();
        }
        merge(&mut total, r);
    }
    count_unpreserved(&mut total, &rec.damaged, &plan, &covered);
    if dry_run {
        for (p, what) in &total.details {
            println!("{:<24} {}  {what}", "LOST", p.display());
        }
        return Ok(());
    }
    let status = if total.files_lost == 0 {
        ward_model::RestoreStatus::Done
    } else {
        ward_model::RestoreStatus::Partial
    };
    store
        .finish_restore(id, status)
        .map_err(|e| AgentError::runtime(e.to_string()))?;
    println!(
        "incident {id}: {} file(s) restored, {} already intact, {} quarantined, {} lost, {} conflict(s)",
        total.files_restored,
        total.already_ok,
        total.files_quarantined,
        total.files_lost,
        total.conflicts.len()
    );
    for c in &total.conflicts {
        println!("  changed after the attack, kept both: {}", c.display());
    }
    for (p, what) in &total.details {
        if what.contains("lost") {
            println!("  lost: {} ({what})", p.display());
        }
    }
    if total.files_lost > 0 {
        return Err(AgentError::Incomplete(format!(
            "{} file(s) of incident {id} could not be restored (listed above as lost): \
             ward never held a copy of them; recover them from a backup",
            total.files_lost
        )));
    }
    Ok(())
}
