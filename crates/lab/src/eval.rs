//! `ward eval`: the scorecard.
//!
//! For every simulator profile (or the ones given with `--profiles`), on a fresh scratch
//! filesystem each time:
//!
//! 1. a deterministic corpus (`--files`, `--seed`) is created in `share/` by a separate
//!    `ward simulate --init` process (so the files pre-exist everything that follows);
//! 2. a real `ward protect --json` is started on `share/` (state directory outside the
//!    mount) and the SHA-256 manifest of the corpus is taken;
//! 3. `ward simulate PROFILE --dir share` runs in its own process;
//! 4. measured: whether an incident came (attacks: detected and contained; benign
//!    workloads: a false incident), the corpus files changed or missing right after
//!    containment (before any restore: "touched"), the incident's `contain_ms` (first
//!    damaging write → contained), and — after the `restored` event when the vault is
//!    active, else at once — the corpus files still changed or missing ("lost").
//!
//! The scorecard (table on stdout, or one JSON document with `--json`) ends with the
//! totals against the targets of BRIEF §7. Progress goes to stderr. A missed target is a
//! measurement, not an error: the exit status is 0; it is 1 only when the evaluation
//! itself could not run (scratch filesystem, corpus, `ward protect` or a simulator failure).

use crate::driver::Ward;
use crate::scratchfs::{FsKind, ScratchFs};
use crate::Kind;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use ward_agent::AgentError as ExitError;

/// Arguments of `ward eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Filesystem of the scratch images: ext4, xfs, btrfs (or tmpfs).
    #[arg(long, default_value = "ext4")]
    pub fs: String,
    /// Corpus size per profile.
    #[arg(long, default_value_t = 200)]
    pub files: usize,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only these profiles (comma-separated; see `ward simulate --list`).
    #[arg(long, value_delimiter = ',')]
    pub profiles: Vec<String>,
    /// Files processed by the `slow` profile (one every 3 s), to keep the run short.
    #[arg(long, default_value_t = 6)]
    pub slow_files: usize,
    /// Cap on the files every other profile processes (default: the whole corpus).
    #[arg(long)]
    pub max_files: Option<usize>,
    /// How long to wait for a `restored` event after an incident (vault active), seconds.
    #[arg(long, default_value_t = 30)]
    pub restore_timeout: u64,
    /// Give up on a simulator run after this many seconds (it is killed; counted as an
    /// infrastructure failure).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// The scorecard as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How long to keep listening after a run ends, for late incidents.
const SETTLE: Duration = Duration::from_millis(1500);

/// The result of one profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileResult {
    pub profile: String,
    pub kind: Kind,
    /// Attacks: an incident was raised.
    pub detected: bool,
    /// Attacks: the incident's action was `killed` or `frozen`.
    pub contained: bool,
    /// Number of incidents raised during the run (for benign profiles: false incidents).
    pub incidents: usize,
    pub action: Option<String>,
    pub indicators: Vec<String>,
    /// Corpus files changed or missing right after containment (or at the end of the run
    /// when nothing was contained), before any restore.
    pub files_touched: usize,
    /// Files the incident counted as damaged.
    pub files_damaged: Option<u64>,
    /// Attacks: corpus files still changed or missing after recovery.
    pub files_lost: Option<usize>,
    /// Files restored / quarantined by the vault (when a `restored` event came).
    pub files_restored: Option<u64>,
    pub files_quarantined: Option<u64>,
    /// First damaging write → contained, milliseconds (from the incident).
    pub contain_ms: Option<f64>,
    /// How the simulator ended: "ok", "killed", "exit N", "signal N".
    pub sim_exit: String,
    /// Files the simulator processed (its `--max-files` cap, if any).
    pub max_files: Option<usize>,
    pub wall_ms: u64,
    /// Benign profiles: the workload failed under protection (ward broke honest work),
    /// with the simulator's last words.
    pub workload_failed: Option<String>,
    /// Infrastructure failure for this profile (the profile is not scored).
    pub error: Option<String>,
    /// Examples of touched files (up to 5).
    pub touched_examples: Vec<String>,
}

/// The whole scorecard.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub version: &'static str,
    pub fs: String,
    pub files: usize,
    pub seed: u64,
    /// The `ready.protections` of the first `ward protect` started.
    pub protections: Value,
    pub vault: bool,
    pub profiles: Vec<ProfileResult>,
    pub totals: Totals,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub attacks: usize,
    pub attacks_detected: usize,
    pub attacks_contained: usize,
    pub missed: Vec<String>,
    pub files_touched_total: usize,
    /// Over all attacks (a missed attack counts with all the files it touched).
    pub median_files_touched: Option<f64>,
    /// Over detected attacks.
    pub median_contain_ms: Option<f64>,
    pub files_lost_total: usize,
    pub benign: usize,
    pub false_incidents: usize,
    pub false_positive_profiles: Vec<String>,
    /// Benign workloads that failed under protection.
    pub benign_failed: Vec<String>,
    pub errors: usize,
    pub wall_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: &'static str,
    pub target: &'static str,
    pub measured: String,
    pub met: bool,
}

pub fn run(a: EvalArgs) -> Result<(), ExitError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(ExitError::usage(
            "ward eval needs root (it mounts scratch filesystems and runs `ward protect`): run `sudo ward eval`",
        ));
    }
    let kind = FsKind::parse(&a.fs).ok_or_else(|| {
        ExitError::usage(format!(
            "unknown filesystem `{}` for --fs: use ext4, xfs, btrfs or tmpfs",
            a.fs
        ))
    })?;
    if a.files < 8 {
        return Err(ExitError::usage(
            "--files must be at least 8 (attacks need a few files to be judged)",
        ));
    }
    let all = crate::profiles();
    let selected: Vec<&crate::ProfileInfo> = if a.profiles.is_empty() {
        all.iter().collect()
    } else {
        let mut v = Vec::new();
        for name in &a.profiles {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            match all.iter().find(|p| p.name == name) {
                Some(p) => v.push(p),
                None => {
                    return Err(ExitError::usage(format!(
                        "unknown profile `{name}` in --profiles; run `ward simulate --list` to see them"
                    )))
                }
            }
        }
        v
    };
    if selected.is_empty() {
        return Err(ExitError::usage("--profiles selects no profile"));
    }
    let exe = std::env::current_exe()
        .map_err(|e| ExitError::runtime(format!("cannot find the ward binary: {e}")))?;

    let t0 = Instant::now();
    let mut protections = Value::Null;
    let mut results = Vec::new();
    let n = selected.len();
    let tty = std::io::stderr().is_terminal();
    for (i, p) in selected.iter().enumerate() {
        let head = format!("[{}/{n}] {:<20}", i + 1, p.name);
        if tty {
            eprint!("{head} {} …", p.kind);
            let _ = std::io::stderr().flush();
        }
        let r = run_profile(&exe, kind, &a, p, &mut protections);
        if tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{head} {}", summary(&r));
        results.push(r);
    }
    let card = scorecard(&a, protections, results, t0.elapsed());
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&card).expect("scorecard serialises")
        );
    } else {
        print_table(&card);
    }
    // Nothing may stay mounted: ScratchFs guards were dropped at the end of each profile.
    if card.totals.errors > 0 {
        return Err(ExitError::runtime(format!(
            "{} profile(s) could not be evaluated (see the `error` column/field); the scorecard is incomplete",
            card.totals.errors
        )));
    }
    Ok(())
}

fn summary(r: &ProfileResult) -> String {
    if let Some(e) = &r.error {
        return format!("ERROR: {e}");
    }
    match r.kind {
        Kind::Attack if r.detected => format!(
            "detected ({}), {} file(s) touched, {} lost, contained in {} ms [{:.1} s]",
            r.action.as_deref().unwrap_or("?"),
            r.files_touched,
            r.files_lost.map_or("?".into(), |l| l.to_string()),
            r.contain_ms.map_or("?".into(), |m| format!("{m:.1}")),
            r.wall_ms as f64 / 1000.0
        ),
        Kind::Attack => format!(
            "MISSED, {} file(s) touched, {} lost [{:.1} s]",
            r.files_touched,
            r.files_lost.map_or("?".into(), |l| l.to_string()),
            r.wall_ms as f64 / 1000.0
        ),
        Kind::Benign if r.incidents > 0 => format!(
            "FALSE INCIDENT x{} ({}) [{:.1} s]",
            r.incidents,
            r.indicators.join(","),
            r.wall_ms as f64 / 1000.0
        ),
        Kind::Benign => match &r.workload_failed {
            Some(w) => format!(
                "quiet, but the workload FAILED under protection ({w}) [{:.1} s]",
                r.wall_ms as f64 / 1000.0
            ),
            None => format!("quiet [{:.1} s]", r.wall_ms as f64 / 1000.0),
        },
    }
}

fn empty_result(p: &crate::ProfileInfo) -> ProfileResult {
    ProfileResult {
        profile: p.name.to_string(),
        kind: p.kind,
        detected: false,
        contained: false,
        incidents: 0,
        action: None,
        indicators: Vec::new(),
        files_touched: 0,
        files_damaged: None,
        files_lost: None,
        files_restored: None,
        files_quarantined: None,
        contain_ms: None,
        sim_exit: String::new(),
        max_files: None,
        wall_ms: 0,
        workload_failed: None,
        error: None,
        touched_examples: Vec::new(),
    }
}

fn run_profile(
    exe: &Path,
    kind: FsKind,
    a: &EvalArgs,
    p: &crate::ProfileInfo,
    protections: &mut Value,
) -> ProfileResult {
    let t0 = Instant::now();
    let mut r = empty_result(p);
    if let Err(e) = measure(exe, kind, a, p, protections, &mut r) {
        r.error = Some(e);
    }
    r.wall_ms = t0.elapsed().as_millis() as u64;
    r
}

/// Corpus files (relative paths) whose content differs from `before` or that are gone.
fn changed(before: &BTreeMap<String, String>, share: &Path) -> Result<BTreeSet<String>, String> {
    let now = crate::manifest_hashes(share).map_err(|e| format!("hashing the corpus: {e}"))?;
    Ok(before
        .iter()
        .filter(|(k, v)| now.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect())
}

fn describe_exit(st: std::process::ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(0), _) => "ok".into(),
        (Some(c), _) => format!("exit {c}"),
        (None, Some(9)) => "killed".into(),
        (None, Some(s)) => format!("signal {s}"),
        _ => "?".into(),
    }
}

fn measure(
    exe: &Path,
    kind: FsKind,
    a: &EvalArgs,
    p: &crate::ProfileInfo,
    protections: &mut Value,
    r: &mut ProfileResult,
) -> Result<(), String> {
    // Room for the corpus, plus copies (cp, rsync, tar, git) and compressed versions.
    let size_mib = (256 + a.files as u64).max(256);
    let fs = ScratchFs::create(kind, size_mib)?;
    let share = fs.path().join("share");
    let base = fs
        .path()
        .parent()
        .ok_or("scratch filesystem has no parent directory")?;
    let state = base.join("state");

    // 1. The corpus, in a separate process.
    let out = Command::new(exe)
        .args(["simulate", "--init", "--files"])
        .arg(a.files.to_string())
        .arg("--seed")
        .arg(a.seed.to_string())
        .arg("--dir")
        .arg(&share)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running `ward simulate --init`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ward simulate --init` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }

    // 2. Protection, then the manifest.
    let mut agent = Ward::start(
        exe,
        &state,
        &[share.as_path()],
        &[],
        Duration::from_secs(30),
    )?;
    let ready = agent.of_type("ready").first().cloned().cloned();
    let vault = ready
        .as_ref()
        .is_some_and(|v| v["protections"]["vault"].as_bool() == Some(true));
    if protections.is_null() {
        if let Some(rd) = &ready {
            *protections = rd["protections"].clone();
        }
    }
    let before = crate::manifest_hashes(&share).map_err(|e| format!("hashing the corpus: {e}"))?;

    // 3. The profile, in its own process.
    let cap = if p.name == "slow" {
        Some(a.max_files.unwrap_or(a.slow_files).min(a.slow_files))
    } else {
        a.max_files
    };
    r.max_files = cap;
    let sim_log = base.join("simulate.log");
    let mut cmd = Command::new(exe);
    cmd.args(["simulate", p.name, "--dir"]).arg(&share);
    if let Some(m) = cap {
        cmd.arg("--max-files").arg(m.to_string());
    }
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(&sim_log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .map_err(|e| format!("starting `ward simulate {}`: {e}", p.name))?;

    // 4. Watch: the first incident (measure the damage at once), the simulator's end.
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let mut first_incident: Option<Value> = None;
    let mut touched: Option<BTreeSet<String>> = None;
    let status = loop {
        if first_incident.is_none() {
            if let Some(inc) = agent.wait_for("incident", Duration::from_millis(50)) {
                // Right after containment, before any restore.
                let mut t = changed(&before, &share)?;
                // A restore racing with the hashing must not hide damage: add the corpus
                // files the incident itself lists.
                for d in inc["damaged"].as_array().into_iter().flatten() {
                    if let Some(rel) = d
                        .as_str()
                        .and_then(|s| Path::new(s).strip_prefix(&share).ok())
                    {
                        let rel = rel.to_string_lossy().into_owned();
                        if before.contains_key(&rel) {
                            t.insert(rel);
                        }
                    }
                }
                touched = Some(t);
                first_incident = Some(inc);
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the simulator: {e}")),
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = agent.stop(Duration::from_secs(10));
            return Err(format!(
                "`ward simulate {}` still running after {} s (killed); raise --timeout",
                p.name, a.timeout
            ));
        }
    };
    r.sim_exit = describe_exit(status);
    // Late incidents (and, for attacks without one yet, a last chance).
    agent.drain(SETTLE);
    let incidents: Vec<Value> = agent.of_type("incident").into_iter().cloned().collect();
    if first_incident.is_none() {
        first_incident = incidents.first().cloned();
    }
    let touched = match touched {
        Some(t) => t,
        None => changed(&before, &share)?,
    };
    r.incidents = incidents.len();
    r.files_touched = touched.len();
    r.touched_examples = touched.iter().take(5).cloned().collect();
    if let Some(inc) = &first_incident {
        r.detected = true;
        r.action = inc["action"].as_str().map(String::from);
        r.contained = matches!(r.action.as_deref(), Some("killed") | Some("frozen"));
        // From the attacker's own first damaging write (logged by the simulator), not from
        // ward's first counted event; the incident's figure when the log has none.
        let first = std::fs::read_to_string(&sim_log)
            .ok()
            .and_then(|l| crate::first_damage_in(&l));
        let contained = inc["contained_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| t.timestamp_nanos_opt());
        r.contain_ms = match (first, contained) {
            (Some(f), Some(c)) if c as i128 >= f as i128 => {
                Some((c as i128 - f as i128) as f64 / 1e6)
            }
            _ => inc["contain_ms"].as_f64(),
        };
        r.files_damaged = inc["files_damaged"].as_u64();
        let mut ind: BTreeSet<String> = BTreeSet::new();
        for i in &incidents {
            for s in i["indicators"].as_array().into_iter().flatten() {
                if let Some(s) = s.as_str() {
                    ind.insert(s.to_string());
                }
            }
        }
        r.indicators = ind.into_iter().collect();
    }

    // A simulator that failed on its own (not killed by ward, no incident): exit 2 means
    // it could not run at all (missing tool, bad directory: an infrastructure failure);
    // otherwise a benign workload failed *under protection* (ward broke honest work: a
    // finding, reported as such), and an attack that fails without an incident is broken.
    if r.incidents == 0 && !status.success() {
        let log = std::fs::read_to_string(&sim_log).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        if p.kind == Kind::Benign && status.code() != Some(2) {
            r.workload_failed = Some(format!("{}: {tail}", r.sim_exit));
        } else {
            let _ = agent.stop(Duration::from_secs(10));
            return Err(format!(
                "`ward simulate {}` failed ({}) without an incident: {tail}",
                p.name, r.sim_exit
            ));
        }
    }

    // 5. Recovery (attacks): wait for every incident's `restored` when the vault is on.
    if p.kind == Kind::Attack {
        if vault && r.incidents > 0 {
            let deadline = Instant::now() + Duration::from_secs(a.restore_timeout);
            let (mut restored, mut quarantined) = (0u64, 0u64);
            let mut seen = agent.of_type("restored").len();
            // Re-read events already received, then wait for the rest.
            while seen < r.incidents && Instant::now() < deadline {
                if agent
                    .wait_for(
                        "restored",
                        deadline.saturating_duration_since(Instant::now()),
                    )
                    .is_some()
                {
                    seen += 1;
                }
            }
            for ev in agent.of_type("restored") {
                restored += ev["files_restored"].as_u64().unwrap_or(0);
                quarantined += ev["files_quarantined"].as_u64().unwrap_or(0);
            }
            if seen > 0 {
                r.files_restored = Some(restored);
                r.files_quarantined = Some(quarantined);
            }
        }
        r.files_lost = Some(changed(&before, &share)?.len());
    }

    match agent.stop(Duration::from_secs(10)) {
        Ok(0) => {}
        Ok(c) => return Err(format!("ward protect exited with status {c} on SIGTERM")),
        Err(e) => return Err(format!("stopping ward protect: {e}")),
    }
    drop(fs);
    Ok(())
}

/// Median of `v` (`None` when empty).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn scorecard(
    a: &EvalArgs,
    protections: Value,
    profiles: Vec<ProfileResult>,
    wall: Duration,
) -> Scorecard {
    let ok = |r: &&ProfileResult| r.error.is_none();
    // An attack that could not be evaluated counts as not contained: the totals never
    // look better because something failed.
    let attacks: Vec<&ProfileResult> = profiles.iter().filter(|r| r.kind == Kind::Attack).collect();
    let benign: Vec<&ProfileResult> = profiles
        .iter()
        .filter(ok)
        .filter(|r| r.kind == Kind::Benign)
        .collect();
    let errors = profiles.iter().filter(|r| r.error.is_some()).count();
    let totals = Totals {
        attacks: attacks.len(),
        attacks_detected: attacks.iter().filter(|r| r.detected).count(),
        attacks_contained: attacks.iter().filter(|r| r.contained).count(),
        missed: attacks
            .iter()
            .filter(|r| !r.contained)
            .map(|r| r.profile.clone())
            .collect(),
        files_touched_total: attacks.iter().map(|r| r.files_touched).sum(),
        median_files_touched: median(attacks.iter().map(|r| r.files_touched as f64).collect()),
        median_contain_ms: median(attacks.iter().filter_map(|r| r.contain_ms).collect()),
        files_lost_total: attacks.iter().filter_map(|r| r.files_lost).sum(),
        benign: benign.len(),
        false_incidents: benign.iter().map(|r| r.incidents).sum(),
        false_positive_profiles: benign
            .iter()
            .filter(|r| r.incidents > 0)
            .map(|r| r.profile.clone())
            .collect(),
        benign_failed: profiles
            .iter()
            .filter(|r| r.kind == Kind::Benign)
            .filter(|r| r.workload_failed.is_some() || r.error.is_some())
            .map(|r| r.profile.clone())
            .collect(),
        errors,
        wall_s: wall.as_secs_f64(),
    };
    let fmt_opt = |v: Option<f64>, unit: &str| v.map_or("n/a".into(), |x| format!("{x:.1}{unit}"));
    let mut targets = Vec::new();
    if !attacks.is_empty() {
        targets.push(Target {
            name: "attacks contained",
            target: "all",
            measured: format!("{}/{}", totals.attacks_contained, totals.attacks),
            met: totals.attacks_contained == totals.attacks,
        });
        targets.push(Target {
            name: "files lost",
            target: "0",
            measured: totals.files_lost_total.to_string(),
            met: totals.files_lost_total == 0,
        });
        targets.push(Target {
            name: "median files touched before containment",
            target: "<= 3",
            measured: fmt_opt(totals.median_files_touched, ""),
            met: totals.median_files_touched.is_some_and(|m| m <= 3.0),
        });
        targets.push(Target {
            name: "median first damaging write -> contained",
            target: "<= 50 ms",
            measured: fmt_opt(totals.median_contain_ms, " ms"),
            met: totals.median_contain_ms.is_some_and(|m| m <= 50.0) && totals.attacks_detected > 0,
        });
    }
    if !benign.is_empty() {
        targets.push(Target {
            name: "false incidents on benign workloads",
            target: "0",
            measured: totals.false_incidents.to_string(),
            met: totals.false_incidents == 0,
        });
        targets.push(Target {
            name: "benign workloads completed under protection",
            target: "all",
            measured: format!(
                "{}/{}",
                totals.benign - totals.benign_failed.len(),
                totals.benign
            ),
            met: totals.benign_failed.is_empty(),
        });
    }
    let vault = protections["vault"].as_bool() == Some(true);
    Scorecard {
        version: env!("CARGO_PKG_VERSION"),
        fs: a.fs.clone(),
        files: a.files,
        seed: a.seed,
        protections,
        vault,
        profiles,
        totals,
        targets,
    }
}

fn print_table(c: &Scorecard) {
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "ward eval: {} profiles on {} scratch filesystems, {} corpus files each (seed {}), vault {}",
        c.profiles.len(),
        c.fs,
        c.files,
        c.seed,
        if c.vault { "on" } else { "off" }
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<20} {:<6} {:<9} {:>7} {:>5} {:>11} {:>6} {:>7}  INDICATORS / NOTES",
        "PROFILE", "KIND", "RESULT", "TOUCHED", "LOST", "CONTAIN ms", "FALSE", "WALL s"
    );
    for r in &c.profiles {
        let result = if r.error.is_some() {
            "ERROR"
        } else {
            match r.kind {
                Kind::Attack if r.contained => "contained",
                Kind::Attack if r.detected => "detected",
                Kind::Attack => "MISSED",
                Kind::Benign if r.incidents > 0 => "FALSE+",
                Kind::Benign if r.workload_failed.is_some() => "BROKEN",
                Kind::Benign => "quiet",
            }
        };
        let notes = match &r.error {
            Some(e) => e.clone(),
            None => {
                let mut n = r.indicators.join(",");
                if let Some(w) = &r.workload_failed {
                    n = format!("workload failed under protection: {w}");
                }
                if let Some(m) = r.max_files {
                    n = format!("{n}{}max {m} files", if n.is_empty() { "" } else { "; " });
                }
                if r.kind == Kind::Attack && !r.detected {
                    n = format!(
                        "{n}{}sim {}",
                        if n.is_empty() { "" } else { "; " },
                        r.sim_exit
                    );
                }
                n
            }
        };
        let _ = writeln!(
            o,
            "{:<20} {:<6} {:<9} {:>7} {:>5} {:>11} {:>6} {:>7.1}  {}",
            r.profile,
            r.kind.to_string(),
            result,
            if r.kind == Kind::Attack {
                r.files_touched.to_string()
            } else {
                "-".into()
            },
            r.files_lost.map_or("-".into(), |l| l.to_string()),
            r.contain_ms.map_or("-".into(), |m| format!("{m:.1}")),
            if r.kind == Kind::Benign {
                r.incidents.to_string()
            } else {
                "-".into()
            },
            r.wall_ms as f64 / 1000.0,
            notes
        );
    }
    let t = &c.totals;
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "attacks: {} contained / {} detected / {} run{}; files touched {} in all; files lost {}",
        t.attacks_contained,
        t.attacks_detected,
        t.attacks,
        if t.missed.is_empty() {
            String::new()
        } else {
            format!(" (not contained: {})", t.missed.join(", "))
        },
        t.files_touched_total,
        t.files_lost_total
    );
    let _ = writeln!(
        o,
        "benign:  {} run, {} false incident(s){}",
        t.benign,
        t.false_incidents,
        if t.false_positive_profiles.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.false_positive_profiles.join(", "))
        }
    );
    if !t.benign_failed.is_empty() {
        let _ = writeln!(
            o,
            "         workloads that failed under protection: {}",
            t.benign_failed.join(", ")
        );
    }
    if t.errors > 0 {
        let _ = writeln!(o, "errors:  {} profile(s) could not be evaluated", t.errors);
    }
    let _ = writeln!(o, "wall time: {:.1} s", t.wall_s);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<44} {:<10} {:<10} RESULT",
        "TARGET (BRIEF §7)", "GOAL", "MEASURED"
    );
    for g in &c.targets {
        let _ = writeln!(
            o,
            "{:<44} {:<10} {:<10} {}",
            g.name,
            g.target,
            g.measured,
            if g.met { "met" } else { "MISSED" }
        );
    }
    if !c.vault && c.totals.attacks > 0 {
        let _ = writeln!(
            o,
            "\n(vault not active: files touched before containment are not restored, so they count as lost)"
        );
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(o.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn scorecard_targets() {
        let a = EvalArgs {
            fs: "ext4".into(),
            files: 200,
            seed: 1,
            profiles: vec![],
            slow_files: 6,
            max_files: None,
            restore_timeout: 30,
            timeout: 300,
            json: true,
        };
        let p = crate::profiles();
        let atk = p.iter().find(|p| p.kind == Kind::Attack).unwrap();
        let ben = p.iter().find(|p| p.kind == Kind::Benign).unwrap();
        let mut r1 = empty_result(atk);
        r1.detected = true;
        r1.contained = true;
        r1.files_touched = 2;
        r1.files_lost = Some(0);
        r1.contain_ms = Some(4.0);
        let mut r2 = empty_result(ben);
        r2.incidents = 1;
        let c = scorecard(&a, json!({"vault": true}), vec![r1, r2], Duration::ZERO);
        assert!(c.vault);
        assert_eq!(c.totals.attacks_contained, 1);
        assert_eq!(c.totals.false_positive_profiles, vec![ben.name.to_string()]);
        let met: Vec<bool> = c.targets.iter().map(|t| t.met).collect();
        assert_eq!(met, vec![true, true, true, true, false, true]);
    }
}
