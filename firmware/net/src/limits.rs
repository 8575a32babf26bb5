//! Size caps and time limits for every bunker protocol.
//!
//! Every number a peer sends is checked against one of these before memory is allocated for it,
//! and every wait on a peer ends after one of these durations. They live in one struct so the
//! engine (and tests) can tighten them without touching protocol code.

use std::time::Duration;

/// Cap and deadline of one request-response protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// Largest encoded request accepted (bytes, after the 4-byte length prefix).
    pub max_request: usize,
    /// Largest encoded response accepted.
    pub max_response: usize,
    /// How long one request may take from sending it to the complete response.
    pub timeout: Duration,
    /// How many requests of this protocol may be in flight on one connection; more are refused
    /// by libp2p before they are read, which bounds the memory a peer can make us hold.
    pub max_concurrent: usize,
}

/// All limits of a node. [`Limits::default`] is what a box runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `/bunker/offer/1`
    pub offer: MessageLimits,
    /// `/bunker/contract/2`: the terms carry an owner label of up to 1 KiB.
    pub contract: MessageLimits,
    /// `/bunker/audit/1`: the response carries one sealed segment plus its Merkle proof.
    pub audit: MessageLimits,
    /// `/bunker/manifest/1`: the request or response carries a whole encrypted snapshot.
    pub manifest: MessageLimits,
    /// `/bunker/recover/1`
    pub recover: MessageLimits,
    /// `/bunker/release/1`
    pub release: MessageLimits,
    /// `/bunker/holdings/1`: a response is one page of at most
    /// [`crate::MAX_HOLDINGS_PER_PAGE`] contracts, each ≈ 1.4 KiB with its label.
    pub holdings: MessageLimits,
    /// Largest header frame of a bulk stream (store/fetch).
    pub max_stream_header: usize,
    /// Largest object a peer may announce on `/bunker/store/2` or `/bunker/fetch/2`.
    pub max_object_bytes: u64,
    /// Time allowed to open a bulk stream and exchange its header frames.
    pub stream_header_timeout: Duration,
    /// A bulk stream that moves no byte for this long is abandoned with an error: this is what
    /// stops a stalling peer from holding a slot forever, while a merely slow peer keeps going.
    pub stream_idle_timeout: Duration,
    /// Concurrent inbound bulk streams one peer may hold; the next one cuts the peer off.
    pub max_inbound_streams_per_peer: usize,
    /// Inbound requests one peer may have waiting on the engine; the next one cuts it off.
    pub max_pending_requests_per_peer: usize,
    /// Undecodable or oversize messages tolerated from one peer before it is cut off.
    pub max_bad_messages_per_peer: u32,
    /// How long a cut-off peer stays blocked.
    pub ban_duration: Duration,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

impl Default for Limits {
    fn default() -> Self {
        Self {
            offer: MessageLimits {
                max_request: KIB,
                max_response: 4 * KIB,
                timeout: Duration::from_secs(10),
                max_concurrent: 16,
            },
            contract: MessageLimits {
                max_request: 16 * KIB,
                max_response: 16 * KIB,
                timeout: Duration::from_secs(20),
                max_concurrent: 16,
            },
            // A segment is 64 KiB by default but stored per file; allow up to 1 MiB segments
            // plus a proof for a tree of 2^40 leaves with room to spare.
            audit: MessageLimits {
                max_request: KIB,
                max_response: MIB + 64 * KIB,
                timeout: Duration::from_secs(30),
                max_concurrent: 8,
            },
            manifest: MessageLimits {
                max_request: 32 * MIB,
                max_response: 32 * MIB,
                timeout: Duration::from_secs(120),
                max_concurrent: 2,
            },
            recover: MessageLimits {
                max_request: 4 * KIB,
                max_response: 64 * KIB,
                timeout: Duration::from_secs(60),
                max_concurrent: 8,
            },
            release: MessageLimits {
                max_request: 4 * KIB,
                max_response: 4 * KIB,
                timeout: Duration::from_secs(10),
                max_concurrent: 16,
            },
            holdings: MessageLimits {
                max_request: KIB,
                max_response: 256 * KIB,
                timeout: Duration::from_secs(30),
                max_concurrent: 4,
            },
            max_stream_header: 4 * KIB,
            max_object_bytes: 1 << 40,
            stream_header_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(30),
            max_inbound_streams_per_peer: 8,
            max_pending_requests_per_peer: 64,
            max_bad_messages_per_peer: 8,
            ban_duration: Duration::from_secs(600),
        }
    }
}
