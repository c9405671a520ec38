//! The Python SMB clients: installing them into the lab, running them, reading their JSON.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{io_err, Error, Result};

const SCRIPTS: [(&str, &str); 5] = [
    ("common.py", include_str!("../py/common.py")),
    ("attacker.py", include_str!("../py/attacker.py")),
    ("honest.py", include_str!("../py/honest.py")),
    ("bulk.py", include_str!("../py/bulk.py")),
    ("probe.py", include_str!("../py/probe.py")),
];

/// The interpreter with smbprotocol: `$WARD_SMBLAB_PYTHON` or `python3`, resolved to its
/// real executable (so `ip netns exec` needs no shell shims).
pub(crate) fn python() -> Result<PathBuf> {
    let py = std::env::var("WARD_SMBLAB_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&py)
        .args([
            "-c",
            "import sys, smbclient, smbprotocol; print(sys.executable)",
        ])
        .output()
        .map_err(|e| Error::Unavailable(format!("cannot run {py}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Unavailable(format!(
            "{py} has no smbprotocol (pip install smbprotocol)"
        )));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Write the client scripts into `dir`.
pub(crate) fn install(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err("creating the lab's script dir"))?;
    for (name, text) in SCRIPTS {
        std::fs::write(dir.join(name), text).map_err(io_err(format!("writing {name}")))?;
    }
    Ok(())
}

/// What a finished client script printed.
#[derive(Clone, Debug)]
pub struct ScriptOutput {
    /// The script's name.
    pub script: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Every JSON line of stdout, in order (other lines are skipped).
    pub lines: Vec<Value>,
    /// Its stderr.
    pub stderr: String,
}

impl ScriptOutput {
    /// The last line with `"type":"summary"`.
    pub fn summary(&self) -> Option<&Value> {
        self.lines.iter().rev().find(|v| v["type"] == "summary")
    }

    /// Every line of the given `type`.
    pub fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.lines.iter().filter(move |v| v["type"] == ty)
    }
}

/// A running client script whose JSON lines are collected as they arrive.
#[derive(Debug)]
pub struct ClientProc {
    script: String,
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    out: Option<JoinHandle<()>>,
    err: Option<JoinHandle<String>>,
}

impl ClientProc {
    pub(crate) fn spawn(script: &str, mut cmd: Command) -> Result<ClientProc> {
        let mut child = cmd
            .spawn()
            .map_err(io_err(format!("starting client script {script}")))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take();
        let sink = lines.clone();
        let out = stdout.map(|s| {
            std::thread::spawn(move || {
                for line in BufReader::new(s).lines().map_while(|l| l.ok()) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if let Ok(mut g) = sink.lock() {
                            g.push(v);
                        }
                    }
                }
            })
        });
        let err = child.stderr.take().map(|mut s| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = s.read_to_string(&mut text);
                text
            })
        });
        Ok(ClientProc {
            script: script.to_string(),
            child,
            lines,
            out,
            err,
        })
    }

    /// The pid of `ip netns exec` (which execs Python, so also the script's pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The JSON lines printed so far.
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Wait until a line satisfying `pred` has been printed, up to `bound`; true if it was.
    pub fn wait_for(&self, bound: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < bound {
            if self.lines().iter().any(&pred) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Is it still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the end, killing the script after `timeout` (then it is an error).
    pub fn wait(mut self, timeout: Duration) -> Result<ScriptOutput> {
        let t0 = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if t0.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self
                        .err
                        .take()
                        .and_then(|h| h.join().ok())
                        .unwrap_or_default();
                    return Err(Error::Timeout {
                        script: self.script.clone(),
                        secs: timeout.as_secs_f64(),
                        lines: self.lines(),
                        stderr,
                    });
                }
            }
        };
        if let Some(h) = self.out.take() {
            let _ = h.join();
        }
        let stderr = self
            .err
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ok(ScriptOutput {
            script: self.script.clone(),
            status,
            lines: self.lines(),
            stderr,
        })
    }

    /// Kill it now (SIGKILL; it is a test client) and collect what it printed.
    pub fn kill(mut self) -> Result<ScriptOutput> {
        let _ = self.child.kill();
        self.wait(Duration::from_secs(5))
    }
}

impl Drop for ClientProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
