//! The SMB client responder: an attack made through Samba is the smbd process serving one
//! client. Cut off that client, and only it:
//!
//! 1. **freeze** the client's smbd process(es) (SIGSTOP stalls only that connection; every
//!    other client is served by its own smbd process and keeps working);
//! 2. **block** the client's address on 445/139 in ward's own nftables table, so a client
//!    with saved credentials cannot simply reconnect;
//! 3. **end** its sessions cleanly (`smbcontrol smbd kill-client-ip`, then SIGTERM; never
//!    SIGKILL, which the smbd man page warns against), off the agent's thread.

use crate::{freeze, Containment, Responder, Subject};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ward_model::{Action, ProcId};
use ward_smb::{Attributor, Blocker, SambaTools};

/// A block this responder put in place (the agent records it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The blocked address.
    pub ip: IpAddr,
    /// How long it lasts (`None`: until `ward unblock`).
    pub ttl: Option<Duration>,
}

/// Cuts off SMB clients.
pub struct SmbClientResponder {
    attributor: Arc<Attributor>,
    blocker: Option<Arc<Mutex<Blocker>>>,
    tools: SambaTools,
    ttl: Option<Duration>,
    placed: Arc<Mutex<Vec<Placed>>>,
}

impl SmbClientResponder {
    /// A responder that blocks with `blocker` (if nftables is available) for `ttl`.
    pub fn new(
        attributor: Arc<Attributor>,
        blocker: Option<Arc<Mutex<Blocker>>>,
        tools: SambaTools,
        ttl: Option<Duration>,
    ) -> SmbClientResponder {
        SmbClientResponder {
            attributor,
            blocker,
            tools,
            ttl,
            placed: Arc::default(),
        }
    }

    /// Blocks placed so far (drained by the agent to record them).
    pub fn placed(&self) -> Arc<Mutex<Vec<Placed>>> {
        Arc::clone(&self.placed)
    }

    fn ip(s: &Subject) -> Option<IpAddr> {
        s.client.as_ref().and_then(|c| c.ip.parse().ok())
    }
}

impl Responder for SmbClientResponder {
    fn name(&self) -> &'static str {
        "smb-client"
    }

    fn handles(&self, s: &Subject) -> bool {
        SmbClientResponder::ip(s).is_some()
    }

    fn freeze(&mut self, s: &Subject) -> Containment {
        // The lineage's own smbd process first, then every other connection of the same
        // client (a workstation may hold several).
        let mut others: Vec<ProcId> = s.members.clone();
        if let Some(ip) = SmbClientResponder::ip(s) {
            for pid in self.attributor.pids_of(ip) {
                if pid != s.root.pid && !others.iter().any(|m| m.pid == pid) {
                    others.push(ProcId { pid, start: 0 });
                }
            }
        }
        let mut c = freeze(s.root, &others);
        // Other connections of the client are not descendants of the root: stop them too.
        for o in &others {
            if !c.frozen.contains(&o.pid) {
                let extra = freeze(*o, &[]);
                c.frozen.extend(extra.frozen);
            }
        }
        c
    }

    fn finish(&mut self, s: &Subject, c: &mut Containment, kill: bool) -> Action {
        let Some(ip) = SmbClientResponder::ip(s) else {
            return Action::Exited;
        };
        // The address is blocked, and the session ended, by a thread of its own: they run
        // programs (nft, smbcontrol) whose own file opens may wait on ward's permission
        // events, which this (the agent's) thread answers. The client is frozen already.
        if self.blocker.is_some() {
            if let Ok(mut p) = self.placed.lock() {
                p.push(Placed { ip, ttl: self.ttl });
            }
        }
        let blocker = self.blocker.clone();
        let ttl = self.ttl;
        let tools = self.tools.clone();
        let attributor = Arc::clone(&self.attributor);
        let root = s.root.pid;
        let procs: Vec<ProcId> = c
            .frozen
            .iter()
            .map(|&pid| ProcId { pid, start: 0 })
            .collect();
        // Ending the session talks to smbd (and waits for children to exit): not on the
        // thread that answers permission events.
        let spawned = std::thread::Builder::new()
            .name("smb-cut-off".into())
            .spawn(move || {
                match &blocker {
                    Some(b) => {
                        let r = b.lock().map_err(|_| "blocker lock poisoned".to_string());
                        if let Err(e) = r.and_then(|b| b.block(ip, ttl).map_err(|e| e.to_string()))
                        {
                            tracing::error!(
                                "could not block SMB client {ip}: {e}; it may reconnect and must \
                                 be blocked by hand (nft) until this is fixed"
                            );
                        }
                    }
                    None => tracing::warn!(
                        "nftables is not available: SMB client {ip} is cut off but not blocked, \
                         and may reconnect"
                    ),
                }
                if !kill {
                    // Left frozen for forensics: its connection stays stalled, address blocked.
                    return;
                }
                // Samba's word on who the client is (user, share) while its session still
                // exists: the incident is completed from the attributor's cache.
                let _ = attributor.wait_complete(root, None, Duration::from_secs(1));
                match ward_smb::end_client(&tools, ip, &procs, Duration::from_secs(5)) {
                    Ok(r) => {
                        if !r.still_running.is_empty() {
                            tracing::warn!(
                                "SMB client {ip}: smbd process(es) {:?} did not exit",
                                r.still_running
                            );
                        }
                        tracing::info!(
                            "SMB client {ip}: session(s) ended ({:?}, {:?})",
                            r.method,
                            r.elapsed
                        );
                    }
                    Err(e) => tracing::error!("ending the sessions of SMB client {ip}: {e}"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot block SMB client {ip} or end its sessions: {e}");
        }
        Action::ClientBlocked
    }
}
