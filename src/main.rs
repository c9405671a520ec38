//! `ward`: ransomware early warning, containment and rollback for Linux servers.
//!
//! This binary only parses arguments and dispatches. The data path lives in the crates
//! (see the README's crate map): `ward-sensor` (event sources) → `ward-engine` (pure
//! detection) → `ward-agent` (policy, preservation, containment) → `ward-response` /
//! `ward-vault` → `ward-store` → `ward-outputs`; `ward-lab` is the simulator, eval, bench
//! and demo.

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
    /// (RUST_LOG=debug for more). A vault of pre-damage copies is kept in .ward-vault/ at
    /// the root of each protected filesystem, outside the protected trees.
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
        /// Format of the lines on stdout: native (the events above) or ecs (one Elastic
        /// Common Schema document per event; implies output on stdout).
        #[arg(long, value_name = "native|ecs")]
        format: Option<String>,
        /// Serve Prometheus metrics (every metric named ward_*) at http://ADDR/metrics.
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Report to this fleet console (https://HOST:PORT; or `[console] url`).
        #[arg(long, value_name = "URL")]
        console: Option<String>,
        /// One-time token from `ward console enroll-token` (needed once, to enroll).
        #[arg(long, value_name = "TOKEN")]
        enroll_token: Option<String>,
        /// Also write every event the engine sees to FILE (JSON lines), for replay.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Directories to protect (default: `paths` and `[[path]]` of the config file).
        paths: Vec<PathBuf>,
    },
    /// Re-run or complete the restore of an incident (idempotent).
    ///
    /// ward restores automatically after containment; use this after an interruption,
    /// or with --dry-run to see what would be done. Exit status 0 when every file is
    /// back, 3 when some are lost (each listed with `lost:`).
    Restore {
        #[arg(long, default_value = "/var/lib/ward")]
        state_dir: PathBuf,
        /// List what would be restored, renamed back, quarantined or is lost; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Incident id (see `ward incidents`).
        id: String,
    },
    /// Lift the block of an SMB client that ward cut off (see `ward incidents`).
    Unblock {
        #[arg(long, default_value = "/var/lib/ward")]
        state_dir: PathBuf,
        /// The settings `ward protect` runs with (for the nftables table name).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The client's address.
        ip: String,
    },
    /// Check a configuration file: exit 0 when valid, 2 with the line and the reason of
    /// each error (unknown keys are errors; a file non-root users can change is refused).
    CheckConfig {
        /// The file (default /etc/ward/ward.toml).
        #[arg(default_value = "/etc/ward/ward.toml")]
        file: PathBuf,
    },
    /// Show the health of the running `ward protect` (from its status socket).
    Status {
        #[arg(long, default_value = "/var/lib/ward")]
        state_dir: PathBuf,
        /// The raw JSON snapshot.
        #[arg(long)]
        json: bool,
    },
    /// List recorded incidents and the SMB client blocks in force.
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
    Simulate(ward_lab::cli::SimArgs),
    /// Show ward at work on a scratch filesystem: corpus, protection, attack, containment.
    ///
    /// With --smb: the hospital's scenario, an infected workstation encrypting a Samba
    /// share, cut off alone while another client keeps working, every file restored.
    Demo {
        /// Play the Samba scenario (smbd, clients in network namespaces).
        #[arg(long)]
        smb: bool,
    },
    /// Score ward against every simulator profile on fresh scratch filesystems (root).
    Eval(ward_lab::eval::EvalArgs),
    /// Measure ward's overhead on file-heavy work against no protection, in the same run (root).
    Bench(ward_lab::bench::BenchArgs),
    /// Run the engine offline over a trace recorded with `ward protect --record`.
    Replay {
        /// Trace file (JSON lines).
        file: PathBuf,
        /// Print verdicts as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// The fleet console: one screen for the trust's security team (HTTPS, web UI at /).
    #[command(subcommand)]
    Console(ConsoleCmd),
    /// Internal: write the man pages (DIR/man/*.1) and shell completions
    /// (DIR/completions/{ward.bash,_ward,ward.fish}) for packaging.
    #[command(name = "__generate", hide = true)]
    Generate { dir: PathBuf },
    /// Internal: systemd generator (packaging/ward-generator): makes the protected paths
    /// of ward.toml writable in the service's sandbox.
    #[command(name = "__systemd-generator", hide = true)]
    SystemdGenerator {
        #[arg(long, default_value = ward_config::DEFAULT_PATH)]
        config: PathBuf,
        normal_dir: PathBuf,
        #[arg(hide = true)]
        other_dirs: Vec<PathBuf>,
    },
    /// Internal: the watchdog process of `ward protect`.
    #[command(name = "__watchdog", hide = true)]
    Watchdog { pid: i32 },
}

#[derive(Subcommand)]
enum ConsoleCmd {
    /// Create the console's CA, server certificate and first admin (prints the admin's
    /// API token and the CA certificate's path once).
    Init {
        #[arg(long)]
        state_dir: PathBuf,
        /// Print {"admin_token":..,"ca_cert":..} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the console (HTTPS with its own CA; agents use mutual TLS).
    Serve {
        #[arg(long)]
        state_dir: PathBuf,
        /// Address to listen on, e.g. 127.0.0.1:8443.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// PostgreSQL URL (default: SQLite in the state directory).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Print a one-time enrollment token for an agent (it carries the CA's fingerprint).
    EnrollToken {
        #[arg(long)]
        state_dir: PathBuf,
    },
}

fn console(c: ConsoleCmd) -> Result<(), ExitError> {
    // Configuration, state and certificate problems are usage errors (2); losing the
    // connection while running is a runtime failure (1).
    let err = |e: ward_console::ConsoleError| match e {
        ward_console::ConsoleError::Connection(_) => ExitError::runtime(e.to_string()),
        _ => ExitError::usage(e.to_string()),
    };
    match c {
        ConsoleCmd::Init { state_dir, json } => {
            let out = ward_console::init(&state_dir).map_err(err)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"admin_token": out.admin_token, "ca_cert": out.ca_cert})
                );
            } else {
                println!("admin API token (shown once): {}", out.admin_token);
                println!("CA certificate: {}", out.ca_cert.display());
            }
            Ok(())
        }
        ConsoleCmd::Serve {
            state_dir,
            listen,
            database_url,
        } => {
            let mut o = ward_console::ServeOptions::new(state_dir, listen);
            o.database_url = database_url;
            ward_console::serve(o).map_err(err)
        }
        ConsoleCmd::EnrollToken { state_dir } => {
            println!("{}", ward_console::enroll_token(&state_dir).map_err(err)?);
            Ok(())
        }
    }
}

/// An error that ends the program with a status and a message.
#[derive(Debug)]
pub struct ExitError {
    pub code: u8,
    pub msg: String,
}

impl From<ward_agent::AgentError> for ExitError {
    fn from(e: ward_agent::AgentError) -> ExitError {
        ExitError {
            code: e.exit_code(),
            msg: e.to_string(),
        }
    }
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
    if matches!(cli.cmd, Cmd::Demo { .. } | Cmd::Eval(_) | Cmd::Bench(_)) {
        // These mount scratch filesystems: an interrupted run must not leave them behind.
        ward_lab::scratchfs::cleanup_on_signals();
    }
    match cli.cmd {
        Cmd::Protect {
            state_dir,
            config,
            json,
            format,
            metrics_addr,
            console,
            enroll_token,
            record,
            paths,
        } => {
            let cfg = ward_agent::settings::load(config.as_deref()).map_err(ExitError::usage)?;
            use ward_agent::sinks::Stdout;
            let stdout = match format.as_deref() {
                Some("ecs") => Stdout::Ecs,
                Some("native") => Stdout::Native,
                None if !json => Stdout::Nothing,
                None => match cfg.outputs.format {
                    ward_config::Format::Ecs => Stdout::Ecs,
                    ward_config::Format::Native => Stdout::Native,
                },
                Some(other) => {
                    return Err(ExitError::usage(format!(
                        "--format {other}: use native or ecs"
                    )))
                }
            };
            let mut sinks = ward_agent::sinks::build(&cfg, stdout, &state_dir)?;
            if let Some(url) = console.or(cfg.console.url.clone()) {
                let token = enroll_token.or(cfg.console.enroll_token.clone());
                sinks.push(Box::new(ward_agent::console::client(
                    &url, token, &state_dir, &cfg,
                )?));
            }
            let metrics_addr = metrics_addr.or(cfg.outputs.metrics_addr);
            let paths = if paths.is_empty() {
                cfg.protected_paths()
            } else {
                paths
            };
            Ok(ward_agent::protect::run(
                ward_agent::protect::ProtectOptions {
                    paths,
                    state_dir,
                    cfg,
                    sinks,
                    record,
                    metrics_addr,
                },
            )?)
        }
        Cmd::Unblock {
            state_dir,
            config,
            ip,
        } => {
            let cfg = ward_agent::settings::load(config.as_deref()).map_err(ExitError::usage)?;
            Ok(ward_agent::report::unblock(&state_dir, &ip, &cfg)?)
        }
        Cmd::CheckConfig { file } => match ward_config::check(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(())
            }
            Err(errors) => Err(ExitError::usage(format!(
                "{} error(s) in {}:\n{errors}",
                errors.len(),
                file.display()
            ))),
        },
        Cmd::Status { state_dir, json } => {
            let v = ward_outputs::status_client(state_dir.join("status.sock"))
                .map_err(|e| ExitError::usage(e.to_string()))?;
            if json {
                println!("{v}");
            } else {
                print!("{}", ward_outputs::format_status(&v));
            }
            Ok(())
        }
        Cmd::Incidents { state_dir, json } => Ok(ward_agent::report::incidents(&state_dir, json)?),
        Cmd::Restore {
            state_dir,
            dry_run,
            id,
        } => Ok(ward_agent::restore::run(&state_dir, &id, dry_run)?),
        Cmd::Simulate(a) => Ok(ward_lab::cli::simulate(a)?),
        Cmd::Demo { smb: false } => Ok(ward_lab::demo::run()?),
        Cmd::Demo { smb: true } => Ok(ward_lab::demo_smb::run()?),
        Cmd::Eval(a) => Ok(ward_lab::eval::run(a)?),
        Cmd::Bench(a) => Ok(ward_lab::bench::run(a)?),
        Cmd::Replay { file, json } => Ok(ward_agent::report::replay(&file, json)?),
        Cmd::Generate { dir } => generate(&dir),
        Cmd::SystemdGenerator {
            config, normal_dir, ..
        } => {
            systemd_generator(&config, &normal_dir);
            Ok(())
        }
        Cmd::Console(c) => console(c),
        Cmd::Watchdog { pid } => {
            let code = ward_agent::watchdog::run(pid);
            std::process::exit(code);
        }
    }
}

/// Man pages (one per subcommand, from the clap definitions) and shell completions.
fn generate(dir: &std::path::Path) -> Result<(), ExitError> {
    use clap::CommandFactory;
    let io = |what: &str, e: std::io::Error| ExitError::runtime(format!("{what}: {e}"));
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man).map_err(|e| io("man directory", e))?;
    std::fs::create_dir_all(&comp).map_err(|e| io("completions directory", e))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man).map_err(|e| io("man pages", e))?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "ward.bash"),
        (clap_complete::Shell::Zsh, "_ward"),
        (clap_complete::Shell::Fish, "ward.fish"),
    ] {
        let mut f = std::fs::File::create(comp.join(name)).map_err(|e| io(name, e))?;
        // Only the public subcommands (clap_mangen already skips hidden ones).
        let mut public = clap::Command::new("ward")
            .version(env!("CARGO_PKG_VERSION"))
            .propagate_version(true)
            .subcommand_required(true)
            .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        clap_complete::generate(shell, &mut public, "ward", &mut f);
    }
    Ok(())
}

/// The systemd generator: never fails (boot goes on), says what went wrong on stderr.
fn systemd_generator(config: &std::path::Path, normal_dir: &std::path::Path) {
    let cfg = match ward_config::check(config) {
        Ok(c) => c,
        Err(_) if !config.exists() => return,
        Err(e) => {
            eprintln!("ward-generator: {e}");
            return;
        }
    };
    let Some(text) = cfg.systemd_dropin() else {
        return;
    };
    let dir = normal_dir.join("ward.service.d");
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("50-ward-paths.conf"), text))
    {
        eprintln!("ward-generator: writing {}: {e}", dir.display());
    }
}
