//! Shared helpers of the root-only integration tests: a scratch filesystem with a corpus,
//! a running `ward protect`, and the simulator.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;
use ward_lab::driver::Ward;
use ward_lab::scratchfs::{FsKind, ScratchFs};

pub const WARD: &str = env!("CARGO_BIN_EXE_ward");

/// `true` when the test can run (root). Outside CI a non-root run skips with a note;
/// in CI (CI=true) a non-root run is a failure: these tests must run there.
pub fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("integration tests need root in CI");
    }
    eprintln!("skipping: needs root");
    false
}

/// A scratch fs with a corpus in `share/` and a state dir beside it.
pub struct Lab {
    pub fs: ScratchFs,
    pub share: PathBuf,
    pub state: PathBuf,
    pub before: BTreeMap<String, String>,
}

/// Fill `dir` with the simulator's corpus of `files` files (`ward simulate --init`).
pub fn init_corpus(dir: &Path, files: usize) {
    let out = Command::new(WARD)
        .args(["simulate", "--init", "--files", &files.to_string(), "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    pub fn new(kind: FsKind, files: usize) -> Lab {
        let fs = ScratchFs::create(kind, 256).expect("scratch filesystem");
        let share = fs.path().join("share");
        let state = fs.path().parent().unwrap().join("state");
        init_corpus(&share, files);
        let before = ward_lab::manifest_hashes(&share).unwrap();
        assert!(before.len() >= 150, "corpus has {} files", before.len());
        Lab {
            fs,
            share,
            state,
            before,
        }
    }

    pub fn protect(&self) -> Ward {
        Ward::start(
            Path::new(WARD),
            &self.state,
            &[self.share.as_path()],
            &[],
            Duration::from_secs(30),
        )
        .expect("ward protect starts")
    }

    /// Run a simulator profile to completion (or until killed).
    pub fn simulate(&self, profile: &str) -> ExitStatus {
        Command::new(WARD)
            .args(["simulate", profile, "--dir"])
            .arg(&self.share)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .status()
            .unwrap()
    }

    /// Corpus files whose content changed or that are gone.
    pub fn damaged(&self) -> Vec<String> {
        let now = ward_lab::manifest_hashes(&self.share).unwrap();
        self.before
            .iter()
            .filter(|(k, v)| now.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

impl Drop for Lab {
    /// A ward these tests kill on purpose (SIGKILL, watchdog) cannot remove its nftables
    /// table: remove the default one here (it never holds a block in these tests; the Samba
    /// tests use tables of their own).
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", "ward"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
