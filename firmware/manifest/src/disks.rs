//! Data disks, the objects we keep for peers on them, and how each disk's
//! space is split between the owner's local copies and hosted objects.

use libp2p_identity::PeerId;
use rusqlite::params;

use crate::db::{
    hash32, is_unique_violation, parse_enum, parse_peer, sql, sqlf, to_i64, to_u64, Manifest,
};
use crate::error::QueryError;
use crate::files::{contract_row, ensure_peer, hex32};
use crate::types::{
    ContractId, DiskAllocation, DiskId, DiskInfo, DiskRecord, DiskState, HostedObject,
    HostedObjectId, HostedState, NewHostedObject, UnixSecs,
};

impl Manifest {
    /// Records a disk as detected, keyed by its file-system UUID; returns its id.
    pub fn upsert_disk(&mut self, d: &DiskInfo) -> Result<DiskId, QueryError> {
        let what = format!("disk {}", d.uuid);
        if d.uuid.is_empty() || d.uuid.len() > 128 {
            return Err(QueryError::InvalidValue {
                field: "uuid",
                reason: format!("{} bytes, must be 1..=128", d.uuid.len()),
            });
        }
        let id: i64 = self
            .conn
            .query_row(
                "INSERT INTO disks (uuid, label, mount_path, total_bytes, free_bytes, reserved_bytes, \
                 state, added_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
                 ON CONFLICT (uuid) DO UPDATE SET label = excluded.label, \
                 mount_path = excluded.mount_path, total_bytes = excluded.total_bytes, \
                 free_bytes = excluded.free_bytes, reserved_bytes = excluded.reserved_bytes, \
                 state = excluded.state, last_seen_at = excluded.last_seen_at RETURNING id",
                params![
                    d.uuid,
                    d.label,
                    d.mount_path,
                    to_i64("total_bytes", d.total_bytes)?,
                    to_i64("free_bytes", d.free_bytes)?,
                    to_i64("reserved_bytes", d.reserved_bytes)?,
                    d.state.as_str(),
                    d.seen_at
                ],
                |r| r.get(0),
            )
            .map_err(sqlf(|| format!("upsert {what}")))?;
        Ok(DiskId(id))
    }

    /// Records that a scrub of the disk finished.
    pub fn set_disk_scrubbed(&mut self, disk: DiskId, at: UnixSecs) -> Result<(), QueryError> {
        let n = self
            .conn
            .execute(
                "UPDATE disks SET last_scrub_at = ?2 WHERE id = ?1",
                params![disk.0, at],
            )
            .map_err(sql("record scrub"))?;
        if n == 0 {
            return Err(QueryError::NotFound {
                what: format!("disk #{}", disk.0),
            });
        }
        Ok(())
    }

    /// All disks ever seen.
    pub fn disks(&self) -> Result<Vec<DiskRecord>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, uuid, label, mount_path, total_bytes, free_bytes, reserved_bytes, state, \
                 added_at, last_seen_at, last_scrub_at FROM disks ORDER BY id",
            )
            .map_err(sql("list disks"))?;
        let raws = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    [
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                    ],
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("list disks"))?;
        raws.into_iter()
            .map(
                |(id, uuid, label, mount_path, n, state, added, seen, scrub)| {
                    let what = format!("disk {uuid}");
                    Ok(DiskRecord {
                        id: DiskId(id),
                        info: DiskInfo {
                            total_bytes: to_u64(&what, "total_bytes", n[0])?,
                            free_bytes: to_u64(&what, "free_bytes", n[1])?,
                            reserved_bytes: to_u64(&what, "reserved_bytes", n[2])?,
                            state: parse_enum(&what, "state", &state, DiskState::parse)?,
                            uuid,
                            label,
                            mount_path,
                            seen_at: seen,
                        },
                        added_at: added,
                        last_scrub_at: scrub,
                    })
                },
            )
            .collect()
    }

    /// Per disk: capacity, free, reserve, bytes of local copies and of hosted objects.
    pub fn disk_allocation(&self) -> Result<Vec<DiskAllocation>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT d.id, d.uuid, d.total_bytes, d.free_bytes, d.reserved_bytes, \
                 (SELECT coalesce(sum(f.size), 0) FROM files f WHERE f.local_disk_id = d.id), \
                 (SELECT coalesce(sum(h.bytes), 0) FROM hosted_objects h \
                  WHERE h.disk_id = d.id AND h.state IN ('receiving', 'stored')) \
                 FROM disks d ORDER BY d.id",
            )
            .map_err(sql("disk allocation"))?;
        let raws = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    [
                        r.get::<_, i64>(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ],
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("disk allocation"))?;
        raws.into_iter()
            .map(|(id, uuid, n)| {
                let what = format!("disk {uuid}");
                Ok(DiskAllocation {
                    disk: DiskId(id),
                    total_bytes: to_u64(&what, "total_bytes", n[0])?,
                    free_bytes: to_u64(&what, "free_bytes", n[1])?,
                    reserved_bytes: to_u64(&what, "reserved_bytes", n[2])?,
                    local_bytes: to_u64(&what, "local bytes", n[3])?,
                    hosted_bytes: to_u64(&what, "hosted bytes", n[4])?,
                    uuid,
                })
            })
            .collect()
    }

    /// Records an object we keep for a peer under a contract.
    pub fn insert_hosted_object(
        &mut self,
        o: &NewHostedObject,
    ) -> Result<HostedObjectId, QueryError> {
        let what = format!("hosted object {} of {}", hex32(&o.root), o.owner);
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin insert_hosted_object"))?;
        let contract = contract_row(&tx, &o.contract)?;
        let owner = ensure_peer(&tx, &o.owner, o.created_at)?;
        let res = tx.execute(
            "INSERT INTO hosted_objects (contract_id, owner, root, disk_id, rel_path, bytes, \
             state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                contract,
                owner,
                &o.root[..],
                o.disk.0,
                o.rel_path,
                to_i64("bytes", o.bytes)?,
                o.state.as_str(),
                o.created_at
            ],
        );
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(QueryError::AlreadyExists { what }),
            Err(e) if crate::db::is_fk_violation(&e) => {
                return Err(QueryError::NotFound {
                    what: format!("disk #{}", o.disk.0),
                })
            }
            Err(e) => {
                return Err(QueryError::Sqlite {
                    what: format!("insert {what}"),
                    source: e,
                })
            }
        }
        let id = HostedObjectId(tx.last_insert_rowid());
        tx.commit().map_err(sqlf(|| format!("commit {what}")))?;
        Ok(id)
    }

    /// Updates a hosted object's state and size (upload finished, released).
    pub fn set_hosted_state(
        &mut self,
        id: HostedObjectId,
        state: HostedState,
        bytes: u64,
    ) -> Result<(), QueryError> {
        let n = self
            .conn
            .execute(
                "UPDATE hosted_objects SET state = ?2, bytes = ?3 WHERE id = ?1",
                params![id.0, state.as_str(), to_i64("bytes", bytes)?],
            )
            .map_err(sql("update hosted object"))?;
        if n == 0 {
            return Err(QueryError::NotFound {
                what: format!("hosted object #{}", id.0),
            });
        }
        Ok(())
    }

    /// Deletes the record of a hosted object once its bytes are gone.
    pub fn remove_hosted_object(&mut self, id: HostedObjectId) -> Result<(), QueryError> {
        let n = self
            .conn
            .execute("DELETE FROM hosted_objects WHERE id = ?1", [id.0])
            .map_err(sql("delete hosted object"))?;
        if n == 0 {
            return Err(QueryError::NotFound {
                what: format!("hosted object #{}", id.0),
            });
        }
        Ok(())
    }

    /// The object `owner` stored with root `root`, as an audit or fetch names it.
    pub fn hosted_object(
        &self,
        owner: &PeerId,
        root: &[u8; 32],
    ) -> Result<Option<HostedObject>, QueryError> {
        let mut v = self.query_hosted(
            "WHERE h.owner = (SELECT id FROM peers WHERE peer_id = ?1) AND h.root = ?2",
            params![owner.to_base58(), &root[..]],
        )?;
        Ok(v.pop())
    }

    /// Objects kept under one contract.
    pub fn hosted_objects_for_contract(
        &self,
        contract: &ContractId,
    ) -> Result<Vec<HostedObject>, QueryError> {
        let cid = contract_row(&self.conn, contract)?;
        self.query_hosted("WHERE h.contract_id = ?1", params![cid])
    }

    /// Objects kept on one disk.
    pub fn hosted_objects_on_disk(&self, disk: DiskId) -> Result<Vec<HostedObject>, QueryError> {
        self.query_hosted("WHERE h.disk_id = ?1", params![disk.0])
    }

    fn query_hosted(
        &self,
        filter: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<HostedObject>, QueryError> {
        let q = format!(
            "SELECT h.id, c.contract_id, p.peer_id, h.root, h.disk_id, h.rel_path, h.bytes, \
             h.state, h.created_at FROM hosted_objects h JOIN contracts c ON c.id = h.contract_id \
             JOIN peers p ON p.id = h.owner \
             {filter} ORDER BY h.id"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&q)
            .map_err(sql("prepare hosted query"))?;
        let raws = stmt
            .query_map(p, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("read hosted objects"))?;
        raws.into_iter()
            .map(
                |(id, contract, owner, root, disk, rel_path, bytes, state, created)| {
                    let what = format!("hosted object #{id}");
                    Ok(HostedObject {
                        id: HostedObjectId(id),
                        object: NewHostedObject {
                            contract: ContractId(hash32(&what, "contract_id", contract)?),
                            owner: parse_peer(&what, "owner", &owner)?,
                            root: hash32(&what, "root", root)?,
                            disk: DiskId(disk),
                            rel_path,
                            bytes: to_u64(&what, "bytes", bytes)?,
                            state: parse_enum(&what, "state", &state, HostedState::parse)?,
                            created_at: created,
                        },
                    })
                },
            )
            .collect()
    }
}
