//! A small but real "engine" for tests: it answers every bunker protocol from in-memory state,
//! so tests can check that what arrives is what was sent, in both directions.
#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet},
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bunker_net::*;
use futures::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Objects up to this size are kept in memory (and can be fetched back); larger ones are
/// checked against [`pattern_byte`] while streaming and only counted.
pub const KEEP_LIMIT: u64 = 8 << 20;
/// Object root that makes the test engine serve a pattern object whose length is in the first
/// 8 bytes of the contract id.
pub const PATTERN_ROOT: Id32 = [0xEE; 32];
/// Contract id that makes the test engine abandon the body after 1 MiB.
pub const GIVE_UP_CONTRACT: Id32 = [0xE0; 32];
/// Contract id that makes the test engine read like a slow disk.
pub const SLOW_READER_CONTRACT: Id32 = [0x5D; 32];
/// How long the slow reader pauses after its first MiB.
pub const SLOW_READER_PAUSE: Duration = Duration::from_secs(2);
/// Period of the test pattern: not a power of two, so a reordered or repeated chunk is caught.
pub const PATTERN_PERIOD: usize = (1 << 20) + 7;

pub fn pattern() -> &'static [u8] {
    static P: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        (0..PATTERN_PERIOD).map(|i| (i as u32).wrapping_mul(2654435761).rotate_right(13) as u8).collect()
    })
}

/// Serves `len` bytes of the test pattern, starting at position 0.
pub struct PatternReader {
    pub pos: u64,
    pub len: u64,
}

impl AsyncRead for PatternReader {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let left = self.len - self.pos;
        let p = pattern();
        let off = (self.pos % PATTERN_PERIOD as u64) as usize;
        let n = buf.len().min(left as usize).min(PATTERN_PERIOD - off);
        buf[..n].copy_from_slice(&p[off..off + n]);
        self.pos += n as u64;
        Poll::Ready(Ok(n))
    }
}

/// Reads `r` to the end, checking every byte against the pattern. Returns the byte count.
pub async fn check_pattern<R: AsyncRead + Unpin>(r: R) -> io::Result<u64> {
    check_pattern_from(r, 0).await
}

/// Like [`check_pattern`] for a reader positioned at byte `start` of the pattern; returns the
/// position reached.
pub async fn check_pattern_from<R: AsyncRead + Unpin>(mut r: R, start: u64) -> io::Result<u64> {
    let p = pattern();
    let mut buf = vec![0u8; 256 * 1024];
    let mut pos = start;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(pos);
        }
        let mut done = 0;
        while done < n {
            let off = (pos % PATTERN_PERIOD as u64) as usize;
            let k = (n - done).min(PATTERN_PERIOD - off);
            if buf[done..done + k] != p[off..off + k] {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("pattern mismatch near byte {pos}"),
                ));
            }
            done += k;
            pos += k as u64;
        }
    }
}

/// A reader that yields `first` bytes of pattern and then never anything again (a stalled
/// disk or a hostile peer).
pub struct StallingReader {
    pub inner: PatternReader,
    pub stall_after: u64,
}

impl AsyncRead for StallingReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.inner.pos >= self.stall_after {
            return Poll::Pending;
        }
        let room = (self.stall_after - self.inner.pos) as usize;
        let n = buf.len().min(room);
        Pin::new(&mut self.inner).poll_read(cx, &mut buf[..n])
    }
}

/// What the engine saw, for assertions.
#[derive(Default)]
pub struct EngineState {
    pub objects: HashMap<Id32, Vec<u8>>,
    pub big_objects_verified: Vec<(Id32, u64)>,
    pub manifests: HashMap<PeerId, (u64, Vec<u8>)>,
    pub contracts: HashSet<Id32>,
    pub store_errors: Vec<String>,
    pub requests_seen: usize,
    /// Store bodies that arrived on our lane rather than the stream.
    pub lane_stores: usize,
}

pub struct Node {
    pub net: Net,
    pub id: PeerId,
    pub addrs: Vec<Multiaddr>,
    pub keypair: Keypair,
    pub state: Arc<Mutex<EngineState>>,
}

/// The offer a test engine on `host` makes: its own PeerId in the node id field proves which
/// host answered.
pub fn offer_of(host: &PeerId) -> Offer {
    Offer {
        free_bytes: 1 << 40,
        price_msat_per_gib_day: 12,
        retrieval_msat_per_gib: 3400,
        swap_wanted_bytes: 0,
        ln_node_id: host.to_bytes(),
        ln_node_id_signature: vec![1, 2, 3],
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub async fn start(config: NetConfig) -> Node {
    init_tracing();
    let keypair = config.keypair.clone();
    let (net, inbound) = Net::start(config).await.expect("node starts");
    let addrs = net.listen_addrs().await.expect("listen addrs");
    let state = Arc::new(Mutex::new(EngineState::default()));
    tokio::spawn(run_engine(net.local_peer_id(), keypair.clone(), inbound, state.clone()));
    Node { id: net.local_peer_id(), net, addrs, keypair, state }
}

pub async fn node_with(limits: Limits) -> Node {
    let mut cfg = NetConfig::loopback(Keypair::generate_ed25519());
    cfg.limits = limits;
    start(cfg).await
}

pub async fn node() -> Node {
    node_with(Limits::default()).await
}

/// TCP address of a node (the first listen address is TCP in loopback configs).
pub fn tcp_addr(n: &Node) -> Multiaddr {
    n.addrs.iter().find(|a| a.to_string().contains("/tcp/")).expect("tcp listen addr").clone()
}

pub async fn connect(a: &Node, b: &Node) {
    a.net.dial(b.id, vec![tcp_addr(b)]).await.expect("dial");
}

async fn run_engine(
    me: PeerId,
    keypair: Keypair,
    mut inbound: mpsc::Receiver<InboundRequest>,
    state: Arc<Mutex<EngineState>>,
) {
    while let Some(req) = inbound.recv().await {
        state.lock().unwrap().requests_seen += 1;
        let state = state.clone();
        let keypair = keypair.clone();
        tokio::spawn(async move { answer(me, keypair, req, state).await });
    }
}

async fn answer(me: PeerId, keypair: Keypair, req: InboundRequest, state: Arc<Mutex<EngineState>>) {
    match req {
        InboundRequest::Offer { reply, .. } => {
            let _ = reply.send(offer_of(&me)).await;
        }
        InboundRequest::Contract { proposal, reply, .. } => {
            let answer = if proposal.terms.object_bytes == 0 {
                ContractAnswer::Rejected { reason: "empty object".into() }
            } else {
                let bytes = postcard::to_stdvec(&proposal.terms).unwrap();
                state.lock().unwrap().contracts.insert(proposal.terms.contract_id);
                ContractAnswer::Accepted { host_signature: keypair.sign(&bytes).unwrap() }
            };
            let _ = reply.send(answer).await;
        }
        InboundRequest::Audit { challenge, reply, .. } => {
            let resp = {
                let st = state.lock().unwrap();
                match st.objects.get(&challenge.object_root) {
                    Some(obj) => {
                        let start = (challenge.segment as usize * 64).min(obj.len());
                        let end = (start + 64).min(obj.len());
                        AuditResponse::Proof {
                            sealed_segment: obj[start..end].to_vec(),
                            proof: challenge.nonce.to_vec(),
                        }
                    }
                    None => AuditResponse::NotFound,
                }
            };
            let _ = reply.send(resp).await;
        }
        InboundRequest::Manifest { peer, request, reply } => {
            let resp = {
                let mut st = state.lock().unwrap();
                match request {
                    ManifestRequest::Store { version, snapshot } => {
                        st.manifests.insert(peer, (version, snapshot));
                        ManifestResponse::Stored
                    }
                    // Keyed by the authenticated requester: only the owner gets its snapshot.
                    ManifestRequest::Fetch => match st.manifests.get(&peer) {
                        Some((version, snapshot)) => {
                            ManifestResponse::Snapshot { version: *version, snapshot: snapshot.clone() }
                        }
                        None => ManifestResponse::NotFound,
                    },
                }
            };
            let _ = reply.send(resp).await;
        }
        InboundRequest::Recover { request, reply, .. } => {
            let found = state.lock().unwrap().manifests.contains_key(&request.owner);
            let resp = if found {
                let mut path = request.path.clone();
                path.push(me);
                RecoverResponse::Found { holders: vec![me], path }
            } else {
                RecoverResponse::NotFound
            };
            let _ = reply.send(resp).await;
        }
        InboundRequest::Release { request, reply, .. } => {
            let known = state.lock().unwrap().contracts.remove(&request.contract_id);
            let resp = if known { ReleaseResponse::Released } else { ReleaseResponse::UnknownContract };
            let _ = reply.send(resp).await;
        }
        InboundRequest::Store(store) => {
            let root = store.header.object_root;
            let len = store.header.total_len;
            if store.header.contract_id == [0xAA; 32] {
                let _ = store.reject("no such contract").await;
                return;
            }
            let slow = store.header.contract_id == SLOW_READER_CONTRACT;
            let give_up = store.header.contract_id == GIVE_UP_CONTRACT;
            let mut body = match store.accept().await {
                Ok(b) => b,
                Err(e) => {
                    state.lock().unwrap().store_errors.push(e.to_string());
                    return;
                }
            };
            if body.via_lane() {
                state.lock().unwrap().lane_stores += 1;
            }
            if give_up {
                // Verification failed part-way (e.g. a bad segment): give up mid-body.
                let mut first = vec![0u8; 1 << 20];
                let _ = body.read_exact(&mut first).await;
                let _ = body.finish(Err("segment 16 failed verification".into())).await;
                return;
            }
            if slow {
                // A slow disk: read 1 MiB, pause, then the rest.
                let mut first = vec![0u8; 1 << 20];
                if body.read_exact(&mut first).await.is_err() {
                    return;
                }
                tokio::time::sleep(SLOW_READER_PAUSE).await;
                let rest = check_pattern_from(&mut body, 1 << 20).await;
                let ok = first[..] == pattern()[..1 << 20] && rest.is_ok_and(|end| end == len);
                let _ = body.finish(if ok { Ok(receipt_of(root)) } else { Err("mismatch".into()) }).await;
                return;
            }
            if len > KEEP_LIMIT {
                match check_pattern(&mut body).await {
                    Ok(n) => {
                        state.lock().unwrap().big_objects_verified.push((root, n));
                        let _ = body.finish(Ok(receipt_of(root))).await;
                    }
                    Err(e) => {
                        state.lock().unwrap().store_errors.push(e.to_string());
                        let _ = body.finish(Err(e.to_string())).await;
                    }
                }
            } else {
                let mut buf = Vec::new();
                match body.read_to_end(&mut buf).await {
                    Ok(_) => {
                        state.lock().unwrap().objects.insert(root, buf);
                        let _ = body.finish(Ok(receipt_of(root))).await;
                    }
                    Err(e) => {
                        state.lock().unwrap().store_errors.push(e.to_string());
                    }
                }
            }
        }
        InboundRequest::Fetch(fetch) => {
            let root = fetch.request.object_root;
            if root == PATTERN_ROOT {
                let len = u64::from_be_bytes(fetch.request.contract_id[..8].try_into().unwrap());
                let _ = fetch.send(len, PatternReader { pos: 0, len }).await;
                return;
            }
            if root == [0x57; 32] {
                // Stall after 1 MiB: a host whose disk hangs, or that plays games.
                let len = 4 << 20;
                let _ = fetch
                    .send(len, StallingReader { inner: PatternReader { pos: 0, len }, stall_after: 1 << 20 })
                    .await;
                return;
            }
            let obj = state.lock().unwrap().objects.get(&root).cloned();
            match obj {
                Some(o) => {
                    let _ = fetch.send(o.len() as u64, &o[..]).await;
                }
                None => {
                    let _ = fetch.not_found().await;
                }
            }
        }
        InboundRequest::Holdings { peer, request, reply } => {
            // `max` holdings with 1000-byte labels; the owner signature field carries the
            // requester as the engine saw it (noise-authenticated), so tests can check it.
            let n = request.max.min(400);
            let holdings: Vec<Holding> = (0..n)
                .map(|i| Holding {
                    terms: ContractTerms {
                        contract_id: [i as u8; 32],
                        object_root: [3; 32],
                        object_bytes: 80,
                        plain_bytes: 64,
                        segment_size: 64,
                        price_msat_per_gib_day: 1,
                        retrieval_msat_per_gib: 1,
                        audit_interval_secs: (1, 2),
                        term_secs: 60,
                        swap: false,
                        owner_label: vec![0x4C; 1000],
                    },
                    owner_signature: peer.to_bytes(),
                    host_signature: me.to_bytes(),
                    root: [3; 32],
                    accepted_at: 1,
                })
                .collect();
            let next = holdings.last().map(|h| h.terms.contract_id);
            let _ = reply.send(HoldingsResponse::Page { holdings, next }).await;
        }
        _ => {}
    }
}

/// Polls `f` until it returns true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The test host's store receipt: the root it was told, a fixed stand-in signature (the engine
/// signs real receipts; this crate only carries them).
pub fn receipt_of(root: Id32) -> StoreReceipt {
    StoreReceipt { root, host_signature: vec![0xEC; 64] }
}
