//! `ward simulate`: the simulator's command line (the binary only dispatches here).

use std::path::PathBuf;
use ward_agent::AgentError as ExitError;

/// Arguments of `ward simulate`.
#[derive(clap::Args)]
pub struct SimArgs {
    /// Profile name (see --list).
    pub profile: Option<String>,
    /// Scratch directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// List the profiles.
    #[arg(long)]
    pub list: bool,
    /// Create DIR (must not exist or be empty) with a realistic corpus, then exit.
    #[arg(long)]
    pub init: bool,
    /// Corpus size for --init.
    #[arg(long, default_value_t = crate::DEFAULT_FILES)]
    pub files: usize,
    /// Corpus seed for --init.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pause between files, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Stop after this many files.
    #[arg(long)]
    pub max_files: Option<usize>,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Internal: one fork-per-file child.
    #[arg(long, hide = true)]
    pub child: Option<PathBuf>,
}

/// Run `ward simulate`.
pub fn simulate(a: SimArgs) -> Result<(), ExitError> {
    let sim_err = |e: crate::SimError| match e {
        crate::SimError::Io { .. } | crate::SimError::ToolFailed { .. } => {
            ExitError::runtime(e.to_string())
        }
        _ => ExitError::usage(e.to_string()),
    };
    if a.list {
        println!("{:<20} {:<7} DESCRIPTION", "PROFILE", "KIND");
        for p in crate::profiles() {
            println!(
                "{:<20} {:<7} {}",
                p.name,
                format!("{:?}", p.kind).to_lowercase(),
                p.description
            );
        }
        return Ok(());
    }
    let dir = a
        .dir
        .ok_or_else(|| ExitError::usage("--dir DIR is required (see ward simulate --help)"))?;
    if let Some(rel) = a.child {
        return crate::child_one(&dir, &rel).map_err(sim_err);
    }
    if a.init {
        let m = crate::init_corpus(&dir, a.files, a.seed).map_err(sim_err)?;
        eprintln!("created {} files in {}", m.files.len(), dir.display());
        return Ok(());
    }
    let profile = a
        .profile
        .ok_or_else(|| ExitError::usage("give a PROFILE (see ward simulate --list)"))?;
    let opts = crate::RunOptions {
        delay: std::time::Duration::from_millis(a.delay_ms),
        max_files: a.max_files,
        exe: std::env::current_exe().map_err(|e| ExitError::runtime(e.to_string()))?,
    };
    let report = crate::run(&profile, &dir, &opts).map_err(sim_err)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serialises")
        );
    } else {
        eprintln!(
            "{}: touched {} file(s), created {}, in {} ms",
            report.profile,
            report.files_touched.len(),
            report.files_created.len(),
            report.duration_ms
        );
    }
    Ok(())
}
