//! Deleting a file: the manifest forgets it first (so nothing audits or
//! repairs it any more), then the local copy goes and every contract is
//! released; a host that is away is released later by the repair worker.

use std::sync::Arc;

use bunker_manifest::FilePath;

use crate::error::FileError;
use crate::node::Inner;
use crate::objects::{local_name, Area};
use crate::owner::contracts::end_contract;
use crate::owner::lock::FileLock;
use crate::owner::redundancy::LOCK_WAIT;

pub(crate) async fn remove(inner: &Arc<Inner>, path: &str) -> Result<(), FileError> {
    let file_path = FilePath::parse(path)?;
    let probe = file_path.clone();
    let Some(file) = inner.db.call(move |m| m.file(&probe)).await? else {
        return Err(FileError::NotFound(path.to_string()));
    };
    let Some(_lock) = FileLock::acquire(file.object_id, LOCK_WAIT).await else {
        return Err(FileError::Policy(format!("{path} is being repaired or changed; try again in a moment")));
    };
    let replicas = inner.db.call(move |m| m.remove_file(&file_path)).await?;
    let objects = Arc::clone(inner);
    let name = local_name(&file.object_id);
    let _ = tokio::task::spawn_blocking(move || {
        if objects.objects.exists(Area::Local, &name) {
            if let Err(e) = objects.objects.remove(Area::Local, &name) {
                tracing::warn!(error = %e, "could not delete a removed file's local copy");
            }
        }
    })
    .await;
    let ends = replicas
        .iter()
        .filter_map(|r| r.contract.map(|c| (r.host, c)))
        .map(|(host, c)| end_contract(inner, host, c));
    let confirmed = futures::future::join_all(ends).await;
    let pending = confirmed.iter().filter(|ok| !**ok).count();
    tracing::info!(path, released = confirmed.len() - pending, pending, "file removed");
    Ok(())
}
