//! Storing a new file: one read pass seals every copy (the keep-local one
//! and one per peer replica, each under its own key), then each replica is
//! placed under a signed contract, and the file, its replicas and their
//! contracts are recorded in one transaction. A failed put leaves nothing:
//! staging emptied, contracts released (or queued for release).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bunker_core::{FileId, Layout};
use bunker_manifest::{FilePath, NewFile, NewReplica, QueryError, ReplicaState};

use crate::config::Policy;
use crate::error::{DbError, PutError};
use crate::label::FileFacts;
use crate::node::{now, Inner};
use crate::objects::{local_name, Area};
use crate::owner::bridge::async_to_blocking;
use crate::owner::contracts::{record_unreleased, release_contract};
use crate::owner::local::{local_copy, store_disk, LOCAL_REPLICA_INDEX};
use crate::owner::placement::{candidates, place_one, try_order, Candidate, Placed};
use crate::owner::seal::{seal_fanout, SealFailure, Staged};
use crate::owner::{policy, views};
use crate::views::FileView;

pub(crate) async fn put<R>(inner: &Arc<Inner>, path: &str, size: u64, policy: Policy, body: R) -> Result<FileView, PutError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    policy::check(policy).map_err(PutError::Policy)?;
    let file_path = FilePath::parse(path)?;
    // Every contract carries the path in its owner label: refuse what no label holds.
    crate::label::check_path(&file_path).map_err(|e| PutError::Policy(e.to_string()))?;
    let probe = file_path.clone();
    if inner.db.call(move |m| m.file(&probe)).await?.is_some() {
        return Err(PutError::Exists(path.to_string()));
    }
    let io = |reason: String| PutError::Io { path: path.to_string(), reason };
    let layout = Layout::new(size, inner.config.segment_size).map_err(|e| io(e.to_string()))?;
    let file_id = FileId::random();
    let mut indices: Vec<u32> = (0..u32::from(policy.copies)).collect();
    if policy.keep_local {
        indices.push(LOCAL_REPLICA_INDEX);
    }

    // Every copy is sealed here before it is sent: refuse at once, before a
    // byte is read, when the disks cannot hold them all.
    room_for(inner, path, layout, indices.len()).await?;

    let started = std::time::Instant::now();
    let mut reader = async_to_blocking(body);
    let sealing = Arc::clone(inner);
    let indices_len = indices.len();
    let sealed = tokio::task::spawn_blocking(move || {
        seal_fanout(&sealing.objects, &sealing.keys, file_id, layout, &indices, |fan| {
            std::io::copy(&mut reader, fan).map(|_| ())
        })
    })
    .await
    .map_err(|e| io(format!("sealing task: {e}")))?;
    let (staged, plaintext_blake3) = match sealed {
        Ok(s) => s,
        Err(SealFailure::Size { expected, got }) => {
            return Err(PutError::SizeMismatch { path: path.to_string(), expected, got })
        }
        // Another put filled the disks meanwhile, or the sidecars did not fit.
        Err(e @ SealFailure::NoRoom { .. }) => {
            tracing::info!(path, error = %e, "put refused: the data disks filled up while sealing");
            return Err(no_room(inner, path, layout, indices_len).await);
        }
        Err(SealFailure::DiskFailed { disk, reason, .. }) => {
            return Err(PutError::DiskFailed { path: path.to_string(), disk, reason })
        }
        Err(e) => return Err(io(e.to_string())),
    };
    let (local, remote): (Vec<Staged>, Vec<Staged>) = staged.into_iter().partition(|s| s.index == LOCAL_REPLICA_INDEX);
    let sealed_at = started.elapsed();

    let labelled_at = now();
    let facts = FileFacts {
        object_id: file_id,
        path: file_path.clone(),
        layout,
        plaintext_blake3,
        keep_local: policy.keep_local,
        redundancy: policy.copies,
        created_at: labelled_at,
        modified_at: labelled_at,
    };
    let placed = match place_all(inner, &facts, &remote, &HashSet::new()).await {
        Ok(p) => p,
        Err((placed, reason)) => {
            undo(inner, &placed, &local, &remote, false).await;
            return Err(PutError::Placement { placed: placed.len(), wanted: remote.len(), reason });
        }
    };

    let placed_at = started.elapsed();
    let at = now();
    let disk = match (&local[..], policy.keep_local) {
        ([_], true) => match store_disk(inner).await {
            Ok(d) => Some(d),
            Err(e) => {
                undo(inner, &placed, &local, &remote, false).await;
                return Err(io(format!("recording the local copy's disk: {e}")));
            }
        },
        _ => None,
    };
    if let Some(l) = local.first() {
        let mv = Arc::clone(inner);
        let name = l.name.clone();
        let moved = tokio::task::spawn_blocking(move || mv.objects.rename(Area::Staging, &name, Area::Local, &local_name(&file_id)))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = moved {
            undo(inner, &placed, &local, &remote, false).await;
            return Err(io(format!("keeping the local copy: {e}")));
        }
    }
    let file = NewFile {
        path: file_path.clone(),
        object_id: file_id,
        size,
        plaintext_blake3,
        segment_size: layout.segment_size(),
        keep_local: policy.keep_local,
        redundancy: policy.copies,
        local: disk.map(|d| local_copy(d, &file_id)),
        created_at: facts.created_at,
        modified_at: facts.modified_at,
    };
    let contracts: Vec<_> = placed.iter().map(|p| p.contract.clone()).collect();
    let replicas: Vec<_> = placed.iter().map(|p| new_replica(inner, p, at)).collect();
    let recorded = inner.db.call(move |m| m.put_file_with_contracts(&file, &contracts, &replicas)).await;
    if let Err(e) = recorded {
        undo(inner, &placed, &local, &remote, true).await;
        return Err(match e {
            DbError::Query(QueryError::AlreadyExists { what }) if what.starts_with("file ") => PutError::Exists(path.to_string()),
            e => e.into(),
        });
    }
    remove_staged(inner, &remote).await;
    tracing::info!(path, size, copies = policy.copies, keep_local = policy.keep_local, "file stored");
    // Where a put's time goes (the put_get bench prints these with RUST_LOG).
    tracing::debug!(
        path,
        seal_ms = sealed_at.as_millis() as u64,
        place_ms = (placed_at - sealed_at).as_millis() as u64,
        record_ms = (started.elapsed() - placed_at).as_millis() as u64,
        "put stages"
    );
    views::file_view(inner, &file_path).await.map_err(PutError::Db)?.ok_or_else(|| io("recorded file vanished".into()))
}

/// Refuses a put of `copies` sealed copies of `layout` that the data disks
/// cannot hold: each copy needs its sealed size on one disk, all of them
/// together fit in the room beyond the reserves.
async fn room_for(inner: &Arc<Inner>, path: &str, layout: Layout, copies: usize) -> Result<(), PutError> {
    let objects = Arc::clone(inner);
    let (largest, free) = tokio::task::spawn_blocking(move || {
        (objects.objects.largest_free(), objects.objects.free_bytes().unwrap_or(0))
    })
    .await
    .map_err(|e| PutError::Io { path: path.to_string(), reason: format!("reading the free space: {e}") })?;
    let one = layout.sealed_size();
    let needed = one.saturating_mul(copies as u64);
    if largest < one || free < needed {
        return Err(no_room(inner, path, layout, copies).await);
    }
    Ok(())
}

/// The refusal of a put that does not fit, with the room there is now.
async fn no_room(inner: &Arc<Inner>, path: &str, layout: Layout, copies: usize) -> PutError {
    let objects = Arc::clone(inner);
    let (free, disks) = tokio::task::spawn_blocking(move || {
        (objects.objects.free_bytes().unwrap_or(0), objects.objects.describe())
    })
    .await
    .unwrap_or_else(|_| (0, "the data disks could not be read".into()));
    PutError::NoRoom {
        path: path.to_string(),
        copies,
        needed: layout.sealed_size().saturating_mul(copies as u64),
        free,
        disks,
    }
}

/// The replica row for a placed copy, first audit scheduled.
pub(crate) fn new_replica(inner: &Inner, p: &Placed, at: i64) -> NewReplica {
    NewReplica {
        index: p.index,
        host: p.host,
        root: p.root,
        stored_size: p.sealed_len,
        contract: Some(p.contract.id),
        state: ReplicaState::Active,
        next_audit_at: policy::next_due(at, inner.config.audit_interval),
        created_at: at,
    }
}

/// Places every staged replica on a distinct host (avoiding shared subnets
/// while possible). On failure returns what was placed (to undo) and why.
pub(crate) async fn place_all(
    inner: &Arc<Inner>,
    facts: &FileFacts,
    staged: &[Staged],
    exclude: &HashSet<bunker_net::PeerId>,
) -> Result<Vec<Placed>, (Vec<Placed>, String)> {
    if staged.is_empty() {
        return Ok(Vec::new());
    }
    let bytes = staged.iter().map(|s| s.sealed_len).max().unwrap_or(0);
    let pool = candidates(inner, bytes, exclude).await;
    place_all_from(inner, facts, staged, pool).await
}

/// Uploads running at once: each holds a few read-ahead chunks and a
/// stream's windows, so memory stays bounded whatever the copy count.
const UPLOADS_AT_ONCE: usize = 4;

/// [`place_all`] with the candidates already asked. Replicas go to their
/// hosts concurrently (each host hashes and writes its copy at its own
/// pace): in rounds, each waiting replica gets the best candidate no other
/// replica of the round took, other subnets first; a host that fails a
/// replica leaves the pool (as in [`place_one`]) and the replica waits for
/// the next round. A replica left without a candidate fails the whole set.
pub(crate) async fn place_all_from(
    inner: &Arc<Inner>,
    facts: &FileFacts,
    staged: &[Staged],
    mut pool: Vec<Candidate>,
) -> Result<Vec<Placed>, (Vec<Placed>, String)> {
    let mut placed: Vec<Placed> = Vec::new();
    let mut subnets: HashSet<String> = HashSet::new();
    let mut waiting: Vec<&Staged> = staged.iter().collect();
    let mut reasons: HashMap<u32, Vec<String>> = HashMap::new();
    while !waiting.is_empty() {
        let mut round_subnets = subnets.clone();
        let mut round: Vec<(&Staged, Candidate)> = Vec::new();
        for s in waiting.iter().take(UPLOADS_AT_ONCE) {
            let pick = try_order(&pool, &round_subnets)
                .into_iter()
                .find(|&i| round.iter().all(|(_, c)| c.peer != pool[i].peer));
            // No host left for this one: the round's others still go (as
            // one after the other did), and the next round reports it.
            let Some(i) = pick else { break };
            if let Some(sn) = &pool[i].subnet {
                round_subnets.insert(sn.clone());
            }
            round.push((*s, pool[i].clone()));
        }
        if round.is_empty() {
            let first = waiting.first().map(|s| s.index).unwrap_or_default();
            let mut why = reasons.remove(&first).unwrap_or_default();
            if why.is_empty() {
                why.push("no peer offered room within the price caps".into());
            }
            return Err((placed, why.join("; ")));
        }
        let uploads = round.iter().map(|(s, c)| async move {
            let mut only = vec![c.clone()];
            place_one(inner, facts, s, &mut only, &mut HashSet::new()).await
        });
        let outcomes = futures::future::join_all(uploads).await;
        for ((s, c), outcome) in round.into_iter().zip(outcomes) {
            pool.retain(|x| x.peer != c.peer);
            match outcome {
                Ok(p) => {
                    if let Some(sn) = c.subnet {
                        subnets.insert(sn);
                    }
                    waiting.retain(|w| w.index != s.index);
                    placed.push(p);
                }
                Err(why) => reasons.entry(s.index).or_default().extend(why),
            }
        }
    }
    // In the order the replicas were given.
    placed.sort_by_key(|p| staged.iter().position(|s| s.index == p.index));
    Ok(placed)
}

/// Releases placed contracts (queueing those whose host is away) and empties staging.
pub(crate) async fn undo(inner: &Arc<Inner>, placed: &[Placed], local: &[Staged], remote: &[Staged], local_moved: bool) {
    for p in placed {
        if let Err(e) = release_contract(inner, p.host, &p.contract.id).await {
            record_unreleased(inner, p.contract.clone(), e).await;
        }
    }
    remove_staged(inner, remote).await;
    remove_staged(inner, local).await;
    if local_moved {
        if let Some(l) = local.first() {
            let name = l.name.split('-').next().map(str::to_string).unwrap_or_default();
            let objects = Arc::clone(inner);
            let _ = tokio::task::spawn_blocking(move || objects.objects.remove(Area::Local, &name)).await;
        }
    }
}

/// Deletes staged objects (best effort: staging is emptied at start anyway).
pub(crate) async fn remove_staged(inner: &Arc<Inner>, staged: &[Staged]) {
    let names: Vec<String> = staged.iter().map(|s| s.name.clone()).collect();
    let objects = Arc::clone(inner);
    let _ = tokio::task::spawn_blocking(move || {
        for n in names {
            let _ = objects.objects.remove(Area::Staging, &n);
        }
    })
    .await;
}
