//! `ward bench`: what protection costs.
//!
//! * **Overhead** (default; root): on one scratch ext4 filesystem, a file-heavy workload —
//!   untar a tree of `--files` files (1–64 KiB, mostly text, some binary), `grep -r` it,
//!   `cp -a` it, `gzip -r` a quarter of the copy, `rm -rf` everything — is run
//!   alternately without and with `ward protect` on the filesystem (started before and
//!   stopped after each protected run, so its start-up is not timed), `--rounds` pairs
//!   after one untimed warm-up run. Each pair gives a ratio protected/unprotected; the
//!   median ratio is compared with the target (≤ 1.02×). The page cache is flushed (`sync`)
//!   before every timed run.
//! * **Engine** (`--engine`; no root needed): the detection engine alone, single-threaded,
//!   on synthetic events — first `--engine-files` (default 1 M) distinct files opened (each
//!   with a content sample, as the sensor sends them), then `--engine-events` mixed events
//!   (opens, writes with close, creates, deletes, renames, process forks and exits) over that
//!   tracked set — reporting events/s per core (target ≥ 1 M/s) and the peak resident memory
//!   of this process (VmHWM, target ≤ 64 MiB for 1 M files). With `--trace FILE` (repeatable;
//!   plain or gzip-compressed, as recorded by `ward protect --record`) the engine is also
//!   timed replaying each recorded trace.
//!
//! These are benchmarks: they print figures and ratios; missing a target does not fail
//! (exit 0). Exit 1 when the benchmark itself cannot run, 2 for usage errors.

use crate::driver::Ward;
use crate::scratchfs::{FsKind, ScratchFs};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ward_agent::AgentError as ExitError;
use ward_engine::{Block, Engine, Event, FileKey, Op, ProcId, ProcInfo, Sample};

/// Arguments of `ward bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Files in the workload tree (overhead benchmark).
    #[arg(long, default_value_t = 3000)]
    pub files: usize,
    /// Pairs of (unprotected, protected) runs; the median ratio is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Benchmark the detection engine alone (throughput and memory) instead.
    #[arg(long)]
    pub engine: bool,
    /// Engine benchmark: distinct files tracked.
    #[arg(long, default_value_t = 1_000_000)]
    pub engine_files: usize,
    /// Engine benchmark: mixed events timed after the files are tracked.
    #[arg(long, default_value_t = 2_000_000)]
    pub engine_events: usize,
    /// Engine benchmark: also replay these recorded traces (plain or .gz).
    #[arg(long, value_name = "FILE")]
    pub trace: Vec<PathBuf>,
    /// Overhead benchmark: run `ward protect` with this config file (e.g. `vault = false`
    /// to measure what preservation adds).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overhead benchmark: also time, in each round, the workload under do-nothing kernel
    /// consumers (a FAN_OPEN_PERM consumer that answers "allow" at once; notification-only
    /// groups; BPF tracepoints on the file syscalls counting in the kernel, sending every
    /// event through a ring buffer, or sending a filtered few): the floor of each design,
    /// measured in the same run as ward.
    #[arg(long)]
    pub floors: bool,
    /// Overhead benchmark: the event storm step creates and removes this many small files
    /// (100 bytes each, 1,000 per directory) after the file-heavy steps; timed and reported
    /// on its own (target ≤ 1.10×). 0: no storm.
    #[arg(long, default_value_t = 60_000)]
    pub storm_files: usize,
    /// Internal: be the storm step's workload in DIR (a process of its own, so that
    /// `ward protect` judges it like any other program).
    #[arg(long, value_name = "DIR", hide = true)]
    pub storm_worker: Option<PathBuf>,
    /// Results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: BenchArgs) -> Result<(), ExitError> {
    if let Some(dir) = &a.storm_worker {
        return storm(dir, a.storm_files);
    }
    if a.engine {
        return engine_bench(&a);
    }
    overhead_bench(&a)
}

// ----------------------------------------------------------------------------------------
// Deterministic pseudo-random content.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "patient",
    "referral",
    "ward",
    "clinic",
    "rota",
    "nurse",
    "consultant",
    "discharge",
    "summary",
    "blood",
    "pressure",
    "imaging",
    "scan",
    "report",
    "appointment",
    "follow-up",
    "theatre",
    "pharmacy",
    "dose",
    "mg",
    "allergy",
    "history",
    "plan",
    "review",
    "signed",
    "the",
    "and",
    "of",
    "to",
    "in",
    "for",
    "with",
    "on",
    "was",
    "is",
    "no",
    "further",
];

/// `len` bytes of text made of words and numbers.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        v.extend_from_slice(w.as_bytes());
        match rng.below(12) {
            0 => v.extend_from_slice(b".\n"),
            1 => {
                let _ = write!(v, " {} ", rng.below(100_000));
            }
            _ => v.push(b' '),
        }
    }
    v.truncate(len);
    v
}

/// `len` random bytes (compressed-media-like).
fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

// ----------------------------------------------------------------------------------------
// Overhead benchmark.

#[derive(Debug, Clone, Serialize)]
struct Run {
    protected: bool,
    total_s: f64,
    steps: Vec<(String, f64)>,
    incidents: usize,
    /// Anything abnormal about the run (ward did not stop cleanly, ...).
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct OverheadReport {
    files: usize,
    tree_bytes: u64,
    rounds: usize,
    filesystem: &'static str,
    protections: Value,
    runs: Vec<Run>,
    ratios: Vec<f64>,
    median_ratio: f64,
    step_median_ratios: Vec<(String, f64)>,
    target: f64,
    met: bool,
    /// The event storm (`--storm-files` small files created and removed), per pair and
    /// the median: not part of the file-heavy ratio above.
    storm_files: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    storm_ratios: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storm_median_ratio: Option<f64>,
    storm_target: f64,
    false_incidents: usize,
    /// `--floors`: per do-nothing consumer, its runs' ratios to the same round's
    /// unprotected run, and their median.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    floors: Vec<FloorReport>,
}

#[derive(Debug, Serialize)]
struct FloorReport {
    consumer: &'static str,
    ratios: Vec<f64>,
    median_ratio: f64,
    /// Per workload step, the median ratio to the same round's unprotected step.
    step_median_ratios: Vec<(String, f64)>,
    /// Per run, the events the consumer saw (BPF floors: of every process on the host).
    events: Vec<u64>,
    /// Events lost (BPF ring buffer full), summed over the runs.
    dropped: u64,
    /// Why the consumer could not run (then there are no ratios).
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
}

/// What `--floors` collected for one consumer over the rounds.
#[derive(Default)]
struct FloorRuns {
    ratios: Vec<f64>,
    steps: Vec<Vec<f64>>,
    events: Vec<u64>,
    dropped: u64,
    unavailable: Option<String>,
}

fn sh(cmd: &mut Command, what: &str) -> Result<(), ExitError> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ExitError::runtime(format!("{what}: {e} (is it installed?)")))?;
    if !out.status.success() {
        return Err(ExitError::runtime(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Create the source tree under `dir`: `files` files of 1–64 KiB in 2-level directories.
/// Returns the total size and the top-level directory names.
fn make_tree(dir: &Path, files: usize) -> Result<(u64, Vec<String>), ExitError> {
    let io = |e: std::io::Error, p: &Path| ExitError::runtime(format!("{}: {e}", p.display()));
    let mut rng = Rng(0x5eed_ba5e_0000_0001);
    let per_dir = 25;
    let per_top = 10;
    let mut total = 0u64;
    let mut tops = Vec::new();
    for i in 0..files {
        let d = i / per_dir;
        let top = format!("dept{:03}", d / per_top);
        let sub = dir.join(&top).join(format!("case{:04}", d));
        if i % per_dir == 0 {
            std::fs::create_dir_all(&sub).map_err(|e| io(e, &sub))?;
            if tops.last() != Some(&top) {
                tops.push(top.clone());
            }
        }
        let len = 1024 + rng.below(63 * 1024) as usize;
        let (name, data) = if rng.below(5) == 0 {
            (format!("img{i:05}.bin"), binary(&mut rng, len))
        } else {
            (format!("note{i:05}.txt"), text(&mut rng, len))
        };
        let p = sub.join(name);
        std::fs::write(&p, &data).map_err(|e| io(e, &p))?;
        total += data.len() as u64;
    }
    Ok((total, tops))
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// The name of the event storm step (kept out of the file-heavy total).
const STORM: &str = "storm";

/// The storm: create `files` files of 100 bytes (1,000 per directory), then remove them
/// and their directories.
fn storm(dir: &Path, files: usize) -> Result<(), ExitError> {
    let io = |p: &Path, e: std::io::Error| ExitError::runtime(format!("{}: {e}", p.display()));
    let body = [b'w'; 100];
    let path = |i: usize| dir.join(format!("d{}", i / 1000)).join(format!("f{i}.tmp"));
    for i in 0..files {
        let p = path(i);
        if i % 1000 == 0 {
            let d = p.parent().unwrap_or(dir);
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        std::fs::write(&p, body).map_err(|e| io(&p, e))?;
    }
    for i in 0..files {
        let p = path(i);
        std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
    }
    std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))
}

/// Wall time of the file-heavy steps (everything but the storm).
fn file_heavy_s(steps: &[(String, f64)]) -> f64 {
    steps.iter().filter(|s| s.0 != STORM).map(|s| s.1).sum()
}

/// Wall time of the storm step, if there was one.
fn storm_s(steps: &[(String, f64)]) -> Option<f64> {
    steps.iter().find(|s| s.0 == STORM).map(|s| s.1)
}

fn workload(
    mnt: &Path,
    tops: &[String],
    storm_files: usize,
) -> Result<Vec<(String, f64)>, ExitError> {
    let run = mnt.join("run");
    let a = run.join("a");
    let b = run.join("b");
    std::fs::create_dir_all(&a).map_err(|e| ExitError::runtime(format!("{}: {e}", a.display())))?;
    let mut steps = Vec::new();
    let mut step = |name: &str, cmd: &mut Command, ok_codes: &[i32]| -> Result<(), ExitError> {
        let t = Instant::now();
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| ExitError::runtime(format!("{name}: {e}")))?;
        let dt = t.elapsed().as_secs_f64();
        let st = out.status;
        if !st.code().is_some_and(|c| ok_codes.contains(&c)) {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(ExitError::runtime(format!(
                "workload step `{name}` failed ({st}): {}; if ward protect raised an incident it may have killed it",
                err.trim()
            )));
        }
        steps.push((name.to_string(), dt));
        Ok(())
    };
    step(
        "untar",
        Command::new("tar")
            .arg("xf")
            .arg(mnt.join("input.tar"))
            .arg("-C")
            .arg(&a),
        &[0],
    )?;
    step(
        "grep -r",
        Command::new("grep")
            .args(["-r", "-c", "-e", "consultant review"])
            .arg(&a),
        &[0, 1],
    )?;
    step("cp -a", Command::new("cp").arg("-a").arg(&a).arg(&b), &[0])?;
    let part: Vec<PathBuf> = tops
        .iter()
        .take(tops.len().div_ceil(4))
        .map(|t| b.join(t))
        .collect();
    step("gzip -r", Command::new("gzip").arg("-r").args(&part), &[0])?;
    step("rm -rf", Command::new("rm").arg("-rf").arg(&run), &[0])?;
    if storm_files > 0 {
        // The storm is measured on its own: let ward finish what the steps above left it
        // (copies of deleted files it held, the vault's bookkeeping) first.
        sync();
        std::thread::sleep(Duration::from_secs(3));
        let exe = std::env::current_exe()
            .map_err(|e| ExitError::runtime(format!("cannot find the ward binary: {e}")))?;
        step(
            STORM,
            Command::new(exe)
                .args([
                    "bench",
                    "--storm-files",
                    &storm_files.to_string(),
                    "--storm-worker",
                ])
                .arg(mnt.join("storm")),
            &[0],
        )?;
    }
    Ok(steps)
}

/// Median of counts (the lower middle one for an even number), 0 for none.
fn median_u64(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// Median, NaN for no values (the one implementation is eval's).
fn median(v: Vec<f64>) -> f64 {
    crate::eval::median(v).unwrap_or(f64::NAN)
}

/// The do-nothing consumers `--floors` times.
const FLOORS: [crate::floors::Floor; 5] = [
    crate::floors::Floor::OpenPerm,
    crate::floors::Floor::Notify,
    crate::floors::Floor::BpfCount,
    crate::floors::Floor::BpfRing,
    crate::floors::Floor::BpfFiltered,
];

fn overhead_bench(a: &BenchArgs) -> Result<(), ExitError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(ExitError::usage(
            "ward bench needs root (it mounts a scratch filesystem and runs `ward protect`): run `sudo ward bench`, or `ward bench --engine` for the engine alone",
        ));
    }
    if a.files == 0 || a.rounds == 0 {
        return Err(ExitError::usage("--files and --rounds must be at least 1"));
    }
    let exe = std::env::current_exe()
        .map_err(|e| ExitError::runtime(format!("cannot find the ward binary: {e}")))?;
    // Tree ≈ files × 33 KiB; the image holds the tarball, two copies and gzip output.
    // mkfs.ext4 makes one inode per 16 KiB: the storm's files need that many too.
    let size_mib = (256 + (a.files as u64 * 33 * 4) / 1024).max(64 + a.storm_files as u64 / 48);
    eprintln!(
        "creating a {size_mib} MiB scratch ext4 filesystem and a tree of {} files …",
        a.files
    );
    let fs = ScratchFs::create(FsKind::Ext4, size_mib).map_err(ExitError::runtime)?;
    let mnt = fs.path().to_path_buf();
    let base = mnt
        .parent()
        .ok_or_else(|| ExitError::runtime("scratch filesystem has no parent"))?
        .to_path_buf();
    let src = mnt.join("src");
    let (tree_bytes, tops) = make_tree(&src, a.files)?;
    sh(
        Command::new("tar")
            .arg("cf")
            .arg(mnt.join("input.tar"))
            .arg("-C")
            .arg(&src)
            .arg("."),
        "tar cf (creating the input tarball)",
    )?;
    sh(Command::new("rm").arg("-rf").arg(&src), "rm -rf src")?;
    sync();

    eprintln!("warm-up run (untimed) …");
    workload(&mnt, &tops, a.storm_files)?;

    let mut runs = Vec::new();
    let mut ratios = Vec::new();
    let mut protections = Value::Null;
    let mut false_incidents = 0;
    let mut floor_runs: Vec<FloorRuns> = FLOORS.iter().map(|_| FloorRuns::default()).collect();
    for round in 0..a.rounds {
        let mut pair = [0.0f64; 2];
        for (k, protected) in [false, true].into_iter().enumerate() {
            sync();
            let mut agent = if protected {
                let state = base.join(format!("state-{round}"));
                let config = a.config.as_ref().map(|c| c.to_string_lossy().into_owned());
                let extra: Vec<&str> = match &config {
                    Some(c) => vec!["--config", c.as_str()],
                    None => Vec::new(),
                };
                let ag = Ward::start(
                    &exe,
                    &state,
                    &[mnt.as_path()],
                    &extra,
                    Duration::from_secs(30),
                )
                .map_err(ExitError::runtime)?;
                if protections.is_null() {
                    if let Some(r) = ag.of_type("ready").first() {
                        protections = r["protections"].clone();
                    }
                }
                Some(ag)
            } else {
                None
            };
            let res = workload(&mnt, &tops, a.storm_files);
            let total = res.as_ref().map_or(0.0, |s| file_heavy_s(s));
            let mut incidents = 0;
            let mut note = None;
            if let Some(ag) = agent.as_mut() {
                ag.drain(Duration::from_millis(300));
                incidents = ag.of_type("incident").len();
                // A ward that does not stop cleanly (e.g. killed by its watchdog) is a
                // finding to report, not a reason to throw the measurement away.
                if let Err(e) = ag.stop(Duration::from_secs(20)) {
                    let first = e.lines().next().unwrap_or("").to_string();
                    let wd = e.lines().find(|l| l.contains("watchdog")).unwrap_or("");
                    let msg = format!("ward protect did not stop cleanly: {first} {wd}");
                    eprintln!("WARNING (round {}): {msg}", round + 1);
                    note = Some(msg);
                }
            }
            let steps = res?;
            false_incidents += incidents;
            pair[k] = total;
            runs.push(Run {
                protected,
                total_s: total,
                steps,
                incidents,
                note,
            });
        }
        if a.floors {
            for (f, fr) in FLOORS.iter().zip(floor_runs.iter_mut()) {
                if fr.unavailable.is_some() {
                    continue;
                }
                sync();
                // A consumer that cannot run here (e.g. BPF without tracefs) is reported as
                // unavailable; the others are still measured.
                let c = match crate::floors::Consumer::start(*f, &mnt) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{}: unavailable: {e}", f.name());
                        fr.unavailable = Some(e.to_string());
                        continue;
                    }
                };
                let steps = workload(&mnt, &tops, a.storm_files);
                let seen = c.finish();
                let steps = steps?;
                let r = file_heavy_s(&steps) / pair[0];
                let seen = match seen {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("{}: reading its counters failed: {e}", f.name());
                        fr.unavailable = Some(format!("reading its counters failed: {e}"));
                        continue;
                    }
                };
                eprintln!(
                    "[{}/{}] {}: ratio {r:.3} ({} events{})",
                    round + 1,
                    a.rounds,
                    f.name(),
                    seen.events,
                    if seen.dropped > 0 {
                        format!(", {} DROPPED", seen.dropped)
                    } else {
                        String::new()
                    }
                );
                fr.ratios.push(r);
                fr.events.push(seen.events);
                fr.dropped += seen.dropped;
                let base = &runs[runs.len() - 2].steps;
                fr.steps.push(
                    steps
                        .iter()
                        .zip(base)
                        .map(|(s, b)| s.1 / b.1)
                        .collect::<Vec<f64>>(),
                );
            }
        }
        let ratio = pair[1] / pair[0];
        let n = runs.len();
        let storm = match (storm_s(&runs[n - 2].steps), storm_s(&runs[n - 1].steps)) {
            (Some(u), Some(p)) => format!("; storm {u:.3} s → {p:.3} s: ratio {:.3}", p / u),
            _ => String::new(),
        };
        eprintln!(
            "[{}/{}] unprotected {:.3} s, protected {:.3} s: ratio {:.3}{storm}",
            round + 1,
            a.rounds,
            pair[0],
            pair[1],
            ratio
        );
        ratios.push(ratio);
    }
    let median_ratio = median(ratios.clone());
    let step_names: Vec<String> = runs[0].steps.iter().map(|s| s.0.clone()).collect();
    let step_median_ratios = step_names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let rs: Vec<f64> = runs
                .chunks(2)
                .map(|p| p[1].steps[i].1 / p[0].steps[i].1)
                .collect();
            (name.clone(), median(rs))
        })
        .collect();
    let storm_ratios: Vec<f64> = runs
        .chunks(2)
        .filter_map(|p| Some(storm_s(&p[1].steps)? / storm_s(&p[0].steps)?))
        .collect();
    let storm_median_ratio = (!storm_ratios.is_empty()).then(|| median(storm_ratios.clone()));
    let rep = OverheadReport {
        files: a.files,
        tree_bytes,
        rounds: a.rounds,
        filesystem: "ext4",
        protections,
        runs,
        ratios,
        median_ratio,
        step_median_ratios,
        target: 1.02,
        met: median_ratio <= 1.02,
        storm_files: a.storm_files,
        storm_ratios,
        storm_median_ratio,
        storm_target: 1.10,
        false_incidents,
        floors: FLOORS
            .iter()
            .zip(floor_runs)
            .filter(|(_, fr)| !fr.ratios.is_empty() || fr.unavailable.is_some())
            .map(|(f, fr)| FloorReport {
                consumer: f.name(),
                median_ratio: median(fr.ratios.clone()),
                ratios: fr.ratios,
                step_median_ratios: step_names
                    .iter()
                    .enumerate()
                    .filter(|_| !fr.steps.is_empty())
                    .map(|(i, n)| {
                        let rs = fr.steps.iter().map(|v| v[i]).collect();
                        (n.clone(), median(rs))
                    })
                    .collect(),
                events: fr.events,
                dropped: fr.dropped,
                unavailable: fr.unavailable,
            })
            .collect(),
    };
    drop(fs);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep).expect("report serialises")
        );
        return Ok(());
    }
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "ward bench: overhead of `ward protect` on file-heavy work (ext4 loop image)"
    );
    let _ = writeln!(
        o,
        "workload: untar {} files ({:.1} MiB), grep -r, cp -a, gzip -r a quarter, rm -rf; \
         then the storm: {} small files created and removed (timed apart)",
        rep.files,
        rep.tree_bytes as f64 / 1048576.0,
        rep.storm_files
    );
    let _ = writeln!(o, "protections: {}", rep.protections);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<6} {:>12} {:>12} {:>8}",
        "PAIR", "UNPROT s", "PROT s", "RATIO"
    );
    for (i, p) in rep.runs.chunks(2).enumerate() {
        let _ = writeln!(
            o,
            "{:<6} {:>12.3} {:>12.3} {:>8.3}",
            i + 1,
            p[0].total_s,
            p[1].total_s,
            rep.ratios[i]
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "median ratio per step:");
    for (n, r) in &rep.step_median_ratios {
        let _ = writeln!(o, "  {n:<10} {r:.3}");
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "MEDIAN RATIO protected/unprotected: {:.3}×  (target ≤ {:.2}×: {})",
        rep.median_ratio,
        rep.target,
        if rep.met { "met" } else { "MISSED" }
    );
    if let Some(s) = rep.storm_median_ratio {
        let _ =
            writeln!(
            o,
            "STORM (create and remove {} small files) median ratio: {s:.3}×  (target ≤ {:.2}×: {})",
            rep.storm_files,
            rep.storm_target,
            if s <= rep.storm_target { "met" } else { "MISSED" }
        );
    }
    if !rep.floors.is_empty() {
        let _ = writeln!(
            o,
            "floors (same rounds, median ratio to unprotected; file-heavy total, then per step):"
        );
        for f in &rep.floors {
            if f.ratios.is_empty() {
                let why = f.unavailable.as_deref().unwrap_or("no runs");
                let why = why.lines().next().unwrap_or(why);
                let _ = writeln!(o, "  {:<36} unavailable: {why}", f.consumer);
                continue;
            }
            let steps: Vec<String> = f
                .step_median_ratios
                .iter()
                .map(|(n, r)| format!("{n} {r:.2}"))
                .collect();
            let mut seen = format!("{} events/run", median_u64(&f.events));
            if f.dropped > 0 {
                let _ = write!(seen, ", {} DROPPED", f.dropped);
            }
            if let Some(why) = &f.unavailable {
                let _ = write!(seen, "; stopped early: {why}");
            }
            let _ = writeln!(
                o,
                "  {:<36} {:.3}×  ({})  {seen}",
                f.consumer,
                f.median_ratio,
                steps.join(", ")
            );
        }
    }
    for (i, r) in rep.runs.iter().enumerate() {
        if let Some(n) = &r.note {
            let _ = writeln!(o, "WARNING pair {}: {n}", i / 2 + 1);
        }
    }
    if rep.false_incidents > 0 {
        let _ = writeln!(
            o,
            "WARNING: {} incident(s) raised on this benign workload",
            rep.false_incidents
        );
    }
    print!("{o}");
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Engine benchmark.

fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A content sample the way the sensor takes it (head, middle and tail blocks).
fn sample_of(data: &[u8]) -> Sample {
    Sample {
        size: data.len() as u64,
        blocks: Sample::plan(data.len() as u64)
            .into_iter()
            .map(|(off, len)| Block {
                offset: off,
                data: data[off as usize..off as usize + len].to_vec(),
            })
            .collect(),
        ..Default::default()
    }
}

/// Synthetic event source: a fixed pool of contents, `files` tracked files, processes.
/// Each of the `files` files has stable content (an entry of the pool) that changes only
/// when the workload writes it: re-opens see the content last written, as on a real file
/// server.
struct Synth {
    rng: Rng,
    text_samples: Vec<Sample>,
    bin_samples: Vec<Sample>,
    random_new: Vec<Sample>,
    files: u64,
    /// Current content of file `ino` (< `files`): see [`Synth::sample`].
    content_of: Vec<u8>,
    next_ino: u64,
    time: u64,
    next_pid: u32,
    shell: ProcId,
    workers: Vec<ProcId>,
}

fn path_of(ino: u64) -> String {
    format!(
        "/srv/share/dept{:03}/case{:05}/doc{:07}.txt",
        ino % 997,
        ino % 49_999,
        ino
    )
}

impl Synth {
    fn new(files: u64) -> Synth {
        let mut rng = Rng(0x0e1e_c0de_0000_0001);
        let mut text_samples = Vec::new();
        let mut bin_samples = Vec::new();
        let mut random_new = Vec::new();
        for _ in 0..24 {
            let len = 512 + rng.below(63 * 1024) as usize;
            text_samples.push(sample_of(&text(&mut rng, len)));
        }
        for _ in 0..8 {
            // PNG-like: a valid signature and IHDR start, compressed-looking payload.
            let len = 2048 + rng.below(62 * 1024) as usize;
            let mut d = binary(&mut rng, len);
            d[..16].copy_from_slice(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
            bin_samples.push(sample_of(&d));
        }
        for _ in 0..4 {
            let len = 4096 + rng.below(28 * 1024) as usize;
            random_new.push(sample_of(&binary(&mut rng, len)));
        }
        let shell = ProcId { pid: 100, start: 1 };
        Synth {
            rng,
            text_samples,
            bin_samples,
            random_new,
            files,
            content_of: vec![0; files as usize],
            next_ino: files,
            time: 1_000_000_000,
            next_pid: 1000,
            shell,
            workers: Vec::new(),
        }
    }

    /// Every content of the pool.
    fn pool(&self) -> impl Iterator<Item = &Sample> {
        self.text_samples
            .iter()
            .chain(&self.bin_samples)
            .chain(&self.random_new)
    }

    /// Cost of content analysis on this pool, in ns per sampled byte: (one counting pass
    /// over the bytes, nothing else; the engine's `Profile::of`). Repeated for ≥ 200 ms.
    fn analysis_ns_per_byte(&self) -> (f64, f64) {
        let bytes: u64 = self.pool().map(Sample::bytes_read).sum();
        let time = |f: &dyn Fn(&Sample) -> u64| {
            let (mut n, mut sink) = (0u64, 0u64);
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(200) || n < 3 {
                for s in self.pool() {
                    sink = sink.wrapping_add(f(std::hint::black_box(s)));
                }
                n += 1;
            }
            std::hint::black_box(sink);
            t.elapsed().as_nanos() as f64 / (n * bytes.max(1)) as f64
        };
        let pass = time(&|s| {
            s.blocks
                .iter()
                .map(|b| ward_engine::stats::Histogram::of(&b.data).count(0) as u64)
                .sum()
        });
        let profile = time(&|s| ward_engine::Profile::of(s).size);
        (pass, profile)
    }

    fn tick(&mut self) -> u64 {
        self.time += 2_000; // 2 µs apart: 500 k events/s of wall clock
        self.time
    }

    /// A random content of the pool (one in five binary): its id for [`Synth::sample`].
    fn content(&mut self) -> u8 {
        if self.rng.below(5) == 0 {
            (self.text_samples.len() as u64 + self.rng.below(self.bin_samples.len() as u64)) as u8
        } else {
            self.text_content()
        }
    }

    /// A random text content of the pool.
    fn text_content(&mut self) -> u8 {
        self.rng.below(self.text_samples.len() as u64) as u8
    }

    /// The sample of content `id`: text contents first, then binary ones.
    fn sample(&self, id: u8) -> Sample {
        let id = id as usize;
        match self.text_samples.get(id) {
            Some(s) => s.clone(),
            None => self.bin_samples[id - self.text_samples.len()].clone(),
        }
    }

    /// The sample of file `ino` (< `files`) as it is now.
    fn current(&self, ino: u64) -> Sample {
        self.sample(self.content_of[ino as usize])
    }

    fn spawn(&mut self) -> Event {
        self.next_pid += 1;
        let id = ProcId {
            pid: self.next_pid,
            start: self.next_pid as u64 * 7,
        };
        self.workers.push(id);
        let time = self.tick();
        Event {
            time,
            proc: id,
            op: Op::Process(ProcInfo {
                id,
                parent: Some(self.shell),
                exe: "/usr/bin/worker".into(),
                cmdline: vec!["worker".into(), format!("{}", id.pid)],
                uid: 1000,
                boundary: false,
            }),
        }
    }

    fn start(&mut self) -> Vec<Event> {
        let mut v = vec![
            Event {
                time: self.tick(),
                proc: ProcId { pid: 1, start: 0 },
                op: Op::Process(ProcInfo {
                    id: ProcId { pid: 1, start: 0 },
                    parent: None,
                    exe: "/sbin/init".into(),
                    cmdline: vec!["/sbin/init".into()],
                    uid: 0,
                    boundary: true,
                }),
            },
            Event {
                time: self.tick(),
                proc: self.shell,
                op: Op::Process(ProcInfo {
                    id: self.shell,
                    parent: Some(ProcId { pid: 1, start: 0 }),
                    exe: "/usr/sbin/smbd".into(),
                    cmdline: vec!["smbd".into()],
                    uid: 0,
                    boundary: true,
                }),
            },
        ];
        for _ in 0..64 {
            v.push(self.spawn());
        }
        v
    }

    fn worker(&mut self) -> ProcId {
        let i = self.rng.below(self.workers.len() as u64) as usize;
        self.workers[i]
    }

    /// Populate: open file `ino` for reading.
    fn populate(&mut self, ino: u64) -> Event {
        let p = self.worker();
        let c = self.content();
        self.content_of[ino as usize] = c;
        let sample = self.sample(c);
        Event {
            time: self.tick(),
            proc: p,
            op: Op::Open {
                file: FileKey { dev: 1, ino },
                path: path_of(ino),
                sample,
                write: Some(false),
            },
        }
    }

    /// Steady state: push the next 1–3 events of a random operation into `out`.
    fn mixed(&mut self, out: &mut Vec<Event>) {
        let r = self.rng.below(100);
        let p = self.worker();
        let ino = self.rng.below(self.files);
        let file = FileKey { dev: 1, ino };
        match r {
            // read an existing file
            0..=49 => {
                let sample = self.current(ino);
                out.push(Event {
                    time: self.tick(),
                    proc: p,
                    op: Op::Open {
                        file,
                        path: path_of(ino),
                        sample,
                        write: Some(false),
                    },
                });
            }
            // edit an existing file: open for write, close with new text
            50..=69 => {
                let before = self.current(ino);
                let c = self.text_content();
                self.content_of[ino as usize] = c;
                let after = self.sample(c);
                out.push(Event {
                    time: self.tick(),
                    proc: p,
                    op: Op::Open {
                        file,
                        path: path_of(ino),
                        sample: before,
                        write: Some(true),
                    },
                });
                out.push(Event {
                    time: self.tick(),
                    proc: p,
                    op: Op::CloseWrite {
                        file,
                        path: path_of(ino),
                        sample: after,
                    },
                });
            }
            // create a new file (text, sometimes random data)
            70..=84 => {
                let ino = self.next_ino;
                self.next_ino += 1;
                let file = FileKey { dev: 1, ino };
                let sample = if self.rng.below(4) == 0 {
                    let i = self.rng.below(self.random_new.len() as u64) as usize;
                    self.random_new[i].clone()
                } else {
                    let c = self.content();
                    self.sample(c)
                };
                out.push(Event {
                    time: self.tick(),
                    proc: p,
                    op: Op::Create {
                        path: path_of(ino),
                        file: Some(file),
                    },
                });
                out.push(Event {
                    time: self.tick(),
                    proc: p,
                    op: Op::CloseWrite {
                        file,
                        path: path_of(ino),
                        sample,
                    },
                });
            }
            // delete a file (a later open of this inode sees a new file with new content)
            85..=92 => {
                self.content_of[ino as usize] = self.content();
                out.push(Event {
                    time: self.tick(),
                    proc: p,
                    op: Op::Delete {
                        path: path_of(ino),
                        file: Some(file),
                    },
                })
            }
            // rename (editor save / log rotation style)
            93..=95 => out.push(Event {
                time: self.tick(),
                proc: p,
                op: Op::Rename {
                    from: path_of(ino),
                    to: format!("{}.1", path_of(ino)),
                    file: Some(file),
                },
            }),
            // process churn: one worker exits, a new one forks
            _ => {
                let i = self.rng.below(self.workers.len() as u64) as usize;
                let old = self.workers.swap_remove(i);
                out.push(Event {
                    time: self.tick(),
                    proc: old,
                    op: Op::Exit,
                });
                let ev = self.spawn();
                out.push(ev);
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct TraceFigure {
    trace: String,
    events: usize,
    passes: usize,
    verdicts_per_pass: usize,
    events_per_s: f64,
}

#[derive(Debug, Serialize)]
struct OpFigure {
    op: &'static str,
    events: u64,
    events_per_s: f64,
    mean_ns: f64,
}

#[derive(Debug, Serialize)]
struct EngineReport {
    files: usize,
    populate_events: u64,
    populate_events_per_s: f64,
    mixed_events: u64,
    mixed_events_per_s: f64,
    /// Content samples of the mixed events whose file's stored profile was reused.
    mixed_profile_cache_hit_rate: f64,
    verdicts: u64,
    files_tracked: usize,
    /// Distinct content profiles stored at the end.
    contents_tracked: usize,
    processes_tracked: usize,
    rss_before_kib: u64,
    rss_after_populate_kib: u64,
    per_op: Vec<OpFigure>,
    peak_rss_kib: u64,
    engine_rss_kib: u64,
    /// Sample bytes profiled anew in the mixed phase.
    mixed_bytes_analysed: u64,
    /// Events/s if the engine did nothing but one counting pass over those bytes.
    analysis_floor_events_per_s: f64,
    /// Share of the mixed phase's engine time spent in `Profile::of` of those bytes
    /// (estimated from its cost per byte on the same contents).
    profile_share: f64,
    target_events_per_s: f64,
    target_rss_kib: u64,
    events_met: bool,
    rss_met: bool,
    traces: Vec<TraceFigure>,
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Process(_) => "process",
        Op::Exit => "exit",
        Op::Open { .. } => "open (sampled)",
        Op::CloseWrite { .. } => "close_write (sampled)",
        Op::Create { .. } => "create",
        Op::Delete { .. } => "delete",
        Op::Rename { .. } => "rename",
        Op::Connect { .. } => "connect",
        Op::Modify { .. } => "modify (sampled)",
        Op::Written { .. } => "written blocks",
    }
}

/// Time `observe` over a batch (generation is not timed).
fn feed(engine: &mut Engine, batch: &mut Vec<Event>, busy: &mut Duration, verdicts: &mut u64) {
    let t = Instant::now();
    for ev in batch.iter() {
        if engine.observe(ev).is_some() {
            *verdicts += 1;
        }
    }
    *busy += t.elapsed();
    batch.clear();
}

fn read_trace(path: &Path) -> Result<(ward_engine::Config, Vec<Event>), ExitError> {
    let t = ward_agent::trace::Trace::read(path).map_err(|e| ExitError::usage(e.to_string()))?;
    if t.events.is_empty() {
        return Err(ExitError::usage(format!(
            "{}: no events (is it a trace written by `ward protect --record`?)",
            path.display()
        )));
    }
    Ok((t.config, t.events))
}

fn engine_bench(a: &BenchArgs) -> Result<(), ExitError> {
    if a.engine_files == 0 {
        return Err(ExitError::usage("--engine-files must be at least 1"));
    }
    // Traces first, and their memory freed, so that the peak RSS reflects the 1 M-file run.
    let mut traces = Vec::new();
    for t in &a.trace {
        let (cfg, events) = read_trace(t)?;
        let mut passes = 0;
        let mut busy = Duration::ZERO;
        let mut verdicts = 0;
        while busy < Duration::from_millis(500) || passes < 3 {
            let mut engine = Engine::new(cfg.clone());
            verdicts = 0;
            let t0 = Instant::now();
            for ev in &events {
                if engine.observe(ev).is_some() {
                    verdicts += 1;
                }
            }
            busy += t0.elapsed();
            passes += 1;
        }
        let f = TraceFigure {
            trace: t.display().to_string(),
            events: events.len(),
            passes,
            verdicts_per_pass: verdicts,
            events_per_s: (events.len() * passes) as f64 / busy.as_secs_f64(),
        };
        eprintln!(
            "trace {}: {} events × {} passes, {:.0} events/s",
            f.trace, f.events, f.passes, f.events_per_s
        );
        traces.push(f);
    }

    let rss_before = proc_status_kib("VmRSS:").unwrap_or(0);
    let mut synth = Synth::new(a.engine_files as u64);
    let mut engine = Engine::new(ward_engine::Config {
        max_files: a.engine_files.max(1_000_000),
        ..Default::default()
    });
    let mut batch: Vec<Event> = Vec::with_capacity(80);
    let mut verdicts = 0u64;

    eprintln!("engine: tracking {} files …", a.engine_files);
    let mut busy = Duration::ZERO;
    batch.extend(synth.start());
    for ino in 0..a.engine_files as u64 {
        batch.push(synth.populate(ino));
        if batch.len() >= 64 {
            feed(&mut engine, &mut batch, &mut busy, &mut verdicts);
        }
    }
    feed(&mut engine, &mut batch, &mut busy, &mut verdicts);
    let populate_stats = engine.stats();
    let populate_events = populate_stats.events;
    let populate_busy = busy;

    let rss_populated = proc_status_kib("VmRSS:").unwrap_or(0);

    eprintln!("engine: {} mixed events …", a.engine_events);
    let mut busy = Duration::ZERO;
    let mut n = 0u64;
    // Per operation: (events, time).
    let mut per_op: BTreeMap<&'static str, (u64, Duration)> = BTreeMap::new();
    while (n as usize) < a.engine_events {
        synth.mixed(&mut batch);
        if batch.len() >= 64 {
            n += batch.len() as u64;
            for ev in batch.drain(..) {
                let t = Instant::now();
                if engine.observe(&ev).is_some() {
                    verdicts += 1;
                }
                let dt = t.elapsed();
                busy += dt;
                let e = per_op.entry(op_name(&ev.op)).or_default();
                e.0 += 1;
                e.1 += dt;
            }
        }
    }
    n += batch.len() as u64;
    feed(&mut engine, &mut batch, &mut busy, &mut verdicts);
    let st = engine.stats();
    let peak = proc_status_kib("VmHWM:").unwrap_or(0);
    let analysed = st.bytes_analysed - populate_stats.bytes_analysed;
    let (pass_ns, profile_ns) = synth.analysis_ns_per_byte();
    let floor_s = analysed as f64 * pass_ns / 1e9;
    let rep = EngineReport {
        files: a.engine_files,
        populate_events,
        populate_events_per_s: populate_events as f64 / populate_busy.as_secs_f64(),
        mixed_events: n,
        mixed_events_per_s: n as f64 / busy.as_secs_f64(),
        mixed_profile_cache_hit_rate: (st.profiles_reused - populate_stats.profiles_reused) as f64
            / (st.samples_profiled - populate_stats.samples_profiled).max(1) as f64,
        verdicts,
        files_tracked: st.files_tracked,
        contents_tracked: st.contents_tracked,
        processes_tracked: st.processes_tracked,
        rss_before_kib: rss_before,
        rss_after_populate_kib: rss_populated,
        per_op: per_op
            .iter()
            .map(|(k, (c, t))| OpFigure {
                op: k,
                events: *c,
                events_per_s: *c as f64 / t.as_secs_f64(),
                mean_ns: t.as_nanos() as f64 / (*c).max(1) as f64,
            })
            .collect(),
        peak_rss_kib: peak,
        engine_rss_kib: peak.saturating_sub(rss_before),
        mixed_bytes_analysed: analysed,
        analysis_floor_events_per_s: n as f64 / floor_s.max(1e-9),
        profile_share: (analysed as f64 * profile_ns / 1e9) / busy.as_secs_f64(),
        target_events_per_s: 1e6,
        target_rss_kib: 64 * 1024,
        events_met: n as f64 / busy.as_secs_f64() >= 1e6,
        rss_met: peak <= 64 * 1024,
        traces,
    };
    drop(engine);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep).expect("report serialises")
        );
        return Ok(());
    }
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(o, "ward bench --engine: detection engine alone, one thread");
    let _ = writeln!(
        o,
        "populate: {} files opened with content samples: {:.0} events/s",
        rep.files, rep.populate_events_per_s
    );
    let _ = writeln!(
        o,
        "mixed:    {} events (50% open, 20% open+write+close, 15% create+close, 8% delete, 3% rename, 4% exit+fork) over {} tracked files: {:.0} events/s; {} verdict(s); profile cache hit rate {:.1}%",
        rep.mixed_events,
        rep.files_tracked,
        rep.mixed_events_per_s,
        rep.verdicts,
        rep.mixed_profile_cache_hit_rate * 100.0
    );
    for f in &rep.per_op {
        let _ = writeln!(
            o,
            "  {:<22} {:>9} events {:>12.0} events/s {:>9.0} ns/event",
            f.op, f.events, f.events_per_s, f.mean_ns
        );
    }
    let _ = writeln!(
        o,
        "analysis: {:.1} MiB of samples profiled anew in the mixed phase ({:.0} bytes per event); \
         profiling them is ≈ {:.0}% of the engine's time; one counting pass over them and \
         nothing else would allow at most {:.2} M events/s (the floor of judging every new \
         sample's bytes on one core)",
        rep.mixed_bytes_analysed as f64 / (1 << 20) as f64,
        rep.mixed_bytes_analysed as f64 / rep.mixed_events.max(1) as f64,
        rep.profile_share * 100.0,
        rep.analysis_floor_events_per_s / 1e6
    );
    for t in &rep.traces {
        let _ = writeln!(
            o,
            "trace:    {} ({} events, {} verdict(s)): {:.0} events/s",
            t.trace, t.events, t.verdicts_per_pass, t.events_per_s
        );
    }
    let _ = writeln!(
        o,
        "memory:   peak RSS {:.1} MiB (before the engine {:.1} MiB, after tracking the files {:.1} MiB, engine ≈ {:.1} MiB) with {} files tracked",
        rep.peak_rss_kib as f64 / 1024.0,
        rep.rss_before_kib as f64 / 1024.0,
        rep.rss_after_populate_kib as f64 / 1024.0,
        rep.engine_rss_kib as f64 / 1024.0,
        rep.files_tracked
    );
    let _ = writeln!(
        o,
        "          the synthetic files share {} distinct contents (profiles are stored once); \
         where every tracked file's content differs, add ≈ {} bytes a file ({:.0} MiB more \
         for {} files)",
        rep.contents_tracked,
        ward_engine::PROFILE_BYTES,
        (rep.files_tracked * ward_engine::PROFILE_BYTES) as f64 / (1 << 20) as f64,
        rep.files_tracked
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "events/s per core (mixed) ≥ 1 M:  {:.2} M  {}",
        rep.mixed_events_per_s / 1e6,
        if rep.events_met { "met" } else { "MISSED" }
    );
    let _ = writeln!(
        o,
        "peak RSS with {} files ≤ 64 MiB: {:.1} MiB  {}",
        rep.files,
        rep.peak_rss_kib as f64 / 1024.0,
        if rep.rss_met { "met" } else { "MISSED" }
    );
    print!("{o}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_engine_run_is_quiet_enough_and_tracks_files() {
        let mut s = Synth::new(2000);
        let mut e = Engine::new(Default::default());
        let mut batch = s.start();
        for ino in 0..2000 {
            batch.push(s.populate(ino));
        }
        for _ in 0..2000 {
            s.mixed(&mut batch);
        }
        for ev in &batch {
            e.observe(ev);
        }
        assert!(e.stats().files_tracked >= 2000);
        // Re-opens of unchanged files reuse their profiles; writes and new files do not.
        let st = e.stats();
        let hit = st.profiles_reused as f64 / st.samples_profiled as f64;
        assert!(hit > 0.2 && hit < 0.9, "hit rate {hit}");
    }

    #[test]
    fn median_works() {
        assert_eq!(median(vec![1.0, 3.0, 2.0]), 2.0);
        assert!(median(vec![]).is_nan());
    }
}
