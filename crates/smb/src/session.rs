//! Ending one client's sessions cleanly: `smbcontrol smbd kill-client-ip`, then SIGTERM,
//! never SIGKILL (the smbd man page warns it can leave Samba's shared state inconsistent).
//!
//! Observed on Samba 4.17: a SIGSTOPped per-client child ignores kill-client-ip (the
//! message waits in its queue) and a pending SIGTERM until it is continued; after SIGCONT
//! it exits in ≈ 15 ms. So every signalled or messaged child is also sent SIGCONT.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ward_model::ProcId;

use crate::cutoff::serves;
use crate::peer::canonical;
use crate::tools::SambaTools;
use crate::Result;

/// How the session(s) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndMethod {
    /// `smbcontrol kill-client-ip` was enough.
    SmbControl,
    /// Some (or all) children needed SIGTERM.
    Sigterm,
    /// There was nothing to end.
    Nothing,
}

/// What [`end_client`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndReport {
    /// How.
    pub method: EndMethod,
    /// Children that are gone now.
    pub ended: Vec<u32>,
    /// Children still alive at the end of the bound (should be empty).
    pub still_running: Vec<u32>,
    /// Pids refused because they are not a per-client smbd child of `ip` (or were reused).
    pub refused: Vec<u32>,
    /// The smbcontrol error, if it failed.
    pub smbcontrol_error: Option<String>,
    /// Time taken.
    pub elapsed: Duration,
}

fn same_process(p: &ProcId) -> bool {
    match ward_sys::procfs::stat(p.pid) {
        Some(s) => (p.start == 0 || s.start == p.start) && s.state != 'Z',
        None => false,
    }
}

fn signal(pids: &[ProcId], sig: Signal) {
    for p in pids {
        if same_process(p) {
            let _ = kill(Pid::from_raw(p.pid as i32), sig);
        }
    }
}

fn wait_gone(pids: &[ProcId], until: Instant) -> Vec<ProcId> {
    loop {
        let alive: Vec<ProcId> = pids.iter().copied().filter(same_process).collect();
        if alive.is_empty() || Instant::now() >= until {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// End every session of client `ip`: `smbcontrol [-s CONF] smbd kill-client-ip IP`, SIGCONT
/// to the client's children (frozen ones must run to exit), wait up to half of `bound`;
/// then SIGTERM + SIGCONT to those left, wait the rest. Only pids that are per-client smbd
/// children whose TCP peer is `ip` (checked by pid and start time; a child whose connection
/// already closed is accepted) are ever signalled; never the master, never SIGKILL.
pub fn end_client(
    tools: &SambaTools,
    ip: IpAddr,
    smbd_children: &[ProcId],
    bound: Duration,
) -> Result<EndReport> {
    let t0 = Instant::now();
    let ip = canonical(ip);
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for p in smbd_children {
        if serves(p, ip) {
            ok.push(*p);
        } else if same_process(p) {
            refused.push(p.pid);
        }
    }
    // Even with no child known, smbd is asked to drop the address (it knows its children).
    let smbcontrol_error = tools.kill_client_ip(ip).err().map(|e| e.to_string());
    signal(&ok, Signal::SIGCONT);
    // When smbcontrol worked, give smbd half the bound to close the sessions itself.
    let mut left = if smbcontrol_error.is_none() {
        wait_gone(&ok, t0 + bound / 2)
    } else {
        ok.clone()
    };
    let method = if ok.is_empty() {
        if smbcontrol_error.is_none() {
            EndMethod::SmbControl
        } else {
            EndMethod::Nothing
        }
    } else if left.is_empty() && smbcontrol_error.is_none() {
        EndMethod::SmbControl
    } else {
        signal(&left, Signal::SIGTERM);
        signal(&left, Signal::SIGCONT);
        left = wait_gone(&left, t0 + bound);
        EndMethod::Sigterm
    };
    let still: Vec<u32> = left.iter().map(|p| p.pid).collect();
    Ok(EndReport {
        method,
        ended: ok
            .iter()
            .map(|p| p.pid)
            .filter(|p| !still.contains(p))
            .collect(),
        still_running: still,
        refused,
        smbcontrol_error,
        elapsed: t0.elapsed(),
    })
}
