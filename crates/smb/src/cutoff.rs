//! The whole SMB response for one client, in the order that keeps every other client
//! working: freeze its smbd children (SIGSTOP stalls only that connection), block its address
//! on the SMB ports (so a reconnect with saved credentials fails), then end its sessions
//! cleanly ([`end_client`]).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ward_model::ProcId;

use crate::block::Blocker;
use crate::peer::{canonical, tcp_peer};
use crate::role::{smbd_role, SmbdRole};
use crate::session::{end_client, EndReport};
use crate::tools::SambaTools;
use crate::Result;

/// What [`cut_off`] did, with its timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CutOff {
    /// The client's address (canonical form).
    pub ip: IpAddr,
    /// Children frozen by this call.
    pub frozen: Vec<u32>,
    /// Time to freeze.
    pub freeze_latency: Duration,
    /// Time for the nftables block.
    pub block_latency: Duration,
    /// How the sessions ended.
    pub end: EndReport,
    /// Total time.
    pub elapsed: Duration,
}

/// Is `p` (still, by pid and start time) a per-client smbd child?
fn is_client_child(p: &ProcId) -> bool {
    let same = ward_sys::procfs::stat(p.pid)
        .map(|s| (p.start == 0 || s.start == p.start) && s.state != 'Z')
        .unwrap_or(false);
    same && smbd_role(p.pid) == Some(SmbdRole::Client)
}

/// Is `p` (still) a per-client smbd child serving `ip`?
pub(crate) fn serves(p: &ProcId, ip: IpAddr) -> bool {
    if !is_client_child(p) {
        return false;
    }
    match tcp_peer(p.pid, &[445, 139]) {
        Some(peer) => peer == ip,
        None => true, // connection already closing: it served this client
    }
}

/// Cut client `ip` off: SIGSTOP its `smbd_children` (those that really serve it), block the
/// address (`ttl`: expiry, `None`: until [`Blocker::unblock`]), then [`end_client`] within
/// `bound`. The block stands even if ending the session fails; an error is returned only
/// when the block could not be made.
pub fn cut_off(
    blocker: &Blocker,
    tools: &SambaTools,
    ip: IpAddr,
    smbd_children: &[ProcId],
    ttl: Option<Duration>,
    bound: Duration,
) -> Result<CutOff> {
    let t0 = Instant::now();
    let ip = canonical(ip);
    let mut frozen = Vec::new();
    // Freeze first and fast (identity and role only); end_client checks the peer, and a
    // child it refuses (not this client's) is continued again below.
    for p in smbd_children.iter().filter(|p| is_client_child(p)) {
        if kill(Pid::from_raw(p.pid as i32), Signal::SIGSTOP).is_ok() {
            frozen.push(p.pid);
        }
    }
    let freeze_latency = t0.elapsed();
    let t1 = Instant::now();
    blocker.block(ip, ttl)?;
    let block_latency = t1.elapsed();
    let end = end_client(tools, ip, smbd_children, bound)?;
    for pid in &end.refused {
        if frozen.contains(pid) {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGCONT);
        }
    }
    frozen.retain(|p| !end.refused.contains(p));
    Ok(CutOff {
        ip,
        frozen,
        freeze_latency,
        block_latency,
        end,
        elapsed: t0.elapsed(),
    })
}
