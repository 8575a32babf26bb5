//! bunker-net: how boxes find and talk to each other.
//!
//! A libp2p swarm (TCP + QUIC, noise, yamux; identify, ping, Kademlia under
//! `/bunker/kad/1.0.0`, mDNS, AutoNAT, relay client + DCUtR, UPnP, connection limits) carrying
//! the bunker protocols of DESIGN §4. This crate carries; the engine (bunker-node) decides.
//!
//! The swarm lives in a private task. The engine holds a [`Net`] handle to make requests and
//! drains a channel of [`InboundRequest`]s, each with the noise-authenticated [`PeerId`] of the
//! requester and a reply handle. Every message has a size cap and a timeout ([`Limits`]); a
//! peer that floods streams or requests, or keeps sending garbage, is cut off for a while.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bunker_net::{InboundRequest, Net, NetConfig, Keypair, Offer, OfferRequest};
//!
//! let (host, mut inbound) = Net::start(NetConfig::loopback(Keypair::generate_ed25519())).await?;
//! tokio::spawn(async move {
//!     while let Some(req) = inbound.recv().await {
//!         if let InboundRequest::Offer { reply, .. } = req {
//!             let quote = Offer {
//!                 free_bytes: 1 << 40,
//!                 price_msat_per_gib_day: 10,
//!                 retrieval_msat_per_gib: 1000,
//!                 swap_wanted_bytes: 0,
//!                 ln_node_id: vec![2; 33],
//!                 ln_node_id_signature: vec![],
//!             };
//!             let _ = reply.send(quote).await;
//!         }
//!     }
//! });
//! let (owner, _inbound) = Net::start(NetConfig::loopback(Keypair::generate_ed25519())).await?;
//! owner.dial(host.local_peer_id(), host.listen_addrs().await?).await?;
//! let quote = owner
//!     .offer(host.local_peer_id(), OfferRequest { bytes: 1 << 30, term_secs: 86400, swap_offered_bytes: 0 })
//!     .await?;
//! assert_eq!(quote.price_msat_per_gib_day, 10);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod behaviour;
mod bulk;
mod codec;
mod config;
mod error;
mod event_loop;
mod frame;
mod guard;
mod identity;
mod inbound;
mod lane;
mod limits;
mod messages;
mod net;
mod peers;
pub mod protocols;

pub use bulk::{InboundFetch, InboundStore, IncomingObject};
pub use config::{NetConfig, DEFAULT_PORT};
pub use error::{DialError, NetClosed, ProviderError, RequestError, StartError, StreamError};
pub use frame::FrameError;
pub use identity::{keypair_from_ed25519_secret, keypair_from_protobuf, KeyError};
pub use inbound::{InboundRequest, Reply};
pub use libp2p::{identity::Keypair, Multiaddr, PeerId};
pub use limits::{Limits, MessageLimits};
pub use messages::*;
pub use net::Net;
pub use peers::{NatStatus, PeerInfo, PeersSummary};
