//! The `bunker peers` view: a plain serializable snapshot of who we are connected to.

use serde::{Deserialize, Serialize};

/// What AutoNAT concluded about our reachability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum NatStatus {
    /// Peers could dial us back at this address.
    Public {
        /// The confirmed address.
        address: String,
    },
    /// Peers could not dial us back: we are behind NAT (relay + DCUtR are used).
    Private,
    /// Not enough probes yet.
    Unknown,
}

/// One connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its PeerId (base58).
    pub peer_id: String,
    /// Remote addresses of our open connections to it.
    pub addresses: Vec<String>,
    /// Agent string from identify, when known.
    pub agent: Option<String>,
}

/// Snapshot for `bunker peers` and the admin page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersSummary {
    /// Our PeerId.
    pub local_peer_id: String,
    /// Addresses we listen on.
    pub listen_addresses: Vec<String>,
    /// Addresses confirmed as reachable from outside.
    pub external_addresses: Vec<String>,
    /// AutoNAT's verdict.
    pub nat: NatStatus,
    /// Connected peers, sorted by PeerId.
    pub connected: Vec<PeerInfo>,
    /// Peers currently cut off for abuse.
    pub blocked: Vec<String>,
}
