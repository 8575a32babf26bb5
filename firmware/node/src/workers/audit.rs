//! Segment audits (DESIGN §5, short interval): for each replica that is
//! due, challenge its host for one random segment with a fresh nonce and
//! verify the answer against the root we recorded. The outcome and latency
//! go into the manifest, the next audit is drawn ±50% around
//! `config.audit_interval`, the host's reputation moves, and a pass owes
//! the host for the time since the last paid audit (swaps owe nothing,
//! failures pay nothing). After `repair_after_failures` failures in a row
//! the replica is declared lost; the repair worker replaces it.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bunker_core::{verify_segment, Layout, Proof};
use bunker_manifest::{AuditKind, AuditOutcome, AuditReport, ContractId, DueReplica, ReplicaState};
use bunker_net::{AuditChallenge, AuditResponse, PeerId, RequestError};
use rand::Rng;
use tokio::task::JoinHandle;

use crate::node::{now, Inner};
use crate::owner::placement::{clip, reputation_after, GIB};
use crate::owner::policy::next_due;
use crate::owner::read::descriptor;
use crate::workers::Worker;

/// Replicas audited per round at most (the rest stay due for the next).
const BATCH: u32 = 64;
/// Audits in flight at once.
const PARALLEL: usize = 8;
/// Detail prefix of a pass that accrued payment: where the next accrual
/// counts from, also after a restart.
pub(crate) const ACCRUED: &str = "accrued ";

/// Starts the audit loop.
pub(crate) fn spawn(inner: Arc<Inner>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let w = Worker::new(&inner, "audit");
        let anchors = Anchors::default();
        while w.sleep(&inner, tick(inner.config.audit_interval)).await {
            let _permit = inner.workers.throttle().background().await;
            match round(&inner, &w, &anchors).await {
                Ok((0, _)) => w.done("no replica due"),
                Ok((n, failed)) => w.done(format!("{n} audited, {failed} failed")),
                Err(e) => w.set_error(e),
            }
        }
        w.set_state("stopped");
    })
}

/// How often the loop looks for due replicas: a fraction of the interval,
/// so a replica is audited close to its (randomised) due time.
pub(crate) fn tick(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// Per contract: when payment was last accrued (Unix seconds).
#[derive(Default)]
pub(crate) struct Anchors(Mutex<HashMap<[u8; 32], i64>>);

async fn round(inner: &Arc<Inner>, w: &Worker, anchors: &Anchors) -> Result<(usize, usize), String> {
    let at = now();
    let due = inner.db.call(move |m| m.replicas_due_for_audit(at, BATCH)).await.map_err(|e| e.to_string())?;
    if due.is_empty() {
        return Ok((0, 0));
    }
    w.set_state(format!("auditing {} replicas", due.len()));
    let n = due.len();
    let mut failed = 0;
    let mut it = due.into_iter();
    loop {
        let batch: Vec<DueReplica> = it.by_ref().take(PARALLEL).collect();
        if batch.is_empty() {
            break;
        }
        let results = futures::future::join_all(batch.into_iter().map(|d| audit_one(inner, d, anchors))).await;
        failed += results.iter().filter(|passed| !**passed).count();
    }
    Ok((n, failed))
}

/// The plaintext layout of a replica from its sealed size (each segment
/// adds one 16-byte tag).
pub(crate) fn layout_of(stored_size: u64, segment_size: u32) -> Option<Layout> {
    let stride = u64::from(segment_size) + 16;
    let count = stored_size.div_ceil(stride).max(1);
    let size = stored_size.checked_sub(count * 16)?;
    let layout = Layout::new(size, segment_size).ok()?;
    (layout.sealed_size() == stored_size).then_some(layout)
}

/// Audits one replica; returns whether it passed.
async fn audit_one(inner: &Arc<Inner>, d: DueReplica, anchors: &Anchors) -> bool {
    let started = Instant::now();
    let (outcome, segment, detail) = match layout_of(d.stored_size, d.segment_size) {
        None => (AuditOutcome::Failed, None, format!("recorded size {} does not fit segments of {}", d.stored_size, d.segment_size)),
        Some(layout) => {
            let segment = rand::thread_rng().gen_range(0..layout.segment_count());
            let challenge = AuditChallenge { object_root: d.root, segment, nonce: rand::random() };
            let (o, detail) = judge(inner.net.audit(d.host, challenge).await, &descriptor(d.root, layout), segment);
            (o, Some(segment), detail)
        }
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    let at = now();
    let passed = outcome.is_pass();
    let mut detail = detail;
    if passed {
        if let Some(c) = d.contract {
            if let Some(msat) = accrue_storage(inner, &d, c, at, anchors).await {
                detail = format!("{ACCRUED}{msat} msat");
            }
        }
    }
    let report = AuditReport {
        replica: d.replica,
        at,
        kind: AuditKind::Segment,
        segment,
        outcome,
        latency_ms,
        detail: clip(&detail),
        next_audit_at: Some(next_due(at, inner.config.audit_interval)),
    };
    let k = inner.config.repair_after_failures.max(1);
    let (host, replica) = (d.host, d.replica);
    let recorded = record(inner, report, host, replica, passed).await;
    match recorded {
        Ok(f) if f >= k => tracing::warn!(%host, replica = replica.0, failures = f, "replica lost after failed audits"),
        Ok(_) => {}
        Err(e) => tracing::warn!(%host, error = %e, "could not record an audit"),
    }
    passed
}

/// Records one check of a replica (segment audit or full check) in one
/// transaction: the audit row, the host's reputation, and the replica marked
/// lost once its failures in a row reach `repair_after_failures`. Returns the
/// failures in a row.
pub(crate) async fn record(
    inner: &Inner,
    report: AuditReport,
    host: PeerId,
    replica: bunker_manifest::ReplicaId,
    passed: bool,
) -> Result<u32, crate::error::DbError> {
    let k = inner.config.repair_after_failures.max(1);
    inner
        .db
        .call(move |m| {
            let failures = m.record_audit(&report)?;
            if let Some(p) = m.peer(&host)? {
                let (s, f) = reputation_after(p.successes, p.failures, passed);
                m.set_peer_score(&host, s, f)?;
            }
            if failures >= k {
                m.set_replica_state(replica, ReplicaState::Lost)?;
            }
            Ok(failures)
        })
        .await
}

/// Turns a host's answer into an outcome and a detail line.
pub(crate) fn judge(
    answer: Result<AuditResponse, RequestError>,
    descriptor: &bunker_core::Descriptor,
    segment: u64,
) -> (AuditOutcome, String) {
    match answer {
        Ok(AuditResponse::Proof { sealed_segment, proof }) => match Proof::from_bytes(&proof) {
            Err(e) => (AuditOutcome::Failed, format!("undecodable proof: {e}")),
            Ok(proof) => match verify_segment(descriptor, segment, &sealed_segment, &proof) {
                Ok(()) => (AuditOutcome::Passed, String::new()),
                Err(e) => (AuditOutcome::Failed, e.to_string()),
            },
        },
        Ok(AuditResponse::NotFound) => (AuditOutcome::Failed, "host says it does not hold the object".into()),
        Ok(AuditResponse::Failed { reason }) => (AuditOutcome::Failed, format!("host could not answer: {}", clip(&reason))),
        Err(RequestError::Timeout { .. }) => (AuditOutcome::Timeout, "no answer in time".into()),
        Err(e) => (AuditOutcome::Unreachable, e.to_string()),
    }
}

/// Owes the host price × GiB × days since the last accrual on a contract;
/// `None` when nothing was owed (swap, no Lightning to record it with yet,
/// unknown payee) — the time then still counts at the next pass.
async fn accrue_storage(inner: &Arc<Inner>, d: &DueReplica, contract: ContractId, at: i64, anchors: &Anchors) -> Option<u64> {
    let record = inner.db.call(move |m| m.contract(&contract)).await.ok()??;
    if record.contract.is_swap || record.contract.price_msat_per_gib_day == 0 {
        return None;
    }
    let known = anchors.0.lock().unwrap_or_else(|p| p.into_inner()).get(&contract.0).copied();
    let since = match known {
        Some(t) => t,
        None => last_accrual(inner, d, record.contract.term_start_at).await,
    };
    let msat = storage_owed(
        record.contract.price_msat_per_gib_day,
        record.contract.size_bytes,
        at.saturating_sub(since).max(0) as u64,
    );
    if msat == 0 {
        return None;
    }
    owe(inner, d.host, contract, msat).await.then(|| {
        anchors.0.lock().unwrap_or_else(|p| p.into_inner()).insert(contract.0, at);
        msat
    })
}

/// What `bytes` stored for `secs` cost at `price` msat per GiB-day, rounded
/// down (saturating).
pub(crate) fn storage_owed(price_msat_per_gib_day: u64, bytes: u64, secs: u64) -> u64 {
    u128::from(price_msat_per_gib_day)
        .checked_mul(u128::from(bytes))
        .and_then(|x| x.checked_mul(u128::from(secs)))
        .map_or(u64::MAX, |x| (x / (u128::from(GIB) * 86_400)).min(u128::from(u64::MAX)) as u64)
}

/// When the last accrual on this replica happened, from its audit history.
async fn last_accrual(inner: &Arc<Inner>, d: &DueReplica, start: i64) -> i64 {
    let replica = d.replica;
    inner
        .db
        .call(move |m| {
            let audits = m.audits_of_replica(replica, 1000)?;
            Ok(audits.iter().find(|a| a.outcome.is_pass() && a.detail.starts_with(ACCRUED)).map(|a| a.at))
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(start)
}

/// Adds `msat` to what `contract` owes `host` in bunker-ln's book (the one
/// place owed amounts live). Needs Lightning running and the host's node id.
pub(crate) async fn owe(inner: &Arc<Inner>, host: PeerId, contract: ContractId, msat: u64) -> bool {
    let Some(ln) = inner.lightning() else { return false };
    let Ok(Some(peer)) = inner.db.call(move |m| m.peer(&host)).await else { return false };
    let Some(node) = peer.ln_node_id.and_then(|h| bunker_ln::NodeId::from_str(&h).ok()) else {
        tracing::debug!(%host, "no Lightning node id known for the host; nothing accrued yet");
        return false;
    };
    let res = tokio::task::spawn_blocking(move || ln.owe(bunker_ln::ContractId(contract.0), &node, msat)).await;
    match res {
        Ok(Ok(total)) => {
            tracing::debug!(%host, msat, total, "accrued");
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(%host, error = %e, "could not accrue");
            false
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_owed_per_gib_day() {
        assert_eq!(storage_owed(1000, GIB, 86_400), 1000);
        assert_eq!(storage_owed(1000, GIB / 2, 86_400 * 2), 1000);
        assert_eq!(storage_owed(1000, GIB, 0), 0);
        assert_eq!(storage_owed(u64::MAX, u64::MAX, u64::MAX), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn plaintext_layout_is_recovered_from_the_sealed_size() {
        for (size, seg) in [(0u64, 64u32), (1, 64), (64, 64), (65, 64), (1 << 20, 65536), (1_000_001, 4096)] {
            let l = Layout::new(size, seg).unwrap();
            let back = layout_of(l.sealed_size(), seg).unwrap();
            assert_eq!((back.size(), back.segment_count()), (size, l.segment_count()));
        }
        assert!(layout_of(10, 64).is_none());
    }
}
