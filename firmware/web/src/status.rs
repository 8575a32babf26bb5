//! What the daemon reports about itself to the admin page and the CLI.
//!
//! This is the skeleton's status: it grows with the engine (stored and
//! hosted bytes, peers, audits, balances) and moves to bunker-node when
//! the engine exists; the JSON field names are the API contract.

use serde::{Deserialize, Serialize};

/// A snapshot of the node's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// bunkerd's version.
    pub version: String,
    /// One word: `starting`, `running`, `stopping`.
    pub state: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The box's libp2p PeerId (public: every peer sees it), once known.
    pub peer_id: Option<String>,
}

/// Anything that can report the node's status on request.
pub trait StatusSource: Send + Sync + 'static {
    /// The status now.
    fn status(&self) -> NodeStatus;
}
