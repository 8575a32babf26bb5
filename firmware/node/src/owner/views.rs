//! The owner's read-only views: folder listings, file details, peers,
//! contracts, audits, payments and the engine's status, built from the
//! manifest, the swarm and the worker registry into `crate::views` types.

use std::collections::HashMap;
use std::sync::Arc;

use bunker_manifest::{
    AuditRecord, ContractDirection, ContractRecord, ContractState, FileEntry, FilePath, FileRecord, FolderPath,
    PaymentDirection, PaymentState, Replica, ReplicaState, MANIFEST_PATH,
};
use bunker_net::NatStatus;

use crate::config::Policy;
use crate::error::{DbError, FileError};
use crate::node::{now, Inner, LnState};
use crate::views::*;

fn join(folder: &str, name: &str) -> String {
    if folder == "/" {
        format!("/{name}")
    } else {
        format!("{folder}/{name}")
    }
}

fn entry_view(folder: &str, e: &FileEntry) -> FileView {
    FileView {
        path: join(folder, &e.name),
        size: e.size,
        modified_at: e.modified_at,
        policy: Policy { copies: e.redundancy, keep_local: e.keep_local },
        has_local: e.has_local,
        active_replicas: e.active_replicas,
        is_manifest: false,
    }
}

/// The listing line of one file.
pub(crate) async fn file_view(inner: &Arc<Inner>, path: &FilePath) -> Result<Option<FileView>, DbError> {
    let folder = FolderPath::parse(path.folder()).map_err(|e| DbError::Task(e.to_string()))?;
    let name = path.name().to_string();
    let listing = inner.db.call(move |m| m.list_folder(&folder)).await?;
    Ok(listing.files.iter().find(|e| e.name == name).map(|e| entry_view(path.folder(), e)))
}

pub(crate) async fn list(inner: &Arc<Inner>, folder: &str) -> Result<Listing, FileError> {
    let folder_path = FolderPath::parse(folder)?;
    let f2 = folder_path.clone();
    let (listing, manifest_len, holders) = inner
        .db
        .call(move |m| {
            let len = std::fs::metadata(m.path()).map(|md| md.len()).unwrap_or(0);
            Ok((m.list_folder(&f2)?, len, m.snapshot_holders()?.len()))
        })
        .await?;
    let mut files = Vec::with_capacity(listing.files.len() + 1);
    if folder_path.as_str() == "/" {
        files.push(FileView {
            path: MANIFEST_PATH.to_string(),
            size: manifest_len,
            modified_at: now(),
            policy: Policy { copies: holders.min(u8::MAX as usize) as u8, keep_local: true },
            has_local: true,
            active_replicas: holders as u32,
            is_manifest: true,
        });
    }
    files.extend(listing.files.iter().map(|e| entry_view(folder_path.as_str(), e)));
    Ok(Listing { folder: folder_path.as_str().to_string(), folders: listing.folders, files })
}

fn replica_view(r: &Replica) -> ReplicaView {
    ReplicaView {
        index: r.index,
        host: r.host.to_base58(),
        state: r.state.as_str().to_string(),
        contract: r.contract.map(|c| hex::encode(c.0)),
        last_audit_at: r.last_audit_at,
        last_full_check_at: r.last_full_check_at,
        consecutive_failures: r.consecutive_failures,
        next_audit_at: r.next_audit_at,
    }
}

fn audit_view(a: &AuditRecord, path: &str, r: Option<&Replica>) -> AuditView {
    AuditView {
        at: a.at,
        path: path.to_string(),
        replica: r.map_or(0, |r| r.index),
        host: r.map(|r| r.host.to_base58()).unwrap_or_default(),
        kind: a.kind.as_str().to_string(),
        outcome: a.outcome.as_str().to_string(),
        latency_ms: a.latency_ms,
        detail: a.detail.clone(),
    }
}

pub(crate) async fn detail(inner: &Arc<Inner>, path: &str) -> Result<FileDetail, FileError> {
    let file_path = FilePath::parse(path)?;
    let probe = file_path.clone();
    let found: Option<(FileRecord, Vec<Replica>, Vec<AuditRecord>)> = inner
        .db
        .call(move |m| {
            let Some(f) = m.file(&probe)? else { return Ok(None) };
            let replicas = m.replicas_of(f.id)?;
            let mut audits = Vec::new();
            for r in &replicas {
                audits.extend(m.audits_of_replica(r.id, 20)?);
            }
            Ok(Some((f, replicas, audits)))
        })
        .await?;
    let Some((file, replicas, mut audits)) = found else {
        return Err(FileError::NotFound(path.to_string()));
    };
    let view = file_view(inner, &file_path).await?.ok_or_else(|| FileError::NotFound(path.to_string()))?;
    audits.sort_by_key(|a| std::cmp::Reverse((a.at, a.id)));
    audits.truncate(50);
    let by_id: HashMap<_, _> = replicas.iter().map(|r| (r.id, r)).collect();
    Ok(FileDetail {
        file: view,
        blake3: hex::encode(file.plaintext_blake3),
        replicas: replicas.iter().map(replica_view).collect(),
        audits: audits.iter().map(|a| audit_view(a, &file.path, by_id.get(&a.replica).copied())).collect(),
    })
}

pub(crate) async fn peers(inner: &Arc<Inner>) -> Result<PeersView, DbError> {
    let summary = inner.net.peers().await.ok();
    let known = inner.db.call(|m| m.peers()).await?;
    let mut out: Vec<PeerView> = Vec::new();
    let connected: HashMap<String, Vec<String>> = summary
        .as_ref()
        .map(|s| s.connected.iter().map(|p| (p.peer_id.clone(), p.addresses.clone())).collect())
        .unwrap_or_default();
    for p in &known {
        let id = p.peer.to_base58();
        let live = connected.get(&id);
        let mut addresses = live.cloned().unwrap_or_default();
        for a in &p.addresses {
            if !addresses.contains(a) {
                addresses.push(a.clone());
            }
        }
        out.push(PeerView {
            connected: live.is_some(),
            peer: id,
            addresses,
            ln_node_id: p.ln_node_id.clone(),
            audit_successes: p.successes,
            audit_failures: p.failures,
            last_seen_at: if live.is_some() { now() } else { p.last_seen_at },
        });
    }
    for (id, addresses) in &connected {
        if !out.iter().any(|p| &p.peer == id) {
            out.push(PeerView {
                peer: id.clone(),
                addresses: addresses.clone(),
                connected: true,
                ln_node_id: None,
                audit_successes: 0.0,
                audit_failures: 0.0,
                last_seen_at: now(),
            });
        }
    }
    out.sort_by(|a, b| b.connected.cmp(&a.connected).then(b.last_seen_at.cmp(&a.last_seen_at)));
    Ok(PeersView {
        local_peer_id: inner.peer_id().to_base58(),
        listen_addrs: summary.as_ref().map(|s| s.listen_addresses.clone()).unwrap_or_default(),
        nat: match summary.map(|s| s.nat) {
            Some(NatStatus::Public { .. }) => "public",
            Some(NatStatus::Private) => "private",
            _ => "unknown",
        }
        .to_string(),
        peers: out,
    })
}

/// What Lightning still holds as owed per contract (the one place owed
/// amounts live, DESIGN §5), when it runs.
fn owed_by_contract(inner: &Inner) -> HashMap<[u8; 32], u64> {
    inner
        .lightning()
        .and_then(|ln| ln.owed().ok())
        .map(|v| v.into_iter().map(|o| (o.contract.0, o.owed_msat + o.in_flight_msat)).collect())
        .unwrap_or_default()
}

pub(crate) async fn contracts(inner: &Arc<Inner>) -> Result<Vec<ContractView>, DbError> {
    let rows: Vec<(ContractRecord, u64)> = inner
        .db
        .call(|m| {
            let mut out = Vec::new();
            for d in [ContractDirection::OursOnPeer, ContractDirection::TheirsOnUs] {
                for s in [ContractState::Active, ContractState::Ending, ContractState::Ended, ContractState::Broken] {
                    for c in m.contracts(d, s)? {
                        let paid = m
                            .payments_for_contract(&c.contract.id)?
                            .iter()
                            .filter(|p| p.state == PaymentState::Succeeded)
                            .map(|p| p.amount_msat)
                            .sum();
                        out.push((c, paid));
                    }
                }
            }
            Ok(out)
        })
        .await?;
    let owed = owed_by_contract(inner);
    let mut views: Vec<ContractView> = rows
        .into_iter()
        .map(|(c, paid)| ContractView {
            id: hex::encode(c.contract.id.0),
            direction: c.contract.direction.as_str().to_string(),
            peer: c.contract.peer.to_base58(),
            bytes: c.contract.size_bytes,
            price_msat_per_gib_day: c.contract.price_msat_per_gib_day,
            retrieval_price_msat: c.contract.retrieval_price_msat,
            is_swap: c.contract.is_swap,
            state: c.state.as_str().to_string(),
            term_end_at: c.contract.term_end_at,
            paid_msat: paid,
            owed_msat: owed.get(&c.contract.id.0).copied().unwrap_or(c.owed_msat),
        })
        .collect();
    views.sort_by(|a, b| a.state.cmp(&b.state).then(a.id.cmp(&b.id)));
    Ok(views)
}

pub(crate) async fn audits(inner: &Arc<Inner>, limit: u32) -> Result<Vec<AuditView>, DbError> {
    inner
        .db
        .call(move |m| {
            let mut replicas: HashMap<i64, Option<(Replica, String)>> = HashMap::new();
            let mut out = Vec::new();
            for a in m.recent_audits(limit.min(10_000))? {
                if let std::collections::hash_map::Entry::Vacant(e) = replicas.entry(a.replica.0) {
                    let found = match m.replica(a.replica) {
                        Ok(r) => m.file_by_id(r.file)?.map(|f| (r, f.path)),
                        Err(_) => None,
                    };
                    e.insert(found);
                }
                let (r, path) = match replicas.get(&a.replica.0) {
                    Some(Some((r, p))) => (Some(r), p.as_str()),
                    _ => (None, ""),
                };
                out.push(audit_view(&a, path, r));
            }
            Ok(out)
        })
        .await
}

pub(crate) async fn payments(inner: &Arc<Inner>, limit: u32) -> Result<Vec<PaymentView>, DbError> {
    let rows = inner.db.call(move |m| m.payments(None, limit.min(10_000))).await?;
    Ok(rows
        .into_iter()
        .map(|p| PaymentView {
            id: hex::encode(p.id.0),
            direction: p.direction.as_str().to_string(),
            amount_msat: p.amount_msat,
            fee_msat: p.fee_msat,
            contract: p.contract.map(|c| hex::encode(c.0)),
            state: p.state.as_str().to_string(),
            created_at: p.created_at,
        })
        .collect())
}

pub(crate) async fn status(inner: &Arc<Inner>) -> Result<NodeStatus, DbError> {
    let since = now() - 86_400;
    let (totals, under, audits, earned, spent) = inner
        .db
        .call(move |m| {
            Ok((
                m.file_totals()?,
                m.under_replicated_files(None, 100_000)?.len() as u64,
                m.audit_totals_since(since)?,
                m.payments_total_msat(PaymentDirection::Incoming)?,
                m.payments_total_msat(PaymentDirection::Outgoing)?,
            ))
        })
        .await?;
    let connected = inner.net.peers().await.map(|s| s.connected.len() as u32).unwrap_or(0);
    let offerable = match crate::host::capacity(inner).await {
        Ok(c) => c.available(&inner.config.hosting),
        Err(_) => 0,
    };
    let lightning = match &*inner.ln.read().unwrap_or_else(|p| p.into_inner()) {
        LnState::Off => "off".to_string(),
        LnState::Starting(why) if why.is_empty() => "starting".to_string(),
        LnState::Starting(why) => format!("starting: {why}"),
        LnState::Running(_) => "running".to_string(),
    };
    let workers = inner
        .workers
        .statuses()
        .into_iter()
        .map(|w| WorkerView { name: w.name.to_string(), state: w.state, next_run_at: w.next_due, last_error: w.last_error })
        .collect();
    Ok(NodeStatus {
        peer_id: inner.peer_id().to_base58(),
        files: totals.0,
        stored_bytes: totals.1,
        under_replicated: under,
        hosted_bytes: inner.objects.bytes_used(crate::objects::Area::Hosted),
        offerable_bytes: offerable,
        connected_peers: connected,
        audits_passed_24h: audits.0,
        audits_total_24h: audits.1,
        earned_msat: earned,
        spent_msat: spent,
        lightning,
        workers,
    })
}

/// Active replica count of a file, for callers deciding on repairs.
#[allow(dead_code)]
pub(crate) fn active(replicas: &[Replica]) -> usize {
    replicas.iter().filter(|r| r.state == ReplicaState::Active).count()
}
