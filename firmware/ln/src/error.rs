//! What can go wrong, one enum per kind of operation.

pub use ldk_node::NodeError;

use crate::chain::ChainError;
use crate::config::Network;
use crate::store::StoreError;

/// Why the Lightning node did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration cannot work (bad listen address, alias, ...).
    #[error("Lightning configuration: {0}")]
    Config(String),
    /// The chain source cannot be used. Amounts owed stay recorded; start
    /// again when it is back.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// bunker-ln's own payment store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// ldk-node refused to build the node from its stored state.
    #[error("ldk-node could not build the node in {dir}: {reason}")]
    Build {
        /// The data directory.
        dir: String,
        /// ldk-node's words.
        reason: String,
    },
    /// ldk-node built the node but could not start it.
    #[error("ldk-node could not start: {0}")]
    Start(#[source] NodeError),
}

/// Why a payment was not sent. Nothing is recorded in the ledger for a
/// payment refused before it was handed to ldk-node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// The text is not a BOLT11 invoice.
    #[error("not a valid BOLT11 invoice: {reason}")]
    MalformedInvoice {
        /// The parser's words.
        reason: String,
    },
    /// The text is not a BOLT12 offer.
    #[error("not a valid BOLT12 offer: {reason}")]
    MalformedOffer {
        /// The parser's words.
        reason: String,
    },
    /// Invoices and offers are pasted by people; one that long is not one.
    #[error("{what} is {len} bytes long, more than the {max} accepted")]
    TooLong {
        /// "invoice" or "offer".
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The invoice or offer is for another Bitcoin network.
    #[error("this {what} is for {found}, but the box runs on {expected}")]
    WrongNetwork {
        /// "invoice" or "offer".
        what: &'static str,
        /// What the invoice says.
        found: String,
        /// Our network.
        expected: Network,
    },
    /// The invoice or offer has expired.
    #[error("this {what} expired {ago_secs} s ago")]
    Expired {
        /// "invoice" or "offer".
        what: &'static str,
        /// How long ago.
        ago_secs: u64,
    },
    /// No amount in the invoice/offer and none given.
    #[error("the {what} names no amount; give one")]
    NoAmount {
        /// "invoice" or "offer".
        what: &'static str,
    },
    /// Zero, or more bitcoin than exist.
    #[error("{amount_msat} msat is not a payable amount")]
    InvalidAmount {
        /// The amount asked for.
        amount_msat: u64,
    },
    /// More than the channels can carry right now.
    #[error("{amount_msat} msat is more than the channels can send now ({sendable_msat} msat)")]
    OverChannelLimit {
        /// The amount asked for.
        amount_msat: u64,
        /// The most the usable channels can send in one payment now.
        sendable_msat: u64,
    },
    /// ldk-node refused to send.
    #[error("ldk-node could not send the payment: {0}")]
    Node(#[source] NodeError),
    /// The ledger could not record the payment.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an invoice or offer could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Description too long for an invoice (BOLT11 allows 639 bytes).
    #[error("invoice description is {len} bytes, at most {max} fit")]
    DescriptionTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Zero, or more bitcoin than exist.
    #[error("{amount_msat} msat is not a receivable amount")]
    InvalidAmount {
        /// The amount asked for.
        amount_msat: u64,
    },
    /// No LSPS2 provider is configured.
    #[error("no LSPS2 liquidity provider is configured (lsps2 in the Lightning settings)")]
    NoLiquiditySource,
    /// ldk-node refused.
    #[error("ldk-node could not create the {what}: {source}")]
    Node {
        /// "invoice" or "offer".
        what: &'static str,
        /// ldk-node's error.
        #[source]
        source: NodeError,
    },
}

/// Why a channel or peer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A direct channel larger than the configured cap.
    #[error("a direct channel of {amount_sat} sat to {peer} is over the {cap_sat} sat cap")]
    OverCap {
        /// The size asked for.
        amount_sat: u64,
        /// `direct_channel_max_sat`.
        cap_sat: u64,
        /// The host.
        peer: String,
    },
    /// No channel with that id.
    #[error("no channel {user_channel_id} with node {peer}")]
    UnknownChannel {
        /// Our id for the channel.
        user_channel_id: u128,
        /// The peer.
        peer: String,
    },
    /// ldk-node refused.
    #[error("ldk-node could not {action} (peer {peer}): {source}")]
    Node {
        /// What was tried.
        action: &'static str,
        /// The peer.
        peer: String,
        /// ldk-node's error.
        #[source]
        source: NodeError,
    },
}

/// Why an on-chain wallet operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// ldk-node refused.
    #[error("ldk-node could not {action}: {source}")]
    Node {
        /// What was tried.
        action: &'static str,
        /// ldk-node's error.
        #[source]
        source: NodeError,
    },
}

/// A wait for a payment or channel ran out of time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("gave up after {waited_ms} ms waiting for {what}")]
pub struct WaitTimeout {
    /// What was awaited.
    pub what: String,
    /// How long.
    pub waited_ms: u64,
}
