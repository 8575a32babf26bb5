//! Lightning under the engine: start-up (retried while the chain source is
//! away) and the payment ledger in MANIFEST.db.
//!
//! bunker-ln hands every payment change to a [`PaymentLedger`]; ours writes
//! it into the manifest's `payments` table, so the admin page and the
//! manifest snapshots carry the box's payment history. Records can arrive
//! twice (after a crash, or from [`Lightning::replay_ledger`] at start): the
//! same record twice leaves one row in the same state.

use std::sync::Arc;
use std::time::Duration;

use bunker_ln::{Direction, LedgerSinkError, LnConfig, Lightning, PaymentLedger, PaymentRecord, Status};
use bunker_manifest::{
    ContractId, Manifest, NewPayment, PaymentDirection, PaymentId, PaymentState, QueryError, MAX_REASON_LEN,
};
use tokio::task::JoinHandle;

use crate::db::Db;
use crate::node::{Inner, LnState};

/// First wait before starting Lightning again after a failed start.
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// Longest wait between two start attempts.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Starts Lightning in the background when it is configured: the box serves
/// storage meanwhile, and while the chain source cannot be reached the state
/// stays `Starting(reason)` and the start is retried with backoff (5 s
/// doubling to 5 min) until it works or the engine stops.
pub(crate) fn start_lightning(inner: Arc<Inner>, config: Option<LnConfig>) -> Vec<JoinHandle<()>> {
    let Some(config) = config else {
        inner.set_ln_state(LnState::Off);
        return Vec::new();
    };
    inner.set_ln_state(LnState::Starting("starting".into()));
    vec![tokio::spawn(run(inner, config))]
}

async fn run(inner: Arc<Inner>, config: LnConfig) {
    let mut stop = inner.stop.clone();
    let mut backoff = FIRST_RETRY;
    loop {
        if *stop.borrow() {
            return;
        }
        let (i, cfg) = (Arc::clone(&inner), config.clone());
        let started = tokio::task::spawn_blocking(move || {
            let ledger = Arc::new(ManifestLedger { db: i.db.clone() });
            Lightning::start(cfg, &i.seed, ledger)
        })
        .await;
        let reason = match started {
            Ok(Ok(ln)) => {
                let ln = Arc::new(ln);
                let l = Arc::clone(&ln);
                match tokio::task::spawn_blocking(move || l.replay_ledger()).await {
                    Ok(Ok(n)) => tracing::info!(records = n, "payment ledger replayed into MANIFEST.db"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "payment ledger replay incomplete; retried on the next start"),
                    Err(e) => tracing::warn!(error = %e, "payment ledger replay task failed"),
                }
                if *stop.borrow() {
                    // The engine stopped while we were starting: do not leave a node running.
                    if let Ok(ln) = Arc::try_unwrap(ln) {
                        let _ = tokio::task::spawn_blocking(move || ln.stop()).await;
                    }
                    return;
                }
                tracing::info!(node_id = %ln.node_id(), "Lightning running");
                inner.set_ln_state(LnState::Running(ln));
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the start task failed: {e}"),
        };
        tracing::warn!(reason = %reason, retry_in = ?backoff, "Lightning did not start; storage keeps working");
        inner.set_ln_state(LnState::Starting(format!("{reason} (retrying in {}s)", backoff.as_secs())));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_RETRY);
    }
}

/// bunker-ln's payment records into MANIFEST.db.
pub(crate) struct ManifestLedger {
    pub(crate) db: Db,
}

impl PaymentLedger for ManifestLedger {
    fn record(&self, record: &PaymentRecord) -> Result<(), LedgerSinkError> {
        // bunker-ln calls this from its own event thread: blocking is fine.
        self.db.call_blocking(|m| record_payment(m, record)).map_err(|e| LedgerSinkError {
            payment_id: record.id.clone(),
            reason: e.to_string(),
        })
    }
}

/// The manifest's key for a bunker-ln payment id (64 hex digits); any other
/// text is hashed so it still gets one stable key.
fn payment_id(id: &str) -> PaymentId {
    let mut out = [0u8; 32];
    match hex::decode_to_slice(id, &mut out) {
        Ok(()) => PaymentId(out),
        Err(_) => PaymentId(*blake3::hash(id.as_bytes()).as_bytes()),
    }
}

/// Inserts or advances one payment. Idempotent: a repeated record is a no-op.
pub(crate) fn record_payment(m: &mut Manifest, r: &PaymentRecord) -> Result<(), QueryError> {
    let id = payment_id(&r.id);
    let direction = match r.direction {
        Direction::Outbound => PaymentDirection::Outgoing,
        Direction::Inbound => PaymentDirection::Incoming,
    };
    let at = i64::try_from(r.updated_at).unwrap_or(i64::MAX);
    let contract = r.contract.map(|c| ContractId(c.0));
    let mut new = NewPayment {
        id,
        direction,
        amount_msat: r.amount_msat.unwrap_or(0),
        contract,
        payment_hash: None,
        created_at: at,
    };
    if m.payment(&id)?.is_none() {
        match m.insert_payment(&new) {
            Ok(()) | Err(QueryError::AlreadyExists { .. }) => {}
            // A payer can name any contract in its TLV: keep the payment,
            // drop a link to a contract we do not have.
            Err(QueryError::NotFound { .. }) if new.contract.is_some() => {
                tracing::warn!(payment = %r.id, contract = ?r.contract, "payment names an unknown contract; recorded without it");
                new.contract = None;
                match m.insert_payment(&new) {
                    Ok(()) | Err(QueryError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    let state = match r.status {
        Status::Pending => return Ok(()),
        Status::Succeeded => PaymentState::Succeeded,
        Status::Failed => PaymentState::Failed,
    };
    let mut reason = r.failure.clone().unwrap_or_default();
    if reason.len() > MAX_REASON_LEN {
        let mut cut = MAX_REASON_LEN;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    match m.finish_payment(&id, state, r.fee_msat, &reason, at) {
        Ok(()) => {}
        // bunker-ln never moves a payment back; if the manifest already has
        // another final state (restored from an older snapshot and replayed),
        // the first outcome stands and retrying would not change it.
        Err(QueryError::InvalidTransition { what, from, to }) => {
            tracing::warn!(%what, %from, %to, "payment outcome conflicts with the manifest; kept the recorded one");
        }
        Err(e) => return Err(e),
    }
    // What we paid on a contract of ours: its last payment time, for the views.
    if let (Direction::Outbound, Status::Succeeded, Some(c)) = (r.direction, r.status, contract) {
        if let Err(e) = m.settle_owed(&c, r.amount_msat.unwrap_or(0), at) {
            tracing::debug!(contract = %hex::encode(c.0), error = %e, "payment for a contract not in the manifest");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status) -> PaymentRecord {
        PaymentRecord {
            id: "ab".repeat(32),
            direction: Direction::Inbound,
            method: bunker_ln::Method::Keysend,
            contract: Some(bunker_ln::ContractId([7; 32])),
            counterparty: None,
            amount_msat: Some(12_345),
            fee_msat: None,
            status,
            failure: None,
            updated_at: 1_700_000_000,
        }
    }

    #[test]
    fn same_record_twice_is_one_payment_and_unknown_contracts_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
        record_payment(&mut m, &record(Status::Pending)).unwrap();
        record_payment(&mut m, &record(Status::Succeeded)).unwrap();
        record_payment(&mut m, &record(Status::Succeeded)).unwrap();
        let p = m.payment(&payment_id(&"ab".repeat(32))).unwrap().expect("recorded");
        assert_eq!(p.state, PaymentState::Succeeded);
        assert_eq!(p.direction, PaymentDirection::Incoming);
        assert_eq!(p.amount_msat, 12_345);
        assert_eq!(p.contract, None, "contract 0707… is not in this manifest");
        assert_eq!(m.payments_total_msat(PaymentDirection::Incoming).unwrap(), 12_345);
        // A later conflicting outcome does not fail the ledger (it would be retried forever).
        record_payment(&mut m, &record(Status::Failed)).unwrap();
        assert_eq!(m.payment(&p.id).unwrap().unwrap().state, PaymentState::Succeeded);
    }
}
