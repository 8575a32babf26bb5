//! Audits, repair and redundancy changes through real engines: a host that
//! goes away or flips bytes fails its audits, the replica is declared lost
//! after K failures and placed again on another host, and the file still
//! reads back.

mod owner_common;

use bunker_manifest::{AuditOutcome, ContractDirection, ContractState};
use bunker_node::views::FileDetail;
use bunker_node::Policy;
use owner_common::*;

fn active_hosts(d: &FileDetail) -> Vec<String> {
    let mut v: Vec<_> = d.replicas.iter().filter(|r| r.state == "active").map(|r| r.host.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audits_pass_and_are_recorded_with_latency_and_reputation() {
    let (owner, _hosts) = swarm(2, |_| {}).await;
    put(&owner, "/a", &content(40_000, 1), Policy { copies: 2, keep_local: true }).await.unwrap();
    let audits = wait_for(30, "two passed audits per replica", || async {
        let a = owner.node.audits(100).await.unwrap();
        let passed = a.iter().filter(|x| x.outcome == "passed" && x.kind == "segment").count();
        (passed >= 4).then_some(a)
    })
    .await;
    assert!(audits.iter().all(|a| a.path == "/a" && !a.host.is_empty()));
    let peers = owner.node.peers().await.unwrap();
    assert!(peers.peers.iter().filter(|p| p.audit_successes > 0.0).count() >= 2, "{peers:?}");
    let status = owner.node.status().await.unwrap();
    assert!(status.audits_passed_24h >= 4 && status.files == 1 && status.under_replicated == 0);
    assert!(status.workers.iter().any(|w| w.name == "audit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_goes_away_fails_its_audits_and_its_replica_is_placed_again() {
    let (owner, hosts) = swarm(3, |_| {}).await;
    let data = content(100_000, 2);
    put(&owner, "/keep/me", &data, Policy { copies: 2, keep_local: false }).await.unwrap();
    let before = active_hosts(&owner.node.file("/keep/me").await.unwrap());
    let victim = hosts.iter().find(|h| before.contains(&h.node.peer_id().to_base58())).unwrap();
    let spare = hosts.iter().find(|h| !before.contains(&h.node.peer_id().to_base58())).unwrap();
    victim.node.shutdown().await;

    let detail = wait_for(60, "the lost replica to be replaced", || async {
        let d = owner.node.file("/keep/me").await.unwrap();
        let lost = d.replicas.iter().any(|r| r.state == "lost");
        (lost && active_hosts(&d).len() == 2).then_some(d)
    })
    .await;
    let after = active_hosts(&detail);
    assert!(after.contains(&spare.node.peer_id().to_base58()), "the spare host took the new replica");
    assert!(!after.contains(&victim.node.peer_id().to_base58()));
    let new = detail.replicas.iter().find(|r| r.state == "active" && r.host == spare.node.peer_id().to_base58()).unwrap();
    assert!(new.index >= 2, "a fresh replica index (new key), not a reused one: {}", new.index);
    assert!(detail.audits.iter().any(|a| a.outcome == "unreachable" || a.outcome == "timeout"));
    assert_eq!(get(&owner, "/keep/me").await.unwrap(), data, "read back from a fetched, re-sealed copy");
    // The old contract could not be released (host away): it waits as ending.
    let m = owner.manifest();
    let ending = m.contracts(ContractDirection::OursOnPeer, ContractState::Ending).unwrap();
    assert!(ending.iter().any(|c| c.contract.peer == victim.node.peer_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_flips_bytes_fails_its_audits_and_is_repaired_from_the_local_copy() {
    let (owner, hosts) = swarm(3, |_| {}).await;
    let data = content(200_000, 3);
    put(&owner, "/precious", &data, Policy { copies: 1, keep_local: true }).await.unwrap();
    let cheat = hosts.iter().find(|h| !h.hosted().is_empty()).unwrap();
    // Flip bytes all through the stored object (a bad disk, or a host cheating).
    let dir = std::fs::read_dir(cheat.store().join("hosted")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(dir.join("object")).unwrap();
    for i in (0..bytes.len()).step_by(1000) {
        bytes[i] ^= 0xff;
    }
    std::fs::write(dir.join("object"), &bytes).unwrap();

    let detail = wait_for(60, "the corrupted replica to be replaced", || async {
        let d = owner.node.file("/precious").await.unwrap();
        let lost = d.replicas.iter().any(|r| r.state == "lost" && r.host == cheat.node.peer_id().to_base58());
        (lost && active_hosts(&d).len() == 1).then_some(d)
    })
    .await;
    assert!(!active_hosts(&detail).contains(&cheat.node.peer_id().to_base58()));
    let m = owner.manifest();
    let lost = m.replicas_on_host(&cheat.node.peer_id()).unwrap();
    let history = m.audits_of_replica(lost[0].id, 10).unwrap();
    assert!(history.iter().filter(|a| a.outcome == AuditOutcome::Failed).count() >= 2, "{history:?}");
    // The cheat's contract was ended (it is reachable) and its object deleted.
    wait_for(30, "the cheat's contract to end", || async {
        let m = owner.manifest();
        let ended = m.contracts_with_peer(&cheat.node.peer_id()).unwrap();
        ended.iter().all(|c| c.state == ContractState::Ended).then_some(())
    })
    .await;
    assert_eq!(get(&owner, "/precious").await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raising_and_lowering_redundancy_places_and_releases_replicas() {
    let (owner, hosts) = swarm(3, |c| c.audit_interval = std::time::Duration::from_secs(3600)).await;
    let data = content(30_000, 4);
    put(&owner, "/r", &data, Policy { copies: 1, keep_local: true }).await.unwrap();
    let v = owner.node.set_policy("/r", Policy { copies: 3, keep_local: true }).await.unwrap();
    assert_eq!(v.active_replicas, 3);
    let held: Vec<_> = hosts.iter().map(|h| h.hosted()).collect();
    assert!(held.iter().all(|h| h.len() == 1), "one replica on each of the three hosts");
    assert_ne!(held[0][0].1, held[1][0].1);
    assert_ne!(held[1][0].1, held[2][0].1);

    // Local copy off: allowed with 3 peer copies; the sealed local object goes.
    let v = owner.node.set_policy("/r", Policy { copies: 3, keep_local: false }).await.unwrap();
    assert!(!v.has_local);
    assert_eq!(std::fs::read_dir(owner.store().join("local")).unwrap().count(), 0);
    assert_eq!(get(&owner, "/r").await.unwrap(), data, "read from the hosts");

    // Lower to 2: one contract released, its host deletes the object.
    let v = owner.node.set_policy("/r", Policy { copies: 2, keep_local: false }).await.unwrap();
    assert_eq!(v.active_replicas, 2);
    assert_eq!(hosts.iter().map(|h| h.hosted().len()).sum::<usize>(), 2);
    let m = owner.manifest();
    assert_eq!(m.contracts(ContractDirection::OursOnPeer, ContractState::Ended).unwrap().len(), 1);

    // Lowering to 1 without a local copy is refused; local copy back on re-seals it from a host.
    assert!(owner.node.set_policy("/r", Policy { copies: 1, keep_local: false }).await.is_err());
    let v = owner.node.set_policy("/r", Policy { copies: 1, keep_local: true }).await.unwrap();
    assert!(v.has_local);
    assert_eq!(v.active_replicas, 1);
    for h in &hosts {
        h.node.shutdown().await;
    }
    assert_eq!(get(&owner, "/r").await.unwrap(), data, "the re-made local copy alone serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_checks_fetch_the_whole_object_and_fail_on_a_flipped_byte() {
    let (owner, hosts) = swarm(2, |c| {
        c.full_check_interval = std::time::Duration::from_secs(2);
        c.audit_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    put(&owner, "/f", &content(70_000, 5), Policy { copies: 2, keep_local: true }).await.unwrap();
    wait_for(40, "a passed full check of each replica", || async {
        let a = owner.node.audits(100).await.unwrap();
        let hosts: std::collections::HashSet<_> =
            a.iter().filter(|x| x.kind == "full" && x.outcome == "passed").map(|x| x.host.clone()).collect();
        (hosts.len() == 2).then_some(())
    })
    .await;
    // One flipped byte near the end: a segment audit might miss it, a full check cannot.
    let victim = &hosts[0];
    let dir = std::fs::read_dir(victim.store().join("hosted")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(dir.join("object")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.join("object"), &bytes).unwrap();
    let victim_id = victim.node.peer_id().to_base58();
    wait_for(40, "a failed full check of the damaged replica", || async {
        let a = owner.node.audits(200).await.unwrap();
        a.iter().any(|x| x.kind == "full" && x.outcome != "passed" && x.host == victim_id).then_some(())
    })
    .await;
}
