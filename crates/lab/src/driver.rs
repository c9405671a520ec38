//! Drive a real `ward protect --json` process: start it, wait for its JSON events, stop it.
//! Used by `ward demo`, `ward eval` and the integration tests, so all of them exercise the
//! same binary and contract (BRIEF §5) that outside tests do.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A running `ward protect --json`.
pub struct Ward {
    child: Option<Child>,
    rx: Receiver<Value>,
    /// Every JSON event received so far, in order.
    pub events: Vec<Value>,
    stderr_path: PathBuf,
}

impl Ward {
    /// Start `exe protect --json --state-dir STATE [extra...] PATHS...` and wait for `ready`.
    /// stderr goes to `STATE/protect.log`.
    pub fn start(
        exe: &Path,
        state_dir: &Path,
        paths: &[&Path],
        extra: &[&str],
        timeout: Duration,
    ) -> Result<Ward, String> {
        std::fs::create_dir_all(state_dir).map_err(|e| format!("state dir: {e}"))?;
        let stderr_path = state_dir.join("protect.log");
        let log = std::fs::File::create(&stderr_path).map_err(|e| format!("log: {e}"))?;
        let mut child = Command::new(exe)
            .arg("protect")
            .arg("--json")
            .arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .args(paths)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => {
                        let _ = tx.send(serde_json::json!({"type": "invalid-json", "line": line}));
                    }
                }
            }
        });
        let mut a = Ward {
            child: Some(child),
            rx,
            events: Vec::new(),
            stderr_path,
        };
        match a.wait_for("ready", timeout) {
            Some(_) => Ok(a),
            None => {
                let log = a.log();
                a.kill();
                Err(format!("ward protect did not become ready: {log}"))
            }
        }
    }

    /// Wait up to `timeout` for the next event of type `ty` (events of other types are
    /// kept in [`Ward::events`]). Returns `None` on timeout or exit.
    pub fn wait_for(&mut self, ty: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.events.push(v.clone());
                    if v["type"] == ty {
                        return Some(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Collect events that arrive within `window` (for "nothing happened" checks).
    pub fn drain(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while let Ok(v) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.events.push(v.clone());
            got.push(v);
        }
        got
    }

    /// Events of a type received so far.
    pub fn of_type(&self, ty: &str) -> Vec<&Value> {
        self.events.iter().filter(|v| v["type"] == ty).collect()
    }

    /// The agent's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// pid of the agent.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM, wait for `stopped` and the exit. Returns the exit code.
    pub fn stop(&mut self, timeout: Duration) -> Result<i32, String> {
        let Some(mut child) = self.child.take() else {
            return Err("already stopped".into());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let stopped = self.wait_for("stopped", timeout).is_some();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                if !stopped {
                    return Err(format!("no stopped event; exit {st}; log: {}", self.log()));
                }
                return Ok(st.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ward protect did not exit after SIGTERM; log: {}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Ward {
    fn drop(&mut self) {
        self.kill();
    }
}
