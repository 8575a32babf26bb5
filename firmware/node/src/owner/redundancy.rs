//! Changing how many copies a file has, after it was stored: a raised
//! policy, keep-local switched on, or a lost replica being replaced. New
//! copies are sealed from a verified read of an existing one (the local
//! copy first, else the best host) under fresh replica indices, so a new
//! host never holds the same bytes as an old one.

use std::collections::HashSet;
use std::sync::Arc;

use bunker_core::Layout;
use bunker_manifest::{FilePath, FileRecord, ReplicaState};

use crate::config::Policy;
use crate::error::FileError;
use crate::node::{now, Inner};
use crate::objects::{local_name, Area};
use crate::owner::bridge::pipe;
use crate::owner::contracts::end_contract;
use crate::owner::local::{local_copy, store_disk, LOCAL_REPLICA_INDEX};
use crate::owner::lock::FileLock;

/// How long a change waits for another change of the same file (a repair copying it).
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
use crate::owner::placement::candidates;
use crate::owner::put::{new_replica, place_all_from, remove_staged, undo};
use crate::owner::read::{read_into, sources, Source};
use crate::owner::seal::{seal_fanout, Staged};
use crate::owner::{policy, views};
use crate::views::FileView;

/// Seals new copies of `file` (indices `indices`) from a verified read of
/// `from`. Returns them staged.
pub(crate) async fn reseal(
    inner: &Arc<Inner>,
    file: &FileRecord,
    from: Vec<Source>,
    indices: Vec<u32>,
) -> Result<Vec<Staged>, String> {
    let layout = Layout::new(file.size, file.segment_size).map_err(|e| e.to_string())?;
    let (writer, mut reader) = pipe();
    let reading = {
        let inner = Arc::clone(inner);
        let file = file.clone();
        tokio::spawn(async move { read_into(&inner, &file, from, writer).await.0 })
    };
    let sealing = Arc::clone(inner);
    let file_id = file.object_id;
    let sealed = tokio::task::spawn_blocking(move || {
        seal_fanout(&sealing.objects, &sealing.keys, file_id, layout, &indices, |fan| {
            std::io::copy(&mut reader, fan).map(|_| ())
        })
    })
    .await
    .map_err(|e| format!("sealing task: {e}"))?;
    let read = reading.await.map_err(|e| format!("reading task: {e}"))?;
    match (read, sealed) {
        (Err(reasons), Ok((staged, _))) => {
            remove_staged(inner, &staged).await;
            Err(format!("no copy could be read: {}", reasons.join("; ")))
        }
        (Err(reasons), Err(_)) => Err(format!("no copy could be read: {}", reasons.join("; "))),
        (Ok(()), Err(e)) => Err(e.to_string()),
        (Ok(()), Ok((staged, hash))) if hash != file.plaintext_blake3 => {
            remove_staged(inner, &staged).await;
            Err("the copy read does not hash to the recorded blake3".into())
        }
        (Ok(()), Ok((staged, _))) => Ok(staged),
    }
}

/// Adds `count` new peer replicas to `file` (and the local copy when
/// `with_local`), placed on hosts that hold none of its replicas. `avoid`
/// are sources not to read from (a replica being replaced).
pub(crate) async fn add_copies(
    inner: &Arc<Inner>,
    file: &FileRecord,
    count: usize,
    with_local: bool,
    avoid: &[bunker_manifest::ReplicaId],
) -> Result<usize, String> {
    if count == 0 && !with_local {
        return Ok(0);
    }
    let id = file.id;
    let existing = inner.db.call(move |m| m.replicas_of(id)).await.map_err(|e| e.to_string())?;
    let next = existing.iter().map(|r| r.index.saturating_add(1)).max().unwrap_or(0);
    let mut indices: Vec<u32> = (next..next.saturating_add(count as u32)).collect();
    if with_local {
        indices.push(LOCAL_REPLICA_INDEX);
    }
    let exclude: HashSet<_> = existing.iter().map(|r| r.host).collect();
    // Ask for offers before reading a whole copy: with too few hosts the
    // read would be wasted (the repair worker retries every round).
    let layout = Layout::new(file.size, file.segment_size).map_err(|e| e.to_string())?;
    let pool = candidates(inner, layout.sealed_size(), &exclude).await;
    if pool.len() < count {
        return Err(format!(
            "{} new copies wanted, {} hosts offer room within the price caps",
            count,
            pool.len()
        ));
    }
    let from: Vec<Source> = sources(inner, file, true)
        .await
        .into_iter()
        .filter(|s| !matches!(s, Source::Remote(r) if avoid.contains(&r.id)))
        .collect();
    let staged = reseal(inner, file, from, indices).await?;
    let (local, remote): (Vec<Staged>, Vec<Staged>) = staged.into_iter().partition(|s| s.index == LOCAL_REPLICA_INDEX);
    // Every new contract carries the file's owner label (recovery without a manifest).
    let facts = crate::label::FileFacts::of_record(file)?;
    let placed = match place_all_from(inner, &facts, &remote, pool).await {
        Ok(p) => p,
        Err((placed, reason)) => {
            undo(inner, &placed, &local, &remote, false).await;
            return Err(format!("only {} of {count} new copies could be placed: {reason}", placed.len()));
        }
    };
    let at = now();
    for p in &placed {
        let (contract, replica) = (p.contract.clone(), new_replica(inner, p, at));
        if let Err(e) = inner.db.call(move |m| m.add_replica_with_contract(id, &contract, &replica)).await {
            undo(inner, std::slice::from_ref(p), &[], &[], false).await;
            tracing::warn!(file = %file.path, error = %e, "could not record a new replica");
        }
    }
    remove_staged(inner, &remote).await;
    if let Some(l) = local.first() {
        let disk = store_disk(inner).await?;
        let mv = Arc::clone(inner);
        let (name, file_id) = (l.name.clone(), file.object_id);
        tokio::task::spawn_blocking(move || mv.objects.rename(Area::Staging, &name, Area::Local, &local_name(&file_id)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let copy = local_copy(disk, &file_id);
        inner.db.call(move |m| m.set_local_copy(id, Some(&copy))).await.map_err(|e| e.to_string())?;
    }
    Ok(placed.len())
}

/// Gives up replicas of `file` beyond `keep` active ones: the least
/// reliable first (most recent failures, then newest index).
async fn drop_copies(inner: &Arc<Inner>, file: &FileRecord, keep: usize) -> Result<usize, FileError> {
    let id = file.id;
    let mut active: Vec<_> =
        inner.db.call(move |m| m.replicas_of(id)).await?.into_iter().filter(|r| r.state == ReplicaState::Active).collect();
    if active.len() <= keep {
        return Ok(0);
    }
    active.sort_by_key(|r| (std::cmp::Reverse(r.consecutive_failures), std::cmp::Reverse(r.index)));
    let extra = &active[..active.len() - keep];
    for r in extra {
        let rid = r.id;
        inner.db.call(move |m| m.set_replica_state(rid, ReplicaState::Released)).await?;
        if let Some(c) = r.contract {
            end_contract(inner, r.host, c).await;
        }
    }
    Ok(extra.len())
}

pub(crate) async fn set_policy(inner: &Arc<Inner>, path: &str, new: Policy) -> Result<FileView, FileError> {
    policy::check(new).map_err(FileError::Policy)?;
    let file_path = FilePath::parse(path)?;
    let probe = file_path.clone();
    let Some(file) = inner.db.call(move |m| m.file(&probe)).await? else {
        return Err(FileError::NotFound(path.to_string()));
    };
    let id = file.id;
    let _busy = inner.workers.throttle().foreground();
    let Some(_lock) = FileLock::acquire(file.object_id, LOCK_WAIT).await else {
        return Err(FileError::Policy(format!("{path} is being repaired or changed; try again in a moment")));
    };
    let active = inner
        .db
        .call(move |m| m.replicas_of(id))
        .await?
        .iter()
        .filter(|r| r.state == ReplicaState::Active)
        .count();
    let wanted = usize::from(new.copies);
    let need_local = new.keep_local && file.local.is_none();
    if wanted > active || need_local {
        // The new contracts' owner labels carry the policy being set (a
        // restore from labels takes the newest label's policy).
        let labelled = FileRecord { keep_local: new.keep_local, redundancy: new.copies, modified_at: now(), ..file.clone() };
        add_copies(inner, &labelled, wanted.saturating_sub(active), need_local, &[])
            .await
            .map_err(|e| FileError::placement(path, e))?;
    }
    drop_copies(inner, &file, wanted).await?;
    if !new.keep_local && file.local.is_some() {
        let now_active = inner
            .db
            .call(move |m| m.replicas_of(id))
            .await?
            .iter()
            .filter(|r| r.state == ReplicaState::Active)
            .count();
        if now_active < 2 {
            return Err(FileError::Policy(format!(
                "the local copy is the safety net while only {now_active} peer copies are active"
            )));
        }
        inner.db.call(move |m| m.set_local_copy(id, None)).await?;
        let objects = Arc::clone(inner);
        let name = local_name(&file.object_id);
        let _ = tokio::task::spawn_blocking(move || objects.objects.remove(Area::Local, &name)).await;
    }
    let at = now();
    inner.db.call(move |m| m.set_file_policy(id, new.keep_local, new.copies, at)).await?;
    views::file_view(inner, &file_path).await?.ok_or_else(|| FileError::NotFound(path.to_string()))
}
