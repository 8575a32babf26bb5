//! Manifest replication and restore between a real engine and real swarms on
//! loopback: the owner is a `Node`; the snapshot holders are bare bunker-net
//! swarms running `SnapshotHolder` below — the behaviour DESIGN §7 asks of a
//! host (keep the newest signed snapshot per owner, serve it only to its
//! owner, announce it in the DHT) — so these tests do not depend on the host
//! side of the engine. The end-to-end versions with engine hosts live in
//! tests/tests/recovery.rs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bunker_core::{FileId, Seed};
use bunker_manifest::{inspect_snapshot, FilePath, FolderPath, Manifest, NewFile};
use bunker_net::{
    InboundRequest, ManifestRequest, ManifestResponse, Multiaddr, Net, NetConfig, PeerId,
};
use bunker_node::recovery::{RestoreProgress, RestoreStage};
use bunker_node::replication::manifest_provider_key;
use bunker_node::{Node, NodeConfig, NodeParts};
use tokio::sync::watch;

/// What a holder serves when its owner fetches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// The newest snapshot it stored.
    Newest,
    /// The oldest one it ever stored (a holder replaying history).
    Oldest,
    /// The newest with one byte flipped in the sealed body.
    Tampered,
}

/// Every snapshot stored, per owner, oldest first.
type Stored = Arc<Mutex<HashMap<PeerId, Vec<(u64, Vec<u8>)>>>>;

/// A bare swarm that keeps owners' snapshots.
struct SnapshotHolder {
    net: Net,
    addrs: Vec<Multiaddr>,
    stored: Stored,
    /// Fetches refused because the asker was not the owner.
    refused: Arc<Mutex<u32>>,
}

impl SnapshotHolder {
    async fn start(serve: Serve, announce: bool, bootstrap: Vec<(PeerId, Multiaddr)>) -> SnapshotHolder {
        let mut cfg = NetConfig::loopback(bunker_net::Keypair::generate_ed25519());
        cfg.bootstrap = bootstrap;
        let (net, mut inbound) = Net::start(cfg).await.expect("holder swarm starts");
        let addrs = net.listen_addrs().await.expect("listen addrs");
        let stored: Stored = Arc::default();
        let refused = Arc::new(Mutex::new(0));
        let (n, s, r) = (net.clone(), stored.clone(), refused.clone());
        tokio::spawn(async move {
            while let Some(req) = inbound.recv().await {
                let InboundRequest::Manifest { peer, request, reply } = req else { continue };
                let answer = match request {
                    ManifestRequest::Store { version, snapshot } => match inspect_snapshot(&snapshot) {
                        Ok(info) if info.owner != peer => ManifestResponse::Refused { reason: "not yours".into() },
                        Ok(info) if info.version != version => ManifestResponse::Refused { reason: "version".into() },
                        Ok(_) => {
                            let newer = {
                                let mut map = s.lock().unwrap();
                                let list = map.entry(peer).or_default();
                                let newer = list.last().is_none_or(|(v, _)| *v < version);
                                if newer {
                                    list.push((version, snapshot));
                                }
                                newer
                            };
                            if newer {
                                if announce {
                                    let _ = n.start_providing(manifest_provider_key(&peer)).await;
                                }
                                ManifestResponse::Stored
                            } else {
                                ManifestResponse::Refused { reason: "older than held".into() }
                            }
                        }
                        Err(e) => ManifestResponse::Refused { reason: e.to_string() },
                    },
                    ManifestRequest::Fetch => {
                        let map = s.lock().unwrap();
                        match map.get(&peer) {
                            None => {
                                *r.lock().unwrap() += 1;
                                ManifestResponse::NotFound
                            }
                            Some(list) => {
                                let (version, mut snapshot) = match serve {
                                    Serve::Oldest => list[0].clone(),
                                    _ => list[list.len() - 1].clone(),
                                };
                                if serve == Serve::Tampered {
                                    let i = snapshot.len() / 2;
                                    snapshot[i] ^= 0x40;
                                }
                                ManifestResponse::Snapshot { version, snapshot }
                            }
                        }
                    }
                };
                let _ = reply.send(answer).await;
            }
        });
        SnapshotHolder { net, addrs, stored, refused }
    }

    fn id(&self) -> PeerId {
        self.net.local_peer_id()
    }

    fn versions_of(&self, owner: &PeerId) -> Vec<u64> {
        self.stored.lock().unwrap().get(owner).map(|l| l.iter().map(|(v, _)| *v).collect()).unwrap_or_default()
    }
}

fn sample_files() -> Vec<NewFile> {
    let file = |path: &str, size: u64, keep_local: bool| NewFile {
        path: FilePath::parse(path).unwrap(),
        object_id: FileId::random(),
        size,
        plaintext_blake3: *blake3::hash(path.as_bytes()).as_bytes(),
        segment_size: 65536,
        keep_local,
        redundancy: 2,
        local: None,
        created_at: 1_700_000_000,
        modified_at: 1_700_000_000,
    };
    vec![file("/photos/cat.jpg", 3 << 20, false), file("/docs/a/b.txt", 12, false), file("/big.bin", 1 << 30, false)]
}

/// Starts an engine for `seed` in `dir` (MANIFEST.db and the store there),
/// its swarm bootstrapping through `bootstrap`.
async fn start_node(seed: &Seed, dir: &Path, bootstrap: Vec<(PeerId, Multiaddr)>, files: &[NewFile]) -> Node {
    let mut manifest = Manifest::open(dir.join("MANIFEST.db")).expect("manifest opens");
    for f in files {
        manifest.put_file(f, &[]).expect("file recorded");
    }
    let keys = bunker_core::Keys::from_seed(seed);
    let mut cfg = NetConfig::loopback(keys.identity());
    cfg.bootstrap = bootstrap;
    let (net, inbound) = Net::start(cfg).await.expect("owner swarm starts");
    let seed = Seed::from_phrase(&seed.phrase()).expect("same words");
    Node::start(NodeParts { seed, config: NodeConfig::new(dir.join("store")), manifest, net, inbound, ln: None })
        .await
        .expect("engine starts")
}

/// Connects `net` to `peer`, tolerating a dial already under way (bootstrap).
async fn reach(net: &Net, peer: PeerId, addrs: &[Multiaddr]) {
    for _ in 0..50 {
        let _ = net.dial(peer, addrs.to_vec()).await;
        let connected = net.peers().await.unwrap().connected.iter().any(|p| p.peer_id == peer.to_base58());
        if connected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {peer}");
}

async fn connect(node: &Node, holders: &[SnapshotHolder]) {
    for h in holders {
        reach(node.net(), h.id(), &h.addrs).await;
    }
}

/// Three holders that know each other (one DHT).
async fn holders(serves: [Serve; 3], announce: bool) -> Vec<SnapshotHolder> {
    let first = SnapshotHolder::start(serves[0], announce, Vec::new()).await;
    let boot: Vec<(PeerId, Multiaddr)> = first.addrs.iter().map(|a| (first.id(), a.clone())).collect();
    let second = SnapshotHolder::start(serves[1], announce, boot.clone()).await;
    let third = SnapshotHolder::start(serves[2], announce, boot).await;
    reach(&second.net, first.id(), &first.addrs).await;
    reach(&third.net, first.id(), &first.addrs).await;
    reach(&third.net, second.id(), &second.addrs).await;
    vec![first, second, third]
}

fn bootstrap_of(holders: &[SnapshotHolder]) -> Vec<(PeerId, Multiaddr)> {
    holders.iter().flat_map(|h| h.addrs.iter().map(move |a| (h.id(), a.clone()))).collect()
}

fn tree(db: &Path) -> Vec<String> {
    let m = Manifest::open(db).expect("reader opens");
    let mut out = Vec::new();
    let mut folders = vec![FolderPath::root()];
    while let Some(f) = folders.pop() {
        let l = m.list_folder(&f).unwrap();
        let base = f.as_str().trim_end_matches('/').to_string();
        for sub in l.folders {
            folders.push(FolderPath::parse(&format!("{base}/{sub}")).unwrap());
        }
        for file in l.files {
            out.push(format!("{base}/{}:{}", file.name, file.size));
        }
    }
    out.sort();
    out
}

fn init_logs() {
    let _ = tracing_subscriber::fmt().with_env_filter("info,libp2p=warn").with_test_writer().try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_replicated_to_holders_is_restored_on_a_new_box_from_the_words_through_the_dht() {
    init_logs();
    let holders = holders([Serve::Newest; 3], true).await;
    let seed = Seed::generate();
    let old_dir = tempfile::tempdir().unwrap();
    let files = sample_files();
    let a = start_node(&seed, old_dir.path(), bootstrap_of(&holders), &files).await;
    connect(&a, &holders).await;
    let owner = a.peer_id();

    let report = a.replicate_manifest_now(Some(3)).await.expect("round runs");
    assert_eq!(report.stored.len(), 3, "all three holders confirmed: {report:?}");
    assert_eq!(report.version, 1);
    for h in &holders {
        assert_eq!(h.versions_of(&owner), vec![1]);
    }
    let audits = a.audit_manifest_holders().await.unwrap();
    assert_eq!(audits.iter().filter(|a| a.outcome == "passed").count(), 3, "{audits:?}");
    let kit = a.recovery_kit().await.unwrap();
    assert_eq!((kit.latest_version, kit.holders.len()), (1, 3));
    let expected = tree(&old_dir.path().join("MANIFEST.db"));
    assert_eq!(expected.len(), 3);

    a.shutdown().await;
    drop(a);
    drop(old_dir); // the box and its disk are gone

    let new_dir = tempfile::tempdir().unwrap();
    let words = Seed::from_phrase(&seed.phrase()).unwrap();
    let b = start_node(&words, new_dir.path(), bootstrap_of(&holders), &[]).await;
    assert_eq!(b.peer_id(), owner, "same words, same PeerId");
    let (tx, rx) = watch::channel(RestoreProgress::default());
    let report = tokio::time::timeout(Duration::from_secs(120), b.restore(None, tx))
        .await
        .expect("restore finishes")
        .expect("restore succeeds");
    assert!(report.imported);
    assert_eq!(report.dht_holders, 3, "the DHT named the three holders: {report:?}");
    assert_eq!(report.version, 1);
    assert_eq!(report.files, 3);
    assert_eq!(rx.borrow().stage, RestoreStage::Done);
    assert!(rx.borrow().holders_tried >= 3, "{:?}", *rx.borrow());
    assert_eq!(tree(&new_dir.path().join("MANIFEST.db")), expected, "same tree after restore");

    // The restored box keeps replicating: the next snapshot is version 2.
    let next = b.replicate_manifest_now(Some(3)).await.unwrap();
    assert_eq!(next.version, 2);
    assert_eq!(next.stored.len(), 3);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_dht_the_recovery_kit_leads_to_the_holders() {
    init_logs();
    // Holders do not announce: the DHT knows nothing.
    let holders = holders([Serve::Newest; 3], false).await;
    let seed = Seed::generate();
    let old_dir = tempfile::tempdir().unwrap();
    let a = start_node(&seed, old_dir.path(), Vec::new(), &sample_files()).await;
    connect(&a, &holders).await;
    a.replicate_manifest_now(Some(3)).await.unwrap();
    let kit_file = a.recovery_kit_file().await.unwrap();
    let kit_text = a.recovery_kit_text().await.unwrap();
    assert!(kit_text.starts_with("BUNKERKIT1:"));
    let expected = tree(&old_dir.path().join("MANIFEST.db"));
    a.shutdown().await;
    drop(a);

    let new_dir = tempfile::tempdir().unwrap();
    let b = start_node(&seed, new_dir.path(), Vec::new(), &[]).await;
    let kit = b.open_recovery_kit(&kit_file).expect("kit opens with the same words");
    assert_eq!(b.open_recovery_kit(kit_text.as_bytes()).unwrap(), kit, "file and QR text carry the same kit");
    assert_eq!(kit.holders.len(), 3);
    let (tx, _rx) = watch::channel(RestoreProgress::default());
    let report = tokio::time::timeout(Duration::from_secs(120), b.restore(Some(kit), tx))
        .await
        .expect("restore finishes")
        .expect("restore succeeds");
    assert!(report.imported, "{report:?}");
    assert_eq!(report.dht_holders, 0, "nothing came from the DHT");
    assert_eq!(tree(&new_dir.path().join("MANIFEST.db")), expected);
    b.shutdown().await;

    // Another owner's words cannot open the kit.
    let other_dir = tempfile::tempdir().unwrap();
    let c = start_node(&Seed::generate(), other_dir.path(), Vec::new(), &[]).await;
    assert!(c.open_recovery_kit(&kit_file).is_err());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_or_tampered_manifest_is_rejected_and_the_newest_valid_wins() {
    init_logs();
    let holders = holders([Serve::Oldest, Serve::Tampered, Serve::Newest], true).await;
    let seed = Seed::generate();
    let old_dir = tempfile::tempdir().unwrap();
    let a = start_node(&seed, old_dir.path(), bootstrap_of(&holders), &sample_files()[..1]).await;
    connect(&a, &holders).await;
    assert_eq!(a.replicate_manifest_now(Some(3)).await.unwrap().stored.len(), 3);
    // A second file, then version 2 to the same holders.
    {
        let mut m = Manifest::open(old_dir.path().join("MANIFEST.db")).unwrap();
        m.put_file(&sample_files()[1], &[]).unwrap();
    }
    let v2 = a.replicate_manifest_now(Some(3)).await.unwrap();
    assert_eq!((v2.version, v2.stored.len()), (2, 3));
    // The owner's own audit already catches the stale and the altered holder.
    let audits = a.audit_manifest_holders().await.unwrap();
    let outcome = |h: &SnapshotHolder| audits.iter().find(|x| x.peer == h.id().to_base58()).unwrap().clone();
    assert_eq!(outcome(&holders[0]).outcome, "failed", "{:?}", outcome(&holders[0]));
    assert!(outcome(&holders[0]).detail.contains("serves version 1 after confirming 2"));
    assert_eq!(outcome(&holders[1]).outcome, "failed");
    assert!(outcome(&holders[1]).detail.contains("does not verify"), "{:?}", outcome(&holders[1]));
    assert_eq!(outcome(&holders[2]).outcome, "passed");
    assert_eq!(a.recovery_kit().await.unwrap().holders.len(), 1, "failed holders are forgotten, to be replaced");
    let expected = tree(&old_dir.path().join("MANIFEST.db"));
    assert_eq!(expected.len(), 2);
    a.shutdown().await;
    drop(a);

    let new_dir = tempfile::tempdir().unwrap();
    let b = start_node(&seed, new_dir.path(), bootstrap_of(&holders), &[]).await;
    let (tx, _rx) = watch::channel(RestoreProgress::default());
    let report = tokio::time::timeout(Duration::from_secs(120), b.restore(None, tx))
        .await
        .expect("restore finishes")
        .expect("restore succeeds");
    assert_eq!(report.version, 2, "{report:?}");
    assert_eq!(report.from.as_deref(), Some(holders[2].id().to_base58().as_str()));
    let by = |h: &SnapshotHolder| report.holders.iter().find(|o| o.peer == h.id().to_base58()).unwrap().clone();
    assert_eq!((by(&holders[0]).outcome.as_str(), by(&holders[0]).version), ("valid", Some(1)), "older: not used");
    assert_eq!(by(&holders[1]).outcome, "rejected");
    assert!(by(&holders[1]).detail.contains("does not verify"), "{:?}", by(&holders[1]));
    assert_eq!(by(&holders[2]).outcome, "imported");
    assert_eq!(tree(&new_dir.path().join("MANIFEST.db")), expected);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_box_never_replicates_an_empty_manifest_over_a_good_one() {
    init_logs();
    let holders = holders([Serve::Newest; 3], true).await;
    let dir = tempfile::tempdir().unwrap();
    let a = start_node(&Seed::generate(), dir.path(), bootstrap_of(&holders), &[]).await;
    connect(&a, &holders).await;
    let err = a.replicate_manifest_now(Some(3)).await.unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    for h in &holders {
        assert!(h.versions_of(&a.peer_id()).is_empty());
        assert_eq!(*h.refused.lock().unwrap(), 0);
    }
    // Nothing found anywhere: the restore fails and changes nothing.
    let (tx, rx) = watch::channel(RestoreProgress::default());
    let err = tokio::time::timeout(Duration::from_secs(150), a.restore(None, tx)).await.expect("restore gives up in time");
    assert!(err.is_err());
    assert_eq!(rx.borrow().stage, RestoreStage::Failed);
    a.shutdown().await;
}
