//! The data disks and the board, watched (issue 11): bunker-disks probes
//! every disk on a thread of its own (a hung USB disk blocks that thread,
//! never the async runtime), and the panel, `/api/status` and `bunker status`
//! read the last snapshot: disks with their state and space, and alerts
//! (missing, full, read-only or failing disk, data on the SD card,
//! undervoltage).
//!
//! The engine learns the disks from here too: [`DiskWatch::engine_disks`]
//! is a watch channel of `bunker_node::DiskStatus` that changes when a disk
//! comes, goes, fills or turns read-only, and `Node::follow_disks` applies
//! it (objects on a disk that is away answered "unavailable", no new data
//! on a full one). [`DiskWatch::profile`] is the board's profile the engine
//! is tuned with. One watcher per data directory: [`DiskWatch::start`]
//! returns the running one when the engine's start-up already started it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use bunker_disks::{DataDisk, DeviceProfile, DiskState, Disks, ReservePolicy, Roots, Throttled};
use bunker_node::{DiskHealth, DiskStatus};
use bunker_web::{DataDiskStatus, StatusAlert};
use tokio::sync::watch;

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
    /// To the watcher thread: dropping it stops the thread.
    stop: Mutex<Option<mpsc::Sender<Note>>>,
    profile: DeviceProfile,
    engine: watch::Receiver<Vec<DiskStatus>>,
}

/// News for the watcher thread between probes.
enum Note {
    /// A write under `path` failed with this errno (the engine's writes: a
    /// disk that fails them is marked at once, not at the next probe).
    WriteFailed { path: PathBuf, errno: i32 },
}

/// The running watchers by data directory (the directory is locked, so
/// one daemon per directory: at most one watcher each).
fn running() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Arc<DiskWatch>>> {
    static RUNNING: OnceLock<Mutex<HashMap<PathBuf, Arc<DiskWatch>>>> = OnceLock::new();
    RUNNING.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}

impl DiskWatch {
    /// Reads the board's profile, finds the adopted disks under `data_dir`
    /// plus `store_root`, and starts probing them; or returns the watcher
    /// already running for `data_dir`.
    /// `disk_reserve` (config `reserves.disk*`) is kept free on every disk.
    pub fn start(data_dir: &Path, store_root: &Path, disk_reserve: ReservePolicy) -> anyhow::Result<Arc<DiskWatch>> {
        let mut running = running();
        if let Some(w) = running.get(data_dir) {
            return Ok(Arc::clone(w));
        }
        let w = DiskWatch::start_new(data_dir, store_root, disk_reserve)?;
        running.insert(data_dir.to_path_buf(), Arc::clone(&w));
        Ok(w)
    }

    fn start_new(data_dir: &Path, store_root: &Path, disk_reserve: ReservePolicy) -> anyhow::Result<Arc<DiskWatch>> {
        let roots = Roots::system();
        let mut profile = DeviceProfile::detect(&roots);
        profile.disk_reserve = disk_reserve;
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
        let last = Arc::new(Mutex::new(snapshot(&disks, &roots)));
        let (engine_tx, engine) = watch::channel(engine_disks(&disks));
        let (tx, rx) = mpsc::channel::<Note>();
        let shared = Arc::clone(&last);
        std::thread::Builder::new()
            .name("bunker disks".into())
            .spawn(move || watch_disks(disks, roots, shared, engine_tx, rx))
            .map_err(|e| anyhow::anyhow!("cannot start the disk watcher: {e}"))?;
        Ok(Arc::new(DiskWatch { last, stop: Mutex::new(Some(tx)), profile, engine }))
    }

    /// The board's profile, read once at start.
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }

    /// The disks as the engine takes them (`Node::follow_disks`); changes
    /// when a disk's state, reserve or place changes, not with every byte
    /// written (free space the engine measures itself).
    pub fn engine_disks(&self) -> watch::Receiver<Vec<DiskStatus>> {
        self.engine.clone()
    }

    /// The last probe's findings.
    pub fn snapshot(&self) -> DiskSnapshot {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops probing (the thread ends after its current probe).
    pub fn stop(&self) {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        running().retain(|_, w| !std::ptr::eq(Arc::as_ptr(w), self));
    }

    /// A disk the engine found failing, read-only or gone while writing to
    /// it (`Node::disk_faults`): its state changes now, for the panel,
    /// `/api/status` and the engine, instead of at the next probe.
    pub fn note_engine_fault(&self, disk: &DiskStatus) {
        let errno = match disk.health {
            DiskHealth::Failing => nix::errno::Errno::EIO,
            DiskHealth::ReadOnly => nix::errno::Errno::EROFS,
            DiskHealth::Missing => nix::errno::Errno::ENODEV,
            DiskHealth::Active | DiskHealth::Full => return,
        };
        if let Some(tx) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(Note::WriteFailed { path: disk.root.clone(), errno: errno as i32 });
        }
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

/// The engine's tuning for this board: concurrency, buffers and the
/// manifest's page cache from the device profile (the disks' reserve
/// reaches the engine with each disk's `reserved_bytes`).
pub fn engine_tuning(p: &DeviceProfile) -> bunker_node::Tuning {
    bunker_node::Tuning {
        seal_threads: p.seal_threads,
        upload_concurrency: p.upload_concurrency,
        serve_concurrency: p.serve_concurrency,
        io_buffer_bytes: p.io_buffer_bytes,
        sqlite_cache_kib: p.sqlite_cache_kib,
    }
}

/// A bunker-disks disk as the engine sees it: the one place the two
/// crates' words meet.
pub fn engine_disk(d: &DataDisk) -> DiskStatus {
    DiskStatus {
        id: d.id.clone(),
        label: d.label.clone(),
        root: d.mount_path.clone(),
        health: match d.state {
            DiskState::Active => DiskHealth::Active,
            DiskState::Missing => DiskHealth::Missing,
            DiskState::ReadOnly => DiskHealth::ReadOnly,
            DiskState::Full => DiskHealth::Full,
            DiskState::Failing => DiskHealth::Failing,
        },
        total_bytes: d.capacity.total_bytes,
        free_bytes: d.capacity.free_bytes,
        reserved_bytes: d.capacity.reserved_bytes,
        on_system_device: d.on_system_device,
    }
}

fn engine_disks(disks: &Disks) -> Vec<DiskStatus> {
    disks.disks().iter().map(engine_disk).collect()
}

/// What makes the engine's view change: everything but the free space.
fn same_for_engine(a: &[DiskStatus], b: &[DiskStatus]) -> bool {
    let key = |v: &[DiskStatus]| -> Vec<(String, PathBuf, DiskHealth, u64, bool, String)> {
        v.iter()
            .map(|d| (d.id.clone(), d.root.clone(), d.health, d.reserved_bytes, d.on_system_device, d.label.clone()))
            .collect()
    };
    key(a) == key(b)
}

fn snapshot(disks: &Disks, roots: &Roots) -> DiskSnapshot {
    let mut alerts = disks.alerts();
    if let Some(t) = Throttled::read(roots) {
        alerts.extend(t.alerts());
    }
    DiskSnapshot { disks: disks.disks().to_vec(), alerts }
}

fn watch_disks(
    mut disks: Disks,
    roots: Roots,
    last: Arc<Mutex<DiskSnapshot>>,
    engine: watch::Sender<Vec<DiskStatus>>,
    stop: mpsc::Receiver<Note>,
) {
    loop {
        match stop.recv_timeout(PROBE_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => match disks.probe() {
                Ok(changes) => {
                    for c in changes {
                        let text = disks.get(&c.disk).map(|d| d.label.clone()).unwrap_or_else(|| c.disk.clone());
                        tracing::warn!(disk = %text, from = c.from.as_str(), to = c.to.as_str(), "data disk changed state");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "probing the data disks failed"),
            },
            Ok(Note::WriteFailed { path, errno }) => {
                let e = std::io::Error::from_raw_os_error(errno);
                if let Some(c) = disks.note_io_error(&path, &e) {
                    tracing::warn!(disk = %c.disk, from = c.from.as_str(), to = c.to.as_str(), "data disk failed a write of the engine");
                }
            }
            // Stopped: the sender was dropped.
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        *last.lock().unwrap_or_else(|p| p.into_inner()) = snapshot(&disks, &roots);
        let now = engine_disks(&disks);
        engine.send_if_modified(|v| {
            if same_for_engine(v, &now) {
                false
            } else {
                *v = now;
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pi_zero_2_w_gets_numbers_that_fit_512_mib() {
        let p = DeviceProfile::tuned("Raspberry Pi Zero 2 W Rev 1.0".into(), true, 512 << 20, 4);
        let t = engine_tuning(&p);
        assert_eq!((t.seal_threads, t.upload_concurrency, t.serve_concurrency), (2, 2, 4));
        assert_eq!((t.io_buffer_bytes, t.sqlite_cache_kib), (256 << 10, 8192));
        // Every stream buffer at once, double-buffered, plus the page cache:
        // well inside the ~300 MiB the OS, ldk-node and libp2p leave.
        let streams = (t.seal_threads + t.upload_concurrency + t.serve_concurrency) * t.io_buffer_bytes * 2;
        assert!(streams as u64 + (u64::from(t.sqlite_cache_kib) << 10) < 16 << 20, "{streams}");
        let pi4 = engine_tuning(&DeviceProfile::tuned("Raspberry Pi 4".into(), true, 4 << 30, 4));
        assert!(pi4.upload_concurrency > t.upload_concurrency && pi4.sqlite_cache_kib > t.sqlite_cache_kib);
    }

    #[test]
    fn a_disk_the_engine_found_failing_shows_failing_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let w = DiskWatch::start_new(dir.path(), &store, ReservePolicy { min_bytes: 0, percent: 0 }).unwrap();
        let engine = w.engine_disks();
        let disk = engine.borrow().iter().find(|d| d.root == store).cloned().unwrap();
        assert_eq!(disk.health, DiskHealth::Active);
        // What `Node::disk_faults` hands the daemon after a write failed with EIO.
        w.note_engine_fault(&DiskStatus { health: DiskHealth::Failing, ..disk });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while w.status_disks().iter().all(|d| d.state != "failing") {
            assert!(std::time::Instant::now() < deadline, "{:?}", w.status_disks());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The panel and /api/status: state and alert; the engine: failing.
        let shown = w.status_disks().into_iter().find(|d| d.mount_path == store.display().to_string()).unwrap();
        assert!(shown.last_error.as_deref().unwrap_or("").contains("Input/output error"), "{shown:?}");
        assert!(w.status_alerts().iter().any(|a| a.short == "Disk failing"), "{:?}", w.status_alerts());
        assert!(engine.borrow().iter().any(|d| d.root == store && d.health == DiskHealth::Failing));
        w.stop();
    }

    #[test]
    fn the_engine_hears_of_state_changes_not_of_every_byte() {
        let mut d = DataDisk::new("u1".into(), "disk".into(), "/x".into(), true);
        d.state = DiskState::Active;
        let a = vec![engine_disk(&d)];
        d.capacity.free_bytes += 4096;
        assert!(same_for_engine(&a, &[engine_disk(&d)]));
        d.state = DiskState::Missing;
        let b = vec![engine_disk(&d)];
        assert!(!same_for_engine(&a, &b));
        assert_eq!(b[0].health, DiskHealth::Missing);
    }
}
