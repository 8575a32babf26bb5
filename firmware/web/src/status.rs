//! What the daemon reports about itself to the admin page and the CLI.
//!
//! This is the skeleton's status: it grows with the engine (stored and
//! hosted bytes, peers, audits, balances) and moves to bunker-node when
//! the engine exists; the JSON field names are the API contract.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A snapshot of the node's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// bunkerd's version.
    pub version: String,
    /// One word: `starting`, `running`, `stopping`.
    pub state: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The box's libp2p PeerId (public: every peer sees it), once known.
    pub peer_id: Option<String>,
    /// Space on the file system that holds the data directory (the SD
    /// card on a box): when it fills, the seed, the manifest and the
    /// Lightning state can no longer be written, so the owner must see it.
    /// `None` when the file system could not be asked.
    #[serde(default)]
    pub data_dir_space: Option<DiskSpace>,
    /// The data disks (adopted USB disks and the store directory) as the
    /// last probe found them.
    #[serde(default)]
    pub disks: Vec<DataDiskStatus>,
    /// What needs the owner's attention: a missing, full, read-only or
    /// failing disk, data on the SD card, undervoltage.
    #[serde(default)]
    pub alerts: Vec<StatusAlert>,
}

/// One data disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataDiskStatus {
    /// File-system UUID, or `path:<dir>` for a plain directory.
    pub id: String,
    /// What to call it.
    pub label: String,
    /// Where its data lives.
    pub mount_path: String,
    /// `active`, `missing`, `read_only`, `full` or `failing`.
    pub state: String,
    /// Size.
    pub total_bytes: u64,
    /// Free.
    pub free_bytes: u64,
    /// Free beyond the reserve kept on it.
    pub usable_bytes: u64,
    /// It sits on the system device (the SD card on a box).
    pub on_system_device: bool,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

/// Something the owner should know about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAlert {
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// One OLED line.
    pub short: String,
    /// The sentence for the admin page: what happened and what to do.
    pub text: String,
}

/// Size and free space of one file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpace {
    /// Bytes an unprivileged writer can still use (what the daemon,
    /// running as its own user, really has).
    pub free_bytes: u64,
    /// Size of the file system.
    pub total_bytes: u64,
}

/// Asks the kernel (statvfs) for the space of the file system holding `path`.
pub fn disk_space(path: &Path) -> std::io::Result<DiskSpace> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let frag = st.fragment_size() as u64;
    let frag = if frag == 0 { st.block_size() as u64 } else { frag };
    Ok(DiskSpace {
        free_bytes: (st.blocks_available() as u64).saturating_mul(frag),
        total_bytes: (st.blocks() as u64).saturating_mul(frag),
    })
}

/// Anything that can report the node's status on request.
pub trait StatusSource: Send + Sync + 'static {
    /// The status now.
    fn status(&self) -> NodeStatus;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_space_matches_what_df_would_say_roughly() {
        let dir = tempfile::tempdir().unwrap();
        let space = disk_space(dir.path()).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.free_bytes <= space.total_bytes, "{space:?}");
    }

    #[test]
    fn disk_space_of_a_missing_path_is_an_error() {
        let err = disk_space(Path::new("/nonexistent/bunker/data")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    }
}
