//! The payment ledger as the engine sees it: one record per Lightning
//! payment, moving from pending to succeeded or failed.
//!
//! bunker-ln may not depend on the manifest crate, so the engine plugs its
//! MANIFEST.db ledger in through [`PaymentLedger`]. Records are delivered at
//! least once (a crash between "written" and "acknowledged" repeats the last
//! one), so an implementation upserts by [`PaymentRecord::id`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The TLV type that carries a contract id in a keysend payment's onion.
///
/// In the custom range (≥ 2^16) and odd, so a receiver that does not know it
/// still accepts the payment ("it's OK to be odd"). The value spells "BUNK".
pub const CONTRACT_TLV_TYPE: u64 = 0x4255_4E4B;
// Checked when compiling: odd, and in the range open to applications.
const _: () = assert!(CONTRACT_TLV_TYPE % 2 == 1 && CONTRACT_TLV_TYPE >= 1 << 16);

/// Identifies a storage contract: 32 bytes chosen by the engine (for example
/// the blake3 hash of the signed contract).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContractId(pub [u8; 32]);

impl fmt::Display for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContractId({self})")
    }
}

/// A contract id that is not 64 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("contract id {text:?} is not 64 hex digits")]
pub struct ContractIdParseError {
    /// The text as given, cut to 80 characters.
    pub text: String,
}

impl FromStr for ContractId {
    type Err = ContractIdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ContractIdParseError {
            text: s.chars().take(80).collect(),
        })?;
        Ok(ContractId(out))
    }
}

impl ContractId {
    /// The contract id carried in a payment's custom TLV records, if any.
    ///
    /// A record of the right type with a value that is not 32 bytes is
    /// ignored rather than trusted: a peer chooses those bytes.
    pub fn from_custom_records(records: &[ldk_node::CustomTlvRecord]) -> Option<ContractId> {
        records
            .iter()
            .find(|r| r.type_num == CONTRACT_TLV_TYPE)
            .and_then(|r| <[u8; 32]>::try_from(r.value.as_slice()).ok())
            .map(ContractId)
    }
}

/// Which way the money went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We paid.
    Outbound,
    /// We were paid.
    Inbound,
}

/// How the payment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Spontaneous payment to a node id; the one storage settlements use.
    Keysend,
    /// A BOLT11 invoice.
    Bolt11,
    /// A BOLT12 offer.
    Bolt12,
}

/// Where a payment stands. Only `Pending` ever changes, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Sent and not yet resolved.
    Pending,
    /// Paid (outbound) or received and claimed (inbound).
    Succeeded,
    /// Gave up; nothing was paid.
    Failed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Status> {
        match s {
            "pending" => Some(Status::Pending),
            "succeeded" => Some(Status::Succeeded),
            "failed" => Some(Status::Failed),
            _ => None,
        }
    }
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Direction> {
        match s {
            "outbound" => Some(Direction::Outbound),
            "inbound" => Some(Direction::Inbound),
            _ => None,
        }
    }
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Keysend => "keysend",
            Method::Bolt11 => "bolt11",
            Method::Bolt12 => "bolt12",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Method> {
        match s {
            "keysend" => Some(Method::Keysend),
            "bolt11" => Some(Method::Bolt11),
            "bolt12" => Some(Method::Bolt12),
            _ => None,
        }
    }
}

/// One Lightning payment as the ledger keeps it.
///
/// Inbound payments appear when they arrive (already succeeded): an invoice
/// or offer we issued that nobody paid is not a payment and is not here,
/// although ldk-node keeps it as a pending inbound entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// ldk-node's payment id, hex: the key to upsert by.
    pub id: String,
    /// Which way the money went.
    pub direction: Direction,
    /// How it was paid.
    pub method: Method,
    /// The contract the payment is for: set by us when we pay, read from the
    /// payment's TLV when we are paid.
    pub contract: Option<ContractId>,
    /// The counterparty node id (hex) where we know it: the payee of a
    /// keysend or invoice we paid. `None` for payments we received.
    pub counterparty: Option<String>,
    /// Amount that reached the payee, in millisatoshi. `None` only for an
    /// outbound payment whose amount is not known yet.
    pub amount_msat: Option<u64>,
    /// Routing fees we paid (outbound and succeeded only).
    pub fee_msat: Option<u64>,
    /// Where the payment stands.
    pub status: Status,
    /// Why it failed, in words, when it did.
    pub failure: Option<String>,
    /// Unix seconds of the last change.
    pub updated_at: u64,
}

/// The error a [`PaymentLedger`] returns when it could not store a record.
/// The record is offered again later: nothing is acknowledged to ldk-node
/// until the ledger has it.
#[derive(Debug, thiserror::Error)]
#[error("payment ledger could not store payment {payment_id}: {reason}")]
pub struct LedgerSinkError {
    /// The payment that was not stored.
    pub payment_id: String,
    /// Why, in words.
    pub reason: String,
}

/// Where payment records go: the engine implements this over MANIFEST.db.
///
/// Called from bunker-ln's event thread, in the order changes happen, with
/// the merged record (never a step backwards from succeeded/failed to
/// pending). Must be idempotent: the same record can arrive twice after a
/// crash. Should return quickly; the event thread waits for it.
pub trait PaymentLedger: Send + Sync + 'static {
    /// Store (insert or update) the record.
    fn record(&self, record: &PaymentRecord) -> Result<(), LedgerSinkError>;
}

/// A ledger that keeps nothing beyond bunker-ln's own store: for tools and
/// tests that read [`crate::Lightning::payments`] instead.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoExternalLedger;

impl PaymentLedger for NoExternalLedger {
    fn record(&self, _record: &PaymentRecord) -> Result<(), LedgerSinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldk_node::CustomTlvRecord;

    #[test]
    fn contract_id_is_read_only_from_its_own_tlv_with_exactly_32_bytes() {
        let id = ContractId([0x5A; 32]);
        let good = CustomTlvRecord {
            type_num: CONTRACT_TLV_TYPE,
            value: id.0.to_vec(),
        };
        let other_type = CustomTlvRecord {
            type_num: CONTRACT_TLV_TYPE + 2,
            value: vec![1; 32],
        };
        let short = CustomTlvRecord {
            type_num: CONTRACT_TLV_TYPE,
            value: vec![1; 31],
        };
        let long = CustomTlvRecord {
            type_num: CONTRACT_TLV_TYPE,
            value: vec![1; 33],
        };
        assert_eq!(ContractId::from_custom_records(&[other_type.clone(), good]), Some(id));
        assert_eq!(ContractId::from_custom_records(&[other_type]), None);
        assert_eq!(ContractId::from_custom_records(&[short]), None);
        assert_eq!(ContractId::from_custom_records(&[long]), None);
        assert_eq!(ContractId::from_custom_records(&[]), None);
    }

    #[test]
    fn contract_id_text_round_trips_and_bad_text_is_named() {
        let id = ContractId([0xAB; 32]);
        assert_eq!(id.to_string().parse::<ContractId>().unwrap(), id);
        let err = "abc".parse::<ContractId>().unwrap_err();
        assert!(err.to_string().contains("\"abc\""), "{err}");
        let long = "z".repeat(500);
        let err = long.parse::<ContractId>().unwrap_err();
        assert_eq!(err.text.len(), 80, "a peer's text is cut before it reaches a log line");
    }

    #[test]
    fn records_serialise_with_readable_names() {
        let r = PaymentRecord {
            id: "00".into(),
            direction: Direction::Inbound,
            method: Method::Bolt12,
            contract: None,
            counterparty: None,
            amount_msat: Some(5),
            fee_msat: None,
            status: Status::Succeeded,
            failure: None,
            updated_at: 1,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains("\"inbound\"") && json.contains("\"bolt12\"") && json.contains("\"succeeded\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<PaymentRecord>(&json).unwrap(), r);
    }
}
