//! What the owner is shown: plain serde types for the admin page and the
//! CLI, so neither needs to know the manifest's or libp2p's types. Times are
//! Unix seconds; ids are hex; PeerIds are their base58 text.

use serde::{Deserialize, Serialize};

use crate::config::Policy;

/// One entry of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileView {
    /// Full path in the box's tree, e.g. `/photos/cat.jpg`.
    pub path: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Last change.
    pub modified_at: i64,
    /// Copies wanted on peers and whether a local copy is kept.
    pub policy: Policy,
    /// Whether a local copy exists now.
    pub has_local: bool,
    /// Replicas that are active (placed and not lost).
    pub active_replicas: u32,
    /// `true` only for `/MANIFEST.db` itself, which is not a stored file
    /// but a consistent copy of the box's database taken when downloaded.
    pub is_manifest: bool,
}

/// A folder's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Listing {
    /// The folder, e.g. `/` or `/photos`.
    pub folder: String,
    /// Sub-folder names.
    pub folders: Vec<String>,
    /// Files in it (at `/`, `/MANIFEST.db` first).
    pub files: Vec<FileView>,
}

/// One replica of a file, as the file's detail page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaView {
    /// Replica index (part of its key).
    pub index: u32,
    /// Host PeerId.
    pub host: String,
    /// `uploading`, `active`, `lost` or `released`.
    pub state: String,
    /// Contract id, hex.
    pub contract: Option<String>,
    /// Last segment audit.
    pub last_audit_at: Option<i64>,
    /// Last full check.
    pub last_full_check_at: Option<i64>,
    /// Failed audits in a row.
    pub consecutive_failures: u32,
    /// Next audit due.
    pub next_audit_at: i64,
}

/// One file with its replicas and recent audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDetail {
    /// The file.
    pub file: FileView,
    /// Plaintext blake3, hex.
    pub blake3: String,
    /// Its replicas.
    pub replicas: Vec<ReplicaView>,
    /// Its latest audits, newest first.
    pub audits: Vec<AuditView>,
}

/// One audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    /// When.
    pub at: i64,
    /// File path.
    pub path: String,
    /// Replica index.
    pub replica: u32,
    /// Host PeerId.
    pub host: String,
    /// `segment` or `full`.
    pub kind: String,
    /// `passed`, `failed`, `timeout` or `unreachable`.
    pub outcome: String,
    /// Round trip.
    pub latency_ms: u64,
    /// Why it failed, if it did.
    pub detail: String,
}

/// One contract, either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractView {
    /// Contract id, hex.
    pub id: String,
    /// `ours_on_peer` (we pay or swap) or `theirs_on_us` (we host).
    pub direction: String,
    /// The other side.
    pub peer: String,
    /// Object bytes stored.
    pub bytes: u64,
    /// Price, msat per GiB-day (0 for swaps).
    pub price_msat_per_gib_day: u64,
    /// Retrieval price for this object, msat.
    pub retrieval_price_msat: u64,
    /// Storage for storage.
    pub is_swap: bool,
    /// `active`, `ending`, `ended` or `broken`.
    pub state: String,
    /// Term end.
    pub term_end_at: i64,
    /// Paid so far (outgoing for ours, incoming for theirs), msat.
    pub paid_msat: u64,
    /// Accrued and not yet settled, msat.
    pub owed_msat: u64,
}

/// One peer we know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// PeerId.
    pub peer: String,
    /// Known addresses.
    pub addresses: Vec<String>,
    /// Connected now.
    pub connected: bool,
    /// Lightning node id, hex, when known.
    pub ln_node_id: Option<String>,
    /// Decayed audit successes and failures (DESIGN §5 reputation).
    pub audit_successes: f64,
    /// See `audit_successes`.
    pub audit_failures: f64,
    /// Last seen.
    pub last_seen_at: i64,
}

/// The peers page: who we know, and how the world sees us.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeersView {
    /// Our PeerId.
    pub local_peer_id: String,
    /// Addresses we listen on.
    pub listen_addrs: Vec<String>,
    /// NAT status as AutoNAT sees it (`public`, `private`, `unknown`).
    pub nat: String,
    /// Known peers, connected first.
    pub peers: Vec<PeerView>,
}

/// One Lightning payment from the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    /// Payment id, hex.
    pub id: String,
    /// `outgoing` or `incoming`.
    pub direction: String,
    /// Amount, msat.
    pub amount_msat: u64,
    /// Routing fee paid, msat.
    pub fee_msat: Option<u64>,
    /// Contract it was for, hex.
    pub contract: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub state: String,
    /// Created.
    pub created_at: i64,
}

/// A background worker's state, for the admin page (DESIGN §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// `audit`, `full_check`, `repair`, `settle`, …
    pub name: String,
    /// What it is doing or last did, in words.
    pub state: String,
    /// When it runs next.
    pub next_run_at: Option<i64>,
    /// Last error, if the last run failed.
    pub last_error: Option<String>,
}

/// The engine at a glance: dashboard, panel, `bunker status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Our PeerId.
    pub peer_id: String,
    /// Files in the tree (not counting `/MANIFEST.db`).
    pub files: u64,
    /// Plaintext bytes of our files.
    pub stored_bytes: u64,
    /// Files with fewer active replicas than wanted.
    pub under_replicated: u64,
    /// Bytes we host for peers.
    pub hosted_bytes: u64,
    /// Bytes we could still offer to peers.
    pub offerable_bytes: u64,
    /// Connected peers.
    pub connected_peers: u32,
    /// Audits passed / total over the last 24 h.
    pub audits_passed_24h: u64,
    /// See `audits_passed_24h`.
    pub audits_total_24h: u64,
    /// Sum of succeeded incoming payments, msat.
    pub earned_msat: u64,
    /// Sum of succeeded outgoing payments, msat.
    pub spent_msat: u64,
    /// Lightning: `running`, `starting`, `off` or the reason it is down.
    pub lightning: String,
    /// Background workers.
    pub workers: Vec<WorkerView>,
}

/// The last audit of one manifest holder (fetched back and verified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderAuditView {
    /// When.
    pub at: i64,
    /// `passed`, `failed` (lost, stale or altered: the holder is replaced)
    /// or `unreachable`.
    pub outcome: String,
    /// Version it served, when it served a valid one.
    pub served_version: Option<u64>,
    /// Why it failed, if it did.
    pub detail: String,
}

/// One peer that holds a snapshot of our manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHolderView {
    /// The holder's PeerId.
    pub peer: String,
    /// Newest snapshot version it confirmed storing.
    pub confirmed_version: u64,
    /// When it confirmed it.
    pub confirmed_at: i64,
    /// Where it was reached (the recovery kit lists these).
    pub addresses: Vec<String>,
    /// Its last audit since the engine started; `None` when it has not been
    /// audited since (audit results are not kept across restarts).
    pub last_audit: Option<HolderAuditView>,
}

/// How MANIFEST.db is replicated to peers (DESIGN §7): the Backup view and
/// `bunker backup`. Every figure comes from MANIFEST.db or from what the
/// replication loop did since the engine started; nothing is estimated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationView {
    /// `up_to_date`, `behind` (no holder has the newest snapshot),
    /// `too_few_holders` (fewer than `target_holders` have it) or
    /// `not_replicated` (no peer holds any snapshot).
    pub state: String,
    /// The state as a sentence for the owner.
    pub summary: String,
    /// Version of the newest snapshot made of the local manifest (0: none yet).
    pub latest_version: u64,
    /// Whether the manifest holds anything to replicate (files, folders or
    /// an earlier snapshot); an empty one is never sent.
    pub has_content: bool,
    /// Holders wanted (`replication.holders`).
    pub target_holders: u32,
    /// Holders that confirmed the newest snapshot.
    pub current_holders: u32,
    /// Every holder, newest version first.
    pub holders: Vec<ManifestHolderView>,
    /// When a holder last confirmed a snapshot (the newest confirmation).
    pub last_replicated_at: Option<i64>,
    /// When the last round ran since the engine started…
    pub last_round_at: Option<i64>,
    /// …and what it did, in words.
    pub last_round: Option<String>,
    /// When the next round is due (after changes settle, at least daily);
    /// `None` until the replication loop has started.
    pub next_due_at: Option<i64>,
}
