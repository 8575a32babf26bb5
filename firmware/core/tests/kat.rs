//! Known-answer vectors: fixed words → PeerId and keys, fixed inputs →
//! sealed bytes, roots and proofs. Stored objects and recovered boxes depend
//! on every one of these staying the same; a change here is a format change
//! and needs a new format version, not a new vector file.
//!
//! The vectors live in `tests/vectors/v1.txt`. They were produced by this
//! code (`BUNKER_KAT_WRITE=1 cargo test -p bunker-core --test kat`) after the
//! spec check below confirmed the format from first principles.

use std::collections::BTreeMap;

use bunker_core::keys::{FILE_MASTER_CONTEXT, IDENTITY_CONTEXT, MANIFEST_CONTEXT, REPLICA_CONTEXT};
use bunker_core::merkle::{inner_hash, RootBuilder};
use bunker_core::{
    leaf_hash, FileId, Keys, NoLeaves, ObjectId, Sealer, Seed, Sidecar, SidecarWriter,
};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const VECTORS: &str = "tests/vectors/v1.txt";

/// BIP39's all-zero 256-bit vector.
const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon art";
/// BIP39's 0x7f…7f 256-bit vector.
const LEGAL: &str =
    "legal winner thank year wave sausage worth useful legal winner thank year wave \
    sausage worth useful legal winner thank year wave sausage worth title";

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn compute() -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for (name, words) in [("abandon", ABANDON), ("legal", LEGAL)] {
        let keys = Keys::from_seed(&Seed::from_phrase(words).unwrap());
        v.insert(format!("{name}.peer_id"), keys.peer_id().to_string());
        let public = keys
            .identity()
            .public()
            .try_into_ed25519()
            .unwrap()
            .to_bytes();
        v.insert(format!("{name}.identity_public"), hex::encode(public));
        v.insert(
            format!("{name}.file_master_key"),
            hex::encode(keys.file_master_key().as_bytes()),
        );
        v.insert(
            format!("{name}.manifest_key"),
            hex::encode(keys.manifest_key().as_bytes()),
        );
        let file = FileId(*b"0123456789abcdef");
        for replica in [0u32, 1] {
            let key = keys.replica_key(&file, replica);
            v.insert(
                format!("{name}.replica_key.{replica}"),
                hex::encode(key.as_bytes()),
            );
        }
    }
    let keys = Keys::from_seed(&Seed::from_phrase(LEGAL).unwrap());
    let object = ObjectId {
        file_id: FileId(*b"0123456789abcdef"),
        replica_index: 1,
    };
    let key = keys.replica_key(&object.file_id, 1);
    for (len, seg) in [(0usize, 64u32), (1000, 64), (3 * 65536 + 1, 65536)] {
        let plain = plaintext(len);
        let mut sealed = Vec::new();
        let d = Sealer::new(&key, object, len as u64, seg)
            .unwrap()
            .seal(&plain[..], &mut sealed, NoLeaves)
            .unwrap();
        let name = format!("object.{len}.{seg}");
        v.insert(format!("{name}.root"), hex::encode(d.root));
        v.insert(format!("{name}.descriptor"), hex::encode(d.to_bytes()));
        v.insert(
            format!("{name}.sealed_blake3"),
            blake3::hash(&sealed).to_hex().to_string(),
        );
        if len == 1000 {
            let mut w = SidecarWriter::new(std::io::Cursor::new(Vec::new())).unwrap();
            Sealer::new(&key, object, len as u64, seg)
                .unwrap()
                .seal(&plain[..], std::io::sink(), &mut w)
                .unwrap();
            let (_, c) = w.finish().unwrap();
            let sidecar = Sidecar::open(c.into_inner()).unwrap();
            v.insert(
                format!("{name}.proof.13"),
                hex::encode(sidecar.proof(13).unwrap().to_bytes()),
            );
        }
    }
    v.insert("leaf.empty".into(), hex::encode(leaf_hash(b"")));
    v.insert(
        "inner.zero_one".into(),
        hex::encode(inner_hash(&[0; 32], &[1; 32])),
    );
    v
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once(" = ")
                .unwrap_or_else(|| panic!("bad vector line {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn stored_vectors_still_hold() {
    let computed = compute();
    if std::env::var_os("BUNKER_KAT_WRITE").is_some() {
        let mut text = String::from(
            "# bunker-core known-answer vectors, object format v1. Never edit: add a v2 file.\n",
        );
        for (k, v) in &computed {
            text.push_str(&format!("{k} = {v}\n"));
        }
        std::fs::write(VECTORS, text).unwrap();
    }
    let stored = parse(&std::fs::read_to_string(VECTORS).unwrap());
    assert_eq!(stored.len(), computed.len(), "vector names differ");
    for (k, want) in &stored {
        assert_eq!(computed.get(k), Some(want), "vector {k} changed");
    }
}

/// The format spelled out with the raw crates, so the vectors rest on the
/// documented construction and not only on this crate agreeing with itself.
#[test]
fn format_matches_its_spec_from_first_principles() {
    let seed = Seed::from_phrase(LEGAL).unwrap();
    assert_eq!(*seed.entropy(), [0x7f; 32]);
    let keys = Keys::from_seed(&seed);
    assert_eq!(
        keys.manifest_key().as_bytes(),
        &blake3::derive_key(MANIFEST_CONTEXT, &[0x7f; 32])
    );
    let master = blake3::derive_key(FILE_MASTER_CONTEXT, &[0x7f; 32]);
    assert_eq!(keys.file_master_key().as_bytes(), &master);
    let identity = blake3::derive_key(IDENTITY_CONTEXT, &[0x7f; 32]);
    let mut id_copy = identity;
    let expected_peer = libp2p_identity::Keypair::ed25519_from_bytes(&mut id_copy)
        .unwrap()
        .public()
        .to_peer_id();
    assert_eq!(keys.peer_id(), expected_peer);

    let file = *b"0123456789abcdef";
    let mut material = master.to_vec();
    material.extend_from_slice(&file);
    material.extend_from_slice(&1u32.to_le_bytes());
    let replica_key = blake3::derive_key(REPLICA_CONTEXT, &material);
    let object = ObjectId {
        file_id: FileId(file),
        replica_index: 1,
    };
    assert_eq!(
        keys.replica_key(&object.file_id, 1).as_bytes(),
        &replica_key
    );

    // 150 bytes in 64-byte segments: 3 segments, the last of 22 bytes.
    let plain = plaintext(150);
    let mut sealed = Vec::new();
    let d = Sealer::new(&keys.replica_key(&object.file_id, 1), object, 150, 64)
        .unwrap()
        .seal(&plain[..], &mut sealed, NoLeaves)
        .unwrap();
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&replica_key));
    let mut expected = Vec::new();
    let mut tree = RootBuilder::new();
    for (i, chunk) in plain.chunks(64).enumerate() {
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let mut ad = b"bunker object v1".to_vec();
        ad.extend_from_slice(&file);
        ad.extend_from_slice(&1u32.to_le_bytes());
        ad.extend_from_slice(&(i as u64).to_le_bytes());
        ad.extend_from_slice(&3u64.to_le_bytes());
        ad.extend_from_slice(&64u32.to_le_bytes());
        ad.extend_from_slice(&150u64.to_le_bytes());
        let mut seg = chunk.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &ad, &mut seg)
            .unwrap();
        seg.extend_from_slice(&tag);
        let mut prefixed = vec![0u8];
        prefixed.extend_from_slice(&seg);
        tree.push(*blake3::hash(&prefixed).as_bytes());
        expected.extend_from_slice(&seg);
    }
    assert_eq!(sealed, expected);
    // Three leaves: root = H(1 ‖ H(1 ‖ l0 ‖ l1) ‖ l2).
    assert_eq!(d.root, tree.root().unwrap());
    let leaves: Vec<[u8; 32]> = sealed.chunks(80).map(leaf_hash).collect();
    let inner = |l: &[u8; 32], r: &[u8; 32]| {
        let mut b = vec![1u8];
        b.extend_from_slice(l);
        b.extend_from_slice(r);
        *blake3::hash(&b).as_bytes()
    };
    assert_eq!(d.root, inner(&inner(&leaves[0], &leaves[1]), &leaves[2]));
}
