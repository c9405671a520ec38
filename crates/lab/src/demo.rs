//! `ward demo`: ward at work, end to end, on a scratch filesystem it creates and removes.
//!
//! 1. a loop-mounted ext4 image with a realistic hospital-share corpus;
//! 2. `ward protect --json` on it (a real child process, the same one a service runs);
//! 3. a WannaCry-like attack (`ward simulate new-then-delete`) in another child process;
//! 4. what ward detected, when, what it stopped and what it restored; then everything is
//!    cleaned up.

use crate::driver::Ward;
use crate::scratchfs::{FsKind, ScratchFs};
use std::io::IsTerminal;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ward_agent::AgentError as ExitError;

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn green(&self, s: &str) -> String {
        self.paint("1;32", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// The demos' share: a scratch ext4 filesystem (removed on drop) with the hospital corpus
/// in `share/`, a state directory beside it, and the corpus's hashes before anything runs.
pub(crate) struct DemoShare {
    pub(crate) fs: ScratchFs,
    pub(crate) share: std::path::PathBuf,
    pub(crate) state: std::path::PathBuf,
    pub(crate) files: usize,
    pub(crate) before: std::collections::BTreeMap<String, String>,
}

impl DemoShare {
    pub(crate) fn create() -> Result<DemoShare, ExitError> {
        let fs = ScratchFs::create(FsKind::Ext4, 256).map_err(ExitError::runtime)?;
        let share = fs.path().join("share");
        let state = fs
            .path()
            .parent()
            .expect("scratch has a parent")
            .join("state");
        let files = crate::init_corpus(&share, crate::DEFAULT_FILES, 2017)
            .map_err(|e| ExitError::runtime(e.to_string()))?
            .files
            .len();
        let before =
            crate::manifest_hashes(&share).map_err(|e| ExitError::runtime(e.to_string()))?;
        Ok(DemoShare {
            fs,
            share,
            state,
            files,
            before,
        })
    }
}

/// Run `ward demo`.
pub fn run() -> Result<(), ExitError> {
    let st = Style {
        on: std::io::stdout().is_terminal(),
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(ExitError::usage(
            "ward demo needs root (it mounts a scratch filesystem and uses fanotify): run `sudo ward demo`",
        ));
    }
    let exe = std::env::current_exe().map_err(|e| ExitError::runtime(e.to_string()))?;
    let step = |s: &str| println!("{} {s}", st.bold("==>"));

    step("Creating a scratch ext4 filesystem (256 MiB loop image; removed at the end)");
    let DemoShare {
        fs,
        share,
        state,
        files,
        before,
    } = DemoShare::create()?;
    println!(
        "    {files} files: letters, rotas (CSV), referrals (DOCX/XLSX/PDF), CT/MR images (DICOM, PNG), a SQLite database, logs"
    );

    step("Starting `ward protect` on it");
    let mut agent = Ward::start(
        &exe,
        &state,
        &[share.as_path()],
        &[],
        Duration::from_secs(30),
    )
    .map_err(ExitError::runtime)?;
    let ready = agent.of_type("ready")[0].clone();
    println!(
        "    protections: {}",
        st.dim(
            &ready["protections"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::Bool(true) => format!("{k} on"),
                            serde_json::Value::Bool(false) => format!("{k} OFF"),
                            other => format!("{k} {other}"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        )
    );

    step("Launching a WannaCry-like attack (encrypt each file to FILE.WNCRY, delete the original, drop ransom notes)");
    let t0 = Instant::now();
    let mut attacker = Command::new(&exe)
        .args(["simulate", "new-then-delete", "--dir"])
        .arg(&share)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ExitError::runtime(format!("starting the attack: {e}")))?;
    println!("    attacker pid {}", attacker.id());
    let incident = agent.wait_for("incident", Duration::from_secs(30));
    let status = attacker.wait().ok();
    let elapsed = t0.elapsed();
    let after = crate::manifest_hashes(&share).map_err(|e| ExitError::runtime(e.to_string()))?;
    let changed = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .count();
    let restored = if ready["protections"]["vault"] == true {
        agent.wait_for("restored", Duration::from_secs(60))
    } else {
        None
    };
    let recovered =
        crate::manifest_hashes(&share).map_err(|e| ExitError::runtime(e.to_string()))?;
    let lost = before
        .iter()
        .filter(|(k, v)| recovered.get(*k) != Some(v))
        .count();

    match incident {
        Some(inc) => {
            println!();
            println!(
                "{}",
                st.red(&format!(
                    "  RANSOMWARE CONTAINED  incident {}",
                    inc["id"].as_str().unwrap_or("?")
                ))
            );
            println!(
                "    process      pid {} {}",
                inc["pid"],
                inc["cmdline"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" "))
                    .unwrap_or_default()
            );
            println!(
                "    evidence     {}",
                inc["indicators"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            );
            println!(
                "    first damage {}",
                inc["started_at"].as_str().unwrap_or("?")
            );
            println!(
                "    contained    {} ({:.1} ms after the first damaging write)",
                inc["contained_at"].as_str().unwrap_or("?"),
                inc["contain_ms"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "    action       {} ({} process(es))",
                inc["action"].as_str().unwrap_or("?"),
                inc["processes"].as_array().map(|a| a.len()).unwrap_or(0)
            );
            println!(
                "    damage       {} of {} files touched before the freeze; {} untouched",
                changed,
                before.len(),
                st.green(&format!("{}", before.len() - changed))
            );
            println!(
                "    attacker     {}",
                match status {
                    Some(s) if !s.success() => format!("ended ({s})"),
                    Some(s) => format!("finished on its own ({s}) — not contained!"),
                    None => "unknown".into(),
                }
            );
            match &restored {
                Some(r) => println!(
                    "    recovery     {} file(s) restored from the vault, {} attacker file(s) quarantined; {}",
                    r["files_restored"],
                    r["files_quarantined"],
                    if lost == 0 {
                        st.green("0 files lost (every original is byte-identical again)")
                    } else {
                        st.red(&format!("{lost} file(s) LOST"))
                    }
                ),
                None => println!("    recovery     {}", st.red("no restore report (vault inactive?)")),
            }
        }
        None => {
            println!(
                "{}",
                st.red("  No incident within 30 s: the attack was NOT detected.")
            );
            let _ = agent.stop(Duration::from_secs(10));
            return Err(ExitError::runtime(format!(
                "demo failed: attack not detected after {:.1}s; ward log:\n{}",
                elapsed.as_secs_f64(),
                agent.log()
            )));
        }
    }
    println!();
    step("Stopping ward and removing the scratch filesystem");
    agent
        .stop(Duration::from_secs(10))
        .map_err(ExitError::runtime)?;
    let out = Command::new(&exe)
        .args(["incidents", "--state-dir"])
        .arg(&state)
        .output()
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    print!("{}", st.dim(&String::from_utf8_lossy(&out.stdout)));
    drop(fs);
    println!("{}", st.green("done."));
    Ok(())
}
