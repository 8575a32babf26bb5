//! Replication bookkeeping: holders of our snapshots feed the recovery kit;
//! snapshots we hold for others only ever move to newer versions.

mod common;

use bunker_manifest::*;
use common::*;
use libp2p_identity::Keypair;

#[test]
fn recovery_kit_lists_the_holders_of_the_newest_snapshots_with_addresses() {
    let (_d, mut m) = open_temp();
    let owner = Keypair::ed25519_from_bytes([42u8; 32]).unwrap();
    let key = ManifestKey::from_bytes([3; 32]);
    let mut sink = Vec::new();
    m.export_snapshot(&key, &owner, 10, &mut sink).unwrap();
    m.export_snapshot(&key, &owner, 11, &mut sink).unwrap();

    for n in 0..12u8 {
        m.upsert_peer(&PeerSighting {
            peer: peer(n),
            addresses: vec![
                format!("/ip4/198.51.100.{n}/tcp/4001"),
                format!("/ip4/10.0.0.{n}/tcp/4001"),
            ],
            ln_node_id: None,
            seen_at: 100 + n as i64,
        })
        .unwrap();
        // Peers 0..4 hold version 2, the others only version 1.
        m.record_snapshot_holder(&peer(n), if n < 4 { 2 } else { 1 }, 200)
            .unwrap();
    }
    // A late confirmation of an old version does not lower what peer 0 holds.
    m.record_snapshot_holder(&peer(0), 1, 300).unwrap();
    let holders = m.snapshot_holders().unwrap();
    assert_eq!(holders.len(), 12);
    assert!(holders[..4].iter().all(|h| h.version == 2));
    assert!(
        holders
            .iter()
            .find(|h| h.peer == peer(0))
            .unwrap()
            .stored_at
            == 200
    );

    let kit = m.recovery_kit(owner.public().to_peer_id(), 500).unwrap();
    assert_eq!(kit.latest_version, 2);
    assert_eq!(kit.holders.len(), KIT_MAX_HOLDERS);
    let first_four: Vec<_> = kit.holders[..4].iter().map(|h| h.peer).collect();
    for n in 0..4 {
        assert!(
            first_four.contains(&peer(n)),
            "holder of the newest version missing"
        );
    }
    assert!(kit.holders.iter().all(|h| h.addresses.len() == 2));
    let text = kit.to_text(&key).unwrap();
    assert_eq!(RecoveryKit::from_text(&text, &key).unwrap(), kit);

    m.remove_snapshot_holder(&peer(0)).unwrap();
    assert_eq!(m.snapshot_holders().unwrap().len(), 11);
}

#[test]
fn held_snapshots_only_move_forward() {
    let (_d, mut host) = open_temp();
    let owner = Keypair::ed25519_from_bytes([50u8; 32]).unwrap();
    let key = ManifestKey::from_bytes([4; 32]);
    let (_d2, mut owners_box) = open_temp();
    let mut s1 = Vec::new();
    let mut s2 = Vec::new();
    owners_box
        .export_snapshot(&key, &owner, 1, &mut s1)
        .unwrap();
    owners_box
        .export_snapshot(&key, &owner, 2, &mut s2)
        .unwrap();
    let i1 = inspect_snapshot(&s1).unwrap();
    let i2 = inspect_snapshot(&s2).unwrap();

    host.record_held_snapshot(&i2, "snapshots/a", 10).unwrap();
    let err = host
        .record_held_snapshot(&i1, "snapshots/b", 11)
        .unwrap_err();
    assert!(
        matches!(
            err,
            QueryError::Stale {
                offered: 1,
                current: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = host
        .record_held_snapshot(&i2, "snapshots/b", 11)
        .unwrap_err();
    assert!(
        matches!(
            err,
            QueryError::Stale {
                offered: 2,
                current: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let held = host.held_snapshot(&i2.owner).unwrap().unwrap();
    assert_eq!(
        (held.version, held.path.as_str(), held.bytes),
        (2, "snapshots/a", s2.len() as u64)
    );
    assert!(host.held_snapshot(&peer(1)).unwrap().is_none());
}
