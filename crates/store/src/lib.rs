//! # ward-store
//!
//! The durable record of what happened: incidents ([`Incident`], from `ward-model`),
//! their restore plans and the SMB client blocks in force, in one SQLite database,
//! `ward.db`, in the state directory (default `/var/lib/ward`). Writes are synchronous
//! (`synchronous=FULL`, WAL journal) so a recorded incident survives a crash or power cut.

#![forbid(unsafe_code)]

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

pub use ward_model::{Action, Block, Client, Incident, RestoreStatus};

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
             );
             CREATE TABLE IF NOT EXISTS blocks (
                 ip TEXT PRIMARY KEY,
                 incident TEXT NOT NULL,
                 since TEXT NOT NULL,
                 until TEXT
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
    pub fn finish_restore(&self, id: &str, status: RestoreStatus) -> Result<(), StoreError> {
        let db = |e| StoreError::Db {
            path: self.path.clone(),
            source: e,
        };
        self.conn
            .execute("UPDATE restore_plans SET done = 1 WHERE id = ?1", [id])
            .map_err(db)?;
        if let Some(mut inc) = self.get(id)? {
            inc.restore = status;
            self.put(&inc)?;
        }
        Ok(())
    }

    /// Record a client block (replacing an earlier one for the same address).
    pub fn put_block(&self, b: &Block) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO blocks (ip, incident, since, until) VALUES (?1, ?2, ?3, ?4)",
                params![
                    b.ip,
                    b.incident,
                    b.since.to_rfc3339(),
                    b.until.map(|u| u.to_rfc3339())
                ],
            )
            .map_err(|e| StoreError::Db {
                path: self.path.clone(),
                source: e,
            })?;
        Ok(())
    }

    /// Forget the block of `ip`; returns whether there was one.
    pub fn remove_block(&self, ip: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM blocks WHERE ip = ?1", [ip])
            .map_err(|e| StoreError::Db {
                path: self.path.clone(),
                source: e,
            })?;
        Ok(n > 0)
    }

    /// Blocks in force at `now` (expired ones are left out).
    pub fn blocks(&self, now: DateTime<Utc>) -> Result<Vec<Block>, StoreError> {
        let db = |e| StoreError::Db {
            path: self.path.clone(),
            source: e,
        };
        let mut st = self
            .conn
            .prepare("SELECT ip, incident, since, until FROM blocks ORDER BY since, ip")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(db)?;
        let parse = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        };
        let mut out = Vec::new();
        for row in rows {
            let (ip, incident, since, until) = row.map_err(db)?;
            let until = until.as_deref().and_then(parse);
            if until.is_some_and(|u| u <= now) {
                continue;
            }
            out.push(Block {
                ip,
                incident,
                since: parse(&since).unwrap_or(now),
                until,
            });
        }
        Ok(out)
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
            action: Action::Killed,
            files_damaged: 3,
            indicators: vec!["content-encrypted".into()],
            uid: 0,
            damaged: vec!["/a".into()],
            created: vec![],
            processes: vec![42],
            contain_ms: 1.5,
            freeze_ms: 0.2,
            restore: RestoreStatus::None,
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

    trait WithTimes {
        fn clone_with_times(self, other: &Incident) -> Incident;
    }

    impl WithTimes for Incident {
        fn clone_with_times(mut self, other: &Incident) -> Incident {
            self.started_at = other.started_at;
            self.detected_at = other.detected_at;
            self.contained_at = other.contained_at;
            self
        }
    }

    #[test]
    fn blocks_expire_and_lift() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let now = Utc::now();
        let b = |ip: &str, until| Block {
            ip: ip.into(),
            incident: "i".into(),
            since: now,
            until,
        };
        s.put_block(&b("10.0.0.1", None)).unwrap();
        s.put_block(&b("10.0.0.2", Some(now + chrono::Duration::minutes(5))))
            .unwrap();
        s.put_block(&b("10.0.0.3", Some(now - chrono::Duration::minutes(1))))
            .unwrap();
        let ips: Vec<String> = s.blocks(now).unwrap().into_iter().map(|b| b.ip).collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
        assert!(s.remove_block("10.0.0.1").unwrap());
        assert!(!s.remove_block("10.0.0.1").unwrap());
        assert_eq!(s.blocks(now).unwrap().len(), 1);
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
        s.finish_restore("a", RestoreStatus::Done).unwrap();
        assert!(s.unfinished_plans().unwrap().is_empty());
        assert_eq!(s.get("a").unwrap().unwrap().restore, RestoreStatus::Done);
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
