//! Change detection for manifest replication: the engine snapshots the
//! manifest after it changed (debounced), and asks here whether it did.

use crate::db::{sql, Manifest};
use crate::error::QueryError;

impl Manifest {
    /// Rows inserted, updated or deleted through this connection since it
    /// was opened (SQLite's `total_changes()`).
    ///
    /// Only this connection's writes count, which is what the engine wants:
    /// it owns the one connection that writes the box's manifest. The value
    /// only grows, so "different from last time" means "changed since".
    pub fn total_changes(&self) -> Result<u64, QueryError> {
        let n: i64 = self
            .conn
            .query_row("SELECT total_changes()", [], |r| r.get(0))
            .map_err(sql("read total_changes"))?;
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::Manifest;

    #[test]
    fn total_changes_grows_with_each_write_and_not_with_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::open(dir.path().join("m.db")).unwrap();
        let before = m.total_changes().unwrap();
        assert!(m.snapshot_holders().unwrap().is_empty());
        assert_eq!(m.total_changes().unwrap(), before, "a read is not a change");
        let peer = libp2p_identity::Keypair::generate_ed25519().public().to_peer_id();
        m.record_snapshot_holder(&peer, 3, 1_700_000_000).unwrap();
        let after = m.total_changes().unwrap();
        assert!(after > before, "{after} > {before}");
    }
}
