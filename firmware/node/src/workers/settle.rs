//! Settlement: every `config.settle_interval`, pay what is owed to hosts
//! past bunker-ln's threshold (`Lightning::settle_due`: one keysend per
//! contract, carrying the contract id).
//!
//! Amounts owed live in bunker-ln's store (its `OwedBook` while the node is
//! not running), never here: with Lightning off or its chain source away
//! nothing is paid and nothing owed is lost — the next round after Lightning
//! comes up pays it.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::node::{Inner, LnState};
use crate::workers::Worker;

/// Starts the settle loop.
pub(crate) fn spawn(inner: Arc<Inner>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let w = Worker::new(&inner, "settle");
        w.set_state("waiting for the first round");
        while w.sleep(&inner, inner.config.settle_interval).await {
            round(&inner, &w).await;
        }
        w.set_state("stopped");
    })
}

/// One settlement round.
async fn round(inner: &Arc<Inner>, w: &Worker) {
    let ln = match inner.ln_state() {
        LnState::Running(ln) => ln,
        LnState::Off => {
            w.done("Lightning is off: nothing is paid, amounts owed are kept");
            return;
        }
        LnState::Starting(why) => {
            w.done(format!("waiting for Lightning ({why}): amounts owed are kept"));
            return;
        }
    };
    let _permit = inner.workers.throttle().background().await;
    w.set_state("settling");
    match tokio::task::spawn_blocking(move || ln.settle_due()).await {
        Ok(Ok(report)) => {
            if let Some(e) = &report.deferred {
                tracing::info!(error = %e, "settlement deferred: chain source unusable");
                w.done(format!("deferred, chain source unusable: {e}"));
                return;
            }
            let paid: u64 = report.sent.iter().map(|(_, _, msat)| msat).sum();
            for (contract, id, msat) in &report.sent {
                tracing::info!(%contract, payment = %id, msat, "settlement sent");
            }
            for (contract, why) in &report.refused {
                tracing::warn!(%contract, reason = %why, "settlement refused; amount stays owed");
            }
            w.done(format!(
                "{} settlement(s) sent ({paid} msat), {} refused",
                report.sent.len(),
                report.refused.len()
            ));
        }
        Ok(Err(e)) => w.set_error(format!("settlement store: {e}")),
        Err(e) => w.set_error(format!("settlement task failed: {e}")),
    }
}
