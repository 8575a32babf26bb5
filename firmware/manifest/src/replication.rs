//! Manifest replication bookkeeping: which peers hold our snapshots (the
//! recovery kit is built from them) and which owners' snapshots we hold.

use libp2p_identity::PeerId;
use rusqlite::{params, OptionalExtension};

use crate::db::{parse_peer, sql, sqlf, to_i64, to_u64, Manifest};
use crate::error::QueryError;
use crate::files::ensure_peer;
use crate::kit::{KitHolder, RecoveryKit, MAX_ADDRESSES, MAX_ADDRESS_LEN, MAX_HOLDERS};
use crate::snapshot::SnapshotInfo;
use crate::types::UnixSecs;

/// A peer that confirmed storing one of our snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHolder {
    /// The holder.
    pub peer: PeerId,
    /// Newest version it confirmed.
    pub version: u64,
    /// When it confirmed it.
    pub stored_at: UnixSecs,
    /// Its known addresses, most recently seen first.
    pub addresses: Vec<String>,
}

/// A snapshot we keep for another owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSnapshot {
    /// Whose.
    pub owner: PeerId,
    /// Its version.
    pub version: u64,
    /// Where the file is (our choice, relative to the data directory).
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// When it arrived.
    pub received_at: UnixSecs,
}

impl Manifest {
    /// Records that `holder` confirmed storing our snapshot `version`; a
    /// late confirmation of an older version never lowers what is recorded.
    pub fn record_snapshot_holder(
        &mut self,
        holder: &PeerId,
        version: u64,
        at: UnixSecs,
    ) -> Result<(), QueryError> {
        let v = to_i64("version", version)?;
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin record_snapshot_holder"))?;
        let peer = ensure_peer(&tx, holder, at)?;
        tx.execute(
            "INSERT INTO snapshot_holders (peer, version, stored_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (peer) DO UPDATE SET \
             stored_at = CASE WHEN excluded.version >= version THEN excluded.stored_at ELSE stored_at END, \
             version = max(version, excluded.version)",
            params![peer, v, at],
        )
        .map_err(sqlf(|| format!("record snapshot holder {holder}")))?;
        tx.commit().map_err(sql("commit snapshot holder"))?;
        Ok(())
    }

    /// Forgets a holder (it lost our snapshot or left).
    pub fn remove_snapshot_holder(&mut self, holder: &PeerId) -> Result<(), QueryError> {
        self.conn
            .execute(
                "DELETE FROM snapshot_holders WHERE peer = (SELECT id FROM peers WHERE peer_id = ?1)",
                [holder.to_base58()],
            )
            .map_err(sqlf(|| format!("remove snapshot holder {holder}")))?;
        Ok(())
    }

    /// Holders of our snapshots, newest version first.
    pub fn snapshot_holders(&self) -> Result<Vec<SnapshotHolder>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.peer_id, h.version, h.stored_at FROM snapshot_holders h \
                 JOIN peers p ON p.id = h.peer ORDER BY h.version DESC, h.stored_at DESC, p.peer_id",
            )
            .map_err(sql("list snapshot holders"))?;
        let raws = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("list snapshot holders"))?;
        let mut out = Vec::with_capacity(raws.len());
        for (peer, version, stored_at) in raws {
            let what = format!("snapshot holder {peer}");
            let peer = parse_peer(&what, "peer", &peer)?;
            let addresses = self.peer(&peer)?.map(|p| p.addresses).unwrap_or_default();
            out.push(SnapshotHolder {
                peer,
                version: to_u64(&what, "version", version)?,
                stored_at,
                addresses,
            });
        }
        Ok(out)
    }

    /// The recovery kit as of now: the newest snapshot version and the holders
    /// with the newest copies (at most [`MAX_HOLDERS`], each with its most
    /// recently seen addresses that fit the kit).
    pub fn recovery_kit(&self, owner: PeerId, now: UnixSecs) -> Result<RecoveryKit, QueryError> {
        let holders = self
            .snapshot_holders()?
            .into_iter()
            .take(MAX_HOLDERS)
            .map(|h| KitHolder {
                peer: h.peer,
                addresses: h
                    .addresses
                    .into_iter()
                    .filter(|a| a.len() <= MAX_ADDRESS_LEN)
                    .take(MAX_ADDRESSES)
                    .collect(),
            })
            .collect();
        Ok(RecoveryKit {
            owner,
            latest_version: self.snapshot_version()?,
            created_at: now,
            holders,
        })
    }

    /// Records a snapshot we now hold for its owner (checked with
    /// [`crate::inspect_snapshot`] first). Refuses a version not newer than the
    /// one held, so a replayed old snapshot cannot displace the owner's newest.
    pub fn record_held_snapshot(
        &mut self,
        info: &SnapshotInfo,
        path: &str,
        at: UnixSecs,
    ) -> Result<(), QueryError> {
        let what = format!("snapshot of {}", info.owner);
        if let Some(held) = self.held_snapshot(&info.owner)? {
            if held.version >= info.version {
                return Err(QueryError::Stale {
                    what,
                    offered: info.version,
                    current: held.version,
                });
            }
        }
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin record_held_snapshot"))?;
        let owner = ensure_peer(&tx, &info.owner, at)?;
        tx.execute(
            "INSERT INTO held_snapshots (owner, version, path, bytes, received_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (owner) DO UPDATE SET version = excluded.version, path = excluded.path, \
             bytes = excluded.bytes, received_at = excluded.received_at",
            params![owner, to_i64("version", info.version)?, path, to_i64("bytes", info.snapshot_len)?, at],
        )
        .map_err(sqlf(|| format!("record {what}")))?;
        tx.commit().map_err(sqlf(|| format!("commit {what}")))?;
        Ok(())
    }

    /// The snapshot we hold for `owner`, if any (what `/bunker/manifest/1` serves).
    pub fn held_snapshot(&self, owner: &PeerId) -> Result<Option<HeldSnapshot>, QueryError> {
        let raw = self
            .conn
            .prepare_cached(
                "SELECT h.version, h.path, h.bytes, h.received_at FROM held_snapshots h \
                 JOIN peers p ON p.id = h.owner WHERE p.peer_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([owner.to_base58()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .optional()
            })
            .map_err(sqlf(|| format!("read held snapshot of {owner}")))?;
        let Some((version, path, bytes, received_at)) = raw else {
            return Ok(None);
        };
        let what = format!("held snapshot of {owner}");
        Ok(Some(HeldSnapshot {
            owner: *owner,
            version: to_u64(&what, "version", version)?,
            path,
            bytes: to_u64(&what, "bytes", bytes)?,
            received_at,
        }))
    }
}
