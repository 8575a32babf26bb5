//! Disaster recovery from the 24 words (DESIGN §7).
//!
//! Same words ⇒ same PeerId and manifest key. [`Node::restore`] gathers the
//! peers that may hold our snapshot (DHT provider records under
//! [`manifest_provider_key`], the recovery kit, known and connected peers),
//! fetches each one's snapshot (`/bunker/manifest/1` answers only the owner),
//! checks signature, owner and version, and imports the newest valid one
//! into the live manifest. Older or altered snapshots are rejected with the
//! reason. Local copies that are not on this disk are marked absent; files
//! kept locally are fetched back at once from their replicas, the others on
//! first access. Audits and payments resume on the same contracts at the
//! same prices, since those are in the manifest.
//!
//! When nothing is found, the forwarded `/bunker/recover/1` search is the last
//! resort: peers forward it with a hop limit, never back along the path,
//! dropping repeats by search id; a forwarder on the successful path earns a
//! cut, paid once the manifest it led to has verified and been imported.
//!
//! When even that finds no valid manifest, [`Node::restore`] asks every peer
//! it can reach what it holds for this box (`/bunker/holdings/1`) and
//! rebuilds files, replicas and contracts from the owner labels sealed into
//! our contracts (`labels`).

mod labels;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bunker_manifest::{inspect_snapshot, FolderPath, RecoveryKit};
use bunker_net::{ManifestRequest, ManifestResponse, Multiaddr, PeerId, RecoverRequest, RecoverResponse};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::Policy;
use crate::error::DbError;
use crate::node::{Inner, Node};
use crate::replication::{manifest_key, manifest_provider_key};

/// Peers asked at once for their snapshot.
const FETCH_CONCURRENCY: usize = 4;
/// Valid snapshots kept in memory while the others are fetched: the newest
/// and fallbacks in case its import fails (each may be 32 MiB).
const KEEP_VALID: usize = 3;
/// Longest wait for the DHT provider lookup.
const DHT_TIMEOUT: Duration = Duration::from_secs(30);
/// Hops a last-resort search may travel.
pub const RECOVER_HOPS: u8 = 4;
/// Peers one forwarder passes a search on to.
const FORWARD_FANOUT: usize = 8;
/// Time one hop of a search may take; a forwarder with `h` hops left answers
/// within `h` of these (its caller waits for `h + 1`), capped below the
/// protocol's own timeout.
const HOP_BUDGET: Duration = Duration::from_secs(8);
/// How long a forwarder waits, after the first answer that found a holder,
/// for one with a shorter path. A holder's own answer ends the wait at once.
const FOUND_GRACE: Duration = Duration::from_secs(1);
/// Search ids remembered to drop loops and repeats.
const SEEN_SEARCHES: usize = 1024;
/// How long a search id is remembered.
const SEEN_FOR: Duration = Duration::from_secs(600);
/// What a forwarder on the successful path is paid, msat.
pub const FORWARDER_CUT_MSAT: u64 = 10_000;

/// Where a restore stands, for the progress bar and the admin page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RestoreStage {
    /// Not started.
    #[default]
    Starting,
    /// Asking the DHT, the kit and known peers who holds our snapshot.
    FindingHolders,
    /// Fetching and checking snapshots.
    FetchingManifest,
    /// Last resort: the forwarded `/bunker/recover/1` search.
    Searching,
    /// Swapping the newest valid snapshot in.
    Importing,
    /// Fetching files kept locally back from their replicas.
    RestoringFiles,
    /// Manifest back.
    Done,
    /// Gave up.
    Failed,
}

/// Progress of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RestoreProgress {
    /// Stage.
    pub stage: RestoreStage,
    /// Peers that may hold a snapshot.
    pub holders_found: u32,
    /// Peers asked so far.
    pub holders_tried: u32,
    /// Version imported, once it is.
    pub version: Option<u64>,
    /// Files in the restored manifest.
    pub files_total: u64,
    /// Locally kept files fetched back so far.
    pub files_restored: u64,
    /// Locally kept files to fetch back.
    pub files_to_restore: u64,
    /// What is happening, in words.
    pub message: String,
}

/// What one candidate holder gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderOutcome {
    /// The peer (base58).
    pub peer: String,
    /// Version it served, if any.
    pub version: Option<u64>,
    /// `imported`, `valid` (older than the one imported), `rejected` or `unreachable`.
    pub outcome: String,
    /// Why it was rejected or not reached.
    pub detail: String,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// Version now in the live manifest.
    pub version: u64,
    /// Whether a snapshot was imported (false when the live manifest was
    /// already as new as the newest found).
    pub imported: bool,
    /// Who served it.
    pub from: Option<String>,
    /// Every candidate and what it gave.
    pub holders: Vec<HolderOutcome>,
    /// Holders the DHT named (provider records under our provider key).
    pub dht_holders: u32,
    /// Forwarders of the last-resort search on the path to the imported
    /// snapshot, each with its cut's payment id or why it was not paid.
    pub forwarders: Vec<(String, Result<String, String>)>,
    /// Files in the manifest.
    pub files: u64,
    /// Local copies recorded but not on this box's disk, now marked absent.
    pub local_copies_absent: u64,
    /// Locally kept files whose local copy was made again from a replica
    /// (read back in full and verified against the recorded blake3).
    pub files_restored: u64,
    /// Locally kept files that could not be fetched, with why (a later
    /// access retries from the replicas).
    pub files_failed: Vec<(String, String)>,
    /// Warnings for the owner (e.g. the kit names a newer version than found).
    pub warnings: Vec<String>,
    /// Files rebuilt from the owner labels our hosts keep, when no valid
    /// manifest was found anywhere (0 when a manifest was imported).
    #[serde(default)]
    pub files_from_labels: u64,
    /// Labels (or files rebuilt from them) not used: (host or path, why).
    #[serde(default)]
    pub labels_ignored: Vec<(String, String)>,
}

/// Why a restore failed. Nothing of the live manifest changed when it did.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The recovery kit belongs to other words.
    #[error("the recovery kit is for {kit_owner}, this box is {me}")]
    WrongKit {
        /// Owner named in the kit.
        kit_owner: String,
        /// Our PeerId.
        me: String,
    },
    /// No peer served a valid snapshot.
    #[error("no valid manifest snapshot found ({tried} peers tried): {details}")]
    NotFound {
        /// Peers asked.
        tried: usize,
        /// What each said.
        details: String,
    },
    /// Every valid snapshot failed to import.
    #[error("no snapshot could be imported: {0}")]
    Import(String),
    /// MANIFEST.db failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A snapshot a holder served that passed the checks.
struct Candidate {
    peer: PeerId,
    version: u64,
    snapshot: Vec<u8>,
}

fn set(progress: &watch::Sender<RestoreProgress>, f: impl FnOnce(&mut RestoreProgress)) {
    progress.send_modify(f);
}

/// Peers that may hold our snapshot: the kit's holders (their addresses are
/// added to the swarm), the DHT's providers, holders and peers the local
/// manifest knows, and connected peers. Ourselves excluded.
async fn gather(inner: &Inner, kit: Option<&RecoveryKit>, warnings: &mut Vec<String>) -> (Vec<PeerId>, u32) {
    let me = inner.peer_id();
    let mut out = Vec::new();
    let mut seen = HashSet::from([me]);
    if let Some(kit) = kit {
        // Dial every holder the kit names at once: a kit of dead holders
        // costs one dial timeout, not one per holder.
        let dials = kit.holders.iter().map(|h| async move {
            let addrs: Vec<Multiaddr> = h.addresses.iter().filter_map(|a| a.parse().ok()).collect();
            for a in &addrs {
                let _ = inner.net.add_address(h.peer, a.clone()).await;
            }
            if !addrs.is_empty() {
                if let Err(e) = inner.net.dial(h.peer, addrs).await {
                    tracing::info!(peer = %h.peer, error = %e, "recovery kit holder not reachable at its addresses");
                }
            }
        });
        futures::future::join_all(dials).await;
        for h in &kit.holders {
            if seen.insert(h.peer) {
                out.push(h.peer);
            }
        }
    }
    let key = manifest_provider_key(&me);
    if let Err(e) = tokio::time::timeout(DHT_TIMEOUT, inner.net.bootstrap()).await.unwrap_or(Ok(())) {
        tracing::info!(error = %e, "DHT bootstrap before the manifest lookup failed");
    }
    let mut dht = 0;
    match tokio::time::timeout(DHT_TIMEOUT, inner.net.get_providers(key)).await {
        Ok(Ok(providers)) => {
            tracing::info!(count = providers.len(), "manifest holders found in the DHT");
            dht = providers.iter().filter(|p| **p != me).count() as u32;
            for p in providers {
                if seen.insert(p) {
                    out.push(p);
                }
            }
        }
        Ok(Err(e)) => warnings.push(format!("DHT lookup of our manifest holders failed: {e}")),
        Err(_) => warnings.push(format!("DHT lookup of our manifest holders gave no answer within {DHT_TIMEOUT:?}")),
    }
    if let Ok((holders, peers)) = inner.db.call(|m| Ok((m.snapshot_holders()?, m.peers()?))).await {
        for p in holders.iter().map(|h| h.peer).chain(peers.iter().map(|p| p.peer)) {
            if seen.insert(p) {
                out.push(p);
            }
        }
    }
    if let Ok(summary) = inner.net.peers().await {
        for p in summary.connected.iter().filter_map(|p| p.peer_id.parse::<PeerId>().ok()) {
            if seen.insert(p) {
                out.push(p);
            }
        }
    }
    (out, dht)
}

/// Fetches and checks one holder's snapshot.
async fn fetch_one(inner: &Inner, peer: PeerId) -> Result<Candidate, (String, String)> {
    let me = inner.peer_id();
    match inner.net.manifest(peer, ManifestRequest::Fetch).await {
        Ok(ManifestResponse::Snapshot { version, snapshot }) => {
            let checked = tokio::task::spawn_blocking(move || (inspect_snapshot(&snapshot), snapshot)).await;
            match checked {
                Ok((Ok(info), _)) if info.owner != me => {
                    Err(("rejected".into(), format!("serves the manifest of {}", info.owner)))
                }
                Ok((Ok(info), _)) if info.version != version => Err((
                    "rejected".into(),
                    format!("claims version {version}, the signed header says {}", info.version),
                )),
                Ok((Ok(info), snapshot)) => Ok(Candidate { peer, version: info.version, snapshot }),
                Ok((Err(e), _)) => Err(("rejected".into(), format!("snapshot does not verify: {e}"))),
                Err(e) => Err(("rejected".into(), format!("check failed: {e}"))),
            }
        }
        Ok(ManifestResponse::NotFound) => Err(("rejected".into(), "holds no snapshot of ours".into())),
        Ok(ManifestResponse::Refused { reason }) => Err(("rejected".into(), format!("refused: {reason}"))),
        Ok(_) => Err(("rejected".into(), "unexpected answer to a fetch".into())),
        Err(e) => Err(("unreachable".into(), e.to_string())),
    }
}

/// Asks every peer in `peers`, a few at a time; returns the valid snapshots
/// (newest first) and what each peer gave.
async fn fetch_all(
    inner: &Inner,
    peers: Vec<PeerId>,
    progress: &watch::Sender<RestoreProgress>,
) -> (Vec<Candidate>, Vec<HolderOutcome>) {
    let mut valid = Vec::new();
    let mut outcomes = Vec::new();
    let mut next = peers.into_iter();
    let mut pending = FuturesUnordered::new();
    loop {
        while pending.len() < FETCH_CONCURRENCY {
            let Some(peer) = next.next() else { break };
            pending.push(async move { (peer, fetch_one(inner, peer).await) });
        }
        let Some((peer, result)) = pending.next().await else { break };
        set(progress, |p| p.holders_tried += 1);
        match result {
            Ok(c) => {
                outcomes.push(HolderOutcome {
                    peer: peer.to_base58(),
                    version: Some(c.version),
                    outcome: "valid".into(),
                    detail: String::new(),
                });
                valid.push(c);
                valid.sort_by_key(|c| std::cmp::Reverse(c.version));
                valid.truncate(KEEP_VALID);
            }
            Err((outcome, detail)) => {
                tracing::info!(%peer, %outcome, %detail, "manifest snapshot candidate not used");
                outcomes.push(HolderOutcome { peer: peer.to_base58(), version: None, outcome, detail });
            }
        }
    }
    valid.sort_by_key(|c| std::cmp::Reverse(c.version));
    (valid, outcomes)
}

/// Every file of the tree: (path, keep_local, has_local, file row id).
fn all_files(m: &bunker_manifest::Manifest) -> Result<Vec<(String, bunker_manifest::FileEntry)>, bunker_manifest::QueryError> {
    let mut out = Vec::new();
    let mut folders = vec![FolderPath::root()];
    while let Some(folder) = folders.pop() {
        let listing = m.list_folder(&folder)?;
        let base = folder.as_str().trim_end_matches('/').to_string();
        for sub in listing.folders {
            if let Ok(f) = FolderPath::parse(&format!("{base}/{sub}")) {
                folders.push(f);
            }
        }
        for f in listing.files {
            out.push((format!("{base}/{}", f.name), f));
        }
    }
    Ok(out)
}

/// Marks absent every local copy the manifest records that is not in this
/// box's object store. Returns (files, copies marked absent).
async fn mark_missing_local_copies(inner: &Arc<Inner>) -> Result<(u64, u64), DbError> {
    let inner2 = Arc::clone(inner);
    inner
        .db
        .call(move |m| {
            let files = all_files(m)?;
            let mut absent = 0;
            for (_, entry) in &files {
                if !entry.has_local {
                    continue;
                }
                let Some(rec) = m.file_by_id(entry.id)? else { continue };
                let name = crate::objects::local_name(&rec.object_id);
                if !inner2.objects.exists(crate::objects::Area::Local, &name) {
                    m.set_local_copy(entry.id, None)?;
                    absent += 1;
                }
            }
            Ok((files.len() as u64, absent))
        })
        .await
}

/// Re-creates the local sealed copy of `path` through the owner's policy
/// path: keep-local on a file without its copy reads a replica (verified
/// segment by segment and against the recorded plaintext blake3) and seals
/// the local copy from it. A panic in that path is a failure of this file,
/// not of the restore.
async fn recreate_local(inner: &Arc<Inner>, path: &str, copies: u8) -> Result<bool, String> {
    let inner = Arc::clone(inner);
    let path = path.to_string();
    let task = tokio::spawn(async move {
        let view = crate::owner::set_policy(&inner, &path, Policy { copies, keep_local: true })
            .await
            .map_err(|e| e.to_string())?;
        Ok(view.has_local)
    });
    match task.await {
        Ok(r) => r,
        Err(e) => Err(format!("policy path failed: {e}")),
    }
}

impl Node {
    /// Brings this box's manifest back from its holders: the box was set up
    /// with the words of a lost box (same PeerId, same keys). `kit` adds the
    /// holders it lists (the way when the DHT cannot be reached). Progress is
    /// published on `progress`. A snapshot older than the live manifest is
    /// never imported. When no valid snapshot is found anywhere, the files
    /// are rebuilt from the owner labels our hosts keep with our contracts
    /// (asked of every known, configured and connected peer); only when
    /// that finds nothing either does the restore fail, changing nothing.
    pub async fn restore(
        &self,
        kit: Option<RecoveryKit>,
        progress: watch::Sender<RestoreProgress>,
    ) -> Result<RestoreReport, RestoreError> {
        let inner = &self.inner;
        let me = inner.peer_id();
        if let Some(kit) = &kit {
            if kit.owner != me {
                let e = RestoreError::WrongKit { kit_owner: kit.owner.to_string(), me: me.to_string() };
                set(&progress, |p| {
                    p.stage = RestoreStage::Failed;
                    p.message = e.to_string();
                });
                return Err(e);
            }
        }
        let result = self.restore_inner(kit, &progress, false).await;
        report_outcome(&progress, &result);
        result
    }

    /// The last resort on its own: the forwarded `/bunker/recover/1` search,
    /// then fetch, check and import as [`Node::restore`] does; forwarders on
    /// the path that led to the imported snapshot are paid their cut.
    pub async fn restore_by_search(&self, progress: watch::Sender<RestoreProgress>) -> Result<RestoreReport, RestoreError> {
        let result = self.restore_inner(None, &progress, true).await;
        report_outcome(&progress, &result);
        result
    }

    async fn restore_inner(
        &self,
        kit: Option<RecoveryKit>,
        progress: &watch::Sender<RestoreProgress>,
        search_only: bool,
    ) -> Result<RestoreReport, RestoreError> {
        let inner = &self.inner;
        let me = inner.peer_id();
        let mut warnings = Vec::new();
        set(progress, |p| {
            p.stage = RestoreStage::FindingHolders;
            p.message = "looking for the holders of this box's manifest".into();
        });
        let (peers, dht_holders) =
            if search_only { (Vec::new(), 0) } else { gather(inner, kit.as_ref(), &mut warnings).await };
        let asked = peers.clone();
        set(progress, |p| {
            p.holders_found = peers.len() as u32;
            p.stage = RestoreStage::FetchingManifest;
            p.message = format!("asking {} peers for the manifest", peers.len());
        });
        let (mut valid, mut outcomes) = fetch_all(inner, peers, progress).await;
        let mut found_via: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
        if valid.is_empty() {
            set(progress, |p| {
                p.stage = RestoreStage::Searching;
                p.message = "no holder answered: searching through peers of peers".into();
            });
            let found = search(inner, me, RECOVER_HOPS).await;
            let mut more = Vec::new();
            for (holder, path) in found {
                if holder != me && !outcomes.iter().any(|o| o.peer == holder.to_base58() && o.outcome == "valid") {
                    found_via.insert(holder, path);
                    more.push(holder);
                }
            }
            if !more.is_empty() {
                // The search names holders, not their addresses: the DHT
                // routing table (refreshed through the forwarders) has them.
                if let Ok(Err(e)) = tokio::time::timeout(DHT_TIMEOUT, inner.net.bootstrap()).await {
                    tracing::info!(error = %e, "DHT refresh before fetching from searched holders failed");
                }
                let (v, o) = fetch_all(inner, more, progress).await;
                valid = v;
                outcomes.extend(o);
            }
        }
        let mut labelled = None;
        if valid.is_empty() && !search_only {
            // No manifest anywhere: rebuild from what our hosts hold for us.
            set(progress, |p| p.stage = RestoreStage::Searching);
            let mut ask = asked;
            if let Ok(summary) = inner.net.peers().await {
                for p in summary.connected.iter().filter_map(|p| p.peer_id.parse::<PeerId>().ok()) {
                    if p != me && !ask.contains(&p) {
                        ask.push(p);
                    }
                }
            }
            let r = labels::restore_from_labels(&self.inner, ask, progress).await?;
            if r.files > 0 {
                labelled = Some(r);
            } else {
                warnings.push(format!(
                    "no owner labels to rebuild from: {} peers answered, {} labels not used",
                    r.peers_answered,
                    r.ignored.len()
                ));
            }
        }
        if valid.is_empty() && labelled.is_none() {
            let details = outcomes
                .iter()
                .map(|o| format!("{}: {} {}", o.peer, o.outcome, o.detail))
                .chain(warnings.iter().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(RestoreError::NotFound { tried: outcomes.len(), details });
        }
        let mut imported: Option<(PeerId, u64)> = None;
        let mut forwarders = Vec::new();
        if labelled.is_none() {
            if let Some(kit) = &kit {
                if valid[0].version < kit.latest_version {
                    warnings.push(format!(
                        "the recovery kit names version {}, the newest found is {}: holders of the newer one did not answer",
                        kit.latest_version, valid[0].version
                    ));
                }
            }

            set(progress, |p| {
                p.stage = RestoreStage::Importing;
                p.message = format!("importing manifest version {}", valid[0].version);
            });
            let live = inner.db.call(|m| m.snapshot_version()).await?;
            let mut import_errors = Vec::new();
            if valid[0].version <= live {
                warnings.push(format!("the live manifest is at version {live}, the newest found is {}: kept", valid[0].version));
            } else {
                for c in valid.iter_mut() {
                    if c.version <= live {
                        break;
                    }
                    let key = manifest_key(inner);
                    let snapshot = std::mem::take(&mut c.snapshot);
                    let r = inner.db.call(move |m| Ok(m.import_snapshot(&snapshot, &key, &me))).await?;
                    match r {
                        Ok(info) => {
                            imported = Some((c.peer, info.version));
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(peer = %c.peer, version = c.version, error = %e, "manifest snapshot import refused");
                            import_errors.push(format!("{} v{}: {e}", c.peer, c.version));
                            if let Some(o) = outcomes.iter_mut().find(|o| o.peer == c.peer.to_base58()) {
                                o.outcome = "rejected".into();
                                o.detail = e.to_string();
                            }
                        }
                    }
                }
                if imported.is_none() {
                    return Err(RestoreError::Import(import_errors.join("; ")));
                }
            }
            if let Some((peer, _)) = imported {
                if let Some(o) = outcomes.iter_mut().find(|o| o.peer == peer.to_base58()) {
                    o.outcome = "imported".into();
                }
                if let Some(path) = found_via.get(&peer) {
                    forwarders = pay_forwarders(inner, path).await;
                }
            }
        }
        let version = inner.db.call(|m| m.snapshot_version()).await?;
        set(progress, |p| p.version = Some(version));

        // Local copies: whatever the manifest says is on a disk that is not here is absent.
        let (files, absent) = mark_missing_local_copies(&self.inner).await?;
        let keep_local: Vec<(String, u8)> = inner
            .db
            .call(|m| {
                Ok(all_files(m)?
                    .into_iter()
                    .filter(|(_, f)| f.keep_local && !f.has_local)
                    .map(|(p, f)| (p, f.redundancy))
                    .collect())
            })
            .await?;
        set(progress, |p| {
            p.stage = RestoreStage::RestoringFiles;
            p.files_total = files;
            p.files_to_restore = keep_local.len() as u64;
            p.message = format!("fetching {} locally kept files back", keep_local.len());
        });
        let mut restored = 0;
        let mut failed = Vec::new();
        for (path, copies) in keep_local {
            match recreate_local(&self.inner, &path, copies).await {
                Ok(true) => restored += 1,
                Ok(false) => failed.push((path.clone(), "no local copy was made".into())),
                Err(e) => failed.push((path.clone(), e)),
            }
            set(progress, |p| p.files_restored = restored);
        }
        for (path, why) in &failed {
            tracing::warn!(%path, reason = %why, "locally kept file not restored yet; later accesses use the replicas");
        }
        Ok(RestoreReport {
            version,
            imported: imported.is_some(),
            from: imported.map(|(p, _)| p.to_base58()),
            holders: outcomes,
            dht_holders,
            forwarders,
            files,
            local_copies_absent: absent,
            files_restored: restored,
            files_failed: failed,
            warnings,
            files_from_labels: labelled.as_ref().map_or(0, |l| l.files),
            labels_ignored: labelled.map(|l| l.ignored).unwrap_or_default(),
        })
    }
}

// ---------------------------------------------------------------------------
// The forwarded last-resort search.

/// Search ids seen recently, per box.
///
/// NOTE(recovery): `Inner` has no slot for this (node.rs is the HOST
/// engineer's file), so it lives here keyed by our own PeerId — several
/// engines in one test process keep separate memories.
type SeenSearches = Mutex<HashMap<PeerId, VecDeque<([u8; 16], Instant)>>>;

fn seen_searches() -> &'static SeenSearches {
    static SEEN: OnceLock<SeenSearches> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// Records `id` for `me`; false when it was seen already (a loop or a repeat).
fn first_sighting(me: PeerId, id: [u8; 16]) -> bool {
    let mut map = seen_searches().lock().unwrap_or_else(|p| p.into_inner());
    let q = map.entry(me).or_default();
    let t = Instant::now();
    while q.front().is_some_and(|(_, at)| t.duration_since(*at) > SEEN_FOR) || q.len() >= SEEN_SEARCHES {
        q.pop_front();
    }
    if q.iter().any(|(s, _)| *s == id) {
        return false;
    }
    q.push_back((id, t));
    true
}

/// Time a peer with `hops_left` hops left may take to answer.
fn hop_deadline(hops_left: u8) -> Duration {
    (HOP_BUDGET * (u32::from(hops_left) + 1)).min(Duration::from_secs(50))
}

/// Answers a `/bunker/recover/1` request from `from` (the HOST's inbound
/// handler calls this). A box holding the owner's snapshot answers `Found`
/// with itself, to every copy of the search; others forward to their connected peers with one hop less,
/// never back along the path or to the owner, and drop repeats by search id.
/// The answer comes within the caller's deadline.
pub(crate) async fn answer_recover(inner: &Inner, from: PeerId, req: RecoverRequest) -> RecoverResponse {
    let me = inner.peer_id();
    let owner = req.owner;
    // A holder answers every copy of the search, not only the first: the
    // copies race along paths of different lengths, and the one that arrives
    // first is often the longer one. Answering is one lookup; only
    // forwarding, which fans out, is limited to the first sighting.
    let holds = inner.db.call(move |m| m.held_snapshot(&owner)).await;
    if let Ok(Some(_)) = holds {
        return RecoverResponse::Found { holders: vec![me], path: req.path };
    }
    if !first_sighting(me, req.search_id) {
        return RecoverResponse::NotFound;
    }
    if req.hops_left == 0 || req.path.len() >= usize::from(u8::MAX) {
        return RecoverResponse::NotFound;
    }
    let mut path = req.path.clone();
    path.push(me);
    let next = RecoverRequest { owner, search_id: req.search_id, hops_left: req.hops_left - 1, path };
    let mut exclude: HashSet<PeerId> = req.path.iter().copied().collect();
    exclude.extend([from, me, owner]);
    let within = hop_deadline(req.hops_left.saturating_sub(1));
    forward(inner, &next, &exclude, within).await.unwrap_or(RecoverResponse::NotFound)
}

/// Sends `req` to up to [`FORWARD_FANOUT`] connected peers not in `exclude`;
/// the first `Found` wins.
async fn forward(inner: &Inner, req: &RecoverRequest, exclude: &HashSet<PeerId>, within: Duration) -> Option<RecoverResponse> {
    let peers: Vec<PeerId> = match inner.net.peers().await {
        Ok(s) => s
            .connected
            .iter()
            .filter_map(|p| p.peer_id.parse::<PeerId>().ok())
            .filter(|p| !exclude.contains(p))
            .take(FORWARD_FANOUT)
            .collect(),
        Err(_) => return None,
    };
    let mut asks: FuturesUnordered<_> = peers
        .into_iter()
        .map(|p| {
            let r = req.clone();
            async move { tokio::time::timeout(within, inner.net.recover(p, r)).await }
        })
        .collect();
    // The first answer that found a holder starts a short grace for others:
    // of those, the one with the shortest path wins (fewer forwarders to pay).
    let deadline = tokio::time::sleep(within);
    tokio::pin!(deadline);
    let mut best: Option<(usize, RecoverResponse)> = None;
    loop {
        tokio::select! {
            next = asks.next() => match next {
                Some(Ok(Ok(found @ RecoverResponse::Found { .. }))) => {
                    let len = match &found { RecoverResponse::Found { path, .. } => path.len(), _ => usize::MAX };
                    if best.is_none() {
                        let until = (tokio::time::Instant::now() + FOUND_GRACE).min(deadline.deadline());
                        deadline.as_mut().reset(until);
                    }
                    if best.as_ref().is_none_or(|(l, _)| len < *l) {
                        best = Some((len, found));
                    }
                    // A neighbour that holds the snapshot itself: no path is shorter.
                    if len <= req.path.len() {
                        return best.map(|(_, f)| f);
                    }
                }
                Some(_) => {}
                None => return best.map(|(_, f)| f),
            },
            _ = &mut deadline => return best.map(|(_, f)| f),
        }
    }
}

/// The owner's side of the search: holders found, each with the forwarders
/// that led to it.
pub(crate) async fn search(inner: &Inner, owner: PeerId, hops: u8) -> Vec<(PeerId, Vec<PeerId>)> {
    let search_id: [u8; 16] = rand::random();
    first_sighting(inner.peer_id(), search_id);
    let req = RecoverRequest { owner, search_id, hops_left: hops, path: Vec::new() };
    let exclude = HashSet::from([inner.peer_id()]);
    match forward(inner, &req, &exclude, hop_deadline(hops)).await {
        Some(RecoverResponse::Found { holders, path }) => {
            // A peer can only name itself as holder of what it really serves;
            // the fetch that follows checks the snapshot.
            holders.into_iter().filter(|h| *h != owner).map(|h| (h, path.clone())).collect()
        }
        _ => Vec::new(),
    }
}

/// Pays each forwarder on the successful path its cut by keysend, once the
/// manifest it led to has been imported. Needs Lightning running and the
/// forwarder's Lightning node id (learned from its offers).
async fn pay_forwarders(inner: &Inner, path: &[PeerId]) -> Vec<(String, Result<String, String>)> {
    let mut out = Vec::new();
    let ln = inner.lightning();
    for peer in path {
        let result = match &ln {
            None => Err("Lightning is not running".to_string()),
            Some(ln) => pay_cut(inner, ln, *peer).await,
        };
        match &result {
            Ok(id) => tracing::info!(%peer, payment = %id, msat = FORWARDER_CUT_MSAT, "paid recovery forwarder"),
            Err(why) => tracing::warn!(%peer, reason = %why, "recovery forwarder not paid"),
        }
        out.push((peer.to_base58(), result));
    }
    out
}

/// One forwarder's cut by keysend; returns the payment id.
async fn pay_cut(inner: &Inner, ln: &Arc<bunker_ln::Lightning>, peer: PeerId) -> Result<String, String> {
    let hex_id = inner
        .db
        .call(move |m| Ok(m.peer(&peer)?.and_then(|r| r.ln_node_id)))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("its Lightning node id is unknown")?;
    let node = hex_id.parse::<bunker_ln::NodeId>().map_err(|e| format!("recorded Lightning node id does not parse: {e}"))?;
    let ln = Arc::clone(ln);
    tokio::task::spawn_blocking(move || ln.pay_keysend(node, FORWARDER_CUT_MSAT, None))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

impl Node {
    /// Runs the last-resort `/bunker/recover/1` search for this box's own
    /// manifest: holders found, each with the forwarders that led to it.
    pub async fn search_manifest_holders(&self) -> Vec<(PeerId, Vec<PeerId>)> {
        search(&self.inner, self.peer_id(), RECOVER_HOPS).await
    }
}


/// The progress a finished restore leaves behind, success or not.
fn report_outcome(progress: &watch::Sender<RestoreProgress>, result: &Result<RestoreReport, RestoreError>) {
    set(progress, |p| match result {
        Ok(r) => {
            p.stage = RestoreStage::Done;
            p.version = Some(r.version);
            p.message = format!("manifest version {} restored", r.version);
        }
        Err(e) => {
            p.stage = RestoreStage::Failed;
            p.message = e.to_string();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_id_is_answered_once_per_box() {
        let a = bunker_net::Keypair::generate_ed25519().public().to_peer_id();
        let b = bunker_net::Keypair::generate_ed25519().public().to_peer_id();
        let id = [7u8; 16];
        assert!(first_sighting(a, id));
        assert!(!first_sighting(a, id), "a repeat is dropped");
        assert!(first_sighting(b, id), "another box has its own memory");
    }

    #[test]
    fn deeper_hops_get_less_time_than_their_callers() {
        assert!(hop_deadline(0) < hop_deadline(1));
        assert!(hop_deadline(RECOVER_HOPS) <= Duration::from_secs(50));
    }
}
