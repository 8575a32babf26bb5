//! Making a USB disk a Bunker data disk: format it (only when the owner
//! confirmed it by model and size), and mount it under the data root.
//!
//! A disk is never formatted automatically: the owner picks it on the admin
//! page, which shows the model and size discovery reported, and sends them
//! back in a [`Confirmation`]. If the disk changed in between (another disk
//! in that port now), the confirmation no longer matches and nothing happens.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::discovery::{self, BlockDevice, DiscoveryError, SystemReason};
use crate::mountinfo::{self, DevNum};
use crate::roots::{read_attr, Roots};
use crate::superblock::{self, BUNKER_LABEL};

/// The owner's word that this disk may be erased: the model and the size in
/// bytes exactly as discovery reported them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confirmation {
    /// [`BlockDevice::model`].
    pub model: String,
    /// [`BlockDevice::size_bytes`].
    pub size_bytes: u64,
}

impl Confirmation {
    /// What the admin page shows and sends back for `device`.
    pub fn for_device(device: &BlockDevice) -> Confirmation {
        Confirmation {
            model: device.model.clone(),
            size_bytes: device.size_bytes,
        }
    }
}

/// A disk that is now a Bunker data disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Adopted {
    /// File-system UUID: the disk's identity from now on.
    pub uuid: String,
    /// The device node that was mounted.
    pub device: PathBuf,
    /// `DATA_ROOT/disks/UUID`.
    pub mount_path: PathBuf,
    /// Whether it was formatted now (else it already was a Bunker disk).
    pub formatted: bool,
}

/// Why a disk was not adopted. Every message names the disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// sysfs could not be read.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// No such disk now.
    #[error("no disk {name} is attached")]
    NoSuchDevice {
        /// Kernel name asked for.
        name: String,
    },
    /// The system's own device.
    #[error("{name} ({model}) cannot be a data disk: {reason}; bulk data never lives on the system card")]
    SystemDisk {
        /// Kernel name.
        name: String,
        /// Model.
        model: String,
        /// Why it is the system's.
        reason: SystemReason,
    },
    /// Not on USB.
    #[error("{name} is not a USB disk; only USB disks are adopted")]
    NotUsb {
        /// Kernel name.
        name: String,
    },
    /// Formatting needs a confirmation and none was given.
    #[error("{name} holds no Bunker file system; formatting erases it and needs the owner's confirmation of model \"{model}\" and size {size_bytes} bytes ({human})")]
    ConfirmationRequired {
        /// Kernel name.
        name: String,
        /// Expected model.
        model: String,
        /// Expected size.
        size_bytes: u64,
        /// Size in words.
        human: String,
    },
    /// The confirmation names another disk.
    #[error("confirmation does not match {name}: expected model \"{expected_model}\" and size {expected_size} bytes, got model \"{got_model}\" and size {got_size} bytes; nothing was formatted")]
    ConfirmationMismatch {
        /// Kernel name.
        name: String,
        /// What discovery reports.
        expected_model: String,
        /// What discovery reports.
        expected_size: u64,
        /// What the confirmation said.
        got_model: String,
        /// What the confirmation said.
        got_size: u64,
    },
    /// Something on the disk is mounted.
    #[error("{name} is in use: {part} is mounted at {mount_point}; unmount it first")]
    InUse {
        /// Disk.
        name: String,
        /// Partition or disk that is mounted.
        part: String,
        /// Where.
        mount_point: PathBuf,
    },
    /// The kernel reports the device read-only (write-protect switch).
    #[error("{name} is read-only (write-protect switch?)")]
    ReadOnlyDevice {
        /// Kernel name.
        name: String,
    },
    /// A formatting tool could not be run or failed.
    #[error("{command} on {dev} failed: {detail}")]
    Format {
        /// Tool.
        command: &'static str,
        /// Device.
        dev: PathBuf,
        /// Exit status and stderr, or why it did not start.
        detail: String,
    },
    /// After formatting, the superblock did not read back as ours.
    #[error("{dev} does not hold a Bunker ext4 file system after formatting ({detail})")]
    NotFormatted {
        /// Device.
        dev: PathBuf,
        /// What was read.
        detail: String,
    },
    /// The mount point could not be made.
    #[error("cannot create mount point {path}: {source}")]
    MountPoint {
        /// Directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Mounting failed.
    #[error(transparent)]
    Mount(#[from] MountError),
}

/// Why mounting a data disk failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// No CAP_SYS_ADMIN: the root helper must mount it.
    #[error("disk {uuid} is adopted but mounting it needs the bunker-mount helper (bunker-mount.service, started by udev and by bunker-mount.path): this process lacks CAP_SYS_ADMIN; the helper mounts it at {mount_path}")]
    NeedsMountHelper {
        /// File-system UUID.
        uuid: String,
        /// Where the helper mounts it.
        mount_path: PathBuf,
    },
    /// mount(2) failed.
    #[error("mounting {dev} at {mount_path} failed: {errno}")]
    Failed {
        /// Device.
        dev: PathBuf,
        /// Where.
        mount_path: PathBuf,
        /// Why.
        errno: nix::errno::Errno,
    },
}

/// Mount options of a data disk: no devices, set-uid or programs from a
/// disk anyone could have prepared; no atime writes (flash wear);
/// `errors=remount-ro` so a failing disk stops taking writes instead of
/// corrupting more (the probe then reports it read-only).
const MOUNT_DATA: &str = "errors=remount-ro";

/// Where adopted disks are mounted: `DATA_ROOT/disks/UUID`.
pub fn mount_path_for(data_root: &Path, uuid: &str) -> PathBuf {
    data_root.join("disks").join(uuid)
}

/// Whether this process may mount (CAP_SYS_ADMIN in its effective set).
pub fn can_mount(roots: &Roots) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let Some(status) = read_attr(&roots.proc.join("self/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Makes `device` (kernel name, e.g. `sda`) a Bunker data disk and mounts it
/// at `DATA_ROOT/disks/UUID`. A disk that already holds a Bunker file system
/// is adopted as it is; any other is formatted ext4 only when `confirm`
/// names its model and size exactly. Refuses the system device and non-USB
/// devices. Without CAP_SYS_ADMIN, everything but the mount happens and
/// [`MountError::NeedsMountHelper`] says what is left to do.
pub fn adopt(
    roots: &Roots,
    data_root: &Path,
    device: &str,
    confirm: Option<&Confirmation>,
) -> Result<Adopted, AdoptError> {
    let d = discovery::find(roots, device)?.ok_or_else(|| AdoptError::NoSuchDevice {
        name: device.to_string(),
    })?;
    if let Some(reason) = d.system {
        return Err(AdoptError::SystemDisk {
            name: d.name,
            model: d.model,
            reason,
        });
    }
    if !d.usb {
        return Err(AdoptError::NotUsb { name: d.name });
    }
    if let Some(c) = confirm {
        check_confirmation(&d, c)?;
    }
    let mounts = mountinfo::read(&roots.mountinfo());
    let (dev, uuid, formatted) = match d.bunker_filesystem() {
        Some((dev, _, fs)) => (dev.to_path_buf(), fs.uuid.clone(), false),
        None => {
            let Some(c) = confirm else {
                return Err(AdoptError::ConfirmationRequired {
                    human: human_bytes(d.size_bytes),
                    name: d.name,
                    model: d.model,
                    size_bytes: d.size_bytes,
                });
            };
            check_confirmation(&d, c)?;
            if d.read_only {
                return Err(AdoptError::ReadOnlyDevice { name: d.name });
            }
            if let Some((part, m)) = d
                .devnums()
                .zip(names(&d))
                .find_map(|(n, part)| mounts.iter().find(|m| m.dev == n).map(|m| (part, m)))
            {
                return Err(AdoptError::InUse {
                    name: d.name.clone(),
                    part,
                    mount_point: m.mount_point.clone(),
                });
            }
            let uuid = format(&d.dev_path)?;
            (d.dev_path.clone(), uuid, true)
        }
    };
    tracing::info!(disk = %d.name, model = %d.model, %uuid, formatted, "disk adopted");
    let mount_path = mount_path_for(data_root, &uuid);
    make_mount_point(&mount_path)?;
    let adopted = Adopted {
        uuid: uuid.clone(),
        device: dev.clone(),
        mount_path: mount_path.clone(),
        formatted,
    };
    if mounts.iter().any(|m| m.mount_point == mount_path) {
        return Ok(adopted);
    }
    mount(roots, &dev, &uuid, &mount_path)?;
    Ok(adopted)
}

/// Mounts an adopted disk's file system at its mount point (used again when
/// a disk that was pulled comes back).
pub fn mount(roots: &Roots, dev: &Path, uuid: &str, mount_path: &Path) -> Result<(), MountError> {
    use nix::mount::MsFlags;
    if !can_mount(roots) {
        return Err(MountError::NeedsMountHelper {
            uuid: uuid.to_string(),
            mount_path: mount_path.to_path_buf(),
        });
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOATIME;
    nix::mount::mount(Some(dev), mount_path, Some("ext4"), flags, Some(MOUNT_DATA)).map_err(
        |errno| match errno {
            nix::errno::Errno::EPERM => MountError::NeedsMountHelper {
                uuid: uuid.to_string(),
                mount_path: mount_path.to_path_buf(),
            },
            errno => MountError::Failed {
                dev: dev.to_path_buf(),
                mount_path: mount_path.to_path_buf(),
                errno,
            },
        },
    )?;
    tracing::info!(dev = %dev.display(), mount = %mount_path.display(), "data disk mounted");
    Ok(())
}

fn check_confirmation(d: &BlockDevice, c: &Confirmation) -> Result<(), AdoptError> {
    if c.model == d.model && c.size_bytes == d.size_bytes {
        return Ok(());
    }
    Err(AdoptError::ConfirmationMismatch {
        name: d.name.clone(),
        expected_model: d.model.clone(),
        expected_size: d.size_bytes,
        got_model: c.model.clone(),
        got_size: c.size_bytes,
    })
}

fn names(d: &BlockDevice) -> impl Iterator<Item = String> + '_ {
    std::iter::once(d.name.clone()).chain(d.partitions.iter().map(|p| p.name.clone()))
}

/// Erases old signatures (a stale partition table would bring back ghost
/// partitions) and makes one ext4 over the whole device: no partition table
/// to re-read and no partition node to wait for; the file-system UUID is the
/// disk's identity. Returns that UUID.
fn format(dev: &Path) -> Result<String, AdoptError> {
    run("wipefs", Command::new("wipefs").arg("--all").arg(dev), dev)?;
    let owner = format!(
        "root_owner={}:{}",
        nix::unistd::getuid(),
        nix::unistd::getgid()
    );
    // -m 0: the daemon is not root and could not use root's 5 % anyway; the
    // reserve is Bunker's own (ReservePolicy). -F: a whole device is fine.
    run(
        "mkfs.ext4",
        Command::new("mkfs.ext4")
            .args(["-F", "-q", "-m", "0", "-L", BUNKER_LABEL, "-E", &owner])
            .arg(dev),
        dev,
    )?;
    reread_partitions(dev);
    match superblock::read_ext(dev) {
        Ok(Some(fs)) if fs.is_bunker() => Ok(fs.uuid),
        Ok(other) => Err(AdoptError::NotFormatted {
            dev: dev.to_path_buf(),
            detail: format!("{other:?}"),
        }),
        Err(e) => Err(AdoptError::NotFormatted {
            dev: dev.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

fn run(command: &'static str, cmd: &mut Command, dev: &Path) -> Result<(), AdoptError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| AdoptError::Format {
            command,
            dev: dev.to_path_buf(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(AdoptError::Format {
        command,
        dev: dev.to_path_buf(),
        detail: format!("{}: {}", out.status, stderr.trim()),
    })
}

/// Tells the kernel the old partitions are gone (BLKRRPART). Needs
/// CAP_SYS_ADMIN; without it udev re-reads the table when mkfs closes the
/// device, so failure is only logged.
fn reread_partitions(dev: &Path) {
    nix::ioctl_none!(blkrrpart, 0x12, 95);
    let Ok(f) = std::fs::File::open(dev) else {
        return;
    };
    use std::os::fd::AsRawFd;
    // SAFETY: BLKRRPART takes no argument; the fd is open for the call.
    if let Err(e) = unsafe { blkrrpart(f.as_raw_fd()) } {
        tracing::debug!(dev = %dev.display(), error = %e, "partition table not re-read");
    }
}

fn make_mount_point(path: &Path) -> Result<(), AdoptError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
        .map_err(|source| AdoptError::MountPoint {
            path: path.to_path_buf(),
            source,
        })
}

/// Decimal units, as disk makers label their disks ("64.0 GB").
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Device numbers of the system's own devices (SD card, root device): a data
/// directory on one of them raises the "data on SD card" alert.
pub(crate) fn system_devnums(devices: &[BlockDevice]) -> Vec<DevNum> {
    devices
        .iter()
        .filter(|d| d.system.is_some())
        .flat_map(|d| d.devnums().collect::<Vec<_>>())
        .collect()
}
