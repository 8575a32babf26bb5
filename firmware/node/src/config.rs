//! The engine's settings. bunkerd fills them from its config file; tests
//! shorten the intervals to seconds.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How one file is kept: copies on peers, and whether the box keeps its own
/// (sealed) copy too. Without a local copy at least 2 peer copies are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Replicas on distinct peers.
    pub copies: u8,
    /// Keep a sealed copy on the box's own disks.
    pub keep_local: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { copies: 2, keep_local: true }
    }
}

/// What this box asks of owners who store on it (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostingTerms {
    /// Our asking price, msat per GiB per day.
    pub price_msat_per_gib_day: u64,
    /// Our price to hand back a whole object (full checks and recoveries), msat per GiB.
    pub retrieval_msat_per_gib: u64,
    /// Paid requests below this price per GiB-day are refused.
    pub price_floor_msat_per_gib_day: u64,
    /// Free space kept beyond the owner's own files, never offered.
    pub safety_margin_bytes: u64,
    /// Upper bound on what is offered to peers in total (None: all free space).
    pub max_hosted_bytes: Option<u64>,
    /// Whether swap contracts (storage for storage, no payment) are accepted.
    pub accept_swaps: bool,
}

impl Default for HostingTerms {
    fn default() -> Self {
        HostingTerms {
            price_msat_per_gib_day: 10_000,
            retrieval_msat_per_gib: 100_000,
            price_floor_msat_per_gib_day: 1_000,
            safety_margin_bytes: 2 << 30,
            max_hosted_bytes: None,
            accept_swaps: true,
        }
    }
}

/// What this box is willing to pay when it places replicas on peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementTerms {
    /// Offers dearer than this (msat per GiB-day) are not taken.
    pub max_price_msat_per_gib_day: u64,
    /// Offers whose retrieval price is above this (msat per GiB) are not taken.
    pub max_retrieval_msat_per_gib: u64,
    /// Contract term.
    pub term: Duration,
    /// Offer hosts a swap (we keep as many bytes for them, nobody pays)
    /// before paying; a host that declines the swap is paid as usual.
    /// Off by default: a swap binds this box's own disk space.
    #[serde(default)]
    pub propose_swaps: bool,
}

impl Default for PlacementTerms {
    fn default() -> Self {
        PlacementTerms {
            max_price_msat_per_gib_day: 100_000,
            max_retrieval_msat_per_gib: 1_000_000,
            term: Duration::from_secs(365 * 86_400),
            propose_swaps: false,
        }
    }
}

/// Everything the engine needs to know that is not a part handed to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Where sealed objects live (local copies, hosted objects, staging):
    /// a directory on a data disk.
    pub store_root: PathBuf,
    /// Mean time between two segment audits of one replica (randomised ±50%).
    pub audit_interval: Duration,
    /// Mean time between two full checks of one replica (randomised ±50%).
    pub full_check_interval: Duration,
    /// Consecutive failed audits after which a replica is lost and replaced.
    pub repair_after_failures: u32,
    /// How often what is owed is looked at and settled past the threshold.
    pub settle_interval: Duration,
    /// Plaintext bytes per segment for new files.
    pub segment_size: u32,
    /// What we ask as a host.
    pub hosting: HostingTerms,
    /// What we pay as an owner.
    pub placement: PlacementTerms,
    /// How MANIFEST.db is replicated to peers (DESIGN §7).
    pub replication: crate::replication::ReplicationConfig,
}

impl NodeConfig {
    /// Production defaults (DESIGN §5) with objects under `store_root`.
    pub fn new(store_root: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            store_root: store_root.into(),
            audit_interval: Duration::from_secs(3600),
            full_check_interval: Duration::from_secs(30 * 86_400),
            repair_after_failures: 3,
            settle_interval: Duration::from_secs(600),
            segment_size: bunker_core::DEFAULT_SEGMENT_SIZE,
            hosting: HostingTerms::default(),
            placement: PlacementTerms::default(),
            replication: crate::replication::ReplicationConfig::default(),
        }
    }
}
