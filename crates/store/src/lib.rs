//! # ward-store
//!
//! The incident record ([`Incident`], exactly the object of the `incident` JSON line of
//! the BRIEF §5 contract, plus details) and its durable store: one SQLite database,
//! `ward.db`, in the state directory (default `/var/lib/ward`). Writes are synchronous
//! (`synchronous=FULL`, WAL journal) so a recorded incident survives a crash or power cut.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An SMB client behind an attack (Samba support comes later; `null` for local processes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub ip: String,
    pub user: String,
}

/// One contained attack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// Root of the guilty process lineage.
    pub pid: u32,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub client: Option<Client>,
    /// First damaging write seen.
    pub started_at: DateTime<Utc>,
    /// Verdict.
    pub detected_at: DateTime<Utc>,
    /// The lineage was frozen.
    pub contained_at: DateTime<Utc>,
    /// What ward did: `killed` (frozen, then killed), `frozen` (could not kill), or
    /// `exited` (the lineage had already ended when it was convicted).
    pub action: String,
    pub files_damaged: usize,
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
    /// Restore state: `pending`, `done`, `partial`, `none` (no vault yet).
    pub restore: String,
}

/// Errors of the store, with what to do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the state directory {path}: {source} (choose another with --state-dir)"
    )]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("incident database {path}: {source} (is another ward using it? is the disk full?)")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("corrupt incident record {id}: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
}

/// The incident store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) `DIR/ward.db`. The directory is created mode 0700.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::Dir {
                path: dir.to_path_buf(),
                source: e,
            })?;
        let path = dir.join("ward.db");
        let db = |e| StoreError::Db {
            path: path.clone(),
            source: e,
        };
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS incidents (
                 id TEXT PRIMARY KEY,
                 detected_at TEXT NOT NULL,
                 body TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS restore_plans (
                 id TEXT PRIMARY KEY,
                 plan TEXT NOT NULL,
                 done INTEGER NOT NULL DEFAULT 0
             );",
        )
        .map_err(db)?;
        Ok(Store { conn, path })
    }

    /// Insert or replace an incident.
    pub fn put(&self, inc: &Incident) -> Result<(), StoreError> {
        let body = serde_json::to_string(inc).expect("incidents serialise");
        self.conn
            .execute(
                "INSERT OR REPLACE INTO incidents (id, detected_at, body) VALUES (?1, ?2, ?3)",
                params![inc.id, inc.detected_at.to_rfc3339(), body],
            )
            .map_err(|e| StoreError::Db {
                path: self.path.clone(),
                source: e,
            })?;
        Ok(())
    }

    /// Record the restore plan of an incident (JSON chosen by the caller), before the
    /// restore starts, so a restart can finish it.
    pub fn put_plan(&self, id: &str, plan: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO restore_plans (id, plan, done) VALUES (?1, ?2, 0)",
                params![id, plan],
            )
            .map_err(|e| StoreError::Db {
                path: self.path.clone(),
                source: e,
            })?;
        Ok(())
    }

    /// The restore plan of an incident.
    pub fn plan(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT plan FROM restore_plans WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| StoreError::Db {
                path: self.path.clone(),
                source: e,
            })
    }

    /// Plans whose restore has not finished: (incident id, plan).
    pub fn unfinished_plans(&self) -> Result<Vec<(String, String)>, StoreError> {
        let db = |e| StoreError::Db {
            path: self.path.clone(),
            source: e,
        };
        let mut st = self
            .conn
            .prepare("SELECT id, plan FROM restore_plans WHERE done = 0 ORDER BY id")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Mark a restore finished and record its outcome in the incident.
    pub fn finish_restore(&self, id: &str, status: &str) -> Result<(), StoreError> {
        let db = |e| StoreError::Db {
            path: self.path.clone(),
            source: e,
        };
        self.conn
            .execute("UPDATE restore_plans SET done = 1 WHERE id = ?1", [id])
            .map_err(db)?;
        if let Some(mut inc) = self.get(id)? {
            inc.restore = status.to_string();
            self.put(&inc)?;
        }
        Ok(())
    }

    /// All incidents, oldest first.
    pub fn list(&self) -> Result<Vec<Incident>, StoreError> {
        let db = |e| StoreError::Db {
            path: self.path.clone(),
            source: e,
        };
        let mut st = self
            .conn
            .prepare("SELECT id, body FROM incidents ORDER BY detected_at, id")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(db)?;
            out.push(
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt { id, source: e })?,
            );
        }
        Ok(out)
    }

    /// One incident by id.
    pub fn get(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let db = |e| StoreError::Db {
            path: self.path.clone(),
            source: e,
        };
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM incidents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?;
        body.map(|b| {
            serde_json::from_str(&b).map_err(|e| StoreError::Corrupt {
                id: id.to_string(),
                source: e,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(id: &str) -> Incident {
        let t = Utc::now();
        Incident {
            id: id.into(),
            pid: 42,
            exe: "/usr/bin/python3".into(),
            cmdline: vec!["python3".into(), "evil.py".into()],
            client: None,
            started_at: t,
            detected_at: t,
            contained_at: t,
            action: "killed".into(),
            files_damaged: 3,
            indicators: vec!["content-encrypted".into()],
            uid: 0,
            damaged: vec!["/a".into()],
            created: vec![],
            processes: vec![42],
            contain_ms: 1.5,
            freeze_ms: 0.2,
            restore: "none".into(),
        }
    }

    #[test]
    fn roundtrip_and_persistence() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = Store::open(d.path()).unwrap();
            s.put(&inc("a")).unwrap();
            s.put(&inc("b")).unwrap();
        }
        let s = Store::open(d.path()).unwrap();
        let all = s.list().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            s.get("a").unwrap().unwrap(),
            inc("a").clone_with_times(&all[0])
        );
        assert!(s.get("zzz").unwrap().is_none());
    }

    impl Incident {
        fn clone_with_times(mut self, other: &Incident) -> Incident {
            self.started_at = other.started_at;
            self.detected_at = other.detected_at;
            self.contained_at = other.contained_at;
            self
        }
    }

    #[test]
    fn plans_survive_and_finish() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        s.put(&inc("a")).unwrap();
        s.put_plan("a", "{\"x\":1}").unwrap();
        drop(s);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(
            s.unfinished_plans().unwrap(),
            vec![("a".to_string(), "{\"x\":1}".to_string())]
        );
        s.finish_restore("a", "done").unwrap();
        assert!(s.unfinished_plans().unwrap().is_empty());
        assert_eq!(s.get("a").unwrap().unwrap().restore, "done");
        assert_eq!(s.plan("a").unwrap().as_deref(), Some("{\"x\":1}"));
    }

    #[test]
    fn json_has_contract_fields() {
        let v = serde_json::to_value(inc("x")).unwrap();
        for k in [
            "id",
            "pid",
            "exe",
            "cmdline",
            "client",
            "started_at",
            "detected_at",
            "contained_at",
            "action",
            "files_damaged",
            "indicators",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert!(v["client"].is_null());
    }
}
