//! Answers peers: every `bunker_net::InboundRequest` a box receives.
//!
//! - `allocation`: how much space is offered, and to whom first (DESIGN §6).
//! - `contracts`: offers, contracts (owner signature checked against the
//!   requester's PeerId), releases.
//! - `transfer`: stores (only under that peer's contract, exact size and
//!   root, signed receipt) and fetches (whole object, owner only).
//! - `audit`: a segment and its proof from the sidecar, owner only.
//! - `snapshots`: owners' manifest snapshots (newest per owner) and recovery
//!   searches.
//! - `swap_default`: a swap partner that lost our copy loses its copy here
//!   after a grace period.
//!
//! Every request runs on its own task (a panic there ends that request, not
//! the box), every answer is bounded in time (a request not answered in
//! time is dropped, and the peer's request fails promptly), and nothing a
//! peer sends is trusted before it is checked: the requester's PeerId is
//! noise-authenticated, everything else is just bytes.

mod allocation;
mod audit;
mod contracts;
mod snapshots;
pub(crate) mod swap_default;
mod transfer;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bunker_manifest::DiskId;
use bunker_net::{InboundRequest, PeerId, Reply};

use crate::node::Inner;

pub(crate) use allocation::Capacity;

/// What the hosting side keeps between requests.
#[derive(Default)]
pub(crate) struct HostState {
    /// Serialises admission: the capacity check and the contract insert are
    /// one step, so two proposals at once cannot both take the last space.
    admission: tokio::sync::Mutex<()>,
    /// Serialises snapshot writes (one owner's newer version replaces the older).
    snapshots: tokio::sync::Mutex<()>,
    /// The contract side of [`Capacity`], kept current by our own accepts
    /// and stores and reloaded from MANIFEST.db every [`CAPACITY_TTL`]:
    /// reading 10 000 contracts for every offer would not do on a Pi.
    capacity: std::sync::Mutex<Option<(Instant, Capacity)>>,
    /// Audits and fetches answered at once (the device profile's
    /// `serve_concurrency`): a Pi Zero's USB disk and memory serve a few
    /// well rather than many badly.
    serve: std::sync::OnceLock<tokio::sync::Semaphore>,
}

/// Longest a cached capacity is used before it is read from MANIFEST.db
/// again (the owner side adds swap contracts we keep for nobody else).
const CAPACITY_TTL: Duration = Duration::from_secs(10);

impl HostState {
    fn serving(&self, config: &crate::config::NodeConfig) -> &tokio::sync::Semaphore {
        self.serve.get_or_init(|| tokio::sync::Semaphore::new(config.tuning.serve_concurrency.max(1)))
    }

    /// Waits for a turn to read an object for a peer (the caller bounds the wait).
    pub(crate) async fn serve_slot(&self, config: &crate::config::NodeConfig) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.serving(config).acquire().await.ok()
    }

    /// Like [`HostState::serve_slot`], giving up after `within`.
    pub(crate) async fn serve_slot_within(
        &self,
        config: &crate::config::NodeConfig,
        within: Duration,
    ) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(within, self.serving(config).acquire()).await.ok()?.ok()
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Capacity)>> {
        self.capacity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A contract was accepted: its bytes are promised.
    pub(crate) fn note_accepted(&self, peer: PeerId, bytes: u64, swap: bool) {
        if let Some((_, cap)) = self.cached().as_mut() {
            cap.committed_bytes = cap.committed_bytes.saturating_add(bytes);
            cap.pending_bytes = cap.pending_bytes.saturating_add(bytes);
            if swap {
                let b = cap.swaps.entry(peer).or_default();
                b.ours_for_them = b.ours_for_them.saturating_add(bytes);
            }
        }
    }

    /// A promised object arrived: its bytes are on disk now.
    pub(crate) fn note_stored(&self, bytes: u64) {
        if let Some((_, cap)) = self.cached().as_mut() {
            cap.pending_bytes = cap.pending_bytes.saturating_sub(bytes);
        }
    }

    /// Contracts ended: read everything again next time.
    pub(crate) fn forget_capacity(&self) {
        *self.cached() = None;
    }
}

/// Answers one request from a peer.
pub(crate) async fn handle(inner: &Arc<Inner>, req: InboundRequest) {
    let limits = inner.net.limits().clone();
    match req {
        InboundRequest::Offer { peer, request, reply } => {
            answer(limits.offer.timeout, "offer", peer, reply, contracts::offer(inner, peer, request)).await
        }
        InboundRequest::Contract { peer, proposal, reply } => {
            answer(limits.contract.timeout, "contract", peer, reply, contracts::contract(inner, peer, proposal)).await
        }
        InboundRequest::Release { peer, request, reply } => {
            answer(limits.release.timeout, "release", peer, reply, contracts::release(inner, peer, request)).await
        }
        InboundRequest::Audit { peer, challenge, reply } => {
            answer(limits.audit.timeout, "audit", peer, reply, audit::audit(inner, peer, challenge)).await
        }
        InboundRequest::Manifest { peer, request, reply } => {
            answer(limits.manifest.timeout, "manifest", peer, reply, snapshots::manifest(inner, peer, request)).await
        }
        InboundRequest::Recover { peer, request, reply } => {
            let fut = crate::recovery::answer_recover(inner, peer, request);
            answer(limits.recover.timeout, "recover", peer, reply, fut).await
        }
        InboundRequest::Holdings { peer, request, reply } => {
            answer(limits.holdings.timeout, "holdings", peer, reply, contracts::holdings(inner, peer, request)).await
        }
        InboundRequest::Store(store) => transfer::store(inner, store).await,
        InboundRequest::Fetch(fetch) => transfer::fetch(inner, fetch).await,
        other => tracing::debug!(peer = %other.peer(), "request of a kind this engine does not answer"),
    }
}

/// Computes an answer within a little less than the protocol's timeout and
/// sends it; an answer that is late is dropped (the peer's request fails
/// now instead of waiting out its own timeout).
async fn answer<R>(limit: Duration, what: &'static str, peer: PeerId, reply: Reply<R>, work: impl Future<Output = R>) {
    let within = limit.mul_f64(0.8);
    match tokio::time::timeout(within, work).await {
        Ok(response) => {
            if reply.send(response).await.is_err() {
                tracing::debug!(%peer, what, "network stopped before the answer went out");
            }
        }
        Err(_) => tracing::warn!(%peer, what, ?within, "request not answered in time; dropped"),
    }
}

/// The manifest's disk row for the first disk (the store root), created
/// on first use.
pub(crate) async fn store_disk(inner: &Arc<Inner>) -> Result<DiskId, String> {
    let first = inner.objects.disks().into_iter().next().ok_or("no data disk")?;
    crate::data_disks::row_of(inner, &first).await.map_err(|e| e.to_string())
}

/// Hosting capacity as the allocation policy sees it now: the room of the
/// data disks that take new data (each beyond its reserve, each file
/// system once), with the contract side cached.
pub(crate) async fn capacity(inner: &Arc<Inner>) -> Result<Capacity, String> {
    let i = Arc::clone(inner);
    let (free, largest, disks) = tokio::task::spawn_blocking(move || {
        let free = i.objects.free_bytes().map_err(|e| format!("data disks: {e}"))?;
        Ok::<_, String>((free, i.objects.largest_free(), i.objects.describe()))
    })
    .await
    .map_err(|e| format!("data disks: {e}"))??;
    let with_disks = |cap: Capacity| Capacity { free_bytes: free, largest_disk_bytes: largest, disks: disks.clone(), ..cap };
    if let Some((at, cap)) = inner.host.cached().as_ref() {
        if at.elapsed() < CAPACITY_TTL {
            return Ok(with_disks(cap.clone()));
        }
    }
    let cap = inner.db.call(move |m| Capacity::load(m, free)).await.map_err(|e| e.to_string())?;
    *inner.host.cached() = Some((Instant::now(), cap.clone()));
    Ok(with_disks(cap))
}
