//! The SQLite index of a vault: entries, their owners, incident pins, restore state.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{fileio, Method, Owner};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    path BLOB NOT NULL,
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, atime_ns INTEGER NOT NULL,
    mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
    xattrs BLOB NOT NULL,
    charged INTEGER NOT NULL,
    preserved_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_version ON entries(dev, ino, size, mtime_ns);
CREATE TABLE IF NOT EXISTS entry_owners(
    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    pid INTEGER NOT NULL, start INTEGER NOT NULL,
    PRIMARY KEY(entry_id, pid, start)
);
CREATE INDEX IF NOT EXISTS entry_owners_owner ON entry_owners(pid, start);
CREATE TABLE IF NOT EXISTS pins(
    incident TEXT NOT NULL,
    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    PRIMARY KEY(incident, entry_id)
);
CREATE INDEX IF NOT EXISTS pins_entry ON pins(entry_id);
CREATE TABLE IF NOT EXISTS restores(
    incident TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    plan TEXT NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS restore_steps(
    incident TEXT NOT NULL,
    key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY(incident, key)
);
";

pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open(path)?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    // Exclusive locking before WAL: the wal-index lives in heap memory, not in a mmap'd
    // `-shm` file. On a full filesystem (btrfs: any page, copy on write) a store into a
    // mapped page that cannot be allocated is a SIGBUS that kills ward; write(2) to the
    // WAL returns ENOSPC instead. The vault has one user at a time anyway (`DIR/lock`).
    db.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    // WAL + FULL: a committed entry survives power loss (see the crate docs).
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.pragma_update(None, "foreign_keys", "ON")?;
    db.execute_batch(SCHEMA)?;
    Ok(db)
}

/// One row of `entries`.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub id: i64,
    pub object: String,
    pub method: Method,
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub atime_ns: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    pub charged: u64,
    pub preserved_ns: i64,
}

pub(crate) const ENTRY_COLS: &str = "e.id, e.object, e.method, e.path, e.dev, e.ino, e.size, \
     e.mtime_ns, e.ctime_ns, e.atime_ns, e.mode, e.uid, e.gid, e.xattrs, e.charged, e.preserved_ns";

pub(crate) fn entry_of(r: &Row<'_>) -> rusqlite::Result<Entry> {
    let method: String = r.get(2)?;
    let path: Vec<u8> = r.get(3)?;
    let xattrs: Vec<u8> = r.get(13)?;
    Ok(Entry {
        id: r.get(0)?,
        object: r.get(1)?,
        method: Method::parse(&method).unwrap_or(Method::Copy),
        path: PathBuf::from(OsString::from_vec(path)),
        dev: r.get::<_, i64>(4)? as u64,
        ino: r.get::<_, i64>(5)? as u64,
        size: r.get::<_, i64>(6)? as u64,
        mtime_ns: r.get(7)?,
        ctime_ns: r.get(8)?,
        atime_ns: r.get(9)?,
        mode: r.get::<_, i64>(10)? as u32,
        uid: r.get::<_, i64>(11)? as u32,
        gid: r.get::<_, i64>(12)? as u32,
        xattrs: fileio::decode_xattrs(&xattrs),
        charged: r.get::<_, i64>(14)? as u64,
        preserved_ns: r.get(15)?,
    })
}

/// Insert an entry and its first owner; returns the id.
pub(crate) fn insert_entry(db: &mut Connection, e: &Entry, owner: Owner) -> rusqlite::Result<i64> {
    let tx = db.transaction()?;
    tx.execute(
        "INSERT INTO entries(object, method, path, dev, ino, size, mtime_ns, ctime_ns, atime_ns,
             mode, uid, gid, xattrs, charged, preserved_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            e.object,
            e.method.as_str(),
            e.path.as_os_str().as_bytes(),
            e.dev as i64,
            e.ino as i64,
            e.size as i64,
            e.mtime_ns,
            e.ctime_ns,
            e.atime_ns,
            e.mode as i64,
            e.uid as i64,
            e.gid as i64,
            fileio::encode_xattrs(&e.xattrs),
            e.charged as i64,
            e.preserved_ns,
        ],
    )?;
    let id = tx.last_insert_rowid();
    add_owner_tx(&tx, id, owner)?;
    tx.commit()?;
    Ok(id)
}

fn add_owner_tx(tx: &Connection, id: i64, owner: Owner) -> rusqlite::Result<bool> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO entry_owners(entry_id, pid, start) VALUES (?1, ?2, ?3)",
        params![id, owner.pid as i64, owner.start as i64],
    )? > 0)
}

/// Record one more owner of an existing entry (no-op if already recorded).
pub(crate) fn add_owner(db: &Connection, id: i64, owner: Owner) -> rusqlite::Result<()> {
    let known: bool = db
        .query_row(
            "SELECT 1 FROM entry_owners WHERE entry_id = ?1 AND pid = ?2 AND start = ?3",
            params![id, owner.pid as i64, owner.start as i64],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !known {
        add_owner_tx(db, id, owner)?;
    }
    Ok(())
}

pub(crate) fn owners_of(db: &Connection, id: i64) -> rusqlite::Result<Vec<Owner>> {
    let mut st = db.prepare_cached("SELECT pid, start FROM entry_owners WHERE entry_id = ?1")?;
    let rows = st.query_map([id], |r| {
        Ok(Owner {
            pid: r.get::<_, i64>(0)? as u32,
            start: r.get::<_, i64>(1)? as u64,
        })
    })?;
    rows.collect()
}

/// Entries of these versions' inode with the same size and mtime (ctime is compared by
/// the caller: it differs for link entries).
pub(crate) fn entries_of_inode(
    db: &Connection,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
) -> rusqlite::Result<Vec<Entry>> {
    let mut st = db.prepare_cached(&format!(
        "SELECT {ENTRY_COLS} FROM entries e
         WHERE e.dev = ?1 AND e.ino = ?2 AND e.size = ?3 AND e.mtime_ns = ?4
         ORDER BY e.preserved_ns, e.id"
    ))?;
    let rows = st.query_map(
        params![dev as i64, ino as i64, size as i64, mtime_ns],
        entry_of,
    )?;
    rows.collect()
}

pub(crate) fn has_owner(db: &Connection, id: i64, owner: Owner) -> rusqlite::Result<bool> {
    Ok(db
        .query_row(
            "SELECT 1 FROM entry_owners WHERE entry_id = ?1 AND pid = ?2 AND start = ?3",
            params![id, owner.pid as i64, owner.start as i64],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(crate) fn all_entries(db: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut st = db.prepare(&format!(
        "SELECT {ENTRY_COLS} FROM entries e ORDER BY e.preserved_ns, e.id"
    ))?;
    let rows = st.query_map([], entry_of)?;
    rows.collect()
}

/// Entries preserved for any of `owners`, oldest first.
pub(crate) fn entries_of_owners(db: &Connection, owners: &[Owner]) -> rusqlite::Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut st = db.prepare_cached(&format!(
        "SELECT {ENTRY_COLS} FROM entries e JOIN entry_owners o ON o.entry_id = e.id
         WHERE o.pid = ?1 AND o.start = ?2"
    ))?;
    for o in owners {
        for e in st.query_map(params![o.pid as i64, o.start as i64], entry_of)? {
            let e = e?;
            if seen.insert(e.id) {
                out.push(e);
            }
        }
    }
    out.sort_by_key(|e| (e.preserved_ns, e.id));
    Ok(out)
}

pub(crate) fn is_pinned(db: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(db
        .query_row(
            "SELECT 1 FROM pins WHERE entry_id = ?1 LIMIT 1",
            [id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(crate) fn delete_entry(db: &Connection, id: i64) -> rusqlite::Result<()> {
    db.execute("DELETE FROM entries WHERE id = ?1", [id])?;
    Ok(())
}

pub(crate) fn charged_total(db: &Connection) -> rusqlite::Result<u64> {
    db.query_row("SELECT COALESCE(SUM(charged), 0) FROM entries", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|v| v as u64)
}
