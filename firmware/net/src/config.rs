//! How a node is set up: identity, addresses, what discovery runs, limits.

use std::time::Duration;

use libp2p::{identity::Keypair, Multiaddr, PeerId};

use crate::limits::Limits;

/// Default port of a box, TCP and QUIC alike.
pub const DEFAULT_PORT: u16 = 7411;

/// Everything [`crate::Net::start`] needs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The box's identity, derived from the seed by bunker-core: same seed, same PeerId.
    pub keypair: Keypair,
    /// Addresses to listen on (TCP and/or QUIC multiaddrs).
    pub listen: Vec<Multiaddr>,
    /// Known peers to join the DHT through.
    pub bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Find peers on the LAN by mDNS. Sends multicast on every interface: off in tests that
    /// must stay on loopback.
    pub mdns: bool,
    /// Ask the home router for a port mapping by UPnP. Sends SSDP multicast: off in tests.
    pub upnp: bool,
    /// Answer Kademlia queries even before AutoNAT confirmed a public address. A box on a LAN
    /// (or a test on loopback) is reachable by its neighbours without being public; a box
    /// behind NAT that claims server mode only fills others' routing tables with a dead entry,
    /// so the appliance default is automatic (server once an external address is confirmed).
    pub kad_server: bool,
    /// Relays to take a reservation on (full multiaddrs ending in `/p2p/<relay id>`), so that a
    /// box behind NAT is reachable through them and DCUtR can upgrade to a direct connection.
    pub relays: Vec<Multiaddr>,
    /// Addresses peers can reach us at, announced in identify and in DHT provider records
    /// (e.g. a port forwarded by hand). AutoNAT and UPnP add confirmed ones by themselves.
    pub external_addresses: Vec<Multiaddr>,
    /// Announce our listen addresses as external too: right on a LAN or loopback, where
    /// neighbours reach us directly, wrong behind NAT.
    pub announce_listen_addrs: bool,
    /// Most established connections overall.
    pub max_connections: u32,
    /// Most established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Most connections in the handshake phase, inbound.
    pub max_pending_incoming: u32,
    /// Close a connection that carried nothing for this long.
    pub idle_connection_timeout: Duration,
    /// Inbound requests queued for the engine; when full, new requests are refused as busy.
    pub inbound_queue: usize,
    /// Port of the lane (plain TCP for the sealed bodies of stores and fetches, see
    /// `lane.rs`), on the IP of the first TCP listen address; 0 picks a free port, which is
    /// fine because the port is told to each peer per transfer. `None`: no lane, bodies move on
    /// the noise stream (as they do anyway with a peer that cannot reach the lane).
    pub lane_port: Option<u16>,
    /// Size caps and timeouts per protocol.
    pub limits: Limits,
    /// Agent string announced by identify.
    pub agent: String,
}

impl NetConfig {
    /// What a box runs with: all interfaces on [`DEFAULT_PORT`], mDNS and UPnP on.
    pub fn new(keypair: Keypair) -> Self {
        let listen = vec![
            format!("/ip4/0.0.0.0/tcp/{DEFAULT_PORT}").parse().expect("static multiaddr"),
            format!("/ip4/0.0.0.0/udp/{DEFAULT_PORT}/quic-v1").parse().expect("static multiaddr"),
        ];
        Self {
            keypair,
            listen,
            bootstrap: Vec::new(),
            mdns: true,
            upnp: true,
            kad_server: false,
            relays: Vec::new(),
            external_addresses: Vec::new(),
            announce_listen_addrs: false,
            max_connections: 256,
            max_connections_per_peer: 2,
            max_pending_incoming: 64,
            idle_connection_timeout: Duration::from_secs(60),
            inbound_queue: 256,
            lane_port: Some(0),
            limits: Limits::default(),
            agent: format!("bunker/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// A node that only ever talks on 127.0.0.1 (tests, benches): random TCP and QUIC ports,
    /// no mDNS, no UPnP, so no packet leaves the loopback interface.
    pub fn loopback(keypair: Keypair) -> Self {
        Self {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".parse().expect("static multiaddr"),
                "/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("static multiaddr"),
            ],
            mdns: false,
            upnp: false,
            announce_listen_addrs: true,
            kad_server: true,
            ..Self::new(keypair)
        }
    }
}
