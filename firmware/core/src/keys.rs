//! Every key a box uses, derived from its 24 words.
//!
//! Each key is `blake3::derive_key(context, material)` with its own fixed
//! context string, so that the same words always give the same PeerId and the
//! same keys (recovery on a new box depends on it) and so that no key can be
//! computed from another. The context strings are part of the stored-data
//! format: changing one makes every stored object unreadable, which is why
//! the known-answer tests in `tests/kat.rs` pin them.

use std::fmt;
use std::str::FromStr;

use libp2p_identity::{Keypair, PeerId};
use zeroize::Zeroizing;

use crate::seed::Seed;

/// Context of the libp2p ed25519 identity (PeerId, signatures on contracts
/// and manifest snapshots).
pub const IDENTITY_CONTEXT: &str = "bunker 2026-11 libp2p identity";
/// Context of the file master key, the parent of every replica key.
pub const FILE_MASTER_CONTEXT: &str = "bunker 2026-11 file master key";
/// Context of the key that encrypts MANIFEST.db snapshots.
pub const MANIFEST_CONTEXT: &str = "bunker 2026-11 manifest key";
/// Context of a replica key: one per (file, replica) pair.
pub const REPLICA_CONTEXT: &str = "bunker 2026-11 replica key";

/// Declares a 32-byte secret key type that is wiped on drop and never
/// printed by `Debug`.
macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Zeroizing<[u8; 32]>);

        impl $name {
            /// Wraps raw key bytes, e.g. read back from a test vector.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(Zeroizing::new(bytes))
            }

            /// The raw key bytes, for the cipher that uses them.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<hidden>)"))
            }
        }
    };
}

secret_key!(
    /// The key of one file's all replicas' parent; never leaves the box.
    FileMasterKey
);
secret_key!(
    /// The key that encrypts MANIFEST.db snapshots stored on peers.
    ManifestKey
);
secret_key!(
    /// The key that seals one replica of one file. Each replica has its own,
    /// so two hosts hold different bytes and cannot share one copy to answer
    /// both hosts' audits.
    ReplicaKey
);

/// Names one stored version of a file.
///
/// 16 random bytes. A `FileId` must never be reused for different content:
/// nonces are derived from the segment index under a key derived from the
/// `FileId`, so sealing other bytes under the same id and replica index would
/// reuse nonces. A new version of a file gets a new `FileId`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub [u8; 16]);

impl FileId {
    /// A fresh id from the operating system's random source.
    pub fn random() -> FileId {
        use bip39::rand_core::RngCore;
        let mut id = [0u8; 16];
        bip39::rand::rngs::OsRng.fill_bytes(&mut id);
        FileId(id)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({self})")
    }
}

/// Why a text is not a [`FileId`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileIdError {
    /// Not 32 hex digits.
    #[error("a file id is 32 hex digits, got {0:?}")]
    NotHex(String),
}

impl FromStr for FileId {
    type Err = FileIdError;
    fn from_str(s: &str) -> Result<FileId, FileIdError> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id)
            .map_err(|_| FileIdError::NotHex(s.chars().take(64).collect()))?;
        Ok(FileId(id))
    }
}

/// All keys of one box, derived once from its seed.
///
/// `Debug` shows only the PeerId.
#[derive(Clone)]
pub struct Keys {
    identity_secret: Zeroizing<[u8; 32]>,
    file_master: FileMasterKey,
    manifest: ManifestKey,
    peer_id: PeerId,
}

impl Keys {
    /// Derives every key from the seed's 256 bits of entropy.
    pub fn from_seed(seed: &Seed) -> Keys {
        let entropy = seed.entropy();
        let identity_secret = Zeroizing::new(blake3::derive_key(IDENTITY_CONTEXT, &entropy[..]));
        let file_master =
            FileMasterKey::from_bytes(blake3::derive_key(FILE_MASTER_CONTEXT, &entropy[..]));
        let manifest = ManifestKey::from_bytes(blake3::derive_key(MANIFEST_CONTEXT, &entropy[..]));
        let peer_id = keypair_from_secret(&identity_secret).public().to_peer_id();
        Keys {
            identity_secret,
            file_master,
            manifest,
            peer_id,
        }
    }

    /// The box's libp2p ed25519 keypair.
    pub fn identity(&self) -> Keypair {
        keypair_from_secret(&self.identity_secret)
    }

    /// The box's PeerId: the same for the same 24 words on any box.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The file master key, parent of every replica key.
    pub fn file_master_key(&self) -> &FileMasterKey {
        &self.file_master
    }

    /// The key for MANIFEST.db snapshots.
    pub fn manifest_key(&self) -> &ManifestKey {
        &self.manifest
    }

    /// The key that seals replica `replica_index` of file `file_id`.
    pub fn replica_key(&self, file_id: &FileId, replica_index: u32) -> ReplicaKey {
        self.file_master.replica_key(file_id, replica_index)
    }
}

impl FileMasterKey {
    /// `derive_key(REPLICA_CONTEXT, file_master ‖ file_id ‖ replica_index_le)`.
    pub fn replica_key(&self, file_id: &FileId, replica_index: u32) -> ReplicaKey {
        let mut material = Zeroizing::new([0u8; 32 + 16 + 4]);
        material[..32].copy_from_slice(self.as_bytes());
        material[32..48].copy_from_slice(file_id.as_bytes());
        material[48..].copy_from_slice(&replica_index.to_le_bytes());
        ReplicaKey::from_bytes(blake3::derive_key(REPLICA_CONTEXT, &material[..]))
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

fn keypair_from_secret(secret: &[u8; 32]) -> Keypair {
    // `ed25519_from_bytes` wipes the buffer it is given, so hand it a copy.
    let mut copy = Zeroizing::new(*secret);
    // Any 32 bytes are a valid ed25519 secret key.
    Keypair::ed25519_from_bytes(&mut copy[..]).expect("32 bytes are a valid ed25519 secret key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_seed(&Seed::from_entropy(&[7u8; 32]))
    }

    #[test]
    fn same_words_give_same_identity_and_keys() {
        let a = keys();
        let b =
            Keys::from_seed(&Seed::from_phrase(&Seed::from_entropy(&[7u8; 32]).phrase()).unwrap());
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(a.identity().public(), b.identity().public());
        assert_eq!(a.manifest_key(), b.manifest_key());
        assert_eq!(a.file_master_key(), b.file_master_key());
        let id = FileId([1; 16]);
        assert_eq!(a.replica_key(&id, 0), b.replica_key(&id, 0));
    }

    #[test]
    fn every_key_differs_from_every_other() {
        let k = keys();
        let id = FileId([1; 16]);
        let all = [
            *k.identity_secret,
            *k.file_master_key().as_bytes(),
            *k.manifest_key().as_bytes(),
            *k.replica_key(&id, 0).as_bytes(),
            *k.replica_key(&id, 1).as_bytes(),
            *k.replica_key(&FileId([2; 16]), 0).as_bytes(),
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j], "keys {i} and {j} collide");
            }
        }
        let other = Keys::from_seed(&Seed::from_entropy(&[8u8; 32]));
        assert_ne!(other.peer_id(), k.peer_id());
    }

    #[test]
    fn identity_signs_verifiably() {
        let k = keys();
        let sig = k.identity().sign(b"contract").unwrap();
        assert!(k.identity().public().verify(b"contract", &sig));
        assert!(!k.identity().public().verify(b"contracT", &sig));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = keys();
        let text = format!(
            "{k:?} {:?} {:?}",
            k.manifest_key(),
            k.replica_key(&FileId([0; 16]), 3)
        );
        assert!(text.contains(&k.peer_id().to_string()));
        assert!(!text.contains(&hex::encode(k.manifest_key().as_bytes())));
        assert!(!text.contains(&format!("{:?}", k.manifest_key().as_bytes())));
        assert!(text.contains("<hidden>"));
    }

    #[test]
    fn file_id_parses_its_own_display_and_rejects_garbage() {
        let id = FileId::random();
        assert_eq!(id.to_string().parse::<FileId>().unwrap(), id);
        assert!(matches!(
            "xyz".parse::<FileId>(),
            Err(FileIdError::NotHex(_))
        ));
        assert!("00".parse::<FileId>().is_err());
    }
}
