//! Error types, one per operation family, so callers match on what can really go wrong there.

use std::path::PathBuf;

/// Opening MANIFEST.db or bringing its schema up to date failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite refused to open or configure the file.
    #[error("cannot open manifest database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A pragma the manifest depends on did not take effect.
    #[error("manifest database {path}: {what} (expected {expected}, got {got})")]
    Pragma {
        /// The database file.
        path: PathBuf,
        /// Which setting.
        what: &'static str,
        /// The value we need.
        expected: String,
        /// The value SQLite reports.
        got: String,
    },
    /// The file was written by a newer firmware; opening it would risk damaging it.
    #[error(
        "manifest database {path} has schema version {found}, this firmware knows up to {known}"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// `user_version` found in the file.
        found: i64,
        /// Newest schema this build can migrate to.
        known: i64,
    },
    /// A migration step failed; the transaction was rolled back.
    #[error("manifest database {path}: migration to schema version {version} failed: {source}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The schema version that was being installed.
        version: i64,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// A path in the box's file tree was not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// Paths are absolute in the box's tree.
    #[error("path {0:?} does not start with '/'")]
    NotAbsolute(String),
    /// Empty, `.` and `..` components would make two spellings of one file.
    #[error("path {path:?} has an empty, '.' or '..' component")]
    BadComponent {
        /// The offending path.
        path: String,
    },
    /// NUL and control characters break listings and downloads.
    #[error("path {path:?} contains a control character")]
    ControlCharacter {
        /// The offending path.
        path: String,
    },
    /// Length caps keep rows and listings bounded.
    #[error("path of {len} bytes is longer than the {max}-byte limit")]
    TooLong {
        /// Length of the offered path.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// One component longer than a file system name allows.
    #[error("name {name:?} is longer than {max} bytes")]
    NameTooLong {
        /// The long component.
        name: String,
        /// The cap.
        max: usize,
    },
    /// `/MANIFEST.db` is the manifest itself and cannot be a user file.
    #[error("path {0:?} is reserved for the manifest itself")]
    Reserved(String),
    /// A file needs a name, the root folder is not one.
    #[error("path {0:?} names a folder, not a file")]
    NotAFile(String),
}

/// A typed query or update on the live manifest failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// SQLite failed while doing `what`.
    #[error("manifest: {what} failed: {source}")]
    Sqlite {
        /// The operation, e.g. "insert file /a/b".
        what: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A path argument was rejected.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Inserting would create a second row for something that must be unique.
    #[error("manifest: {what} already exists")]
    AlreadyExists {
        /// What was duplicated.
        what: String,
    },
    /// The row the caller referred to is not there.
    #[error("manifest: {what} not found")]
    NotFound {
        /// What was looked up.
        what: String,
    },
    /// A value given by the caller is out of range for its column.
    #[error("manifest: invalid {field}: {reason}")]
    InvalidValue {
        /// Which argument.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A state change the ledger does not allow (e.g. a failed payment becoming succeeded).
    #[error("manifest: {what} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The row.
        what: String,
        /// Current state.
        from: String,
        /// Requested state.
        to: String,
    },
    /// An update would replace newer data with older (e.g. a held snapshot).
    #[error(
        "manifest: {what} version {offered} is older than or equal to the held version {current}"
    )]
    Stale {
        /// The row.
        what: String,
        /// Version offered.
        offered: u64,
        /// Version already held.
        current: u64,
    },
    /// A stored value could not be read back (the file was edited by hand or is damaged).
    #[error("manifest: stored {column} of {what} is unreadable: {reason}")]
    Corrupt {
        /// The row.
        what: String,
        /// The column.
        column: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// Writing a consistent copy of MANIFEST.db failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The backup API failed.
    #[error("consistent copy of the manifest failed during {step}: {source}")]
    Sqlite {
        /// The step, e.g. "backup".
        step: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Reading the temporary copy or writing to the destination failed.
    #[error("consistent copy of the manifest failed during {step}: {source}")]
    Io {
        /// The step.
        step: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Producing an encrypted, signed snapshot failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Taking the consistent copy failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// Bumping the snapshot version in the live database failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Compression or writing the snapshot out failed.
    #[error("snapshot: {step} failed: {source}")]
    Io {
        /// The step.
        step: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The ed25519 key refused to sign.
    #[error("snapshot: signing with the owner key failed: {0}")]
    Sign(String),
    /// The signer is not an ed25519 key (the box identity always is).
    #[error("snapshot: owner key must be ed25519, got {0}")]
    KeyType(String),
    /// Sealing a chunk failed (only possible on absurd sizes).
    #[error("snapshot: encrypting chunk {chunk} failed")]
    Encrypt {
        /// Chunk index.
        chunk: u64,
    },
    /// The database is larger than snapshots carry.
    #[error("snapshot: compressed manifest of {size} bytes exceeds the {max}-byte snapshot limit")]
    TooLarge {
        /// Size reached.
        size: u64,
        /// The cap.
        max: u64,
    },
}

/// A snapshot offered for import (or for storage on behalf of a peer) was refused.
///
/// Every variant is returned before the live database is touched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The bytes end before the structure they announce.
    #[error("snapshot is truncated: needed {needed} bytes for {field}, only {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes there were.
        available: u64,
    },
    /// Not a Bunker manifest snapshot at all.
    #[error("not a bunker manifest snapshot (bad magic bytes)")]
    BadMagic,
    /// A snapshot format this firmware cannot read.
    #[error("snapshot format version {found} is not supported (this firmware reads {supported})")]
    UnsupportedFormat {
        /// Version in the header.
        found: u16,
        /// Version we read.
        supported: u16,
    },
    /// A length field is over its cap.
    #[error("snapshot field {field} of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Announced size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// A header field is malformed.
    #[error("snapshot header field {field} is malformed: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The snapshot names an owner other than the one expected.
    #[error("snapshot belongs to {found}, expected owner {expected}")]
    WrongOwner {
        /// Owner named in the header.
        found: String,
        /// Owner we expected.
        expected: String,
    },
    /// The signature does not match the owner key: the bytes were altered.
    #[error("snapshot signature of owner {owner} does not verify: altered or damaged")]
    BadSignature {
        /// Owner named in the header.
        owner: String,
    },
    /// Authenticated decryption failed although the signature is good: wrong manifest key.
    #[error(
        "snapshot chunk {chunk} does not decrypt with this manifest key (wrong key or damaged)"
    )]
    Decrypt {
        /// Chunk index.
        chunk: u64,
    },
    /// The snapshot is older than what this box already has.
    #[error("snapshot version {offered} is older than the local manifest version {current}")]
    Older {
        /// Version in the snapshot.
        offered: u64,
        /// Version of the live manifest.
        current: u64,
    },
    /// The snapshot has the very version the box already has.
    #[error("snapshot version {offered} is the version the local manifest already has")]
    AlreadyCurrent {
        /// Version in the snapshot and in the live manifest.
        offered: u64,
    },
    /// The decrypted content is not a sound manifest database.
    #[error("snapshot content is not a sound manifest: {reason}")]
    BadContent {
        /// What the check found.
        reason: String,
    },
    /// Decompression or temporary-file I/O failed.
    #[error("snapshot import: {step} failed: {source}")]
    Io {
        /// The step.
        step: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed while checking the copy or swapping it in.
    #[error("snapshot import: {step} failed: {source}")]
    Sqlite {
        /// The step.
        step: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Reading the live version failed.
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// A recovery kit could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// The text form lacks the `BUNKERKIT1:` prefix.
    #[error("recovery kit text must start with {expected:?}")]
    BadPrefix {
        /// The prefix we look for.
        expected: &'static str,
    },
    /// The text has characters outside base32.
    #[error("recovery kit text is not valid base32: {0}")]
    BadText(String),
    /// The blob is shorter than its structure.
    #[error("recovery kit is truncated: {field} needs {needed} bytes, {available} left")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Not a kit, or a kit format we do not know.
    #[error("not a bunker recovery kit, or an unsupported kit version")]
    BadMagic,
    /// The kit does not open with this manifest key.
    #[error("recovery kit does not decrypt with this key (other owner's kit, or damaged)")]
    Decrypt,
    /// Too many holders or addresses, or an over-long address.
    #[error("recovery kit field {field}: {size} exceeds the limit of {max}")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Offered size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// A field inside the decrypted kit is malformed.
    #[error("recovery kit field {field} is malformed: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Writing or reading the kit file failed.
    #[error("recovery kit file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
