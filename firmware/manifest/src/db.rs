//! Opening MANIFEST.db and the conversions every query module shares.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use libp2p_identity::PeerId;
use rusqlite::{Connection, OpenFlags};

use crate::error::{OpenError, QueryError};
use crate::schema;

/// How long a statement waits for a lock held by another connection (the
/// copy-on-download reader, a second process) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The live manifest: one SQLite connection in WAL mode with foreign keys on.
///
/// `Send` but not `Sync`: the engine owns it on one task (or behind a mutex).
/// A reader that must not wait on the engine (the web admin) opens its own
/// `Manifest` on the same file: WAL lets it read while the engine writes, and a
/// writer waits up to 5 s for another writer's lock.
pub struct Manifest {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Manifest {
    /// Opens (creating if needed) the manifest at `path` and migrates its schema.
    ///
    /// `synchronous=FULL` costs a little on each commit but makes a commit
    /// durable the moment it returns, which the crash test relies on: anything
    /// the engine reported as saved survives a power cut.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        let mut conn = open_connection(&path)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Manifest { conn, path })
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, QueryError> {
        schema::current_version(&self.conn).map_err(sql("read schema version"))
    }

    /// Runs SQLite's full `integrity_check` and foreign-key check; returns the
    /// problems found (empty when sound).
    pub fn integrity_problems(&self) -> Result<Vec<String>, QueryError> {
        integrity_problems(&self.conn).map_err(sql("integrity check"))
    }
}

pub(crate) fn open_connection(path: &Path) -> Result<Connection, OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Pragma {
            path: path.to_owned(),
            what: "journal_mode",
            expected: "wal".into(),
            got: mode,
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite)?;
    // A million-file manifest is about 500 MB: a 64 MiB page cache keeps the
    // hot index pages of bulk inserts and audits resident, and memory-mapped
    // reads spare a copy per page. Both are modest for a Pi 4/5.
    conn.pragma_update(None, "cache_size", -65_536)
        .map_err(sqlite)?;
    let _mmap: i64 = conn
        .query_row("PRAGMA mmap_size = 268435456", [], |r| r.get(0))
        .map_err(sqlite)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sqlite)?;
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(sqlite)?;
    if fk != 1 {
        return Err(OpenError::Pragma {
            path: path.to_owned(),
            what: "foreign_keys",
            expected: "1".into(),
            got: fk.to_string(),
        });
    }
    Ok(conn)
}

pub(crate) fn integrity_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for row in rows {
        let row = row?;
        if row != "ok" {
            problems.push(row);
        }
    }
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "foreign key violation in {} row {:?} -> {}",
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    for row in rows {
        problems.push(row?);
    }
    Ok(problems)
}

/// Maps a rusqlite error to [`QueryError::Sqlite`] naming the operation.
pub(crate) fn sql<W: Into<String>>(what: W) -> impl FnOnce(rusqlite::Error) -> QueryError {
    move |source| QueryError::Sqlite {
        what: what.into(),
        source,
    }
}

/// Like [`sql`], but builds the description only when there is an error (hot loops).
pub(crate) fn sqlf<F: FnOnce() -> String>(what: F) -> impl FnOnce(rusqlite::Error) -> QueryError {
    move |source| QueryError::Sqlite {
        what: what(),
        source,
    }
}

/// True when SQLite refused a row because of a UNIQUE or PRIMARY KEY constraint.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(err, _)
            if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// True when SQLite refused a row because a referenced row is missing.
pub(crate) fn is_fk_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(err, _)
            if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    )
}

/// SQLite integers are signed; sizes and amounts above `i64::MAX` are refused, not wrapped.
pub(crate) fn to_i64(field: &'static str, v: u64) -> Result<i64, QueryError> {
    i64::try_from(v).map_err(|_| QueryError::InvalidValue {
        field,
        reason: format!("{v} exceeds {}", i64::MAX),
    })
}

/// Reads back a non-negative integer column as u64.
pub(crate) fn to_u64(what: &str, column: &'static str, v: i64) -> Result<u64, QueryError> {
    u64::try_from(v).map_err(|_| QueryError::Corrupt {
        what: what.to_owned(),
        column,
        reason: format!("negative value {v}"),
    })
}

pub(crate) fn parse_peer(what: &str, column: &'static str, s: &str) -> Result<PeerId, QueryError> {
    PeerId::from_str(s).map_err(|e| QueryError::Corrupt {
        what: what.to_owned(),
        column,
        reason: format!("{s:?} is not a PeerId: {e}"),
    })
}

pub(crate) fn hash32(what: &str, column: &'static str, v: Vec<u8>) -> Result<[u8; 32], QueryError> {
    <[u8; 32]>::try_from(v.as_slice()).map_err(|_| QueryError::Corrupt {
        what: what.to_owned(),
        column,
        reason: format!("{} bytes, expected 32", v.len()),
    })
}

pub(crate) fn parse_enum<T>(
    what: &str,
    column: &'static str,
    s: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, QueryError> {
    parse(s).ok_or_else(|| QueryError::Corrupt {
        what: what.to_owned(),
        column,
        reason: format!("unknown value {s:?}"),
    })
}
