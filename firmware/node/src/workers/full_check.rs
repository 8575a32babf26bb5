//! Full checks (DESIGN §5, long interval): fetch a replica's whole object
//! with the very request a recovery uses, verify every segment and the root
//! while decrypting to nowhere, and pay the contract's retrieval price on a
//! pass. A host cannot tell a check from a real recovery, so it cannot
//! serve one and price-gouge the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bunker_core::{Layout, ObjectId, Opener};
use bunker_manifest::{AuditKind, AuditOutcome, AuditReport, Replica};
use bunker_net::FetchRequest;
use tokio::task::JoinHandle;

use crate::node::{now, Inner};
use crate::owner::placement::clip;
use crate::owner::read::descriptor;
use crate::workers::audit::owe;
use crate::workers::Worker;

/// Whole objects checked per round at most.
const BATCH: u32 = 4;

/// Starts the full-check loop.
pub(crate) fn spawn(inner: Arc<Inner>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let w = Worker::new(&inner, "full_check");
        let tick = (inner.config.full_check_interval / 8).clamp(Duration::from_millis(500), Duration::from_secs(3600));
        while w.sleep(&inner, tick).await {
            let _permit = inner.workers.throttle().background().await;
            match round(&inner, &w).await {
                Ok(0) => w.done("no replica due"),
                Ok(n) => w.done(format!("{n} replicas checked whole")),
                Err(e) => w.set_error(e),
            }
        }
        w.set_state("stopped");
    })
}

/// Whether `r` is due: its own point in [0.5, 1.5] × interval after its
/// last check, drawn from a per-process key so hosts cannot predict it.
fn is_due(r: &Replica, interval: Duration, key: &[u8; 32], at: i64) -> bool {
    let last = r.last_full_check_at.unwrap_or(r.created_at);
    let h = blake3::keyed_hash(key, &[r.id.0.to_le_bytes(), last.to_le_bytes()].concat());
    let frac = f64::from(u16::from_le_bytes([h.as_bytes()[0], h.as_bytes()[1]])) / f64::from(u16::MAX);
    let wait = interval.as_secs_f64() * (0.5 + frac);
    (at - last) as f64 >= wait
}

static JITTER_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();

async fn round(inner: &Arc<Inner>, w: &Worker) -> Result<usize, String> {
    let at = now();
    let interval = inner.config.full_check_interval;
    let earliest = at - (interval.as_secs() / 2) as i64;
    let key = *JITTER_KEY.get_or_init(rand::random);
    let due: Vec<Replica> = inner
        .db
        .call(move |m| m.replicas_due_for_full_check(earliest, BATCH * 8))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| is_due(r, interval, &key, at))
        .take(BATCH as usize)
        .collect();
    for r in &due {
        w.set_state(format!("checking replica {} on {}", r.index, r.host));
        check_one(inner, r).await;
    }
    Ok(due.len())
}

async fn check_one(inner: &Arc<Inner>, r: &Replica) {
    let started = Instant::now();
    let (outcome, detail) = match fetch_and_verify(inner, r).await {
        Ok(()) => (AuditOutcome::Passed, String::new()),
        Err(e) => e,
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    let passed = outcome.is_pass();
    let mut detail = detail;
    if passed {
        if let Some(c) = r.contract {
            let contract = inner.db.call(move |m| m.contract(&c)).await.ok().flatten();
            if let Some(rec) = contract.filter(|c| !c.contract.is_swap && c.contract.retrieval_price_msat > 0) {
                if owe(inner, r.host, c, rec.contract.retrieval_price_msat).await {
                    detail = format!("retrieval owed {} msat", rec.contract.retrieval_price_msat);
                }
            }
        }
    }
    let report = AuditReport {
        replica: r.id,
        at: now(),
        kind: AuditKind::Full,
        segment: None,
        outcome,
        latency_ms,
        detail: clip(&detail),
        next_audit_at: None,
    };
    let (host, id) = (r.host, r.id);
    let res = crate::workers::audit::record(inner, report, host, id, passed).await;
    if let Err(e) = res {
        tracing::warn!(%host, error = %e, "could not record a full check");
    }
}

async fn fetch_and_verify(inner: &Arc<Inner>, r: &Replica) -> Result<(), (AuditOutcome, String)> {
    let failed = |s: String| (AuditOutcome::Failed, s);
    let file_row = r.file;
    let file = inner
        .db
        .call(move |m| m.file_by_id(file_row))
        .await
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("file gone".into()))?;
    let contract = r.contract.ok_or_else(|| failed("no contract covers it".into()))?;
    let layout = Layout::new(file.size, file.segment_size).map_err(|e| failed(e.to_string()))?;
    let request = FetchRequest { contract_id: contract.0, object_root: r.root };
    let incoming = inner
        .net
        .fetch(r.host, request, r.stored_size)
        .await
        .map_err(|e| (AuditOutcome::Unreachable, e.to_string()))?;
    if incoming.len() != layout.sealed_size() {
        return Err(failed(format!("host sends {} bytes, the object has {}", incoming.len(), layout.sealed_size())));
    }
    let reader = crate::owner::bridge_reader(incoming);
    let key = inner.keys.replica_key(&file.object_id, r.index);
    let object = ObjectId { file_id: file.object_id, replica_index: r.index };
    let d = descriptor(r.root, layout);
    tokio::task::spawn_blocking(move || Opener::new(&key, object).open(&d, reader, std::io::sink()))
        .await
        .map_err(|e| failed(format!("check task: {e}")))?
        .map(|_| ())
        .map_err(|e| failed(e.to_string()))
}
