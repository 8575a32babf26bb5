//! Repair (DESIGN §5): a replica declared lost (K failed audits in a row)
//! or a file left short of copies after a policy change gets new replicas
//! on new hosts — sealed from the local copy, else from a verified read of
//! another replica, under fresh replica indices. The lost replica's
//! contract is ended (best effort: a host that is gone is released later),
//! and contracts left `ending` are retried every round.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bunker_manifest::{ContractState, FileId, ReplicaState};
use tokio::task::JoinHandle;

use crate::node::Inner;
use crate::owner::contracts::{end_contract, retry_ending};
use crate::owner::lock::FileLock;
use crate::owner::redundancy::add_copies;
use crate::workers::Worker;

/// Files looked at per round.
const PAGE: u32 = 32;

/// Per file: when to try again after a failed repair, and the last wait.
/// Doubling waits (up to an hour) keep a box without enough hosts from
/// re-reading the same file every round.
#[derive(Default)]
struct Backoff(HashMap<FileId, (Instant, Duration)>);

impl Backoff {
    fn ready(&self, f: FileId) -> bool {
        self.0.get(&f).is_none_or(|(at, _)| Instant::now() >= *at)
    }

    fn failed(&mut self, f: FileId, base: Duration) {
        let wait = self.0.get(&f).map_or(base, |(_, w)| (*w * 2).min(Duration::from_secs(3600)));
        self.0.insert(f, (Instant::now() + wait, wait));
    }

    fn succeeded(&mut self, f: FileId) {
        self.0.remove(&f);
    }
}

/// Starts the repair loop.
pub(crate) fn spawn(inner: Arc<Inner>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let w = Worker::new(&inner, "repair");
        let mut backoff = Backoff::default();
        let tick = crate::workers::audit::tick(inner.config.audit_interval).max(Duration::from_secs(1));
        while w.sleep(&inner, tick).await {
            let _permit = inner.workers.throttle().background().await;
            match round(&inner, &w, &mut backoff, tick).await {
                Ok(s) => w.done(s),
                Err(e) => w.set_error(e),
            }
        }
        w.set_state("stopped");
    })
}

async fn round(inner: &Arc<Inner>, w: &Worker, backoff: &mut Backoff, base: Duration) -> Result<String, String> {
    let mut repaired = 0;
    let mut errors = Vec::new();
    let mut after: Option<FileId> = None;
    loop {
        let page = inner
            .db
            .call(move |m| m.under_replicated_files(after, PAGE))
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        for (file, wanted, active) in page {
            if !backoff.ready(file) {
                continue;
            }
            w.set_state(format!("repairing file #{} ({active} of {wanted} copies)", file.0));
            match repair_file(inner, file).await {
                Ok(n) => {
                    repaired += n;
                    backoff.succeeded(file);
                }
                Err(e) => {
                    backoff.failed(file, base);
                    errors.push(e);
                }
            }
        }
    }
    let (released, pending) = retry_ending(inner).await.map_err(|e| e.to_string())?;
    if let Some(e) = errors.first() {
        return Err(format!("{repaired} replicas placed, {} files not repaired: {e}", errors.len()));
    }
    Ok(format!("{repaired} replicas placed, {released} contracts released, {pending} releases pending"))
}

/// Ends the contracts of the file's lost replicas and places the missing ones.
async fn repair_file(inner: &Arc<Inner>, id: FileId) -> Result<usize, String> {
    let Some(first) = inner.db.call(move |m| m.file_by_id(id)).await.map_err(|e| e.to_string())? else {
        return Ok(0);
    };
    // A policy change or removal of this file is running: next round.
    let Some(_lock) = FileLock::try_acquire(first.object_id) else { return Ok(0) };
    // Read again under the lock: the file may have changed meanwhile.
    let found = inner
        .db
        .call(move |m| {
            let Some(f) = m.file_by_id(id)? else { return Ok(None) };
            let replicas = m.replicas_of(id)?;
            let active = replicas.iter().filter(|r| r.state == ReplicaState::Active).count();
            let mut lost = Vec::new();
            for r in replicas.into_iter().filter(|r| r.state == ReplicaState::Lost) {
                let live = match r.contract {
                    Some(c) => m.contract(&c)?.is_some_and(|c| c.state == ContractState::Active),
                    None => false,
                };
                lost.push((r, live));
            }
            Ok(Some((f, active, lost)))
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some((file, active, lost)) = found else { return Ok(0) };
    let missing = usize::from(file.redundancy).saturating_sub(active);
    let avoid: Vec<_> = lost.iter().map(|(r, _)| r.id).collect();
    let placed = if missing > 0 {
        add_copies(inner, &file, missing, false, &avoid).await.map_err(|e| format!("{}: {e}", file.path))?
    } else {
        0
    };
    tracing::info!(file = %file.path, placed, "replicas repaired");
    for (r, live) in lost {
        if let (true, Some(c)) = (live, r.contract) {
            end_contract(inner, r.host, c).await;
        }
    }
    Ok(placed)
}
