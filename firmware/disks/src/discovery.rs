//! Finding the box's block devices in sysfs: which are USB disks, what they
//! are called, how big they are, which file systems they hold, and which one
//! is the system (SD card or the device holding `/`) that must never become
//! a data disk.

use std::path::{Path, PathBuf};

use crate::mountinfo::{self, DevNum};
use crate::roots::{read_attr, Roots};
use crate::superblock::{self, Filesystem};

/// Why a block device counts as the system's own and is refused as a data disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SystemReason {
    /// An MMC/SD card (`mmcblk*`): the Pi's boot card.
    SdCard,
    /// It holds the root file system (e.g. a Pi booting from a USB SSD).
    HoldsRoot,
}

impl std::fmt::Display for SystemReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SystemReason::SdCard => "it is the SD card the box boots from",
            SystemReason::HoldsRoot => "it holds the system's root file system",
        })
    }
}

/// A whole block device (a disk), as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlockDevice {
    /// Kernel name, e.g. `sda`.
    pub name: String,
    /// Device node under the `/dev` root.
    pub dev_path: PathBuf,
    /// Device numbers.
    #[serde(skip)]
    pub devnum: DevNum,
    /// Model as the disk reports it (trimmed); the owner confirms a format by it.
    pub model: String,
    /// Vendor (trimmed; empty when the bus has none).
    pub vendor: String,
    /// Size in bytes; the owner confirms a format by it.
    pub size_bytes: u64,
    /// The kernel's removable flag (USB sticks say 1, USB SSDs often 0).
    pub removable: bool,
    /// Attached through USB (its sysfs device path runs through a USB bus).
    pub usb: bool,
    /// Whether the kernel marks the whole device read-only.
    pub read_only: bool,
    /// Set when this is the system's own device: never a data disk.
    pub system: Option<SystemReason>,
    /// A file system on the whole device (no partition table), if any.
    pub filesystem: Option<Filesystem>,
    /// Its partitions, in kernel order.
    pub partitions: Vec<Partition>,
}

/// A partition of a [`BlockDevice`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partition {
    /// Kernel name, e.g. `sda1`.
    pub name: String,
    /// Device node under the `/dev` root.
    pub dev_path: PathBuf,
    /// Device numbers.
    #[serde(skip)]
    pub devnum: DevNum,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The file system on it, if recognised.
    pub filesystem: Option<Filesystem>,
}

impl BlockDevice {
    /// "Vendor Model", what the admin page and the OLED call the disk.
    pub fn display_name(&self) -> String {
        match (self.vendor.is_empty(), self.model.is_empty()) {
            (true, true) => self.name.clone(),
            (true, false) => self.model.clone(),
            (false, true) => self.vendor.clone(),
            (false, false) => format!("{} {}", self.vendor, self.model),
        }
    }

    /// The Bunker file system on this disk (whole device or a partition), if any.
    pub fn bunker_filesystem(&self) -> Option<(&Path, DevNum, &Filesystem)> {
        if let Some(fs) = self.filesystem.as_ref().filter(|f| f.is_bunker()) {
            return Some((&self.dev_path, self.devnum, fs));
        }
        self.partitions.iter().find_map(|p| {
            p.filesystem
                .as_ref()
                .filter(|f| f.is_bunker())
                .map(|fs| (p.dev_path.as_path(), p.devnum, fs))
        })
    }

    /// Every device number of this disk: itself and its partitions.
    pub fn devnums(&self) -> impl Iterator<Item = DevNum> + '_ {
        std::iter::once(self.devnum).chain(self.partitions.iter().map(|p| p.devnum))
    }
}

/// sysfs could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list block devices in {path}: {source}")]
pub struct DiscoveryError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// The block devices of the machine that matter to the box: USB disks and the
/// system's own devices (flagged in [`BlockDevice::system`]). Virtual devices
/// (loop, zram, device-mapper) are left out.
pub fn scan(roots: &Roots) -> Result<Vec<BlockDevice>, DiscoveryError> {
    let block = roots.sys.join("block");
    let entries = std::fs::read_dir(&block).map_err(|source| DiscoveryError {
        path: block.clone(),
        source,
    })?;
    let mounts = mountinfo::read(&roots.mountinfo());
    let root_mount = mounts.iter().find(|m| m.mount_point == Path::new("/"));
    let by_uuid = uuids_by_name(&roots.dev);
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Resolve the symlink: the device path tells the bus.
        let Ok(real) = std::fs::canonicalize(e.path()) else {
            continue;
        };
        let real_s = real.to_string_lossy();
        if real_s.contains("/virtual/") {
            continue;
        }
        let usb = real_s.split('/').any(|c| c.starts_with("usb"));
        let Some(dev) = read_attr(&real.join("dev")).and_then(|s| DevNum::parse(&s)) else {
            continue;
        };
        let mut partitions = Vec::new();
        if let Ok(children) = std::fs::read_dir(&real) {
            for c in children.flatten() {
                let cname = c.file_name().to_string_lossy().into_owned();
                let cpath = c.path();
                if !cname.starts_with(&name) || !cpath.join("partition").exists() {
                    continue;
                }
                let Some(cdev) = read_attr(&cpath.join("dev")).and_then(|s| DevNum::parse(&s))
                else {
                    continue;
                };
                let dev_path = roots.dev.join(&cname);
                partitions.push(Partition {
                    filesystem: filesystem_of(roots, &dev_path, &cname, cdev, &by_uuid),
                    name: cname,
                    dev_path,
                    devnum: cdev,
                    size_bytes: sectors_to_bytes(&cpath),
                });
            }
        }
        partitions.sort_by_key(|p| p.devnum);
        let dev_path = roots.dev.join(&name);
        // A partitioned disk's first sectors hold the partition table, not a
        // file system; only an unpartitioned one is read whole.
        let filesystem = if partitions.is_empty() {
            filesystem_of(roots, &dev_path, &name, dev, &by_uuid)
        } else {
            None
        };
        let holds_root = root_mount.is_some_and(|m| {
            let src = Path::new(&m.source)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned());
            std::iter::once(dev)
                .chain(partitions.iter().map(|p| p.devnum))
                .any(|d| d == m.dev)
                || src.is_some_and(|s| s == name || partitions.iter().any(|p| p.name == s))
        });
        let system = if name.starts_with("mmcblk") {
            Some(SystemReason::SdCard)
        } else if holds_root {
            Some(SystemReason::HoldsRoot)
        } else {
            None
        };
        if !usb && system.is_none() {
            continue;
        }
        let model = read_attr(&real.join("device/model"))
            .or_else(|| read_attr(&real.join("device/name")))
            .unwrap_or_default();
        out.push(BlockDevice {
            dev_path,
            devnum: dev,
            model,
            vendor: read_attr(&real.join("device/vendor")).unwrap_or_default(),
            size_bytes: sectors_to_bytes(&real),
            removable: read_attr(&real.join("removable")).as_deref() == Some("1"),
            usb,
            read_only: read_attr(&real.join("ro")).as_deref() == Some("1"),
            system,
            filesystem,
            partitions,
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The device `name` as discovery sees it now.
pub fn find(roots: &Roots, name: &str) -> Result<Option<BlockDevice>, DiscoveryError> {
    Ok(scan(roots)?.into_iter().find(|d| d.name == name))
}

/// sysfs `size` counts 512-byte sectors whatever the device's block size.
fn sectors_to_bytes(dir: &Path) -> u64 {
    read_attr(&dir.join("size"))
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(0, |s| s.saturating_mul(512))
}

/// The superblock when readable; else what udev learned (its database in
/// `/run/udev/data`, readable by anyone); else the UUID udev published
/// under `/dev/disk/by-uuid` (type unknown). A disk is still recognised when
/// the daemon may not read the raw device.
fn filesystem_of(
    roots: &Roots,
    dev_path: &Path,
    name: &str,
    devnum: DevNum,
    by_uuid: &[(String, String)],
) -> Option<Filesystem> {
    // Read, the superblock has the last word on ext: a stale udev record
    // must not turn a wiped disk back into a Bunker disk.
    let readable_not_ext = match superblock::read_ext(dev_path) {
        Ok(Some(fs)) => return Some(fs),
        Ok(None) => true,
        Err(e) => {
            tracing::debug!(dev = %dev_path.display(), error = %e, "superblock unreadable");
            false
        }
    };
    let found = udev_filesystem(roots, devnum).or_else(|| {
        by_uuid
            .iter()
            .find(|(_, n)| n == name)
            .map(|(uuid, _)| Filesystem {
                kind: "other".into(),
                uuid: uuid.clone(),
                label: String::new(),
            })
    });
    found.map(|mut fs| {
        if readable_not_ext {
            fs.kind = "other".into();
        }
        fs
    })
}

/// `ID_FS_TYPE`, `ID_FS_UUID` and `ID_FS_LABEL` from udev's record of the
/// device (`E:KEY=VALUE` lines in `/run/udev/data/bMAJ:MIN`).
fn udev_filesystem(roots: &Roots, devnum: DevNum) -> Option<Filesystem> {
    let text = read_attr(&roots.run.join(format!("udev/data/b{devnum}")))?;
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix("E:"))
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
    };
    let uuid = get("ID_FS_UUID").filter(|u| !u.is_empty())?;
    Some(Filesystem {
        kind: match get("ID_FS_TYPE").as_deref() {
            Some(t @ ("ext4" | "ext3" | "ext2")) => t.to_string(),
            _ => "other".into(),
        },
        uuid,
        label: get("ID_FS_LABEL").unwrap_or_default(),
    })
}

/// `(uuid, kernel name)` pairs from the `/dev/disk/by-uuid` symlinks.
fn uuids_by_name(dev: &Path) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(dev.join("disk/by-uuid")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let name = target.file_name()?.to_string_lossy().into_owned();
            Some((e.file_name().to_string_lossy().into_owned(), name))
        })
        .collect()
}
