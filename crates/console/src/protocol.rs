//! What travels between an agent and the console (JSON over mutual TLS), shared by the
//! server and [`crate::ConsoleClient`]. Versioned by URL (`/agent/v1/...`).

use serde::{Deserialize, Serialize};
use ward_model::{AgentEvent, Block};

/// Largest agent request body the console accepts (bytes); larger ones get 413.
pub const MAX_AGENT_BODY: usize = 1024 * 1024;
/// Most events one `POST /agent/v1/events` may carry.
pub const MAX_BATCH: usize = 100;

/// `POST /enroll/v1`: the agent presents its one-time token and the public half of a key
/// pair it made itself (the private key never leaves the agent), with proof that it holds
/// the private key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The whole enrollment token as printed by `ward console enroll-token`.
    pub token: String,
    /// The name the host is shown under (hostname, optionally with a label).
    pub name: String,
    /// The agent's ECDSA P-256 public key, uncompressed point (65 bytes), hex.
    pub public_key: String,
    /// ECDSA P-256 SHA-256 signature (ASN.1 DER, hex) of [`proof_message`].
    pub proof: String,
}

/// What the agent signs at enrollment: binds its key to this token and name.
pub fn proof_message(token: &str, name: &str, public_key_hex: &str) -> Vec<u8> {
    format!("ward-enroll-v1\n{token}\n{name}\n{public_key_hex}").into_bytes()
}

/// The console's answer to a valid enrollment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The host id the console assigned (the client certificate's CN).
    pub host_id: String,
    /// The client certificate for the agent's own key, PEM.
    pub cert_pem: String,
    /// The console's CA, PEM.
    pub ca_pem: String,
}

/// The agent's periodic status report (missing fields read as empty: older and newer
/// agents interoperate).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Heartbeat {
    /// ward's version.
    pub version: String,
    /// Protected directories.
    pub paths: Vec<String>,
    /// Sensor front end in use (`fanotify`, `bpf+fanotify`).
    pub sensor: String,
    /// `ok`, or `degraded` when protections are missing (see `warnings`).
    pub health: String,
    /// Degraded protections, in words.
    pub warnings: Vec<String>,
    /// File events per second the sensor saw recently.
    pub events_per_sec: f64,
    /// Bytes held in the vaults.
    pub vault_used_bytes: u64,
    /// The vaults' bound in bytes (0 when no vault).
    pub vault_max_bytes: u64,
    /// SMB client blocks in force.
    pub blocks: Vec<Block>,
    /// The host is isolated (by a console action).
    pub isolated: bool,
}

/// One spooled event with its idempotency key (`seq`, per host, strictly increasing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Sequence number on this host: the idempotency key.
    pub seq: u64,
    /// When the agent produced it (RFC 3339).
    pub at: chrono::DateTime<chrono::Utc>,
    /// The event.
    pub event: AgentEvent,
}

/// `POST /agent/v1/events` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventsResponse {
    /// Events stored now.
    pub accepted: usize,
    /// Events the console already had (replays), not stored again.
    pub duplicates: usize,
}

/// What an operator asked an agent to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ActionKind {
    /// Re-run or complete the restore of an incident (`ward restore ID`).
    Restore {
        /// Incident id.
        incident: String,
    },
    /// Lift an SMB client's block (`ward unblock IP`).
    LiftBlock {
        /// The blocked address.
        ip: String,
    },
    /// Keep an SMB client's block in force (no expiry).
    KeepBlock {
        /// The blocked address.
        ip: String,
    },
    /// Isolate the host (the agent's isolation policy: stop serving shares, block SMB).
    Isolate,
    /// Release an isolated host.
    Release,
}

impl ActionKind {
    /// Short name (`restore`, `lift-block`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Restore { .. } => "restore",
            ActionKind::LiftBlock { .. } => "lift-block",
            ActionKind::KeepBlock { .. } => "keep-block",
            ActionKind::Isolate => "isolate",
            ActionKind::Release => "release",
        }
    }
}

/// An action delivered to an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAction {
    /// Action id (confirm with `POST /agent/v1/actions/{id}`).
    pub id: i64,
    /// What to do.
    #[serde(flatten)]
    pub kind: ActionKind,
    /// Who asked for it.
    pub requested_by: String,
}

/// The console's answer to a heartbeat: the actions waiting for this agent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Actions to carry out, oldest first.
    pub actions: Vec<PendingAction>,
}

/// The agent's confirmation of an action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    /// It was carried out.
    pub ok: bool,
    /// What happened, in words.
    pub message: String,
}
