//! Per-board tuning of the open connection (issue 11's device profile):
//! the page cache is sized for the board the box runs on, so the same
//! firmware fits a Pi Zero 2 W with 512 MiB and uses a Pi 5's memory.

use crate::db::{sql, Manifest};
use crate::error::QueryError;

/// Smallest cache accepted: below this SQLite thrashes on the folder index.
const MIN_CACHE_KIB: u32 = 1024;

impl Manifest {
    /// Sets SQLite's page cache to `kib` KiB (at least 1 MiB); the default
    /// from [`Manifest::open`] is 64 MiB.
    pub fn set_cache_size_kib(&mut self, kib: u32) -> Result<(), QueryError> {
        let kib = i64::from(kib.max(MIN_CACHE_KIB));
        self.conn.pragma_update(None, "cache_size", -kib).map_err(sql("set cache_size"))
    }

    /// SQLite's page cache now, in KiB.
    pub fn cache_size_kib(&self) -> Result<u64, QueryError> {
        let v: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0)).map_err(sql("read cache_size"))?;
        // Negative: KiB; positive: pages.
        if v < 0 {
            Ok(v.unsigned_abs())
        } else {
            let page: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(sql("read page_size"))?;
            Ok((v.saturating_mul(page) / 1024).unsigned_abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_size_follows_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::open(dir.path().join("m.db")).unwrap();
        assert_eq!(m.cache_size_kib().unwrap(), 65_536);
        m.set_cache_size_kib(8192).unwrap();
        assert_eq!(m.cache_size_kib().unwrap(), 8192);
        m.set_cache_size_kib(1).unwrap();
        assert_eq!(m.cache_size_kib().unwrap(), 1024);
    }
}
