//! Error enums, one per kind of operation, so the engine can match on what can go wrong there.

use libp2p::{Multiaddr, PeerId};

use crate::frame::FrameError;

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A transport (TCP, QUIC, relay) could not be set up.
    #[error("cannot set up the {what} transport: {reason}")]
    Transport {
        /// Which transport or behaviour.
        what: &'static str,
        /// The underlying error, as text (libp2p's error types stay inside this crate).
        reason: String,
    },
    /// Listening on a configured address failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The listeners did not report their addresses in time.
    #[error("listeners did not come up within {0:?}")]
    ListenTimeout(std::time::Duration),
    /// The lane (plain TCP for object bodies) could not listen.
    #[error("cannot listen for the lane on {addr}: {reason}")]
    Lane {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
}

/// The node's event loop has stopped (shut down or crashed); no operation can proceed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the network node has shut down")]
pub struct NetClosed;

/// A request-response exchange (offer, contract, audit, manifest, recover, release) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No connection to the peer could be made.
    #[error("{protocol} to {peer}: cannot reach the peer")]
    Unreachable {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
    },
    /// The peer did not answer within the protocol's timeout.
    #[error("{protocol} to {peer}: no answer within the timeout")]
    Timeout {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
    },
    /// The connection closed before the answer came (the peer may have refused the request
    /// because it was too large, undecodable, or it was busy).
    #[error("{protocol} to {peer}: connection closed or request refused before an answer")]
    Closed {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
    },
    /// The peer does not speak this protocol (version).
    #[error("{protocol} to {peer}: the peer does not support this protocol")]
    Unsupported {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
    },
    /// The exchange failed on the stream: includes our own refusal to send or accept a message
    /// above the protocol's cap, and an undecodable answer.
    #[error("{protocol} with {peer}: {reason}")]
    Stream {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// The node shut down.
    #[error(transparent)]
    NetClosed(#[from] NetClosed),
}

/// A bulk transfer (`/bunker/store/2`, `/bunker/fetch/2`) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream could not be opened.
    #[error("{protocol} with {peer}: cannot open a stream: {reason}")]
    Open {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A header frame was bad, oversize or did not arrive.
    #[error("{protocol} with {peer}: {source}")]
    Frame {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// The frame error.
        source: FrameError,
    },
    /// The announced object is larger than allowed.
    #[error("{protocol} with {peer}: object of {len} bytes exceeds the limit of {cap} bytes")]
    TooLarge {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// Announced length.
        len: u64,
        /// Limit.
        cap: u64,
    },
    /// The peer refused the transfer.
    #[error("{protocol} with {peer}: refused: {reason}")]
    Refused {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// The peer's reason.
        reason: String,
    },
    /// The host does not have the requested object.
    #[error("{protocol} with {peer}: object not found")]
    NotFound {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
    },
    /// The body source supplied fewer bytes than announced.
    #[error("{protocol} with {peer}: body ended after {got} of {expected} bytes")]
    ShortBody {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// Bytes moved.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// No byte moved for the idle timeout, or a header did not arrive in time.
    #[error("{protocol} with {peer}: stalled for {secs:.1} s")]
    Stalled {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// How long nothing moved.
        secs: f64,
    },
    /// Our own transfers with this peer kept every slot busy for the whole wait.
    #[error("{protocol} with {peer}: {running} transfers with this peer still running after {secs:.0} s")]
    Busy {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// Transfers already running.
        running: usize,
        /// How long we waited.
        secs: f64,
    },
    /// Reading the local body source or writing the stream failed.
    #[error("{protocol} with {peer}: {source}")]
    Io {
        /// Protocol.
        protocol: &'static str,
        /// Peer.
        peer: PeerId,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// A Kademlia provider operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The local record store refused the record.
    #[error("cannot store provider record for key {key}: {reason}")]
    Store {
        /// Key, hex.
        key: String,
        /// Why.
        reason: String,
    },
    /// The DHT query failed (no known peers, timeout).
    #[error("provider query for key {key} failed: {reason}")]
    Query {
        /// Key, hex.
        key: String,
        /// Why.
        reason: String,
    },
    /// The node shut down.
    #[error(transparent)]
    Closed(#[from] NetClosed),
}

/// Dialing a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// libp2p refused or failed the dial.
    #[error("cannot dial {peer}: {reason}")]
    Failed {
        /// Peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The node shut down.
    #[error(transparent)]
    Closed(#[from] NetClosed),
}
