//! A box behind NAT is reachable through a relay (relay client in bunker-net, a plain libp2p
//! relay server here), all on 127.0.0.1.

mod common;

use std::time::Duration;

use bunker_net::*;
use common::*;
use futures::StreamExt;
use libp2p::{
    identify, multiaddr::Protocol, noise, relay, swarm::NetworkBehaviour, tcp, yamux, SwarmBuilder,
};

#[derive(NetworkBehaviour)]
struct RelayServer {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
}

/// Starts a relay server; returns its full address (`…/p2p/<id>`).
async fn relay_server() -> Multiaddr {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key| RelayServer {
            relay: relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default()),
            identify: identify::Behaviour::new(identify::Config::new("/bunker/id/1".into(), key.public())),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let id = *swarm.local_peer_id();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let addr = loop {
        if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    // A relay only hands out reservations with an address to reach it by.
    swarm.add_external_address(addr.clone());
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    addr.with(Protocol::P2p(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_is_reachable_through_a_relay() {
    let relay_addr = relay_server().await;
    let mut cfg = NetConfig::loopback(Keypair::generate_ed25519());
    cfg.relays = vec![relay_addr.clone()];
    let hidden = start(cfg).await;
    let circuit = relay_addr.with(Protocol::P2pCircuit);
    // The circuit listen address appears once the relay accepted the reservation.
    let reserved = eventually(20, || async {
        hidden.net.listen_addrs().await.unwrap().iter().any(|a| a.to_string().contains("p2p-circuit"))
    })
    .await;
    assert!(reserved, "no relay reservation: {:?}", hidden.net.listen_addrs().await);
    let owner = node().await;
    owner.net.dial(hidden.id, vec![circuit]).await.unwrap();
    let offer = owner
        .net
        .offer(hidden.id, OfferRequest { bytes: 1, term_secs: 1, swap_offered_bytes: 0 })
        .await
        .unwrap();
    assert_eq!(offer, offer_of(&hidden.id));
    // The owner was given only the circuit address: its connection went through the relay.
    let peers = owner.net.peers().await.unwrap();
    let via = peers.connected.iter().find(|p| p.peer_id == hidden.id.to_string()).expect("connected");
    assert!(via.addresses.iter().any(|a| a.contains("p2p-circuit")), "{via:?}");
}
