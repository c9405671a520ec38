//! Containment: a verdict becomes a [`Subject`], the first responder that handles it freezes
//! and then finishes it, and the incident is recorded (with a first restore plan) durably
//! before it is announced.

use crate::agent::{Agent, DueRestore, SETTLE_WAIT, UNSETTLED_MAX};
use crate::vaultd::Job;
use std::time::{Duration, Instant, SystemTime};
use ward_engine::Verdict;
use ward_model::{Action, AgentEvent, Client, Incident, RestoreStatus};
use ward_response::{Containment, Subject};
use ward_sensor::EventSource;
use ward_store::Store;
use ward_vault::Owner;

impl<S: EventSource> Agent<S> {
    /// The SMB client a lineage root serves: the root is an smbd process serving one
    /// client connection (its parent, the daemon, is a boundary).
    pub(crate) fn client_of(&self, v: &Verdict) -> Option<Client> {
        let smb = self.smb.as_ref()?;
        let info = self.engine.process(v.root)?;
        let base = info.exe.rsplit('/').next().unwrap_or(&info.exe);
        if !ward_sensor::procs::PER_CLIENT_SERVERS.contains(&base) {
            return None;
        }
        let path = v.files_damaged.first().map(std::path::Path::new);
        let a = smb.attributor.lookup(v.root.pid, path)?;
        if a.client.ip.is_empty() {
            tracing::warn!(
                "pid {} is an smbd process but its client address is unknown: containing it \
                 as a local process",
                v.root.pid
            );
            return None;
        }
        Some(a.client)
    }

    /// Record the client blocks the SMB responder placed for incident `id`.
    fn record_blocks(&mut self, id: &str, at: chrono::DateTime<chrono::Utc>) {
        let Some(smb) = &self.smb else { return };
        let placed: Vec<ward_response::smb::Placed> = match smb.placed.lock() {
            Ok(mut p) => p.drain(..).collect(),
            Err(_) => return,
        };
        for p in placed {
            let b = ward_model::Block {
                ip: p.ip.to_string(),
                incident: id.to_string(),
                since: at,
                until: p
                    .ttl
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| at + d),
            };
            self.store.run(move |s| {
                if let Err(e) = s.put_block(&b) {
                    tracing::error!("recording the block of {}: {e}", b.ip);
                }
            });
        }
    }

    /// Freeze, then finish (kill, or cut off the client), the convicted lineage; record
    /// and report the incident.
    pub(crate) fn contain(&mut self, v: &Verdict) {
        // Queue the copies of files the lineage deleted (it is convicted, so suspicious);
        // only channel sends, so the freeze below is not delayed.
        self.settle_doomed();
        let detected_at = self.clock.wall(v.time);
        let subject = Subject {
            root: v.root,
            members: v
                .members
                .iter()
                .filter(|m| !self.is_protected_pid(m.pid))
                .copied()
                .collect(),
            client: self.client_of(v),
        };
        let protected_root = self.is_protected_pid(v.root.pid);
        // Alert-only paths (trial periods, change-controlled servers): report and keep the
        // copies, but never freeze, deny or restore by ourselves.
        let mode = v
            .files_damaged
            .first()
            .map(|f| self.cfg.mode_for(std::path::Path::new(f)))
            .unwrap_or(self.cfg.mode);
        let alert_only = mode == ward_config::Mode::Alert;
        if alert_only {
            self.alerted.push(v.root);
        }
        let fanout = v.indicators.iter().any(|i| i.as_str() == "smb-fanout");
        let responder = self.responders.iter_mut().find(|r| r.handles(&subject));
        let (contained, action) = match responder {
            _ if alert_only => {
                tracing::warn!(
                    "pid {} is damaging files under an alert-only path: reported, not stopped",
                    v.root.pid
                );
                (None, Action::Alerted)
            }
            Some(r) if !protected_root => {
                if fanout {
                    // In-kernel refusal first: not one more host while the freeze runs.
                    if let Some(src) = self.source.as_mut() {
                        src.deny_network(subject.root.pid);
                        for m in &subject.members {
                            src.deny_network(m.pid);
                        }
                    }
                }
                let mut c = r.freeze(&subject);
                let contained_ns = self.source.as_ref().map_or(0, |s| s.now());
                let action = r.finish(&subject, &mut c, self.cfg.kill);
                (Some((c, contained_ns)), action)
            }
            _ => {
                if protected_root {
                    tracing::error!(
                        "verdict against pid {} which is ward or its ancestor: not signalling it",
                        v.root.pid
                    );
                } else {
                    tracing::error!("no responder for pid {}: nothing was stopped", v.root.pid);
                }
                (None, Action::Exited)
            }
        };
        let (c, contained_ns) = contained.unwrap_or_else(|| {
            (
                Containment {
                    root_gone: true,
                    ..Default::default()
                },
                self.now(),
            )
        });
        let contained_at = self.clock.wall(contained_ns);
        // The restore keeps a file changed after containment as a conflict (someone else's
        // edit). A member signalled while inside a system call (a write waiting for the
        // disk, a truncate) still completes it: the restore counts from when every member
        // has settled, so the lineage's own last write is never taken for someone else's.
        let settle_t0 = Instant::now();
        let until_gone = action == Action::ClientBlocked;
        let unsettled = if until_gone {
            // The cut-off resumes the frozen smbd to end its session, and it may first
            // serve the client's requests already in its socket: the restore waits for it
            // to be gone.
            c.frozen.clone()
        } else {
            ward_response::await_settled(&c.frozen, SETTLE_WAIT)
        };
        // Read from the real-time clock itself, the one file timestamps are taken from
        // (event times are monotonic and only converted: a step of the wall clock since the
        // last conversion would shift the threshold).
        let settled_at = SystemTime::now();
        let settle_ms = settle_t0.elapsed().as_secs_f64() * 1e3;
        let info = self.engine.process(v.root).cloned();
        let (exe, cmdline, uid) = info
            .map(|i| (i.exe, i.cmdline, i.uid))
            .unwrap_or_else(|| (String::new(), Vec::new(), u32::MAX));
        let id = format!(
            "{}-{}",
            detected_at.format("%Y%m%dT%H%M%S%.3fZ"),
            v.root.pid
        );
        let contain_ms = contained_ns.saturating_sub(v.first_damage) as f64 / 1e6;
        let inc = Incident {
            id: id.clone(),
            pid: v.root.pid,
            exe,
            cmdline,
            client: subject.client.clone(),
            started_at: self.clock.wall(v.first_damage),
            detected_at,
            contained_at,
            action,
            files_damaged: v.files_damaged.len(),
            indicators: v
                .indicators
                .iter()
                .map(|i| i.as_str().to_string())
                .collect(),
            uid,
            damaged: v.files_damaged.clone(),
            created: v.files_created.clone(),
            processes: c.frozen.clone(),
            contain_ms,
            freeze_ms: contained_ns.saturating_sub(v.time) as f64 / 1e6,
            restore: if self.vault.is_some() {
                RestoreStatus::Pending
            } else {
                RestoreStatus::None
            },
        };
        self.stats.incidents += 1;
        self.record_blocks(&id, contained_at);
        tracing::warn!(
            "INCIDENT {id}: {} (pid {}{}) damaged {} file(s) [{}]; {} {} process(es) {:.1} ms after the first damaging write",
            inc.exe,
            inc.pid,
            inc.client
                .as_ref()
                .map(|c| format!(", SMB client {} user {} share {}", c.ip, c.user, c.share))
                .unwrap_or_default(),
            inc.files_damaged,
            inc.indicators.join(", "),
            action,
            c.frozen.len(),
            contain_ms
        );
        tracing::info!(
            "incident {id}: {} of {} process(es) settled {settle_ms:.1} ms after the freeze; \
             later changes to its files count from {}",
            c.frozen.len() - unsettled.len(),
            c.frozen.len(),
            chrono::DateTime::<chrono::Utc>::from(settled_at).format("%H:%M:%S%.6f")
        );
        // Record the incident (and a first restore plan, so a crash before the restore
        // starts still restores) durably, and only then announce it.
        let plan = self.vault.as_ref().map(|_| {
            let rec = self.plan_record(&id, v.root, settled_at, &v.files_damaged);
            serde_json::to_string(&rec).expect("plan serialises")
        });
        let emitter = self.out.emitter();
        // An SMB client's user and share may still be on their way from smbstatus: wait
        // for them (bounded) here, on the store thread, never on the agent's.
        let complete = match (&self.smb, &inc.client) {
            (Some(smb), Some(c)) if c.user.is_empty() || c.share.is_empty() => Some((
                std::sync::Arc::clone(&smb.attributor),
                inc.pid,
                inc.damaged.first().cloned(),
            )),
            _ => None,
        };
        let mut inc = inc;
        let record = move |s: &Store| {
            if let Some((attributor, pid, path)) = complete {
                let path = path.as_deref().map(std::path::Path::new);
                if let Some(a) = attributor.wait_complete(pid, path, Duration::from_millis(1500)) {
                    if let Some(c) = inc.client.as_mut() {
                        if c.user.is_empty() {
                            c.user = a.client.user;
                        }
                        if c.share.is_empty() {
                            c.share = a.client.share;
                        }
                    }
                }
            }
            if let Err(e) = s.put(&inc) {
                tracing::error!("could not record incident {}: {e}", inc.id);
            }
            if let Some(plan) = plan {
                if let Err(e) = s.put_plan(&inc.id, &plan) {
                    tracing::error!("recording the restore plan of {}: {e}", inc.id);
                }
                if alert_only {
                    // Kept for `ward restore ID`, but not resumed by itself at a restart.
                    let _ = s.finish_restore(&inc.id, RestoreStatus::Pending);
                }
            }
            emitter.emit(AgentEvent::Incident(inc));
        };
        match &self.vault {
            // After the copies of files the lineage deleted (queued by settle_doomed
            // above): once the incident is announced, a crash loses nothing.
            Some(vault) => {
                let handle = self.store.handle();
                vault.send(Job::Then(Box::new(move || handle.run(record))));
            }
            None => self.store.run(record),
        }
        if let Some(vault) = &self.vault {
            let owners: Vec<Owner> = self
                .owners
                .iter()
                .filter(|(p, chain)| **p == v.root || chain.contains(&v.root))
                .map(|(p, _)| Owner {
                    pid: p.pid,
                    start: p.start,
                })
                .collect();
            vault.send(Job::Pin {
                incident: id.clone(),
                owners,
            });
            // Plan the restore once the lineage's last queued events have been seen (not
            // for alert-only incidents: the attacker still runs; `ward restore ID` by hand).
            if alert_only {
                return;
            }
            self.restores_due.push(DueRestore {
                incident: id,
                root: v.root,
                contained_at: settled_at,
                unsettled,
                until_gone,
                damaged: v.files_damaged.clone(),
                due: Instant::now() + Duration::from_millis(300),
                give_up: Instant::now() + UNSETTLED_MAX,
            });
        }
    }
}
