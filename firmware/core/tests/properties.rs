//! Property tests: round trips, multi-core equivalence, and that every kind
//! of damage is caught and named; arbitrary bytes never panic the proof
//! decoder or the opener.

use bunker_core::proof::{verify_segment, Proof};
use bunker_core::{
    Descriptor, FileId, Keys, NoLeaves, ObjectId, OpenError, Opener, Sealer, Seed, Sidecar,
    SidecarWriter,
};
use proptest::prelude::*;

const TAG: usize = 16;

/// Cases per property: small enough for CI in debug builds; set
/// `PROPTEST_CASES` for a longer search.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key_and_object() -> (bunker_core::ReplicaKey, ObjectId) {
    let keys = Keys::from_seed(&Seed::from_entropy(&[9u8; 32]));
    let object = ObjectId {
        file_id: FileId([0xab; 16]),
        replica_index: 3,
    };
    (keys.replica_key(&object.file_id, 3), object)
}

fn seal(plain: &[u8], seg: u32, threads: usize) -> (Descriptor, Vec<u8>) {
    let (key, object) = key_and_object();
    let mut out = Vec::new();
    let d = Sealer::new(&key, object, plain.len() as u64, seg)
        .unwrap()
        .threads(threads)
        .seal(plain, &mut out, NoLeaves)
        .unwrap();
    (d, out)
}

fn open(d: &Descriptor, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let (key, object) = key_and_object();
    let mut out = Vec::new();
    Opener::new(&key, object).open(d, sealed, &mut out)?;
    Ok(out)
}

/// Sealed segments split apart.
fn segments(sealed: &[u8], seg: u32) -> Vec<Vec<u8>> {
    sealed
        .chunks(seg as usize + TAG)
        .map(<[u8]>::to_vec)
        .collect()
}

/// An object of at least two segments.
fn object_strategy() -> impl Strategy<Value = (Vec<u8>, u32)> {
    (64u32..=200).prop_flat_map(|seg| {
        (
            proptest::collection::vec(any::<u8>(), (seg as usize + 1)..(seg as usize * 12)),
            Just(seg),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn sealing_round_trips_on_any_core_count(
        plain in proptest::collection::vec(any::<u8>(), 0..4000),
        seg in 64u32..=300,
        threads in 1usize..=3,
    ) {
        let (d, sealed) = seal(&plain, seg, threads);
        prop_assert_eq!(&seal(&plain, seg, 1), &(d, sealed.clone()));
        prop_assert_eq!(open(&d, &sealed).unwrap(), plain);
    }

    #[test]
    fn flipped_bit_is_caught_in_its_segment((plain, seg) in object_strategy(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (d, mut sealed) = seal(&plain, seg, 1);
        let pos = pos.index(sealed.len());
        sealed[pos] ^= 1 << bit;
        let index = (pos / (seg as usize + TAG)) as u64;
        match open(&d, &sealed) {
            Err(OpenError::Corrupt { index: i, .. }) => prop_assert_eq!(i, index),
            other => prop_assert!(false, "flip at {} gave {:?}", pos, other),
        }
    }

    #[test]
    fn dropped_segment_is_named((plain, seg) in object_strategy(), which in any::<prop::sample::Index>()) {
        let (d, sealed) = seal(&plain, seg, 1);
        let mut parts = segments(&sealed, seg);
        let count = parts.len() as u64;
        let i = which.index(parts.len()) as u64;
        parts.remove(i as usize);
        let err = open(&d, &parts.concat()).unwrap_err();
        if i == count - 1 {
            prop_assert!(matches!(err, OpenError::Truncated { index, .. } if index == i), "{}", err);
        } else {
            prop_assert!(matches!(err, OpenError::Dropped { index, found, .. } if index == i && found == i + 1), "{}", err);
        }
    }

    #[test]
    fn duplicated_segment_is_named((plain, seg) in object_strategy(), which in any::<prop::sample::Index>()) {
        let (d, sealed) = seal(&plain, seg, 1);
        let mut parts = segments(&sealed, seg);
        let count = parts.len() as u64;
        let i = which.index(parts.len()) as u64;
        parts.insert(i as usize + 1, parts[i as usize].clone());
        let err = open(&d, &parts.concat()).unwrap_err();
        if i == count - 1 {
            prop_assert!(matches!(err, OpenError::TrailingData { .. }), "{}", err);
        } else {
            prop_assert!(matches!(err, OpenError::Duplicated { index, position, .. } if index == i && position == i + 1), "{}", err);
        }
    }

    #[test]
    fn swapped_segments_are_named((plain, seg) in object_strategy(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let (d, sealed) = seal(&plain, seg, 1);
        let mut parts = segments(&sealed, seg);
        let (i, j) = (a.index(parts.len()), b.index(parts.len()));
        let (i, j) = (i.min(j), i.max(j));
        prop_assume!(i != j && parts[i] != parts[j]);
        parts.swap(i, j);
        let err = open(&d, &parts.concat()).unwrap_err();
        prop_assert!(
            matches!(err, OpenError::Reordered { index, position, found, .. } if index == i as u64 && position == j as u64 && found == j as u64),
            "swap {} {}: {}", i, j, err
        );
    }

    #[test]
    fn truncation_is_named((plain, seg) in object_strategy(), cut in any::<prop::sample::Index>()) {
        let (d, sealed) = seal(&plain, seg, 1);
        let len = cut.index(sealed.len());
        let err = open(&d, &sealed[..len]).unwrap_err();
        let index = (len / (seg as usize + TAG)) as u64;
        prop_assert!(matches!(err, OpenError::Truncated { index: i, .. } if i == index), "cut at {}: {}", len, err);
    }

    #[test]
    fn proofs_verify_only_the_right_segment((plain, seg) in object_strategy(), which in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
        let (key, object) = key_and_object();
        let mut sealed = Vec::new();
        let mut writer = SidecarWriter::new(std::io::Cursor::new(Vec::new())).unwrap();
        let d = Sealer::new(&key, object, plain.len() as u64, seg).unwrap().seal(&plain[..], &mut sealed, &mut writer).unwrap();
        let (_, cursor) = writer.finish().unwrap();
        let sidecar = Sidecar::open(cursor.into_inner()).unwrap();
        let parts = segments(&sealed, seg);
        let i = which.index(parts.len());
        let proof = Proof::from_bytes(&sidecar.proof(i as u64).unwrap().to_bytes()).unwrap();
        prop_assert!(verify_segment(&d, i as u64, &parts[i], &proof).is_ok());
        let leaf = bunker_core::leaf_hash(&parts[i]);
        prop_assert!(proof.verify_leaf_with_rs_merkle(&leaf, &d.root));
        let mut wrong_root = d.root;
        wrong_root[5] ^= 1;
        prop_assert!(!proof.verify_leaf(&leaf, &wrong_root));
        prop_assert!(!proof.verify_leaf_with_rs_merkle(&leaf, &wrong_root));
        let mut bad = parts[i].clone();
        let at = flip.index(bad.len());
        bad[at] ^= 0x80;
        prop_assert!(verify_segment(&d, i as u64, &bad, &proof).is_err());
        let other = (i + 1) % parts.len();
        prop_assert!(verify_segment(&d, other as u64, &parts[other], &proof).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_proof_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        if let Ok(p) = Proof::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes(), bytes);
            prop_assert_eq!(p.verify_leaf(&[0; 32], &[1; 32]), p.verify_leaf_with_rs_merkle(&[0; 32], &[1; 32]));
        }
    }

    #[test]
    fn near_valid_proofs_never_panic(index in 0u64..5000, count in 1u64..5000, hashes in 0u8..40, extra in 0usize..3) {
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&index.to_le_bytes());
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.push(hashes);
        bytes.extend(std::iter::repeat_n(7u8, hashes as usize * 32 + extra));
        if let Ok(p) = Proof::from_bytes(&bytes) {
            prop_assert!(index < count && extra == 0);
            prop_assert!(!p.verify_leaf(&[0; 32], &[1; 32]));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_opener(bytes in proptest::collection::vec(any::<u8>(), 0..2000), size in 0u64..2000, seg in 64u32..200) {
        let d = Descriptor { version: 1, root: [0; 32], size, segment_size: seg, segment_count: size.div_ceil(seg as u64).max(1) };
        prop_assert!(open(&d, &bytes).is_err());
    }

    #[test]
    fn arbitrary_descriptors_are_checked_not_trusted(bytes in proptest::collection::vec(any::<u8>(), 53..=53)) {
        if let Ok(d) = Descriptor::from_bytes(&bytes) {
            prop_assert!(d.layout().is_ok());
            prop_assert!(open(&d, &[]).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// A sidecar damaged on disk gives errors, never a panic or a huge
    /// allocation.
    #[test]
    fn damaged_sidecars_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..600), count in 1u64..40, index in 0u64..64) {
        if bytes.len() >= 64 && count % 2 == 0 {
            // Often give it a valid header so the level reads are reached.
            bytes[..8].copy_from_slice(b"BNKSIDE1");
            bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
            bytes[16..24].copy_from_slice(&count.to_le_bytes());
        }
        if let Ok(sidecar) = Sidecar::open(bytes) {
            match sidecar.proof(index) {
                Ok(p) => prop_assert!(index < sidecar.count() && p.siblings.len() <= 30),
                Err(_) => prop_assert!(index >= sidecar.count()),
            }
            let _ = sidecar.leaf(index);
        }
    }
}
