//! ldk-node's events turned into ledger records.
//!
//! An event is acknowledged to ldk-node only after bunker-ln's store and the
//! engine's ledger both took its record; until then ldk-node keeps it and
//! offers it again, so an outcome is never lost, only repeated.

use std::sync::Arc;
use std::time::Duration;

use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::payment::PaymentKind;
use ldk_node::Event;

use crate::ledger::{ContractId, Direction, LedgerSinkError, Method, PaymentRecord, Status};
use crate::node::{Inner, LnEvent};
use crate::store::now_secs;

pub(crate) fn method_of(kind: &PaymentKind) -> Option<Method> {
    match kind {
        PaymentKind::Spontaneous { .. } => Some(Method::Keysend),
        PaymentKind::Bolt11 { .. } | PaymentKind::Bolt11Jit { .. } => Some(Method::Bolt11),
        PaymentKind::Bolt12Offer { .. } | PaymentKind::Bolt12Refund { .. } => Some(Method::Bolt12),
        _ => None,
    }
}

pub(crate) fn payment_id_hex(id: &PaymentId) -> String {
    hex::encode(id.0)
}

pub(crate) fn parse_payment_id(id: &str) -> Option<PaymentId> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(id, &mut b).ok()?;
    Some(PaymentId(b))
}

impl Inner {
    /// The ledger record of an outbound payment's outcome: what we recorded
    /// when sending (method, contract, payee) completed from ldk-node's store.
    /// A failed payment paid no fee, whatever the store says.
    fn outbound_outcome(
        &self,
        pid: &PaymentId,
        status: Status,
        fee_from_event: Option<u64>,
        failure: Option<String>,
        now: u64,
    ) -> PaymentRecord {
        let details = self.node.payment(pid);
        let known = self.store.get(&payment_id_hex(pid)).ok().flatten();
        let fee_msat = match status {
            Status::Failed => None,
            _ => fee_from_event.or_else(|| details.as_ref().and_then(|d| d.fee_paid_msat)),
        };
        PaymentRecord {
            id: payment_id_hex(pid),
            direction: Direction::Outbound,
            method: known
                .as_ref()
                .map(|k| k.method)
                .or_else(|| details.as_ref().and_then(|d| method_of(&d.kind)))
                .unwrap_or(Method::Keysend),
            contract: known.as_ref().and_then(|k| k.contract),
            counterparty: known.as_ref().and_then(|k| k.counterparty.clone()),
            amount_msat: details.as_ref().and_then(|d| d.amount_msat),
            fee_msat,
            status,
            failure,
            updated_at: now,
        }
    }

    /// The ledger record an ldk-node event stands for, if any.
    fn record_of(&self, event: &Event) -> Option<PaymentRecord> {
        let now = now_secs();
        match event {
            Event::PaymentSuccessful {
                payment_id,
                payment_hash,
                fee_paid_msat,
                ..
            } => {
                let pid = payment_id.unwrap_or(PaymentId(payment_hash.0));
                Some(self.outbound_outcome(&pid, Status::Succeeded, *fee_paid_msat, None, now))
            }
            Event::PaymentFailed {
                payment_id,
                payment_hash,
                reason,
            } => {
                let pid = payment_id.or_else(|| payment_hash.map(|h| PaymentId(h.0)))?;
                let failure = reason.map(|r| format!("{r:?}")).unwrap_or_else(|| "unknown".into());
                Some(self.outbound_outcome(&pid, Status::Failed, None, Some(failure), now))
            }
            Event::PaymentReceived {
                payment_id,
                payment_hash,
                amount_msat,
                custom_records,
            } => {
                let pid = payment_id.unwrap_or(PaymentId(payment_hash.0));
                let details = self.node.payment(&pid);
                Some(PaymentRecord {
                    id: payment_id_hex(&pid),
                    direction: Direction::Inbound,
                    method: details
                        .as_ref()
                        .and_then(|d| method_of(&d.kind))
                        .unwrap_or(Method::Keysend),
                    contract: ContractId::from_custom_records(custom_records),
                    counterparty: None,
                    amount_msat: Some(*amount_msat),
                    fee_msat: None,
                    status: Status::Succeeded,
                    failure: None,
                    updated_at: now,
                })
            }
            _ => None,
        }
    }

    /// Handles one event; `Err` means "not done, offer it again later".
    fn handle(&self, event: &Event) -> Result<(), LedgerSinkError> {
        if let Some(rec) = self.record_of(event) {
            self.record_for_event(&rec)?;
            return Ok(());
        }
        let lnev = match event {
            Event::ChannelReady {
                user_channel_id,
                counterparty_node_id,
                ..
            } => Some(LnEvent::ChannelReady {
                user_channel_id: user_channel_id.0,
                counterparty: counterparty_node_id.map(|n| n.to_string()),
            }),
            Event::ChannelClosed {
                user_channel_id,
                counterparty_node_id,
                reason,
                ..
            } => Some(LnEvent::ChannelClosed {
                user_channel_id: user_channel_id.0,
                counterparty: counterparty_node_id.map(|n| n.to_string()),
                reason: reason.as_ref().map(|r| r.to_string()),
            }),
            _ => None,
        };
        if let Some(e) = lnev {
            let _ = self.events.send(e);
        }
        self.bump();
        Ok(())
    }

    pub(crate) fn event_loop(self: Arc<Self>, stop: Arc<tokio::sync::Notify>) {
        // Only waits for the next event here; ldk-node's own calls
        // (event_handled) run outside this runtime, on ldk-node's.
        let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the event runtime; payments will not be recorded");
                return;
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let event = rt.block_on(async {
                tokio::select! {
                    _ = stop.notified() => None,
                    e = self.node.next_event_async() => Some(e),
                }
            });
            let Some(event) = event else { return };
            match self.handle(&event) {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    if let Err(e) = self.node.event_handled() {
                        tracing::error!(error = %e, "ldk-node could not mark an event handled");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "event not recorded; retrying");
                    let stopped = rt.block_on(async {
                        tokio::select! {
                            _ = stop.notified() => true,
                            _ = tokio::time::sleep(backoff) => false,
                        }
                    });
                    if stopped {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
