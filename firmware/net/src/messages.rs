//! Message types of the request-response protocols and the header frames of the bulk streams.
//!
//! These are the wire format: fields are only ever added under a new protocol version. Proofs,
//! sealed segments, signatures and snapshots are opaque bytes here; bunker-core gives them
//! meaning and the engine checks them. Every `Vec` is bounded by the cap of its protocol in
//! [`crate::Limits`], checked before decoding.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// 32-byte identifier (object root, contract id, provider key, nonce).
pub type Id32 = [u8; 32];

/// `/bunker/offer/1` request: what the asker would like to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferRequest {
    /// Bytes the asker wants to store.
    pub bytes: u64,
    /// Contract term the asker has in mind, in seconds.
    pub term_secs: u64,
    /// Bytes the asker offers to keep in return (swap), 0 for a paid contract.
    pub swap_offered_bytes: u64,
}

/// `/bunker/offer/1` response: the host's quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Free space the host is willing to sell.
    pub free_bytes: u64,
    /// Storage price in millisatoshi per GiB-day.
    pub price_msat_per_gib_day: u64,
    /// Price of one full retrieval, in millisatoshi per GiB.
    pub retrieval_msat_per_gib: u64,
    /// Bytes the host would like stored in return, 0 if it wants no swap.
    pub swap_wanted_bytes: u64,
    /// The host's Lightning node id (33-byte compressed public key).
    pub ln_node_id: Vec<u8>,
    /// Signature by the host's libp2p key over the Lightning node id (binds the two).
    pub ln_node_id_signature: Vec<u8>,
}

/// The terms of a contract, identical on both sides; both signatures cover its encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractTerms {
    /// Contract id chosen by the owner.
    pub contract_id: Id32,
    /// Merkle root of the stored object.
    pub object_root: Id32,
    /// Size of the stored (sealed) object in bytes.
    pub object_bytes: u64,
    /// Plaintext size of the object: with `segment_size` it fixes the segment layout, which
    /// the host needs to hash what it receives and to answer audits.
    pub plain_bytes: u64,
    /// Plaintext bytes per segment.
    pub segment_size: u32,
    /// Storage price in millisatoshi per GiB-day (0 for a swap).
    pub price_msat_per_gib_day: u64,
    /// Price of one full retrieval in millisatoshi per GiB.
    pub retrieval_msat_per_gib: u64,
    /// Shortest and longest audit interval in seconds.
    pub audit_interval_secs: (u64, u64),
    /// Term in seconds from acceptance.
    pub term_secs: u64,
    /// True for a swap contract (equal bytes both ways, no payment).
    pub swap: bool,
    /// The owner label: what the owner needs to rebuild its record of this replica without its
    /// manifest, sealed under a key only the owner has (opaque to the host, which keeps it and
    /// gives it back on `/bunker/holdings/1`). At most [`MAX_OWNER_LABEL`] bytes; empty when the
    /// owner sets none.
    pub owner_label: Vec<u8>,
}

/// Largest owner label a contract may carry (bytes). A host refuses terms with a longer one.
pub const MAX_OWNER_LABEL: usize = 1024;

/// `/bunker/contract/2` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractProposal {
    /// What is proposed.
    pub terms: ContractTerms,
    /// Owner's signature over the encoded terms.
    pub owner_signature: Vec<u8>,
}

/// `/bunker/contract/2` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContractAnswer {
    /// The host accepts and countersigns the terms.
    Accepted {
        /// Host's signature over the encoded terms.
        host_signature: Vec<u8>,
    },
    /// The host declines.
    Rejected {
        /// Why, for the owner's log.
        reason: String,
    },
}

/// `/bunker/audit/1` request: prove you hold segment `segment` of `object_root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditChallenge {
    /// Merkle root naming the object.
    pub object_root: Id32,
    /// Index of the challenged segment.
    pub segment: u64,
    /// Fresh randomness so that an answer cannot be replayed.
    pub nonce: Id32,
}

/// `/bunker/audit/1` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditResponse {
    /// The sealed segment and its Merkle proof.
    Proof {
        /// The sealed segment bytes.
        sealed_segment: Vec<u8>,
        /// Encoded Merkle proof of the segment's leaf.
        proof: Vec<u8>,
    },
    /// The host does not have this object.
    NotFound,
    /// The host could not answer (disk error, …).
    Failed {
        /// Why.
        reason: String,
    },
}

/// `/bunker/manifest/1` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestRequest {
    /// Keep this snapshot for me (replacing older versions).
    Store {
        /// Monotonic snapshot version.
        version: u64,
        /// Encrypted, signed snapshot.
        snapshot: Vec<u8>,
    },
    /// Give me my newest snapshot. The host answers only when the noise-authenticated
    /// requester is the owner: see [`crate::InboundRequest::Manifest`].
    Fetch,
}

/// `/bunker/manifest/1` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestResponse {
    /// The snapshot was kept.
    Stored,
    /// The newest snapshot held for the requester.
    Snapshot {
        /// Its version.
        version: u64,
        /// Its bytes.
        snapshot: Vec<u8>,
    },
    /// Nothing held for the requester.
    NotFound,
    /// Refused (not the owner, no room, …).
    Refused {
        /// Why.
        reason: String,
    },
}

/// `/bunker/recover/1` request: does anyone hold a manifest for `owner`?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverRequest {
    /// The owner whose manifest is searched.
    #[serde(with = "peer_id_bytes")]
    pub owner: PeerId,
    /// Random id so forwarders can drop loops.
    pub search_id: [u8; 16],
    /// Remaining forwards; a forwarder decrements it and stops at 0.
    pub hops_left: u8,
    /// Peers that forwarded the search so far (each earns a cut when it succeeds).
    #[serde(with = "peer_ids_bytes")]
    pub path: Vec<PeerId>,
}

/// `/bunker/recover/1` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoverResponse {
    /// These peers hold a snapshot for the owner.
    Found {
        /// Holders.
        #[serde(with = "peer_ids_bytes")]
        holders: Vec<PeerId>,
        /// Forwarders on the successful path.
        #[serde(with = "peer_ids_bytes")]
        path: Vec<PeerId>,
    },
    /// Nobody reachable within the hop limit holds one.
    NotFound,
}

/// Most contracts one `/bunker/holdings/1` page carries, whatever the asker wants.
pub const MAX_HOLDINGS_PER_PAGE: u32 = 64;

/// `/bunker/holdings/1` request: "what do you hold for me?" — the asker is the owner, identified
/// by its noise-authenticated PeerId, never by anything in the message. Pages go in contract id
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldingsRequest {
    /// Start after this contract id (the previous page's `next`), or from the first.
    pub after: Option<Id32>,
    /// Most contracts wanted in this page (the host answers at most
    /// [`MAX_HOLDINGS_PER_PAGE`], and fewer when the page would pass its byte cap).
    pub max: u32,
}

/// One contract a host holds an object under for the asker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// The terms both sides signed (they carry the owner label).
    pub terms: ContractTerms,
    /// The owner's signature over the terms, as the host received it.
    pub owner_signature: Vec<u8>,
    /// The host's countersignature over the terms.
    pub host_signature: Vec<u8>,
    /// Merkle root of the object the host stores (computed from the bytes it received).
    pub root: Id32,
    /// When the host accepted the contract (unix seconds).
    pub accepted_at: i64,
}

/// `/bunker/holdings/1` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldingsResponse {
    /// One page of what the host holds for the asker.
    Page {
        /// Contracts in contract id order.
        holdings: Vec<Holding>,
        /// Ask again with `after = next` for the rest; `None` when this was the last page.
        next: Option<Id32>,
    },
    /// The host cannot answer now (busy, disk error).
    Refused {
        /// Why.
        reason: String,
    },
}

/// `/bunker/release/1` request: end a contract early or at its term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    /// The contract to end.
    pub contract_id: Id32,
    /// Signature of the sender over the contract id.
    pub signature: Vec<u8>,
}

/// `/bunker/release/1` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseResponse {
    /// Released; the host may delete the object.
    Released,
    /// The contract is unknown to the receiver.
    UnknownContract,
}

/// First frame of `/bunker/store/2`, sent by the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreHeader {
    /// Contract the object is stored under.
    pub contract_id: Id32,
    /// Merkle root naming the object.
    pub object_root: Id32,
    /// Exact number of body bytes that follow the host's acceptance.
    pub total_len: u64,
}

/// The host's acknowledgement of a stored object: the root it computed from the bytes it
/// received, signed by its libp2p key (the engine defines what the signature covers). The owner
/// checks the root against its own before counting the copy as placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreReceipt {
    /// Merkle root the host computed over the received bytes.
    pub root: Id32,
    /// Host's signature over the contract id and that root.
    pub host_signature: Vec<u8>,
}

/// Host's answer to a [`StoreHeader`], before any body byte moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoreReady {
    /// Send the body on this stream.
    Accept,
    Reject { reason: String },
    /// Send the body on the host's lane (`crate::lane`): connect to `port` at the host's IP,
    /// write `ticket`, then answer with a [`LaneChoice`] on this stream either way.
    AcceptLane { port: u16, ticket: Id32 },
}

/// The owner's word after a lane offer: whether the body goes on the lane it just opened or,
/// when that failed, on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LaneChoice {
    Lane,
    Stream,
}

/// Host's last frame on `/bunker/store/2`, after the whole body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoreDone {
    Stored(StoreReceipt),
    Failed { reason: String },
}

/// `/bunker/fetch/2` request. The same message serves a periodic full check and a real
/// recovery, so a host cannot tell them apart and price one differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// Contract the object is held under.
    pub contract_id: Id32,
    /// Merkle root naming the object.
    pub object_root: Id32,
}

/// Host's header frame on `/bunker/fetch/2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum FetchHeader {
    /// The body follows on this stream.
    Object { total_len: u64 },
    NotFound,
    Refused { reason: String },
    /// The body is sent on the host's lane once the requester shows `ticket` there; the
    /// requester answers with a [`LaneChoice`] either way.
    ObjectLane { total_len: u64, port: u16, ticket: Id32 },
}

/// PeerId as its multihash bytes; decoding rejects bytes that are not a PeerId.
mod peer_id_bytes {
    use libp2p::PeerId;
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(p: &PeerId, s: S) -> Result<S::Ok, S::Error> {
        p.to_bytes().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PeerId, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        PeerId::from_bytes(&bytes).map_err(|e| D::Error::custom(format!("bad peer id: {e}")))
    }
}

/// A list of PeerIds, each as in [`peer_id_bytes`].
mod peer_ids_bytes {
    use libp2p::PeerId;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ps: &[PeerId], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ps.iter().map(|p| p.to_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PeerId>, D::Error> {
        let raw = Vec::<Vec<u8>>::deserialize(d)?;
        raw.iter()
            .map(|b| PeerId::from_bytes(b).map_err(|e| D::Error::custom(format!("bad peer id: {e}"))))
            .collect()
    }
}
