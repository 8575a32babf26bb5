//! [`Net`]: the cheap, clonable handle the engine uses.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::{AsyncRead, StreamExt};
use libp2p::{swarm::SwarmEvent, Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::{
    behaviour::build_swarm,
    bulk::{self, BulkCtx, IncomingObject, OwnerLanes},
    config::NetConfig,
    error::{DialError, NetClosed, ProviderError, RequestError, StartError, StreamError},
    event_loop::{Command, EventLoop, OutboundRequest},
    guard::PeerGuard,
    inbound::InboundRequest,
    lane::{LaneClient, LaneHost},
    limits::Limits,
    messages::*,
    peers::PeersSummary,
    protocols,
};

/// Where the lane listens: the IP of the first TCP listen address (so a box told to listen on
/// one interface, or a test on loopback, opens nothing elsewhere), all interfaces otherwise.
fn lane_ip(listen: &[Multiaddr]) -> std::net::IpAddr {
    use libp2p::multiaddr::Protocol;
    let tcp_ip = |a: &Multiaddr| {
        let mut ip = None;
        let mut tcp = false;
        for p in a.iter() {
            match p {
                Protocol::Ip4(v) => ip = Some(std::net::IpAddr::V4(v)),
                Protocol::Ip6(v) => ip = Some(std::net::IpAddr::V6(v)),
                Protocol::Tcp(_) => tcp = true,
                _ => {}
            }
        }
        ip.filter(|_| tcp)
    };
    listen.iter().find_map(tcp_ip).unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// How long [`Net::start`] waits for its listeners to report addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack on top of a protocol's own timeout before the handle gives up on the event loop.
const GRACE: Duration = Duration::from_secs(5);
/// Commands queued to the event loop; senders wait when it is full (back-pressure on callers).
const COMMAND_QUEUE: usize = 1024;

/// Handle to a running node. Clones share the node; the node stops when the last clone is
/// dropped or on [`Net::shutdown`].
#[derive(Clone)]
pub struct Net {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    control: libp2p_stream::Control,
    /// Our own bulk streams per peer, kept under what the peer allows.
    outbound: PeerGuard,
    /// Hosts' lanes we send bodies on.
    lanes: OwnerLanes,
    /// Our own lane's port, if we have one.
    lane_port: Option<u16>,
    local_peer_id: PeerId,
    limits: Arc<Limits>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.commands.try_send(Command::Shutdown);
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").field("local_peer_id", &self.inner.local_peer_id).finish()
    }
}

impl Net {
    /// Starts a node: builds the swarm, listens, joins the DHT through the bootstrap peers and
    /// spawns the event loop on the current tokio runtime. Returns the handle and the stream of
    /// inbound requests, which the engine must keep draining (when it is full, peers are told
    /// the host is busy).
    pub async fn start(config: NetConfig) -> Result<(Net, mpsc::Receiver<InboundRequest>), StartError> {
        let mut swarm = build_swarm(&config)?;
        let local_peer_id = *swarm.local_peer_id();
        if config.kad_server {
            swarm.behaviour_mut().kad.set_mode(Some(libp2p::kad::Mode::Server));
        }
        let mut listeners = HashSet::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| StartError::Listen { addr: addr.clone(), reason: with_sources(&e) })?;
            listeners.insert(id);
        }
        // Wait until every listener has an address, so callers (and tests) can hand them out.
        let mut listen_addrs = Vec::new();
        let mut pending = listeners.clone();
        let wait = tokio::time::timeout(LISTEN_TIMEOUT, async {
            while !pending.is_empty() {
                match swarm.select_next_some().await {
                    SwarmEvent::NewListenAddr { listener_id, address } => {
                        pending.remove(&listener_id);
                        listen_addrs.push(address);
                    }
                    SwarmEvent::ListenerClosed { listener_id, reason, addresses }
                        if listeners.contains(&listener_id) =>
                    {
                        let addr = addresses.first().cloned().unwrap_or_else(Multiaddr::empty);
                        let reason = match reason {
                            Ok(()) => "closed".to_string(),
                            Err(e) => with_sources(&e),
                        };
                        return Err(StartError::Listen { addr, reason });
                    }
                    SwarmEvent::ListenerError { listener_id, error } if listeners.contains(&listener_id) => {
                        return Err(StartError::Listen {
                            addr: Multiaddr::empty(),
                            reason: with_sources(&error),
                        });
                    }
                    _ => {}
                }
            }
            Ok(())
        });
        match wait.await {
            Ok(r) => r?,
            Err(_) => return Err(StartError::ListenTimeout(LISTEN_TIMEOUT)),
        }
        for addr in &config.external_addresses {
            swarm.add_external_address(addr.clone());
        }
        if config.announce_listen_addrs {
            for addr in &listen_addrs {
                swarm.add_external_address(addr.clone());
            }
        }
        for relay in &config.relays {
            // The circuit address appears once the relay grants a reservation; not awaited here.
            let circuit = relay.clone().with(libp2p::multiaddr::Protocol::P2pCircuit);
            if let Err(e) = swarm.listen_on(circuit) {
                tracing::warn!(%relay, error = %e, "cannot listen through relay");
            }
        }
        for (peer, addr) in &config.bootstrap {
            swarm.behaviour_mut().kad.add_address(peer, addr.clone());
        }
        if !config.bootstrap.is_empty() {
            if let Err(e) = swarm.behaviour_mut().kad.bootstrap() {
                tracing::warn!(error = %e, "cannot start DHT bootstrap");
            }
        }

        let limits = Arc::new(config.limits.clone());
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (in_tx, in_rx) = mpsc::channel(config.inbound_queue.max(1));
        let mut control = swarm.behaviour().stream.new_control();
        let lane = match config.lane_port {
            Some(port) => {
                let ip = lane_ip(&config.listen);
                let host = LaneHost::bind(ip, port)
                    .await
                    .map_err(|e| StartError::Lane { addr: std::net::SocketAddr::new(ip, port), reason: e.to_string() })?;
                Some(Arc::new(host))
            }
            None => None,
        };
        let lane_port = lane.as_ref().map(|l| l.port());
        let ctx = Arc::new(BulkCtx {
            limits: limits.clone(),
            guard: PeerGuard::default(),
            inbound: in_tx.clone(),
            commands: cmd_tx.clone(),
            lane,
        });
        let store_in = control
            .accept(protocols::STORE)
            .map_err(|e| StartError::Transport { what: "store stream", reason: e.to_string() })?;
        let fetch_in = control
            .accept(protocols::FETCH)
            .map_err(|e| StartError::Transport { what: "fetch stream", reason: e.to_string() })?;
        tokio::spawn(bulk::accept_loop(store_in, true, ctx.clone()));
        tokio::spawn(bulk::accept_loop(fetch_in, false, ctx));
        let event_loop = EventLoop::new(swarm, cmd_rx, cmd_tx.clone(), in_tx, limits.clone(), listen_addrs);
        tokio::spawn(event_loop.run());
        tracing::info!(peer = %local_peer_id, "network node started");
        let lanes = OwnerLanes { client: LaneClient::default(), commands: cmd_tx.clone() };
        let inner =
            Inner { commands: cmd_tx, control, outbound: PeerGuard::default(), lanes, lane_port, local_peer_id, limits };
        Ok((Net { inner: Arc::new(inner) }, in_rx))
    }

    /// The TCP port of our lane (where peers send and fetch object bodies), if we have one.
    pub fn lane_port(&self) -> Option<u16> {
        self.inner.lane_port
    }

    /// Our PeerId.
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id
    }

    /// The limits this node enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Stops the event loop; pending operations fail with [`NetClosed`].
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Shutdown).await;
    }

    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetClosed> {
        let (tx, rx) = oneshot::channel();
        self.inner.commands.send(cmd(tx)).await.map_err(|_| NetClosed)?;
        rx.await.map_err(|_| NetClosed)
    }

    /// Addresses we listen on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetClosed> {
        self.ask(|tx| Command::ListenAddrs { tx }).await
    }

    /// Remembers an address of a peer (for dialing and the DHT).
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NetClosed> {
        self.inner.commands.send(Command::AddAddress { peer, addr }).await.map_err(|_| NetClosed)
    }

    /// Connects to a peer (no-op when connected), waiting for the connection.
    pub async fn dial(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<(), DialError> {
        let wait = self.ask(|tx| Command::Dial { peer, addrs, tx });
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(r) => r?,
            Err(_) => Err(DialError::Failed { peer, reason: "no connection within 30 s".into() }),
        }
    }

    /// Snapshot for `bunker peers`: connections, addresses, NAT status.
    pub async fn peers(&self) -> Result<PeersSummary, NetClosed> {
        self.ask(|tx| Command::Peers { tx }).await
    }

    async fn request<T>(
        &self,
        protocol: &'static str,
        peer: PeerId,
        timeout: Duration,
        make: impl FnOnce(oneshot::Sender<Result<T, RequestError>>) -> OutboundRequest,
    ) -> Result<T, RequestError> {
        let wait = self.ask(|tx| Command::Request(make(tx)));
        match tokio::time::timeout(timeout + GRACE, wait).await {
            Ok(r) => r?,
            Err(_) => Err(RequestError::Timeout { protocol, peer }),
        }
    }

    /// A request that changes nothing on the peer (a quote, an audit, a
    /// listing), tried once more when the connection it went out on closed
    /// before the answer: two boxes that dialled each other hold two
    /// connections until the swarm closes one, and a request caught on the
    /// closing one says nothing about the peer. An audit failed that way
    /// would count towards losing a good replica.
    async fn read_request<T>(
        &self,
        protocol: &'static str,
        peer: PeerId,
        timeout: Duration,
        make: impl Fn(oneshot::Sender<Result<T, RequestError>>) -> OutboundRequest,
    ) -> Result<T, RequestError> {
        match self.request(protocol, peer, timeout, &make).await {
            Err(RequestError::Closed { .. }) => {
                tracing::debug!(%peer, protocol, "connection closed under a request; trying once more");
                self.request(protocol, peer, timeout, make).await
            }
            r => r,
        }
    }

    /// `/bunker/offer/1`: asks a host for a quote.
    pub async fn offer(&self, peer: PeerId, request: OfferRequest) -> Result<Offer, RequestError> {
        let t = self.inner.limits.offer.timeout;
        self.read_request("/bunker/offer/1", peer, t, |tx| OutboundRequest::Offer(peer, request.clone(), tx)).await
    }

    /// `/bunker/contract/2`: proposes a contract.
    pub async fn contract(
        &self,
        peer: PeerId,
        proposal: ContractProposal,
    ) -> Result<ContractAnswer, RequestError> {
        let t = self.inner.limits.contract.timeout;
        self.request("/bunker/contract/2", peer, t, |tx| OutboundRequest::Contract(peer, proposal, tx)).await
    }

    /// `/bunker/audit/1`: challenges a host for one segment.
    pub async fn audit(
        &self,
        peer: PeerId,
        challenge: AuditChallenge,
    ) -> Result<AuditResponse, RequestError> {
        let t = self.inner.limits.audit.timeout;
        self.read_request("/bunker/audit/1", peer, t, |tx| OutboundRequest::Audit(peer, challenge.clone(), tx)).await
    }

    /// `/bunker/manifest/1`: stores or fetches our manifest snapshot.
    pub async fn manifest(
        &self,
        peer: PeerId,
        request: ManifestRequest,
    ) -> Result<ManifestResponse, RequestError> {
        let t = self.inner.limits.manifest.timeout;
        self.request("/bunker/manifest/1", peer, t, |tx| OutboundRequest::Manifest(peer, request, tx)).await
    }

    /// `/bunker/recover/1`: asks (or forwards to) a peer in a manifest search.
    pub async fn recover(
        &self,
        peer: PeerId,
        request: RecoverRequest,
    ) -> Result<RecoverResponse, RequestError> {
        let t = self.inner.limits.recover.timeout;
        self.request("/bunker/recover/1", peer, t, |tx| OutboundRequest::Recover(peer, request, tx)).await
    }

    /// `/bunker/release/1`: ends a contract.
    pub async fn release(
        &self,
        peer: PeerId,
        request: ReleaseRequest,
    ) -> Result<ReleaseResponse, RequestError> {
        let t = self.inner.limits.release.timeout;
        self.request("/bunker/release/1", peer, t, |tx| OutboundRequest::Release(peer, request, tx)).await
    }

    /// `/bunker/holdings/1`: asks a host for one page of the contracts it holds for us.
    pub async fn holdings(
        &self,
        peer: PeerId,
        request: HoldingsRequest,
    ) -> Result<HoldingsResponse, RequestError> {
        let t = self.inner.limits.holdings.timeout;
        self.read_request("/bunker/holdings/1", peer, t, |tx| OutboundRequest::Holdings(peer, request.clone(), tx))
            .await
    }

    /// `/bunker/store/2`: uploads exactly `header.total_len` bytes of `body` and waits for the
    /// host to confirm it kept them, returning its signed [`StoreReceipt`] (the caller checks
    /// root and signature). Memory use is one 256 KiB buffer whatever the size.
    pub async fn store<R: AsyncRead + Unpin>(
        &self,
        peer: PeerId,
        header: StoreHeader,
        body: R,
    ) -> Result<StoreReceipt, StreamError> {
        let inner = &self.inner;
        bulk::store(inner.control.clone(), &inner.outbound, &inner.lanes, &inner.limits, peer, header, body).await
    }

    /// `/bunker/fetch/2`: asks for a whole object; the body is read from the returned
    /// [`IncomingObject`]. Objects announced larger than `max_len` (the size the engine expects
    /// from its manifest) or than [`Limits::max_object_bytes`] are refused.
    pub async fn fetch(
        &self,
        peer: PeerId,
        request: FetchRequest,
        max_len: u64,
    ) -> Result<IncomingObject, StreamError> {
        let inner = &self.inner;
        bulk::fetch(inner.control.clone(), &inner.outbound, &inner.lanes, &inner.limits, peer, request, max_len).await
    }

    /// Announces in the DHT that we hold the record named by `key` (e.g. a manifest snapshot).
    pub async fn start_providing(&self, key: Id32) -> Result<(), ProviderError> {
        let wait = self.ask(|tx| Command::StartProviding { key, tx });
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(r) => r?,
            Err(_) => Err(ProviderError::Query { key: hex(&key), reason: "no result within 60 s".into() }),
        }
    }

    /// Looks up who provides `key` in the DHT.
    pub async fn get_providers(&self, key: Id32) -> Result<Vec<PeerId>, ProviderError> {
        let wait = self.ask(|tx| Command::GetProviders { key, tx });
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(r) => r?,
            Err(_) => Err(ProviderError::Query { key: hex(&key), reason: "no result within 60 s".into() }),
        }
    }

    /// Refreshes the DHT routing table through the known peers.
    pub async fn bootstrap(&self) -> Result<(), ProviderError> {
        let wait = self.ask(|tx| Command::Bootstrap { tx });
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(r) => r?,
            Err(_) => Err(ProviderError::Query {
                key: String::new(),
                reason: "bootstrap did not finish within 60 s".into(),
            }),
        }
    }
}

fn hex(k: &Id32) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

/// An error with its causes: libp2p's transport errors often print nothing
/// themselves and keep the reason (e.g. "Address already in use") in `source()`.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !part.is_empty() && !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}
