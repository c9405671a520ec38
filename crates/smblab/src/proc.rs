//! Running commands, finding processes, ending smbd.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{Error, Result};

/// The full path of `tool` on PATH or in the sbin dirs.
pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command to the end; error with its stderr if it fails.
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    run_stdin(cmd, "")
}

/// Run a command with `input` on stdin.
pub(crate) fn run_stdin(cmd: &mut Command, input: &str) -> Result<String> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command {
            cmd: what.clone(),
            detail: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::Command {
        cmd: what.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            cmd: what,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// The `comm` of a process.
pub(crate) fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// Live children of `pid`.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| ward_ppid(*p) == Some(pid))
        .collect()
}

fn ward_ppid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|st| st == "Z")
        })
        .unwrap_or(true)
}

/// Processes running with `-s CONF` whose config is under a dir matching `pred` (smbd and its
/// children keep the master's command line).
pub(crate) fn smbd_using(pred: impl Fn(&str) -> bool) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| {
            let c = cmdline(*p);
            c.first().map(|a| a.ends_with("smbd")).unwrap_or(false)
                && c.windows(2).any(|w| w[0] == "-s" && pred(&w[1]))
                && !is_zombie(*p)
        })
        .collect()
}

fn signal_all(pids: &[u32], sig: Signal) {
    for p in pids {
        let _ = kill(Pid::from_raw(*p as i32), sig);
    }
}

/// Wait until none of `pids` is alive (zombies count as gone), up to `bound`.
fn wait_gone(pids: &[u32], bound: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        if pids
            .iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists() || is_zombie(*p))
        {
            return true;
        }
        if t0.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// End the lab's smbd: SIGCONT (a test may have frozen a child), SIGTERM to the master,
/// wait; then SIGTERM to every process still using the lab's config; SIGKILL as the last
/// resort (test infrastructure only; the product never SIGKILLs smbd).
pub(crate) fn stop_smbd(master: &mut Child, conf: &Path) {
    let conf_s = conf.to_string_lossy().into_owned();
    let mine = |a: &str| a == conf_s;
    let all = smbd_using(mine);
    signal_all(&all, Signal::SIGCONT);
    let _ = kill(Pid::from_raw(master.id() as i32), Signal::SIGTERM);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = master.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !matches!(master.try_wait(), Ok(Some(_))) {
        let _ = master.kill();
        let _ = master.wait();
    }
    let rest = smbd_using(mine);
    signal_all(&rest, Signal::SIGCONT);
    signal_all(&rest, Signal::SIGTERM);
    if !wait_gone(&rest, Duration::from_secs(3)) {
        signal_all(&smbd_using(mine), Signal::SIGKILL);
        wait_gone(&rest, Duration::from_secs(2));
    }
}

/// Is `pid` alive?
pub(crate) fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// SIGTERM (then SIGKILL) smbds left by dead labs: those whose config lies in a
/// `ward-smblab-<pid>-` dir of a process that no longer exists.
pub(crate) fn sweep_smbd() {
    let dead_lab = |a: &str| {
        a.split('/')
            .find_map(|seg| seg.strip_prefix("ward-smblab-"))
            .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok())
            .map(|owner| !alive(owner))
            .unwrap_or(false)
    };
    let stale = smbd_using(dead_lab);
    if stale.is_empty() {
        return;
    }
    signal_all(&stale, Signal::SIGCONT);
    signal_all(&stale, Signal::SIGTERM);
    if !wait_gone(&stale, Duration::from_secs(3)) {
        signal_all(&stale, Signal::SIGKILL);
    }
}
