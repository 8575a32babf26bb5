//! The cryptographic heart of a Bunker box.
//!
//! Pure code: no sockets, no database, no clock. Everything here is a
//! function of its inputs so that the same 24 words always give the same
//! identity and the same stored bytes can always be read back.
//!
//! ```
//! use bunker_core::{Keys, Seed, FileId, ObjectId, Sealer, Opener, NoLeaves};
//!
//! let keys = Keys::from_seed(&Seed::generate());
//! let object = ObjectId { file_id: FileId::random(), replica_index: 0 };
//! let key = keys.replica_key(&object.file_id, object.replica_index);
//! let plain = b"hello bunker".to_vec();
//!
//! let mut sealed = Vec::new();
//! let descriptor = Sealer::new(&key, object, plain.len() as u64, 64)?
//!     .seal(&plain[..], &mut sealed, NoLeaves)?;
//!
//! let mut back = Vec::new();
//! Opener::new(&key, object).open(&descriptor, &sealed[..], &mut back)?;
//! assert_eq!(back, plain);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod format;
pub mod keys;
pub mod merkle;
pub mod open;
pub mod proof;
pub mod seal;
pub mod seed;
pub mod sidecar;

pub use format::{Descriptor, FormatError, Layout, ObjectId, DEFAULT_SEGMENT_SIZE, FORMAT_VERSION};
pub use keys::{FileId, FileMasterKey, Keys, ManifestKey, ReplicaKey};
pub use merkle::{leaf_hash, leaf_hasher, Hash};
pub use open::{OpenError, Opener};
pub use proof::{verify_segment, Proof, ProofDecodeError, VerifyError};
pub use seal::{LeafSink, NoLeaves, SealError, Sealer};
pub use seed::{Seed, SeedError};
pub use sidecar::{ReadAt, Sidecar, SidecarError, SidecarWriter};
