//! One change at a time per file: a policy change, a repair and a removal
//! of the same file must not interleave (two of them could both place the
//! missing copy, or place one on a file being deleted). Keyed by the file's
//! object id, which is random and never reused, so one table serves every
//! engine in the process.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bunker_core::FileId;

fn busy() -> &'static Mutex<HashSet<FileId>> {
    static BUSY: OnceLock<Mutex<HashSet<FileId>>> = OnceLock::new();
    BUSY.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Held while one change to a file runs.
pub(crate) struct FileLock(FileId);

impl Drop for FileLock {
    fn drop(&mut self) {
        busy().lock().unwrap_or_else(|p| p.into_inner()).remove(&self.0);
    }
}

impl FileLock {
    /// The lock, if no other change of the file runs now.
    pub(crate) fn try_acquire(id: FileId) -> Option<FileLock> {
        busy().lock().unwrap_or_else(|p| p.into_inner()).insert(id).then_some(FileLock(id))
    }

    /// The lock, waiting up to `within` for another change to finish.
    pub(crate) async fn acquire(id: FileId, within: Duration) -> Option<FileLock> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(l) = FileLock::try_acquire(id) {
                return Some(l);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
