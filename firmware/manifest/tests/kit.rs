//! The recovery kit: sealed, small, and readable back from file or QR text.

mod common;

use bunker_manifest::*;
use common::*;

fn kit() -> RecoveryKit {
    RecoveryKit {
        owner: peer(1),
        latest_version: 1234,
        created_at: 1_800_000_000,
        holders: (2..7)
            .map(|n| KitHolder {
                peer: peer(n),
                addresses: vec![
                    format!("/ip4/203.0.113.{n}/tcp/4001"),
                    format!("/ip4/203.0.113.{n}/udp/4001/quic-v1"),
                ],
            })
            .collect(),
    }
}

fn key() -> ManifestKey {
    ManifestKey::from_bytes([9u8; 32])
}

#[test]
fn kit_round_trips_through_text_that_fits_a_qr_code() {
    let text = kit().to_text(&key()).unwrap();
    assert!(text.starts_with(KIT_TEXT_PREFIX));
    // QR alphanumeric mode: digits, uppercase, space and $%*+-./: only.
    assert!(text
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || " $%*+-./:".contains(c)));
    // Version 40-L holds 4296 alphanumeric characters; a 5-holder kit uses a fraction.
    assert!(text.len() < 2000, "kit text is {} chars", text.len());
    assert_eq!(RecoveryKit::from_text(&text, &key()).unwrap(), kit());
    // Typed by hand: lowercase with line breaks.
    let typed: String = text
        .to_lowercase()
        .chars()
        .enumerate()
        .flat_map(|(i, c)| if i % 40 == 39 { vec![c, '\n'] } else { vec![c] })
        .collect();
    assert_eq!(RecoveryKit::from_text(&typed, &key()).unwrap(), kit());
}

#[test]
fn kit_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bunker-recovery.kit");
    kit().write_file(&path, &key()).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 1024);
    assert_eq!(RecoveryKit::read_file(&path, &key()).unwrap(), kit());
    let err = RecoveryKit::read_file(&dir.path().join("missing"), &key()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn kit_under_another_key_or_altered_is_refused() {
    let blob = kit().seal(&key()).unwrap();
    assert!(matches!(
        RecoveryKit::open(&blob, &ManifestKey::from_bytes([1; 32])),
        Err(KitError::Decrypt)
    ));
    for pos in [0, 4, 10, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[pos] ^= 1;
        assert!(
            RecoveryKit::open(&bad, &key()).is_err(),
            "flip at {pos} accepted"
        );
    }
    assert!(matches!(
        RecoveryKit::open(&blob[..20], &key()),
        Err(KitError::Truncated { .. })
    ));
    assert!(matches!(
        RecoveryKit::from_text("HELLO", &key()),
        Err(KitError::BadPrefix { .. })
    ));
    assert!(matches!(
        RecoveryKit::from_text("BUNKERKIT1:!!!", &key()),
        Err(KitError::BadText(_))
    ));
}

#[test]
fn oversized_kits_are_refused() {
    let mut k = kit();
    k.holders = (0..KIT_MAX_HOLDERS as u8 + 1)
        .map(|n| KitHolder {
            peer: peer(n),
            addresses: vec![],
        })
        .collect();
    assert!(matches!(
        k.seal(&key()),
        Err(KitError::TooLarge {
            field: "holders",
            ..
        })
    ));
    let mut k = kit();
    k.holders[0].addresses = vec!["/dns4/x".repeat(20)];
    assert!(matches!(
        k.seal(&key()),
        Err(KitError::TooLarge {
            field: "address",
            ..
        })
    ));
    let mut k = kit();
    k.holders[0].addresses = vec!["/a".into(); KIT_MAX_ADDRESSES + 1];
    assert!(matches!(
        k.seal(&key()),
        Err(KitError::TooLarge {
            field: "addresses",
            ..
        })
    ));
    // The largest allowed kit still fits a QR code.
    let big = RecoveryKit {
        owner: peer(1),
        latest_version: u64::MAX,
        created_at: i64::MAX,
        holders: (0..KIT_MAX_HOLDERS as u8)
            .map(|n| KitHolder {
                peer: peer(n),
                addresses: vec!["x".repeat(96); KIT_MAX_ADDRESSES],
            })
            .collect(),
    };
    let text = big.to_text(&key()).unwrap();
    assert!(
        text.len() <= 4296,
        "largest kit text is {} chars",
        text.len()
    );
}
