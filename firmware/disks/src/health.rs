//! One data disk's health: is it there, can it be written, how much room is
//! left. A probe looks at the mount table, asks `statvfs`, and writes,
//! syncs, reads back and removes a small file: the only sure way to learn
//! that a disk went read-only, full or bad is to write to it.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::fault::{FaultHook, FaultyWriter};
use crate::mountinfo::{DevNum, Mount};

/// Name prefix of the file the probe writes at the top of a disk; each probe
/// has its own name, so a probe left hanging by a timeout never meets the next.
pub const PROBE_FILE: &str = ".bunker-probe";
/// Bytes the probe writes: one page, negligible wear even once a minute.
const PROBE_LEN: usize = 4096;

/// What a data disk can do right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskState {
    /// Present, writable, with room beyond its reserve.
    Active,
    /// Not attached or not mounted (yanked, cable, power).
    Missing,
    /// Mounted read-only: the kernel remounts ext4 so after errors.
    ReadOnly,
    /// No room beyond the reserve, or writes fail with `ENOSPC`.
    Full,
    /// Reads or writes fail with I/O errors: copy the data off.
    Failing,
}

impl DiskState {
    /// Whether new data (uploads, hosted objects, new contracts) may go there.
    pub fn accepts_new_data(self) -> bool {
        self == DiskState::Active
    }

    /// Whether what is on it can still be read (audits, downloads).
    pub fn readable(self) -> bool {
        matches!(
            self,
            DiskState::Active | DiskState::ReadOnly | DiskState::Full
        )
    }

    /// The value for MANIFEST.db's `disks.state` (`active` | `missing`):
    /// a disk that is attached is `active` there even when full, read-only
    /// or failing; those finer states live here and in the alerts.
    pub fn manifest_state(self) -> &'static str {
        match self {
            DiskState::Missing => "missing",
            _ => "active",
        }
    }

    /// Lower-case name for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskState::Active => "active",
            DiskState::Missing => "missing",
            DiskState::ReadOnly => "read_only",
            DiskState::Full => "full",
            DiskState::Failing => "failing",
        }
    }

    /// The state an I/O error on the disk means, if it says something about
    /// the disk (rather than about one file).
    pub fn from_io_error(e: &io::Error) -> Option<DiskState> {
        let errno = Errno::from_raw(e.raw_os_error()?);
        match errno {
            Errno::ENOSPC | Errno::EDQUOT => Some(DiskState::Full),
            Errno::EROFS => Some(DiskState::ReadOnly),
            Errno::EIO | Errno::EUCLEAN | Errno::EBADMSG => Some(DiskState::Failing),
            Errno::ENODEV | Errno::ENXIO | Errno::ENOTCONN | Errno::ESHUTDOWN => {
                Some(DiskState::Missing)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for DiskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of each disk is never handed out: room for the file system to
/// breathe (ext4 slows down and fragments when nearly full) and for the
/// owner's files that arrive while contracts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReservePolicy {
    /// At least this many bytes.
    pub min_bytes: u64,
    /// At least this share of the disk, in percent.
    pub percent: u8,
}

impl ReservePolicy {
    /// The reserve of a disk of `total` bytes (never more than the disk).
    pub fn reserve_for(&self, total: u64) -> u64 {
        let share = (u128::from(total) * u128::from(self.percent.min(100)) / 100) as u64;
        self.min_bytes.max(share).min(total)
    }
}

/// Space on a disk, from `statvfs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capacity {
    /// Size of the file system.
    pub total_bytes: u64,
    /// Free to an unprivileged writer (`f_bavail`).
    pub free_bytes: u64,
    /// Kept free by the [`ReservePolicy`].
    pub reserved_bytes: u64,
}

impl Capacity {
    /// Free beyond the reserve: what may still be handed out.
    pub fn usable_bytes(&self) -> u64 {
        self.free_bytes.saturating_sub(self.reserved_bytes)
    }
}

/// A place where the box keeps data: an adopted USB disk mounted under the
/// data root, or a plain directory (the default store on the SD card).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DataDisk {
    /// File-system UUID of an adopted disk; `path:<dir>` for a plain directory.
    pub id: String,
    /// What the admin page calls it ("SanDisk Ultra", or the directory).
    pub label: String,
    /// Where its data lives.
    pub mount_path: PathBuf,
    /// An adopted disk must be a mount point of its own; until it is, it is
    /// missing, and nothing is written into the empty directory on the SD card.
    pub expect_mount: bool,
    /// Space.
    pub capacity: Capacity,
    /// State after the last probe or reported error.
    pub state: DiskState,
    /// Its data sits on the system device (SD card): allowed for a start, alerted.
    pub on_system_device: bool,
    /// What the last failure was, in words.
    pub last_error: Option<String>,
    /// An I/O error someone writing to the disk hit ([`crate::Disks::note_io_error`]):
    /// the disk stays failing even when the next probe's small write gets
    /// through, until it has been away (reseated or replaced).
    #[serde(skip)]
    pub(crate) failed_write: Option<String>,
    #[serde(skip)]
    pub(crate) hook: FaultHook,
}

impl DataDisk {
    /// A disk that has not been probed yet (state Missing until it is).
    pub fn new(id: String, label: String, mount_path: PathBuf, expect_mount: bool) -> DataDisk {
        DataDisk {
            id,
            label,
            mount_path,
            expect_mount,
            capacity: Capacity::default(),
            state: DiskState::Missing,
            on_system_device: false,
            last_error: None,
            failed_write: None,
            hook: FaultHook::new(),
        }
    }

    /// The fault hook the probe writes through (tests set faults on it).
    pub fn fault_hook(&self) -> &FaultHook {
        &self.hook
    }
}

/// What a probe found.
#[derive(Debug, Clone)]
pub(crate) struct ProbeResult {
    pub state: DiskState,
    pub capacity: Option<Capacity>,
    pub on_system_device: bool,
    pub error: Option<String>,
}

/// Everything a probe needs, owned, so it can run on its own thread (a dead
/// USB bridge can block a syscall for minutes; the caller waits with a timeout).
#[derive(Debug, Clone)]
pub(crate) struct ProbeInput {
    pub mount_path: PathBuf,
    pub expect_mount: bool,
    pub mounts: Vec<Mount>,
    pub sys_root: PathBuf,
    pub system_devs: Vec<DevNum>,
    pub reserve: ReservePolicy,
    pub hook: FaultHook,
}

pub(crate) fn probe(input: &ProbeInput) -> ProbeResult {
    let missing = |why: String| ProbeResult {
        state: DiskState::Missing,
        capacity: None,
        on_system_device: false,
        error: Some(why),
    };
    let path = &input.mount_path;
    let mut ro_mount = false;
    if input.expect_mount {
        // The last mount at a path is the one that is seen there.
        let Some(m) = input.mounts.iter().rev().find(|m| &m.mount_point == path) else {
            return missing(format!("{} is not mounted", path.display()));
        };
        let node = input.sys_root.join(format!("dev/block/{}", m.dev));
        if !node.exists() {
            return missing(format!(
                "the device of {} ({}, {}) is gone",
                path.display(),
                m.source,
                m.dev
            ));
        }
        ro_mount = m.read_only;
    } else if !path.is_dir() {
        return missing(format!("{} does not exist", path.display()));
    }
    let on_system_device = nix::sys::stat::stat(path.as_path())
        .map(|st| input.system_devs.contains(&DevNum::from_st_dev(st.st_dev)))
        .unwrap_or(false);
    let failed = |e: io::Error, what: &str| {
        let state = DiskState::from_io_error(&e).unwrap_or(DiskState::Failing);
        ProbeResult {
            state,
            capacity: None,
            on_system_device,
            error: Some(format!("{what} {}: {e}", path.display())),
        }
    };
    let vfs = match statvfs(path.as_path()) {
        Ok(v) => v,
        Err(e) => return failed(io::Error::from(e), "statvfs of"),
    };
    let frsize = vfs.fragment_size() as u64;
    let total = (vfs.blocks() as u64).saturating_mul(frsize);
    let capacity = Capacity {
        total_bytes: total,
        free_bytes: (vfs.blocks_available() as u64).saturating_mul(frsize),
        reserved_bytes: input.reserve.reserve_for(total),
    };
    let with = |state, error| ProbeResult {
        state,
        capacity: Some(capacity),
        on_system_device,
        error,
    };
    if ro_mount || vfs.flags().contains(FsFlags::ST_RDONLY) {
        return with(
            DiskState::ReadOnly,
            Some(format!("{} is mounted read-only", path.display())),
        );
    }
    if let Err(e) = write_probe(path, &input.hook) {
        let state = DiskState::from_io_error(&e).unwrap_or(DiskState::Failing);
        return with(
            state,
            Some(format!("test write to {}: {e}", path.display())),
        );
    }
    if capacity.usable_bytes() == 0 {
        return with(
            DiskState::Full,
            Some(format!(
                "{} has {} bytes free, reserve is {}",
                path.display(),
                capacity.free_bytes,
                capacity.reserved_bytes
            )),
        );
    }
    with(DiskState::Active, None)
}

/// Writes, syncs, reads back and removes one page: proves the disk takes
/// and returns data now, not just that the kernel still lists it.
fn write_probe(dir: &Path, hook: &FaultHook) -> io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = dir.join(format!("{PROBE_FILE}.{}.{n}", std::process::id()));
    let pattern: Vec<u8> = (0..PROBE_LEN).map(|i| (i % 251) as u8).collect();
    let result = (|| {
        hook.check()?;
        let mut w = FaultyWriter::new(std::fs::File::create(&p)?, hook.clone());
        w.write_all(&pattern)?;
        w.sync_all()?;
        drop(w);
        let mut back = Vec::with_capacity(PROBE_LEN);
        std::fs::File::open(&p)?
            .take(PROBE_LEN as u64 + 1)
            .read_to_end(&mut back)?;
        if back != pattern {
            return Err(io::Error::from_raw_os_error(Errno::EIO as i32));
        }
        Ok(())
    })();
    // Best effort: on a read-only or failing disk the file may not go away.
    let _ = std::fs::remove_file(&p);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_the_larger_of_floor_and_share_and_never_above_the_disk() {
        let r = ReservePolicy {
            min_bytes: 1 << 30,
            percent: 2,
        };
        assert_eq!(r.reserve_for(10 << 30), 1 << 30);
        assert_eq!(r.reserve_for(1000 << 30), 20 << 30);
        assert_eq!(r.reserve_for(100), 100);
    }

    #[test]
    fn errors_map_to_states() {
        let s = |e: Errno| DiskState::from_io_error(&io::Error::from_raw_os_error(e as i32));
        assert_eq!(s(Errno::ENOSPC), Some(DiskState::Full));
        assert_eq!(s(Errno::EROFS), Some(DiskState::ReadOnly));
        assert_eq!(s(Errno::EIO), Some(DiskState::Failing));
        assert_eq!(s(Errno::ENODEV), Some(DiskState::Missing));
        assert_eq!(s(Errno::EACCES), None);
    }
}
