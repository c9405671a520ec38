//! `ward`: ransomware early warning, containment and rollback for Linux servers.
//!
//! This binary is a thin command-line layer over the crates in `crates/`:
//! `ward-sensor` (fanotify + process attribution) → `ward-engine` (pure detection) →
//! `ward-response` (freeze/kill) → `ward-store` (incidents); `ward-sim` provides the safe
//! attack simulator and scratch filesystems for `simulate`, `demo` and the tests.

mod bench;
mod config;
mod decoys;
mod demo;
mod eval;
mod output;
mod protect;
mod replay;
mod restore;
mod vaultd;
mod watchdog;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_HELP: &str = "\
Exit status:
  0  success (for protect: stopped by SIGTERM/SIGINT)
  1  runtime failure (an unexpected error while running; the message says what)
  2  usage, configuration or environment error (bad arguments or paths, not root,
     kernel or filesystem without the features ward needs)";

/// ward: notices mass encryption of files within milliseconds, freezes and kills the
/// process tree doing it, and records what happened.
#[derive(Parser)]
#[command(version, about, after_help = EXIT_HELP, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Protect the files under each PATH (runs in the foreground; needs root).
    ///
    /// With --json, stdout carries one JSON object per line: "ready" once protection is
    /// active (with the protections the kernel allowed), "incident" for each contained
    /// attack, "restored" when its files are back (files_restored, files_lost,
    /// files_quarantined), "stopped" on SIGTERM/SIGINT. Human-readable logs go to stderr
    /// (RUST_LOG=debug for more). A vault of pre-damage copies is kept in .ward-vault/ in
    /// the first protected directory of each filesystem.
    #[command(after_help = EXIT_HELP)]
    Protect {
        /// Where incidents are recorded (SQLite).
        #[arg(long, default_value = "/var/lib/ward")]
        state_dir: PathBuf,
        /// TOML settings: damage_threshold, decoys, boundary_programs, kill, vault,
        /// vault_max_mib, vault_max_file_mib, vault_retention_hours, trusted_programs,
        /// trust_after_secs (see the README).
        #[arg(long)]
        config: Option<PathBuf>,
        /// JSON lines on stdout.
        #[arg(long)]
        json: bool,
        /// Also write every event the engine sees to FILE (JSON lines), for replay.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Directories to protect.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Re-run or complete the restore of an incident (idempotent).
    ///
    /// ward restores automatically after containment; use this after an interruption,
    /// or with --dry-run to see what would be done.
    Restore {
        #[arg(long, default_value = "/var/lib/ward")]
        state_dir: PathBuf,
        /// List what would be restored, renamed back, quarantined or is lost; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Incident id (see `ward incidents`).
        id: String,
    },
    /// List recorded incidents.
    Incidents {
        #[arg(long, default_value = "/var/lib/ward")]
        state_dir: PathBuf,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Run a ransomware family or a benign workload against a scratch directory.
    ///
    /// Safe by construction: it only touches files it created itself in DIR (listed in
    /// DIR/.ward-sim.json) and never follows symlinks. Create the scratch corpus first
    /// with --init (in a separate step, so the files pre-exist the attack, as real data
    /// does).
    Simulate(SimArgs),
    /// Show ward at work on a scratch filesystem: corpus, protection, attack, containment.
    Demo,
    /// Score ward against every simulator profile on fresh scratch filesystems (root).
    Eval(eval::EvalArgs),
    /// Measure ward's overhead on file-heavy work against no protection, in the same run (root).
    Bench(bench::BenchArgs),
    /// Run the engine offline over a trace recorded with `ward protect --record`.
    Replay {
        /// Trace file (JSON lines).
        file: PathBuf,
        /// Print verdicts as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Internal: the watchdog process of `ward protect`.
    #[command(name = "__watchdog", hide = true)]
    Watchdog { pid: i32 },
}

/// An error that ends the program with a status and a message.
#[derive(Debug)]
pub struct ExitError {
    pub code: u8,
    pub msg: String,
}

impl ExitError {
    pub fn usage(msg: impl Into<String>) -> ExitError {
        ExitError {
            code: 2,
            msg: msg.into(),
        }
    }
    pub fn runtime(msg: impl Into<String>) -> ExitError {
        ExitError {
            code: 1,
            msg: msg.into(),
        }
    }
}

fn main() -> ExitCode {
    // The simulator's fork-per-file children use the same binary with a legacy shape
    // (`ward simulate __child --dir DIR REL`); map it onto the hidden --child flag.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() >= 3 && args[1] == "simulate" && args[2] == "__child" {
        args.remove(2);
        if let Some(rel) = args.pop() {
            args.push("--child".into());
            args.push(rel);
        }
    }
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ward: {}", e.msg);
            ExitCode::from(e.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), ExitError> {
    if matches!(cli.cmd, Cmd::Demo | Cmd::Eval(_) | Cmd::Bench(_)) {
        // These mount scratch filesystems: an interrupted run must not leave them behind.
        ward_sim::scratchfs::cleanup_on_signals();
    }
    match cli.cmd {
        Cmd::Protect {
            state_dir,
            config,
            json,
            record,
            paths,
        } => protect::run(protect::ProtectOptions {
            paths,
            state_dir,
            config,
            json,
            record,
        }),
        Cmd::Incidents { state_dir, json } => incidents(&state_dir, json),
        Cmd::Restore {
            state_dir,
            dry_run,
            id,
        } => restore::run(&state_dir, &id, dry_run),
        Cmd::Simulate(a) => simulate(a),
        Cmd::Demo => demo::run(),
        Cmd::Eval(a) => eval::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Replay { file, json } => replay::run(&file, json),
        Cmd::Watchdog { pid } => {
            let code = watchdog::run(pid);
            std::process::exit(code);
        }
    }
}

fn incidents(state_dir: &std::path::Path, json: bool) -> Result<(), ExitError> {
    if !state_dir.join("ward.db").exists() {
        if json {
            return Ok(());
        }
        println!(
            "No incidents recorded in {} (no database yet).",
            state_dir.display()
        );
        return Ok(());
    }
    let store = ward_store::Store::open(state_dir).map_err(|e| ExitError::usage(e.to_string()))?;
    let list = store
        .list()
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    if json {
        for i in &list {
            println!("{}", serde_json::to_string(i).expect("incident serialises"));
        }
        return Ok(());
    }
    if list.is_empty() {
        println!("No incidents recorded in {}.", state_dir.display());
        return Ok(());
    }
    println!(
        "{:<28} {:<20} {:>7} {:>6} {:>9} {:<8} {:<8} PROGRAM",
        "ID", "DETECTED (UTC)", "PID", "FILES", "CONTAIN", "ACTION", "RESTORE"
    );
    for i in &list {
        println!(
            "{:<28} {:<20} {:>7} {:>6} {:>7.1}ms {:<8} {:<8} {}",
            i.id,
            i.detected_at.format("%Y-%m-%d %H:%M:%S"),
            i.pid,
            i.files_damaged,
            i.contain_ms,
            i.action,
            i.restore,
            if i.cmdline.is_empty() {
                i.exe.clone()
            } else {
                i.cmdline.join(" ")
            }
        );
    }
    Ok(())
}

/// Arguments of `ward simulate`.
#[derive(clap::Args)]
struct SimArgs {
    /// Profile name (see --list).
    profile: Option<String>,
    /// Scratch directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// List the profiles.
    #[arg(long)]
    list: bool,
    /// Create DIR (must not exist or be empty) with a realistic corpus, then exit.
    #[arg(long)]
    init: bool,
    /// Corpus size for --init.
    #[arg(long, default_value_t = ward_sim::DEFAULT_FILES)]
    files: usize,
    /// Corpus seed for --init.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pause between files, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Stop after this many files.
    #[arg(long)]
    max_files: Option<usize>,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Internal: one fork-per-file child.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
}

fn simulate(a: SimArgs) -> Result<(), ExitError> {
    let sim_err = |e: ward_sim::SimError| match e {
        ward_sim::SimError::Io { .. } | ward_sim::SimError::ToolFailed { .. } => {
            ExitError::runtime(e.to_string())
        }
        _ => ExitError::usage(e.to_string()),
    };
    if a.list {
        println!("{:<20} {:<7} DESCRIPTION", "PROFILE", "KIND");
        for p in ward_sim::profiles() {
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
        return ward_sim::child_one(&dir, &rel).map_err(sim_err);
    }
    if a.init {
        let m = ward_sim::init_corpus(&dir, a.files, a.seed).map_err(sim_err)?;
        eprintln!("created {} files in {}", m.files.len(), dir.display());
        return Ok(());
    }
    let profile = a
        .profile
        .ok_or_else(|| ExitError::usage("give a PROFILE (see ward simulate --list)"))?;
    let opts = ward_sim::RunOptions {
        delay: std::time::Duration::from_millis(a.delay_ms),
        max_files: a.max_files,
        exe: std::env::current_exe().map_err(|e| ExitError::runtime(e.to_string()))?,
    };
    let report = ward_sim::run(&profile, &dir, &opts).map_err(sim_err)?;
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
