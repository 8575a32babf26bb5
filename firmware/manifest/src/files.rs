//! Files, their folders, their replicas and the audits of those replicas.

use std::collections::HashMap;

use libp2p_identity::PeerId;
use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::db::{
    hash32, is_unique_violation, parse_enum, parse_peer, sql, sqlf, to_i64, to_u64, Manifest,
};
use crate::error::QueryError;
use crate::path::{FilePath, FolderPath};
use crate::types::{
    AuditId, AuditKind, AuditOutcome, AuditRecord, AuditReport, ContractId, DiskId, DueReplica,
    FileEntry, FileId, FileRecord, FolderListing, LocalCopy, NewContract, NewFile, NewReplica, Replica,
    ReplicaId, ReplicaState, UnixSecs,
};

/// Columns of a replica row joined with its contract id, in `replica_from_row` order.
const REPLICA_COLUMNS: &str = "r.id, r.file_id, r.replica_index, p.peer_id, r.root, \
     r.stored_size, c.contract_id, r.state, r.next_audit_at, r.last_audit_at, \
     r.last_full_check_at, r.consecutive_failures, r.created_at";

/// Joins giving a replica row its host's PeerId and its contract's id.
const REPLICA_JOINS: &str =
    "JOIN peers p ON p.id = r.host LEFT JOIN contracts c ON c.id = r.contract_id";

/// Per-transaction memo of folder ids and known peers, so a bulk insert does
/// not repeat the same lookups a million times.
#[derive(Default)]
struct InsertCache {
    folders: HashMap<String, i64>,
    peers: HashMap<PeerId, i64>,
}

impl Manifest {
    /// Records one file and its replicas atomically. Fails with
    /// [`QueryError::AlreadyExists`] when the path is taken: replacing a file
    /// is a remove (which hands back the replicas to release) then a put.
    pub fn put_file(
        &mut self,
        file: &NewFile,
        replicas: &[NewReplica],
    ) -> Result<FileId, QueryError> {
        let tx = self.conn.transaction().map_err(sql("begin put_file"))?;
        let mut cache = InsertCache::default();
        let id = insert_file(&tx, &mut cache, file, replicas)?;
        tx.commit()
            .map_err(sqlf(|| format!("commit file {}", file.path)))?;
        Ok(id)
    }

    /// Records a newly placed file in one transaction: the contracts its
    /// replicas are held under, the file, its replicas. A crash leaves all
    /// of it or none (never a contract the engine does not know to release).
    pub fn put_file_with_contracts(
        &mut self,
        file: &NewFile,
        contracts: &[NewContract],
        replicas: &[NewReplica],
    ) -> Result<FileId, QueryError> {
        let tx = self.conn.transaction().map_err(sql("begin put_file"))?;
        for c in contracts {
            crate::contracts::insert_contract_tx(&tx, c)?;
        }
        let mut cache = InsertCache::default();
        let id = insert_file(&tx, &mut cache, file, replicas)?;
        tx.commit()
            .map_err(sqlf(|| format!("commit file {}", file.path)))?;
        Ok(id)
    }

    /// Adds a replica and the contract covering it in one transaction (repair,
    /// raised redundancy).
    pub fn add_replica_with_contract(
        &mut self,
        file: FileId,
        contract: &NewContract,
        replica: &NewReplica,
    ) -> Result<ReplicaId, QueryError> {
        let tx = self.conn.transaction().map_err(sql("begin add_replica"))?;
        crate::contracts::insert_contract_tx(&tx, contract)?;
        let mut cache = InsertCache::default();
        let id = insert_replica(&tx, &mut cache, file, replica, &|| {
            format!("file #{}", file.0)
        })?;
        tx.commit().map_err(sql("commit add_replica"))?;
        Ok(id)
    }

    /// Records many files in one transaction (import, first scan): all or none.
    pub fn put_files<'a, I>(&mut self, files: I) -> Result<Vec<FileId>, QueryError>
    where
        I: IntoIterator<Item = (&'a NewFile, &'a [NewReplica])>,
    {
        let tx = self.conn.transaction().map_err(sql("begin put_files"))?;
        let mut cache = InsertCache::default();
        let mut ids = Vec::new();
        for (file, replicas) in files {
            ids.push(insert_file(&tx, &mut cache, file, replicas)?);
        }
        tx.commit().map_err(sql("commit put_files"))?;
        Ok(ids)
    }

    /// The file at `path`, if recorded.
    pub fn file(&self, path: &FilePath) -> Result<Option<FileRecord>, QueryError> {
        let what = format!("file {path}");
        let Some(folder_id) = folder_id(&self.conn, path.folder(), &what)? else {
            return Ok(None);
        };
        let q = format!("SELECT {FILE_COLUMNS} FROM files f {FILE_JOINS} WHERE f.folder_id = ?1 AND f.name = ?2");
        let raw = self
            .conn
            .prepare_cached(&q)
            .and_then(|mut s| s.query_row(params![folder_id, path.name()], raw_file).optional())
            .map_err(sqlf(|| format!("read {what}")))?;
        raw.map(finish_file).transpose()
    }

    /// The file with row id `id` (the audit, full-check and repair workers
    /// start from replica rows, which name their file by row id).
    pub fn file_by_id(&self, id: FileId) -> Result<Option<FileRecord>, QueryError> {
        let q = format!("SELECT {FILE_COLUMNS} FROM files f {FILE_JOINS} WHERE f.id = ?1");
        let raw = self
            .conn
            .prepare_cached(&q)
            .and_then(|mut s| s.query_row([id.0], raw_file).optional())
            .map_err(sqlf(|| format!("read file #{}", id.0)))?;
        raw.map(finish_file).transpose()
    }

    /// Changes how a file is kept: whether a local copy is wanted and how
    /// many remote replicas. The engine places or releases replicas to match.
    pub fn set_file_policy(
        &mut self,
        id: FileId,
        keep_local: bool,
        redundancy: u8,
        at: UnixSecs,
    ) -> Result<(), QueryError> {
        let what = format!("file #{}", id.0);
        let n = self
            .conn
            .execute(
                "UPDATE files SET keep_local = ?2, redundancy = ?3, modified_at = max(modified_at, ?4) \
                 WHERE id = ?1",
                params![id.0, keep_local, redundancy, at],
            )
            .map_err(sqlf(|| format!("set policy of {what}")))?;
        if n == 0 {
            return Err(QueryError::NotFound { what });
        }
        Ok(())
    }

    /// How many files there are and their plaintext bytes in all (dashboard).
    pub fn file_totals(&self) -> Result<(u64, u64), QueryError> {
        let (n, bytes): (i64, i64) = self
            .conn
            .query_row("SELECT count(*), coalesce(sum(size), 0) FROM files", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql("count files"))?;
        Ok((to_u64("files", "count", n)?, to_u64("files", "size", bytes)?))
    }

    /// Audits since `since`: (passed, total) (dashboard).
    pub fn audit_totals_since(&self, since: UnixSecs) -> Result<(u64, u64), QueryError> {
        let (passed, total): (i64, i64) = self
            .conn
            .query_row(
                "SELECT coalesce(sum(outcome = 'passed'), 0), count(*) FROM audits WHERE at >= ?1",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql("count audits"))?;
        Ok((to_u64("audits", "passed", passed)?, to_u64("audits", "count", total)?))
    }

    /// Sub-folders and files directly inside `folder`, both sorted by name.
    /// An unknown folder lists as empty, like an empty directory.
    pub fn list_folder(&self, folder: &FolderPath) -> Result<FolderListing, QueryError> {
        let what = format!("folder {folder}");
        let Some(fid) = folder_id(&self.conn, folder.as_str(), &what)? else {
            return Ok(FolderListing::default());
        };
        let mut listing = FolderListing::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM folders WHERE parent_id = ?1 ORDER BY name")
            .map_err(sqlf(|| format!("list {what}")))?;
        let names = stmt
            .query_map([fid], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sqlf(|| format!("list {what}")))?;
        listing.folders = names;
        let mut stmt = self
            .conn
            .prepare_cached(LIST_FILES_QUERY)
            .map_err(sqlf(|| format!("list {what}")))?;
        let mut rows = stmt.query([fid]).map_err(sqlf(|| format!("list {what}")))?;
        while let Some(r) = rows.next().map_err(sqlf(|| format!("list {what}")))? {
            let entry = (|| -> rusqlite::Result<_> {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })()
            .map_err(sqlf(|| format!("list {what}")))?;
            let (id, name, size, modified_at, keep_local, has_local, red, active) = entry;
            listing.files.push(FileEntry {
                id: FileId(id),
                size: to_u64(&name, "size", size)?,
                redundancy: u8::try_from(red).map_err(|_| corrupt(&name, "redundancy", red))?,
                name,
                modified_at,
                keep_local,
                has_local,
                active_replicas: active as u32,
            });
        }
        Ok(listing)
    }

    /// Removes the file at `path` with its replicas and their audit history,
    /// and returns the replicas so the engine can release their contracts.
    pub fn remove_file(&mut self, path: &FilePath) -> Result<Vec<Replica>, QueryError> {
        let what = format!("file {path}");
        let file = self
            .file(path)?
            .ok_or_else(|| QueryError::NotFound { what: what.clone() })?;
        let replicas = self.replicas_of(file.id)?;
        let tx = self.conn.transaction().map_err(sql("begin remove_file"))?;
        tx.execute("DELETE FROM files WHERE id = ?1", [file.id.0])
            .map_err(sqlf(|| format!("delete {what}")))?;
        tx.commit()
            .map_err(sqlf(|| format!("commit delete {what}")))?;
        Ok(replicas)
    }

    /// Moves a file to another path (rename or move between folders); the
    /// target folder is created if needed. Fails if the target path is taken.
    pub fn rename_file(&mut self, from: &FilePath, to: &FilePath) -> Result<(), QueryError> {
        let what = format!("file {from}");
        let file = self
            .file(from)?
            .ok_or_else(|| QueryError::NotFound { what: what.clone() })?;
        let tx = self.conn.transaction().map_err(sql("begin rename_file"))?;
        let mut cache = InsertCache::default();
        let folder = ensure_folder(&tx, &mut cache, &FolderPath::parse(to.folder())?)?;
        match tx.execute(
            "UPDATE files SET folder_id = ?2, name = ?3 WHERE id = ?1",
            params![file.id.0, folder, to.name()],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(QueryError::AlreadyExists {
                    what: format!("file {to}"),
                })
            }
            Err(e) => {
                return Err(QueryError::Sqlite {
                    what: format!("rename {what} to {to}"),
                    source: e,
                })
            }
        }
        tx.commit()
            .map_err(sqlf(|| format!("commit rename of {what}")))?;
        Ok(())
    }

    /// Files with fewer active replicas than their redundancy asks for, in id
    /// order after `after` (page with the last id returned). A scan, for the
    /// repair worker's start-up reconciliation; during normal work the engine
    /// knows which file lost a replica.
    pub fn under_replicated_files(
        &self,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<(FileId, u8, u32)>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT f.id, f.redundancy, (SELECT count(*) FROM replicas r \
                 WHERE r.file_id = f.id AND r.state = 'active') AS active \
                 FROM files f WHERE f.id > ?1 AND active < f.redundancy ORDER BY f.id LIMIT ?2",
            )
            .map_err(sql("prepare under-replicated query"))?;
        let rows = stmt
            .query_map(params![after.map_or(0, |f| f.0), limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("query under-replicated files"))?;
        rows.into_iter()
            .map(|(id, red, active)| {
                let what = format!("file #{id}");
                Ok((
                    FileId(id),
                    u8::try_from(red).map_err(|_| corrupt(&what, "redundancy", red))?,
                    active as u32,
                ))
            })
            .collect()
    }

    /// Records (or clears) where the local copy of a file lives.
    pub fn set_local_copy(
        &mut self,
        file: FileId,
        local: Option<&LocalCopy>,
    ) -> Result<(), QueryError> {
        let what = format!("file #{}", file.0);
        let n = self
            .conn
            .execute(
                "UPDATE files SET local_disk_id = ?2, local_path = ?3 WHERE id = ?1",
                params![
                    file.0,
                    local.map(|l| l.disk.0),
                    local.map(|l| l.rel_path.as_str())
                ],
            )
            .map_err(|e| {
                fk_or_sql(
                    e,
                    "disk of the local copy",
                    format!("set local copy of {what}"),
                )
            })?;
        if n == 0 {
            return Err(QueryError::NotFound { what });
        }
        Ok(())
    }

    /// Every replica of a file, by index.
    pub fn replicas_of(&self, file: FileId) -> Result<Vec<Replica>, QueryError> {
        let q = format!(
            "SELECT {REPLICA_COLUMNS} FROM replicas r {REPLICA_JOINS} \
             WHERE r.file_id = ?1 ORDER BY r.replica_index"
        );
        query_replicas(self, &q, [file.0], &format!("replicas of file #{}", file.0))
    }

    /// Every replica held by `host`, for diversity checks and when a peer disappears.
    pub fn replicas_on_host(&self, host: &PeerId) -> Result<Vec<Replica>, QueryError> {
        let q = format!(
            "SELECT {REPLICA_COLUMNS} FROM replicas r {REPLICA_JOINS} \
             WHERE r.host = (SELECT id FROM peers WHERE peer_id = ?1) ORDER BY r.id"
        );
        query_replicas(self, &q, [host.to_base58()], &format!("replicas on {host}"))
    }

    /// One replica.
    pub fn replica(&self, id: ReplicaId) -> Result<Replica, QueryError> {
        let q = format!("SELECT {REPLICA_COLUMNS} FROM replicas r {REPLICA_JOINS} WHERE r.id = ?1");
        let what = format!("replica #{}", id.0);
        query_replicas(self, &q, [id.0], &what)?
            .pop()
            .ok_or(QueryError::NotFound { what })
    }

    /// Adds a replica to an existing file (repair, raised redundancy).
    pub fn add_replica(
        &mut self,
        file: FileId,
        replica: &NewReplica,
    ) -> Result<ReplicaId, QueryError> {
        let tx = self.conn.transaction().map_err(sql("begin add_replica"))?;
        let mut cache = InsertCache::default();
        let id = insert_replica(&tx, &mut cache, file, replica, &|| {
            format!("file #{}", file.0)
        })?;
        tx.commit().map_err(sql("commit add_replica"))?;
        Ok(id)
    }

    /// Moves a replica to `state` (active after upload, lost after K failures, released).
    pub fn set_replica_state(
        &mut self,
        id: ReplicaId,
        state: ReplicaState,
    ) -> Result<(), QueryError> {
        let what = format!("replica #{}", id.0);
        let n = self
            .conn
            .execute(
                "UPDATE replicas SET state = ?2 WHERE id = ?1",
                params![id.0, state.as_str()],
            )
            .map_err(sqlf(|| format!("set state of {what}")))?;
        if n == 0 {
            return Err(QueryError::NotFound { what });
        }
        Ok(())
    }

    /// Attaches the contract that now covers a replica.
    pub fn set_replica_contract(
        &mut self,
        id: ReplicaId,
        contract: &ContractId,
    ) -> Result<(), QueryError> {
        let what = format!("replica #{}", id.0);
        let cid = contract_row(&self.conn, contract)?;
        let n = self
            .conn
            .execute(
                "UPDATE replicas SET contract_id = ?2 WHERE id = ?1",
                params![id.0, cid],
            )
            .map_err(sqlf(|| format!("set contract of {what}")))?;
        if n == 0 {
            return Err(QueryError::NotFound { what });
        }
        Ok(())
    }

    /// Active replicas whose audit is due at `now`, oldest due first, at most `limit`.
    /// Served by the partial index `replicas_due`, not a scan.
    pub fn replicas_due_for_audit(
        &self,
        now: UnixSecs,
        limit: u32,
    ) -> Result<Vec<DueReplica>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(DUE_QUERY)
            .map_err(sql("prepare due-audit query"))?;
        let mut rows = stmt
            .query(params![now, limit])
            .map_err(sql("query due audits"))?;
        let mut out = Vec::new();
        // Few hosts, many replicas: parse each PeerId once per call.
        let mut hosts: HashMap<i64, PeerId> = HashMap::new();
        while let Some(r) = rows.next().map_err(sql("read due audits"))? {
            let raw = (|| -> rusqlite::Result<_> {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<Vec<u8>>>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, i64>(10)?,
                ))
            })()
            .map_err(sql("read due audits"))?;
            let (id, file, index, host, root, size, seg, contract, failures, due, host_row) = raw;
            let what = format!("replica #{id}");
            let host = match hosts.get(&host_row) {
                Some(p) => *p,
                None => {
                    let p = parse_peer(&what, "host", &host)?;
                    hosts.insert(host_row, p);
                    p
                }
            };
            out.push(DueReplica {
                replica: ReplicaId(id),
                file: FileId(file),
                index: u32::try_from(index).map_err(|_| corrupt(&what, "replica_index", index))?,
                host,
                root: hash32(&what, "root", root)?,
                stored_size: to_u64(&what, "stored_size", size)?,
                segment_size: u32::try_from(seg)
                    .map_err(|_| corrupt(&what, "segment_size", seg))?,
                contract: contract
                    .map(|c| hash32(&what, "contract_id", c).map(ContractId))
                    .transpose()?,
                consecutive_failures: failures as u32,
                next_audit_at: due,
            });
        }
        Ok(out)
    }

    /// Active replicas whose last whole-object check (or placement, if never
    /// checked) is at or before `before`, longest unchecked first, at most
    /// `limit`. A scan of the active replicas: the full-check worker runs it
    /// on its long interval only.
    pub fn replicas_due_for_full_check(
        &self,
        before: UnixSecs,
        limit: u32,
    ) -> Result<Vec<Replica>, QueryError> {
        let q = format!(
            "SELECT {REPLICA_COLUMNS} FROM replicas r {REPLICA_JOINS} \
             WHERE r.state = 'active' AND coalesce(r.last_full_check_at, r.created_at) <= ?1 \
             ORDER BY coalesce(r.last_full_check_at, r.created_at), r.id LIMIT ?2"
        );
        query_replicas(self, &q, params![before, limit], "replicas due for a full check")
    }

    /// Records an audit and updates the replica in one transaction: a pass
    /// resets the consecutive-failure count, anything else increments it.
    /// Returns the count after this audit, which the engine compares with K.
    pub fn record_audit(&mut self, report: &AuditReport) -> Result<u32, QueryError> {
        let tx = self.conn.transaction().map_err(sql("begin record_audit"))?;
        let failures = apply_audit(&tx, report)?;
        tx.commit().map_err(sql("commit audit"))?;
        Ok(failures)
    }

    /// Records many audits in one transaction (one disk sync instead of one
    /// per audit: thousands of hourly audits must not mean thousands of
    /// fsyncs on a USB disk). All or none; returns each replica's count of
    /// consecutive failures after its audit, in input order.
    pub fn record_audits(&mut self, reports: &[AuditReport]) -> Result<Vec<u32>, QueryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin record_audits"))?;
        let mut out = Vec::with_capacity(reports.len());
        for report in reports {
            out.push(apply_audit(&tx, report)?);
        }
        tx.commit().map_err(sql("commit audits"))?;
        Ok(out)
    }

    /// Deletes passed audits older than `before` and returns how many went.
    /// Failures are kept as evidence; each replica's schedule and failure
    /// count live on the replica row, so nothing else depends on old passes.
    pub fn prune_passed_audits(&mut self, before: UnixSecs) -> Result<u64, QueryError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM audits WHERE at < ?1 AND outcome = 'passed'",
                [before],
            )
            .map_err(sql("prune audits"))?;
        Ok(n as u64)
    }

    /// Audits of one replica, newest first.
    pub fn audits_of_replica(
        &self,
        replica: ReplicaId,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, QueryError> {
        self.query_audits(
            "SELECT id, replica_id, at, kind, segment, outcome, latency_ms, detail FROM audits \
             WHERE replica_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
            params![replica.0, limit],
        )
    }

    /// The most recent audits of all replicas, newest first (admin page).
    pub fn recent_audits(&self, limit: u32) -> Result<Vec<AuditRecord>, QueryError> {
        self.query_audits(
            "SELECT id, replica_id, at, kind, segment, outcome, latency_ms, detail FROM audits \
             ORDER BY at DESC, id DESC LIMIT ?1",
            params![limit],
        )
    }

    fn query_audits(
        &self,
        q: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<AuditRecord>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(q)
            .map_err(sql("prepare audit query"))?;
        let mut rows = stmt.query(p).map_err(sql("query audits"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql("read audits"))? {
            let raw = (|| -> rusqlite::Result<_> {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })()
            .map_err(sql("read audits"))?;
            let (id, replica, at, kind, segment, outcome, latency, detail) = raw;
            let what = format!("audit #{id}");
            out.push(AuditRecord {
                id: AuditId(id),
                replica: ReplicaId(replica),
                at,
                kind: parse_enum(&what, "kind", &kind, AuditKind::parse)?,
                segment: segment.map(|s| to_u64(&what, "segment", s)).transpose()?,
                outcome: parse_enum(&what, "outcome", &outcome, AuditOutcome::parse)?,
                latency_ms: to_u64(&what, "latency_ms", latency)?,
                detail,
            });
        }
        Ok(out)
    }
}

/// Files of one folder with their active replica count, kept as a constant so a test can EXPLAIN it.
const LIST_FILES_QUERY: &str = "SELECT f.id, f.name, f.size, f.modified_at, f.keep_local, \
     f.local_disk_id IS NOT NULL, f.redundancy, \
     (SELECT count(*) FROM replicas r WHERE r.file_id = f.id AND r.state = 'active') \
     FROM files f WHERE f.folder_id = ?1 ORDER BY f.name";

/// Columns of a file row with its folder's path, in `raw_file` order.
const FILE_COLUMNS: &str = "f.id, fo.path, f.name, f.object_id, f.size, f.plaintext_blake3, \
     f.segment_size, f.keep_local, f.redundancy, f.local_disk_id, f.local_path, f.created_at, \
     f.modified_at";

const FILE_JOINS: &str = "JOIN folders fo ON fo.id = f.folder_id";

struct RawFile {
    id: i64,
    folder: String,
    name: String,
    object_id: Option<Vec<u8>>,
    size: i64,
    b3: Vec<u8>,
    seg: i64,
    keep_local: bool,
    red: i64,
    disk: Option<i64>,
    local_path: Option<String>,
    created: i64,
    modified: i64,
}

fn raw_file(r: &Row<'_>) -> rusqlite::Result<RawFile> {
    Ok(RawFile {
        id: r.get(0)?,
        folder: r.get(1)?,
        name: r.get(2)?,
        object_id: r.get(3)?,
        size: r.get(4)?,
        b3: r.get(5)?,
        seg: r.get(6)?,
        keep_local: r.get(7)?,
        red: r.get(8)?,
        disk: r.get(9)?,
        local_path: r.get(10)?,
        created: r.get(11)?,
        modified: r.get(12)?,
    })
}

fn finish_file(r: RawFile) -> Result<FileRecord, QueryError> {
    let path = if r.folder == "/" {
        format!("/{}", r.name)
    } else {
        format!("{}/{}", r.folder, r.name)
    };
    let what = format!("file {path}");
    let object_id = r
        .object_id
        .as_deref()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(bunker_core::FileId)
        .ok_or_else(|| QueryError::Corrupt {
            what: what.clone(),
            column: "object_id",
            reason: "missing or not 16 bytes".into(),
        })?;
    let local = match (r.disk, r.local_path) {
        (Some(d), Some(p)) => Some(LocalCopy {
            disk: DiskId(d),
            rel_path: p,
        }),
        _ => None,
    };
    Ok(FileRecord {
        id: FileId(r.id),
        object_id,
        size: to_u64(&what, "size", r.size)?,
        plaintext_blake3: hash32(&what, "plaintext_blake3", r.b3)?,
        segment_size: u32::try_from(r.seg).map_err(|_| corrupt(&what, "segment_size", r.seg))?,
        keep_local: r.keep_local,
        redundancy: u8::try_from(r.red).map_err(|_| corrupt(&what, "redundancy", r.red))?,
        local,
        created_at: r.created,
        modified_at: r.modified,
        path,
    })
}

/// The due-audit query, kept as a constant so a test can EXPLAIN it.
pub(crate) const DUE_QUERY: &str = "SELECT r.id, r.file_id, r.replica_index, p.peer_id, \
     r.root, r.stored_size, r.segment_size, c.contract_id, r.consecutive_failures, r.next_audit_at, \
     r.host \
     FROM replicas r INDEXED BY replicas_due \
     JOIN peers p ON p.id = r.host \
     LEFT JOIN contracts c ON c.id = r.contract_id \
     WHERE r.state = 'active' AND r.next_audit_at <= ?1 \
     ORDER BY r.next_audit_at LIMIT ?2";

/// One audit inside the caller's transaction; see [`Manifest::record_audit`].
fn apply_audit(tx: &Transaction<'_>, report: &AuditReport) -> Result<u32, QueryError> {
    let what = || format!("replica #{}", report.replica.0);
    let latency = to_i64("latency_ms", report.latency_ms)?;
    let segment = report.segment.map(|s| to_i64("segment", s)).transpose()?;
    let failures: Option<i64> = tx
        .prepare_cached("SELECT consecutive_failures FROM replicas WHERE id = ?1")
        .and_then(|mut s| s.query_row([report.replica.0], |r| r.get(0)).optional())
        .map_err(sqlf(|| format!("read {}", what())))?;
    let Some(failures) = failures else {
        return Err(QueryError::NotFound { what: what() });
    };
    let failures = if report.outcome.is_pass() {
        0
    } else {
        failures + 1
    };
    tx.prepare_cached(
        "INSERT INTO audits (replica_id, at, kind, segment, outcome, latency_ms, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            report.replica.0,
            report.at,
            report.kind.as_str(),
            segment,
            report.outcome.as_str(),
            latency,
            report.detail
        ])
    })
    .map_err(sqlf(|| format!("insert audit of {}", what())))?;
    let full = matches!(report.kind, AuditKind::Full);
    tx.prepare_cached(
        "UPDATE replicas SET consecutive_failures = ?2, \
         last_audit_at = CASE WHEN ?3 THEN last_audit_at ELSE ?4 END, \
         last_full_check_at = CASE WHEN ?3 THEN ?4 ELSE last_full_check_at END, \
         next_audit_at = coalesce(?5, next_audit_at) WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            report.replica.0,
            failures,
            full,
            report.at,
            report.next_audit_at
        ])
    })
    .map_err(sqlf(|| format!("update {} after audit", what())))?;
    Ok(failures as u32)
}

fn corrupt(what: &str, column: &'static str, v: i64) -> QueryError {
    QueryError::Corrupt {
        what: what.to_owned(),
        column,
        reason: format!("value {v} out of range"),
    }
}

fn fk_or_sql(e: rusqlite::Error, referenced: &str, what: String) -> QueryError {
    if crate::db::is_fk_violation(&e) {
        QueryError::NotFound {
            what: referenced.to_owned(),
        }
    } else {
        QueryError::Sqlite { what, source: e }
    }
}

pub(crate) fn folder_id(
    conn: &rusqlite::Connection,
    folder: &str,
    what: &str,
) -> Result<Option<i64>, QueryError> {
    conn.prepare_cached("SELECT id FROM folders WHERE path = ?1")
        .and_then(|mut s| s.query_row([folder], |r| r.get(0)).optional())
        .map_err(sqlf(|| format!("look up folder of {what}")))
}

pub(crate) fn contract_row(
    conn: &rusqlite::Connection,
    id: &ContractId,
) -> Result<i64, QueryError> {
    conn.prepare_cached("SELECT id FROM contracts WHERE contract_id = ?1")
        .and_then(|mut s| s.query_row([&id.0[..]], |r| r.get(0)).optional())
        .map_err(sql("look up contract"))?
        .ok_or_else(|| QueryError::NotFound {
            what: format!("contract {}", hex32(&id.0)),
        })
}

pub(crate) fn hex32(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Makes sure a peer row exists so replicas and contracts can reference it; returns its row id.
pub(crate) fn ensure_peer(
    tx: &Transaction<'_>,
    peer: &PeerId,
    at: UnixSecs,
) -> Result<i64, QueryError> {
    tx.prepare_cached(
        "INSERT INTO peers (peer_id, first_seen_at, last_seen_at) VALUES (?1, ?2, ?2) \
         ON CONFLICT (peer_id) DO UPDATE SET peer_id = excluded.peer_id RETURNING id",
    )
    .and_then(|mut s| s.query_row(params![peer.to_base58(), at], |r| r.get(0)))
    .map_err(sqlf(|| format!("record peer {peer}")))
}

fn ensure_folder(
    tx: &Transaction<'_>,
    cache: &mut InsertCache,
    folder: &FolderPath,
) -> Result<i64, QueryError> {
    if let Some(id) = cache.folders.get(folder.as_str()) {
        return Ok(*id);
    }
    let what = format!("folder {folder}");
    let id = match folder_id(tx, folder.as_str(), &what)? {
        Some(id) => id,
        None => {
            // The root always exists (created by the schema), so this recursion ends.
            let (parent, name) = folder
                .parent_and_name()
                .ok_or_else(|| QueryError::Corrupt {
                    what: "folder /".into(),
                    column: "path",
                    reason: "root folder row is missing".into(),
                })?;
            let parent_id = ensure_folder(tx, cache, &parent)?;
            tx.prepare_cached("INSERT INTO folders (parent_id, path, name) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![parent_id, folder.as_str(), name]))
                .map_err(sqlf(|| format!("create {what}")))?;
            tx.last_insert_rowid()
        }
    };
    cache.folders.insert(folder.as_str().to_owned(), id);
    Ok(id)
}

fn insert_file(
    tx: &Transaction<'_>,
    cache: &mut InsertCache,
    file: &NewFile,
    replicas: &[NewReplica],
) -> Result<FileId, QueryError> {
    let what = || format!("file {}", file.path);
    let folder_id = match cache.folders.get(file.path.folder()) {
        Some(id) => *id,
        None => ensure_folder(tx, cache, &FolderPath::parse(file.path.folder())?)?,
    };
    if file.segment_size == 0 {
        return Err(QueryError::InvalidValue {
            field: "segment_size",
            reason: "must be > 0".into(),
        });
    }
    let size = to_i64("size", file.size)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO files (folder_id, name, size, plaintext_blake3, segment_size, keep_local, \
             redundancy, local_disk_id, local_path, created_at, modified_at, object_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .and_then(|mut s| {
            s.execute(params![
                folder_id,
                file.path.name(),
                size,
                &file.plaintext_blake3[..],
                file.segment_size,
                file.keep_local,
                file.redundancy,
                file.local.as_ref().map(|l| l.disk.0),
                file.local.as_ref().map(|l| l.rel_path.as_str()),
                file.created_at,
                file.modified_at,
                &file.object_id.as_bytes()[..]
            ])
        });
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) && e.to_string().contains("object_id") => {
            return Err(QueryError::AlreadyExists {
                what: format!("object id {} (of {})", file.object_id, what()),
            })
        }
        Err(e) if is_unique_violation(&e) => {
            return Err(QueryError::AlreadyExists { what: what() })
        }
        Err(e) => {
            return Err(fk_or_sql(
                e,
                "disk of the local copy",
                format!("insert {}", what()),
            ))
        }
    }
    let id = FileId(tx.last_insert_rowid());
    for replica in replicas {
        insert_replica(tx, cache, id, replica, &what)?;
    }
    Ok(id)
}

fn insert_replica(
    tx: &Transaction<'_>,
    cache: &mut InsertCache,
    file: FileId,
    replica: &NewReplica,
    file_what: &dyn Fn() -> String,
) -> Result<ReplicaId, QueryError> {
    let host = match cache.peers.get(&replica.host) {
        Some(id) => *id,
        None => {
            let id = ensure_peer(tx, &replica.host, replica.created_at)?;
            cache.peers.insert(replica.host, id);
            id
        }
    };
    let contract = replica
        .contract
        .as_ref()
        .map(|c| contract_row(tx, c))
        .transpose()?;
    let stored = to_i64("stored_size", replica.stored_size)?;
    let res = tx
        .prepare_cached(
            "INSERT INTO replicas (file_id, replica_index, host, root, stored_size, \
             segment_size, contract_id, state, next_audit_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, \
             coalesce((SELECT segment_size FROM files WHERE id = ?1), 1), \
             ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                file.0,
                replica.index,
                host,
                &replica.root[..],
                stored,
                contract,
                replica.state.as_str(),
                replica.next_audit_at,
                replica.created_at
            ])
        });
    match res {
        Ok(_) => Ok(ReplicaId(tx.last_insert_rowid())),
        Err(e) if is_unique_violation(&e) => Err(QueryError::AlreadyExists {
            what: format!("replica {} of {}", replica.index, file_what()),
        }),
        Err(e) => Err(fk_or_sql(
            e,
            &file_what(),
            format!("insert replica of {}", file_what()),
        )),
    }
}

fn query_replicas(
    m: &Manifest,
    q: &str,
    p: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<Replica>, QueryError> {
    let mut stmt = m
        .conn
        .prepare_cached(q)
        .map_err(sqlf(|| format!("prepare {what}")))?;
    let mut rows = stmt.query(p).map_err(sqlf(|| format!("query {what}")))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sqlf(|| format!("read {what}")))? {
        out.push(replica_from_row(r).map_err(sqlf(|| format!("read {what}")))??);
    }
    Ok(out)
}

fn replica_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Replica, QueryError>> {
    let id: i64 = r.get(0)?;
    let file: i64 = r.get(1)?;
    let index: i64 = r.get(2)?;
    let host: String = r.get(3)?;
    let root: Vec<u8> = r.get(4)?;
    let size: i64 = r.get(5)?;
    let contract: Option<Vec<u8>> = r.get(6)?;
    let state: String = r.get(7)?;
    let next: i64 = r.get(8)?;
    let last: Option<i64> = r.get(9)?;
    let last_full: Option<i64> = r.get(10)?;
    let failures: i64 = r.get(11)?;
    let created: i64 = r.get(12)?;
    Ok((|| {
        let what = format!("replica #{id}");
        Ok(Replica {
            id: ReplicaId(id),
            file: FileId(file),
            index: u32::try_from(index).map_err(|_| corrupt(&what, "replica_index", index))?,
            host: parse_peer(&what, "host", &host)?,
            root: hash32(&what, "root", root)?,
            stored_size: to_u64(&what, "stored_size", size)?,
            contract: contract
                .map(|c| hash32(&what, "contract_id", c).map(ContractId))
                .transpose()?,
            state: parse_enum(&what, "state", &state, ReplicaState::parse)?,
            next_audit_at: next,
            last_audit_at: last,
            last_full_check_at: last_full,
            consecutive_failures: u32::try_from(failures)
                .map_err(|_| corrupt(&what, "consecutive_failures", failures))?,
            created_at: created,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(m: &Manifest, q: &str, p: impl rusqlite::Params) -> String {
        let mut stmt = m.conn.prepare(&format!("EXPLAIN QUERY PLAN {q}")).unwrap();
        let rows = stmt.query_map(p, |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn due_audit_query_searches_the_partial_index_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::open(dir.path().join("m.db")).unwrap();
        let p = plan(&m, DUE_QUERY, params![100, 10]);
        assert!(
            p.contains("SEARCH r USING INDEX replicas_due (next_audit_at<?)"),
            "{p}"
        );
        assert!(!p.contains("SCAN r"), "due query scans replicas:\n{p}");
        assert!(
            !p.contains("TEMP B-TREE"),
            "due query sorts instead of reading in index order:\n{p}"
        );
        assert!(!p.contains(" f "), "due query should not touch files:\n{p}");
    }

    #[test]
    fn folder_listing_searches_by_folder_index() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::open(dir.path().join("m.db")).unwrap();
        let p = plan(&m, LIST_FILES_QUERY, [1]);
        assert!(p.contains("SEARCH f USING"), "{p}");
        assert!(
            p.contains("INDEX sqlite_autoindex_files_1 (folder_id=?)"),
            "{p}"
        );
        assert!(
            p.contains(
                "SEARCH r USING COVERING INDEX replicas_by_file_state (file_id=? AND state=?)"
            ),
            "{p}"
        );
        assert!(!p.contains("TEMP B-TREE"), "{p}");
    }
}
