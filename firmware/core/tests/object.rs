//! Sealing, opening, sidecar proofs and every way a host can damage an
//! object, end to end through the public API.

use bunker_core::proof::{verify_segment, Proof, ProofDecodeError, VerifyError};
use bunker_core::{
    Descriptor, FileId, Keys, Layout, ObjectId, OpenError, Opener, SealError, Sealer, Seed,
    Sidecar, SidecarError, SidecarWriter,
};

const SEG: u32 = 64;
const TAG: usize = 16;

fn keys() -> Keys {
    Keys::from_seed(&Seed::from_entropy(&[42u8; 32]))
}

fn object() -> ObjectId {
    ObjectId {
        file_id: FileId([5u8; 16]),
        replica_index: 1,
    }
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn seal(plain: &[u8], threads: usize) -> (Descriptor, Vec<u8>) {
    let key = keys().replica_key(&object().file_id, 1);
    let mut out = Vec::new();
    let d = Sealer::new(&key, object(), plain.len() as u64, SEG)
        .unwrap()
        .threads(threads)
        .seal(plain, &mut out, bunker_core::NoLeaves)
        .unwrap();
    (d, out)
}

fn open(d: &Descriptor, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let key = keys().replica_key(&object().file_id, 1);
    let mut out = Vec::new();
    Opener::new(&key, object()).open(d, sealed, &mut out)?;
    Ok(out)
}

fn segment(sealed: &[u8], i: usize) -> &[u8] {
    let stride = SEG as usize + TAG;
    &sealed[i * stride..((i + 1) * stride).min(sealed.len())]
}

/// Rebuilds a sealed stream from segment positions, to drop/duplicate/reorder.
fn rearrange(sealed: &[u8], order: &[usize]) -> Vec<u8> {
    order
        .iter()
        .flat_map(|&i| segment(sealed, i).to_vec())
        .collect()
}

#[test]
fn round_trip_at_boundary_sizes() {
    for len in [0, 1, 63, 64, 65, 128, 1000, 64 * 37 + 5] {
        let plain = plaintext(len);
        let (d, sealed) = seal(&plain, 1);
        let layout = Layout::new(len as u64, SEG).unwrap();
        assert_eq!(sealed.len() as u64, layout.sealed_size(), "{len}");
        assert_eq!(d.segment_count, layout.segment_count());
        assert_eq!(open(&d, &sealed).unwrap(), plain, "{len}");
    }
}

#[test]
fn multi_core_sealing_writes_the_same_bytes() {
    for len in [0, 64, 64 * 15, 64 * 16 + 1, 64 * 100 + 7, 64 * 1000] {
        let plain = plaintext(len);
        let one = seal(&plain, 1);
        for threads in [2, 3, 4] {
            assert_eq!(
                seal(&plain, threads),
                one,
                "{len} bytes on {threads} threads"
            );
        }
    }
}

#[test]
fn replicas_and_files_have_different_bytes() {
    let plain = plaintext(500);
    let (d1, s1) = seal(&plain, 1);
    let key = keys().replica_key(&object().file_id, 2);
    let other = ObjectId {
        replica_index: 2,
        ..object()
    };
    let mut s2 = Vec::new();
    let d2 = Sealer::new(&key, other, 500, SEG)
        .unwrap()
        .seal(&plain[..], &mut s2, bunker_core::NoLeaves)
        .unwrap();
    assert_ne!(s1, s2);
    assert_ne!(d1.root, d2.root);
    // Replica 2's bytes do not open as replica 1, even with its descriptor.
    assert!(matches!(
        open(&d2, &s2),
        Err(OpenError::Corrupt { index: 0, .. })
    ));
}

#[test]
fn flipped_bit_names_the_segment() {
    let (d, sealed) = seal(&plaintext(64 * 10), 1);
    for (pos, seg) in [(0, 0), (80 * 3 + 5, 3), (80 * 9 + 79, 9)] {
        let mut bad = sealed.clone();
        bad[pos] ^= 0x10;
        let err = open(&d, &bad).unwrap_err();
        assert!(
            matches!(err, OpenError::Corrupt { index, count: 10, .. } if index == seg),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!("segment {seg} of 10")),
            "{err}"
        );
    }
}

#[test]
fn dropped_segment_is_named() {
    let (d, sealed) = seal(&plaintext(64 * 10 + 3), 1);
    let order: Vec<usize> = (0..11).filter(|&i| i != 4).collect();
    let err = open(&d, &rearrange(&sealed, &order)).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Dropped {
                index: 4,
                found: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("segment 4"), "{err}");
    // The next-to-last dropped: the short last segment arrives in its place.
    let order: Vec<usize> = (0..11).filter(|&i| i != 9).collect();
    let err = open(&d, &rearrange(&sealed, &order)).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Dropped {
                index: 9,
                found: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn duplicated_segment_is_named() {
    let (d, sealed) = seal(&plaintext(64 * 10), 1);
    let err = open(&d, &rearrange(&sealed, &[0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9])).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Duplicated {
                index: 2,
                position: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("segment 2"), "{err}");
}

#[test]
fn reordered_segments_are_named() {
    let (d, sealed) = seal(&plaintext(64 * 10), 1);
    let err = open(&d, &rearrange(&sealed, &[0, 1, 2, 4, 3, 5, 6, 7, 8, 9])).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Reordered {
                index: 3,
                position: 4,
                found: 4,
                ..
            }
        ),
        "{err}"
    );
    let err = open(&d, &rearrange(&sealed, &[0, 7, 2, 3, 4, 5, 6, 1, 8, 9])).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Reordered {
                index: 1,
                position: 7,
                found: 7,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("segment 1"), "{err}");
}

#[test]
fn truncation_and_trailing_bytes_are_named() {
    let (d, sealed) = seal(&plaintext(64 * 10), 1);
    let err = open(&d, &sealed[..80 * 7]).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Truncated {
                index: 7,
                count: 10,
                ..
            }
        ),
        "{err}"
    );
    let err = open(&d, &sealed[..sealed.len() - 1]).unwrap_err();
    assert!(
        matches!(err, OpenError::Truncated { index: 9, .. }),
        "{err}"
    );
    let err = open(&d, &[]).unwrap_err();
    assert!(
        matches!(err, OpenError::Truncated { index: 0, .. }),
        "{err}"
    );
    let mut long = sealed.clone();
    long.push(0);
    assert!(matches!(
        open(&d, &long),
        Err(OpenError::TrailingData { count: 10, .. })
    ));
}

#[test]
fn no_plaintext_of_a_bad_segment_is_released() {
    let plain = plaintext(64 * 6);
    let (d, mut sealed) = seal(&plain, 1);
    sealed[80 * 3 + 1] ^= 1;
    let key = keys().replica_key(&object().file_id, 1);
    let mut out = Vec::new();
    assert!(Opener::new(&key, object())
        .open(&d, &sealed[..], &mut out)
        .is_err());
    assert_eq!(
        out,
        plain[..64 * 3],
        "only the three verified segments were written"
    );
}

#[test]
fn wrong_root_in_descriptor_is_reported() {
    let (mut d, sealed) = seal(&plaintext(300), 1);
    d.root[0] ^= 1;
    assert!(matches!(
        open(&d, &sealed),
        Err(OpenError::RootMismatch { .. })
    ));
}

#[test]
fn announced_size_must_match_the_input() {
    let key = keys().replica_key(&object().file_id, 1);
    let short = Sealer::new(&key, object(), 100, SEG).unwrap().seal(
        &[0u8; 99][..],
        Vec::new(),
        bunker_core::NoLeaves,
    );
    assert!(matches!(
        short,
        Err(SealError::InputShort {
            expected: 100,
            got: 99
        })
    ));
    for threads in [1, 2] {
        let long = Sealer::new(&key, object(), 100, SEG)
            .unwrap()
            .threads(threads)
            .seal(&[0u8; 101][..], Vec::new(), bunker_core::NoLeaves);
        assert!(matches!(long, Err(SealError::InputLong { expected: 100 })));
    }
    assert!(matches!(
        Sealer::new(&key, object(), 1, 10),
        Err(SealError::Format(_))
    ));
}

fn sealed_with_sidecar(
    len: usize,
    threads: usize,
) -> (Descriptor, Vec<u8>, Sidecar<std::fs::File>, Vec<[u8; 32]>) {
    let key = keys().replica_key(&object().file_id, 1);
    let plain = plaintext(len);
    let mut sealed = Vec::new();
    let mut leaves = Vec::new();
    let mut writer = SidecarWriter::new(tempfile::tempfile().unwrap()).unwrap();
    let d = Sealer::new(&key, object(), len as u64, SEG)
        .unwrap()
        .threads(threads)
        .seal(&plain[..], &mut sealed, &mut writer)
        .unwrap();
    let (root, file) = writer.finish().unwrap();
    assert_eq!(root, d.root);
    let mut l2 = Vec::new();
    Sealer::new(&key, object(), len as u64, SEG)
        .unwrap()
        .seal(&plain[..], Vec::new(), &mut l2)
        .unwrap();
    leaves.extend(l2);
    (d, sealed, Sidecar::open(file).unwrap(), leaves)
}

#[test]
fn every_segment_proves_from_the_sidecar() {
    for (len, threads) in [(0, 1), (64, 1), (65, 2), (64 * 33 + 1, 2), (64 * 64, 1)] {
        let (d, sealed, sidecar, leaves) = sealed_with_sidecar(len, threads);
        assert_eq!(sidecar.count(), d.segment_count);
        assert_eq!(sidecar.root(), d.root);
        for i in 0..d.segment_count {
            assert_eq!(sidecar.leaf(i).unwrap(), leaves[i as usize]);
            let proof = sidecar.proof(i).unwrap();
            let bytes = proof.to_bytes();
            assert!(bytes.len() <= bunker_core::proof::MAX_PROOF_LEN);
            let back = Proof::from_bytes(&bytes).unwrap();
            assert_eq!(back, proof);
            verify_segment(&d, i, segment(&sealed, i as usize), &back).unwrap();
        }
        assert!(matches!(
            sidecar.proof(d.segment_count),
            Err(SidecarError::IndexOutOfRange { .. })
        ));
    }
}

#[test]
fn host_flipping_bytes_is_never_paid() {
    let (d, sealed, sidecar, _) = sealed_with_sidecar(64 * 20, 1);
    let proof = sidecar.proof(7).unwrap();
    let mut seg = segment(&sealed, 7).to_vec();
    seg[10] ^= 4;
    assert_eq!(
        verify_segment(&d, 7, &seg, &proof),
        Err(VerifyError::RootMismatch {
            root: d.root,
            index: 7
        })
    );
    // The right bytes answered for another index.
    assert!(matches!(
        verify_segment(&d, 8, segment(&sealed, 7), &proof),
        Err(VerifyError::WrongIndex { .. })
    ));
    let other = Proof {
        index: 8,
        ..proof.clone()
    };
    assert!(verify_segment(&d, 8, segment(&sealed, 7), &other).is_err());
    // A sibling hash altered.
    let mut bad = proof.clone();
    bad.siblings[2][0] ^= 1;
    assert!(matches!(
        verify_segment(&d, 7, segment(&sealed, 7), &bad),
        Err(VerifyError::RootMismatch { .. })
    ));
    // A truncated segment.
    assert!(matches!(
        verify_segment(&d, 7, &segment(&sealed, 7)[..50], &proof),
        Err(VerifyError::SegmentLength {
            expected: 80,
            got: 50,
            ..
        })
    ));
    let wrong_count = Proof { count: 21, ..proof };
    assert!(matches!(
        verify_segment(&d, 7, segment(&sealed, 7), &wrong_count),
        Err(VerifyError::WrongCount { .. })
    ));
}

#[test]
fn proof_decoding_rejects_garbage_with_reasons() {
    let (_, _, sidecar, _) = sealed_with_sidecar(64 * 20, 1);
    let good = sidecar.proof(5).unwrap().to_bytes();
    assert_eq!(Proof::from_bytes(&[]), Err(ProofDecodeError::TooShort(0)));
    assert_eq!(
        Proof::from_bytes(&vec![1; 2000]),
        Err(ProofDecodeError::TooLong(2000))
    );
    let mut v = good.clone();
    v[0] = 9;
    assert_eq!(
        Proof::from_bytes(&v),
        Err(ProofDecodeError::UnknownVersion(9))
    );
    assert!(matches!(
        Proof::from_bytes(&good[..good.len() - 1]),
        Err(ProofDecodeError::Length { .. })
    ));
    let mut v = good.clone();
    v[17] += 1;
    assert!(matches!(
        Proof::from_bytes(&v),
        Err(ProofDecodeError::HashCount { .. })
    ));
    let mut v = good.clone();
    v[1..9].copy_from_slice(&20u64.to_le_bytes());
    assert!(matches!(
        Proof::from_bytes(&v),
        Err(ProofDecodeError::BadPosition {
            index: 20,
            count: 20
        })
    ));
}

#[test]
fn sidecar_rejects_unfinished_or_short_files() {
    use std::io::{Seek, SeekFrom, Write};
    let mut writer = SidecarWriter::new(tempfile::tempfile().unwrap()).unwrap();
    writer.push(&[1; 32]).unwrap();
    let (_, mut file) = writer.finish().unwrap();
    assert!(Sidecar::open(file.try_clone().unwrap()).is_ok());
    file.set_len(70).unwrap();
    assert!(matches!(
        Sidecar::open(file.try_clone().unwrap()),
        Err(SidecarError::Short { .. })
    ));
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(b"garbage!").unwrap();
    assert!(matches!(
        Sidecar::open(file),
        Err(SidecarError::BadMagic(_))
    ));
    assert!(matches!(
        Sidecar::open(vec![0u8; 10]),
        Err(SidecarError::BadMagic(_))
    ));
    assert!(matches!(
        SidecarWriter::new(tempfile::tempfile().unwrap())
            .unwrap()
            .finish(),
        Err(SidecarError::LeafCount(0))
    ));
}

#[test]
fn host_rebuilds_the_sidecar_from_the_stored_bytes() {
    use bunker_core::sidecar::build_from_sealed;
    let (d, sealed, owner_side, _) = sealed_with_sidecar(64 * 9 + 30, 2);
    let layout = d.layout().unwrap();
    let (root, file) =
        build_from_sealed(&layout, &sealed[..], tempfile::tempfile().unwrap()).unwrap();
    assert_eq!(root, d.root);
    let host_side = Sidecar::open(file).unwrap();
    for i in 0..d.segment_count {
        assert_eq!(host_side.proof(i).unwrap(), owner_side.proof(i).unwrap());
    }
    let short = build_from_sealed(
        &layout,
        &sealed[..sealed.len() - 1],
        tempfile::tempfile().unwrap(),
    );
    assert!(matches!(
        short,
        Err(SidecarError::ObjectShort {
            index: 9,
            count: 10
        })
    ));
    let mut long = sealed.clone();
    long.push(1);
    let long = build_from_sealed(&layout, &long[..], tempfile::tempfile().unwrap());
    assert!(matches!(long, Err(SidecarError::ObjectLong { count: 10 })));
    // A host that altered a byte gets a different root and would not sign.
    let mut bad = sealed.clone();
    bad[3] ^= 1;
    let (root, _) = build_from_sealed(&layout, &bad[..], tempfile::tempfile().unwrap()).unwrap();
    assert_ne!(root, d.root);
}

#[test]
fn host_answers_an_audit_from_the_stored_file_and_owner_reads_one_segment() {
    use bunker_core::sidecar::read_sealed_segment;
    use std::io::Write;
    let (d, sealed, sidecar, _) = sealed_with_sidecar(64 * 12 + 9, 1);
    let mut stored = tempfile::tempfile().unwrap();
    stored.write_all(&sealed).unwrap();
    let layout = d.layout().unwrap();
    let key = keys().replica_key(&object().file_id, 1);
    let opener = Opener::new(&key, object());
    let plain = plaintext(64 * 12 + 9);
    for i in [0u64, 5, 12] {
        let seg = read_sealed_segment(&stored, &layout, i).unwrap();
        verify_segment(&d, i, &seg, &sidecar.proof(i).unwrap()).unwrap();
        let start = i as usize * 64;
        assert_eq!(
            opener.open_segment_at(&d, i, &seg).unwrap(),
            plain[start..(start + 64).min(plain.len())]
        );
    }
    let seg5 = read_sealed_segment(&stored, &layout, 5).unwrap();
    assert!(matches!(
        opener.open_segment_at(&d, 6, &seg5),
        Err(OpenError::Corrupt { index: 6, .. })
    ));
    assert!(matches!(
        read_sealed_segment(&stored, &layout, 13),
        Err(SidecarError::IndexOutOfRange { .. })
    ));
    stored.set_len(80 * 12).unwrap();
    assert!(matches!(
        read_sealed_segment(&stored, &layout, 12),
        Err(SidecarError::ObjectShort { index: 12, .. })
    ));
}

#[test]
fn sealing_also_hashes_the_plaintext_in_the_same_pass() {
    let key = keys().replica_key(&object().file_id, 1);
    for (len, threads) in [(0usize, 1usize), (1000, 1), (64 * 300 + 7, 2)] {
        let plain = plaintext(len);
        let mut a = Vec::new();
        let (d, hash) = Sealer::new(&key, object(), len as u64, SEG)
            .unwrap()
            .threads(threads)
            .seal_and_hash(&plain[..], &mut a, bunker_core::NoLeaves)
            .unwrap();
        assert_eq!(
            hash,
            *blake3::hash(&plain).as_bytes(),
            "{len} bytes on {threads} threads"
        );
        assert_eq!((d, a), seal(&plain, 1));
    }
}
