//! Boxes for the owner-side tests: real engines on real loopback swarms,
//! each with its own MANIFEST.db and object store, Lightning off.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use bunker_core::Seed;
use bunker_manifest::Manifest;
use bunker_net::{Net, NetConfig};
use bunker_node::{HostingTerms, Node, NodeConfig, NodeParts, Policy};
use tokio::io::AsyncReadExt;

pub struct Box_ {
    pub node: Node,
    pub dir: tempfile::TempDir,
}

impl Box_ {
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The sealed objects this box hosts for others: (dir name, bytes).
    pub fn hosted(&self) -> Vec<(String, Vec<u8>)> {
        let dir = self.store().join("hosted");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        let mut out: Vec<_> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let bytes = std::fs::read(e.path().join("object")).ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), bytes))
            })
            .collect();
        out.sort();
        out
    }

    /// A second connection to this box's MANIFEST.db (WAL: reads beside the engine).
    pub fn manifest(&self) -> Manifest {
        Manifest::open(self.dir.path().join("MANIFEST.db")).unwrap()
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// Settings with intervals of seconds.
pub fn test_config(store: PathBuf) -> NodeConfig {
    let mut c = NodeConfig::new(store);
    c.audit_interval = Duration::from_secs(1);
    c.full_check_interval = Duration::from_secs(3600);
    c.repair_after_failures = 2;
    c.segment_size = 4096;
    c.hosting = HostingTerms {
        price_msat_per_gib_day: 1000,
        retrieval_msat_per_gib: 5000,
        price_floor_msat_per_gib_day: 100,
        safety_margin_bytes: 1 << 20,
        max_hosted_bytes: Some(256 << 20),
        accept_swaps: true,
        ..HostingTerms::default()
    };
    c
}

pub async fn start_box(tweak: impl FnOnce(&mut NodeConfig)) -> Box_ {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let seed = Seed::generate();
    let keys = bunker_core::Keys::from_seed(&seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.unwrap();
    let manifest = Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
    let mut config = test_config(dir.path().join("store"));
    tweak(&mut config);
    let node = Node::start(NodeParts { seed, config, manifest, net, inbound, ln: None }).await.unwrap();
    Box_ { node, dir }
}

/// An owner and `hosts` hosts, the owner connected to each host.
pub async fn swarm(hosts: usize, owner_tweak: impl FnOnce(&mut NodeConfig)) -> (Box_, Vec<Box_>) {
    let owner = start_box(owner_tweak).await;
    let mut hs = Vec::new();
    for _ in 0..hosts {
        let h = start_box(|_| {}).await;
        let addrs = h.node.net().listen_addrs().await.unwrap();
        owner.node.net().dial(h.node.peer_id(), addrs).await.unwrap();
        hs.push(h);
    }
    (owner, hs)
}

/// Test content: not compressible, different per seed.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut h = blake3::Hasher::new();
    h.update(&[seed]);
    let mut reader = h.finalize_xof();
    out.resize(len, 0);
    reader.fill(&mut out);
    out
}

pub async fn put(owner: &Box_, path: &str, data: &[u8], policy: Policy) -> Result<bunker_node::views::FileView, bunker_node::PutError> {
    owner.node.put(path, data.len() as u64, policy, std::io::Cursor::new(data.to_vec())).await
}

/// Reads a file back whole (with a timeout); errors when the stream is short.
pub async fn get(owner: &Box_, path: &str) -> Result<Vec<u8>, String> {
    let mut stream = owner.node.get(path).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.body.read_to_end(&mut out))
        .await
        .map_err(|_| "get timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if out.len() as u64 != stream.len {
        return Err(format!("stream ended after {} of {} bytes", out.len(), stream.len));
    }
    Ok(out)
}

/// Polls `check` every 250 ms until it returns `Some`, failing after `secs`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
