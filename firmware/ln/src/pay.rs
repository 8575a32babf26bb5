//! Paying and being paid: keysend with a contract id, BOLT11, BOLT12.
//!
//! Everything a person or a peer hands us (invoice text, offer text,
//! amounts) is checked here before ldk-node sees it, so a bad one is refused
//! with a clear error and leaves no trace in either ledger.

use std::str::FromStr;

use ldk_node::bitcoin::constants::ChainHash;
use ldk_node::bitcoin::hashes::Hash as _;
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning::offers::offer::{Amount as OfferAmount, Offer};
use ldk_node::lightning::routing::router::RouteParametersConfig;
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use ldk_node::lightning_types::payment::{PaymentHash, PaymentPreimage};
use ldk_node::CustomTlvRecord;

use crate::error::{PayError, ReceiveError};
use crate::events::payment_id_hex;
use crate::ledger::{ContractId, Direction, Method, PaymentRecord, Status, CONTRACT_TLV_TYPE};
use crate::node::{Lightning, NodeId};
use crate::store::{now_secs, MAX_MSAT};

/// Longest invoice or offer text accepted: real ones are well under 2 KiB.
pub const MAX_PAYMENT_TEXT: usize = 4096;

/// An invoice or offer as pasted, trimmed; refused past [`MAX_PAYMENT_TEXT`]
/// before any parser sees it.
fn pasted_text<'a>(what: &'static str, text: &'a str) -> Result<&'a str, PayError> {
    let text = text.trim();
    if text.len() > MAX_PAYMENT_TEXT {
        return Err(PayError::TooLong { what, len: text.len(), max: MAX_PAYMENT_TEXT });
    }
    Ok(text)
}

/// The error for an invoice or offer that expired at `at` (since the Unix
/// epoch), saying how long ago.
fn expired(what: &'static str, at: Option<std::time::Duration>) -> PayError {
    let ago_secs = at
        .map(|at| std::time::SystemTime::UNIX_EPOCH + at)
        .and_then(|at| at.elapsed().ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PayError::Expired { what, ago_secs }
}

/// BOLT11's limit on a description.
const MAX_DESCRIPTION: usize = 639;

impl Lightning {
    pub(crate) fn check_amount(&self, amount_msat: u64) -> Result<(), PayError> {
        if amount_msat == 0 || amount_msat > MAX_MSAT {
            return Err(PayError::InvalidAmount { amount_msat });
        }
        let sendable_msat = self.sendable_msat();
        if amount_msat > sendable_msat {
            return Err(PayError::OverChannelLimit {
                amount_msat,
                sendable_msat,
            });
        }
        Ok(())
    }

    fn route_params(&self, amount_msat: u64) -> RouteParametersConfig {
        let max_fee = (amount_msat as u128 * self.inner.config.max_fee_ppm as u128 / 1_000_000) as u64;
        RouteParametersConfig {
            max_total_routing_fee_msat: Some(max_fee),
            ..Default::default()
        }
    }

    /// Pays `amount_msat` to `payee` by keysend, with `contract` in the
    /// payment's TLV so the host can tell what it is for. Returns the payment
    /// id; the outcome arrives as a ledger record.
    pub fn pay_keysend(
        &self,
        payee: NodeId,
        amount_msat: u64,
        contract: Option<ContractId>,
    ) -> Result<String, PayError> {
        self.check_amount(amount_msat)?;
        let preimage = PaymentPreimage(rand::random::<[u8; 32]>());
        let id = payment_id_hex(&PaymentId(PaymentHash::from(preimage).0));
        let rec = PaymentRecord {
            id: id.clone(),
            direction: Direction::Outbound,
            method: Method::Keysend,
            contract,
            counterparty: Some(payee.to_string()),
            amount_msat: Some(amount_msat),
            fee_msat: None,
            status: Status::Pending,
            failure: None,
            updated_at: now_secs(),
        };
        match self.send_keysend(payee, amount_msat, contract, preimage) {
            Ok(()) => {
                // The outcome may already be stored (events are fast); the
                // merge keeps it and adds what only we know (the contract).
                self.inner.record(&rec)?;
                Ok(id)
            }
            Err(e) => {
                if sent_and_failed(&e) {
                    self.inner.record(&failed(&rec, &e.to_string()))?;
                }
                Err(PayError::Node(e))
            }
        }
    }

    pub(crate) fn send_keysend(
        &self,
        payee: NodeId,
        amount_msat: u64,
        contract: Option<ContractId>,
        preimage: PaymentPreimage,
    ) -> Result<(), ldk_node::NodeError> {
        let tlvs = contract
            .map(|c| {
                vec![CustomTlvRecord {
                    type_num: CONTRACT_TLV_TYPE,
                    value: c.0.to_vec(),
                }]
            })
            .unwrap_or_default();
        self.inner
            .node
            .spontaneous_payment()
            .send_with_preimage_and_custom_tlvs(
                amount_msat,
                payee,
                tlvs,
                preimage,
                Some(self.route_params(amount_msat)),
            )
            .map(|_| ())
    }

    /// A BOLT11 invoice for `amount_msat`, valid for `expiry_secs`.
    pub fn invoice(&self, amount_msat: u64, description: &str, expiry_secs: u32) -> Result<String, ReceiveError> {
        if amount_msat == 0 || amount_msat > MAX_MSAT {
            return Err(ReceiveError::InvalidAmount { amount_msat });
        }
        let description = Description::new(description.to_string()).map_err(|_| ReceiveError::DescriptionTooLong {
            len: description.len(),
            max: MAX_DESCRIPTION,
        })?;
        self.inner
            .node
            .bolt11_payment()
            .receive(amount_msat, &Bolt11InvoiceDescription::Direct(description), expiry_secs)
            .map(|i| i.to_string())
            .map_err(|source| ReceiveError::Node {
                what: "invoice",
                source,
            })
    }

    /// A BOLT11 invoice paid through the configured LSPS2 provider, which
    /// opens a channel to us just in time and keeps at most
    /// `max_lsp_fee_msat` (if given) of the payment.
    pub fn invoice_via_lsp(
        &self,
        amount_msat: u64,
        description: &str,
        expiry_secs: u32,
        max_lsp_fee_msat: Option<u64>,
    ) -> Result<String, ReceiveError> {
        if self.inner.config.lsps2.is_none() {
            return Err(ReceiveError::NoLiquiditySource);
        }
        if amount_msat == 0 || amount_msat > MAX_MSAT {
            return Err(ReceiveError::InvalidAmount { amount_msat });
        }
        let description = Description::new(description.to_string()).map_err(|_| ReceiveError::DescriptionTooLong {
            len: description.len(),
            max: MAX_DESCRIPTION,
        })?;
        self.inner
            .node
            .bolt11_payment()
            .receive_via_jit_channel(
                amount_msat,
                &Bolt11InvoiceDescription::Direct(description),
                expiry_secs,
                max_lsp_fee_msat,
            )
            .map(|i| i.to_string())
            .map_err(|source| ReceiveError::Node {
                what: "invoice through the LSP",
                source,
            })
    }

    /// A BOLT12 offer; `None` lets the payer choose the amount.
    pub fn offer(&self, amount_msat: Option<u64>, description: &str) -> Result<String, ReceiveError> {
        let p = self.inner.node.bolt12_payment();
        let offer = match amount_msat {
            Some(a) if a == 0 || a > MAX_MSAT => return Err(ReceiveError::InvalidAmount { amount_msat: a }),
            Some(a) => p.receive(a, description, None, None),
            None => p.receive_variable_amount(description, None),
        };
        offer
            .map(|o| o.to_string())
            .map_err(|source| ReceiveError::Node { what: "offer", source })
    }

    /// Pays a BOLT11 invoice (text as pasted). `amount_msat` is needed only
    /// when the invoice names none.
    pub fn pay_invoice(&self, text: &str, amount_msat: Option<u64>) -> Result<String, PayError> {
        let text = pasted_text("invoice", text)?;
        let invoice =
            Bolt11Invoice::from_str(text).map_err(|e| PayError::MalformedInvoice { reason: e.to_string() })?;
        let ours = self.inner.config.network;
        if invoice.network() != ours.to_ldk() {
            return Err(PayError::WrongNetwork {
                what: "invoice",
                found: invoice.network().to_string(),
                expected: ours,
            });
        }
        if invoice.is_expired() {
            return Err(expired("invoice", invoice.expires_at()));
        }
        let amount = match (invoice.amount_milli_satoshis(), amount_msat) {
            (Some(a), _) => a,
            (None, Some(a)) => a,
            (None, None) => return Err(PayError::NoAmount { what: "invoice" }),
        };
        self.check_amount(amount)?;
        let id = payment_id_hex(&PaymentId(*invoice.payment_hash().as_byte_array()));
        let rec = PaymentRecord {
            id: id.clone(),
            direction: Direction::Outbound,
            method: Method::Bolt11,
            contract: None,
            counterparty: Some(invoice.recover_payee_pub_key().to_string()),
            amount_msat: Some(amount),
            fee_msat: None,
            status: Status::Pending,
            failure: None,
            updated_at: now_secs(),
        };
        let p = self.inner.node.bolt11_payment();
        let params = Some(self.route_params(amount));
        let sent = match invoice.amount_milli_satoshis() {
            Some(_) => p.send(&invoice, params),
            None => p.send_using_amount(&invoice, amount, params),
        };
        match sent {
            Ok(_) => {
                self.inner.record(&rec)?;
                Ok(id)
            }
            Err(e) => {
                if sent_and_failed(&e) {
                    self.inner.record(&failed(&rec, &e.to_string()))?;
                }
                Err(PayError::Node(e))
            }
        }
    }

    /// Pays a BOLT12 offer (text as pasted). `amount_msat` is needed only
    /// when the offer names none.
    pub fn pay_offer(&self, text: &str, amount_msat: Option<u64>) -> Result<String, PayError> {
        let text = pasted_text("offer", text)?;
        let offer = Offer::from_str(text).map_err(|e| PayError::MalformedOffer {
            reason: format!("{e:?}"),
        })?;
        let ours = self.inner.config.network;
        if !offer.supports_chain(ChainHash::using_genesis_block(ours.to_ldk())) {
            let found = offer
                .chains()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(PayError::WrongNetwork {
                what: "offer",
                found: format!("chain {found}"),
                expected: ours,
            });
        }
        if offer.is_expired() {
            return Err(expired("offer", offer.absolute_expiry()));
        }
        let offer_amount = match offer.amount() {
            Some(OfferAmount::Bitcoin { amount_msats }) => Some(amount_msats),
            Some(_) => {
                return Err(PayError::MalformedOffer {
                    reason: "the offer is priced in a currency, not bitcoin".into(),
                })
            }
            None => None,
        };
        let amount = match (offer_amount, amount_msat) {
            (Some(a), _) => a,
            (None, Some(a)) => a,
            (None, None) => return Err(PayError::NoAmount { what: "offer" }),
        };
        self.check_amount(amount)?;
        let p = self.inner.node.bolt12_payment();
        let params = Some(self.route_params(amount));
        let sent = match offer_amount {
            Some(_) => p.send(&offer, None, None, params),
            None => p.send_using_amount(&offer, amount, None, None, params),
        };
        let id = match sent {
            Ok(id) => payment_id_hex(&id),
            Err(e) => return Err(PayError::Node(e)),
        };
        let rec = PaymentRecord {
            id: id.clone(),
            direction: Direction::Outbound,
            method: Method::Bolt12,
            contract: None,
            counterparty: None,
            amount_msat: Some(amount),
            fee_msat: None,
            status: Status::Pending,
            failure: None,
            updated_at: now_secs(),
        };
        self.inner.record(&rec)?;
        Ok(id)
    }
}

/// ldk-node stores a payment as failed when sending it failed
/// (`PaymentSendingFailed`); for any other refusal (duplicate, not running,
/// bad TLVs) it stores nothing, and neither does the ledger.
fn sent_and_failed(e: &ldk_node::NodeError) -> bool {
    matches!(e, ldk_node::NodeError::PaymentSendingFailed)
}

pub(crate) fn failed(rec: &PaymentRecord, reason: &str) -> PaymentRecord {
    PaymentRecord {
        status: Status::Failed,
        failure: Some(reason.to_string()),
        updated_at: now_secs(),
        ..rec.clone()
    }
}
