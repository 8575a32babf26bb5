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
    /// How long after a swap partner lost one of our copies its own copies
    /// here are kept before as many bytes of them are dropped (DESIGN §5):
    /// time for a partner that was only away to see its audits fail here
    /// and for its owner to notice.
    #[serde(default = "default_swap_grace")]
    pub swap_grace: Duration,
}

fn default_swap_grace() -> Duration {
    Duration::from_secs(7 * 86_400)
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
            swap_grace: default_swap_grace(),
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

/// How hard the engine may work the board it runs on: filled by the daemon
/// from bunker-disks' `DeviceProfile` (board, memory, cores), so a Pi Zero
/// 2 W with 512 MiB runs with small numbers and a Pi 5 with large ones.
/// The defaults are those of the engine before profiles (a 4 GiB board).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuning {
    /// Threads sealing (encrypting and hashing) copies of one upload.
    pub seal_threads: usize,
    /// Objects sent to hosts at once.
    pub upload_concurrency: usize,
    /// Audits and fetches answered for peers at once.
    pub serve_concurrency: usize,
    /// Buffer of each object stream (store, fetch, seal), in bytes.
    pub io_buffer_bytes: usize,
    /// MANIFEST.db's SQLite page cache, KiB (the daemon opens the manifest
    /// with it; kept here so the engine's settings show it).
    pub sqlite_cache_kib: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            seal_threads: 4,
            upload_concurrency: 4,
            serve_concurrency: 16,
            io_buffer_bytes: 256 << 10,
            sqlite_cache_kib: 64 << 10,
        }
    }
}

/// Everything the engine needs to know that is not a part handed to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The first data disk: where sealed objects live (local copies, hosted
    /// objects, staging) until the daemon adds its USB disks with
    /// `Node::set_disks`; it also keeps the manifest snapshots held for peers.
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
    /// Concurrency and buffers for this board (device profile).
    #[serde(default)]
    pub tuning: Tuning,
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
            tuning: Tuning::default(),
        }
    }
}
