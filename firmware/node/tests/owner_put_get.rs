//! Put, get, list and remove through real engines on loopback swarms.

mod owner_common;

use bunker_manifest::{ContractDirection, ContractState};
use bunker_node::{Policy, PutError};
use owner_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_copies_without_local_copy_put_different_bytes_on_two_hosts_and_read_back_identical() {
    let (owner, hosts) = swarm(3, |_| {}).await;
    let data = content(300_000, 1);
    let view = put(&owner, "/docs/report.pdf", &data, Policy { copies: 2, keep_local: false }).await.unwrap();
    assert_eq!((view.size, view.active_replicas, view.has_local), (300_000, 2, false));

    let holders: Vec<_> = hosts.iter().filter(|h| !h.hosted().is_empty()).collect();
    assert_eq!(holders.len(), 2, "two replicas on two distinct hosts");
    let a = &holders[0].hosted()[0].1;
    let b = &holders[1].hosted()[0].1;
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b, "each replica is sealed under its own key");
    assert!(!a.windows(64).any(|w| w == &data[..64]), "hosts never see plaintext");
    assert!(owner.store().join("local").read_dir().map(|d| d.count()).unwrap_or(0) == 0);

    assert_eq!(get(&owner, "/docs/report.pdf").await.unwrap(), data);

    let detail = owner.node.file("/docs/report.pdf").await.unwrap();
    assert_eq!(detail.blake3, blake3::hash(&data).to_hex().to_string());
    let mut indices: Vec<_> = detail.replicas.iter().map(|r| r.index).collect();
    indices.sort();
    assert_eq!(indices, [0, 1]);
    assert_ne!(detail.replicas[0].host, detail.replicas[1].host);
    let contracts = owner.node.contracts().await.unwrap();
    assert_eq!(contracts.iter().filter(|c| c.direction == "ours_on_peer" && c.state == "active").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_local_copy_and_one_copy_is_refused_before_anything_is_stored() {
    let (owner, hosts) = swarm(2, |_| {}).await;
    let err = put(&owner, "/a", b"hello", Policy { copies: 1, keep_local: false }).await.unwrap_err();
    assert!(matches!(&err, PutError::Policy(m) if m.contains("at least 2")), "{err}");
    let err = put(&owner, "/a", b"hello", Policy { copies: 200, keep_local: true }).await.unwrap_err();
    assert!(matches!(err, PutError::Policy(_)), "{err}");
    assert!(hosts.iter().all(|h| h.hosted().is_empty()));
    assert_eq!(owner.node.list("/").await.unwrap().files.len(), 1, "only /MANIFEST.db");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_local_copy_is_sealed_and_read_first_and_a_wrong_size_leaves_nothing() {
    let (owner, hosts) = swarm(2, |_| {}).await;
    let data = content(50_000, 2);
    let view = put(&owner, "/photos/cat.jpg", &data, Policy { copies: 1, keep_local: true }).await.unwrap();
    assert!(view.has_local);
    let local: Vec<_> = std::fs::read_dir(owner.store().join("local")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(local.len(), 1);
    let sealed = std::fs::read(local[0].path().join("object")).unwrap();
    assert!(!sealed.windows(64).any(|w| w == &data[..64]), "a stolen disk reveals nothing");
    let hosted: Vec<_> = hosts.iter().flat_map(|h| h.hosted()).collect();
    assert_eq!(hosted.len(), 1);
    assert_ne!(hosted[0].1, sealed, "the local copy has its own key too");

    // Read with every host gone: the local copy serves.
    for h in &hosts {
        h.node.shutdown().await;
    }
    assert_eq!(get(&owner, "/photos/cat.jpg").await.unwrap(), data);

    let listing = owner.node.list("/").await.unwrap();
    assert!(listing.files[0].is_manifest && listing.files[0].path == "/MANIFEST.db");
    assert_eq!(listing.folders, ["photos"]);
    let photos = owner.node.list("/photos").await.unwrap();
    assert_eq!(photos.files.len(), 1);
    assert!(!photos.files[0].is_manifest);

    // Announced 10 bytes more than sent: refused, nothing recorded, staging empty.
    let err = owner
        .node
        .put("/short", 60, Policy { copies: 0, keep_local: true }, std::io::Cursor::new(vec![7u8; 50]))
        .await
        .unwrap_err();
    assert!(matches!(err, PutError::SizeMismatch { expected: 60, got: 50, .. }), "{err}");
    let err = owner
        .node
        .put("/long", 40, Policy { copies: 0, keep_local: true }, std::io::Cursor::new(vec![7u8; 50]))
        .await
        .unwrap_err();
    assert!(matches!(err, PutError::SizeMismatch { expected: 40, .. }), "{err}");
    assert!(owner.node.file("/short").await.is_err() && owner.node.file("/long").await.is_err());
    let staging = std::fs::read_dir(owner.store().join("staging")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staging, 0, "nothing left in staging");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remove_releases_the_contracts_on_the_hosts() {
    let (owner, hosts) = swarm(2, |_| {}).await;
    let data = content(20_000, 3);
    put(&owner, "/tmp/x", &data, Policy { copies: 2, keep_local: true }).await.unwrap();
    assert_eq!(hosts.iter().map(|h| h.hosted().len()).sum::<usize>(), 2);
    owner.node.remove("/tmp/x").await.unwrap();
    assert!(owner.node.file("/tmp/x").await.is_err());
    assert!(get(&owner, "/tmp/x").await.is_err());
    for h in &hosts {
        assert!(h.hosted().is_empty(), "host deleted the released object");
        let m = h.manifest();
        assert!(m.contracts(ContractDirection::TheirsOnUs, ContractState::Active).unwrap().is_empty());
    }
    let m = owner.manifest();
    assert_eq!(m.contracts(ContractDirection::OursOnPeer, ContractState::Ended).unwrap().len(), 2);
    assert_eq!(std::fs::read_dir(owner.store().join("local")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn not_enough_hosts_fails_the_put_and_releases_what_was_placed() {
    let (owner, hosts) = swarm(1, |_| {}).await;
    let err = put(&owner, "/big", &content(10_000, 4), Policy { copies: 2, keep_local: false }).await.unwrap_err();
    assert!(matches!(err, PutError::Placement { placed: 1, wanted: 2, .. }), "{err}");
    assert!(hosts[0].hosted().is_empty(), "the one placed replica was released");
    assert!(owner.node.file("/big").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_damaged_local_copy_falls_back_to_a_host_without_repeating_bytes() {
    let (owner, _hosts) = swarm(1, |c| c.audit_interval = std::time::Duration::from_secs(3600)).await;
    let data = content(200_000, 6);
    put(&owner, "/fallback", &data, Policy { copies: 1, keep_local: true }).await.unwrap();
    let local = std::fs::read_dir(owner.store().join("local")).unwrap().next().unwrap().unwrap().path();
    let mut sealed = std::fs::read(local.join("object")).unwrap();
    let mid = sealed.len() / 2;
    sealed[mid] ^= 0x55;
    std::fs::write(local.join("object"), &sealed).unwrap();
    // The first half comes from the local copy, the rest from the host.
    assert_eq!(get(&owner, "/fallback").await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_proposing_swaps_gets_a_swap_contract_that_owes_nothing() {
    let (owner, hosts) = swarm(1, |c| c.placement.propose_swaps = true).await;
    put(&owner, "/swap", &content(40_000, 7), Policy { copies: 1, keep_local: true }).await.unwrap();
    let ours = owner.node.contracts().await.unwrap();
    assert_eq!(ours.len(), 1);
    assert!(ours[0].is_swap && ours[0].price_msat_per_gib_day == 0, "{ours:?}");
    let theirs = hosts[0].node.contracts().await.unwrap();
    assert!(theirs.iter().any(|c| c.direction == "theirs_on_us" && c.is_swap));
    // Audited like any replica.
    wait_for(30, "a passed audit of the swap replica", || async {
        let a = owner.node.audits(10).await.unwrap();
        a.iter().any(|x| x.outcome == "passed").then_some(())
    })
    .await;
}
