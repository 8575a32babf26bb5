//! The data disks and the board, watched (issue 11): bunker-disks probes
//! every disk on a thread of its own (a hung USB disk blocks that thread,
//! never the async runtime), and the panel, `/api/status` and `bunker status`
//! read the last snapshot: disks with their state and space, and alerts
//! (missing, full, read-only or failing disk, data on the SD card,
//! undervoltage).

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bunker_disks::{DataDisk, DeviceProfile, Disks, Roots, Throttled};
use bunker_web::{DataDiskStatus, StatusAlert};

/// How often the disks are probed: a yanked disk shows within this time.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// What the last probe found.
#[derive(Debug, Clone, Default)]
pub struct DiskSnapshot {
    /// Every data disk (adopted USB disks and the store directory).
    pub disks: Vec<DataDisk>,
    /// Alerts for the OLED and the admin page.
    pub alerts: Vec<bunker_disks::Alert>,
}

/// The watcher's handle; dropping it does not stop the thread, [`DiskWatch::stop`] does.
pub struct DiskWatch {
    last: Arc<Mutex<DiskSnapshot>>,
    stop: Mutex<Option<mpsc::Sender<()>>>,
}

impl DiskWatch {
    /// Reads the board's profile, finds the adopted disks under `data_dir`
    /// plus `store_root`, and starts probing them.
    pub fn start(data_dir: &Path, store_root: &Path) -> anyhow::Result<Arc<DiskWatch>> {
        let roots = Roots::system();
        let profile = DeviceProfile::detect(&roots);
        tracing::info!(
            model = %profile.model,
            mem_mib = profile.mem_total_bytes >> 20,
            cores = profile.cores,
            seal_threads = profile.seal_threads,
            upload_concurrency = profile.upload_concurrency,
            io_buffer_kib = profile.io_buffer_bytes >> 10,
            "device profile"
        );
        let mut disks = Disks::scan(&roots, data_dir, profile.disk_reserve)
            .map_err(|e| anyhow::anyhow!("cannot look for data disks under {}: {e}", data_dir.display()))?;
        disks
            .add_dir(store_root)
            .map_err(|e| anyhow::anyhow!("storage.root {}: {e}", store_root.display()))?;
        let last = Arc::new(Mutex::new(DiskSnapshot::default()));
        let (tx, rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&last);
        std::thread::Builder::new()
            .name("bunker disks".into())
            .spawn(move || watch(disks, roots, shared, rx))
            .map_err(|e| anyhow::anyhow!("cannot start the disk watcher: {e}"))?;
        Ok(Arc::new(DiskWatch { last, stop: Mutex::new(Some(tx)) }))
    }

    /// The last probe's findings.
    pub fn snapshot(&self) -> DiskSnapshot {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops probing (the thread ends after its current probe).
    pub fn stop(&self) {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The disks as `/api/status` shows them.
    pub fn status_disks(&self) -> Vec<DataDiskStatus> {
        self.snapshot().disks.iter().map(disk_status).collect()
    }

    /// The alerts as `/api/status` shows them.
    pub fn status_alerts(&self) -> Vec<StatusAlert> {
        self.snapshot()
            .alerts
            .into_iter()
            .map(|a| StatusAlert {
                severity: format!("{:?}", a.severity).to_lowercase(),
                short: a.short,
                text: a.text,
            })
            .collect()
    }
}

fn disk_status(d: &DataDisk) -> DataDiskStatus {
    DataDiskStatus {
        id: d.id.clone(),
        label: d.label.clone(),
        mount_path: d.mount_path.display().to_string(),
        state: d.state.as_str().to_string(),
        total_bytes: d.capacity.total_bytes,
        free_bytes: d.capacity.free_bytes,
        usable_bytes: d.capacity.usable_bytes(),
        on_system_device: d.on_system_device,
        last_error: d.last_error.clone(),
    }
}

fn watch(mut disks: Disks, roots: Roots, last: Arc<Mutex<DiskSnapshot>>, stop: mpsc::Receiver<()>) {
    loop {
        match disks.probe() {
            Ok(changes) => {
                for c in changes {
                    let text = disks.get(&c.disk).map(|d| d.label.clone()).unwrap_or_else(|| c.disk.clone());
                    tracing::warn!(disk = %text, from = c.from.as_str(), to = c.to.as_str(), "data disk changed state");
                }
            }
            Err(e) => tracing::warn!(error = %e, "probing the data disks failed"),
        }
        let mut alerts = disks.alerts();
        if let Some(t) = Throttled::read(&roots) {
            alerts.extend(t.alerts());
        }
        *last.lock().unwrap_or_else(|p| p.into_inner()) = DiskSnapshot { disks: disks.disks().to_vec(), alerts };
        match stop.recv_timeout(PROBE_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            // Stopped: the sender was dropped.
            _ => return,
        }
    }
}
