//! The data disks as the daemon's disk watcher reports them, and the one
//! way that news reaches the engine: [`Node::set_disks`] (or
//! [`Node::follow_disks`] over a watch channel).
//!
//! bunker-node does not probe disks itself (bunker-disks does, in bunkerd,
//! on a thread a hung USB disk may block): it takes each disk's state as
//! told and turns it into policy here and in `disk_set.rs` — where new
//! objects go, what is offered to peers, what an audit of an object on a
//! yanked disk is answered. MANIFEST.db's `disks` table is kept in step.

use std::path::PathBuf;
use std::sync::Arc;

use bunker_manifest::{DiskId, DiskInfo, DiskState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::disk_set::Disk;
use crate::error::DbError;
use crate::node::{now, Inner, Node};

/// What a data disk can do now (bunker-disks' `DiskState`, as the engine
/// sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskHealth {
    /// Present, writable, with room beyond its reserve.
    Active,
    /// Not attached or not mounted (yanked, cable, power).
    Missing,
    /// Mounted read-only (ext4 after errors): readable, takes nothing new.
    ReadOnly,
    /// No room beyond its reserve: readable, takes nothing new.
    Full,
    /// I/O errors: treated as away until the disk is replaced or recovers.
    Failing,
}

impl DiskHealth {
    /// Whether objects on it can be read (audits, fetches, gets).
    pub fn readable(self) -> bool {
        matches!(self, DiskHealth::Active | DiskHealth::ReadOnly | DiskHealth::Full)
    }

    /// Whether new objects may be written to it.
    pub fn takes_new_data(self) -> bool {
        self == DiskHealth::Active
    }

    /// Whether objects on it can be deleted or moved.
    pub(crate) fn writable(self) -> bool {
        matches!(self, DiskHealth::Active | DiskHealth::Full)
    }

    /// Lower-case name, as in logs and refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskHealth::Active => "active",
            DiskHealth::Missing => "missing",
            DiskHealth::ReadOnly => "read-only",
            DiskHealth::Full => "full",
            DiskHealth::Failing => "failing",
        }
    }
}

impl std::fmt::Display for DiskHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One data disk as the watcher last saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskStatus {
    /// Stable id: the file-system UUID of an adopted disk, `path:<dir>` for a
    /// plain directory (bunker-disks' `DataDisk::id`). The engine's own store
    /// root is `path:<NodeConfig::store_root>`.
    pub id: String,
    /// What the owner calls it ("SanDisk Ultra").
    pub label: String,
    /// Where its objects live (the mount point of an adopted disk).
    pub root: PathBuf,
    /// State now.
    pub health: DiskHealth,
    /// Size of its file system.
    pub total_bytes: u64,
    /// Free to an unprivileged writer.
    pub free_bytes: u64,
    /// Never handed out (the device profile's reserve).
    pub reserved_bytes: u64,
    /// It sits on the system device (SD card): new data goes there only
    /// when no other disk can take it.
    pub on_system_device: bool,
}

impl DiskStatus {
    /// A healthy directory disk with no reserve (tests, first start).
    pub fn directory(root: impl Into<PathBuf>) -> DiskStatus {
        let root = root.into();
        DiskStatus {
            id: directory_id(&root),
            label: root.display().to_string(),
            root,
            health: DiskHealth::Active,
            total_bytes: 0,
            free_bytes: 0,
            reserved_bytes: 0,
            on_system_device: false,
        }
    }
}

/// The id of a plain directory used as a data disk (bunker-disks' `add_dir`).
pub fn directory_id(root: &std::path::Path) -> String {
    format!("path:{}", root.display())
}

impl Node {
    /// Tells the engine the state of every data disk. Disks it did not know
    /// are taken in (their objects found); a disk that went away keeps its
    /// objects' names, so they are answered "unavailable" until it is back,
    /// when everything on it is served again. Disks not in `disks` keep the
    /// state they had. MANIFEST.db's `disks` rows follow.
    pub async fn set_disks(&self, disks: Vec<DiskStatus>) -> Result<(), DbError> {
        set_disks(&self.inner, disks).await
    }

    /// Follows a watch channel of disk states (bunkerd's disk watcher) until
    /// the engine stops, applying each new value with [`Node::set_disks`].
    pub fn follow_disks(&self, mut disks: watch::Receiver<Vec<DiskStatus>>) -> JoinHandle<()> {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let mut stop = inner.stop.clone();
            loop {
                let now = disks.borrow_and_update().clone();
                if let Err(e) = set_disks(&inner, now).await {
                    tracing::warn!(error = %e, "data disk states not recorded in MANIFEST.db; retried on the next change");
                }
                tokio::select! {
                    changed = disks.changed() => if changed.is_err() { return },
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    }

    /// The data disks as the engine sees them now.
    pub fn disks(&self) -> Vec<DiskStatus> {
        self.inner.objects.statuses()
    }
}

async fn set_disks(inner: &Arc<Inner>, disks: Vec<DiskStatus>) -> Result<(), DbError> {
    let i = Arc::clone(inner);
    tokio::task::spawn_blocking(move || i.objects.set_disks(&disks))
        .await
        .map_err(|e| DbError::Task(e.to_string()))?;
    inner.host.forget_capacity();
    record_rows(inner).await
}

/// Upserts every disk's row in MANIFEST.db (state, space, where mounted)
/// and remembers its id, which hosted objects and local copies name.
pub(crate) async fn record_rows(inner: &Arc<Inner>) -> Result<(), DbError> {
    for disk in inner.objects.disks() {
        let info = row_info(&disk);
        let id = inner.db.call(move |m| m.upsert_disk(&info)).await?;
        disk.set_row(id);
    }
    Ok(())
}

/// The MANIFEST.db row of `disk`, created on first use.
pub(crate) async fn row_of(inner: &Arc<Inner>, disk: &Arc<Disk>) -> Result<DiskId, DbError> {
    if let Some(id) = disk.row() {
        return Ok(id);
    }
    let info = row_info(disk);
    let id = inner.db.call(move |m| m.upsert_disk(&info)).await?;
    disk.set_row(id);
    Ok(id)
}

fn row_info(disk: &Disk) -> DiskInfo {
    let s = disk.status();
    DiskInfo {
        uuid: manifest_uuid(&s.id, &s.root),
        label: s.label,
        mount_path: s.root.display().to_string(),
        total_bytes: s.total_bytes,
        free_bytes: s.free_bytes,
        reserved_bytes: s.reserved_bytes,
        // MANIFEST.db knows active and missing; full, read-only and failing
        // are attached disks (their finer state is in the alerts).
        state: if s.health == DiskHealth::Missing { DiskState::Missing } else { DiskState::Active },
        seen_at: now(),
    }
}

/// A disk's key in MANIFEST.db: the file-system UUID of an adopted disk; for
/// a plain directory the key the single-root store always used
/// (`store:<blake3 of the path>`), so existing rows keep their objects.
fn manifest_uuid(id: &str, root: &std::path::Path) -> String {
    if id.starts_with("path:") {
        format!("store:{}", blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex())
    } else {
        id.to_string()
    }
}
