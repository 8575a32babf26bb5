//! Builders shared by the integration tests.
#![allow(dead_code)]

use bunker_manifest::*;
use libp2p_identity::{Keypair, PeerId};

pub fn peer(n: u8) -> PeerId {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[1] = 0xb0;
    Keypair::ed25519_from_bytes(seed)
        .expect("32 bytes")
        .public()
        .to_peer_id()
}

pub fn file(path: &str, n: u64) -> NewFile {
    NewFile {
        path: FilePath::parse(path).expect("valid test path"),
        object_id: object_id(path, n),
        size: 1000 + n,
        plaintext_blake3: *blake3::hash(&n.to_le_bytes()).as_bytes(),
        segment_size: 65536,
        keep_local: n & 1 == 0,
        redundancy: 3,
        local: None,
        created_at: 1_700_000_000 + n as i64,
        modified_at: 1_700_000_000 + n as i64,
    }
}

/// A distinct object id per (path, n), stable across runs.
pub fn object_id(path: &str, n: u64) -> bunker_core::FileId {
    let h = blake3::hash(format!("{path}#{n}").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.as_bytes()[..16]);
    bunker_core::FileId(id)
}

pub fn replica(index: u32, host: PeerId, due: i64) -> NewReplica {
    NewReplica {
        index,
        host,
        root: *blake3::hash(&[index as u8, 7]).as_bytes(),
        stored_size: 4096,
        contract: None,
        state: ReplicaState::Active,
        next_audit_at: due,
        created_at: 1_700_000_000,
    }
}

pub fn contract(id: u8, peer: PeerId, direction: ContractDirection) -> NewContract {
    NewContract {
        id: ContractId([id; 32]),
        direction,
        peer,
        object_root: [id ^ 0x55; 32],
        size_bytes: 1 << 20,
        price_msat_per_gib_day: 2_000,
        retrieval_price_msat: 10_000,
        audit_interval_secs: 3600,
        full_check_interval_secs: 30 * 86400,
        is_swap: false,
        term_start_at: 1_700_000_000,
        term_end_at: 1_700_000_000 + 365 * 86400,
        terms: vec![1, 2, 3, id],
        our_signature: vec![0xaa; 64],
        peer_signature: vec![0xbb; 64],
        created_at: 1_700_000_000,
    }
}

pub fn open_temp() -> (tempfile::TempDir, Manifest) {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = Manifest::open(dir.path().join("MANIFEST.db")).expect("open manifest");
    (dir, m)
}
