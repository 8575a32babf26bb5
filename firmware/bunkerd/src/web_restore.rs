//! Restore from the 24 words asked for on the admin page, the daemon's side.
//!
//! The daemon runs an engine under the seed it created at first start. The
//! owner of a lost box types that box's words during setup; the request is
//! accepted only while the current seed holds none of the owner's data (no
//! files, contracts or payments in MANIFEST.db, no sats in its wallet).
//! Then the daemon's run loop ([`crate::run`]) stops the engine, and
//! [`switch_seed`] discards what was derived from the old seed (MANIFEST.db,
//! Lightning's state, the object store) and writes the new seed (atomically,
//! 0600, fsync'd); the loop starts the engine again under the new seed and
//! [`run_restore`] runs `Node::restore` in the background, its progress at
//! `GET /api/restore` and on the OLED. The admin login (`admin.json`) and
//! the sessions stay: the owner stays logged in.
//!
//! A marker file (`restore-pending`) is written when the request is
//! accepted, before anything is discarded, and removed when the restore is
//! done: a daemon restarted in
//! between (power cut, crash) runs the restore again at start, and the page
//! may ask again after a failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bunker_core::seed::Seed;
use bunker_node::recovery::{RestoreProgress, RestoreStage};
use bunker_node::Node;
use bunker_panel::{RecoveryPhase, RecoveryProgress};
use bunker_web::restore::StartFuture;
use bunker_web::{EngineSlot, RestoreControl, RestoreRefusal, RestoreState, RestoreSummary};
use bunkerd::data_dir::SEED_FILE;
use bunkerd::front_panel::PanelRecovery;
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use crate::engine::MANIFEST_FILE;

/// Marker file in the data directory while a restore is pending.
pub const PENDING_FILE: &str = "restore-pending";
/// Lightning's directory in the data directory (`Config::ln_config`).
const LN_DIR: &str = "ln";
/// How long the panel shows "Recovery complete" after the end.
const DONE_ON_PANEL: Duration = Duration::from_secs(120);

/// A restore the page asked for: the owner's words and, if given, the
/// recovery kit's text.
pub struct Request {
    /// The lost box's seed.
    pub seed: Seed,
    /// The recovery kit (its text), opened once the engine runs under `seed`.
    pub kit: Option<Vec<u8>>,
}

/// The restore control the admin page talks to.
pub struct WebRestore {
    slot: Arc<EngineSlot>,
    requests: mpsc::Sender<Request>,
    data_dir: PathBuf,
    state: Mutex<(RestoreState, Option<Instant>)>,
}

impl WebRestore {
    /// A control that hands accepted seeds to the run loop on `requests`.
    pub fn new(slot: Arc<EngineSlot>, requests: mpsc::Sender<Request>, data_dir: &Path) -> WebRestore {
        WebRestore { slot, requests, data_dir: data_dir.to_owned(), state: Mutex::new((RestoreState::Idle, None)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (RestoreState, Option<Instant>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records where the restore stands.
    pub fn set(&self, state: RestoreState) {
        let ended = matches!(state, RestoreState::Done(_) | RestoreState::Failed { .. }).then(Instant::now);
        *self.lock() = (state, ended);
    }

    /// What the panel shows of it: the progress while it runs and a while
    /// after it is done; a failure is an alert.
    pub fn panel(&self) -> PanelRecovery {
        let (state, ended) = self.lock().clone();
        let progress = |p| PanelRecovery { progress: Some(p), failed: None };
        match state {
            RestoreState::Idle => PanelRecovery::default(),
            RestoreState::Switching => progress(recovery(RecoveryPhase::FindingManifest, 0, 0)),
            RestoreState::Running(p) => progress(recovery(phase(&p), p.files_restored, p.files_to_restore)),
            RestoreState::Done(s) if ended.is_some_and(|t| t.elapsed() < DONE_ON_PANEL) => {
                progress(recovery(RecoveryPhase::Done, s.files_restored, s.files_restored))
            }
            RestoreState::Done(_) => PanelRecovery::default(),
            RestoreState::Failed { .. } => {
                PanelRecovery { progress: None, failed: Some("Restore failed: see admin page".to_string()) }
            }
        }
    }
}

fn recovery(phase: RecoveryPhase, files_done: u64, files_total: u64) -> RecoveryProgress {
    // NOTE(restore): RestoreProgress counts files, not bytes, so the panel's
    // bar goes by files (bytes stay 0 = unknown).
    RecoveryProgress { phase, files_done, files_total, bytes_done: 0, bytes_total: 0 }
}

/// The panel's step for the engine's stage.
fn phase(p: &RestoreProgress) -> RecoveryPhase {
    match p.stage {
        RestoreStage::Starting | RestoreStage::FindingHolders => RecoveryPhase::FindingManifest,
        RestoreStage::FetchingManifest | RestoreStage::Importing => RecoveryPhase::FetchingManifest,
        RestoreStage::Searching => RecoveryPhase::LastResortSearch,
        RestoreStage::RestoringFiles => RecoveryPhase::RestoringFiles,
        RestoreStage::Done => RecoveryPhase::Done,
        // Shown as an alert once the state says failed.
        RestoreStage::Failed => RecoveryPhase::FindingManifest,
    }
}

impl RestoreControl for WebRestore {
    fn start(&self, seed: Seed, kit: Option<Vec<u8>>) -> StartFuture<'_> {
        Box::pin(async move {
            if matches!(self.lock().0, RestoreState::Switching | RestoreState::Running(_)) {
                return Err(RestoreRefusal::Running);
            }
            let api = self.slot.get().ok_or_else(|| {
                RestoreRefusal::Unavailable("the storage engine is not running yet: try again in a moment".into())
            })?;
            bunker_web::restore::refuse_if_in_use(&api.node).await?;
            {
                let mut state = self.lock();
                if matches!(state.0, RestoreState::Switching | RestoreState::Running(_)) {
                    return Err(RestoreRefusal::Running);
                }
                // Marked before the page marks setup complete: a daemon that
                // restarts before the seed is swapped still offers the restore.
                mark_pending(&self.data_dir)
                    .map_err(|e| RestoreRefusal::Unavailable(format!("cannot record the restore: {e:#}")))?;
                self.requests.try_send(Request { seed, kit }).map_err(|_| RestoreRefusal::Running)?;
                *state = (RestoreState::Switching, None);
            }
            Ok(())
        })
    }

    fn state(&self) -> RestoreState {
        self.lock().0.clone()
    }

    fn pending(&self) -> bool {
        self.data_dir.join(PENDING_FILE).exists()
    }
}

/// Whether a restore was pending when the daemon stopped (it runs again).
pub fn pending_at_start(data_dir: &Path) -> bool {
    data_dir.join(PENDING_FILE).exists()
}

/// With the engine stopped: marks the restore pending, discards what the
/// old seed made (MANIFEST.db, Lightning's state, the object store's
/// contents) and writes `seed` as the box's seed. The admin state, the
/// pairing code, the lock and the socket stay. The seed is written last: a
/// crash before it leaves the old seed with nothing of it, and the pending
/// restore runs again at start.
pub fn switch_seed(data_dir: &Path, store_root: &Path, seed: &Seed) -> anyhow::Result<()> {
    mark_pending(data_dir)?;
    for name in [MANIFEST_FILE.to_string(), format!("{MANIFEST_FILE}-wal"), format!("{MANIFEST_FILE}-shm"), format!("{MANIFEST_FILE}-journal")] {
        remove_file(&data_dir.join(name))?;
    }
    remove_dir(&data_dir.join(LN_DIR))?;
    empty_dir(store_root)?;
    let text = Zeroizing::new(format!("{}\n", seed.phrase().as_str()));
    let path = data_dir.join(SEED_FILE);
    bunker_web::store::write_private(&path, text.as_bytes())
        .with_context(|| format!("cannot write the seed file {}", path.display()))?;
    tracing::info!(data_dir = %data_dir.display(), "seed replaced by the words given on the admin page; the first seed's data discarded");
    Ok(())
}

fn mark_pending(data_dir: &Path) -> anyhow::Result<()> {
    bunker_web::store::write_private(&data_dir.join(PENDING_FILE), b"restore from the 24 words pending\n")
        .context("cannot mark the restore pending")
}

/// Ends the pending mark once the restore is done.
fn finish(data_dir: &Path) {
    if let Err(e) = remove_file(&data_dir.join(PENDING_FILE)) {
        tracing::warn!(error = %e, "cannot remove the restore-pending mark; the restore will run again at the next start");
    }
}

fn remove_file(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn remove_dir(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Removes everything inside `dir` (which stays: it may be a mount point).
fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().with_context(|| format!("cannot read {}", path.display()))?.is_dir() {
            remove_dir(&path)?;
        } else {
            remove_file(&path)?;
        }
    }
    Ok(())
}

/// Runs `Node::restore` on `node` (the engine under the restored seed),
/// with the recovery kit `kit` if the owner gave one, publishing its
/// progress on `control`; clears the pending mark when done.
pub async fn run_restore(node: Node, control: Arc<WebRestore>, kit: Option<Vec<u8>>) {
    let kit = match kit.map(|bytes| node.open_recovery_kit(&bytes)).transpose() {
        Ok(kit) => kit,
        Err(e) => {
            control.set(RestoreState::Failed {
                error: format!("the recovery kit does not open with these words ({e}): check that it is the lost box's kit, or leave it out"),
            });
            return;
        }
    };
    let (tx, mut rx) = watch::channel(RestoreProgress::default());
    control.set(RestoreState::Running(RestoreProgress::default()));
    let publish = {
        let control = control.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                if !matches!(p.stage, RestoreStage::Done | RestoreStage::Failed) {
                    control.set(RestoreState::Running(p));
                }
            }
        })
    };
    tracing::info!(peer_id = %node.peer_id(), "restoring this box's manifest from its holders");
    let result = node.restore(kit, tx).await;
    let _ = publish.await;
    match result {
        Ok(report) => {
            for w in &report.warnings {
                tracing::warn!("{w}");
            }
            tracing::info!(version = report.version, files = report.files, fetched = report.files_restored, "restore done");
            control.set(RestoreState::Done(RestoreSummary::from_report(node.peer_id().to_string(), &report)));
            finish(&control.data_dir);
        }
        Err(e) => {
            tracing::error!(error = %e, "restore failed");
            control.set(RestoreState::Failed {
                error: format!("the restore failed: {e}. Check that the box is online and its peers are reachable, then try again."),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_shows_a_running_restore_by_files_and_a_failed_one_as_an_alert() {
        use bunker_panel::{Alert, BoxState};
        use bunkerd::disk_watch::DiskSnapshot;
        use bunkerd::front_panel::snapshot;
        let tmp = tempfile::tempdir().unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let r = WebRestore::new(Arc::new(EngineSlot::default()), tx, tmp.path());
        let addr = "127.0.0.1:8080".parse().unwrap();
        assert!(r.panel().progress.is_none() && r.panel().failed.is_none());
        assert!(snapshot(None, addr, &DiskSnapshot::default(), None, r.panel(), false).recovery.is_none());

        r.set(RestoreState::Running(RestoreProgress {
            stage: RestoreStage::RestoringFiles,
            files_restored: 1,
            files_to_restore: 4,
            ..RestoreProgress::default()
        }));
        let shown = snapshot(None, addr, &DiskSnapshot::default(), None, r.panel(), false);
        assert_eq!(shown.state, BoxState::Recovering);
        let rec = shown.recovery.expect("the recovery screen has a restore to show");
        assert_eq!((rec.phase, rec.files_done, rec.files_total, rec.per_mille()), (RecoveryPhase::RestoringFiles, 1, 4, Some(250)));

        r.set(RestoreState::Failed { error: "no valid manifest snapshot found".into() });
        let shown = snapshot(None, addr, &DiskSnapshot::default(), None, r.panel(), false);
        assert!(shown.recovery.is_none());
        assert_ne!(shown.state, BoxState::Recovering);
        assert!(matches!(&shown.alerts[0], Alert::Other(text) if text.contains("Restore failed")), "{:?}", shown.alerts);
    }

    #[test]
    fn switching_discards_the_old_seeds_data_and_keeps_the_admin_state() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let store = dir.join("store");
        std::fs::create_dir_all(store.join("objects/ab")).unwrap();
        std::fs::write(store.join("objects/ab/x"), b"sealed").unwrap();
        std::fs::create_dir_all(dir.join("ln/ldk")).unwrap();
        std::fs::write(dir.join(MANIFEST_FILE), b"db").unwrap();
        std::fs::write(dir.join(format!("{MANIFEST_FILE}-wal")), b"wal").unwrap();
        std::fs::write(dir.join("admin.json"), b"{}").unwrap();
        std::fs::write(dir.join(SEED_FILE), b"old words").unwrap();
        let seed = Seed::generate();
        switch_seed(dir, &store, &seed).unwrap();
        assert!(!dir.join(MANIFEST_FILE).exists() && !dir.join(format!("{MANIFEST_FILE}-wal")).exists());
        assert!(!dir.join("ln").exists());
        assert!(store.exists() && std::fs::read_dir(&store).unwrap().next().is_none(), "store emptied, kept");
        assert_eq!(std::fs::read(dir.join("admin.json")).unwrap(), b"{}", "admin login kept");
        let written = std::fs::read_to_string(dir.join(SEED_FILE)).unwrap();
        assert!(Seed::from_phrase(&written).unwrap() == seed);
        assert_eq!(std::fs::metadata(dir.join(SEED_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(pending_at_start(dir));
        finish(dir);
        assert!(!pending_at_start(dir));
    }
}
