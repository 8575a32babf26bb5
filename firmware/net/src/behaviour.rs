//! The composed libp2p behaviour and the swarm built from a [`NetConfig`].

use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, identify, kad, mdns, noise, ping, relay,
    request_response as rr,
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    tcp, upnp, yamux, Swarm, SwarmBuilder,
};

use crate::{
    codec::FrameCodec, config::NetConfig, error::StartError, limits::MessageLimits, messages::*, protocols,
};

pub(crate) type Rr<Req, Resp> = rr::Behaviour<FrameCodec<Req, Resp>>;

/// Every behaviour a box runs. Order matters only for the connection-denial ones, which come
/// first so a blocked or over-limit peer is refused before anything else sees it.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) conn_limits: connection_limits::Behaviour,
    pub(crate) relay: relay::client::Behaviour,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) upnp: Toggle<upnp::tokio::Behaviour>,
    pub(crate) stream: libp2p_stream::Behaviour,
    pub(crate) offer: Rr<OfferRequest, Offer>,
    pub(crate) contract: Rr<ContractProposal, ContractAnswer>,
    pub(crate) audit: Rr<AuditChallenge, AuditResponse>,
    pub(crate) manifest: Rr<ManifestRequest, ManifestResponse>,
    pub(crate) recover: Rr<RecoverRequest, RecoverResponse>,
    pub(crate) release: Rr<ReleaseRequest, ReleaseResponse>,
    pub(crate) holdings: Rr<HoldingsRequest, HoldingsResponse>,
}

fn rr_behaviour<Req, Resp>(protocol: libp2p::StreamProtocol, limits: MessageLimits) -> Rr<Req, Resp>
where
    Req: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let cfg = rr::Config::default()
        .with_request_timeout(limits.timeout)
        .with_max_concurrent_streams(limits.max_concurrent);
    rr::Behaviour::with_codec(FrameCodec::new(limits), [(protocol, rr::ProtocolSupport::Full)], cfg)
}

fn transport_err(what: &'static str) -> impl Fn(String) -> StartError {
    move |reason| StartError::Transport { what, reason }
}

/// The yamux settings of both TCP and relayed connections: more streams than the default so
/// that a hostile peer's flood is seen (and punished) by our accounting, not silently capped.
fn yamux_config() -> yamux::Config {
    let mut cfg = yamux::Config::default();
    cfg.set_max_num_streams(1024);
    cfg
}

pub(crate) fn build_swarm(config: &NetConfig) -> Result<Swarm<Behaviour>, StartError> {
    let limits = config.limits.clone();
    let mdns_on = config.mdns;
    let upnp_on = config.upnp;
    let agent = config.agent.clone();
    let conn = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        .with_max_pending_incoming(Some(config.max_pending_incoming));
    let swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux_config)
        .map_err(|e| transport_err("tcp")(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux_config)
        .map_err(|e| transport_err("relay")(e.to_string()))?
        .with_behaviour(|key, relay| {
            let peer_id = key.public().to_peer_id();
            let mut kad_cfg = kad::Config::new(protocols::KAD);
            kad_cfg.set_query_timeout(std::time::Duration::from_secs(30));
            let kad = kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_cfg);
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?)
            } else {
                None
            };
            let upnp = upnp_on.then(upnp::tokio::Behaviour::default);
            Ok(Behaviour {
                blocked: Default::default(),
                conn_limits: connection_limits::Behaviour::new(conn),
                relay,
                dcutr: dcutr::Behaviour::new(peer_id),
                identify: identify::Behaviour::new(
                    identify::Config::new(protocols::IDENTIFY_VERSION.to_string(), key.public())
                        .with_agent_version(agent),
                ),
                ping: ping::Behaviour::default(),
                kad,
                mdns: mdns.into(),
                autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
                upnp: upnp.into(),
                stream: libp2p_stream::Behaviour::new(),
                offer: rr_behaviour(protocols::OFFER, limits.offer),
                contract: rr_behaviour(protocols::CONTRACT, limits.contract),
                audit: rr_behaviour(protocols::AUDIT, limits.audit),
                manifest: rr_behaviour(protocols::MANIFEST, limits.manifest),
                recover: rr_behaviour(protocols::RECOVER, limits.recover),
                release: rr_behaviour(protocols::RELEASE, limits.release),
                holdings: rr_behaviour(protocols::HOLDINGS, limits.holdings),
            })
        })
        .map_err(|e| transport_err("behaviour")(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok(swarm)
}
