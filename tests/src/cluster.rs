//! An in-process cluster of real boxes: one regtest bitcoind, N engines
//! (`bunker_node::Node`) each with its own data dir, seed, MANIFEST.db and
//! object store, a real libp2p swarm on loopback dialed to every other box,
//! and (optionally) a real ldk-node on the chain with funded wallets and open
//! channels. Intervals are seconds, not hours, so audits, payments and
//! repairs happen while a test watches.
//!
//! Only one cluster runs at a time in a test binary (each is 4 Lightning
//! nodes and a bitcoind on a small machine): [`Cluster::start`] waits for the
//! previous one to be dropped.
//!
//! ```no_run
//! # async fn demo() {
//! use bunker_tests::cluster::{Cluster, ClusterSpec};
//! let cluster = Cluster::start(ClusterSpec::new(4)).await;
//! let view = cluster.put(0, "/a.bin", vec![7u8; 4096], 2, false).await;
//! assert_eq!(cluster.get(0, "/a.bin").await, vec![7u8; 4096]);
//! # let _ = view;
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bunker_core::{Keys, Seed};
use bunker_ln::regtest::Bitcoind;
use bunker_ln::{ChannelSummary, Lightning, LnConfig, Network};
use bunker_manifest::Manifest;
use bunker_net::{Multiaddr, Net, NetConfig, PeerId};
use bunker_node::views::{AuditView, ContractView, FileDetail, FileView, PaymentView};
use bunker_node::{Node, NodeConfig, NodeParts, Policy};
use tokio::io::AsyncReadExt;

/// How long one setup step (a box's Lightning start, funding, a channel)
/// may take before the test fails with what it was waiting for.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Sats sent on-chain to every box's wallet, per UTXO.
const FUND_SAT: u64 = 2_000_000;

/// One channel to open: `from` funds `sat` and gives `push_msat` of it to `to`.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSpec {
    /// Box that funds the channel.
    pub from: usize,
    /// Box at the other end.
    pub to: usize,
    /// Channel size.
    pub sat: u64,
    /// Given to `to` at opening, so that its side of the channel is above the
    /// channel reserve from the start and every msat it receives shows in its
    /// outbound capacity.
    pub push_msat: u64,
}

/// What cluster to build.
pub struct ClusterSpec {
    /// Number of boxes.
    pub boxes: usize,
    /// Run Lightning (regtest bitcoind, funded wallets, channels).
    pub lightning: bool,
    /// Channels to open (only with `lightning`).
    pub channels: Vec<ChannelSpec>,
    /// Settlement threshold of every box's Lightning node, msat.
    pub settle_threshold_msat: u64,
    /// Changes one box's engine settings (called with the box index).
    pub configure: Box<dyn Fn(usize, &mut NodeConfig) + Send + Sync>,
}

impl ClusterSpec {
    /// `boxes` boxes with Lightning, box 0 (the owner in most scenarios) with a
    /// channel to every other box, test intervals ([`test_config`]).
    pub fn new(boxes: usize) -> ClusterSpec {
        ClusterSpec {
            boxes,
            lightning: true,
            channels: (1..boxes).map(|to| ChannelSpec { from: 0, to, sat: 1_000_000, push_msat: 100_000_000 }).collect(),
            settle_threshold_msat: 1,
            configure: Box::new(|_, _| {}),
        }
    }

    /// Without Lightning: storage, audits and repair only.
    pub fn without_lightning(mut self) -> ClusterSpec {
        self.lightning = false;
        self.channels.clear();
        self
    }

    /// Sets the per-box settings hook.
    pub fn configure(mut self, f: impl Fn(usize, &mut NodeConfig) + Send + Sync + 'static) -> ClusterSpec {
        self.configure = Box::new(f);
        self
    }
}

/// Engine settings for a cluster box: audits every 2 s, repair after 3
/// failures, settlement every 2 s, 4 KiB segments, no safety margin, prices
/// high enough that a 1 MiB object earns real msat per audit
/// (1e12 msat/GiB-day ≈ 22,600 msat per MiB per 2 s).
pub fn test_config(store_root: &Path) -> NodeConfig {
    let mut c = NodeConfig::new(store_root);
    c.audit_interval = Duration::from_secs(2);
    c.full_check_interval = Duration::from_secs(3600);
    c.repair_after_failures = 3;
    c.settle_interval = Duration::from_secs(2);
    c.segment_size = 4096;
    c.hosting.price_msat_per_gib_day = 1_000_000_000_000;
    c.hosting.retrieval_msat_per_gib = 1_000_000_000;
    c.hosting.price_floor_msat_per_gib_day = 0;
    c.hosting.safety_margin_bytes = 0;
    c.placement.max_price_msat_per_gib_day = u64::MAX / 4;
    c.placement.max_retrieval_msat_per_gib = u64::MAX / 4;
    c.placement.term = Duration::from_secs(30 * 86_400);
    c
}

/// One box of the cluster.
pub struct ClusterBox {
    /// Position in the cluster.
    pub index: usize,
    /// Its data dir (MANIFEST.db, `ln/`, `store/`).
    pub dir: PathBuf,
    /// The engine.
    pub node: Node,
    /// Its settings as started.
    pub config: NodeConfig,
    /// PeerId.
    pub peer_id: PeerId,
    /// Swarm listen addresses.
    pub net_addrs: Vec<Multiaddr>,
    /// Lightning listen address, when Lightning runs.
    pub ln_addr: Option<SocketAddr>,
    /// Stopped by [`Cluster::kill`].
    pub killed: bool,
}

/// A channel as it stood once usable, for balance checks.
#[derive(Debug, Clone)]
pub struct OpenedChannel {
    /// The spec it was opened from.
    pub spec: ChannelSpec,
    /// `from`'s id for the channel.
    pub user_channel_id: u128,
    /// `from`'s outbound capacity once usable.
    pub from_outbound_msat: u64,
    /// `to`'s outbound capacity once usable.
    pub to_outbound_msat: u64,
}

/// The running cluster. Dropping it stops nothing cleanly: call
/// [`Cluster::shutdown`] at the end of a test.
pub struct Cluster {
    /// The boxes, by index.
    pub boxes: Vec<ClusterBox>,
    /// The regtest chain (with Lightning).
    pub chain: Option<Arc<Bitcoind>>,
    /// Channels opened at start.
    pub channels: Vec<OpenedChannel>,
    _root: tempfile::TempDir,
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Logs to the test's output; `RUST_LOG` overrides the default filter.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,bunker_node=info,bunker_tests=info,ldk_node=off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Runs a blocking call (bitcoind RPC, ldk-node) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task panicked")
}

/// Polls `check` every 250 ms until it returns `Ok`, for at most `timeout`.
/// `Err(state)` says what was seen; the last one is in the failure message.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => {
                tracing::info!(target: "bunker_tests", "{what}: after {:.1} s", start.elapsed().as_secs_f64());
                return v;
            }
            Err(seen) if start.elapsed() >= timeout => {
                panic!("timed out after {:.1} s waiting for {what}; last seen: {seen}", start.elapsed().as_secs_f64())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// A Lightning listen address: ldk-node binds it only once Lightning starts,
/// seconds later, and an engine whose Lightning cannot bind retries on the
/// same address for ever. A port from `bind(:0)` could meanwhile be taken
/// by any of the cluster's outgoing connections; this one cannot.
fn free_addr() -> SocketAddr {
    bunker_ln::regtest::free_listen_addr().expect("a free loopback port")
}

impl Cluster {
    /// Builds and starts the cluster; panics with what failed.
    pub async fn start(spec: ClusterSpec) -> Cluster {
        init_tracing();
        let guard = ONE_CLUSTER.lock().await;
        let t0 = Instant::now();
        let root = tempfile::Builder::new().prefix("bunker-cluster-").tempdir().expect("cluster temp dir");
        let chain = if spec.lightning {
            let chain = blocking(|| Bitcoind::start().expect("regtest bitcoind starts")).await;
            let chain = Arc::new(chain);
            let c = Arc::clone(&chain);
            blocking(move || c.mine(101).expect("mine 101 blocks")).await;
            Some(chain)
        } else {
            None
        };

        let mut boxes = Vec::with_capacity(spec.boxes);
        for index in 0..spec.boxes {
            let dir = root.path().join(format!("box{index}"));
            std::fs::create_dir_all(&dir).expect("box dir");
            let seed = Seed::generate();
            let keys = Keys::from_seed(&seed);
            let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.expect("swarm starts");
            let net_addrs = wait_until(&format!("box {index} swarm listening"), Duration::from_secs(20), || {
                let net = net.clone();
                async move {
                    let a = net.listen_addrs().await.map_err(|e| e.to_string())?;
                    if a.is_empty() {
                        Err("no listen address yet".to_string())
                    } else {
                        Ok(a)
                    }
                }
            })
            .await;
            let mut config = test_config(&dir.join("store"));
            (spec.configure)(index, &mut config);
            let (ln, ln_addr) = match &chain {
                Some(chain) => {
                    let addr = free_addr();
                    let mut ln = LnConfig::new(dir.join("ln"), Network::Regtest, chain.chain_source());
                    ln.listen = vec![addr];
                    ln.settle_threshold_msat = spec.settle_threshold_msat;
                    (Some(ln), Some(addr))
                }
                None => (None, None),
            };
            let manifest = Manifest::open(dir.join("MANIFEST.db")).expect("MANIFEST.db opens");
            let node = Node::start(NodeParts { seed, config: config.clone(), manifest, net, inbound, ln })
                .await
                .unwrap_or_else(|e| panic!("box {index} engine does not start: {e}"));
            let peer_id = node.peer_id();
            boxes.push(ClusterBox { index, dir, node, config, peer_id, net_addrs, ln_addr, killed: false });
        }

        // Every box dialed to every other.
        for i in 0..boxes.len() {
            for j in (i + 1)..boxes.len() {
                let (peer, addrs) = (boxes[j].peer_id, boxes[j].net_addrs.clone());
                let net = boxes[i].node.net().clone();
                // A dial can be refused because the other side's dial to us is
                // in progress (or done): connected either way is what counts.
                wait_until(&format!("box {i} connected to box {j}"), Duration::from_secs(30), || {
                    let (net, addrs) = (net.clone(), addrs.clone());
                    async move {
                        let dialed = net.dial(peer, addrs).await;
                        let connected = net.peers().await.map_err(|e| e.to_string())?.connected;
                        if connected.iter().any(|p| p.peer_id == peer.to_string()) {
                            Ok(())
                        } else {
                            Err(format!("dial: {dialed:?}"))
                        }
                    }
                })
                .await;
            }
        }
        tracing::info!(target: "bunker_tests", "{} boxes up and dialed in {:.1} s", boxes.len(), t0.elapsed().as_secs_f64());

        let mut cluster = Cluster { boxes, chain, channels: Vec::new(), _root: root, _one_at_a_time: guard };
        if cluster.chain.is_some() {
            cluster.fund_and_open(&spec.channels).await;
            tracing::info!(target: "bunker_tests", "Lightning funded and channels usable after {:.1} s", t0.elapsed().as_secs_f64());
        }
        cluster
    }

    /// The running Lightning node of box `i` (waits for the engine to have
    /// started it).
    pub async fn lightning(&self, i: usize) -> Arc<Lightning> {
        let node = self.boxes[i].node.clone();
        if let Some(ln) = node.lightning() {
            return ln;
        }
        wait_until(&format!("box {i} Lightning running"), SETUP_TIMEOUT, || {
            let node = node.clone();
            async move { node.lightning().ok_or_else(|| "Node::lightning() is None".to_string()) }
        })
        .await
    }

    fn chain(&self) -> Arc<Bitcoind> {
        Arc::clone(self.chain.as_ref().expect("this cluster runs without Lightning"))
    }

    /// Mines `n` blocks.
    pub async fn mine(&self, n: u64) -> u64 {
        let chain = self.chain();
        blocking(move || chain.mine(n).expect("mine")).await
    }

    async fn fund_and_open(&mut self, channels: &[ChannelSpec]) {
        let chain = self.chain();
        let mut lns = Vec::new();
        for i in 0..self.boxes.len() {
            lns.push(self.lightning(i).await);
        }
        // One UTXO per channel a box funds, plus one for anchor reserves.
        for (i, ln) in lns.iter().enumerate() {
            let utxos = 1 + channels.iter().filter(|c| c.from == i).count() as u64;
            for _ in 0..utxos {
                let (ln, chain) = (Arc::clone(ln), Arc::clone(&chain));
                blocking(move || {
                    let addr = ln.new_onchain_address().expect("on-chain address");
                    chain.fund(&addr, FUND_SAT).expect("fund");
                })
                .await;
            }
            let want = utxos * FUND_SAT;
            let ln = Arc::clone(ln);
            blocking(move || {
                ln.wait_until("on-chain funds", SETUP_TIMEOUT, || {
                    ln.sync().ok()?;
                    (ln.balances().onchain_spendable_sat >= want).then_some(())
                })
                .unwrap_or_else(|e| panic!("box {i}: {e}"))
            })
            .await;
            tracing::info!(target: "bunker_tests", "box {i}: {want} sat on-chain");
        }
        // One at a time: ldk-node can pick the same coin for two funding
        // transactions built before either is broadcast (seen here: of three
        // channels opened together, one never confirmed).
        let mut ids = Vec::new();
        for c in channels {
            let (from, to) = (Arc::clone(&lns[c.from]), Arc::clone(&lns[c.to]));
            let addr = self.boxes[c.to].ln_addr.expect("Lightning address");
            let c = *c;
            let (f, t) = (Arc::clone(&from), Arc::clone(&to));
            let id = blocking(move || {
                f.open_channel(t.node_id(), addr, c.sat, Some(c.push_msat))
                    .unwrap_or_else(|e| panic!("box {} cannot open a channel to box {}: {e}", c.from, c.to))
            })
            .await;
            let start = Instant::now();
            loop {
                let (chain2, f, t) = (Arc::clone(&chain), Arc::clone(&from), Arc::clone(&to));
                let usable = blocking(move || {
                    chain2.mine(1).expect("mine");
                    let _ = f.sync(); // a failed round is retried by the loop
                    let _ = t.sync();
                    let peer = f.node_id().to_string();
                    let a = f.channels().into_iter().any(|s| s.user_channel_id == id && s.usable);
                    let b = t.channels().into_iter().any(|s| s.counterparty == peer && s.usable);
                    a && b
                })
                .await;
                if usable {
                    break;
                }
                assert!(
                    start.elapsed() < SETUP_TIMEOUT,
                    "channel {}→{} not usable after {:?}: funder sees {:?}, peer sees {:?}",
                    c.from,
                    c.to,
                    start.elapsed(),
                    from.channels(),
                    to.channels()
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            ids.push(id);
            tracing::info!(target: "bunker_tests", "channel {}→{} of {} sat usable after {:.1} s", c.from, c.to, c.sat, start.elapsed().as_secs_f64());
        }
        // Every node at the tip before anyone pays (a node that lags builds
        // HTLCs its peer rejects as expiring too soon).
        for ln in &lns {
            let ln = Arc::clone(ln);
            blocking(move || ln.wait_until("wallet sync", SETUP_TIMEOUT, || ln.sync().ok()).expect("wallet sync")).await;
        }
        for (c, id) in channels.iter().zip(ids) {
            let from = self.channel(c.from, c.to).await.expect("channel from");
            let to = self.channel(c.to, c.from).await.expect("channel to");
            assert_eq!(from.user_channel_id, id);
            self.channels.push(OpenedChannel {
                spec: *c,
                user_channel_id: id,
                from_outbound_msat: from.outbound_msat,
                to_outbound_msat: to.outbound_msat,
            });
        }
    }

    /// Box `i`'s channel with box `j`, as `i` sees it.
    pub async fn channel(&self, i: usize, j: usize) -> Option<ChannelSummary> {
        let (a, b) = (self.lightning(i).await, self.lightning(j).await);
        let peer = b.node_id().to_string();
        a.channels().into_iter().find(|c| c.counterparty == peer)
    }

    /// The engine of box `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.boxes[i].node
    }

    /// Which box has this PeerId (text form, as views show it).
    pub fn index_of(&self, peer: &str) -> usize {
        self.boxes
            .iter()
            .position(|b| b.peer_id.to_string() == peer)
            .unwrap_or_else(|| panic!("no box with PeerId {peer}"))
    }

    /// Stores `bytes` at `path` on box `i`.
    pub async fn put(&self, i: usize, path: &str, bytes: Vec<u8>, copies: u8, keep_local: bool) -> FileView {
        let len = bytes.len() as u64;
        let policy = Policy { copies, keep_local };
        tokio::time::timeout(Duration::from_secs(120), self.node(i).put(path, len, policy, std::io::Cursor::new(bytes)))
            .await
            .unwrap_or_else(|_| panic!("put {path} on box {i}: not done within 120 s"))
            .unwrap_or_else(|e| panic!("put {path} on box {i}: {e}"))
    }

    /// Reads `path` back from box `i` (all of it, checked against the
    /// announced length).
    pub async fn get(&self, i: usize, path: &str) -> Vec<u8> {
        self.try_get(i, path).await.unwrap_or_else(|e| panic!("get {path} on box {i}: {e}"))
    }

    /// [`Cluster::get`] that says why it failed instead of panicking.
    pub async fn try_get(&self, i: usize, path: &str) -> Result<Vec<u8>, String> {
        let read = async {
            let mut stream = self.node(i).get(path).await.map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(stream.len as usize);
            stream.body.read_to_end(&mut out).await.map_err(|e| format!("reading the stream: {e}"))?;
            if out.len() as u64 != stream.len {
                return Err(format!("announced {} bytes, read {}", stream.len, out.len()));
            }
            Ok(out)
        };
        tokio::time::timeout(Duration::from_secs(120), read).await.map_err(|_| "not done within 120 s".to_string())?
    }

    /// File detail on box `i`.
    pub async fn detail(&self, i: usize, path: &str) -> FileDetail {
        self.node(i).file(path).await.unwrap_or_else(|e| panic!("detail of {path} on box {i}: {e}"))
    }

    /// The boxes holding active replicas of `path` (owned by box `i`).
    pub async fn active_hosts(&self, i: usize, path: &str) -> Vec<usize> {
        self.detail(i, path)
            .await
            .replicas
            .iter()
            .filter(|r| r.state == "active")
            .map(|r| self.index_of(&r.host))
            .collect()
    }

    /// Box `i`'s payments ledger (MANIFEST.db), all of it.
    pub async fn payments(&self, i: usize) -> Vec<PaymentView> {
        self.node(i).payments(100_000).await.unwrap_or_else(|e| panic!("payments of box {i}: {e}"))
    }

    /// Box `i`'s contracts.
    pub async fn contracts(&self, i: usize) -> Vec<ContractView> {
        self.node(i).contracts().await.unwrap_or_else(|e| panic!("contracts of box {i}: {e}"))
    }

    /// Box `i`'s audits, newest first.
    pub async fn audits(&self, i: usize) -> Vec<AuditView> {
        self.node(i).audits(100_000).await.unwrap_or_else(|e| panic!("audits of box {i}: {e}"))
    }

    /// Succeeded payments of box `i` in `direction` (`outgoing`/`incoming`),
    /// summed per contract (amount, fee).
    pub async fn paid_by_contract(&self, i: usize, direction: &str) -> BTreeMap<String, (u64, u64)> {
        let mut sums = BTreeMap::new();
        for p in self.payments(i).await {
            if p.direction == direction && p.state == "succeeded" {
                let e = sums.entry(p.contract.clone().unwrap_or_default()).or_insert((0, 0));
                e.0 += p.amount_msat;
                e.1 += p.fee_msat.unwrap_or(0);
            }
        }
        sums
    }

    /// Stops box `i` (engine, swarm, Lightning): as a host that went away.
    pub async fn kill(&mut self, i: usize) {
        tokio::time::timeout(Duration::from_secs(60), self.boxes[i].node.shutdown())
            .await
            .unwrap_or_else(|_| panic!("box {i} did not shut down within 60 s"));
        self.boxes[i].killed = true;
    }

    /// The objects box `host` keeps for peers: the engine's object store
    /// keeps each under `hosted/<owner PeerId>-<root hex>/` with the sealed
    /// bytes in `object` and the Merkle tree in `sidecar`.
    pub fn hosted_objects(&self, host: usize) -> Vec<HostedObject> {
        let dir = self.boxes[host].config.store_root.join("hosted");
        let mut out: Vec<HostedObject> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        let (owner, root_hex) = name.rsplit_once('-')?;
                        e.path().join("object").is_file().then(|| HostedObject {
                            dir: e.path(),
                            owner: owner.to_string(),
                            root_hex: root_hex.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.dir.cmp(&b.dir));
        out
    }

    /// The one object box `host` keeps for box `owner`.
    pub fn hosted_object(&self, host: usize, owner: usize) -> HostedObject {
        let owner_id = self.boxes[owner].peer_id.to_string();
        let found: Vec<_> = self.hosted_objects(host).into_iter().filter(|o| o.owner == owner_id).collect();
        assert_eq!(found.len(), 1, "box {host} should hold exactly one object of box {owner}, found {found:?}");
        found.into_iter().next().expect("one")
    }

    /// Flips one byte every 1 KiB of `path` (so every segment of a sealed
    /// object is damaged, whichever one an audit picks).
    pub fn corrupt(path: &Path) {
        let mut data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for b in data.iter_mut().step_by(1024) {
            *b ^= 0xff;
        }
        std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Stops every box still running; the chain stops on drop.
    pub async fn shutdown(self) {
        for b in &self.boxes {
            if !b.killed {
                let _ = tokio::time::timeout(Duration::from_secs(60), b.node.shutdown()).await;
            }
        }
    }
}

/// One object a box hosts, as its object store keeps it on disk.
#[derive(Debug, Clone)]
pub struct HostedObject {
    /// Its directory.
    pub dir: PathBuf,
    /// The owner's PeerId.
    pub owner: String,
    /// The Merkle root it was stored under, hex.
    pub root_hex: String,
}

impl HostedObject {
    /// The sealed bytes.
    pub fn object(&self) -> PathBuf {
        self.dir.join("object")
    }

    /// The proof sidecar.
    pub fn sidecar(&self) -> PathBuf {
        self.dir.join("sidecar")
    }
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut v);
    v
}
