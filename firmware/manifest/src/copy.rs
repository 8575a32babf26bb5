//! Consistent copies of the live database through SQLite's online backup API:
//! what `/MANIFEST.db` downloads and what snapshots are made from. Copying the
//! file with `cp` could tear a page mid-write and would miss the WAL; the backup
//! API copies one committed state in a single read transaction.

use std::io::Write;
use std::path::Path;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

use crate::db::Manifest;
use crate::error::CopyError;

impl Manifest {
    /// Writes a consistent, self-contained copy (rollback journal, no WAL
    /// beside it) to `dest`, replacing it atomically. Returns its size in bytes.
    pub fn write_consistent_copy(&self, dest: &Path) -> Result<u64, CopyError> {
        // Staged beside `dest`, so the final rename stays on one file system.
        let tmp = self.staged_copy_in(dest)?;
        tmp.as_file().sync_all().map_err(|source| CopyError::Io {
            step: "sync copy",
            source,
        })?;
        let size = tmp
            .as_file()
            .metadata()
            .map_err(|source| CopyError::Io {
                step: "stat copy",
                source,
            })?
            .len();
        tmp.persist(dest).map_err(|e| CopyError::Io {
            step: "move copy into place",
            source: e.error,
        })?;
        Ok(size)
    }

    /// Streams a consistent copy to `out` (the `/MANIFEST.db` download). The
    /// copy is staged in a temporary file beside the database, never in memory.
    pub fn copy_to_writer(&self, out: &mut dyn Write) -> Result<u64, CopyError> {
        let tmp = self.staged_copy()?;
        let mut f = tmp.reopen().map_err(|source| CopyError::Io {
            step: "reopen copy",
            source,
        })?;
        let n = std::io::copy(&mut f, out).map_err(|source| CopyError::Io {
            step: "write copy",
            source,
        })?;
        out.flush().map_err(|source| CopyError::Io {
            step: "flush copy",
            source,
        })?;
        Ok(n)
    }

    /// A consistent copy in a temporary file beside the database, deleted on drop.
    pub(crate) fn staged_copy(&self) -> Result<tempfile::NamedTempFile, CopyError> {
        self.staged_copy_in(&self.path)
    }

    /// A consistent copy in a temporary file in the directory of `beside`.
    fn staged_copy_in(&self, beside: &Path) -> Result<tempfile::NamedTempFile, CopyError> {
        let dir = beside
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".manifest-copy-")
            .tempfile_in(dir)
            .map_err(|source| CopyError::Io {
                step: "create temporary copy",
                source,
            })?;
        backup_into(&self.conn, tmp.path())?;
        Ok(tmp)
    }
}

/// Copies every page of `src` into the (empty) database file at `dest` in one
/// step, so the copy reflects exactly one committed state.
pub(crate) fn backup_into(src: &Connection, dest: &Path) -> Result<(), CopyError> {
    let sqlite = |step| move |source| CopyError::Sqlite { step, source };
    let mut dst = Connection::open(dest).map_err(sqlite("open copy"))?;
    {
        let backup = Backup::new(src, &mut dst).map_err(sqlite("start backup"))?;
        // -1: all pages in one step, i.e. under one read lock of the source.
        match backup.step(-1).map_err(sqlite("backup"))? {
            StepResult::Done => {}
            other => {
                return Err(CopyError::Sqlite {
                    step: "backup",
                    source: rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some(format!("backup step returned {other:?}")),
                    ),
                })
            }
        }
    }
    // A standalone file: readable by any SQLite tool without a -wal beside it.
    let _mode: String = dst
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .map_err(sqlite("set journal mode of copy"))?;
    dst.close().map_err(|(_, e)| CopyError::Sqlite {
        step: "close copy",
        source: e,
    })?;
    Ok(())
}
