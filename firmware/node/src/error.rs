//! The engine's errors: one enum per operation the owner can ask for, each
//! message saying what was wrong with what. Helpers add variants as they
//! need them; keep messages fit to show on the admin page as they are.

use bunker_manifest::QueryError;

/// MANIFEST.db could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The query failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The blocking task running it died.
    #[error("manifest task failed: {0}")]
    Task(String),
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The object store directory could not be prepared.
    #[error("object store at {path}: {source}")]
    Store {
        /// The directory.
        path: String,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// MANIFEST.db could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a put did not complete. Nothing of a failed put stays behind: no
/// file row, no staged object, contracts already made are released.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The policy is not allowed (e.g. no local copy and fewer than 2 copies).
    #[error("policy refused: {0}")]
    Policy(String),
    /// The path is not a valid file path in the box's tree.
    #[error(transparent)]
    Path(#[from] bunker_manifest::PathError),
    /// A file is already at that path.
    #[error("{0} already exists: remove it first or choose another name")]
    Exists(String),
    /// The body ended before the announced size, or went on past it.
    #[error("upload of {path}: expected {expected} bytes, got {got}")]
    SizeMismatch {
        /// The file.
        path: String,
        /// Announced size.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// Not enough peers could take a replica.
    #[error("only {placed} of {wanted} copies could be placed: {reason}")]
    Placement {
        /// Replicas placed.
        placed: usize,
        /// Replicas wanted.
        wanted: usize,
        /// Why the rest failed, per host.
        reason: String,
    },
    /// No data disk has room for the sealed copies: every copy is sealed on
    /// this box before it is sent, so a put needs room for all of them at
    /// once. Nothing was kept; free some space or add a data disk.
    #[error(
        "no room for {path}: storing it needs {needed} bytes on this box's data disks ({copies} sealed cop{}, \
         each made here before it is sent), {free} bytes are free beyond the reserves ({disks}); \
         remove files or add a data disk",
        if *copies == 1 { "y" } else { "ies" }
    )]
    NoRoom {
        /// The file.
        path: String,
        /// Copies sealed here (the peers' ones and the keep-local one).
        copies: usize,
        /// Bytes those copies need (sealed size times copies).
        needed: u64,
        /// Room beyond the reserves over the disks that take new data.
        free: u64,
        /// The data disks and their states, in words.
        disks: String,
    },
    /// A data disk failed while the copies were written to it (I/O error,
    /// remounted read-only, gone): that disk is marked and takes no new
    /// data; nothing of this put was kept and the files already stored are
    /// as they were. Sending the file again uses the other disks.
    #[error("storing {path}: data disk {disk} failed while it was written ({reason}); it takes no new data now: send the file again")]
    DiskFailed {
        /// The file.
        path: String,
        /// The disk, as the admin page names it.
        disk: String,
        /// What the disk answered.
        reason: String,
    },
    /// Reading, sealing or writing the object failed.
    #[error("storing {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// MANIFEST.db failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a read-side or change request about one file failed (get, remove,
/// policy change, details).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path is not a valid path in the box's tree.
    #[error(transparent)]
    Path(#[from] bunker_manifest::PathError),
    /// No file at that path.
    #[error("no file at {0}")]
    NotFound(String),
    /// The policy is not allowed.
    #[error("policy refused: {0}")]
    Policy(String),
    /// No copy could be read: every replica failed; each reason is listed.
    #[error("{path}: no copy could be read ({reasons})")]
    Unavailable {
        /// The file.
        path: String,
        /// Why each copy failed.
        reasons: String,
    },
    /// No peer could take a new copy now (none offered room within the price
    /// caps, or the hosts asked failed): nothing changed, try again later.
    #[error("{path}: a new copy could not be placed: {reason}")]
    Placement {
        /// The file.
        path: String,
        /// Why, per host.
        reason: String,
    },
    /// A local I/O error.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// MANIFEST.db failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl FileError {
    /// A copy could not be placed or made (raised redundancy, keep-local on).
    pub(crate) fn placement(path: &str, reason: impl Into<String>) -> FileError {
        FileError::Placement { path: path.to_string(), reason: reason.into() }
    }
}
