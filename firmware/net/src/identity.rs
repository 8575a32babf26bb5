//! Bringing the box's identity in from bunker-core.
//!
//! bunker-core derives the ed25519 identity with the workspace's libp2p-identity, the same 0.3
//! that libp2p 0.57 uses, so `bunker_core::Keys::identity()` is already a
//! `libp2p::identity::Keypair`. These helpers take a key from bytes (protobuf or a raw ed25519
//! secret), e.g. from storage or another process.

use libp2p::identity::Keypair;

/// The bytes given are not a usable identity key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a protobuf-encoded libp2p keypair (or not a key type this build supports).
    #[error("not a protobuf-encoded libp2p keypair: {0}")]
    Protobuf(String),
}

/// Keypair from its libp2p protobuf encoding, e.g.
/// `bunker_core::Keys::identity().to_protobuf_encoding()`.
pub fn keypair_from_protobuf(bytes: &[u8]) -> Result<Keypair, KeyError> {
    Keypair::from_protobuf_encoding(bytes).map_err(|e| KeyError::Protobuf(e.to_string()))
}

/// Keypair from a raw 32-byte ed25519 secret (any 32 bytes are a valid secret).
pub fn keypair_from_ed25519_secret(mut secret: [u8; 32]) -> Keypair {
    Keypair::ed25519_from_bytes(&mut secret).expect("every 32-byte string is an ed25519 secret key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_from_core_keeps_the_peer_id() {
        // The same type bunker-core hands out (libp2p-identity 0.2).
        let core_key = libp2p_identity::Keypair::ed25519_from_bytes([5u8; 32]).unwrap();
        let bytes = core_key.to_protobuf_encoding().unwrap();
        let ours = keypair_from_protobuf(&bytes).unwrap();
        assert_eq!(ours.public().to_peer_id().to_string(), core_key.public().to_peer_id().to_string());
    }

    #[test]
    fn same_secret_same_peer_id() {
        let a = keypair_from_ed25519_secret([7; 32]);
        let b = keypair_from_ed25519_secret([7; 32]);
        let c = keypair_from_ed25519_secret([8; 32]);
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        assert_ne!(a.public().to_peer_id(), c.public().to_peer_id());
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(keypair_from_protobuf(&[1, 2, 3]), Err(KeyError::Protobuf(_))));
    }
}
