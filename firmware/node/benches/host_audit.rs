//! The hosting side under audit load: a box hosting 10 000 objects answers
//! segment audits through real swarms on 127.0.0.1. Target: 100 audits/s
//! with p99 ≤ 50 ms.
//!
//! Run: `cargo bench -p bunker-node --bench host_audit [-- OBJECTS [SECONDS]]`
//! (defaults: 10 000 objects, 30 s at 100 audits/s, then 10 s flat out).
//!
//! Two owner boxes (bare bunker-net swarms signing as the engine does)
//! place the objects through the whole market round (contract, store,
//! signed receipt), then challenge random segments of random objects at a
//! fixed rate (open loop: a slow answer does not slow the next challenge),
//! verifying every proof. Then the same with 16 challenges in flight, for
//! the most the host can answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bunker_core::{verify_segment, Descriptor, FileId, Keys, NoLeaves, ObjectId, Proof, Sealer, Seed};
use bunker_manifest::Manifest;
use bunker_net::*;
use bunker_node::{HostingTerms, Node, NodeConfig, NodeParts};
use futures::stream::{self, StreamExt};

/// Plaintext per object and per segment: 64 segments, a 6-level proof.
const OBJECT_PLAIN: usize = 16 * 1024;
const SEGMENT: u32 = 256;
const RATE_PER_SEC: u64 = 100;


struct Owner {
    net: Net,
    keys: Keys,
    _inbound: tokio::sync::mpsc::Receiver<InboundRequest>,
}

/// Places one object, trying again when the stream fails in transit
/// (bunker-net opens a stream on a connection that the swarm may be closing
/// while a second one to the same peer takes over: see BENCHMARKS.md).
async fn place(owner: &Owner, host: PeerId, price: u64, retrieval: u64) -> Descriptor {
    for attempt in 1.. {
        match try_place(owner, host, price, retrieval).await {
            Ok(d) => return d,
            Err(e) if attempt < 5 => eprintln!("placing failed ({e}); again"),
            Err(e) => panic!("placing failed 5 times: {e}"),
        }
    }
    unreachable!()
}

/// Seals, contracts and stores one object; returns its descriptor.
async fn try_place(owner: &Owner, host: PeerId, price: u64, retrieval: u64) -> Result<Descriptor, String> {
    let object = ObjectId { file_id: FileId::random(), replica_index: 0 };
    let key = owner.keys.replica_key(&object.file_id, 0);
    let plain: Vec<u8> = (0..OBJECT_PLAIN).map(|_| rand::random::<u8>()).collect();
    let mut sealed = Vec::new();
    let d = Sealer::new(&key, object, OBJECT_PLAIN as u64, SEGMENT).unwrap().seal(&plain[..], &mut sealed, NoLeaves).unwrap();
    let terms = ContractTerms {
        contract_id: rand::random(),
        object_root: d.root,
        object_bytes: sealed.len() as u64,
        plain_bytes: d.size,
        segment_size: d.segment_size,
        price_msat_per_gib_day: price,
        retrieval_msat_per_gib: retrieval,
        audit_interval_secs: (60, 120),
        term_secs: 86_400,
        swap: false,
        owner_label: Vec::new(),
    };
    let owner_signature = bunker_node::sign::sign_terms(&owner.keys, &terms);
    match owner.net.contract(host, ContractProposal { terms: terms.clone(), owner_signature }).await {
        Ok(ContractAnswer::Accepted { .. }) => {}
        Ok(ContractAnswer::Rejected { reason }) => panic!("contract refused: {reason}"),
        Err(e) => return Err(e.to_string()),
    }
    let header = StoreHeader { contract_id: terms.contract_id, object_root: d.root, total_len: sealed.len() as u64 };
    let receipt = owner.net.store(host, header, &sealed[..]).await.map_err(|e| e.to_string())?;
    assert_eq!(receipt.root, d.root);
    Ok(d)
}

/// One audit: latency, and whether the proof verified.
async fn audit(owner: &Owner, host: PeerId, d: &Descriptor) -> (Duration, bool) {
    let segment = rand::random::<u64>() % d.segment_count;
    let start = Instant::now();
    let answer = owner.net.audit(host, AuditChallenge { object_root: d.root, segment, nonce: rand::random() }).await;
    let took = start.elapsed();
    let ok = match answer {
        Ok(AuditResponse::Proof { sealed_segment, proof }) => Proof::from_bytes(&proof)
            .map(|p| verify_segment(d, segment, &sealed_segment, &p).is_ok())
            .unwrap_or(false),
        _ => false,
    };
    (took, ok)
}

/// Loopback over TCP only: one connection per owner, so the figures are the
/// host's, not those of a second (QUIC) connection being set up and closed
/// under streams in flight.
fn tcp_only(keys: &Keys) -> NetConfig {
    let mut c = NetConfig::loopback(keys.identity());
    c.listen.retain(|a| a.to_string().contains("/tcp/"));
    c
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, mut lat: Vec<Duration>, failed: usize, wall: Duration) {
    lat.sort();
    let n = lat.len();
    println!(
        "{what}: {n} audits in {:.1} s = {:.1} audits/s, {failed} failed; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .try_init();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let objects: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(objects, seconds));
}

async fn run(objects: usize, seconds: u64) {
    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into())).unwrap();
    let seed = Seed::generate();
    let keys = Keys::from_seed(&seed);
    let (net, inbound) = Net::start(tcp_only(&keys)).await.unwrap();
    let manifest = Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
    let mut config = NodeConfig::new(dir.path().join("store"));
    config.hosting = HostingTerms { safety_margin_bytes: 64 << 20, max_hosted_bytes: None, ..HostingTerms::default() };
    let (price, retrieval) = (config.hosting.price_msat_per_gib_day, config.hosting.retrieval_msat_per_gib);
    let node = Node::start(NodeParts { seed, config, manifest, net, inbound, ln: None }).await.unwrap();
    let host = node.peer_id();
    // One TCP connection per owner, as bunker-net's own tests dial (a second,
    // QUIC connection being closed under open streams is not what is measured).
    let addrs: Vec<Multiaddr> =
        node.net().listen_addrs().await.unwrap().into_iter().filter(|a| a.to_string().contains("/tcp/")).collect();

    let mut owners = Vec::new();
    for _ in 0..2 {
        let keys = Keys::from_seed(&Seed::generate());
        let (net, inbound) = Net::start(tcp_only(&keys)).await.unwrap();
        net.dial(host, addrs.clone()).await.unwrap();
        owners.push(Arc::new(Owner { net, keys, _inbound: inbound }));
    }

    // Placing: each owner places half, 4 at a time (under the per-peer limit of 8
    // streams: a slot is freed just after the owner sees the verdict).
    let start = Instant::now();
    let mut placed: Vec<Vec<Descriptor>> = Vec::new();
    let fills = owners.iter().map(|o| {
        let o = Arc::clone(o);
        let n = objects / owners.len();
        tokio::spawn(async move {
            stream::iter(0..n).map(|_| place(&o, host, price, retrieval)).buffer_unordered(4).collect::<Vec<_>>().await
        })
    });
    for f in fills.collect::<Vec<_>>() {
        placed.push(f.await.unwrap());
    }
    let total: usize = placed.iter().map(Vec::len).sum();
    let fill = start.elapsed();
    println!(
        "placed {total} objects of {OBJECT_PLAIN} B ({} segments each) in {:.1} s ({:.0} contract+store/s)",
        OBJECT_PLAIN / SEGMENT as usize,
        fill.as_secs_f64(),
        total as f64 / fill.as_secs_f64()
    );
    let placed = Arc::new(placed);

    // Warm-up.
    for i in 0..200 {
        let k = i % owners.len();
        let d = &placed[k][rand::random::<usize>() % placed[k].len()];
        audit(&owners[k], host, d).await;
    }

    // Open loop at the target rate.
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SEC));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let n = (RATE_PER_SEC * seconds) as usize;
    let mut tasks = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        tick.tick().await;
        let (o, p) = (Arc::clone(&owners[i % owners.len()]), Arc::clone(&placed));
        let k = i % owners.len();
        tasks.push(tokio::spawn(async move {
            let d = &p[k][rand::random::<usize>() % p[k].len()];
            audit(&o, host, d).await
        }));
    }
    let mut lat = Vec::with_capacity(n);
    let mut failed = 0;
    for t in tasks {
        let (took, ok) = t.await.unwrap();
        lat.push(took);
        failed += usize::from(!ok);
    }
    report(&format!("open loop at {RATE_PER_SEC}/s over {total} hosted objects"), lat, failed, start.elapsed());

    // Flat out: 16 in flight (8 per owner, the per-peer audit concurrency).
    let until = Instant::now() + Duration::from_secs(10);
    let start = Instant::now();
    let workers = (0..16).map(|w| {
        let (o, p) = (Arc::clone(&owners[w % owners.len()]), Arc::clone(&placed));
        let k = w % owners.len();
        tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < until {
                let d = &p[k][rand::random::<usize>() % p[k].len()];
                out.push(audit(&o, host, d).await);
            }
            out
        })
    });
    let mut lat = Vec::new();
    let mut failed = 0;
    for w in workers.collect::<Vec<_>>() {
        for (took, ok) in w.await.unwrap() {
            lat.push(took);
            failed += usize::from(!ok);
        }
    }
    report("closed loop, 16 in flight", lat, failed, start.elapsed());
    node.shutdown().await;
}
