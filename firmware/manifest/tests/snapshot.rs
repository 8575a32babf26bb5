//! Encrypted, signed, versioned snapshots: a good one restores a new box; every
//! bad one is refused with a clear error and leaves the live manifest as it was.

mod common;

use bunker_manifest::*;
use common::*;
use libp2p_identity::Keypair;

struct Box_ {
    _dir: tempfile::TempDir,
    m: Manifest,
}

fn owner() -> Keypair {
    Keypair::ed25519_from_bytes([42u8; 32]).unwrap()
}

fn key() -> ManifestKey {
    ManifestKey::from_bytes([7u8; 32])
}

/// A box with some files, returning it and one snapshot of it.
fn box_with_snapshot(files: u64) -> (Box_, Vec<u8>, SnapshotInfo) {
    let (dir, mut m) = open_temp();
    for i in 0..files {
        m.put_file(
            &file(&format!("/docs/f{i}"), i),
            &[replica(0, peer(1), 10), replica(1, peer(2), 20)],
        )
        .unwrap();
    }
    let mut snap = Vec::new();
    let info = m
        .export_snapshot(&key(), &owner(), 1_800_000_000, &mut snap)
        .unwrap();
    (Box_ { _dir: dir, m }, snap, info)
}

/// Everything visible through the API, to compare before and after a refused import.
fn fingerprint(m: &Manifest) -> (u64, Vec<String>, usize) {
    let v = m.snapshot_version().unwrap();
    let docs = m.list_folder(&FolderPath::parse("/docs").unwrap()).unwrap();
    let names = docs
        .files
        .iter()
        .map(|f| format!("{}:{}", f.name, f.size))
        .collect();
    (
        v,
        names,
        m.replicas_due_for_audit(i64::MAX, 10_000).unwrap().len(),
    )
}

/// A second box that already has its own, different content at version 1.
fn live_box() -> Box_ {
    let (dir, mut m) = open_temp();
    m.put_file(&file("/docs/live-only", 99), &[]).unwrap();
    let mut sink = Vec::new();
    m.export_snapshot(&key(), &owner(), 1, &mut sink).unwrap();
    assert_eq!(m.snapshot_version().unwrap(), 1);
    Box_ { _dir: dir, m }
}

#[test]
fn snapshot_restores_a_new_box_with_the_same_words() {
    let (src, snap, info) = box_with_snapshot(30);
    assert_eq!(info.version, 1);
    assert_eq!(info.owner, owner().public().to_peer_id());
    assert_eq!(info.snapshot_len as usize, snap.len());
    assert!(
        info.compressed_len < info.db_size,
        "zstd should shrink an SQLite file"
    );

    // A host checks origin and integrity without the key.
    let seen = inspect_snapshot(&snap).unwrap();
    assert_eq!((seen.version, seen.owner), (1, info.owner));

    let (_dir, mut fresh) = open_temp();
    let got = fresh.import_snapshot(&snap, &key(), &info.owner).unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(fingerprint(&fresh), fingerprint(&src.m));
    assert!(fresh.integrity_problems().unwrap().is_empty());
    // The restored box carries on: the next snapshot is version 2.
    fresh.put_file(&file("/docs/after", 500), &[]).unwrap();
    let mut next = Vec::new();
    assert_eq!(
        fresh
            .export_snapshot(&key(), &owner(), 2, &mut next)
            .unwrap()
            .version,
        2
    );
    // And the original box accepts that newer snapshot.
    let mut src = src;
    src.m.import_snapshot(&next, &key(), &info.owner).unwrap();
    assert!(src
        .m
        .file(&FilePath::parse("/docs/after").unwrap())
        .unwrap()
        .is_some());
}

#[test]
fn snapshot_streams_from_a_file() {
    let (src, snap, info) = box_with_snapshot(10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.bin");
    std::fs::write(&path, &snap).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    assert_eq!(
        inspect_snapshot_from(&mut f).unwrap(),
        inspect_snapshot(&snap).unwrap()
    );
    let (_d, mut fresh) = open_temp();
    let got = fresh
        .import_snapshot_from(&mut f, &key(), &info.owner)
        .unwrap();
    assert_eq!(got.snapshot_len, snap.len() as u64);
    assert_eq!(fingerprint(&fresh), fingerprint(&src.m));
}

#[test]
fn snapshot_versions_only_go_up() {
    let (mut b, _s1, i1) = box_with_snapshot(1);
    let mut s2 = Vec::new();
    let i2 = b.m.export_snapshot(&key(), &owner(), 2, &mut s2).unwrap();
    assert_eq!((i1.version, i2.version), (1, 2));
    assert_eq!(b.m.snapshot_version().unwrap(), 2);
}

fn assert_refused(snap: &[u8], k: &ManifestKey, expect: impl Fn(&ImportError) -> bool, what: &str) {
    let mut live = live_box();
    let before = fingerprint(&live.m);
    let err = live
        .m
        .import_snapshot(snap, k, &owner().public().to_peer_id())
        .expect_err(&format!("{what}: import must fail"));
    assert!(expect(&err), "{what}: unexpected error {err:?}");
    assert!(!err.to_string().is_empty());
    assert_eq!(
        fingerprint(&live.m),
        before,
        "{what}: live manifest changed"
    );
    assert!(live.m.integrity_problems().unwrap().is_empty());
    assert!(live
        .m
        .file(&FilePath::parse("/docs/live-only").unwrap())
        .unwrap()
        .is_some());
}

/// Version 2 snapshot of a different manifest, so that it would be accepted if sound.
fn good_v2() -> Vec<u8> {
    let (mut b, _, _) = box_with_snapshot(20);
    let mut snap = Vec::new();
    b.m.export_snapshot(&key(), &owner(), 2, &mut snap).unwrap();
    snap
}

#[test]
fn sound_newer_snapshot_is_accepted_by_the_live_box() {
    let mut live = live_box();
    live.m
        .import_snapshot(&good_v2(), &key(), &owner().public().to_peer_id())
        .unwrap();
    assert_eq!(live.m.snapshot_version().unwrap(), 2);
    assert!(live
        .m
        .file(&FilePath::parse("/docs/live-only").unwrap())
        .unwrap()
        .is_none());
    assert_eq!(
        live.m
            .list_folder(&FolderPath::parse("/docs").unwrap())
            .unwrap()
            .files
            .len(),
        20
    );
    assert!(live.m.integrity_problems().unwrap().is_empty());
    // The live file stays in WAL mode after the restore (header bytes 18/19 == 2).
    let path = live.m.path().to_owned();
    drop(live.m);
    let header = std::fs::read(&path).unwrap();
    assert_eq!(
        (header[18], header[19]),
        (2, 2),
        "restore left the live file out of WAL mode"
    );
}

#[test]
fn truncated_snapshot_is_refused() {
    let snap = good_v2();
    for cut in [
        0,
        5,
        20,
        60,
        snap.len() / 2,
        snap.len() - 70,
        snap.len() - 1,
    ] {
        assert_refused(
            &snap[..cut],
            &key(),
            |e| matches!(e, ImportError::Truncated { .. } | ImportError::BadMagic),
            &format!("cut at {cut}"),
        );
    }
    let err = inspect_snapshot(&snap[..snap.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn bit_flipped_snapshot_is_refused() {
    let snap = good_v2();
    // Header fields, body, signature: every flip is caught.
    let positions = [
        10,
        14,
        20,
        40,
        60,
        90,
        snap.len() / 2,
        snap.len() - 80,
        snap.len() - 1,
    ];
    for pos in positions {
        let mut bad = snap.clone();
        bad[pos] ^= 0x01;
        assert_refused(
            &bad,
            &key(),
            |e| !matches!(e, ImportError::Io { .. }),
            &format!("flip at {pos}"),
        );
    }
    let mut bad = snap.clone();
    let mid = snap.len() / 2;
    bad[mid] ^= 0x80;
    let err = inspect_snapshot(&bad).unwrap_err();
    assert!(matches!(err, ImportError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("signature"), "{err}");
}

#[test]
fn snapshot_under_another_key_is_refused() {
    assert_refused(
        &good_v2(),
        &ManifestKey::from_bytes([8u8; 32]),
        |e| matches!(e, ImportError::Decrypt { chunk: 0 }),
        "wrong key",
    );
}

#[test]
fn snapshot_of_another_owner_is_refused() {
    let (_d, mut other) = open_temp();
    other.put_file(&file("/docs/x", 1), &[]).unwrap();
    let mut sink = Vec::new();
    other
        .export_snapshot(&key(), &owner(), 1, &mut sink)
        .unwrap();
    let mut snap = Vec::new();
    let stranger = Keypair::ed25519_from_bytes([43u8; 32]).unwrap();
    other
        .export_snapshot(&key(), &stranger, 2, &mut snap)
        .unwrap();
    let stranger_id = stranger.public().to_peer_id().to_string();
    assert_refused(
        &snap,
        &key(),
        |e| matches!(e, ImportError::WrongOwner { found, .. } if *found == stranger_id),
        "wrong owner",
    );

    // Someone re-signing the owner's snapshot with their own key is a wrong owner too.
    let err = inspect_snapshot(&snap).map(|i| i.owner).unwrap();
    assert_ne!(err, owner().public().to_peer_id());
}

#[test]
fn older_or_same_snapshot_is_refused() {
    // live_box is at version 1; make a box at version 3 and offer its older snapshots.
    let (mut b, s1, _) = box_with_snapshot(2);
    let mut s2 = Vec::new();
    b.m.export_snapshot(&key(), &owner(), 2, &mut s2).unwrap();

    let mut live = live_box();
    live.m
        .import_snapshot(&s2, &key(), &owner().public().to_peer_id())
        .unwrap();
    let before = fingerprint(&live.m);
    let err = live
        .m
        .import_snapshot(&s1, &key(), &owner().public().to_peer_id())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Older {
                offered: 1,
                current: 2
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("older"), "{err}");
    let err = live
        .m
        .import_snapshot(&s2, &key(), &owner().public().to_peer_id())
        .unwrap_err();
    assert!(
        matches!(err, ImportError::AlreadyCurrent { offered: 2 }),
        "{err:?}"
    );
    assert_eq!(fingerprint(&live.m), before);

    // Same through the generic checker: a version-1 snapshot against a version-1 box.
    let (_b, s1b, _) = box_with_snapshot(3);
    assert_refused(
        &s1b,
        &key(),
        |e| matches!(e, ImportError::AlreadyCurrent { .. }),
        "same version",
    );
}

#[test]
fn garbage_and_hostile_headers_are_refused_without_panicking() {
    assert_refused(
        b"",
        &key(),
        |e| matches!(e, ImportError::Truncated { .. }),
        "empty",
    );
    assert_refused(
        b"NOTASNAPSHOT-----------",
        &key(),
        |e| matches!(e, ImportError::BadMagic),
        "magic",
    );
    let snap = good_v2();
    // Format version 2.
    let mut bad = snap.clone();
    bad[9] = 2;
    assert_refused(
        &bad,
        &key(),
        |e| matches!(e, ImportError::UnsupportedFormat { found: 2, .. }),
        "format",
    );
    // compressed_len field (offset 36..44) set huge: capped before anything is allocated.
    let mut bad = snap.clone();
    bad[36..44].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_refused(
        &bad,
        &key(),
        |e| {
            matches!(
                e,
                ImportError::TooLarge {
                    field: "compressed_len",
                    ..
                }
            )
        },
        "len",
    );
    // db_size field (offset 28..36) over the cap.
    let mut bad = snap.clone();
    bad[28..36].copy_from_slice(&(MAX_DB_SIZE + 1).to_be_bytes());
    assert_refused(
        &bad,
        &key(),
        |e| {
            matches!(
                e,
                ImportError::TooLarge {
                    field: "db_size",
                    ..
                }
            )
        },
        "size",
    );
    // Trailing bytes after the signature.
    let mut bad = snap.clone();
    bad.push(0);
    assert_refused(
        &bad,
        &key(),
        |e| {
            matches!(
                e,
                ImportError::Malformed {
                    field: "trailer",
                    ..
                }
            )
        },
        "trailer",
    );
}
