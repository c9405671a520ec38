//! The console's data: hosts, events, incidents, actions, users, tokens, sessions and the
//! audit log, on top of [`crate::db::Db`] (both backends run exactly these statements).

use crate::db::{Db, Row};
use crate::protocol::{ActionKind, EventEnvelope, Heartbeat, PendingAction};
use crate::ConsoleError;
use serde::Serialize;
use ward_model::AgentEvent;

/// Bootstrap file written by `init`: the first admin's token hash.
pub(crate) const BOOTSTRAP: &str = "bootstrap.json";
/// Directory of pending enrollment tokens (hashes only).
pub(crate) const ENROLL_DIR: &str = "enroll";

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Roles, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything, changes nothing.
    Viewer,
    /// Acts on hosts and incidents.
    Operator,
    /// Manages accounts, tokens and enrolled hosts.
    Admin,
}

impl Role {
    /// Parse `viewer`, `operator`, `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// An enrolled host as stored.
#[derive(Clone, Debug)]
pub(crate) struct HostRow {
    pub id: String,
    pub name: String,
    pub revoked: bool,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub heartbeat: Option<Heartbeat>,
    pub ready: Option<serde_json::Value>,
    pub isolated: bool,
    pub stopped: bool,
}

const HOST_COLS: &str =
    "id, name, revoked, enrolled_at, last_seen, heartbeat, ready, isolated, stopped";

fn host_row(r: &Row) -> HostRow {
    HostRow {
        id: r.text(0),
        name: r.text(1),
        revoked: r.int(2) != 0,
        enrolled_at: r.int(3),
        last_seen: r.opt_int(4),
        heartbeat: r.opt_text(5).and_then(|s| serde_json::from_str(&s).ok()),
        ready: r.opt_text(6).and_then(|s| serde_json::from_str(&s).ok()),
        isolated: r.int(7) != 0,
        stopped: r.int(8) != 0,
    }
}

/// An incident as stored, with the console's bookkeeping.
#[derive(Clone, Debug)]
pub(crate) struct IncidentRow {
    pub num: i64,
    pub host_id: String,
    pub host_name: String,
    pub body: serde_json::Value,
    pub restore: String,
    pub files_restored: Option<i64>,
    pub files_lost: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub restored_at: Option<i64>,
}

impl IncidentRow {
    /// The API's JSON: the model's incident fields plus `host`, `host_id`, `num`, and the
    /// current restore state.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.body.clone();
        if let Some(o) = v.as_object_mut() {
            o.insert("host".into(), self.host_name.clone().into());
            o.insert("host_id".into(), self.host_id.clone().into());
            o.insert("num".into(), self.num.into());
            o.insert("restore".into(), self.restore.clone().into());
            o.insert("files_restored".into(), self.files_restored.into());
            o.insert("files_lost".into(), self.files_lost.into());
            o.insert(
                "acknowledged_by".into(),
                self.acknowledged_by.clone().into(),
            );
            o.insert(
                "acknowledged_at".into(),
                self.acknowledged_at.map(ms_to_rfc3339).into(),
            );
            o.insert(
                "restored_at".into(),
                self.restored_at.map(ms_to_rfc3339).into(),
            );
        }
        v
    }
    /// Still needs attention: not acknowledged and not fully restored.
    pub fn open(&self) -> bool {
        self.acknowledged_at.is_none() && self.restore != "done" && self.restore != "partial"
    }
    pub fn str_field(&self, k: &str) -> String {
        self.body
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    }
}

const INC_COLS: &str = "i.num, i.host_id, h.name, i.body, i.detected_at, i.restore, i.files_restored, i.files_lost, i.acknowledged_by, i.acknowledged_at, i.restored_at";

fn inc_row(r: &Row) -> IncidentRow {
    IncidentRow {
        num: r.int(0),
        host_id: r.text(1),
        host_name: r.text(2),
        body: serde_json::from_str(&r.text(3)).unwrap_or(serde_json::Value::Null),
        restore: r.text(5),
        files_restored: r.opt_int(6),
        files_lost: r.opt_int(7),
        acknowledged_by: r.opt_text(8),
        acknowledged_at: r.opt_int(9),
        restored_at: r.opt_int(10),
    }
}

/// An action as stored.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ActionRow {
    pub id: i64,
    pub host_id: String,
    pub kind: String,
    pub body: serde_json::Value,
    pub requested_by: String,
    pub requested_at: String,
    pub status: String,
    pub result: Option<String>,
}

/// An audit record.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub ok: bool,
}

pub(crate) fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Outcome of storing a batch of events.
pub(crate) struct Stored {
    pub accepted: usize,
    pub duplicates: usize,
}

impl Db {
    // ---------- users, tokens, sessions ----------

    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        password_hash: Option<String>,
    ) -> Result<bool, ConsoleError> {
        let n = self
            .exec(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                vec![name.into(), role.as_str().into(), password_hash.into(), now_ms().into()],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn user(&self, name: &str) -> Result<Option<(Role, Option<String>)>, ConsoleError> {
        let rows = self
            .query(
                "SELECT role, password_hash FROM users WHERE name = $1",
                vec![name.into()],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| Role::parse(&r.text(0)).map(|role| (role, r.opt_text(1)))))
    }

    pub async fn add_token(&self, token_hash: &str, user: &str) -> Result<(), ConsoleError> {
        self.exec(
            "INSERT INTO api_tokens (token_hash, user_name, created_at) VALUES ($1, $2, $3) ON CONFLICT (token_hash) DO NOTHING",
            vec![token_hash.into(), user.into(), now_ms().into()],
        )
        .await?;
        Ok(())
    }

    pub async fn token_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<(String, Role)>, ConsoleError> {
        let rows = self
            .query(
                "SELECT u.name, u.role FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = $1 AND t.revoked = 0",
                vec![token_hash.into()],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| Role::parse(&r.text(1)).map(|role| (r.text(0), role))))
    }

    /// Failed logins for this name since `since_ms`.
    pub async fn failed_logins(&self, user: &str, since_ms: i64) -> Result<i64, ConsoleError> {
        let rows = self
            .query(
                "SELECT COUNT(*) FROM audit WHERE action = 'login' AND ok = 0 AND actor = $1 AND at > $2",
                vec![user.into(), since_ms.into()],
            )
            .await?;
        Ok(rows.first().map(|r| r.int(0)).unwrap_or(0))
    }

    pub async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), ConsoleError> {
        self.exec(
            "DELETE FROM sessions WHERE expires_at < $1",
            vec![now_ms().into()],
        )
        .await?;
        self.exec(
            "INSERT INTO sessions (id_hash, user_name, csrf, expires_at) VALUES ($1, $2, $3, $4)",
            vec![id_hash.into(), user.into(), csrf.into(), expires_at.into()],
        )
        .await?;
        Ok(())
    }

    pub async fn session(
        &self,
        id_hash: &str,
    ) -> Result<Option<(String, Role, String)>, ConsoleError> {
        let rows = self
            .query(
                "SELECT u.name, u.role, s.csrf FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.id_hash = $1 AND s.expires_at > $2",
                vec![id_hash.into(), now_ms().into()],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| Role::parse(&r.text(1)).map(|role| (r.text(0), role, r.text(2)))))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), ConsoleError> {
        self.exec(
            "DELETE FROM sessions WHERE id_hash = $1",
            vec![id_hash.into()],
        )
        .await?;
        Ok(())
    }

    // ---------- hosts ----------

    pub async fn create_host(&self, id: &str, name: &str, fp: &str) -> Result<(), ConsoleError> {
        self.exec(
            "INSERT INTO hosts (id, name, cert_fp, enrolled_at) VALUES ($1, $2, $3, $4)",
            vec![id.into(), name.into(), fp.into(), now_ms().into()],
        )
        .await?;
        Ok(())
    }

    pub async fn host_by_fp(&self, fp: &str) -> Result<Option<HostRow>, ConsoleError> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts WHERE cert_fp = $1");
        Ok(self
            .query(&sql, vec![fp.into()])
            .await?
            .first()
            .map(host_row))
    }

    pub async fn host(&self, id: &str) -> Result<Option<HostRow>, ConsoleError> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts WHERE id = $1");
        Ok(self
            .query(&sql, vec![id.into()])
            .await?
            .first()
            .map(host_row))
    }

    pub async fn hosts(&self) -> Result<Vec<HostRow>, ConsoleError> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts WHERE revoked = 0 ORDER BY name, id");
        Ok(self
            .query(&sql, vec![])
            .await?
            .iter()
            .map(host_row)
            .collect())
    }

    pub async fn revoke_host(&self, id: &str) -> Result<bool, ConsoleError> {
        Ok(self
            .exec(
                "UPDATE hosts SET revoked = 1 WHERE id = $1",
                vec![id.into()],
            )
            .await?
            == 1)
    }

    pub async fn heartbeat(&self, id: &str, hb: &Heartbeat) -> Result<(), ConsoleError> {
        let body = serde_json::to_string(hb).unwrap_or_default();
        self.exec(
            "UPDATE hosts SET last_seen = $1, heartbeat = $2, isolated = $3, stopped = 0 WHERE id = $4",
            vec![now_ms().into(), body.into(), hb.isolated.into(), id.into()],
        )
        .await?;
        Ok(())
    }

    pub async fn name_taken(&self, name: &str) -> Result<bool, ConsoleError> {
        Ok(!self
            .query(
                "SELECT 1 FROM hosts WHERE name = $1 AND revoked = 0",
                vec![name.into()],
            )
            .await?
            .is_empty())
    }

    pub async fn set_isolated(&self, id: &str, isolated: bool) -> Result<(), ConsoleError> {
        self.exec(
            "UPDATE hosts SET isolated = $1 WHERE id = $2",
            vec![isolated.into(), id.into()],
        )
        .await?;
        Ok(())
    }

    pub async fn hosts_with_open_actions(
        &self,
    ) -> Result<std::collections::HashSet<String>, ConsoleError> {
        let rows = self
            .query(
                "SELECT DISTINCT host_id FROM actions WHERE status IN ('pending', 'delivered')",
                vec![],
            )
            .await?;
        Ok(rows.iter().map(|r| r.text(0)).collect())
    }

    pub async fn touch(&self, id: &str) -> Result<(), ConsoleError> {
        self.exec(
            "UPDATE hosts SET last_seen = $1 WHERE id = $2",
            vec![now_ms().into(), id.into()],
        )
        .await?;
        Ok(())
    }

    // ---------- events ----------

    /// Store events in order; a `(host, seq)` already stored is a replay: counted, not
    /// applied again.
    pub async fn store_events(
        &self,
        host_id: &str,
        evs: &[EventEnvelope],
    ) -> Result<Stored, ConsoleError> {
        let mut st = Stored {
            accepted: 0,
            duplicates: 0,
        };
        for e in evs {
            let seq = i64::try_from(e.seq).unwrap_or(i64::MAX);
            let dup = !self
                .query(
                    "SELECT 1 FROM events WHERE host_id = $1 AND seq = $2",
                    vec![host_id.into(), seq.into()],
                )
                .await?
                .is_empty();
            if dup {
                st.duplicates += 1;
                continue;
            }
            self.apply(host_id, e).await?;
            let body = serde_json::to_string(&e.event).unwrap_or_default();
            let n = self
                .exec(
                    "INSERT INTO events (host_id, seq, kind, at, received_at, body) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host_id, seq) DO NOTHING",
                    vec![
                        host_id.into(),
                        seq.into(),
                        e.event.kind().into(),
                        e.at.timestamp_millis().into(),
                        now_ms().into(),
                        body.into(),
                    ],
                )
                .await?;
            if n == 1 {
                st.accepted += 1;
            } else {
                st.duplicates += 1;
            }
        }
        Ok(st)
    }

    /// Apply one event's effect (idempotent).
    async fn apply(&self, host_id: &str, e: &EventEnvelope) -> Result<(), ConsoleError> {
        match &e.event {
            AgentEvent::Ready(r) => {
                let body = serde_json::to_string(r).unwrap_or_default();
                self.exec(
                    "UPDATE hosts SET ready = $1, stopped = 0, last_seen = $2 WHERE id = $3",
                    vec![body.into(), now_ms().into(), host_id.into()],
                )
                .await?;
            }
            AgentEvent::Incident(i) => {
                let body = serde_json::to_string(i).unwrap_or_default();
                self.exec(
                    "INSERT INTO incidents (host_id, id, body, detected_at, client_ip, restore) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host_id, id) DO NOTHING",
                    vec![
                        host_id.into(),
                        i.id.as_str().into(),
                        body.into(),
                        i.detected_at.timestamp_millis().into(),
                        i.client.as_ref().map(|c| c.ip.clone()).into(),
                        i.restore.as_str().into(),
                    ],
                )
                .await?;
            }
            AgentEvent::Restored(r) => {
                let status = if r.files_lost == 0 { "done" } else { "partial" };
                self.exec(
                    "UPDATE incidents SET restore = $1, files_restored = $2, files_lost = $3, restored_at = $4 WHERE host_id = $5 AND id = $6",
                    vec![
                        status.into(),
                        (r.files_restored as i64).into(),
                        (r.files_lost as i64).into(),
                        e.at.timestamp_millis().into(),
                        host_id.into(),
                        r.id.as_str().into(),
                    ],
                )
                .await?;
            }
            AgentEvent::RestoreFailed(r) => {
                self.exec(
                    "UPDATE incidents SET restore = $1 WHERE host_id = $2 AND id = $3",
                    vec!["failed".into(), host_id.into(), r.id.as_str().into()],
                )
                .await?;
            }
            AgentEvent::Stopped(_) => {
                self.exec(
                    "UPDATE hosts SET stopped = 1 WHERE id = $1",
                    vec![host_id.into()],
                )
                .await?;
            }
            AgentEvent::BlockLifted(_) | AgentEvent::EventsLost(_) => {}
        }
        Ok(())
    }

    /// Recent events of a host (newest first).
    pub async fn events(
        &self,
        host_id: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String, i64, String)>, ConsoleError> {
        let rows = self
            .query(
                "SELECT seq, kind, at, body FROM events WHERE host_id = $1 ORDER BY seq DESC LIMIT $2",
                vec![host_id.into(), limit.into()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.int(0), r.text(1), r.int(2), r.text(3)))
            .collect())
    }

    // ---------- incidents ----------

    /// Newest first, at most `limit`; `open_only`: not acknowledged.
    pub async fn incidents(
        &self,
        limit: i64,
        open_only: bool,
    ) -> Result<Vec<IncidentRow>, ConsoleError> {
        let sql = format!(
            "SELECT {INC_COLS} FROM incidents i JOIN hosts h ON h.id = i.host_id {} ORDER BY i.detected_at DESC, i.num DESC LIMIT $1",
            if open_only { "WHERE i.acknowledged_at IS NULL" } else { "" }
        );
        Ok(self
            .query(&sql, vec![limit.into()])
            .await?
            .iter()
            .map(inc_row)
            .collect())
    }

    /// Per host: incidents neither acknowledged nor restored.
    pub async fn open_counts(
        &self,
    ) -> Result<std::collections::HashMap<String, usize>, ConsoleError> {
        let rows = self
            .query(
                "SELECT host_id, COUNT(*) FROM incidents WHERE acknowledged_at IS NULL AND restore NOT IN ('done', 'partial') GROUP BY host_id",
                vec![],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.text(0), r.int(1) as usize))
            .collect())
    }

    pub async fn incident(&self, num: i64) -> Result<Option<IncidentRow>, ConsoleError> {
        let sql = format!(
            "SELECT {INC_COLS} FROM incidents i JOIN hosts h ON h.id = i.host_id WHERE i.num = $1"
        );
        Ok(self
            .query(&sql, vec![num.into()])
            .await?
            .first()
            .map(inc_row))
    }

    pub async fn acknowledge(&self, num: i64, user: &str) -> Result<bool, ConsoleError> {
        Ok(self
            .exec(
                "UPDATE incidents SET acknowledged_by = $1, acknowledged_at = $2 WHERE num = $3 AND acknowledged_at IS NULL",
                vec![user.into(), now_ms().into(), num.into()],
            )
            .await?
            == 1)
    }

    // ---------- actions ----------

    pub async fn create_action(
        &self,
        host_id: &str,
        kind: &ActionKind,
        by: &str,
    ) -> Result<i64, ConsoleError> {
        let body = serde_json::to_string(kind).unwrap_or_default();
        let now = now_ms();
        let rows = self
            .query(
                "INSERT INTO actions (host_id, kind, body, requested_by, requested_at, status, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
                vec![host_id.into(), kind.name().into(), body.into(), by.into(), now.into(), now.into()],
            )
            .await?;
        Ok(rows.first().map(|r| r.int(0)).unwrap_or(0))
    }

    /// Actions waiting for a host; marks them delivered (they are delivered again until
    /// the agent confirms, so a lost answer loses no action).
    pub async fn take_actions(&self, host_id: &str) -> Result<Vec<PendingAction>, ConsoleError> {
        let rows = self
            .query(
                "SELECT id, body, requested_by FROM actions WHERE host_id = $1 AND status IN ('pending', 'delivered') ORDER BY id",
                vec![host_id.into()],
            )
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            if let Ok(kind) = serde_json::from_str::<ActionKind>(&r.text(1)) {
                out.push(PendingAction {
                    id: r.int(0),
                    kind,
                    requested_by: r.text(2),
                });
            }
        }
        if !out.is_empty() {
            self.exec(
                "UPDATE actions SET status = 'delivered', updated_at = $1 WHERE host_id = $2 AND status = 'pending'",
                vec![now_ms().into(), host_id.into()],
            )
            .await?;
        }
        Ok(out)
    }

    /// Record the agent's confirmation; false when the action is unknown, another host's,
    /// or already confirmed.
    pub async fn complete_action(
        &self,
        id: i64,
        host_id: &str,
        ok: bool,
        message: &str,
    ) -> Result<Option<ActionRow>, ConsoleError> {
        let status = if ok { "done" } else { "failed" };
        let n = self
            .exec(
                "UPDATE actions SET status = $1, result = $2, updated_at = $3 WHERE id = $4 AND host_id = $5 AND status IN ('pending', 'delivered')",
                vec![status.into(), message.into(), now_ms().into(), id.into(), host_id.into()],
            )
            .await?;
        if n != 1 {
            return Ok(None);
        }
        Ok(self.actions(Some(id), 1).await?.into_iter().next())
    }

    pub async fn actions(
        &self,
        id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ActionRow>, ConsoleError> {
        let rows = match id {
            Some(id) => self
                .query(
                    "SELECT id, host_id, kind, body, requested_by, requested_at, status, result FROM actions WHERE id = $1",
                    vec![id.into()],
                )
                .await?,
            None => self
                .query(
                    "SELECT id, host_id, kind, body, requested_by, requested_at, status, result FROM actions ORDER BY id DESC LIMIT $1",
                    vec![limit.into()],
                )
                .await?,
        };
        Ok(rows
            .iter()
            .map(|r| ActionRow {
                id: r.int(0),
                host_id: r.text(1),
                kind: r.text(2),
                body: serde_json::from_str(&r.text(3)).unwrap_or(serde_json::Value::Null),
                requested_by: r.text(4),
                requested_at: ms_to_rfc3339(r.int(5)),
                status: r.text(6),
                result: r.opt_text(7),
            })
            .collect())
    }

    // ---------- audit ----------

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        ok: bool,
    ) -> Result<(), ConsoleError> {
        tracing::info!(actor, action, target, detail, ok, "audit");
        self.exec(
            "INSERT INTO audit (at, actor, action, target, detail, ok) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![now_ms().into(), actor.into(), action.into(), target.into(), detail.into(), ok.into()],
        )
        .await?;
        Ok(())
    }

    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRow>, ConsoleError> {
        let rows = self
            .query(
                "SELECT id, at, actor, action, target, detail, ok FROM audit ORDER BY id DESC LIMIT $1",
                vec![limit.into()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.int(0),
                at: ms_to_rfc3339(r.int(1)),
                actor: r.text(2),
                action: r.text(3),
                target: r.text(4),
                detail: r.text(5),
                ok: r.int(6) != 0,
            })
            .collect())
    }
}

/// Consume an enrollment token atomically: exactly one caller can win a valid token.
pub(crate) fn consume_token(state_dir: &std::path::Path, token: &str) -> Result<(), ConsoleError> {
    let t = crate::parse_token(token)?;
    let dir = state_dir.join(ENROLL_DIR);
    let live = dir.join(format!("{}.json", t.id));
    let used = dir.join(format!("{}.used", t.id));
    let rec = match std::fs::read_to_string(&live) {
        Ok(s) => s,
        Err(_) if used.exists() => {
            return Err(ConsoleError::Token(
                "already used: make a new one with `ward console enroll-token`".into(),
            ))
        }
        Err(_) => {
            return Err(ConsoleError::Token(
                "unknown to this console: make one with `ward console enroll-token` on it".into(),
            ))
        }
    };
    let v: serde_json::Value = serde_json::from_str(&rec)
        .map_err(|e| ConsoleError::Token(format!("record unreadable: {e}")))?;
    let want = v
        .get("secret_sha256")
        .and_then(|s| s.as_str())
        .unwrap_or("");
    if !crate::auth::ct_eq(want.as_bytes(), crate::sha256_hex(&t.secret).as_bytes()) {
        return Err(ConsoleError::Token("wrong secret".into()));
    }
    let fp = crate::ca_fingerprint(state_dir)?;
    if fp != t.ca_fp {
        return Err(ConsoleError::Token(
            "made for another console (CA fingerprint differs)".into(),
        ));
    }
    if v.get("expires_at").and_then(|e| e.as_i64()).unwrap_or(0) < now_ms() {
        return Err(ConsoleError::Token(
            "expired: make a new one with `ward console enroll-token`".into(),
        ));
    }
    // rename is atomic: of two concurrent enrollments with one token, one wins
    std::fs::rename(&live, &used).map_err(|_| {
        ConsoleError::Token("already used: make a new one with `ward console enroll-token`".into())
    })
}
