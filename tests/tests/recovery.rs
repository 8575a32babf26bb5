//! Disaster recovery end to end (DESIGN §7), on an in-process cluster of real
//! engines: a box stores files on the cluster and replicates its manifest,
//! then the box and its disk are gone; a new box given the same 24 words
//! and an empty disk gets the manifest back from the holders (through the
//! DHT, or through the recovery kit when the DHT is out of reach), and with
//! it every file, byte for byte, and its audits.
//!
//! The lost box is started here rather than by the cluster, because the test
//! must keep its words.

use std::path::Path;
use std::time::{Duration, Instant};

use bunker_core::{Keys, Seed};
use bunker_manifest::Manifest;
use bunker_net::{ManifestRequest, ManifestResponse, Multiaddr, Net, NetConfig, PeerId};
use bunker_node::recovery::{RestoreProgress, RestoreReport, RestoreStage};
use bunker_node::{Node, NodeParts, Policy};
use bunker_tests::cluster::{random_bytes, test_config, wait_until, Cluster, ClusterSpec};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// Files of mixed sizes (4 KiB segments in test_config: 1 to 489 segments),
/// some kept locally.
fn files() -> Vec<(&'static str, Vec<u8>, u8, bool)> {
    vec![
        ("/photos/cat.jpg", random_bytes(300_000), 2, true),
        ("/docs/notes.txt", random_bytes(17), 2, false),
        ("/video/big.bin", random_bytes(2_000_000), 3, false),
        ("/music/a/song.flac", random_bytes(65_537), 2, true),
    ]
}

/// A box outside the cluster's own, with words the test keeps; it dials the
/// boxes in `dial`.
async fn start_box(seed: &Seed, dir: &Path, dial: &[(PeerId, Vec<Multiaddr>)]) -> Node {
    std::fs::create_dir_all(dir).unwrap();
    let keys = Keys::from_seed(seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.expect("swarm starts");
    let manifest = Manifest::open(dir.join("MANIFEST.db")).expect("MANIFEST.db opens");
    let seed = Seed::from_phrase(&seed.phrase()).expect("same words");
    let node = Node::start(NodeParts { seed, config: test_config(&dir.join("store")), manifest, net, inbound, ln: None })
        .await
        .expect("engine starts");
    for (peer, addrs) in dial {
        let _ = node.net().dial(*peer, addrs.clone()).await;
    }
    node
}

fn everyone(cluster: &Cluster) -> Vec<(PeerId, Vec<Multiaddr>)> {
    cluster.boxes.iter().map(|b| (b.peer_id, b.net_addrs.clone())).collect()
}

async fn put(node: &Node, path: &str, bytes: &[u8], copies: u8, keep_local: bool) {
    let body = std::io::Cursor::new(bytes.to_vec());
    tokio::time::timeout(Duration::from_secs(120), node.put(path, bytes.len() as u64, Policy { copies, keep_local }, body))
        .await
        .unwrap_or_else(|_| panic!("put {path}: not done within 120 s"))
        .unwrap_or_else(|e| panic!("put {path}: {e}"));
}

async fn get(node: &Node, path: &str) -> Vec<u8> {
    let mut s = node.get(path).await.unwrap_or_else(|e| panic!("get {path}: {e}"));
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), s.body.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("get {path}: not done within 120 s"))
        .unwrap_or_else(|e| panic!("get {path}: {e}"));
    assert_eq!(out.len() as u64, s.len);
    out
}

async fn restore(node: &Node, kit: Option<bunker_manifest::RecoveryKit>) -> (RestoreReport, RestoreProgress) {
    let (tx, rx) = watch::channel(RestoreProgress::default());
    let report = tokio::time::timeout(Duration::from_secs(300), node.restore(kit, tx))
        .await
        .expect("restore finishes within 300 s")
        .unwrap_or_else(|e| panic!("restore failed: {e}"));
    let last = rx.borrow().clone();
    (report, last)
}

/// (contract id, peer, price, retrieval price) of our contracts, sorted.
async fn our_contracts(node: &Node) -> Vec<(String, String, u64, u64)> {
    let mut v: Vec<_> = node
        .contracts()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.direction == "ours_on_peer" && c.state == "active")
        .map(|c| (c.id, c.peer, c.price_msat_per_gib_day, c.retrieval_price_msat))
        .collect();
    v.sort();
    v
}

fn snapshot_file(cluster: &Cluster, holder: usize, owner: &PeerId, version: u64) -> std::path::PathBuf {
    cluster.boxes[holder].config.store_root.join("manifests").join(format!("{owner}-{version}.snap"))
}

/// The whole story: files of mixed sizes stored, the manifest replicated,
/// the box lost, a new box with the same words restores through the DHT.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_box_comes_back_from_its_words_with_every_file_byte_identical() {
    let cluster = Cluster::start(ClusterSpec::new(4).without_lightning()).await;
    let seed = Seed::generate();
    let lost = tempfile::tempdir().unwrap();
    let a = start_box(&seed, lost.path(), &everyone(&cluster)).await;
    let owner = a.peer_id();
    let files = files();
    for (path, bytes, copies, keep_local) in &files {
        put(&a, path, bytes, *copies, *keep_local).await;
    }
    let contracts = our_contracts(&a).await;
    assert_eq!(contracts.len(), 9, "2 + 2 + 3 + 2 replicas, one contract each");
    let rep = a.replicate_manifest_now(Some(3)).await.expect("manifest replicated");
    assert_eq!(rep.stored.len(), 3, "{rep:?}");
    a.shutdown().await;
    drop(a);
    drop(lost); // the box and its disk are gone

    let fresh = tempfile::tempdir().unwrap();
    let b = start_box(&seed, fresh.path(), &everyone(&cluster)).await;
    assert_eq!(b.peer_id(), owner, "same words, same PeerId");
    let t_restored = bunker_now();
    let (report, progress) = restore(&b, None).await;
    tracing::info!(target: "bunker_tests", ?report, "restore report");
    assert!(report.imported);
    assert_eq!(report.version, rep.version);
    assert!(report.dht_holders >= 3, "holders found through the DHT: {report:?}");
    assert_eq!(report.files, files.len() as u64);
    assert_eq!(report.files_restored, 2, "both keep-local files fetched eagerly: {report:?}");
    assert!(report.files_failed.is_empty(), "{:?}", report.files_failed);
    assert_eq!((progress.stage, progress.files_restored, progress.files_to_restore), (RestoreStage::Done, 2, 2));

    for (path, bytes, _, keep_local) in &files {
        let detail = b.file(path).await.unwrap();
        assert_eq!(detail.file.has_local, *keep_local, "{path}: local copy as before");
        assert_eq!(&get(&b, path).await, bytes, "{path} byte-identical");
    }
    assert_eq!(our_contracts(&b).await, contracts, "same contracts at the same prices");
    wait_until("audits resume on the restored box", Duration::from_secs(60), || {
        let b = b.clone();
        async move {
            let passed = b.audits(200).await.map_err(|e| e.to_string())?.into_iter().filter(|a| a.at >= t_restored && a.outcome == "passed").count();
            if passed >= 3 {
                Ok(passed)
            } else {
                Err(format!("{passed} passed audits since the restore"))
            }
        }
    })
    .await;
    b.shutdown().await;
    cluster.shutdown().await;
}

fn bunker_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// No bootstrap peer, no DHT: the recovery kit alone leads to the holders.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_only_the_recovery_kit_the_manifest_and_files_come_back() {
    let cluster = Cluster::start(ClusterSpec::new(4).without_lightning()).await;
    let seed = Seed::generate();
    let lost = tempfile::tempdir().unwrap();
    let a = start_box(&seed, lost.path(), &everyone(&cluster)).await;
    let files = files();
    for (path, bytes, copies, keep_local) in &files {
        put(&a, path, bytes, *copies, *keep_local).await;
    }
    a.replicate_manifest_now(Some(4)).await.expect("manifest replicated");
    let kit_text = a.recovery_kit_text().await.unwrap();
    a.shutdown().await;
    drop(a);
    drop(lost);

    let fresh = tempfile::tempdir().unwrap();
    let b = start_box(&seed, fresh.path(), &[]).await;
    let kit = b.open_recovery_kit(kit_text.as_bytes()).expect("the words open the kit");
    assert_eq!(kit.holders.len(), 4);
    assert!(kit.holders.iter().all(|h| !h.addresses.is_empty()), "every holder has an address: {kit:?}");
    let (report, _) = restore(&b, Some(kit)).await;
    assert!(report.imported, "{report:?}");
    assert_eq!(report.files_restored, 2, "{report:?}");
    for (path, bytes, _, _) in &files {
        assert_eq!(&get(&b, path).await, bytes, "{path} byte-identical");
    }
    b.shutdown().await;
    cluster.shutdown().await;
}

/// One holder serves an older snapshot under the newer version, one serves
/// altered bytes: both are rejected with their reason, the newest valid wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn older_and_tampered_manifests_are_rejected_and_the_newest_valid_wins() {
    let cluster = Cluster::start(ClusterSpec::new(4).without_lightning()).await;
    let seed = Seed::generate();
    let lost = tempfile::tempdir().unwrap();
    let a = start_box(&seed, lost.path(), &everyone(&cluster)).await;
    let owner = a.peer_id();
    let first = random_bytes(50_000);
    let second = random_bytes(70_000);
    put(&a, "/first.bin", &first, 2, false).await;
    let v1 = a.replicate_manifest_now(Some(4)).await.unwrap();
    assert_eq!(v1.stored.len(), 4);
    let old = std::fs::read(snapshot_file(&cluster, 0, &owner, v1.version)).expect("holder 0 keeps v1");
    put(&a, "/second.bin", &second, 2, false).await;
    let v2 = a.replicate_manifest_now(Some(4)).await.unwrap();
    assert_eq!(v2.stored.len(), 4);
    assert!(v2.version > v1.version);
    a.shutdown().await;
    drop(a);
    drop(lost);

    // Holder 0 replays the old snapshot as the new version; holder 1 flips a byte.
    std::fs::write(snapshot_file(&cluster, 0, &owner, v2.version), &old).unwrap();
    let tampered = snapshot_file(&cluster, 1, &owner, v2.version);
    let mut bytes = std::fs::read(&tampered).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&tampered, bytes).unwrap();

    let fresh = tempfile::tempdir().unwrap();
    let b = start_box(&seed, fresh.path(), &everyone(&cluster)).await;
    let (report, _) = restore(&b, None).await;
    assert_eq!(report.version, v2.version, "{report:?}");
    let outcome = |i: usize| {
        let id = cluster.boxes[i].peer_id.to_base58();
        report.holders.iter().find(|o| o.peer == id).unwrap_or_else(|| panic!("box {i} not tried: {report:?}")).clone()
    };
    assert_eq!(outcome(0).outcome, "rejected");
    assert!(outcome(0).detail.contains("the signed header says"), "{:?}", outcome(0));
    assert_eq!(outcome(1).outcome, "rejected");
    assert!(outcome(1).detail.contains("does not verify"), "{:?}", outcome(1));
    let from = cluster.index_of(report.from.as_deref().expect("imported from a holder"));
    assert!(from == 2 || from == 3, "imported from an honest holder, got box {from}");
    assert_eq!(get(&b, "/first.bin").await, first);
    assert_eq!(get(&b, "/second.bin").await, second);
    b.shutdown().await;
    cluster.shutdown().await;
}

/// Only the owner reaches its snapshot: another box can neither fetch it
/// nor overwrite it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_other_than_the_owner_cannot_fetch_or_replace_its_manifest() {
    let cluster = Cluster::start(ClusterSpec::new(4).without_lightning()).await;
    let seed = Seed::generate();
    let dir = tempfile::tempdir().unwrap();
    let a = start_box(&seed, dir.path(), &everyone(&cluster)).await;
    let owner = a.peer_id();
    put(&a, "/x.bin", &random_bytes(10_000), 2, false).await;
    let rep = a.replicate_manifest_now(Some(4)).await.unwrap();
    assert_eq!(rep.stored.len(), 4);
    let snapshot = std::fs::read(snapshot_file(&cluster, 2, &owner, rep.version)).unwrap();

    let intruder = cluster.node(1).net();
    let holder = cluster.boxes[2].peer_id;
    match intruder.manifest(holder, ManifestRequest::Fetch).await.expect("holder answers") {
        ManifestResponse::NotFound => {}
        other => panic!("a non-owner's fetch must not get the owner's snapshot, got {other:?}"),
    }
    match intruder.manifest(holder, ManifestRequest::Store { version: rep.version + 1, snapshot }).await.expect("holder answers") {
        ManifestResponse::Refused { reason } => assert!(reason.contains("owner"), "{reason}"),
        other => panic!("a non-owner cannot store the owner's snapshot, got {other:?}"),
    }
    // The owner still gets its own.
    let audits = a.audit_manifest_holders().await.unwrap();
    assert!(audits.iter().all(|h| h.outcome == "passed"), "{audits:?}");
    a.shutdown().await;
    cluster.shutdown().await;
}

/// Last resort: a box that reaches only a non-holder finds the holder through
/// the forwarded `/bunker/recover/1` search, with the forwarder on the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_forwarded_search_finds_a_holder_through_a_peer_that_holds_nothing() {
    let cluster = Cluster::start(ClusterSpec::new(4).without_lightning()).await;
    let seed = Seed::generate();
    let lost = tempfile::tempdir().unwrap();
    let a = start_box(&seed, lost.path(), &everyone(&cluster)).await;
    put(&a, "/x.bin", &random_bytes(10_000), 2, false).await;
    let rep = a.replicate_manifest_now(Some(1)).await.unwrap();
    assert_eq!(rep.stored.len(), 1);
    let holder = cluster.index_of(&rep.stored[0]);
    a.shutdown().await;
    drop(a);
    drop(lost);

    let forwarder = (0..4).find(|i| *i != holder).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let f = &cluster.boxes[forwarder];
    let b = start_box(&seed, fresh.path(), &[(f.peer_id, f.net_addrs.clone())]).await;
    let started = Instant::now();
    let found = b.search_manifest_holders().await;
    tracing::info!(target: "bunker_tests", ?found, secs = started.elapsed().as_secs_f64(), "search result");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, cluster.boxes[holder].peer_id);
    assert_eq!(found[0].1, vec![f.peer_id], "the forwarder is on the path (it earns the cut)");
    b.shutdown().await;
    cluster.shutdown().await;
}

/// The last resort pays: a box that finds its holder only through a
/// forwarder pays that forwarder its cut by keysend once the manifest it led
/// to has verified and been imported, and the forwarder's ledger shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarder_that_led_to_the_manifest_is_paid_its_cut() {
    use bunker_ln::{LnConfig, Network};
    let mut spec = ClusterSpec::new(4);
    spec.channels.clear(); // funded wallets, no channels: the restored box opens its own
    let cluster = Cluster::start(spec).await;
    let chain = cluster.chain.clone().expect("regtest chain");
    let seed = Seed::generate();
    let lost = tempfile::tempdir().unwrap();
    let a = start_box(&seed, lost.path(), &everyone(&cluster)).await;
    put(&a, "/x.bin", &random_bytes(20_000), 2, false).await;
    let rep = a.replicate_manifest_now(Some(1)).await.unwrap();
    let holder = cluster.index_of(&rep.stored[0]);
    a.shutdown().await;
    drop(a);
    drop(lost);

    // The new box, with Lightning, reaches only a forwarder that holds nothing.
    let forwarder = (0..4).find(|i| *i != holder).unwrap();
    let f = &cluster.boxes[forwarder];
    let fresh = tempfile::tempdir().unwrap();
    let keys = Keys::from_seed(&seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.unwrap();
    let manifest = Manifest::open(fresh.path().join("MANIFEST.db")).unwrap();
    let ln_addr = bunker_ln::regtest::free_listen_addr().expect("a free Lightning port");
    let mut ln_cfg = LnConfig::new(fresh.path().join("ln"), Network::Regtest, chain.chain_source());
    ln_cfg.listen = vec![ln_addr];
    let b = Node::start(NodeParts {
        seed: Seed::from_phrase(&seed.phrase()).unwrap(),
        config: test_config(&fresh.path().join("store")),
        manifest,
        net,
        inbound,
        ln: Some(ln_cfg),
    })
    .await
    .unwrap();
    let b_ln = wait_until("restored box's Lightning running", Duration::from_secs(180), || {
        let b = b.clone();
        async move { b.lightning().ok_or_else(|| "not yet".to_string()) }
    })
    .await;
    // Fund it and open a channel to the forwarder.
    let (l, c) = (b_ln.clone(), chain.clone());
    tokio::task::spawn_blocking(move || {
        let addr = l.new_onchain_address().expect("address");
        c.fund(&addr, 1_000_000).expect("fund");
        l.wait_until("on-chain funds", Duration::from_secs(180), || {
            l.sync().ok()?;
            (l.balances().onchain_spendable_sat >= 1_000_000).then_some(())
        })
        .expect("funds arrive");
    })
    .await
    .unwrap();
    let f_ln = cluster.lightning(forwarder).await;
    let (l, fl, faddr) = (b_ln.clone(), f_ln.clone(), f.ln_addr.expect("forwarder's Lightning address"));
    let id = tokio::task::spawn_blocking(move || l.open_channel(fl.node_id(), faddr, 300_000, Some(0)).expect("channel opens"))
        .await
        .unwrap();
    wait_until("channel to the forwarder usable", Duration::from_secs(180), || {
        let (l, fl, c) = (b_ln.clone(), f_ln.clone(), chain.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                c.mine(1).map_err(|e| e.to_string())?;
                let _ = l.sync();
                let _ = fl.sync();
                if l.channels().into_iter().any(|s| s.user_channel_id == id && s.usable) {
                    Ok(())
                } else {
                    Err("not usable yet".to_string())
                }
            })
            .await
            .map_err(|e| e.to_string())?
        }
    })
    .await;

    // Only now does the new box join the swarm, through the forwarder alone,
    // and search at once: the forwarder is its only way to the holder.
    b.net().dial(f.peer_id, f.net_addrs.clone()).await.unwrap();
    let (tx, _rx) = watch::channel(RestoreProgress::default());
    let report = tokio::time::timeout(Duration::from_secs(300), b.restore_by_search(tx))
        .await
        .expect("search restore finishes")
        .expect("search restore succeeds");
    tracing::info!(target: "bunker_tests", ?report, "search restore report");
    assert!(report.imported);
    assert_eq!(report.from.as_deref(), Some(cluster.boxes[holder].peer_id.to_base58().as_str()));
    // The forwarder it reached is on the path and paid; on a full mesh the
    // search may also have travelled through a second box, which the new
    // box has no channel to pay.
    assert!(!report.forwarders.is_empty(), "{report:?}");
    assert_eq!(report.forwarders[0].0, f.peer_id.to_base58(), "{report:?}");
    assert!(report.forwarders[0].1.is_ok(), "cut paid: {:?}", report.forwarders[0]);
    wait_until("the forwarder's ledger shows the cut", Duration::from_secs(60), || {
        let node = cluster.node(forwarder).clone();
        async move {
            let p = node.payments(100).await.map_err(|e| e.to_string())?;
            p.iter()
                .find(|p| p.direction == "incoming" && p.amount_msat == bunker_node::recovery::FORWARDER_CUT_MSAT && p.state == "succeeded")
                .map(|_| ())
                .ok_or_else(|| format!("{p:?}"))
        }
    })
    .await;
    // Lightning stops only once no handle to it is left.
    drop(b_ln);
    drop(f_ln);
    b.shutdown().await;
    cluster.shutdown().await;
}
