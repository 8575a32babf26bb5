//! The very last resort of recovery (issue 8): no manifest anywhere. A box
//! stores files with manifest replication off, then the box and its disk
//! are gone. A new box with the same words asks its peers what they hold
//! for its PeerId (`/bunker/holdings/1`), opens the owner label sealed into
//! each contract, and rebuilds every file, replica and contract from them:
//! every file comes back byte-identical, on the same contracts, and audits
//! resume. Hosts answer only the owner.

use std::path::Path;
use std::time::Duration;

use bunker_core::{Keys, Seed};
use bunker_manifest::Manifest;
use bunker_net::{HoldingsRequest, HoldingsResponse, Multiaddr, Net, NetConfig, PeerId, MAX_HOLDINGS_PER_PAGE};
use bunker_node::recovery::{RestoreProgress, RestoreReport, RestoreStage};
use bunker_node::{Node, NodeParts, Policy};
use bunker_tests::cluster::{random_bytes, test_config, wait_until, Cluster, ClusterSpec};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// Mixed sizes (4 KiB segments: from one segment to 489), some kept locally.
fn files() -> Vec<(&'static str, Vec<u8>, u8, bool)> {
    vec![
        ("/photos/cat.jpg", random_bytes(300_000), 2, true),
        ("/docs/notes.txt", random_bytes(17), 2, false),
        ("/video/big.bin", random_bytes(2_000_000), 3, false),
        ("/music/a/song.flac", random_bytes(65_537), 2, true),
        ("/deep/er/and/deeper/still/x.bin", random_bytes(4096), 2, false),
    ]
}

/// A box with words the test keeps and manifest replication out of reach
/// (no snapshot ever leaves it during the test).
async fn start_box(seed: &Seed, dir: &Path, dial: &[(PeerId, Vec<Multiaddr>)]) -> Node {
    std::fs::create_dir_all(dir).unwrap();
    let keys = Keys::from_seed(seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.expect("swarm starts");
    let manifest = Manifest::open(dir.join("MANIFEST.db")).expect("MANIFEST.db opens");
    let seed = Seed::from_phrase(&seed.phrase()).expect("same words");
    let mut config = test_config(&dir.join("store"));
    let never = Duration::from_secs(30 * 86_400);
    config.replication.debounce = never;
    config.replication.max_delay = never;
    config.replication.refresh = never;
    config.replication.audit_interval = never;
    let node = Node::start(NodeParts { seed, config, manifest, net, inbound, ln: None })
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

async fn restore(node: &Node) -> (RestoreReport, RestoreProgress) {
    let (tx, rx) = watch::channel(RestoreProgress::default());
    let report = tokio::time::timeout(Duration::from_secs(300), node.restore(None, tx))
        .await
        .expect("restore finishes within 300 s")
        .unwrap_or_else(|e| panic!("restore failed: {e}"));
    let last = rx.borrow().clone();
    (report, last)
}

/// (contract id, host, price, retrieval price) of our active contracts, sorted.
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

/// Every contract id `host` answers `asker` with, page by page of `max`.
async fn holdings_of(asker: &Net, host: PeerId, max: u32) -> (Vec<[u8; 32]>, usize) {
    let (mut ids, mut pages, mut after) = (Vec::new(), 0, None);
    loop {
        let page = asker.holdings(host, HoldingsRequest { after, max }).await.expect("holdings answered");
        pages += 1;
        let HoldingsResponse::Page { holdings, next } = page else { panic!("refused: {page:?}") };
        assert!(holdings.len() as u32 <= max.clamp(1, MAX_HOLDINGS_PER_PAGE), "page cap kept");
        ids.extend(holdings.iter().map(|h| h.terms.contract_id));
        match next {
            Some(n) => after = Some(n),
            None => return (ids, pages),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_manifest_anywhere_every_file_comes_back_from_the_hosts_owner_labels() {
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
    let wanted: usize = files.iter().map(|f| usize::from(f.2)).sum();
    assert_eq!(contracts.len(), wanted, "one contract per replica");

    // Hosts answer the owner, page by page, and nobody else.
    let mut held_total = 0;
    for host in &cluster.boxes {
        let (all, pages) = holdings_of(a.net(), host.peer_id, MAX_HOLDINGS_PER_PAGE).await;
        let (one_by_one, single_pages) = holdings_of(a.net(), host.peer_id, 1).await;
        assert_eq!(all, one_by_one, "paging gives the same contracts in the same order");
        assert_eq!(pages, 1);
        assert_eq!(single_pages, all.len().max(1), "max = 1 pages one contract at a time");
        held_total += all.len();
        for other in cluster.boxes.iter().filter(|b| b.peer_id != host.peer_id) {
            let (theirs, _) = holdings_of(other.node.net(), host.peer_id, MAX_HOLDINGS_PER_PAGE).await;
            assert!(
                theirs.is_empty(),
                "box {} was told about the owner's contracts on box {}",
                other.index,
                host.index
            );
        }
    }
    assert_eq!(held_total, wanted, "every contract is held and offered back to its owner");

    a.shutdown().await;
    drop(a);
    drop(lost); // the box and its disk are gone; no snapshot ever left it

    let fresh = tempfile::tempdir().unwrap();
    let b = start_box(&seed, fresh.path(), &everyone(&cluster)).await;
    assert_eq!(b.peer_id(), owner, "same words, same PeerId");
    let t_restored = now();
    let (report, progress) = restore(&b).await;
    tracing::info!(target: "bunker_tests", ?report, "restore report");
    assert!(!report.imported, "there was no manifest to import: {report:?}");
    assert_eq!(report.files_from_labels, files.len() as u64, "{report:?}");
    assert!(report.labels_ignored.is_empty(), "{:?}", report.labels_ignored);
    assert_eq!(report.files, files.len() as u64);
    let keep_local = files.iter().filter(|f| f.3).count() as u64;
    assert_eq!(report.files_restored, keep_local, "keep-local files fetched eagerly: {report:?}");
    assert!(report.files_failed.is_empty(), "{:?}", report.files_failed);
    assert_eq!(progress.stage, RestoreStage::Done);

    for (path, bytes, _, keep_local) in &files {
        let detail = b.file(path).await.unwrap_or_else(|e| panic!("{path} rebuilt: {e}"));
        assert_eq!(detail.file.has_local, *keep_local, "{path}: local copy as before");
        assert_eq!(&get(&b, path).await, bytes, "{path} byte-identical");
    }
    assert_eq!(our_contracts(&b).await, contracts, "the same contracts at the same prices");
    wait_until("audits resume on the same contracts", Duration::from_secs(60), || {
        let b = b.clone();
        async move {
            let passed = b
                .audits(500)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|a| a.at >= t_restored && a.outcome == "passed")
                .count();
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

/// Other words on a new box: the hosts tell it nothing of the lost box's
/// contracts, so nothing is rebuilt and the restore fails cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_words_get_nothing_from_the_hosts() {
    let cluster = Cluster::start(ClusterSpec::new(3).without_lightning()).await;
    let seed = Seed::generate();
    let dir = tempfile::tempdir().unwrap();
    let a = start_box(&seed, dir.path(), &everyone(&cluster)).await;
    put(&a, "/secret.txt", &random_bytes(10_000), 2, false).await;

    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = start_box(&Seed::generate(), stranger_dir.path(), &everyone(&cluster)).await;
    for host in &cluster.boxes {
        let (theirs, _) = holdings_of(stranger.net(), host.peer_id, MAX_HOLDINGS_PER_PAGE).await;
        assert!(theirs.is_empty(), "box {} told a stranger about contracts", host.index);
    }
    let (tx, _rx) = watch::channel(RestoreProgress::default());
    let err = tokio::time::timeout(Duration::from_secs(300), stranger.restore(None, tx))
        .await
        .expect("restore finishes")
        .expect_err("nothing to restore for other words");
    assert!(err.to_string().contains("no valid manifest"), "{err}");
    assert!(stranger.file("/secret.txt").await.is_err(), "nothing of the owner's appears");
    a.shutdown().await;
    stranger.shutdown().await;
    cluster.shutdown().await;
}
