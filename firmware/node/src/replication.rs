//! Manifest replication (DESIGN §7): after the manifest changed (debounced)
//! and at least once a day, an encrypted, signed, versioned snapshot goes to
//! several peers chosen for reliability; each holder announces a Kademlia
//! provider record under [`manifest_provider_key`] of the owner, so that a
//! new box with the same 24 words finds them. Holders are audited by fetching
//! the snapshot back (only the owner may): one that lost it, serves an older
//! version than it confirmed, or serves bytes that do not verify is dropped
//! and replaced in the next round.
//!
//! The recovery kit (file or QR text) lists the holders with their addresses
//! and the newest version, sealed under the manifest key: the way back when
//! the DHT cannot be reached.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bunker_manifest::{inspect_snapshot, FolderPath, Manifest, ManifestKey, RecoveryKit};
use bunker_net::{ManifestRequest, ManifestResponse, PeerId};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::DbError;
use crate::node::{now, Inner, Node};
use crate::workers::{jittered, Worker};

/// Context string of the provider-key derivation. Changing it orphans every
/// snapshot already announced: never edit it.
pub const PROVIDER_KEY_CONTEXT: &str = "bunker 2026-11 manifest provider key";

/// The one DHT key under which holders of `owner`'s manifest snapshot
/// announce themselves: `blake3::derive_key(PROVIDER_KEY_CONTEXT, owner PeerId bytes)`.
/// Anyone who knows the PeerId can compute it (a new box with the same words
/// can); it reveals nothing else.
pub fn manifest_provider_key(owner: &PeerId) -> [u8; 32] {
    blake3::derive_key(PROVIDER_KEY_CONTEXT, &owner.to_bytes())
}

/// Stores in flight at once: each holds its own copy of the snapshot (up to
/// the protocol's 32 MiB), which a Pi's memory must afford.
const STORE_CONCURRENCY: usize = 3;

/// How the manifest is replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    /// Peers that should hold our newest snapshot (DESIGN §7: at least 5).
    pub holders: usize,
    /// Quiet time after the last change before a snapshot is made
    /// (bunkerd's `intervals.manifest_debounce`).
    pub debounce: Duration,
    /// Longest a change waits while the manifest keeps changing (audits are
    /// recorded all the time: without this a busy box would never snapshot).
    pub max_delay: Duration,
    /// A snapshot goes out at least this often even without changes, so
    /// holders that left are noticed and replaced.
    pub refresh: Duration,
    /// Mean time between two audits of the holders (randomised ±50%).
    pub audit_interval: Duration,
    /// Consecutive unreachable audits after which a holder is replaced.
    pub unreachable_limit: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            holders: 5,
            debounce: Duration::from_secs(300),
            max_delay: Duration::from_secs(3600),
            refresh: Duration::from_secs(86_400),
            audit_interval: Duration::from_secs(6 * 3600),
            unreachable_limit: 3,
        }
    }
}

/// The settings the running engine uses.
pub(crate) fn settings(inner: &Inner) -> ReplicationConfig {
    inner.config.replication.clone()
}

/// Why a replication round or a kit export failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// MANIFEST.db failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Making the snapshot failed.
    #[error("making the manifest snapshot: {0}")]
    Snapshot(String),
    /// The snapshot is larger than `/bunker/manifest/1` carries.
    #[error("manifest snapshot of {size} bytes exceeds the {max}-byte limit of /bunker/manifest/1")]
    TooLarge {
        /// Snapshot size.
        size: usize,
        /// Protocol cap.
        max: usize,
    },
    /// Nothing worth replicating yet: no file, no contract, no snapshot ever
    /// made. Replicating an empty manifest could only overwrite a good one
    /// (a new box with the same words before its restore).
    #[error("the manifest is empty: nothing to replicate yet")]
    Empty,
    /// The recovery kit could not be made.
    #[error("recovery kit: {0}")]
    Kit(String),
}

/// What one replication round did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationReport {
    /// Snapshot version sent.
    pub version: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Peers that confirmed storing it (base58).
    pub stored: Vec<String>,
    /// Peers that did not, with why.
    pub failed: Vec<(String, String)>,
}

/// What one holder audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderAudit {
    /// The holder (base58).
    pub peer: String,
    /// Version it confirmed storing.
    pub confirmed: u64,
    /// Version it served, when it served a valid one.
    pub served: Option<u64>,
    /// `passed`, `failed` (lost, stale or altered: replaced) or
    /// `unreachable` (replaced after several in a row).
    pub outcome: String,
    /// Why it failed.
    pub detail: String,
}

/// The manifest key as bunker-manifest takes it.
pub(crate) fn manifest_key(inner: &Inner) -> ManifestKey {
    ManifestKey::from_bytes(*inner.keys.manifest_key().as_bytes())
}

/// Whether the manifest holds anything a holder should keep.
fn is_empty(m: &Manifest) -> Result<bool, bunker_manifest::QueryError> {
    if m.snapshot_version()? > 0 {
        return Ok(false);
    }
    let root = m.list_folder(&FolderPath::root())?;
    Ok(root.files.is_empty() && root.folders.is_empty())
}

/// Makes the next snapshot. Returns version, bytes and how many rows the
/// export itself changed (the version bump), so change detection skips it.
async fn export(inner: &Inner) -> Result<(u64, Vec<u8>, u64), ReplicationError> {
    let key = manifest_key(inner);
    let identity = inner.keys.identity();
    let max = inner.net.limits().manifest.max_request;
    let at = now();
    let out = inner
        .db
        .call(move |m| {
            if is_empty(m)? {
                return Ok(Err(ReplicationError::Empty));
            }
            let before = m.total_changes()?;
            let mut buf = Vec::new();
            let info = match m.export_snapshot(&key, &identity, at, &mut buf) {
                Ok(info) => info,
                Err(e) => return Ok(Err(ReplicationError::Snapshot(e.to_string()))),
            };
            let own = m.total_changes()?.saturating_sub(before);
            Ok(Ok((info.version, buf, own)))
        })
        .await??;
    // Postcard framing adds a few bytes around the snapshot.
    if out.1.len() + 64 > max {
        return Err(ReplicationError::TooLarge { size: out.1.len(), max });
    }
    Ok(out)
}

/// Peers to hold our snapshot, best first: current holders (they keep the
/// history going), then connected peers, then known ones, each group by
/// audit reputation (Beta-mean of the decayed successes and failures).
async fn candidates(inner: &Inner) -> Result<Vec<PeerId>, DbError> {
    let me = inner.peer_id();
    let connected: HashSet<PeerId> = match inner.net.peers().await {
        Ok(s) => s.connected.iter().filter_map(|p| p.peer_id.parse().ok()).collect(),
        Err(_) => HashSet::new(),
    };
    let (holders, peers) = inner.db.call(|m| Ok((m.snapshot_holders()?, m.peers()?))).await?;
    let score: HashMap<PeerId, f64> =
        peers.iter().map(|p| (p.peer, (p.successes + 1.0) / (p.successes + p.failures + 2.0))).collect();
    let mut out: Vec<PeerId> = Vec::new();
    let mut seen = HashSet::from([me]);
    let mut holder_list: Vec<PeerId> = holders.iter().map(|h| h.peer).collect();
    holder_list.sort_by_key(|p| !connected.contains(p));
    for p in holder_list {
        if seen.insert(p) {
            out.push(p);
        }
    }
    let mut rest: Vec<PeerId> = connected.iter().copied().chain(peers.iter().map(|p| p.peer)).collect();
    rest.sort_by(|a, b| {
        let ca = connected.contains(a);
        let cb = connected.contains(b);
        cb.cmp(&ca).then_with(|| {
            let sa = score.get(a).copied().unwrap_or(0.5);
            let sb = score.get(b).copied().unwrap_or(0.5);
            sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    for p in rest {
        if seen.insert(p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Sends `snapshot` to one peer; `Ok` once it confirmed storing it.
async fn store_on(inner: &Inner, peer: PeerId, version: u64, snapshot: Vec<u8>) -> Result<(), String> {
    match inner.net.manifest(peer, ManifestRequest::Store { version, snapshot }).await {
        Ok(ManifestResponse::Stored) => Ok(()),
        Ok(ManifestResponse::Refused { reason }) => Err(format!("refused: {reason}")),
        Ok(other) => Err(format!("unexpected answer to a store: {}", answer_name(&other))),
        Err(e) => Err(e.to_string()),
    }
}

fn answer_name(r: &ManifestResponse) -> &'static str {
    match r {
        ManifestResponse::Stored => "stored",
        ManifestResponse::Snapshot { .. } => "snapshot",
        ManifestResponse::NotFound => "not found",
        ManifestResponse::Refused { .. } => "refused",
    }
}

/// Addresses of our open connections to `peer`, to remember where a holder
/// was reached (the recovery kit lists them).
async fn connection_addresses(inner: &Inner, peer: &PeerId) -> Vec<String> {
    let text = peer.to_base58();
    match inner.net.peers().await {
        Ok(s) => s
            .connected
            .into_iter()
            .find(|p| p.peer_id == text)
            .map(|p| p.addresses)
            .unwrap_or_default()
            .into_iter()
            .filter(|a| !a.is_empty() && a.len() <= bunker_manifest::KIT_MAX_ADDRESS_LEN)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// One round: a new snapshot to `want` holders. Returns the report and the
/// rows the round itself wrote (not a change of the owner's data).
pub(crate) async fn replicate_once(inner: &Inner, want: usize) -> Result<(ReplicationReport, u64), ReplicationError> {
    let result = round(inner, want).await;
    inner.replication.round_done(now(), want, &result);
    result
}

async fn round(inner: &Inner, want: usize) -> Result<(ReplicationReport, u64), ReplicationError> {
    let (version, snapshot, mut own) = export(inner).await?;
    let bytes = snapshot.len() as u64;
    let candidates = candidates(inner).await?;
    let mut stored: Vec<PeerId> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut next = candidates.into_iter();
    let mut pending = FuturesUnordered::new();
    let snapshot = Arc::new(snapshot);
    loop {
        while stored.len() + pending.len() < want.max(1) && pending.len() < STORE_CONCURRENCY {
            let Some(peer) = next.next() else { break };
            let snap = Arc::clone(&snapshot);
            pending.push(async move { (peer, store_on(inner, peer, version, snap.to_vec()).await) });
        }
        let Some((peer, result)) = pending.next().await else { break };
        match result {
            Ok(()) => stored.push(peer),
            Err(reason) => {
                tracing::info!(%peer, version, %reason, "manifest snapshot not stored on this peer");
                failed.push((peer.to_base58(), reason));
            }
        }
    }
    let at = now();
    let mut sightings = Vec::new();
    for peer in &stored {
        sightings.push((*peer, connection_addresses(inner, peer).await));
    }
    own += inner
        .db
        .call(move |m| {
            let before = m.total_changes()?;
            for (peer, addresses) in &sightings {
                if !addresses.is_empty() {
                    m.upsert_peer(&bunker_manifest::PeerSighting {
                        peer: *peer,
                        addresses: addresses.clone(),
                        ln_node_id: None,
                        seen_at: at,
                    })?;
                }
                m.record_snapshot_holder(peer, version, at)?;
            }
            Ok(m.total_changes()?.saturating_sub(before))
        })
        .await?;
    if stored.len() < want {
        tracing::warn!(version, stored = stored.len(), want, "manifest snapshot has fewer holders than wanted");
    } else {
        tracing::info!(version, bytes, holders = stored.len(), "manifest snapshot replicated");
    }
    let report = ReplicationReport { version, bytes, stored: stored.iter().map(|p| p.to_base58()).collect(), failed };
    Ok((report, own))
}

/// Fetches our snapshot back from `peer` and checks it: ours, signature
/// valid, the version it claims, at least `confirmed`.
pub(crate) async fn check_holder(inner: &Inner, peer: PeerId, confirmed: u64) -> HolderAudit {
    let me = inner.peer_id();
    let mut audit = HolderAudit {
        peer: peer.to_base58(),
        confirmed,
        served: None,
        outcome: "failed".into(),
        detail: String::new(),
    };
    match inner.net.manifest(peer, ManifestRequest::Fetch).await {
        Ok(ManifestResponse::Snapshot { version, snapshot }) => {
            let checked = tokio::task::spawn_blocking(move || inspect_snapshot(&snapshot)).await;
            match checked {
                Ok(Ok(info)) if info.owner != me => audit.detail = format!("served the manifest of {}", info.owner),
                Ok(Ok(info)) if info.version != version => {
                    audit.detail = format!("claims version {version}, snapshot says {}", info.version)
                }
                Ok(Ok(info)) if info.version < confirmed => {
                    audit.served = Some(info.version);
                    audit.detail = format!("serves version {} after confirming {confirmed}", info.version)
                }
                Ok(Ok(info)) => {
                    audit.served = Some(info.version);
                    audit.outcome = "passed".into();
                }
                Ok(Err(e)) => audit.detail = format!("snapshot does not verify: {e}"),
                Err(e) => audit.detail = format!("check failed: {e}"),
            }
        }
        Ok(ManifestResponse::NotFound) => audit.detail = "lost our snapshot".into(),
        Ok(ManifestResponse::Refused { reason }) => audit.detail = format!("refused: {reason}"),
        Ok(other) => audit.detail = format!("unexpected answer to a fetch: {}", answer_name(&other)),
        Err(e) => {
            audit.outcome = "unreachable".into();
            audit.detail = e.to_string();
        }
    }
    audit
}

/// Audits every recorded holder; holders that failed are forgotten (and
/// replaced by the next round), unreachable ones once `unreachable` says they
/// reached the limit. Returns the audits and whether a round is needed.
pub(crate) async fn audit_holders(
    inner: &Inner,
    unreachable: &mut HashMap<PeerId, u32>,
    limit: u32,
) -> Result<(Vec<HolderAudit>, bool, u64), DbError> {
    let holders = inner.db.call(|m| m.snapshot_holders()).await?;
    let mut audits = Vec::new();
    let mut drop: Vec<PeerId> = Vec::new();
    let mut checks: FuturesUnordered<_> = holders
        .iter()
        .map(|h| async move { (h.peer, check_holder(inner, h.peer, h.version).await) })
        .collect();
    while let Some((peer, audit)) = checks.next().await {
        inner.replication.audited(peer, now(), &audit);
        match audit.outcome.as_str() {
            "passed" => {
                unreachable.remove(&peer);
            }
            "unreachable" => {
                let n = unreachable.entry(peer).or_insert(0);
                *n += 1;
                if *n >= limit {
                    drop.push(peer);
                }
            }
            _ => drop.push(peer),
        }
        if audit.outcome != "passed" {
            tracing::warn!(%peer, outcome = %audit.outcome, detail = %audit.detail, "manifest holder audit");
        }
        audits.push(audit);
    }
    let needs_round = !drop.is_empty();
    for p in &drop {
        unreachable.remove(p);
    }
    let own = inner
        .db
        .call(move |m| {
            let before = m.total_changes()?;
            for p in &drop {
                m.remove_snapshot_holder(p)?;
            }
            Ok(m.total_changes()?.saturating_sub(before))
        })
        .await?;
    Ok((audits, needs_round, own))
}

/// When the next snapshot is due: after `debounce` of quiet following a
/// change, after `max_delay` of continuous changes, every `refresh` anyway,
/// and not before `retry_at` after a failed round. Pure, so the timing rules
/// are tested without waiting.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    cfg: ReplicationConfig,
    seen: u64,
    last_change: Instant,
    dirty_since: Option<Instant>,
    last_round: Instant,
    retry_at: Option<Instant>,
}

impl Schedule {
    /// A schedule at boot with `changes` rows changed so far. The boot
    /// itself counts as a change: what changed just before a crash or power
    /// cut may not have gone out.
    pub(crate) fn new(cfg: ReplicationConfig, changes: u64, boot: Instant) -> Schedule {
        Schedule { cfg, seen: changes, last_change: boot, dirty_since: Some(boot), last_round: boot, retry_at: None }
    }

    /// The manifest's change count at `t`.
    pub(crate) fn observe(&mut self, changes: u64, t: Instant) {
        if changes != self.seen {
            self.seen = changes;
            self.last_change = t;
            self.dirty_since.get_or_insert(t);
        }
    }

    /// Rows written by replication itself (version bump, holder records):
    /// not a change of the owner's data.
    pub(crate) fn own_writes(&mut self, n: u64) {
        self.seen += n;
    }

    /// A holder was dropped: a round is wanted now, not after a debounce.
    pub(crate) fn holder_lost(&mut self, t: Instant) {
        self.dirty_since.get_or_insert(t);
        self.last_change = t.checked_sub(self.cfg.debounce).unwrap_or(t);
        self.retry_at = None;
    }

    /// Whether a round should run at `t`.
    pub(crate) fn due(&self, t: Instant) -> bool {
        if self.retry_at.is_some_and(|r| t < r) {
            return false;
        }
        let quiet = t.saturating_duration_since(self.last_change) >= self.cfg.debounce;
        let waited_long = self.dirty_since.is_some_and(|d| t.saturating_duration_since(d) >= self.cfg.max_delay);
        (self.dirty_since.is_some() && (quiet || waited_long))
            || t.saturating_duration_since(self.last_round) >= self.cfg.refresh
    }

    /// The earliest time at which [`Schedule::due`] turns true, for the
    /// status view's "next round".
    pub(crate) fn next_due(&self) -> Instant {
        let mut at = self.last_round + self.cfg.refresh;
        if let Some(dirty) = self.dirty_since {
            at = at.min((self.last_change + self.cfg.debounce).min(dirty + self.cfg.max_delay));
        }
        match self.retry_at {
            Some(retry) => at.max(retry),
            None => at,
        }
    }

    /// A round ended at `t`: `reached` says whether any holder took it
    /// (false: try again after a debounce, the change still pending).
    pub(crate) fn round_done(&mut self, t: Instant, reached: bool) {
        self.last_round = t;
        if reached {
            self.dirty_since = None;
            self.retry_at = None;
        } else {
            self.retry_at = Some(t + self.cfg.debounce);
        }
    }

    /// Nothing to replicate (empty manifest): the change is settled.
    pub(crate) fn nothing_to_do(&mut self, t: Instant) {
        self.last_round = t;
        self.dirty_since = None;
        self.retry_at = None;
    }
}

/// The background loop: snapshot after changes (debounced, bounded by
/// `max_delay`), at least every `refresh`, holder audits every
/// `audit_interval`. Started once per engine by `workers::spawn_all`.
pub(crate) fn spawn(inner: Arc<Inner>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let w = Worker::new(&inner, "manifest");
        w.set_state("waiting for manifest changes");
        let cfg = settings(&inner);
        let tick = (cfg.debounce / 4).clamp(Duration::from_millis(200), Duration::from_secs(10));
        let changes = match inner.db.call(|m| m.total_changes()).await {
            Ok(n) => n,
            Err(e) => {
                w.set_error(format!("cannot read the manifest; replication not running: {e}"));
                return;
            }
        };
        let start = Instant::now();
        let mut schedule = Schedule::new(cfg.clone(), changes, start);
        let mut next_audit = start + jittered(cfg.audit_interval);
        let mut unreachable: HashMap<PeerId, u32> = HashMap::new();
        inner.replication.set_next_due(&schedule);
        while w.sleep(&inner, tick).await {
            match inner.db.call(|m| m.total_changes()).await {
                Ok(n) => schedule.observe(n, Instant::now()),
                Err(e) => w.set_error(format!("reading the change count failed: {e}")),
            }
            inner.replication.set_next_due(&schedule);
            let t = Instant::now();
            if t >= next_audit {
                next_audit = t + jittered(cfg.audit_interval);
                let _permit = inner.workers.throttle().background().await;
                w.set_state("auditing the holders of our manifest");
                match audit_holders(&inner, &mut unreachable, cfg.unreachable_limit).await {
                    Ok((audits, needs_round, own)) => {
                        schedule.own_writes(own);
                        let passed = audits.iter().filter(|a| a.outcome == "passed").count();
                        w.done(format!("{passed} of {} manifest holders passed their audit", audits.len()));
                        if needs_round {
                            schedule.holder_lost(Instant::now());
                        }
                    }
                    Err(e) => w.set_error(format!("manifest holder audit failed: {e}")),
                }
            }
            if !schedule.due(Instant::now()) {
                continue;
            }
            let _permit = inner.workers.throttle().background().await;
            w.set_state("sending a manifest snapshot");
            match replicate_once(&inner, cfg.holders).await {
                Ok((report, own)) => {
                    schedule.own_writes(own);
                    schedule.round_done(Instant::now(), !report.stored.is_empty());
                    if report.stored.is_empty() {
                        w.set_error(format!("manifest snapshot {} reached no holder; retrying", report.version));
                    } else {
                        w.done(format!(
                            "manifest snapshot {} held by {} of {} wanted peers",
                            report.version,
                            report.stored.len(),
                            cfg.holders
                        ));
                    }
                }
                Err(ReplicationError::Empty) => {
                    schedule.nothing_to_do(Instant::now());
                    w.done("manifest empty: nothing to replicate yet");
                }
                Err(e) => {
                    schedule.round_done(Instant::now(), false);
                    w.set_error(format!("manifest replication round failed; retrying: {e}"));
                }
            }
            inner.replication.set_next_due(&schedule);
        }
        w.set_state("stopped");
    })
}

/// What replication did since the engine started, for the status view:
/// the last round, each holder's last audit, when the next round is due.
/// Kept in memory only; MANIFEST.db keeps the holders and their versions.
#[derive(Default)]
pub(crate) struct Tracker {
    state: std::sync::Mutex<Tracked>,
}

#[derive(Default, Clone)]
struct Tracked {
    last_round: Option<(i64, String)>,
    next_due_at: Option<i64>,
    audits: HashMap<PeerId, crate::views::HolderAuditView>,
}

impl Tracker {
    fn with<T>(&self, f: impl FnOnce(&mut Tracked) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn round_done(&self, at: i64, want: usize, result: &Result<(ReplicationReport, u64), ReplicationError>) {
        let words = match result {
            Ok((r, _)) if r.stored.is_empty() => {
                format!("snapshot {} reached no holder ({} peers tried)", r.version, r.failed.len())
            }
            Ok((r, _)) => format!("snapshot {} stored on {} of {want} wanted peers", r.version, r.stored.len()),
            Err(ReplicationError::Empty) => "nothing to replicate yet: the manifest is empty".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        self.with(|t| t.last_round = Some((at, words)));
    }

    fn audited(&self, peer: PeerId, at: i64, audit: &HolderAudit) {
        let view = crate::views::HolderAuditView {
            at,
            outcome: audit.outcome.clone(),
            served_version: audit.served,
            detail: audit.detail.clone(),
        };
        self.with(|t| t.audits.insert(peer, view));
    }

    fn set_next_due(&self, schedule: &Schedule) {
        let wait = schedule.next_due().saturating_duration_since(Instant::now());
        let at = now().saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX));
        self.with(|t| t.next_due_at = Some(at));
    }

    fn snapshot(&self) -> Tracked {
        self.with(|t| t.clone())
    }
}

/// The replication state in one word and one sentence: the one place where
/// "up to date", "behind", "too few holders" and "not replicated yet" are
/// decided. `versions` are the versions the holders confirmed.
pub(crate) fn classify(latest: u64, has_content: bool, versions: &[u64], target: usize) -> (&'static str, String) {
    let current = versions.iter().filter(|v| **v >= latest).count();
    let older = versions.len() - current;
    if versions.is_empty() {
        let why = if !has_content {
            "the manifest is empty, so there is nothing to replicate yet".to_string()
        } else if latest == 0 {
            "no snapshot has gone out yet".to_string()
        } else {
            format!("no peer holds a copy of it any more (newest snapshot: version {latest}); the next round looks for holders")
        };
        return ("not_replicated", format!("Not replicated yet: {why}."));
    }
    if current == 0 {
        let newest = versions.iter().max().copied().unwrap_or(0);
        return (
            "behind",
            format!(
                "Behind: no holder has the newest snapshot (version {latest}); {} {} version {newest} or older.",
                plural(versions.len(), "peer"),
                hold(versions.len())
            ),
        );
    }
    if current < target {
        let also = if older > 0 { format!(" ({older} more {} an older one)", hold(older)) } else { String::new() };
        return (
            "too_few_holders",
            format!(
                "Too few holders: {current} of the {target} wanted peers {} the newest snapshot (version {latest}){also}.",
                hold(current)
            ),
        );
    }
    ("up_to_date", format!("Up to date: {} {} the newest snapshot (version {latest}).", plural(current, "peer"), hold(current)))
}

fn hold(n: usize) -> &'static str {
    if n == 1 {
        "holds"
    } else {
        "hold"
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The Backup view's replication figures.
pub(crate) async fn status(inner: &Inner) -> Result<crate::views::ReplicationView, DbError> {
    let target = settings(inner).holders;
    let (latest, has_content, holders) =
        inner.db.call(|m| Ok((m.snapshot_version()?, !is_empty(m)?, m.snapshot_holders()?))).await?;
    let tracked = inner.replication.snapshot();
    let versions: Vec<u64> = holders.iter().map(|h| h.version).collect();
    let (state, summary) = classify(latest, has_content, &versions, target);
    Ok(crate::views::ReplicationView {
        state: state.to_string(),
        summary,
        latest_version: latest,
        has_content,
        target_holders: u32::try_from(target).unwrap_or(u32::MAX),
        current_holders: versions.iter().filter(|v| **v >= latest).count() as u32,
        last_replicated_at: holders.iter().map(|h| h.stored_at).max(),
        holders: holders
            .into_iter()
            .map(|h| crate::views::ManifestHolderView {
                peer: h.peer.to_base58(),
                confirmed_version: h.version,
                confirmed_at: h.stored_at,
                addresses: h.addresses,
                last_audit: tracked.audits.get(&h.peer).cloned(),
            })
            .collect(),
        last_round_at: tracked.last_round.as_ref().map(|(at, _)| *at),
        last_round: tracked.last_round.map(|(_, words)| words),
        next_due_at: tracked.next_due_at,
    })
}

impl Node {
    /// Makes a snapshot now and sends it to `holders` peers (default from
    /// the engine's settings when `None`): the admin page's "back up the
    /// manifest now", and tests that cannot wait for the debounce.
    pub async fn replicate_manifest_now(&self, holders: Option<usize>) -> Result<ReplicationReport, ReplicationError> {
        let want = holders.unwrap_or_else(|| settings(&self.inner).holders);
        replicate_once(&self.inner, want).await.map(|(r, _)| r)
    }

    /// Audits every holder of our snapshot now (fetch back, verify); failed
    /// holders are forgotten so the next round replaces them.
    pub async fn audit_manifest_holders(&self) -> Result<Vec<HolderAudit>, ReplicationError> {
        let mut unreachable = HashMap::new();
        let limit = settings(&self.inner).unreachable_limit;
        Ok(audit_holders(&self.inner, &mut unreachable, limit).await?.0)
    }

    /// The recovery kit as of now (holders, their addresses, newest version).
    pub async fn recovery_kit(&self) -> Result<RecoveryKit, ReplicationError> {
        let owner = self.peer_id();
        Ok(self.inner.db.call(move |m| m.recovery_kit(owner, now())).await?)
    }

    /// The sealed recovery kit as bytes (the `/api/backup/kit` download);
    /// opens only with the same 24 words.
    pub async fn recovery_kit_file(&self) -> Result<Vec<u8>, ReplicationError> {
        let kit = self.recovery_kit().await?;
        kit.seal(&manifest_key(&self.inner)).map_err(|e| ReplicationError::Kit(e.to_string()))
    }

    /// The sealed recovery kit as QR-friendly text (`BUNKERKIT1:…`).
    pub async fn recovery_kit_text(&self) -> Result<String, ReplicationError> {
        let kit = self.recovery_kit().await?;
        kit.to_text(&manifest_key(&self.inner)).map_err(|e| ReplicationError::Kit(e.to_string()))
    }

    /// Opens a recovery kit (file bytes or text) with this box's words.
    pub fn open_recovery_kit(&self, bytes: &[u8]) -> Result<RecoveryKit, ReplicationError> {
        let key = manifest_key(&self.inner);
        let text = std::str::from_utf8(bytes).ok().filter(|t| t.trim_start().to_ascii_uppercase().starts_with(bunker_manifest::KIT_TEXT_PREFIX));
        match text {
            Some(t) => RecoveryKit::from_text(t, &key),
            None => RecoveryKit::open(bytes, &key),
        }
        .map_err(|e| ReplicationError::Kit(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ReplicationConfig {
        ReplicationConfig {
            debounce: Duration::from_secs(300),
            max_delay: Duration::from_secs(3600),
            refresh: Duration::from_secs(86_400),
            ..ReplicationConfig::default()
        }
    }

    #[test]
    fn a_change_goes_out_after_the_quiet_time_not_before() {
        let boot = Instant::now();
        let mut s = Schedule::new(cfg(), 10, boot);
        s.round_done(boot, true); // boot snapshot done
        let s5 = |n| boot + Duration::from_secs(n);
        assert!(!s.due(s5(100)));
        s.observe(11, s5(100));
        assert!(!s.due(s5(399)), "299 s of quiet is not enough");
        s.observe(12, s5(350)); // another change restarts the quiet time
        assert!(!s.due(s5(640)));
        assert!(s.due(s5(650)));
        s.round_done(s5(650), true);
        assert!(!s.due(s5(700)), "nothing changed since");
    }

    #[test]
    fn a_manifest_that_never_stops_changing_still_goes_out_after_max_delay() {
        let boot = Instant::now();
        let mut s = Schedule::new(cfg(), 0, boot);
        s.round_done(boot, true);
        let at = |n| boot + Duration::from_secs(n);
        for i in 1..=36 {
            s.observe(i, at(i * 100));
            assert!(!s.due(at(i * 100)), "at {} s", i * 100);
        }
        s.observe(37, at(3700));
        assert!(s.due(at(3700)), "one hour after the first pending change");
    }

    #[test]
    fn the_own_writes_of_a_round_are_not_a_change_and_a_quiet_box_refreshes_daily() {
        let boot = Instant::now();
        let mut s = Schedule::new(cfg(), 0, boot);
        assert!(s.due(boot + Duration::from_secs(300)), "the boot counts as a change");
        s.own_writes(5);
        s.round_done(boot + Duration::from_secs(301), true);
        s.observe(5, boot + Duration::from_secs(302));
        assert!(!s.due(boot + Duration::from_secs(10_000)));
        assert!(s.due(boot + Duration::from_secs(301 + 86_400)));
    }

    #[test]
    fn a_round_that_reached_nobody_is_retried_after_a_debounce_and_a_lost_holder_triggers_one() {
        let boot = Instant::now();
        let mut s = Schedule::new(cfg(), 0, boot);
        let at = |n| boot + Duration::from_secs(n);
        s.round_done(at(300), false);
        assert!(!s.due(at(400)));
        assert!(s.due(at(600)), "retried with the change still pending");
        s.round_done(at(600), true);
        s.holder_lost(at(700));
        assert!(s.due(at(700)), "a lost holder is replaced at once");
    }

    #[test]
    fn next_due_is_when_due_turns_true() {
        let boot = Instant::now();
        let at = |n| boot + Duration::from_secs(n);
        let mut s = Schedule::new(cfg(), 0, boot);
        assert_eq!(s.next_due(), at(300), "the boot counts as a change: one debounce");
        s.round_done(at(300), true);
        assert_eq!(s.next_due(), at(300 + 86_400), "nothing pending: the daily refresh");
        s.observe(1, at(400));
        assert_eq!(s.next_due(), at(700));
        assert!(!s.due(at(699)) && s.due(at(700)));
        s.round_done(at(700), false);
        assert_eq!(s.next_due(), at(1000), "a failed round is retried after a debounce");
        assert!(!s.due(at(999)) && s.due(at(1000)));
    }

    #[test]
    fn the_state_says_what_the_holders_have() {
        let (state, text) = classify(0, false, &[], 5);
        assert_eq!(state, "not_replicated");
        assert!(text.contains("empty"), "{text}");
        assert_eq!(classify(0, true, &[], 5).0, "not_replicated");
        let (state, text) = classify(4, true, &[], 5);
        assert_eq!(state, "not_replicated");
        assert!(text.contains("version 4"), "{text}");
        let (state, text) = classify(4, true, &[3, 2], 5);
        assert_eq!(state, "behind");
        assert!(text.contains("version 4") && text.contains("2 peers hold version 3"), "{text}");
        let (state, text) = classify(4, true, &[4, 3], 5);
        assert_eq!(state, "too_few_holders");
        assert!(text.contains("1 of the 5 wanted peers holds") && text.contains("1 more holds an older one"), "{text}");
        let (_, text) = classify(4, true, &[4], 1);
        assert_eq!(text, "Up to date: 1 peer holds the newest snapshot (version 4).");
        let (state, text) = classify(4, true, &[4, 4], 2);
        assert_eq!(state, "up_to_date");
        assert!(text.contains("2 peers hold the newest snapshot (version 4)"), "{text}");
    }

    #[test]
    fn provider_key_is_the_documented_derivation_and_differs_per_owner() {
        let a = bunker_net::Keypair::generate_ed25519().public().to_peer_id();
        let b = bunker_net::Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(manifest_provider_key(&a), blake3::derive_key("bunker 2026-11 manifest provider key", &a.to_bytes()));
        assert_ne!(manifest_provider_key(&a), manifest_provider_key(&b));
    }
}
