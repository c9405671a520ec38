//! # ward-model
//!
//! The vocabulary every part of ward shares, and nothing else: plain data with serde.
//! No syscalls, no SQLite, no I/O.
//!
//! * [`ProcId`]: the one identity of a process (pid + start time), used by the engine,
//!   the responders, the vault and the store alike.
//! * [`Client`]: an SMB client (address, user, share) behind an attack through Samba.
//! * [`Incident`]: one contained attack, exactly the `incident` object of the BRIEF §5
//!   contract plus details; [`Action`] says what was done about it, [`RestoreStatus`] where
//!   its recovery stands.
//! * [`AgentEvent`]: what the agent tells the world (`ready`, `incident`, `restored`,
//!   `restore-failed`, `stopped`, `block-lifted`, `events-lost`); every output sink serialises these, and only at the edge.
//!
//! ```
//! use ward_model::{AgentEvent, Stopped};
//! let line = serde_json::to_string(&AgentEvent::Stopped(Stopped {})).unwrap();
//! assert_eq!(line, r#"{"type":"stopped"}"#);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Identity of a process that survives pid reuse: the pid plus its start time
/// (field 22 of `/proc/PID/stat`, in clock ticks since boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcId {
    /// Process id (thread-group id).
    pub pid: u32,
    /// Start time in clock ticks since boot; 0 when unknown.
    pub start: u64,
}

/// An SMB client behind an attack made through Samba.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Client {
    /// The client's address as Samba sees it (the TCP peer of its smbd process).
    pub ip: String,
    /// The user the client authenticated as (empty when unknown).
    pub user: String,
    /// The share it wrote through (empty when unknown).
    #[serde(default)]
    pub share: String,
}

/// What ward did about an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The lineage was frozen, then killed.
    Killed,
    /// The lineage was frozen and left frozen (`kill = false`, for forensics).
    Frozen,
    /// The lineage had already ended when it was convicted.
    Exited,
    /// An SMB client was cut off: its smbd process frozen then ended, its address blocked.
    ClientBlocked,
    /// Alert-only mode: detected, preserved and reported, but nothing was stopped.
    Alerted,
}

impl Action {
    /// The contract's string for this action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Killed => "killed",
            Action::Frozen => "frozen",
            Action::Exited => "exited",
            Action::ClientBlocked => "client-blocked",
            Action::Alerted => "alerted",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the recovery of an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreStatus {
    /// No vault was active: nothing to restore from.
    None,
    /// Planned or running.
    Pending,
    /// Finished with every damaged file back.
    Done,
    /// Finished, but some files could not be restored (see `files_lost`).
    Partial,
}

impl RestoreStatus {
    /// The string stored and printed for this status.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreStatus::None => "none",
            RestoreStatus::Pending => "pending",
            RestoreStatus::Done => "done",
            RestoreStatus::Partial => "partial",
        }
    }

    /// Parse a stored status (unknown strings read as `Pending`: the restore is re-run).
    pub fn parse(s: &str) -> RestoreStatus {
        match s {
            "none" => RestoreStatus::None,
            "done" => RestoreStatus::Done,
            "partial" => RestoreStatus::Partial,
            _ => RestoreStatus::Pending,
        }
    }
}

/// One contained attack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Unique id (`<detected_at>-<pid>`).
    pub id: String,
    /// Root of the guilty process lineage (for an SMB client: the smbd process serving it).
    pub pid: u32,
    /// Executable of the root.
    pub exe: String,
    /// Command line of the root.
    pub cmdline: Vec<String>,
    /// The SMB client behind the attack, `null` for local processes.
    pub client: Option<Client>,
    /// First damaging write seen.
    pub started_at: DateTime<Utc>,
    /// Verdict.
    pub detected_at: DateTime<Utc>,
    /// The lineage was frozen (or the client cut off).
    pub contained_at: DateTime<Utc>,
    /// What ward did.
    pub action: Action,
    /// Distinct damaged pre-existing files.
    pub files_damaged: usize,
    /// Indicators that led to the verdict (`content-encrypted`, `smb-fanout`, ...).
    pub indicators: Vec<String>,
    /// User id of the lineage root.
    pub uid: u32,
    /// Paths of the damaged files, in order of damage.
    pub damaged: Vec<String>,
    /// Files the lineage created (encrypted copies, notes).
    pub created: Vec<String>,
    /// pids frozen (and killed), root first.
    pub processes: Vec<u32>,
    /// Milliseconds from the first damaging write to containment.
    pub contain_ms: f64,
    /// Milliseconds from the verdict to containment (the freeze itself).
    #[serde(default)]
    pub freeze_ms: f64,
    /// Restore state.
    pub restore: RestoreStatus,
}

/// A block of an SMB client's address, in force until lifted or expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The blocked address.
    pub ip: String,
    /// The incident that caused it.
    pub incident: String,
    /// When it was put in place.
    pub since: DateTime<Utc>,
    /// When it lapses by itself (`None`: until `ward unblock`).
    pub until: Option<DateTime<Utc>>,
}

/// Protections the kernel allowed, as reported in `ready`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protections {
    /// Open permission events (blocking opens until judged).
    pub open_perm: bool,
    /// Create/delete/rename events.
    pub name_events: bool,
    /// FAN_RENAME (both names in one event).
    pub rename_event: bool,
    /// The netlink process connector (fork/exec/exit).
    pub proc_connector: bool,
    /// Decoy files placed.
    pub decoys: usize,
    /// The vault is active.
    pub vault: bool,
    /// The watchdog process is running.
    pub watchdog: bool,
    /// SMB client attribution and blocking are active.
    #[serde(default)]
    pub smb: bool,
    /// Outbound SMB connections are watched (worm fan-out).
    #[serde(default)]
    pub smb_fanout: bool,
    /// Files held open for writing are sampled as they are modified (not only at close).
    #[serde(default)]
    pub modify_samples: bool,
    /// The old and new bytes of the blocks a writer changes are judged (pre-content
    /// events, Linux >= 6.14, on every protected filesystem): striped encryption between
    /// the sampled blocks is seen.
    #[serde(default)]
    pub write_ranges: bool,
}

/// `ready`: protection is fully active.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// ward's version.
    pub version: String,
    /// ward's pid.
    pub pid: u32,
    /// Protected directories (canonical).
    pub paths: Vec<PathBuf>,
    /// Where incidents are recorded.
    pub state_dir: PathBuf,
    /// Filesystem types of the protected paths.
    pub filesystems: Vec<String>,
    /// What is active.
    pub protections: Protections,
    /// Where each filesystem's vault lives.
    #[serde(default)]
    pub vaults: Vec<PathBuf>,
    /// Which sensor front end is in use (`fanotify`, `bpf+fanotify`).
    #[serde(default)]
    pub sensor: String,
    /// Degraded protections, in words.
    pub warnings: Vec<String>,
}

/// `restored`: recovery of an incident finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    /// Incident id.
    pub id: String,
    /// Files put back.
    pub files_restored: usize,
    /// Damaged files the vault held nothing for.
    pub files_lost: usize,
    /// Attacker files moved to quarantine.
    pub files_quarantined: usize,
    /// Files changed since the attack, kept side by side with the restored version.
    pub conflicts: Vec<PathBuf>,
    /// Files that were already intact.
    pub already_ok: usize,
}

/// `restore-failed`: the automatic restore of an incident stopped on an error (a full
/// filesystem, an I/O error); nothing is lost yet: the vault keeps the copies, and the
/// restore is retried at the next start or by `ward restore ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreFailed {
    /// Incident id.
    pub id: String,
    /// What went wrong.
    pub error: String,
    /// Damaged files of the incident still waiting for their restore.
    pub files_pending: usize,
    /// The command that retries it (`ward restore ID`).
    pub retry: String,
}

/// `stopped`: ward is exiting after SIGTERM/SIGINT.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {}

/// `block-lifted`: an SMB client's block ended (`ward unblock` or expiry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockLifted {
    /// The address let back in.
    pub ip: String,
    /// `unblock` or `expired`.
    pub reason: String,
}

/// `events-lost`: the kernel's event queue overflowed (or the process-event or connection
/// feeds lost events): some file activity was not seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsLost {
    /// Which feed lost events (`fanotify`, `proc-connector`, `connect`).
    pub source: String,
    /// Losses reported since the previous `events-lost` of this feed.
    pub lost: u64,
    /// Losses since ward started.
    pub total: u64,
}

/// Everything the agent reports, one variant per JSON line type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum AgentEvent {
    /// Protection is active.
    Ready(Ready),
    /// An attack was contained.
    Incident(Incident),
    /// Its files are back.
    Restored(Restored),
    /// Its files could not be put back (yet).
    RestoreFailed(RestoreFailed),
    /// A client block ended.
    BlockLifted(BlockLifted),
    /// Events were lost.
    EventsLost(EventsLost),
    /// ward is exiting.
    Stopped(Stopped),
}

impl AgentEvent {
    /// The contract's `type` string.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentEvent::Ready(_) => "ready",
            AgentEvent::Incident(_) => "incident",
            AgentEvent::Restored(_) => "restored",
            AgentEvent::RestoreFailed(_) => "restore-failed",
            AgentEvent::BlockLifted(_) => "block-lifted",
            AgentEvent::EventsLost(_) => "events-lost",
            AgentEvent::Stopped(_) => "stopped",
        }
    }
}

/// A syslog facility (RFC 5424 §6.2.1), as configured for the syslog output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Facility {
    Kern,
    User,
    Mail,
    #[default]
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The RFC 5424 facility number (kern = 0 ... local7 = 23).
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident() -> Incident {
        let t = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Incident {
            id: "x-1".into(),
            pid: 1,
            exe: "/bin/x".into(),
            cmdline: vec!["x".into()],
            client: Some(Client {
                ip: "10.0.0.5".into(),
                user: "alice".into(),
                share: "data".into(),
            }),
            started_at: t,
            detected_at: t,
            contained_at: t,
            action: Action::ClientBlocked,
            files_damaged: 3,
            indicators: vec!["content-encrypted".into()],
            uid: 1000,
            damaged: vec![],
            created: vec![],
            processes: vec![1],
            contain_ms: 1.0,
            freeze_ms: 0.1,
            restore: RestoreStatus::Pending,
        }
    }

    /// The contract's field names and strings (BRIEF §5/§5b).
    #[test]
    fn incident_line_has_the_contract_shape() {
        let v = serde_json::to_value(AgentEvent::Incident(incident())).unwrap();
        assert_eq!(v["type"], "incident");
        assert_eq!(v["action"], "client-blocked");
        assert_eq!(v["client"]["ip"], "10.0.0.5");
        assert_eq!(v["client"]["share"], "data");
        assert_eq!(v["restore"], "pending");
        assert_eq!(v["started_at"], "2026-12-01T10:00:00Z");
        let back: AgentEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, AgentEvent::Incident(incident()));
    }

    #[test]
    fn kinds_match_serialised_type() {
        for e in [
            AgentEvent::Stopped(Stopped {}),
            AgentEvent::BlockLifted(BlockLifted {
                ip: "1.2.3.4".into(),
                reason: "unblock".into(),
            }),
            AgentEvent::Incident(incident()),
            AgentEvent::RestoreFailed(RestoreFailed {
                id: "i".into(),
                error: "No space left on device".into(),
                files_pending: 3,
                retry: "ward restore i".into(),
            }),
        ] {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["type"], e.kind());
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            RestoreStatus::None,
            RestoreStatus::Pending,
            RestoreStatus::Done,
            RestoreStatus::Partial,
        ] {
            assert_eq!(RestoreStatus::parse(s.as_str()), s);
        }
        for a in [Action::Killed, Action::ClientBlocked, Action::Alerted] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }
}
