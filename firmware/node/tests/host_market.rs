//! The hosting side of the engine through real swarms on 127.0.0.1: a host
//! `Node` and owner boxes speaking bunker-net directly, signing the way the
//! engine does (the helpers below follow `sign.rs` byte for byte).

use std::time::Duration;

use bunker_core::{verify_segment, Descriptor, FileId, Keys, NoLeaves, ObjectId, Proof, Sealer, Seed};
use bunker_manifest::{ContractDirection, ContractId, ContractState, HostedState, Manifest, ManifestKey};
use bunker_net::*;
use bunker_node::sign::{sign_release, sign_terms, verify_receipt, verify_terms};
use bunker_node::{HostingTerms, Node, NodeConfig, NodeParts};
use futures::AsyncReadExt;

const SEGMENT: u32 = 4096;






// ---- boxes ----

struct Host {
    node: Node,
    keys: Keys,
    dir: tempfile::TempDir,
}

impl Host {
    fn manifest(&self) -> Manifest {
        Manifest::open(self.dir.path().join("MANIFEST.db")).unwrap()
    }
    fn hosted_dirs(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("store/hosted")).unwrap().count()
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

fn terms_for_test() -> HostingTerms {
    HostingTerms {
        price_msat_per_gib_day: 1000,
        retrieval_msat_per_gib: 5000,
        price_floor_msat_per_gib_day: 100,
        safety_margin_bytes: 1 << 20,
        max_hosted_bytes: Some(64 << 20),
        accept_swaps: true,
        ..HostingTerms::default()
    }
}

async fn start_host(hosting: HostingTerms) -> Host {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let seed = Seed::generate();
    let keys = Keys::from_seed(&seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.unwrap();
    let manifest = Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
    let mut config = NodeConfig::new(dir.path().join("store"));
    config.hosting = hosting;
    let node = Node::start(NodeParts { seed, config, manifest, net, inbound, ln: None }).await.unwrap();
    Host { node, keys, dir }
}

struct Owner {
    net: Net,
    keys: Keys,
    _inbound: tokio::sync::mpsc::Receiver<InboundRequest>,
}

async fn owner_of(host: &Host) -> Owner {
    let keys = Keys::from_seed(&Seed::generate());
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.unwrap();
    let addrs = host.node.net().listen_addrs().await.unwrap();
    net.dial(host.node.peer_id(), addrs).await.unwrap();
    Owner { net, keys, _inbound: inbound }
}

/// One replica sealed by `owner`: its bytes and descriptor.
fn sealed(owner: &Keys, size: usize) -> (Vec<u8>, Descriptor) {
    let object = ObjectId { file_id: FileId::random(), replica_index: 0 };
    let key = owner.replica_key(&object.file_id, 0);
    let plain: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let mut out = Vec::new();
    let d = Sealer::new(&key, object, size as u64, SEGMENT).unwrap().seal(&plain[..], &mut out, NoLeaves).unwrap();
    (out, d)
}

fn terms(d: &Descriptor, sealed_len: usize, price: u64) -> ContractTerms {
    ContractTerms {
        contract_id: rand::random(),
        object_root: d.root,
        object_bytes: sealed_len as u64,
        plain_bytes: d.size,
        segment_size: d.segment_size,
        price_msat_per_gib_day: price,
        retrieval_msat_per_gib: 5000,
        audit_interval_secs: (60, 120),
        term_secs: 86_400,
        swap: false,
        owner_label: Vec::new(),
    }
}

async fn propose(owner: &Owner, host: &Host, t: &ContractTerms) -> ContractAnswer {
    let proposal = ContractProposal { terms: t.clone(), owner_signature: sign_terms(&owner.keys, t) };
    owner.net.contract(host.node.peer_id(), proposal).await.unwrap()
}

fn rejected(a: ContractAnswer) -> String {
    match a {
        ContractAnswer::Rejected { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn store(owner: &Owner, host: &Host, t: &ContractTerms, root: Id32, bytes: &[u8]) -> Result<StoreReceipt, StreamError> {
    let header = StoreHeader { contract_id: t.contract_id, object_root: root, total_len: bytes.len() as u64 };
    owner.net.store(host.node.peer_id(), header, bytes).await
}

fn refusal(e: StreamError) -> String {
    match e {
        StreamError::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {other}"),
    }
}

/// A placed object: contract accepted and bytes stored.
async fn place(owner: &Owner, host: &Host, size: usize) -> (ContractTerms, Vec<u8>, Descriptor) {
    let (bytes, d) = sealed(&owner.keys, size);
    let t = terms(&d, bytes.len(), 1000);
    let ContractAnswer::Accepted { .. } = propose(owner, host, &t).await else { panic!("contract refused") };
    store(owner, host, &t, d.root, &bytes).await.unwrap();
    (t, bytes, d)
}

async fn audit(owner: &Owner, host: &Host, root: Id32, segment: u64) -> AuditResponse {
    owner.net.audit(host.node.peer_id(), AuditChallenge { object_root: root, segment, nonce: rand::random() }).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_contract_store_audit_fetch_release_end_to_end() {
    let host = start_host(terms_for_test()).await;
    let owner = owner_of(&host).await;
    let hid = host.node.peer_id();

    let offer = owner
        .net
        .offer(hid, OfferRequest { bytes: 1 << 20, term_secs: 86_400, swap_offered_bytes: 0 })
        .await
        .unwrap();
    assert_eq!((offer.price_msat_per_gib_day, offer.retrieval_msat_per_gib), (1000, 5000));
    assert!(offer.free_bytes > 1 << 20 && offer.free_bytes <= 64 << 20, "{offer:?}");
    assert_eq!(offer.swap_wanted_bytes, 0);
    assert!(offer.ln_node_id.is_empty(), "no Lightning configured, no node id offered");

    // Contract: countersigned over the exact terms, recorded TheirsOnUs.
    let (bytes, d) = sealed(&owner.keys, 300_000);
    let t = terms(&d, bytes.len(), 1000);
    let ContractAnswer::Accepted { host_signature } = propose(&owner, &host, &t).await else { panic!("refused") };
    verify_terms(&host.keys.peer_id(), &t, &host_signature).expect("host countersigned these terms");
    let c = host.manifest().contract(&ContractId(t.contract_id)).unwrap().expect("recorded");
    assert_eq!(c.contract.direction, ContractDirection::TheirsOnUs);
    assert_eq!((c.contract.peer, c.contract.size_bytes, c.state), (owner.keys.peer_id(), bytes.len() as u64, ContractState::Active));

    // The space is promised before a byte arrives: the offer shrank by the contract's size.
    let after = owner.net.offer(hid, OfferRequest { bytes: 1, term_secs: 1, swap_offered_bytes: 0 }).await.unwrap();
    assert!(after.free_bytes + bytes.len() as u64 <= offer.free_bytes + (64 << 10), "{after:?} vs {offer:?}");

    // Store: the receipt signs the root the host computed.
    let receipt = store(&owner, &host, &t, d.root, &bytes).await.unwrap();
    assert_eq!(receipt.root, d.root);
    verify_receipt(&host.keys.peer_id(), &t.contract_id, &d.root, &receipt.host_signature).expect("host signed the root");
    let held = host.manifest().hosted_object(&owner.keys.peer_id(), &d.root).unwrap().expect("hosted");
    assert_eq!((held.object.state, held.object.bytes), (HostedState::Stored, bytes.len() as u64));
    // Storing the same object again is harmless and gives the same receipt root.
    assert_eq!(store(&owner, &host, &t, d.root, &bytes).await.unwrap().root, d.root);

    // Audits: every answer verifies against the owner's descriptor.
    for segment in [0, 17, d.segment_count - 1] {
        let AuditResponse::Proof { sealed_segment, proof } = audit(&owner, &host, d.root, segment).await else {
            panic!("no proof")
        };
        verify_segment(&d, segment, &sealed_segment, &Proof::from_bytes(&proof).unwrap()).unwrap();
    }
    let past_end = audit(&owner, &host, d.root, d.segment_count).await;
    assert!(matches!(past_end, AuditResponse::Failed { .. }), "{past_end:?}");

    // Fetch: the whole object, byte for byte.
    let mut obj = owner
        .net
        .fetch(hid, FetchRequest { contract_id: t.contract_id, object_root: d.root }, bytes.len() as u64)
        .await
        .unwrap();
    let mut back = Vec::new();
    obj.read_to_end(&mut back).await.unwrap();
    obj.close().await.unwrap();
    assert_eq!(back, bytes);

    // Release: the object goes, the contract ends, audits find nothing.
    let rel = ReleaseRequest { contract_id: t.contract_id, signature: sign_release(&owner.keys, &t.contract_id) };
    assert_eq!(owner.net.release(hid, rel.clone()).await.unwrap(), ReleaseResponse::Released);
    assert_eq!(owner.net.release(hid, rel).await.unwrap(), ReleaseResponse::Released, "idempotent");
    assert_eq!(audit(&owner, &host, d.root, 0).await, AuditResponse::NotFound);
    assert_eq!(host.hosted_dirs(), 0);
    let m = host.manifest();
    assert_eq!(m.contract(&ContractId(t.contract_id)).unwrap().unwrap().state, ContractState::Ended);
    assert!(m.hosted_object(&owner.keys.peer_id(), &d.root).unwrap().is_none());
    let gone = owner
        .net
        .fetch(hid, FetchRequest { contract_id: t.contract_id, object_root: d.root }, bytes.len() as u64)
        .await
        .unwrap_err();
    assert!(refusal(gone).contains("ended"));
    host.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_owners_get_clear_refusals_and_nothing_is_kept() {
    let host = start_host(terms_for_test()).await;
    let alice = owner_of(&host).await;
    let mallory = owner_of(&host).await;
    let hid = host.node.peer_id();
    let (t_alice, alice_bytes, d_alice) = place(&alice, &host, 100_000).await;

    // Storing without a contract.
    let (bytes, d) = sealed(&mallory.keys, 50_000);
    let t = terms(&d, bytes.len(), 1000);
    let e = refusal(store(&mallory, &host, &t, d.root, &bytes).await.unwrap_err());
    assert!(e.contains("no contract"), "{e}");

    // With Alice's contract (id, root and size all Alice's): same answer as unknown.
    let e = refusal(store(&mallory, &host, &t_alice, d_alice.root, &alice_bytes).await.unwrap_err());
    assert!(e.contains("no contract"), "{e}");

    // More bytes than the contract, and another root than the contract's.
    let ContractAnswer::Accepted { .. } = propose(&mallory, &host, &t).await else { panic!("refused") };
    let mut longer = bytes.clone();
    longer.push(0);
    let e = refusal(store(&mallory, &host, &t, d.root, &longer).await.unwrap_err());
    assert!(e.contains("exactly"), "{e}");
    let e = refusal(store(&mallory, &host, &t, [9; 32], &bytes).await.unwrap_err());
    assert!(e.contains("is for object"), "{e}");

    // Bytes that do not hash to the contract's root: refused after the body, nothing kept.
    let mut flipped = bytes.clone();
    flipped[5000] ^= 1;
    let e = refusal(store(&mallory, &host, &t, d.root, &flipped).await.unwrap_err());
    assert!(e.contains("hash to root"), "{e}");
    assert!(host.manifest().hosted_object(&mallory.keys.peer_id(), &d.root).unwrap().is_none());
    assert_eq!(host.hosted_dirs(), 1, "only Alice's object is on disk");
    assert_eq!(audit(&mallory, &host, d.root, 0).await, AuditResponse::NotFound);

    // Auditing and fetching Alice's object.
    assert_eq!(audit(&mallory, &host, d_alice.root, 0).await, AuditResponse::NotFound);
    let e = mallory
        .net
        .fetch(hid, FetchRequest { contract_id: t_alice.contract_id, object_root: d_alice.root }, 1 << 20)
        .await
        .unwrap_err();
    assert!(refusal(e).contains("no contract"));
    // Releasing Alice's contract with Mallory's signature: nothing happens.
    let rel = ReleaseRequest { contract_id: t_alice.contract_id, signature: sign_release(&mallory.keys, &t_alice.contract_id) };
    assert_eq!(mallory.net.release(hid, rel).await.unwrap(), ReleaseResponse::UnknownContract);
    // Alice, claiming her own contract with a forged signature: nothing happens either.
    let rel = ReleaseRequest { contract_id: t_alice.contract_id, signature: vec![0; 64] };
    assert_eq!(alice.net.release(hid, rel).await.unwrap(), ReleaseResponse::UnknownContract);
    assert!(matches!(audit(&alice, &host, d_alice.root, 3).await, AuditResponse::Proof { .. }));

    // Contracts: a forged signature, a wrong size, a price below the floor, a reused id.
    let (b2, d2) = sealed(&mallory.keys, 10_000);
    let mut bad = terms(&d2, b2.len(), 1000);
    let forged = ContractProposal { terms: bad.clone(), owner_signature: sign_terms(&alice.keys, &bad) };
    let e = rejected(mallory.net.contract(hid, forged).await.unwrap());
    assert!(e.contains("owner signature"), "{e}");
    bad.object_bytes += 1;
    assert!(rejected(propose(&mallory, &host, &bad).await).contains("wrong size"));
    let cheap = terms(&d2, b2.len(), 99);
    assert!(rejected(propose(&mallory, &host, &cheap).await).contains("below this box's floor"));
    let mut reused = terms(&d2, b2.len(), 1000);
    reused.contract_id = t_alice.contract_id;
    assert!(rejected(propose(&mallory, &host, &reused).await).contains("already in use"));

    // The host still serves everyone properly.
    let AuditResponse::Proof { sealed_segment, proof } = audit(&alice, &host, d_alice.root, 7).await else { panic!() };
    verify_segment(&d_alice, 7, &sealed_segment, &Proof::from_bytes(&proof).unwrap()).unwrap();
    host.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_box_refuses_offers_and_contracts_with_a_reason() {
    let mut hosting = terms_for_test();
    hosting.max_hosted_bytes = Some(200_000);
    let host = start_host(hosting).await;
    let owner = owner_of(&host).await;
    let offer = owner
        .net
        .offer(host.node.peer_id(), OfferRequest { bytes: 1 << 20, term_secs: 86_400, swap_offered_bytes: 0 })
        .await
        .unwrap();
    assert_eq!(offer.free_bytes, 200_000);
    let (t, _, _) = place(&owner, &host, 150_000).await;
    let (bytes, d) = sealed(&owner.keys, 100_000);
    let e = rejected(propose(&owner, &host, &terms(&d, bytes.len(), 1000)).await);
    assert!(e.contains("not enough space"), "{e}");
    let offer = owner
        .net
        .offer(host.node.peer_id(), OfferRequest { bytes: 1 << 20, term_secs: 86_400, swap_offered_bytes: 0 })
        .await
        .unwrap();
    assert!(offer.free_bytes < 100_000, "{offer:?}");
    // Releasing gives the space back.
    let rel = ReleaseRequest { contract_id: t.contract_id, signature: sign_release(&owner.keys, &t.contract_id) };
    assert_eq!(owner.net.release(host.node.peer_id(), rel).await.unwrap(), ReleaseResponse::Released);
    let ContractAnswer::Accepted { .. } = propose(&owner, &host, &terms(&d, bytes.len(), 1000)).await else {
        panic!("space released but the contract is still refused")
    };
    host.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_snapshots_newest_per_owner_only_for_the_owner() {
    let host = start_host(terms_for_test()).await;
    let alice = owner_of(&host).await;
    let bob = owner_of(&host).await;
    let hid = host.node.peer_id();
    let dir = tempfile::tempdir().unwrap();
    let mut m = Manifest::open(dir.path().join("alice.db")).unwrap();
    let key = ManifestKey::from_bytes(*alice.keys.manifest_key().as_bytes());
    let snap = |m: &mut Manifest| {
        let mut out = Vec::new();
        let info = m.export_snapshot(&key, &alice.keys.identity(), 1_700_000_000, &mut out).unwrap();
        (info.version, out)
    };
    let (v1, s1) = snap(&mut m);
    let (v2, s2) = snap(&mut m);

    let store = |who: &Owner, version, snapshot| {
        let net = who.net.clone();
        async move { net.manifest(hid, ManifestRequest::Store { version, snapshot }).await }
    };
    assert_eq!(store(&alice, v2, s2.clone()).await.unwrap(), ManifestResponse::Stored);
    // An older version does not displace the newest; a repeat is fine.
    assert!(matches!(store(&alice, v1, s1.clone()).await.unwrap(), ManifestResponse::Refused { .. }));
    assert_eq!(store(&alice, v2, s2.clone()).await.unwrap(), ManifestResponse::Stored);
    // Bob cannot store Alice's snapshot, nor garbage.
    assert!(matches!(store(&bob, v2, s2.clone()).await.unwrap(), ManifestResponse::Refused { .. }));
    assert!(matches!(store(&bob, 1, vec![7; 1000]).await.unwrap(), ManifestResponse::Refused { .. }));

    assert_eq!(
        alice.net.manifest(hid, ManifestRequest::Fetch).await.unwrap(),
        ManifestResponse::Snapshot { version: v2, snapshot: s2 }
    );
    assert_eq!(bob.net.manifest(hid, ManifestRequest::Fetch).await.unwrap(), ManifestResponse::NotFound);
    let files = std::fs::read_dir(host.dir.path().join("store/manifests")).unwrap().count();
    assert_eq!(files, 1, "only the newest snapshot is kept");

    // A recovery search for Alice finds this box; for Bob it does not.
    let ask = |owner: PeerId| RecoverRequest { owner, search_id: rand::random(), hops_left: 0, path: vec![] };
    let found = bob.net.recover(hid, ask(alice.keys.peer_id())).await.unwrap();
    assert!(matches!(found, RecoverResponse::Found { ref holders, .. } if holders == &vec![hid]), "{found:?}");
    assert_eq!(alice.net.recover(hid, ask(bob.keys.peer_id())).await.unwrap(), RecoverResponse::NotFound);
    tokio::time::sleep(Duration::from_millis(10)).await;
    host.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_offers_ask_for_equal_bytes_and_swap_contracts_carry_no_price() {
    let host = start_host(terms_for_test()).await;
    let owner = owner_of(&host).await;
    let hid = host.node.peer_id();
    let offer = owner
        .net
        .offer(hid, OfferRequest { bytes: 300_000, term_secs: 86_400, swap_offered_bytes: 300_000 })
        .await
        .unwrap();
    assert_eq!(offer.swap_wanted_bytes, 300_000, "equal bytes in return");

    let (bytes, d) = sealed(&owner.keys, 100_000);
    let mut t = terms(&d, bytes.len(), 0);
    t.swap = true;
    let ContractAnswer::Accepted { .. } = propose(&owner, &host, &t).await else { panic!("swap refused") };
    store(&owner, &host, &t, d.root, &bytes).await.unwrap();
    let c = host.manifest().contract(&ContractId(t.contract_id)).unwrap().unwrap();
    assert!(c.contract.is_swap);

    // We now keep more for this peer than it keeps for us: the next swap waits.
    let (b2, d2) = sealed(&owner.keys, 10_000);
    let mut t2 = terms(&d2, b2.len(), 0);
    t2.swap = true;
    assert!(rejected(propose(&owner, &host, &t2).await).contains("out of balance"));
    // A "swap" with a price is not a swap.
    t2.price_msat_per_gib_day = 5;
    assert!(rejected(propose(&owner, &host, &t2).await).contains("no price"));
    host.node.shutdown().await;
}
