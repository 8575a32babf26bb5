//! Other owners' manifest snapshots (`/bunker/manifest/1`) and the recovery
//! search that looks for them.
//!
//! We keep one snapshot per owner, the newest: a snapshot is checked
//! (signature, owner, version) before it is kept, written beside the
//! objects under `manifests/`, recorded with `record_held_snapshot` (which
//! refuses a version not newer than the held one), and only then the older
//! file goes. Only the owner stores its own snapshot, and a fetch answers
//! with the requester's own snapshot: nobody reaches another owner's.
//! Once kept, we announce ourselves as a holder in the DHT under the owner's
//! provider key, so a new box with the same words finds us.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bunker_manifest::{inspect_snapshot, QueryError};
use bunker_net::{ManifestRequest, ManifestResponse, PeerId};

use crate::node::{now, Inner};
use crate::replication::manifest_provider_key;

const DIR: &str = "manifests";

/// Answers a manifest store or fetch.
pub(crate) async fn manifest(inner: &Arc<Inner>, peer: PeerId, request: ManifestRequest) -> ManifestResponse {
    let refused = |reason: String| {
        tracing::info!(%peer, %reason, "manifest request refused");
        ManifestResponse::Refused { reason }
    };
    match request {
        ManifestRequest::Store { version, snapshot } => match store(inner, peer, version, snapshot).await {
            Ok(()) => ManifestResponse::Stored,
            Err(reason) => refused(reason),
        },
        ManifestRequest::Fetch => match fetch(inner, peer).await {
            Ok(Some((version, snapshot))) => ManifestResponse::Snapshot { version, snapshot },
            Ok(None) => ManifestResponse::NotFound,
            Err(reason) => refused(reason),
        },
    }
}

async fn store(inner: &Arc<Inner>, peer: PeerId, version: u64, snapshot: Vec<u8>) -> Result<(), String> {
    let snapshot = Arc::new(snapshot);
    let s = Arc::clone(&snapshot);
    let info = tokio::task::spawn_blocking(move || inspect_snapshot(&s))
        .await
        .map_err(|e| format!("host task failed: {e}"))?
        .map_err(|e| format!("not a valid snapshot: {e}"))?;
    if info.owner != peer {
        return Err("a snapshot can only be stored by its owner".into());
    }
    if info.version != version {
        return Err(format!("request says version {version}, the snapshot is version {}", info.version));
    }
    let len = snapshot.len() as u64;
    let free = inner.objects.free_bytes().map_err(|e| format!("host store unavailable: {e}"))?;
    if free.saturating_sub(inner.config.hosting.safety_margin_bytes) < len {
        return Err("no room for the snapshot on this box".into());
    }
    let _one_at_a_time = inner.host.snapshots.lock().await;
    let held = inner.db.call(move |m| m.held_snapshot(&peer)).await.map_err(|e| e.to_string())?;
    if let Some(h) = &held {
        if h.version == info.version {
            return Ok(()); // a repeat: already kept
        }
        if h.version > info.version {
            return Err(format!("version {} is older than the version {} held", info.version, h.version));
        }
    }
    let rel = format!("{DIR}/{peer}-{}.snap", info.version);
    let path = inner.objects.root().join(&rel);
    let p = path.clone();
    tokio::task::spawn_blocking(move || write_file(&p, &snapshot))
        .await
        .map_err(|e| format!("host task failed: {e}"))?
        .map_err(|e| format!("host could not write the snapshot: {e}"))?;
    let r = rel.clone();
    let recorded = inner.db.call(move |m| m.record_held_snapshot(&info, &r, now())).await;
    if let Err(e) = recorded {
        let _ = std::fs::remove_file(&path);
        return match e {
            crate::error::DbError::Query(QueryError::Stale { offered, current, .. }) => {
                Err(format!("version {offered} is not newer than the version {current} held"))
            }
            other => Err(format!("host could not record the snapshot: {other}")),
        };
    }
    if let Some(old) = held {
        if old.path != rel {
            let _ = std::fs::remove_file(inner.objects.root().join(&old.path));
        }
    }
    let net = inner.net.clone();
    tokio::spawn(async move {
        if let Err(e) = net.start_providing(manifest_provider_key(&peer)).await {
            tracing::info!(owner = %peer, error = %e, "could not announce the held snapshot in the DHT");
        }
    });
    Ok(())
}

async fn fetch(inner: &Arc<Inner>, peer: PeerId) -> Result<Option<(u64, Vec<u8>)>, String> {
    let Some(held) = inner.db.call(move |m| m.held_snapshot(&peer)).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let path: PathBuf = inner.objects.root().join(&held.path);
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(|e| format!("host task failed: {e}"))?
        .map_err(|e| format!("snapshot unavailable on this box: {e}"))?;
    Ok(Some((held.version, bytes)))
}

/// Writes `bytes` to `path` durably: temporary file, fsync, rename.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
