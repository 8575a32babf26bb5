//! The very last resort: no valid manifest anywhere. Every contract we made
//! carries an owner label sealed under our key (`crate::label`), and hosts
//! answer `/bunker/holdings/1` with the contracts they hold for our PeerId
//! only. Each label is checked before anything is rebuilt from it:
//!
//! - the terms carry our own signature (we made them) and the host's
//!   countersignature (it accepted them), checked against the PeerIds;
//! - the label opens under our label key with that contract id (a host
//!   cannot move a label to another contract or forge one);
//! - its root and layout agree with the signed terms and with the root the
//!   host says it stores.
//!
//! A label that fails any check is ignored and logged, never trusted. From
//! the rest, files, replicas and contracts are rebuilt in MANIFEST.db; the
//! files are then read back through the ordinary verified paths (every
//! segment against its Merkle root, the whole file against its blake3).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bunker_core::FileId;
use bunker_manifest::{
    ContractDirection, ContractId, NewContract, NewFile, NewReplica, PeerSighting, QueryError, ReplicaState,
};
use bunker_net::{Holding, HoldingsRequest, HoldingsResponse, OfferRequest, PeerId, MAX_HOLDINGS_PER_PAGE};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::{set, RestoreProgress};
use crate::error::DbError;
use crate::label::{self, OwnerLabel};
use crate::node::{now, Inner};
use crate::owner::placement::{remember_ln_node_id, retrieval_price};
use crate::owner::policy;
use crate::sign;

/// Peers asked at once.
const ASK_CONCURRENCY: usize = 4;
/// Longest one peer may take to give all its pages.
const PER_PEER: Duration = Duration::from_secs(120);
/// Pages read from one peer at most (64 contracts each): a host cannot keep
/// us paging forever.
const MAX_PAGES: usize = 4096;

/// What the label fallback did.
#[derive(Debug, Default)]
pub(super) struct LabelRestore {
    /// Peers that answered.
    pub(super) peers_answered: u32,
    /// Files rebuilt.
    pub(super) files: u64,
    /// Replicas (and contracts) rebuilt.
    pub(super) replicas: u64,
    /// Labels or files not used: (host or path, why).
    pub(super) ignored: Vec<(String, String)>,
}

/// One checked label with where it came from.
struct Checked {
    host: PeerId,
    holding: Holding,
    label: OwnerLabel,
}

/// Every page a peer holds for us, in order; stops at the page cap, when
/// the peer stops making progress, or at [`PER_PEER`].
async fn ask(inner: &Inner, peer: PeerId) -> Result<Vec<Holding>, String> {
    let all = async {
        let mut out: Vec<Holding> = Vec::new();
        let mut after = None;
        for _ in 0..MAX_PAGES {
            let request = HoldingsRequest { after, max: MAX_HOLDINGS_PER_PAGE };
            match inner.net.holdings(peer, request).await.map_err(|e| e.to_string())? {
                HoldingsResponse::Page { holdings, next } => {
                    out.extend(holdings);
                    match next {
                        // Contract ids only go up: anything else would loop.
                        Some(n) if after.is_none_or(|a| n > a) => after = Some(n),
                        Some(_) => return Err("the host's pages do not advance".to_string()),
                        None => return Ok(out),
                    }
                }
                HoldingsResponse::Refused { reason } => {
                    return Err(format!("refused: {}", crate::owner::placement::clip(&reason)))
                }
            }
        }
        tracing::warn!(%peer, pages = MAX_PAGES, "stopped reading a host's holdings at the page cap");
        Ok(out)
    };
    tokio::time::timeout(PER_PEER, all).await.map_err(|_| format!("no complete answer within {PER_PEER:?}"))?
}

/// The checks of the module doc; the opened label when all pass.
fn check(inner: &Inner, host: &PeerId, h: &Holding) -> Result<OwnerLabel, String> {
    let t = &h.terms;
    sign::verify_terms(&inner.peer_id(), t, &h.owner_signature).map_err(|e| format!("not terms we signed: {e}"))?;
    sign::verify_terms(host, t, &h.host_signature).map_err(|e| format!("host countersignature: {e}"))?;
    let l = label::open(&inner.keys, &t.contract_id, &t.owner_label).map_err(|e| e.to_string())?;
    if l.root != t.object_root || h.root != t.object_root {
        return Err(format!(
            "roots disagree: label {}, terms {}, stored {}",
            hex::encode(&l.root[..8]),
            hex::encode(&t.object_root[..8]),
            hex::encode(&h.root[..8])
        ));
    }
    if l.file.layout.size() != t.plain_bytes
        || l.file.layout.segment_size() != t.segment_size
        || l.file.layout.sealed_size() != t.object_bytes
    {
        return Err("the label's layout disagrees with the signed terms".into());
    }
    Ok(l)
}

/// Asks `peers` (a few at a time) what they hold for us and keeps the
/// labels that pass [`check`]; the others go to `ignored`.
async fn gather_labels(
    inner: &Inner,
    peers: Vec<PeerId>,
    progress: &watch::Sender<RestoreProgress>,
    out: &mut LabelRestore,
) -> Vec<Checked> {
    let mut checked = Vec::new();
    let mut seen_contracts = HashSet::new();
    let mut next = peers.into_iter();
    let mut pending = FuturesUnordered::new();
    loop {
        while pending.len() < ASK_CONCURRENCY {
            let Some(peer) = next.next() else { break };
            pending.push(async move { (peer, ask(inner, peer).await) });
        }
        let Some((peer, answer)) = pending.next().await else { break };
        set(progress, |p| p.holders_tried += 1);
        let holdings = match answer {
            Ok(h) => h,
            Err(why) => {
                tracing::info!(%peer, reason = %why, "no holdings from this peer");
                continue;
            }
        };
        out.peers_answered += 1;
        tracing::info!(%peer, count = holdings.len(), "peer holds contracts for us");
        for h in holdings {
            match check(inner, &peer, &h) {
                Ok(label) if seen_contracts.insert(h.terms.contract_id) => {
                    checked.push(Checked { host: peer, holding: h, label })
                }
                Ok(_) => {}
                Err(why) => {
                    tracing::warn!(%peer, contract = %hex::encode(h.terms.contract_id), reason = %why, "owner label ignored");
                    out.ignored.push((peer.to_base58(), format!("contract {}: {why}", hex::encode(h.terms.contract_id))));
                }
            }
        }
    }
    checked
}

/// One file to rebuild: the file row, its contracts and replicas.
struct Rebuilt {
    file: NewFile,
    contracts: Vec<NewContract>,
    replicas: Vec<NewReplica>,
}

/// Groups checked labels by object id. The file's facts come from its
/// newest label (latest modification, then highest replica index); a
/// replica whose label disagrees with them, or repeats an index, is left
/// out. Of two objects claiming one path, the newer wins.
fn rebuild(inner: &Inner, checked: Vec<Checked>, out: &mut LabelRestore) -> Vec<Rebuilt> {
    let mut by_object: BTreeMap<FileId, Vec<Checked>> = BTreeMap::new();
    for c in checked {
        by_object.entry(c.label.file.object_id).or_default().push(c);
    }
    let at = now();
    let cfg = &inner.config;
    let mut files: Vec<Rebuilt> = Vec::new();
    for (_, mut group) in by_object {
        group.sort_by_key(|c| std::cmp::Reverse((c.label.file.modified_at, c.label.replica_index)));
        let facts = group[0].label.file.clone();
        let mut indices = HashSet::new();
        let mut rebuilt = Rebuilt {
            file: NewFile {
                path: facts.path.clone(),
                object_id: facts.object_id,
                size: facts.layout.size(),
                plaintext_blake3: facts.plaintext_blake3,
                segment_size: facts.layout.segment_size(),
                keep_local: facts.keep_local,
                redundancy: facts.redundancy,
                local: None,
                created_at: facts.created_at,
                modified_at: facts.modified_at,
            },
            contracts: Vec::new(),
            replicas: Vec::new(),
        };
        for c in group {
            let f = &c.label.file;
            if f.layout != facts.layout || f.plaintext_blake3 != facts.plaintext_blake3 {
                out.ignored.push((c.host.to_base58(), format!("{}: a replica's label disagrees with the file's", facts.path)));
                continue;
            }
            if !indices.insert(c.label.replica_index) {
                out.ignored.push((c.host.to_base58(), format!("{}: replica {} twice", facts.path, c.label.replica_index)));
                continue;
            }
            let t = &c.holding.terms;
            let start = c.holding.accepted_at.clamp(0, at);
            let id = ContractId(t.contract_id);
            rebuilt.contracts.push(NewContract {
                id,
                direction: ContractDirection::OursOnPeer,
                peer: c.host,
                object_root: t.object_root,
                size_bytes: t.object_bytes,
                price_msat_per_gib_day: t.price_msat_per_gib_day,
                retrieval_price_msat: retrieval_price(t.object_bytes, t.retrieval_msat_per_gib),
                audit_interval_secs: cfg.audit_interval.as_secs().max(1),
                full_check_interval_secs: cfg.full_check_interval.as_secs().max(1),
                is_swap: t.swap,
                term_start_at: start,
                term_end_at: start.saturating_add(i64::try_from(t.term_secs).unwrap_or(i64::MAX)),
                terms: sign::terms_record(t),
                our_signature: c.holding.owner_signature.clone(),
                peer_signature: c.holding.host_signature.clone(),
                created_at: start,
            });
            rebuilt.replicas.push(NewReplica {
                index: c.label.replica_index,
                host: c.host,
                root: t.object_root,
                stored_size: t.object_bytes,
                contract: Some(id),
                state: ReplicaState::Active,
                next_audit_at: policy::next_due(at, cfg.audit_interval),
                created_at: start,
            });
        }
        files.push(rebuilt);
    }
    // One object per path: the most recently modified.
    files.sort_by_key(|f| std::cmp::Reverse(f.file.modified_at));
    let mut paths = HashSet::new();
    files.retain(|f| {
        let fresh = paths.insert(f.file.path.to_path_string());
        if !fresh {
            out.ignored.push((f.file.path.to_path_string(), "an older object at the same path".into()));
        }
        fresh
    });
    files
}

/// Asks `peers` what they hold for us and rebuilds every file whose labels
/// check out into the live MANIFEST.db (files already there, by path or
/// object id, are left alone). Hosts that answered are remembered with
/// their addresses and, when they offer one signed, their Lightning node id
/// (what audits reconnect to and payments go to).
pub(super) async fn restore_from_labels(
    inner: &Arc<Inner>,
    peers: Vec<PeerId>,
    progress: &watch::Sender<RestoreProgress>,
) -> Result<LabelRestore, DbError> {
    let mut out = LabelRestore::default();
    set(progress, |p| {
        p.holders_found = peers.len() as u32;
        p.message = format!("no manifest anywhere: asking {} peers what they hold for this box", peers.len());
    });
    let checked = gather_labels(inner, peers, progress, &mut out).await;
    let hosts: HashSet<PeerId> = checked.iter().map(|c| c.host).collect();
    let files = rebuild(inner, checked, &mut out);

    let mut addresses: HashMap<PeerId, Vec<String>> = HashMap::new();
    if let Ok(summary) = inner.net.peers().await {
        for info in summary.connected {
            if let Ok(p) = info.peer_id.parse::<PeerId>() {
                addresses.insert(p, info.addresses);
            }
        }
    }
    let sightings: Vec<PeerSighting> = hosts
        .iter()
        .map(|h| PeerSighting {
            peer: *h,
            addresses: addresses.remove(h).unwrap_or_default(),
            ln_node_id: None,
            seen_at: now(),
        })
        .collect();
    inner
        .db
        .call(move |m| {
            for s in &sightings {
                m.upsert_peer(s)?;
            }
            Ok(())
        })
        .await?;

    for f in files {
        let path = f.file.path.clone();
        let (object_id, replicas) = (f.file.object_id, f.replicas.len() as u64);
        let recorded = inner
            .db
            .call(move |m| {
                if m.file(&f.file.path)?.is_some() {
                    return Ok(Err("a file is already at this path".to_string()));
                }
                match m.put_file_with_contracts(&f.file, &f.contracts, &f.replicas) {
                    Ok(_) => Ok(Ok(())),
                    Err(QueryError::AlreadyExists { what }) => Ok(Err(format!("already recorded: {what}"))),
                    Err(e) => Err(e),
                }
            })
            .await?;
        match recorded {
            Ok(()) => {
                tracing::info!(path = %path, object = %object_id, replicas, "file rebuilt from owner labels");
                out.files += 1;
                out.replicas += replicas;
            }
            Err(why) => {
                tracing::info!(path = %path, reason = %why, "file from owner labels not rebuilt");
                out.ignored.push((path.to_path_string(), why));
            }
        }
        set(progress, |p| p.files_total = out.files);
    }

    // Their Lightning node ids, for settling what audits accrue.
    let request = OfferRequest { bytes: 0, term_secs: 0, swap_offered_bytes: 0 };
    let offers = hosts.iter().map(|h| {
        let request = request.clone();
        async move {
            if let Ok(offer) = inner.net.offer(*h, request).await {
                remember_ln_node_id(inner, *h, &offer).await;
            }
        }
    });
    futures::future::join_all(offers).await;
    Ok(out)
}
