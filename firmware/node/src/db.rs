//! MANIFEST.db from async code. rusqlite is blocking, so every call runs on
//! tokio's blocking pool behind one mutex: SQLite serialises writers anyway,
//! and one connection keeps the prepared-statement cache warm.

use std::sync::{Arc, Mutex};

use bunker_manifest::Manifest;

use crate::error::DbError;

/// Shared handle to the box's manifest.
#[derive(Clone)]
pub(crate) struct Db {
    inner: Arc<Mutex<Manifest>>,
}

impl Db {
    pub(crate) fn new(manifest: Manifest) -> Db {
        Db { inner: Arc::new(Mutex::new(manifest)) }
    }

    /// Runs `f` on the manifest on the blocking pool.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Manifest) -> Result<T, bunker_manifest::QueryError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves SQLite itself consistent
            // (the transaction rolls back), so the poisoned guard is usable.
            let mut m = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut m).map_err(DbError::Query)
        })
        .await
        .unwrap_or_else(|e| Err(DbError::Task(e.to_string())))
    }

    /// Runs `f` on the manifest on the current thread: for callers that are
    /// already on a blocking thread (bunker-ln's event thread).
    pub(crate) fn call_blocking<T>(&self, f: impl FnOnce(&mut Manifest) -> T) -> T {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }
}
