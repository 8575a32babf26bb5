//! The schema and its migrations. `PRAGMA user_version` counts the migrations
//! applied; each one runs in its own transaction, so a crash mid-upgrade leaves
//! the previous version intact. Migrations are append-only: never edit a shipped one.

use std::path::Path;

use rusqlite::Connection;

use crate::error::OpenError;

/// Schema version 1: everything the box remembers.
const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE folders (
    id        INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES folders(id) ON DELETE CASCADE,
    path      TEXT NOT NULL UNIQUE,
    name      TEXT NOT NULL
) STRICT;
CREATE INDEX folders_by_parent ON folders(parent_id, name);
INSERT INTO folders (id, parent_id, path, name) VALUES (1, NULL, '/', '');

CREATE TABLE disks (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT NOT NULL UNIQUE,
    label          TEXT NOT NULL,
    mount_path     TEXT NOT NULL,
    total_bytes    INTEGER NOT NULL CHECK (total_bytes >= 0),
    free_bytes     INTEGER NOT NULL CHECK (free_bytes >= 0),
    reserved_bytes INTEGER NOT NULL CHECK (reserved_bytes >= 0),
    state          TEXT NOT NULL CHECK (state IN ('active', 'missing', 'retired')),
    added_at       INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    last_scrub_at  INTEGER
) STRICT;

CREATE TABLE files (
    id               INTEGER PRIMARY KEY,
    folder_id        INTEGER NOT NULL REFERENCES folders(id),
    name             TEXT NOT NULL,
    size             INTEGER NOT NULL CHECK (size >= 0),
    plaintext_blake3 BLOB NOT NULL CHECK (length(plaintext_blake3) = 32),
    segment_size     INTEGER NOT NULL CHECK (segment_size > 0),
    keep_local       INTEGER NOT NULL CHECK (keep_local IN (0, 1)),
    redundancy       INTEGER NOT NULL CHECK (redundancy >= 0),
    local_disk_id    INTEGER REFERENCES disks(id),
    local_path       TEXT,
    created_at       INTEGER NOT NULL,
    modified_at      INTEGER NOT NULL,
    UNIQUE (folder_id, name)
) STRICT;
CREATE INDEX files_by_local_disk ON files(local_disk_id) WHERE local_disk_id IS NOT NULL;

-- Peers are referenced by integer id: a PeerId's text is 52 bytes and would
-- otherwise repeat in every replica row and index entry.
CREATE TABLE peers (
    id            INTEGER PRIMARY KEY,
    peer_id       TEXT NOT NULL UNIQUE,
    ln_node_id    TEXT,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    successes     REAL NOT NULL DEFAULT 0,
    failures      REAL NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE peer_addresses (
    peer         INTEGER NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (peer, address)
) STRICT;

CREATE TABLE contracts (
    id                      INTEGER PRIMARY KEY,
    contract_id             BLOB NOT NULL UNIQUE CHECK (length(contract_id) = 32),
    direction               TEXT NOT NULL CHECK (direction IN ('ours_on_peer', 'theirs_on_us')),
    peer                    INTEGER NOT NULL REFERENCES peers(id),
    object_root             BLOB NOT NULL CHECK (length(object_root) = 32),
    size_bytes              INTEGER NOT NULL CHECK (size_bytes >= 0),
    price_msat_per_gib_day  INTEGER NOT NULL CHECK (price_msat_per_gib_day >= 0),
    retrieval_price_msat    INTEGER NOT NULL CHECK (retrieval_price_msat >= 0),
    audit_interval_secs     INTEGER NOT NULL CHECK (audit_interval_secs > 0),
    full_check_interval_secs INTEGER NOT NULL CHECK (full_check_interval_secs > 0),
    is_swap                 INTEGER NOT NULL CHECK (is_swap IN (0, 1)),
    term_start_at           INTEGER NOT NULL,
    term_end_at             INTEGER NOT NULL,
    terms                   BLOB NOT NULL,
    our_signature           BLOB NOT NULL,
    peer_signature          BLOB NOT NULL,
    state                   TEXT NOT NULL CHECK (state IN ('active', 'ending', 'ended', 'broken')),
    owed_msat               INTEGER NOT NULL DEFAULT 0 CHECK (owed_msat >= 0),
    last_paid_at            INTEGER,
    created_at              INTEGER NOT NULL,
    ended_at                INTEGER
) STRICT;
CREATE INDEX contracts_by_peer ON contracts(peer, direction);
CREATE INDEX contracts_by_state ON contracts(state, direction);

CREATE TABLE replicas (
    id                   INTEGER PRIMARY KEY,
    file_id              INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    replica_index        INTEGER NOT NULL CHECK (replica_index >= 0),
    host                 INTEGER NOT NULL REFERENCES peers(id),
    root                 BLOB NOT NULL CHECK (length(root) = 32),
    stored_size          INTEGER NOT NULL CHECK (stored_size >= 0),
    -- Copied from the file: the auditor needs it for every due replica, and
    -- reading it here spares a random files lookup per row.
    segment_size         INTEGER NOT NULL CHECK (segment_size > 0),
    contract_id          INTEGER REFERENCES contracts(id),
    state                TEXT NOT NULL CHECK (state IN ('uploading', 'active', 'lost', 'released')),
    next_audit_at        INTEGER NOT NULL,
    last_audit_at        INTEGER,
    last_full_check_at   INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    created_at           INTEGER NOT NULL,
    UNIQUE (file_id, replica_index)
) STRICT;
-- Audit scheduling reads only live replicas in due order: a partial index keeps it a range scan.
CREATE INDEX replicas_due ON replicas(next_audit_at) WHERE state = 'active';
CREATE INDEX replicas_by_host ON replicas(host, state);
-- Folder listings count each file's active replicas from this index alone
-- (1.6x faster listing for ~8 % more insert work, measured at 1M files).
CREATE INDEX replicas_by_file_state ON replicas(file_id, state);
CREATE INDEX replicas_by_contract ON replicas(contract_id) WHERE contract_id IS NOT NULL;

CREATE TABLE hosted_objects (
    id          INTEGER PRIMARY KEY,
    contract_id INTEGER NOT NULL REFERENCES contracts(id),
    owner       INTEGER NOT NULL REFERENCES peers(id),
    root        BLOB NOT NULL CHECK (length(root) = 32),
    disk_id     INTEGER NOT NULL REFERENCES disks(id),
    rel_path    TEXT NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    state       TEXT NOT NULL CHECK (state IN ('receiving', 'stored', 'released')),
    created_at  INTEGER NOT NULL,
    UNIQUE (owner, root)
) STRICT;
CREATE INDEX hosted_by_contract ON hosted_objects(contract_id);
CREATE INDEX hosted_by_disk ON hosted_objects(disk_id, state);

CREATE TABLE audits (
    id          INTEGER PRIMARY KEY,
    replica_id  INTEGER NOT NULL REFERENCES replicas(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('segment', 'full')),
    segment     INTEGER,
    outcome     TEXT NOT NULL CHECK (outcome IN ('passed', 'failed', 'timeout', 'unreachable')),
    latency_ms  INTEGER NOT NULL CHECK (latency_ms >= 0),
    detail      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audits_by_replica ON audits(replica_id, at);
CREATE INDEX audits_by_time ON audits(at);

CREATE TABLE payments (
    id           INTEGER PRIMARY KEY,
    direction    TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    amount_msat  INTEGER NOT NULL CHECK (amount_msat >= 0),
    fee_msat     INTEGER CHECK (fee_msat >= 0),
    contract_id  INTEGER REFERENCES contracts(id),
    payment_hash BLOB CHECK (payment_hash IS NULL OR length(payment_hash) = 32),
    payment_id   BLOB NOT NULL UNIQUE CHECK (length(payment_id) = 32),
    state        TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    reason       TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX payments_by_contract ON payments(contract_id, created_at) WHERE contract_id IS NOT NULL;
CREATE INDEX payments_by_time ON payments(created_at);
CREATE INDEX payments_pending ON payments(state) WHERE state = 'pending';
"#;

/// Schema version 2: manifest replication — which peers hold our snapshots
/// (what the recovery kit lists) and which owners' snapshots we hold.
const V2: &str = r#"
CREATE TABLE snapshot_holders (
    peer      INTEGER PRIMARY KEY REFERENCES peers(id) ON DELETE CASCADE,
    version   INTEGER NOT NULL CHECK (version >= 0),
    stored_at INTEGER NOT NULL
) STRICT;
CREATE INDEX snapshot_holders_by_version ON snapshot_holders(version DESC, stored_at DESC);

CREATE TABLE held_snapshots (
    owner       INTEGER PRIMARY KEY REFERENCES peers(id),
    version     INTEGER NOT NULL CHECK (version >= 0),
    path        TEXT NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    received_at INTEGER NOT NULL
) STRICT;
"#;

/// Schema version 3: each file's object id (bunker-core's `FileId`), the 16
/// random bytes its replica keys and associated data are derived from. It
/// must never name two files: sealing other bytes under the same id and
/// replica index would reuse nonces. Hence UNIQUE, and required on every new
/// row (a trigger, since `ALTER TABLE` cannot add a NOT NULL column without a
/// default). Files recorded before version 3 predate the engine — nothing
/// was sealed under an id for them — so they get fresh random ids.
const V3: &str = r#"
ALTER TABLE files ADD COLUMN object_id BLOB
    CHECK (object_id IS NULL OR length(object_id) = 16);
UPDATE files SET object_id = randomblob(16) WHERE object_id IS NULL;
CREATE UNIQUE INDEX files_by_object_id ON files(object_id);
CREATE TRIGGER files_object_id_required_insert BEFORE INSERT ON files
    WHEN NEW.object_id IS NULL
    BEGIN SELECT RAISE(ABORT, 'files.object_id is required'); END;
CREATE TRIGGER files_object_id_fixed BEFORE UPDATE OF object_id ON files
    WHEN NEW.object_id IS NOT OLD.object_id
    BEGIN SELECT RAISE(ABORT, 'files.object_id never changes'); END;
"#;

/// Schema version 4: owner labels. Every contract an owner proposes carries
/// a small label sealed under the owner's key (what the owner needs to
/// rebuild that replica's entry without its manifest); the host keeps it
/// with the contract and gives it back to the owner's PeerId only
/// (`/bunker/holdings/1`). NULL for contracts made before version 4 and for
/// our own contracts (the label is in their recorded terms). The partial
/// index serves "what do we hold for this owner", paged by contract id.
const V4: &str = r#"
ALTER TABLE contracts ADD COLUMN owner_label BLOB
    CHECK (owner_label IS NULL OR length(owner_label) <= 1024);
CREATE INDEX contracts_labelled_by_owner ON contracts(peer, contract_id)
    WHERE owner_label IS NOT NULL AND direction = 'theirs_on_us';
"#;

/// Migrations in order; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Builds the schema as an older firmware left it (tests of upgrade paths).
#[cfg(test)]
pub(crate) fn create_at_version(conn: &Connection, version: usize) -> rusqlite::Result<()> {
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql)?;
    }
    conn.pragma_update(None, "user_version", version as i64)
}

/// Reads `user_version`.
pub(crate) fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema to [`SCHEMA_VERSION`], refusing files from a newer firmware.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let found = current_version(conn).map_err(sqlite)?;
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = i as i64 + 1;
        let failed = |source| OpenError::Migration {
            path: path.to_owned(),
            version,
            source,
        };
        let tx = conn.transaction().map_err(failed)?;
        tx.execute_batch(sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(path = %path.display(), version, "manifest schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_file_is_migrated_in_place_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('snapshot_version', 7)",
                [],
            )
            .unwrap();
        }
        let m = crate::Manifest::open(&path).unwrap();
        assert_eq!(m.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(m.snapshot_version().unwrap(), 7);
        assert!(m.snapshot_holders().unwrap().is_empty());
        assert!(m.integrity_problems().unwrap().is_empty());
    }

    #[test]
    fn version_2_files_get_distinct_object_ids_and_new_rows_must_bring_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        {
            let conn = Connection::open(&path).unwrap();
            create_at_version(&conn, 2).unwrap();
            for name in ["a.txt", "b.txt"] {
                conn.execute(
                    "INSERT INTO files (folder_id, name, size, plaintext_blake3, segment_size, \
                     keep_local, redundancy, created_at, modified_at) \
                     VALUES (1, ?1, 5, zeroblob(32), 65536, 1, 2, 1, 1)",
                    [name],
                )
                .unwrap();
            }
        }
        let m = crate::Manifest::open(&path).unwrap();
        assert_eq!(m.schema_version().unwrap(), SCHEMA_VERSION);
        let a = m
            .file(&crate::FilePath::parse("/a.txt").unwrap())
            .unwrap()
            .expect("a.txt kept");
        let b = m
            .file(&crate::FilePath::parse("/b.txt").unwrap())
            .unwrap()
            .expect("b.txt kept");
        assert_ne!(a.object_id, b.object_id, "each old file gets its own id");
        assert_eq!(m.file_by_id(a.id).unwrap().as_ref(), Some(&a));
        assert!(m.integrity_problems().unwrap().is_empty());
        let err = m
            .conn
            .execute(
                "INSERT INTO files (folder_id, name, size, plaintext_blake3, segment_size, \
                 keep_local, redundancy, created_at, modified_at) \
                 VALUES (1, 'c.txt', 5, zeroblob(32), 65536, 1, 2, 1, 1)",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("object_id is required"), "{err}");
        let err = m
            .conn
            .execute("UPDATE files SET object_id = zeroblob(16) WHERE name = 'a.txt'", [])
            .unwrap_err();
        assert!(err.to_string().contains("never changes"), "{err}");
    }

    #[test]
    fn version_3_contracts_are_kept_unlabelled_and_new_ones_take_a_capped_label() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        let owner = libp2p_identity::Keypair::generate_ed25519().public().to_peer_id();
        {
            let conn = Connection::open(&path).unwrap();
            create_at_version(&conn, 3).unwrap();
            conn.execute(
                "INSERT INTO peers (peer_id, first_seen_at, last_seen_at) VALUES (?1, 1, 1)",
                [owner.to_base58()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO contracts (contract_id, direction, peer, object_root, size_bytes, \
                 price_msat_per_gib_day, retrieval_price_msat, audit_interval_secs, \
                 full_check_interval_secs, is_swap, term_start_at, term_end_at, terms, \
                 our_signature, peer_signature, state, created_at) \
                 VALUES (zeroblob(32), 'theirs_on_us', 1, zeroblob(32), 10, 1, 1, 60, 60, 0, 1, 2, \
                 x'01', x'02', x'03', 'active', 1)",
                [],
            )
            .unwrap();
        }
        let m = crate::Manifest::open(&path).unwrap();
        assert_eq!(m.schema_version().unwrap(), 4);
        assert!(m.integrity_problems().unwrap().is_empty());
        let old = crate::ContractId([0; 32]);
        assert!(m.contract(&old).unwrap().is_some(), "the old contract is kept");
        assert!(
            m.held_for_owner(&owner, None, 10).unwrap().is_empty(),
            "a contract from before labels is never offered back"
        );
        let err = m
            .conn
            .execute("UPDATE contracts SET owner_label = zeroblob(1025)", [])
            .unwrap_err();
        assert!(err.to_string().contains("CHECK"), "{err}");
        m.conn
            .execute("UPDATE contracts SET owner_label = zeroblob(1024)", [])
            .unwrap();
    }

    #[test]
    fn file_from_a_newer_firmware_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = crate::Manifest::open(&path).unwrap_err();
        assert!(
            matches!(err, OpenError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "{err}"
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION + 1);
    }
}
