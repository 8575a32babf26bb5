//! The cryptographic heart of a Bunker box.
//!
//! Pure code: no sockets, no database, no clock. Everything here is a
//! function of its inputs so that the same 24 words always give the same
//! identity and the same stored bytes can always be read back.
#![deny(missing_docs)]

pub mod keys;
pub mod seed;

pub use keys::{FileId, FileMasterKey, Keys, ManifestKey, ReplicaKey};
pub use seed::{Seed, SeedError};
