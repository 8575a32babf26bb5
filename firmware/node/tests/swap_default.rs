//! Swap contracts through real engines (DESIGN §5): a partner that loses
//! the copy it keeps for us loses, after the grace period, its own copy
//! here — and only that; it has nothing to drop in return.

mod owner_common;

use std::time::Duration;

use bunker_manifest::{ContractDirection, ContractState, ReplicaState};
use bunker_node::{NodeConfig, Policy};
use owner_common::*;

const GRACE_SECS: u64 = 4;

fn swapping(c: &mut NodeConfig) {
    c.placement.propose_swaps = true;
    c.hosting.swap_grace = Duration::from_secs(GRACE_SECS);
}

async fn connect(a: &Box_, b: &Box_) {
    let addrs = b.node.net().listen_addrs().await.unwrap();
    a.node.net().dial(b.node.peer_id(), addrs).await.unwrap();
}

/// Box H and its swap partner P each keep one file for the other as a
/// swap. P deletes H's copy: H's audits fail, the replica is lost and
/// placed on X; once the grace period has passed since the loss, H ends
/// P's swap contract here (broken) and deletes P's bytes. P, whose contract
/// for H was released by H's repair, drops nothing of H's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_that_loses_our_copy_loses_its_copy_here_after_the_grace() {
    let h = start_box(swapping).await;
    let p = start_box(swapping).await;
    let x = start_box(swapping).await;
    let (hid, pid) = (h.node.peer_id(), p.node.peer_id());

    // H's file goes to P (H knows only P yet), P's file to H.
    connect(&h, &p).await;
    put(&h, "/h.bin", &content(60_000, 1), Policy { copies: 1, keep_local: true }).await.unwrap();
    let ours_on_p = h.manifest().contracts(ContractDirection::OursOnPeer, ContractState::Active).unwrap();
    assert!(ours_on_p.len() == 1 && ours_on_p[0].contract.is_swap && ours_on_p[0].contract.peer == pid, "{ours_on_p:?}");
    let p_data = content(50_000, 2);
    put(&p, "/p.bin", &p_data, Policy { copies: 1, keep_local: true }).await.unwrap();
    let theirs = h.manifest().contracts(ContractDirection::TheirsOnUs, ContractState::Active).unwrap();
    assert!(theirs.len() == 1 && theirs[0].contract.is_swap && theirs[0].contract.peer == pid, "{theirs:?}");
    let p_contract = theirs[0].contract.id;
    assert_eq!(h.hosted().len(), 1, "H keeps P's copy");

    // X is there for H's repair.
    connect(&h, &x).await;

    // P loses H's copy.
    let on_p = p.hosted();
    assert_eq!(on_p.len(), 1, "P keeps H's copy");
    std::fs::remove_dir_all(p.store().join("hosted").join(&on_p[0].0)).unwrap();

    let lost_at = wait_for(60, "H's replica on P to be declared lost", || async {
        let r = h.manifest().replicas_on_host(&pid).unwrap();
        r.iter().find(|r| r.state == ReplicaState::Lost).map(|r| r.last_audit_at.unwrap_or(r.created_at))
    })
    .await;
    let broken = wait_for(60, "P's swap contract on H to be broken", || async {
        let m = h.manifest();
        let c = m.contract(&p_contract).unwrap().unwrap();
        (c.state == ContractState::Broken).then_some(c)
    })
    .await;
    let ended = broken.ended_at.expect("a broken contract has an end time");
    assert!(
        ended - lost_at >= GRACE_SECS as i64,
        "dropped {} s after the loss, before the {GRACE_SECS} s grace",
        ended - lost_at
    );
    assert!(h.hosted().is_empty(), "P's bytes are deleted from H");

    // H's file was placed again, on X.
    wait_for(60, "H's replica to be placed on X", || async {
        let m = h.manifest();
        let active = m.replicas_on_host(&x.node.peer_id()).unwrap();
        active.iter().any(|r| r.state == ReplicaState::Active).then_some(())
    })
    .await;
    // P still reads its own file (its local copy), and keeps nothing of H's
    // to drop: H's repair released the contract P had.
    assert_eq!(get(&p, "/p.bin").await.unwrap(), p_data);
    let p_for_h = p.manifest().contracts_with_peer(&hid).unwrap();
    assert!(
        p_for_h.iter().all(|c| c.contract.direction != ContractDirection::TheirsOnUs || c.state != ContractState::Active),
        "P's contract for H's lost copy is not active: {p_for_h:?}"
    );
    assert!(
        p_for_h.iter().all(|c| c.state != ContractState::Broken),
        "P drops nothing of H's in return: {p_for_h:?}"
    );
    for b in [h, p, x] {
        b.node.shutdown().await;
    }
}
