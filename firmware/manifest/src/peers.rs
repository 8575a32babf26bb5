//! Peers we have met: addresses, Lightning node ids and the reputation counts
//! the engine's placement policy decays and reads.

use libp2p_identity::PeerId;
use rusqlite::{params, OptionalExtension};

use crate::db::{parse_peer, sql, sqlf, Manifest};
use crate::error::QueryError;
use crate::types::{PeerRecord, PeerSighting};

/// Addresses kept per peer; older ones are dropped so a chatty peer cannot grow the row set.
pub const MAX_ADDRESSES_PER_PEER: usize = 16;
/// Longest multiaddr text kept.
pub const MAX_ADDRESS_LEN: usize = 256;

impl Manifest {
    /// Records that a peer was seen, with the addresses it was seen at.
    pub fn upsert_peer(&mut self, s: &PeerSighting) -> Result<(), QueryError> {
        for a in &s.addresses {
            if a.len() > MAX_ADDRESS_LEN || a.is_empty() {
                return Err(QueryError::InvalidValue {
                    field: "address",
                    reason: format!("{} bytes, must be 1..={MAX_ADDRESS_LEN}", a.len()),
                });
            }
        }
        if let Some(id) = &s.ln_node_id {
            if id.len() != 66 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(QueryError::InvalidValue {
                    field: "ln_node_id",
                    reason: format!("{id:?} is not a 33-byte hex public key"),
                });
            }
        }
        let peer = s.peer.to_base58();
        let what = format!("peer {}", s.peer);
        let tx = self.conn.transaction().map_err(sql("begin upsert_peer"))?;
        let row: i64 = tx
            .query_row(
                "INSERT INTO peers (peer_id, ln_node_id, first_seen_at, last_seen_at) \
                 VALUES (?1, ?2, ?3, ?3) ON CONFLICT (peer_id) DO UPDATE SET \
                 ln_node_id = coalesce(excluded.ln_node_id, ln_node_id), \
                 last_seen_at = max(last_seen_at, excluded.last_seen_at) RETURNING id",
                params![peer, s.ln_node_id, s.seen_at],
                |r| r.get(0),
            )
            .map_err(sqlf(|| format!("upsert {what}")))?;
        for a in &s.addresses {
            tx.execute(
                "INSERT INTO peer_addresses (peer, address, last_seen_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (peer, address) DO UPDATE SET \
                 last_seen_at = max(last_seen_at, excluded.last_seen_at)",
                params![row, a, s.seen_at],
            )
            .map_err(sqlf(|| format!("record address of {what}")))?;
        }
        tx.execute(
            "DELETE FROM peer_addresses WHERE peer = ?1 AND address NOT IN \
             (SELECT address FROM peer_addresses WHERE peer = ?1 \
              ORDER BY last_seen_at DESC, address LIMIT ?2)",
            params![row, MAX_ADDRESSES_PER_PEER as i64],
        )
        .map_err(sqlf(|| format!("trim addresses of {what}")))?;
        tx.commit().map_err(sqlf(|| format!("commit {what}")))?;
        Ok(())
    }

    /// Stores the peer's reputation counts (already decayed by the engine).
    pub fn set_peer_score(
        &mut self,
        peer: &PeerId,
        successes: f64,
        failures: f64,
    ) -> Result<(), QueryError> {
        for (field, v) in [("successes", successes), ("failures", failures)] {
            if !v.is_finite() || v < 0.0 {
                return Err(QueryError::InvalidValue {
                    field,
                    reason: format!("{v} is not a finite count >= 0"),
                });
            }
        }
        let what = format!("peer {peer}");
        let n = self
            .conn
            .execute(
                "UPDATE peers SET successes = ?2, failures = ?3 WHERE peer_id = ?1",
                params![peer.to_base58(), successes, failures],
            )
            .map_err(sqlf(|| format!("score {what}")))?;
        if n == 0 {
            return Err(QueryError::NotFound { what });
        }
        Ok(())
    }

    /// One peer.
    pub fn peer(&self, peer: &PeerId) -> Result<Option<PeerRecord>, QueryError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT peer_id, ln_node_id, first_seen_at, last_seen_at, successes, failures \
                 FROM peers WHERE peer_id = ?1",
            )
            .and_then(|mut s| s.query_row([peer.to_base58()], peer_row).optional())
            .map_err(sqlf(|| format!("read peer {peer}")))?;
        row.map(|r| self.finish_peer(r)).transpose()
    }

    /// All peers, most recently seen first.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT peer_id, ln_node_id, first_seen_at, last_seen_at, successes, failures \
                 FROM peers ORDER BY last_seen_at DESC, peer_id",
            )
            .map_err(sql("list peers"))?;
        let rows = stmt
            .query_map([], peer_row)
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("list peers"))?;
        rows.into_iter().map(|r| self.finish_peer(r)).collect()
    }

    fn finish_peer(&self, r: RawPeer) -> Result<PeerRecord, QueryError> {
        let what = format!("peer {}", r.0);
        let peer = parse_peer(&what, "peer_id", &r.0)?;
        let addresses = self
            .conn
            .prepare_cached(
                "SELECT a.address FROM peer_addresses a JOIN peers p ON p.id = a.peer \
                 WHERE p.peer_id = ?1 ORDER BY a.last_seen_at DESC, a.address",
            )
            .and_then(|mut s| {
                s.query_map([&r.0], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sqlf(|| format!("read addresses of {what}")))?;
        Ok(PeerRecord {
            peer,
            addresses,
            ln_node_id: r.1,
            first_seen_at: r.2,
            last_seen_at: r.3,
            successes: r.4,
            failures: r.5,
        })
    }
}

type RawPeer = (String, Option<String>, i64, i64, f64, f64);

fn peer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawPeer> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}
