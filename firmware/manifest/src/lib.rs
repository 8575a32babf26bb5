//! MANIFEST.db: the box's memory — which files it has, where their replicas
//! live, every peer, contract, audit and payment — plus the encrypted, signed
//! snapshots that let a new box with the same 24 words get it all back.
//!
//! SQLite (bundled) in WAL mode with foreign keys on and `synchronous=FULL`,
//! so a commit that returned survives a power cut. The schema is migrated by
//! `user_version`. No SQL leaves this crate: callers use the typed methods on
//! [`Manifest`].
//!
//! ```no_run
//! use bunker_manifest::{FilePath, FolderPath, Manifest, NewFile};
//! let mut m = Manifest::open("/var/lib/bunker/MANIFEST.db")?;
//! let file = NewFile {
//!     path: FilePath::parse("/photos/cat.jpg")?,
//!     object_id: bunker_core::FileId::random(),
//!     size: 1234,
//!     plaintext_blake3: [0; 32],
//!     segment_size: 65536,
//!     keep_local: true,
//!     redundancy: 2,
//!     local: None,
//!     created_at: 1_700_000_000,
//!     modified_at: 1_700_000_000,
//! };
//! m.put_file(&file, &[])?;
//! let listing = m.list_folder(&FolderPath::parse("/photos")?)?;
//! assert_eq!(listing.files[0].name, "cat.jpg");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod changes;
mod contracts;
mod copy;
mod db;
mod disks;
mod error;
mod files;
mod key;
mod kit;
mod path;
mod payments;
mod peers;
mod replication;
mod schema;
mod snapshot;
// Issue 11 (disks and device profile): the page cache sized per board.
mod tuning;
mod types;

pub use contracts::{HeldContract, MAX_OWNER_LABEL_LEN, MAX_TERMS_LEN};
pub use db::Manifest;
pub use error::{
    CopyError, ImportError, KitError, OpenError, PathError, QueryError, SnapshotError,
};
pub use key::ManifestKey;
pub use kit::{
    KitHolder, RecoveryKit, KIT_TEXT_PREFIX, MAX_ADDRESSES as KIT_MAX_ADDRESSES,
    MAX_ADDRESS_LEN as KIT_MAX_ADDRESS_LEN, MAX_HOLDERS as KIT_MAX_HOLDERS,
};
pub use path::{FilePath, FolderPath, MANIFEST_PATH, MAX_NAME_LEN, MAX_PATH_LEN};
pub use payments::MAX_REASON_LEN;
pub use peers::{MAX_ADDRESSES_PER_PEER, MAX_ADDRESS_LEN};
pub use replication::{HeldSnapshot, SnapshotHolder};
pub use schema::SCHEMA_VERSION;
pub use snapshot::{
    inspect_snapshot, inspect_snapshot_from, SnapshotInfo, MAX_COMPRESSED_LEN, MAX_DB_SIZE,
};
pub use types::*;
