//! The private task that alone owns the swarm. Everything else talks to it through
//! [`Command`]s; it answers through oneshot channels and hands inbound requests to the engine.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    autonat, identify, kad, mdns,
    request_response::{self as rr, InboundRequestId, OutboundRequestId, ResponseChannel},
    swarm::{dial_opts::DialOpts, ConnectionId, SwarmEvent},
    Multiaddr, PeerId, Swarm,
};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    behaviour::{Behaviour, BehaviourEvent},
    error::{DialError, ProviderError, RequestError},
    inbound::{InboundRequest, Reply},
    limits::Limits,
    messages::*,
    peers::{NatStatus, PeerInfo, PeersSummary},
    protocols,
};

/// Ways a peer can misbehave that the event loop punishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misbehaviour {
    /// Opened more concurrent bulk streams than allowed: cut off at once.
    TooManyStreams,
    /// Sent an oversize or undecodable message: a strike.
    BadMessage,
    /// Opened a stream and sent nothing: a strike.
    Stalled,
}

type Tx<T> = oneshot::Sender<T>;

macro_rules! protocols_table {
    ($( $variant:ident, $field:ident, $tag:expr, $req:ty, $resp:ty; )*) => {
        /// An outbound request-response request, with where its answer goes.
        pub(crate) enum OutboundRequest {
            $( $variant(PeerId, $req, Tx<Result<$resp, RequestError>>), )*
        }

        /// An engine's answer to an inbound request.
        pub(crate) enum Response {
            $( $variant(ResponseChannel<$resp>, $resp), )*
        }

        #[derive(Default)]
        struct PendingOutbound {
            $( $field: HashMap<OutboundRequestId, Tx<Result<$resp, RequestError>>>, )*
        }

        impl EventLoop {
            fn send_request(&mut self, req: OutboundRequest) {
                match req {
                    $( OutboundRequest::$variant(peer, r, tx) => {
                        let id = self.swarm.behaviour_mut().$field.send_request(&peer, r);
                        self.pending.$field.insert(id, tx);
                    } )*
                }
            }

            fn send_response(&mut self, resp: Response) {
                match resp {
                    $( Response::$variant(ch, r) => {
                        if self.swarm.behaviour_mut().$field.send_response(ch, r).is_err() {
                            tracing::debug!(protocol = stringify!($field), "peer gone before our answer");
                        }
                    } )*
                }
            }
        }
    };
}

protocols_table! {
    Offer, offer, 0u8, OfferRequest, Offer;
    Contract, contract, 1u8, ContractProposal, ContractAnswer;
    Audit, audit, 2u8, AuditChallenge, AuditResponse;
    Manifest, manifest, 3u8, ManifestRequest, ManifestResponse;
    Recover, recover, 4u8, RecoverRequest, RecoverResponse;
    Release, release, 5u8, ReleaseRequest, ReleaseResponse;
    Holdings, holdings, 6u8, HoldingsRequest, HoldingsResponse;
}

/// Messages to the event loop.
pub(crate) enum Command {
    Request(OutboundRequest),
    Respond(Response),
    AddAddress { peer: PeerId, addr: Multiaddr },
    Dial { peer: PeerId, addrs: Vec<Multiaddr>, tx: Tx<Result<(), DialError>> },
    StartProviding { key: Id32, tx: Tx<Result<(), ProviderError>> },
    GetProviders { key: Id32, tx: Tx<Result<Vec<PeerId>, ProviderError>> },
    Bootstrap { tx: Tx<Result<(), ProviderError>> },
    Peers { tx: Tx<PeersSummary> },
    ListenAddrs { tx: Tx<Vec<Multiaddr>> },
    /// The IP a direct connection to `peer` goes to (`None`: not connected, or relayed only).
    PeerIp { peer: PeerId, tx: Tx<Option<std::net::IpAddr>> },
    Misbehaved { peer: PeerId, what: Misbehaviour },
    Shutdown,
}

enum KadQuery {
    Provide { key: Id32, tx: Tx<Result<(), ProviderError>> },
    Providers { key: Id32, found: HashSet<PeerId>, tx: Tx<Result<Vec<PeerId>, ProviderError>> },
    Bootstrap { tx: Tx<Result<(), ProviderError>> },
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    command_tx: mpsc::Sender<Command>,
    inbound: mpsc::Sender<InboundRequest>,
    limits: Arc<Limits>,
    pending: PendingOutbound,
    /// Inbound requests handed to the engine and not yet answered, by (protocol tag, id).
    inbound_ids: HashMap<(u8, InboundRequestId), PeerId>,
    pending_in: HashMap<PeerId, usize>,
    strikes: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    connections: HashMap<PeerId, Vec<(ConnectionId, Multiaddr)>>,
    agents: HashMap<PeerId, String>,
    dials: HashMap<PeerId, Vec<Tx<Result<(), DialError>>>>,
    kad_queries: HashMap<kad::QueryId, KadQuery>,
    listen_addrs: Vec<Multiaddr>,
}

/// The IP of a direct connection's remote address; `None` for a relayed one (its address names
/// the relay, not the peer).
fn direct_ip(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    use libp2p::multiaddr::Protocol;
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return None;
    }
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    })
}

fn hex32(k: &Id32) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

/// The full protocol name (with its version) of a behaviour field, for error messages.
fn protocol_name(field: &'static str) -> &'static str {
    match field {
        "offer" => "/bunker/offer/1",
        "contract" => "/bunker/contract/2",
        "audit" => "/bunker/audit/1",
        "manifest" => "/bunker/manifest/1",
        "recover" => "/bunker/recover/1",
        "release" => "/bunker/release/1",
        "holdings" => "/bunker/holdings/1",
        other => other,
    }
}

fn outbound_error(protocol: &'static str, peer: PeerId, e: rr::OutboundFailure) -> RequestError {
    match e {
        rr::OutboundFailure::DialFailure => RequestError::Unreachable { protocol, peer },
        rr::OutboundFailure::Timeout => RequestError::Timeout { protocol, peer },
        rr::OutboundFailure::ConnectionClosed => RequestError::Closed { protocol, peer },
        rr::OutboundFailure::UnsupportedProtocols => RequestError::Unsupported { protocol, peer },
        rr::OutboundFailure::Io(e) => RequestError::Stream { protocol, peer, reason: e.to_string() },
    }
}

/// Handles one request-response event of one protocol; a macro because each protocol has its
/// own types, behaviour field and pending map.
macro_rules! on_rr {
    ($self:ident, $ev:expr, $field:ident, $tag:expr, $variant:ident, $inner:ident) => {
        match $ev {
            rr::Event::Message { peer, message: rr::Message::Request { request_id, request, channel }, .. } => {
                if $self.admit_inbound(peer, $tag, request_id) {
                    let reply = Reply::new(channel, $self.command_tx.clone(), |c, r| {
                        Command::Respond(Response::$variant(c, r))
                    });
                    $self.deliver(InboundRequest::$variant { peer, $inner: request, reply }, ($tag, request_id));
                }
            }
            rr::Event::Message { message: rr::Message::Response { request_id, response }, .. } => {
                if let Some(tx) = $self.pending.$field.remove(&request_id) {
                    let _ = tx.send(Ok(response));
                }
            }
            rr::Event::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(%peer, protocol = stringify!($field), %error, "outbound request failed");
                if let Some(tx) = $self.pending.$field.remove(&request_id) {
                    let _ = tx.send(Err(outbound_error(protocol_name(stringify!($field)), peer, error)));
                }
            }
            rr::Event::InboundFailure { peer, request_id, error, .. } => {
                $self.inbound_done($tag, request_id);
                $self.inbound_failed(peer, stringify!($field), error);
            }
            rr::Event::ResponseSent { request_id, .. } => $self.inbound_done($tag, request_id),
        }
    };
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        command_tx: mpsc::Sender<Command>,
        inbound: mpsc::Sender<InboundRequest>,
        limits: Arc<Limits>,
        listen_addrs: Vec<Multiaddr>,
    ) -> Self {
        Self {
            swarm,
            commands,
            command_tx,
            inbound,
            limits,
            pending: PendingOutbound::default(),
            inbound_ids: HashMap::new(),
            pending_in: HashMap::new(),
            strikes: HashMap::new(),
            banned: HashMap::new(),
            connections: HashMap::new(),
            agents: HashMap::new(),
            dials: HashMap::new(),
            kad_queries: HashMap::new(),
            listen_addrs,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.on_command(cmd),
                },
                _ = tick.tick() => self.unban_expired(),
            }
        }
        tracing::debug!(peer = %self.swarm.local_peer_id(), "network event loop stopped");
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Request(r) => self.send_request(r),
            Command::Respond(r) => self.send_response(r),
            Command::AddAddress { peer, addr } => {
                self.swarm.add_peer_address(peer, addr.clone());
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
            }
            Command::Dial { peer, addrs, tx } => {
                if self.swarm.is_connected(&peer) {
                    let _ = tx.send(Ok(()));
                    return;
                }
                for a in &addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer, a.clone());
                }
                match self.swarm.dial(DialOpts::peer_id(peer).addresses(addrs).build()) {
                    Ok(()) => self.dials.entry(peer).or_default().push(tx),
                    Err(e) => {
                        let _ = tx.send(Err(DialError::Failed { peer, reason: e.to_string() }));
                    }
                }
            }
            Command::StartProviding { key, tx } => {
                match self.swarm.behaviour_mut().kad.start_providing(kad::RecordKey::new(&key)) {
                    Ok(id) => {
                        self.kad_queries.insert(id, KadQuery::Provide { key, tx });
                    }
                    Err(e) => {
                        let _ =
                            tx.send(Err(ProviderError::Store { key: hex32(&key), reason: e.to_string() }));
                    }
                }
            }
            Command::GetProviders { key, tx } => {
                let id = self.swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(&key));
                self.kad_queries.insert(id, KadQuery::Providers { key, found: HashSet::new(), tx });
            }
            Command::Bootstrap { tx } => match self.swarm.behaviour_mut().kad.bootstrap() {
                Ok(id) => {
                    self.kad_queries.insert(id, KadQuery::Bootstrap { tx });
                }
                Err(e) => {
                    let _ = tx.send(Err(ProviderError::Query { key: String::new(), reason: e.to_string() }));
                }
            },
            Command::Peers { tx } => {
                let _ = tx.send(self.summary());
            }
            Command::ListenAddrs { tx } => {
                let _ = tx.send(self.listen_addrs.clone());
            }
            Command::PeerIp { peer, tx } => {
                let ip = self.connections.get(&peer).and_then(|conns| conns.iter().find_map(|(_, a)| direct_ip(a)));
                let _ = tx.send(ip);
            }
            Command::Misbehaved { peer, what } => match what {
                Misbehaviour::TooManyStreams => self.cut_off(peer, "opened too many concurrent streams"),
                Misbehaviour::BadMessage | Misbehaviour::Stalled => self.strike(peer, what),
            },
            Command::Shutdown => {}
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => self.listen_addrs.retain(|a| a != &address),
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                self.connections
                    .entry(peer_id)
                    .or_default()
                    .push((connection_id, endpoint.get_remote_address().clone()));
                for tx in self.dials.remove(&peer_id).unwrap_or_default() {
                    let _ = tx.send(Ok(()));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, .. } => {
                if let Some(conns) = self.connections.get_mut(&peer_id) {
                    conns.retain(|(id, _)| *id != connection_id);
                    if conns.is_empty() {
                        self.connections.remove(&peer_id);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                if self.swarm.is_connected(&peer) {
                    return;
                }
                for tx in self.dials.remove(&peer).unwrap_or_default() {
                    let _ = tx.send(Err(DialError::Failed { peer, reason: error.to_string() }));
                }
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Offer(ev) => on_rr!(self, ev, offer, 0u8, Offer, request),
            BehaviourEvent::Contract(ev) => on_rr!(self, ev, contract, 1u8, Contract, proposal),
            BehaviourEvent::Audit(ev) => on_rr!(self, ev, audit, 2u8, Audit, challenge),
            BehaviourEvent::Manifest(ev) => on_rr!(self, ev, manifest, 3u8, Manifest, request),
            BehaviourEvent::Recover(ev) => on_rr!(self, ev, recover, 4u8, Recover, request),
            BehaviourEvent::Release(ev) => on_rr!(self, ev, release, 5u8, Release, request),
            BehaviourEvent::Holdings(ev) => on_rr!(self, ev, holdings, 6u8, Holdings, request),
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, step, .. }) => {
                self.on_kad(id, result, step.last)
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.agents.insert(peer_id, info.agent_version.clone());
                if info.protocols.contains(&protocols::KAD) {
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                let mut by_peer: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
                for (peer, addr) in list {
                    by_peer.entry(peer).or_default().push(addr);
                }
                for (peer, addrs) in by_peer {
                    tracing::info!(%peer, ?addrs, "found on the LAN by mDNS");
                    for a in &addrs {
                        self.swarm.add_peer_address(peer, a.clone());
                        self.swarm.behaviour_mut().kad.add_address(&peer, a.clone());
                    }
                    if !self.swarm.is_connected(&peer) && !self.banned.contains_key(&peer) {
                        if let Err(e) = self.swarm.dial(DialOpts::peer_id(peer).addresses(addrs).build()) {
                            tracing::debug!(%peer, error = %e, "cannot dial mDNS peer");
                        }
                    }
                }
            }
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { old, new }) => {
                tracing::info!(?old, ?new, "NAT status changed");
            }
            _ => {}
        }
    }

    fn on_kad(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        match result {
            kad::QueryResult::StartProviding(r) => {
                if let Some(KadQuery::Provide { key, tx }) = self.kad_queries.remove(&id) {
                    let r = r
                        .map(|_| ())
                        .map_err(|e| ProviderError::Query { key: hex32(&key), reason: e.to_string() });
                    let _ = tx.send(r);
                }
            }
            kad::QueryResult::GetProviders(r) => {
                let Some(KadQuery::Providers { found, .. }) = self.kad_queries.get_mut(&id) else {
                    return;
                };
                let mut error = None;
                match r {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => found.extend(providers),
                    Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => {}
                    Err(e) => error = Some(e.to_string()),
                }
                if last || error.is_some() {
                    if let Some(KadQuery::Providers { key, found, tx }) = self.kad_queries.remove(&id) {
                        let r = match error {
                            Some(reason) if found.is_empty() => {
                                Err(ProviderError::Query { key: hex32(&key), reason })
                            }
                            _ => Ok(found.into_iter().collect()),
                        };
                        let _ = tx.send(r);
                    }
                }
            }
            kad::QueryResult::Bootstrap(r) => {
                let done = last || r.is_err();
                if done {
                    if let Some(KadQuery::Bootstrap { tx }) = self.kad_queries.remove(&id) {
                        let r = r
                            .map(|_| ())
                            .map_err(|e| ProviderError::Query { key: String::new(), reason: e.to_string() });
                        let _ = tx.send(r);
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts a request the engine must answer; a peer with too many unanswered ones is cut off.
    fn admit_inbound(&mut self, peer: PeerId, tag: u8, id: InboundRequestId) -> bool {
        let n = self.pending_in.entry(peer).or_insert(0);
        if *n >= self.limits.max_pending_requests_per_peer {
            self.cut_off(peer, "too many unanswered requests");
            return false;
        }
        *n += 1;
        self.inbound_ids.insert((tag, id), peer);
        true
    }

    fn deliver(&mut self, req: InboundRequest, key: (u8, InboundRequestId)) {
        let peer = req.peer();
        if let Err(e) = self.inbound.try_send(req) {
            // Dropping the request drops its response channel: the peer gets a prompt failure.
            tracing::warn!(%peer, "engine not keeping up with inbound requests, refusing one: {e}");
            self.inbound_done(key.0, key.1);
        }
    }

    fn inbound_done(&mut self, tag: u8, id: InboundRequestId) {
        if let Some(peer) = self.inbound_ids.remove(&(tag, id)) {
            if let Some(n) = self.pending_in.get_mut(&peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.pending_in.remove(&peer);
                }
            }
        }
    }

    fn inbound_failed(&mut self, peer: PeerId, protocol: &'static str, error: rr::InboundFailure) {
        match &error {
            rr::InboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::warn!(%peer, protocol, error = %e, "rejected bad message");
                self.strike(peer, Misbehaviour::BadMessage);
            }
            _ => tracing::debug!(%peer, protocol, %error, "inbound request failed"),
        }
    }

    fn strike(&mut self, peer: PeerId, what: Misbehaviour) {
        let n = self.strikes.entry(peer).or_insert(0);
        *n += 1;
        tracing::debug!(%peer, ?what, strikes = *n, "strike");
        if *n >= self.limits.max_bad_messages_per_peer {
            self.cut_off(peer, "too many bad or stalled messages");
        }
    }

    fn cut_off(&mut self, peer: PeerId, why: &'static str) {
        if self.banned.contains_key(&peer) {
            return;
        }
        tracing::warn!(%peer, why, ban = ?self.limits.ban_duration, "cutting off peer");
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        self.banned.insert(peer, Instant::now() + self.limits.ban_duration);
        self.strikes.remove(&peer);
    }

    fn unban_expired(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self.banned.iter().filter(|(_, t)| **t <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            self.banned.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            tracing::info!(%peer, "ban expired");
        }
    }

    fn summary(&self) -> PeersSummary {
        let nat = match self.swarm.behaviour().autonat.nat_status() {
            autonat::NatStatus::Public(a) => NatStatus::Public { address: a.to_string() },
            autonat::NatStatus::Private => NatStatus::Private,
            autonat::NatStatus::Unknown => NatStatus::Unknown,
        };
        let mut connected: Vec<PeerInfo> = self
            .connections
            .iter()
            .map(|(p, conns)| PeerInfo {
                peer_id: p.to_string(),
                addresses: conns.iter().map(|(_, a)| a.to_string()).collect(),
                agent: self.agents.get(p).cloned(),
            })
            .collect();
        connected.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        let mut blocked: Vec<String> = self.banned.keys().map(|p| p.to_string()).collect();
        blocked.sort();
        PeersSummary {
            local_peer_id: self.swarm.local_peer_id().to_string(),
            listen_addresses: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            external_addresses: self.swarm.external_addresses().map(|a| a.to_string()).collect(),
            nat,
            connected,
            blocked,
        }
    }
}
