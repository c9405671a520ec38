//! The console's one data-access layer over SQLite (default, a file in the state directory)
//! or PostgreSQL (`database_url`). Every statement is written once, with `$1..$n`
//! placeholders, and every value is bound, never spliced into SQL text. Schema migrations
//! are numbered and recorded in `schema_migrations`.

use crate::ConsoleError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A bound value or a column value: the only types the schema uses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
    Null,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map(Value::Text).unwrap_or(Value::Null)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}

/// One result row.
#[derive(Clone, Debug)]
pub(crate) struct Row(pub Vec<Value>);

impl Row {
    pub fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(Value::Int(v)) => *v,
            Some(Value::Text(s)) => s.parse().unwrap_or(0),
            _ => 0,
        }
    }
    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Value::Text(s)) => Some(s.clone()),
            Some(Value::Int(v)) => Some(v.to_string()),
            _ => None,
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

impl tokio_postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::{IsNull, Type};
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => {
                if *ty == Type::INT4 {
                    i32::try_from(*v)?.to_sql(ty, out)
                } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
                    v.to_string().to_sql(ty, out)
                } else {
                    v.to_sql(ty, out)
                }
            }
            Value::Text(s) => s.to_sql(ty, out),
        }
    }
    fn accepts(_ty: &tokio_postgres::types::Type) -> bool {
        true
    }
    tokio_postgres::types::to_sql_checked!();
}

enum Backend {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Pg {
        clients: Vec<tokio_postgres::Client>,
        next: AtomicUsize,
    },
}

/// Connection(s) to the console's database.
#[derive(Clone)]
pub(crate) struct Db {
    backend: Arc<Backend>,
}

fn db_err(what: &str, e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Database(format!("{what}: {e}"))
}

/// Numbered migrations; `{serial}` is the backend's auto-increment primary key.
const MIGRATIONS: &[&str] = &[
    // 1: the whole first schema
    "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT, created_at BIGINT NOT NULL);
     CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, created_at BIGINT NOT NULL, revoked BIGINT NOT NULL DEFAULT 0);
     CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL, expires_at BIGINT NOT NULL);
     CREATE TABLE hosts (id TEXT PRIMARY KEY, name TEXT NOT NULL, cert_fp TEXT NOT NULL UNIQUE, revoked BIGINT NOT NULL DEFAULT 0,
        enrolled_at BIGINT NOT NULL, last_seen BIGINT, heartbeat TEXT, ready TEXT, isolated BIGINT NOT NULL DEFAULT 0, stopped BIGINT NOT NULL DEFAULT 0);
     CREATE TABLE events (host_id TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, at BIGINT NOT NULL, received_at BIGINT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (host_id, seq));
     CREATE TABLE incidents (num {serial}, host_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, detected_at BIGINT NOT NULL,
        client_ip TEXT, restore TEXT NOT NULL, files_restored BIGINT, files_lost BIGINT, acknowledged_by TEXT, acknowledged_at BIGINT,
        UNIQUE (host_id, id));
     CREATE TABLE actions (id {serial}, host_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, requested_by TEXT NOT NULL,
        requested_at BIGINT NOT NULL, status TEXT NOT NULL, result TEXT, updated_at BIGINT NOT NULL);
     CREATE INDEX actions_pending ON actions (host_id, status);
     CREATE TABLE audit (id {serial}, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
        detail TEXT NOT NULL, ok BIGINT NOT NULL)",
    // 2: when the agent reported the restore (for the timeline)
    "ALTER TABLE incidents ADD COLUMN restored_at BIGINT",
    // 3: indexes for the fleet view and the newest-first lists
    "CREATE INDEX incidents_open ON incidents (acknowledged_at, restore, host_id);
     CREATE INDEX incidents_newest ON incidents (detected_at, num)",
    // 4: enrollment looks names up
    "CREATE INDEX hosts_name ON hosts (name)",
    // 5: counting recent failed logins per name
    "CREATE INDEX audit_actor ON audit (actor, action, at)",
];

impl Db {
    /// Open (creating) the SQLite database at `path` and migrate it.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Db, ConsoleError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || -> Result<_, ConsoleError> {
            let c = rusqlite::Connection::open(&path)
                .map_err(|e| db_err(&format!("opening {}", path.display()), e))?;
            // password and token hashes: owner only (SQLite gives its -wal/-shm files the
            // same mode)
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| crate::io_err(&path, e))?;
            c.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(|e| db_err("sqlite busy timeout", e))?;
            c.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            )
            .map_err(|e| db_err("sqlite pragmas", e))?;
            Ok(c)
        })
        .await
        .map_err(|e| db_err("sqlite open task", e))??;
        let db = Db {
            backend: Arc::new(Backend::Sqlite(Arc::new(Mutex::new(conn)))),
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Connect to PostgreSQL (`postgres://user@host:port/db`, no TLS: use a loopback or
    /// Unix-socket server) with a few pooled connections, and migrate.
    pub async fn open_pg(url: &str) -> Result<Db, ConsoleError> {
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .map_err(|e| {
                    db_err(
                        "connecting to PostgreSQL (check --database-url and that the server runs)",
                        e,
                    )
                })?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::error!("PostgreSQL connection ended: {e}");
                }
            });
            clients.push(client);
        }
        let db = Db {
            backend: Arc::new(Backend::Pg {
                clients,
                next: AtomicUsize::new(0),
            }),
        };
        db.migrate().await?;
        Ok(db)
    }

    /// `sqlite` or `postgresql`.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Pg { .. } => "postgresql",
        }
    }

    async fn batch(&self, sql: String) -> Result<(), ConsoleError> {
        match &*self.backend {
            Backend::Sqlite(c) => {
                let c = c.clone();
                tokio::task::spawn_blocking(move || {
                    let c = c.lock().map_err(|_| db_err("sqlite", "lock poisoned"))?;
                    c.execute_batch(&sql).map_err(|e| db_err("migration", e))
                })
                .await
                .map_err(|e| db_err("sqlite task", e))?
            }
            Backend::Pg { clients, .. } => clients[0]
                .batch_execute(&sql)
                .await
                .map_err(|e| db_err("migration", e)),
        }
    }

    async fn migrate(&self) -> Result<(), ConsoleError> {
        self.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)".into(),
        )
        .await?;
        let done = self
            .query("SELECT version FROM schema_migrations", vec![])
            .await?;
        let have: Vec<i64> = done.iter().map(|r| r.int(0)).collect();
        let serial = match &*self.backend {
            Backend::Sqlite(_) => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Pg { .. } => "BIGSERIAL PRIMARY KEY",
        };
        for (i, m) in MIGRATIONS.iter().enumerate() {
            let v = i as i64 + 1;
            if have.contains(&v) {
                continue;
            }
            let sql = format!(
                "BEGIN; {}; INSERT INTO schema_migrations (version) VALUES ({v}); COMMIT;",
                m.replace("{serial}", serial)
            );
            self.batch(sql).await?;
        }
        Ok(())
    }

    /// Run a statement; the number of rows it changed.
    pub async fn exec(&self, sql: &'static str, params: Vec<Value>) -> Result<u64, ConsoleError> {
        match &*self.backend {
            Backend::Sqlite(c) => {
                let c = c.clone();
                tokio::task::spawn_blocking(move || {
                    let c = c.lock().map_err(|_| db_err("sqlite", "lock poisoned"))?;
                    let sql = sql.replace('$', "?");
                    let mut st = c.prepare_cached(&sql).map_err(|e| db_err(&sql, e))?;
                    st.execute(rusqlite::params_from_iter(params.iter()))
                        .map(|n| n as u64)
                        .map_err(|e| db_err(&sql, e))
                })
                .await
                .map_err(|e| db_err("sqlite task", e))?
            }
            Backend::Pg { clients, next } => {
                let c = &clients[next.fetch_add(1, Ordering::Relaxed) % clients.len()];
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                c.execute(sql, &refs).await.map_err(|e| db_err(sql, e))
            }
        }
    }

    /// Run a query; its rows.
    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, ConsoleError> {
        match &*self.backend {
            Backend::Sqlite(c) => {
                let c = c.clone();
                let sql = sql.replace('$', "?");
                tokio::task::spawn_blocking(move || {
                    let c = c.lock().map_err(|_| db_err("sqlite", "lock poisoned"))?;
                    let mut st = c.prepare_cached(&sql).map_err(|e| db_err(&sql, e))?;
                    let n = st.column_count();
                    let mut rows = st
                        .query(rusqlite::params_from_iter(params.iter()))
                        .map_err(|e| db_err(&sql, e))?;
                    let mut out = Vec::new();
                    while let Some(r) = rows.next().map_err(|e| db_err(&sql, e))? {
                        let mut row = Vec::with_capacity(n);
                        for i in 0..n {
                            use rusqlite::types::ValueRef;
                            row.push(match r.get_ref(i).map_err(|e| db_err(&sql, e))? {
                                ValueRef::Integer(v) => Value::Int(v),
                                ValueRef::Text(t) => {
                                    Value::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                ValueRef::Real(f) => Value::Int(f as i64),
                                ValueRef::Null | ValueRef::Blob(_) => Value::Null,
                            });
                        }
                        out.push(Row(row));
                    }
                    Ok(out)
                })
                .await
                .map_err(|e| db_err("sqlite task", e))?
            }
            Backend::Pg { clients, next } => {
                use tokio_postgres::types::Type;
                let c = &clients[next.fetch_add(1, Ordering::Relaxed) % clients.len()];
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let rows = c.query(sql, &refs).await.map_err(|e| db_err(sql, e))?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let mut row = Vec::with_capacity(r.len());
                    for (i, col) in r.columns().iter().enumerate() {
                        let t = col.type_();
                        let v = if *t == Type::INT8 {
                            r.try_get::<_, Option<i64>>(i)
                                .map_err(|e| db_err(sql, e))?
                                .map(Value::Int)
                        } else if *t == Type::INT4 {
                            r.try_get::<_, Option<i32>>(i)
                                .map_err(|e| db_err(sql, e))?
                                .map(|v| Value::Int(v as i64))
                        } else {
                            r.try_get::<_, Option<String>>(i)
                                .map_err(|e| db_err(sql, e))?
                                .map(Value::Text)
                        };
                        row.push(v.unwrap_or(Value::Null));
                    }
                    out.push(Row(row));
                }
                Ok(out)
            }
        }
    }
}
