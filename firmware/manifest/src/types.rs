//! The values the typed API speaks in. Enums map to fixed strings in the
//! database so that a downloaded MANIFEST.db stays readable with any SQLite tool.

use libp2p_identity::PeerId;

use crate::path::FilePath;

/// Seconds since the Unix epoch. The caller supplies time so that the engine
/// (and tests) own the clock.
pub type UnixSecs = i64;

/// A 32-byte blake3 hash (plaintext hash, Merkle root).
pub type Hash32 = [u8; 32];

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);
    };
}

row_id!(
    /// Row id of a file.
    FileId
);
row_id!(
    /// Row id of a replica.
    ReplicaId
);
row_id!(
    /// Row id of a disk.
    DiskId
);
row_id!(
    /// Row id of a hosted object.
    HostedObjectId
);
row_id!(
    /// Row id of an audit record.
    AuditId
);

/// A contract's identity as both sides know it (e.g. the hash of the signed terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContractId(pub [u8; 32]);

/// A Lightning payment id (ldk-node's `PaymentId`), the key by which payment updates arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentId(pub [u8; 32]);

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The word stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub(crate) fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Life of one replica on one host.
    ReplicaState {
        /// Contract agreed, bytes still streaming to the host.
        Uploading => "uploading",
        /// Stored and audited.
        Active => "active",
        /// Declared lost after too many failed audits.
        Lost => "lost",
        /// Deliberately given up (file deleted, contract ended).
        Released => "released",
    }
);

text_enum!(
    /// Which way a contract runs.
    ContractDirection {
        /// We pay (or swap) a peer to keep our replica.
        OursOnPeer => "ours_on_peer",
        /// A peer pays (or swaps) us to keep their object.
        TheirsOnUs => "theirs_on_us",
    }
);

text_enum!(
    /// Life of a contract.
    ContractState {
        /// In force.
        Active => "active",
        /// Release requested, not yet confirmed or not yet past grace.
        Ending => "ending",
        /// Ended by agreement or by term.
        Ended => "ended",
        /// Ended because the other side failed it.
        Broken => "broken",
    }
);

text_enum!(
    /// Which way a payment went.
    PaymentDirection {
        /// We paid.
        Outgoing => "outgoing",
        /// We were paid.
        Incoming => "incoming",
    }
);

text_enum!(
    /// Payment progress; only pending → succeeded or pending → failed are allowed.
    PaymentState {
        /// Sent or announced, outcome unknown.
        Pending => "pending",
        /// Settled.
        Succeeded => "succeeded",
        /// Gave up.
        Failed => "failed",
    }
);

text_enum!(
    /// Short segment audit or long whole-object check.
    AuditKind {
        /// One random segment with a Merkle proof.
        Segment => "segment",
        /// Whole object fetched, root and decryption verified.
        Full => "full",
    }
);

text_enum!(
    /// What an audit found.
    AuditOutcome {
        /// The proof verified.
        Passed => "passed",
        /// The host answered with bytes that do not verify.
        Failed => "failed",
        /// The host did not answer in time.
        Timeout => "timeout",
        /// The host could not be reached at all.
        Unreachable => "unreachable",
    }
);

impl AuditOutcome {
    /// Whether the outcome counts as a pass for the consecutive-failure counter.
    pub fn is_pass(self) -> bool {
        matches!(self, AuditOutcome::Passed)
    }
}

text_enum!(
    /// Whether a data disk is in use.
    DiskState {
        /// Mounted and usable.
        Active => "active",
        /// Known but not currently attached.
        Missing => "missing",
        /// Taken out of service by the owner.
        Retired => "retired",
    }
);

text_enum!(
    /// Life of an object we keep for a peer.
    HostedState {
        /// Segments still arriving.
        Receiving => "receiving",
        /// Complete on disk.
        Stored => "stored",
        /// Contract over, bytes may be deleted.
        Released => "released",
    }
);

/// Where a file's local copy lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCopy {
    /// The disk.
    pub disk: DiskId,
    /// Path relative to the disk's mount point.
    pub rel_path: String,
}

/// A file to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Where it appears in the box's tree.
    pub path: FilePath,
    /// The file's object id: 16 random bytes every replica key and segment's
    /// associated data derive from. Never reused for other content (nonces
    /// would repeat), so unique among files.
    pub object_id: bunker_core::FileId,
    /// Plaintext size in bytes.
    pub size: u64,
    /// blake3 of the plaintext, to verify a restore end to end.
    pub plaintext_blake3: Hash32,
    /// Segment size the replicas were cut with.
    pub segment_size: u32,
    /// Whether the owner wants a copy on the box's own disks.
    pub keep_local: bool,
    /// How many remote replicas the owner asked for.
    pub redundancy: u8,
    /// The local copy, if one exists.
    pub local: Option<LocalCopy>,
    /// When the file was first added.
    pub created_at: UnixSecs,
    /// When its content last changed.
    pub modified_at: UnixSecs,
}

/// A replica to record with its file, or later by repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReplica {
    /// Index in the replica-key derivation.
    pub index: u32,
    /// Host keeping it.
    pub host: PeerId,
    /// Merkle root of the sealed object.
    pub root: Hash32,
    /// Bytes stored on the host (sealed size).
    pub stored_size: u64,
    /// The contract covering it, once there is one.
    pub contract: Option<ContractId>,
    /// Initial state.
    pub state: ReplicaState,
    /// When the first audit is due.
    pub next_audit_at: UnixSecs,
    /// When it was placed.
    pub created_at: UnixSecs,
}

/// A file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Row id.
    pub id: FileId,
    /// Full path.
    pub path: String,
    /// The object id its replicas were sealed under (see [`NewFile::object_id`]).
    pub object_id: bunker_core::FileId,
    /// Plaintext size.
    pub size: u64,
    /// blake3 of the plaintext.
    pub plaintext_blake3: Hash32,
    /// Segment size.
    pub segment_size: u32,
    /// Keep a local copy.
    pub keep_local: bool,
    /// Remote replicas wanted.
    pub redundancy: u8,
    /// The local copy, if any.
    pub local: Option<LocalCopy>,
    /// First added.
    pub created_at: UnixSecs,
    /// Last changed.
    pub modified_at: UnixSecs,
}

/// One line of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Row id.
    pub id: FileId,
    /// Name inside the folder.
    pub name: String,
    /// Plaintext size.
    pub size: u64,
    /// Last changed.
    pub modified_at: UnixSecs,
    /// Keep a local copy.
    pub keep_local: bool,
    /// Whether a local copy exists.
    pub has_local: bool,
    /// Remote replicas wanted.
    pub redundancy: u8,
    /// Replicas currently active.
    pub active_replicas: u32,
}

/// The content of one folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FolderListing {
    /// Names of sub-folders, sorted.
    pub folders: Vec<String>,
    /// Files, sorted by name.
    pub files: Vec<FileEntry>,
}

/// A replica as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Row id.
    pub id: ReplicaId,
    /// The file.
    pub file: FileId,
    /// Replica index.
    pub index: u32,
    /// Host.
    pub host: PeerId,
    /// Merkle root.
    pub root: Hash32,
    /// Sealed size.
    pub stored_size: u64,
    /// Covering contract.
    pub contract: Option<ContractId>,
    /// State.
    pub state: ReplicaState,
    /// Next audit due.
    pub next_audit_at: UnixSecs,
    /// Last audit done.
    pub last_audit_at: Option<UnixSecs>,
    /// Last whole-object check done.
    pub last_full_check_at: Option<UnixSecs>,
    /// Failed audits in a row.
    pub consecutive_failures: u32,
    /// Placed at.
    pub created_at: UnixSecs,
}

/// A replica whose audit is due, with what the auditor needs to challenge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReplica {
    /// The replica.
    pub replica: ReplicaId,
    /// Its file.
    pub file: FileId,
    /// Replica index.
    pub index: u32,
    /// Host to challenge.
    pub host: PeerId,
    /// Root to verify against.
    pub root: Hash32,
    /// Sealed size.
    pub stored_size: u64,
    /// Segment size of the file (to pick a segment index).
    pub segment_size: u32,
    /// Covering contract.
    pub contract: Option<ContractId>,
    /// Failed audits in a row so far.
    pub consecutive_failures: u32,
    /// When it fell due.
    pub next_audit_at: UnixSecs,
}

/// The result of one audit, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Which replica was audited.
    pub replica: ReplicaId,
    /// When.
    pub at: UnixSecs,
    /// Segment or full.
    pub kind: AuditKind,
    /// Segment challenged, for segment audits.
    pub segment: Option<u64>,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Round-trip time.
    pub latency_ms: u64,
    /// Human-readable detail for the admin page (never secrets).
    pub detail: String,
    /// When the next segment audit is due (the engine randomizes it); `None` keeps the schedule.
    pub next_audit_at: Option<UnixSecs>,
}

/// A recorded audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Row id.
    pub id: AuditId,
    /// Replica.
    pub replica: ReplicaId,
    /// When.
    pub at: UnixSecs,
    /// Kind.
    pub kind: AuditKind,
    /// Segment challenged.
    pub segment: Option<u64>,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Round-trip time.
    pub latency_ms: u64,
    /// Detail.
    pub detail: String,
}

/// What is known about a peer after seeing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSighting {
    /// Who.
    pub peer: PeerId,
    /// Addresses it was reached at or announced (multiaddr text).
    pub addresses: Vec<String>,
    /// Its Lightning node id, if announced (hex).
    pub ln_node_id: Option<String>,
    /// When.
    pub seen_at: UnixSecs,
}

/// A peer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRecord {
    /// Who.
    pub peer: PeerId,
    /// Known addresses, most recently seen first.
    pub addresses: Vec<String>,
    /// Lightning node id.
    pub ln_node_id: Option<String>,
    /// First seen.
    pub first_seen_at: UnixSecs,
    /// Last seen.
    pub last_seen_at: UnixSecs,
    /// Decayed success count (reputation α).
    pub successes: f64,
    /// Decayed failure count (reputation β).
    pub failures: f64,
}

/// A signed contract to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContract {
    /// Identity both sides use.
    pub id: ContractId,
    /// Which way it runs.
    pub direction: ContractDirection,
    /// The other side.
    pub peer: PeerId,
    /// Root of the object kept.
    pub object_root: Hash32,
    /// Size of the object kept.
    pub size_bytes: u64,
    /// Storage price.
    pub price_msat_per_gib_day: u64,
    /// Price of one whole-object retrieval.
    pub retrieval_price_msat: u64,
    /// Mean interval between segment audits.
    pub audit_interval_secs: u64,
    /// Mean interval between whole-object checks.
    pub full_check_interval_secs: u64,
    /// Swap (storage for storage, no payment).
    pub is_swap: bool,
    /// Term start.
    pub term_start_at: UnixSecs,
    /// Term end.
    pub term_end_at: UnixSecs,
    /// The signed terms as the wire encodes them, kept verbatim as evidence.
    pub terms: Vec<u8>,
    /// Our signature over `terms`.
    pub our_signature: Vec<u8>,
    /// The peer's signature over `terms`.
    pub peer_signature: Vec<u8>,
    /// When it was concluded.
    pub created_at: UnixSecs,
}

/// A contract as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractRecord {
    /// The terms as recorded.
    pub contract: NewContract,
    /// Current state.
    pub state: ContractState,
    /// Amount accrued and not yet settled.
    pub owed_msat: u64,
    /// Last settlement.
    pub last_paid_at: Option<UnixSecs>,
    /// When it ended.
    pub ended_at: Option<UnixSecs>,
}

/// A payment to record when it is sent or first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// Lightning payment id.
    pub id: PaymentId,
    /// Which way.
    pub direction: PaymentDirection,
    /// Amount.
    pub amount_msat: u64,
    /// Contract it settles, if any.
    pub contract: Option<ContractId>,
    /// Payment hash, if known.
    pub payment_hash: Option<Hash32>,
    /// When.
    pub created_at: UnixSecs,
}

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Lightning payment id.
    pub id: PaymentId,
    /// Which way.
    pub direction: PaymentDirection,
    /// Amount.
    pub amount_msat: u64,
    /// Routing fee paid, once known.
    pub fee_msat: Option<u64>,
    /// Contract it settles.
    pub contract: Option<ContractId>,
    /// Payment hash.
    pub payment_hash: Option<Hash32>,
    /// State.
    pub state: PaymentState,
    /// Failure reason or note.
    pub reason: String,
    /// Created.
    pub created_at: UnixSecs,
    /// Last state change.
    pub updated_at: UnixSecs,
}

/// A data disk as detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// File-system UUID, stable across re-plugging.
    pub uuid: String,
    /// Label for the admin page.
    pub label: String,
    /// Where it is mounted.
    pub mount_path: String,
    /// Capacity.
    pub total_bytes: u64,
    /// Free space now.
    pub free_bytes: u64,
    /// Kept free as a safety margin.
    pub reserved_bytes: u64,
    /// State.
    pub state: DiskState,
    /// When seen.
    pub seen_at: UnixSecs,
}

/// A disk as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRecord {
    /// Row id.
    pub id: DiskId,
    /// What was detected.
    pub info: DiskInfo,
    /// First added.
    pub added_at: UnixSecs,
    /// Last scrub finished.
    pub last_scrub_at: Option<UnixSecs>,
}

/// How one disk's space is split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskAllocation {
    /// The disk.
    pub disk: DiskId,
    /// Its UUID.
    pub uuid: String,
    /// Capacity.
    pub total_bytes: u64,
    /// Free now.
    pub free_bytes: u64,
    /// Safety margin.
    pub reserved_bytes: u64,
    /// Bytes of the owner's local copies.
    pub local_bytes: u64,
    /// Bytes kept for peers (receiving or stored).
    pub hosted_bytes: u64,
}

/// An object to keep for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHostedObject {
    /// The contract covering it.
    pub contract: ContractId,
    /// Owner.
    pub owner: PeerId,
    /// Merkle root.
    pub root: Hash32,
    /// Disk it is on.
    pub disk: DiskId,
    /// Path relative to the disk's mount point.
    pub rel_path: String,
    /// Size on disk.
    pub bytes: u64,
    /// State.
    pub state: HostedState,
    /// When accepted.
    pub created_at: UnixSecs,
}

/// A hosted object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedObject {
    /// Row id.
    pub id: HostedObjectId,
    /// What was recorded.
    pub object: NewHostedObject,
}
