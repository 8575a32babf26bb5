//! The keep-local copy: sealed under replica index [`LOCAL_REPLICA_INDEX`]
//! like any replica, so a stolen USB disk reveals nothing, and kept in the
//! local area of the data disk it was sealed on, under the file's object id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bunker_core::FileId;
use bunker_manifest::{DiskId, LocalCopy};

use crate::node::Inner;
use crate::objects::{local_name, Area};

/// Replica index of the keep-local copy: far from the indices of peer
/// copies (0, 1, …), so its key is never a peer's.
pub(crate) const LOCAL_REPLICA_INDEX: u32 = u32::MAX;

/// Makes sure every data disk has its MANIFEST.db row (local copies name
/// one) and returns the first disk's. The row a local copy records is the
/// one of the disk it actually landed on: [`local_copy`] takes it from the
/// move into the local area.
pub(crate) async fn store_disk(inner: &Arc<Inner>) -> Result<DiskId, String> {
    crate::data_disks::record_rows(inner).await.map_err(|e| e.to_string())?;
    crate::host::store_disk(inner).await
}

/// Where the manifest says the local copy of `file_id` is: the disk the
/// object store moved it to (`fallback` only if the move was not seen, e.g.
/// the disk had no MANIFEST.db row yet).
pub(crate) fn local_copy(fallback: DiskId, file_id: &FileId) -> LocalCopy {
    let name = local_name(file_id);
    let disk = moved().remove(&name).unwrap_or(fallback);
    LocalCopy { disk, rel_path: name }
}

/// Where the local copy of `file_id` is, asked of the object store itself:
/// the exact form for callers that hold the engine (put and redundancy
/// changes should move to it; [`local_copy`] serves the older call shape).
#[allow(dead_code)] // until put.rs and redundancy.rs call it (issue 11 report)
pub(crate) async fn local_copy_for(inner: &Arc<Inner>, file_id: &FileId) -> Result<LocalCopy, String> {
    let name = local_name(file_id);
    let disk = inner
        .objects
        .disk_of(Area::Local, &name)
        .ok_or_else(|| format!("the local copy {name} is on no data disk"))?;
    let row = crate::data_disks::row_of(inner, &disk).await.map_err(|e| e.to_string())?;
    moved().remove(&name);
    Ok(LocalCopy { disk: row, rel_path: name })
}

/// The object store's word on which disk a local copy was just moved to,
/// keyed by the copy's name (a random file id: unique across engines in one
/// process), taken by [`local_copy`]. Small hand-off between the sync move
/// and the record that `put` builds after it.
pub(crate) fn note_local_disk(name: &str, disk: DiskId) {
    let mut m = moved();
    // Bounded: a move whose record never came (a failed put) is forgotten.
    if m.len() > 4096 {
        m.clear();
    }
    m.insert(name.to_string(), disk);
}

fn moved() -> std::sync::MutexGuard<'static, HashMap<String, DiskId>> {
    static MOVED: OnceLock<Mutex<HashMap<String, DiskId>>> = OnceLock::new();
    MOVED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}
