//! What the daemon tells the admin page and the CLI about itself, and where
//! first-run setup reads the 24 words from.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bunker_web::{NodeStatus, RestoreControl, RestoreState, SeedWords, StatusSource};
use bunkerd::disk_watch;

use crate::web_restore::WebRestore;

/// What the daemon knows about itself, for the admin page and the CLI.
pub struct DaemonStatus {
    pub started: Instant,
    /// Changes when a restore from the admin page replaces the seed.
    pub peer_id: Mutex<Option<String>>,
    pub data_dir: PathBuf,
    /// Set once the disk watcher runs.
    pub disks: OnceLock<Arc<disk_watch::DiskWatch>>,
    /// Set once the restore control exists: a running restore is the state.
    pub restore: OnceLock<Arc<WebRestore>>,
}

impl DaemonStatus {
    pub fn new(started: Instant, data_dir: PathBuf) -> DaemonStatus {
        DaemonStatus { started, peer_id: Mutex::new(None), data_dir, disks: OnceLock::new(), restore: OnceLock::new() }
    }

    pub fn set_peer_id(&self, peer_id: String) {
        *self.peer_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(peer_id);
    }
}

impl StatusSource for DaemonStatus {
    fn status(&self) -> NodeStatus {
        let restoring = self
            .restore
            .get()
            .is_some_and(|r| matches!(r.state(), RestoreState::Switching | RestoreState::Running(_)));
        NodeStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            state: if restoring { "restoring" } else { "running" }.to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            peer_id: self.peer_id.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            data_dir_space: match bunker_web::disk_space(&self.data_dir) {
                Ok(space) => Some(space),
                Err(e) => {
                    tracing::warn!(data_dir = %self.data_dir.display(), error = %e, "cannot read the data dir's free space");
                    None
                }
            },
            disks: self.disks.get().map(|d| d.status_disks()).unwrap_or_default(),
            alerts: self.disks.get().map(|d| d.status_alerts()).unwrap_or_default(),
        }
    }
}

/// The seed's words for first-run setup, read from the seed file at the
/// moment the page shows or checks them, so the web server holds no copy.
pub struct SeedFile(pub PathBuf);

impl SeedWords for SeedFile {
    fn words(&self) -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(&self.0).map_err(|e| format!("{}: {e}", self.0.display()))?;
        let seed = bunker_core::seed::Seed::from_phrase(&text).map_err(|e| format!("{}: {e}", self.0.display()))?;
        Ok(seed.words().map(str::to_string).collect())
    }
}
