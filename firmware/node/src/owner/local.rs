//! The keep-local copy: sealed under replica index [`LOCAL_REPLICA_INDEX`]
//! like any replica, so a stolen USB disk reveals nothing, and kept in the
//! object store's local area under the file's object id.

use std::sync::Arc;

use bunker_core::FileId;
use bunker_manifest::{DiskId, LocalCopy};

use crate::node::Inner;
use crate::objects::local_name;

/// Replica index of the keep-local copy: far from the indices of peer
/// copies (0, 1, …), so its key is never a peer's.
pub(crate) const LOCAL_REPLICA_INDEX: u32 = u32::MAX;

/// The manifest's disk row for the object store (local copies reference a disk).
pub(crate) async fn store_disk(inner: &Arc<Inner>) -> Result<DiskId, String> {
    crate::host::store_disk(inner).await
}

/// Where the manifest says the local copy of `file_id` is.
pub(crate) fn local_copy(disk: DiskId, file_id: &FileId) -> LocalCopy {
    LocalCopy { disk, rel_path: local_name(file_id) }
}
