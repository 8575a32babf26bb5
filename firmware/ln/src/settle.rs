//! What the box owes its hosts, per contract, and paying it in batches.
//!
//! Routing fees (about 1 sat per hop) would eat micro-payments, so amounts
//! accrue durably and go out as one keysend per contract once past the
//! threshold. An amount leaves "owed" only together with the record of the
//! payment that carries it, and comes back if that payment fails.

use std::str::FromStr;

use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning_types::payment::{PaymentHash, PaymentPreimage};

use crate::chain::ChainError;
use crate::events::{parse_payment_id, payment_id_hex};
use crate::ledger::{ContractId, PaymentRecord, Status};
use crate::node::{Inner, Lightning, NodeId};
use crate::pay::failed;
use crate::store::{now_secs, OweError, Owed, Store, StoreError};

/// What one settlement round did.
#[derive(Debug, Default)]
pub struct SettleReport {
    /// Settlements handed to ldk-node: (contract, payment id, amount msat).
    /// Their outcome arrives as ledger records.
    pub sent: Vec<(ContractId, String, u64)>,
    /// Settlements ldk-node refused at once; their amounts are owed again.
    pub refused: Vec<(ContractId, String)>,
    /// Set when nothing was tried because the chain source is not usable;
    /// everything owed stays owed.
    pub deferred: Option<ChainError>,
}

/// Amounts owed per contract, usable while the node is not running (chain
/// source down, before start): the engine keeps accruing here and the node
/// settles when it can.
pub struct OwedBook {
    store: Store,
}

impl OwedBook {
    /// Opens the book in the Lightning data dir.
    pub fn open(data_dir: &std::path::Path) -> Result<OwedBook, StoreError> {
        Ok(OwedBook {
            store: Store::open(data_dir)?,
        })
    }

    /// Adds to what `contract` owes `payee`; returns the total not yet sent.
    pub fn owe(&self, contract: ContractId, payee: &NodeId, amount_msat: u64) -> Result<u64, OweError> {
        self.store.owe(contract, &payee.to_string(), amount_msat)
    }

    /// Everything owed and in flight, per contract.
    pub fn owed(&self) -> Result<Vec<Owed>, StoreError> {
        self.store.owed()
    }

    /// The ledger as stored.
    pub fn payments(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        self.store.payments()
    }
}

impl Lightning {
    /// Adds `amount_msat` to what `contract` owes `payee` (durably). Call
    /// [`Lightning::settle_due`] to pay what has passed the threshold.
    pub fn owe(&self, contract: ContractId, payee: &NodeId, amount_msat: u64) -> Result<u64, OweError> {
        let total = self.inner.store.owe(contract, &payee.to_string(), amount_msat)?;
        self.inner.bump();
        Ok(total)
    }

    /// Everything owed and in flight, per contract.
    pub fn owed(&self) -> Result<Vec<Owed>, StoreError> {
        self.inner.store.owed()
    }

    /// The largest single payment that can leave towards `payee` now: over
    /// a direct channel if there is one, else over the best first hop.
    fn largest_payment_to(&self, payee: &NodeId) -> u64 {
        let channels = self.inner.node.list_channels();
        let usable = channels.iter().filter(|c| c.is_usable);
        let direct = usable
            .clone()
            .filter(|c| c.counterparty_node_id == *payee)
            .map(|c| c.next_outbound_htlc_limit_msat)
            .max();
        direct.unwrap_or_else(|| usable.map(|c| c.next_outbound_htlc_limit_msat).max().unwrap_or(0))
    }

    /// Pays every contract whose amount owed has reached the settle
    /// threshold, each by one keysend carrying the contract id, for exactly
    /// the amount owed (split over rounds when it is more than one payment
    /// can carry now). Does nothing (and says why) while the chain source is
    /// unusable.
    ///
    /// A settlement ldk-node refuses outright stays in the ledger as failed
    /// (the attempt happened, and its amount is owed again) even where
    /// ldk-node itself kept no record of it.
    pub fn settle_due(&self) -> Result<SettleReport, StoreError> {
        let mut report = SettleReport::default();
        if let Err(e) = self.chain_status() {
            tracing::warn!(error = %e, "settlements deferred");
            report.deferred = Some(e);
            return Ok(report);
        }
        let threshold = self.inner.config.settle_threshold_msat.max(1);
        for owed in self.inner.store.owed()? {
            let contract = owed.contract;
            if owed.owed_msat == 0 || owed.owed_msat < threshold {
                continue;
            }
            let payee = match NodeId::from_str(&owed.payee) {
                Ok(p) => p,
                Err(e) => {
                    report
                        .refused
                        .push((contract, format!("payee {} is not a node id: {e}", owed.payee)));
                    continue;
                }
            };
            let max_msat = self.largest_payment_to(&payee);
            if max_msat == 0 {
                report
                    .refused
                    .push((contract, format!("no usable channel can pay node {payee} now")));
                continue;
            }
            let preimage = PaymentPreimage(rand::random::<[u8; 32]>());
            let id = payment_id_hex(&PaymentId(PaymentHash::from(preimage).0));
            let Some((settlement, pending)) = self.inner.store.begin_settlement(contract, threshold, max_msat, &id)?
            else {
                continue;
            };
            self.inner.announce(&pending);
            match self.send_keysend(payee, settlement.amount_msat, Some(contract), preimage) {
                Ok(()) => {
                    self.inner.store.settlement_sent(&id)?;
                    tracing::info!(%contract, amount_msat = settlement.amount_msat, payment = %id, "settlement sent");
                    report.sent.push((contract, id, settlement.amount_msat));
                }
                Err(e) => {
                    tracing::warn!(%contract, error = %e, "settlement refused; amount owed again");
                    self.inner.record(&failed(&pending, &e.to_string()))?;
                    report.refused.push((contract, e.to_string()));
                }
            }
        }
        Ok(report)
    }
}

impl Inner {
    /// After a crash: settlements taken out of `owed` but never handed to
    /// ldk-node are owed again; those ldk-node knows follow its store.
    pub(crate) fn recover_settlements(&self) {
        let unresolved = match self.store.unresolved_settlements() {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "cannot read unresolved settlements");
                return;
            }
        };
        for (id, _handed_over) in unresolved {
            let Some(pid) = parse_payment_id(&id) else { continue };
            let Some(rec) = self.store.get(&id).ok().flatten() else {
                continue;
            };
            let outcome = match self.node.payment(&pid) {
                None => Some(failed(&rec, "never sent (interrupted before ldk-node had it)")),
                Some(d) if d.status == ldk_node::payment::PaymentStatus::Succeeded => Some(PaymentRecord {
                    status: Status::Succeeded,
                    fee_msat: d.fee_paid_msat,
                    updated_at: now_secs(),
                    ..rec.clone()
                }),
                Some(d) if d.status == ldk_node::payment::PaymentStatus::Failed => Some(failed(&rec, "failed")),
                Some(_) => None,
            };
            if let Some(o) = outcome {
                if let Err(e) = self.record(&o) {
                    tracing::error!(error = %e, payment = %id, "cannot resolve settlement");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_book_works_without_a_node() {
        let dir = tempfile::tempdir().unwrap();
        let book = OwedBook::open(dir.path()).unwrap();
        let payee = NodeId::from_str("02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619").unwrap();
        let c = ContractId([1; 32]);
        assert_eq!(book.owe(c, &payee, 123).unwrap(), 123);
        assert_eq!(book.owe(c, &payee, 877).unwrap(), 1000);
        drop(book);
        let book = OwedBook::open(dir.path()).unwrap();
        assert_eq!(book.owed().unwrap()[0].owed_msat, 1000);
    }
}
