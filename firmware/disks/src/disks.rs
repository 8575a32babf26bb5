//! The box's set of data disks: which are healthy, where new data goes,
//! and what the owner must be told.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::adopt::{self, human_bytes, MountError};
use crate::alert::{Alert, Severity};
use crate::discovery::{self, BlockDevice, DiscoveryError};
use crate::health::{self, DataDisk, DiskState, ProbeInput, ReservePolicy};
use crate::mountinfo;
use crate::roots::Roots;

/// How long one disk's probe may take before the disk counts as failing:
/// a USB bridge that stopped answering blocks syscalls for minutes.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// A disk's state changed during a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// [`DataDisk::id`].
    pub disk: String,
    /// Before.
    pub from: DiskState,
    /// After.
    pub to: DiskState,
}

/// No disk can take the bytes asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no data disk has room for {bytes} bytes: the most any active disk can take is {largest_usable} bytes beyond its reserve ({active} active of {total} disks)")]
pub struct NoRoom {
    /// Asked for.
    pub bytes: u64,
    /// The most one active disk could take.
    pub largest_usable: u64,
    /// Active disks.
    pub active: usize,
    /// All disks.
    pub total: usize,
}

/// The data disks.
#[derive(Debug)]
pub struct Disks {
    roots: Roots,
    data_root: PathBuf,
    reserve: ReservePolicy,
    probe_timeout: Duration,
    disks: Vec<DataDisk>,
}

impl Disks {
    /// The adopted disks (every `DATA_ROOT/disks/UUID` directory), probed.
    /// Disks adopted later are taken in by [`Disks::probe`].
    /// `reserve` is kept free on each.
    pub fn scan(
        roots: &Roots,
        data_root: &Path,
        reserve: ReservePolicy,
    ) -> Result<Disks, DiscoveryError> {
        let mut disks = Disks {
            roots: roots.clone(),
            data_root: data_root.to_path_buf(),
            reserve,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            disks: Vec::new(),
        };
        let devices = discovery::scan(roots)?;
        disks.probe_with(&devices);
        Ok(disks)
    }

    /// Takes in disks adopted since the last look: every UUID-named
    /// directory under `DATA_ROOT/disks` (made by [`crate::adopt()`]).
    fn take_in_adopted(&mut self, devices: &[BlockDevice]) {
        let Ok(rd) = std::fs::read_dir(self.data_root.join("disks")) else {
            return;
        };
        let mut found: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| looks_like_uuid(n) && !self.disks.iter().any(|d| &d.id == n))
            .collect();
        found.sort();
        for uuid in found {
            let label = device_with_uuid(devices, &uuid)
                .map(|(d, _)| d.display_name())
                .unwrap_or_else(|| uuid.clone());
            let path = adopt::mount_path_for(&self.data_root, &uuid);
            tracing::info!(disk = %uuid, "adopted data disk taken in");
            self.disks.push(DataDisk::new(uuid, label, path, true));
        }
    }

    /// Adds a plain directory as a data place (e.g. `DATA_DIR/store` before
    /// any USB disk is adopted) and probes it. Returns its id `path:<dir>`.
    pub fn add_dir(&mut self, path: &Path) -> Result<String, DiscoveryError> {
        let id = format!("path:{}", path.display());
        if !self.disks.iter().any(|d| d.id == id) {
            self.disks.push(DataDisk::new(
                id.clone(),
                path.display().to_string(),
                path.to_path_buf(),
                false,
            ));
        }
        let devices = discovery::scan(&self.roots)?;
        self.probe_with(&devices);
        Ok(id)
    }

    /// Sets how long one disk's probe may take.
    pub fn set_probe_timeout(&mut self, t: Duration) {
        self.probe_timeout = t;
    }

    /// Looks at every disk again, taking in disks adopted since the last
    /// look (state changes from Missing, the state of a disk not yet
    /// probed); mounts adopted disks that came back (when
    /// this process may mount; else the bunker-mount helper does). Returns
    /// the changes, which the caller logs, records in MANIFEST.db and
    /// turns into policy (a full disk takes no new contracts).
    pub fn probe(&mut self) -> Result<Vec<StateChange>, DiscoveryError> {
        let devices = discovery::scan(&self.roots)?;
        Ok(self.probe_with(&devices))
    }

    fn probe_with(&mut self, devices: &[BlockDevice]) -> Vec<StateChange> {
        self.take_in_adopted(devices);
        let mut mounts = mountinfo::read(&self.roots.mountinfo());
        // A pulled disk leaves its mount behind with the device gone; a disk
        // that came back is mounted again where it belongs. Both need
        // CAP_SYS_ADMIN; without it the bunker-mount helper does the same.
        let privileged = adopt::can_mount(&self.roots);
        let mut remounted = false;
        for d in self.disks.iter().filter(|d| d.expect_mount) {
            if let Some(m) = mounts.iter().rev().find(|m| m.mount_point == d.mount_path) {
                if self.roots.sys.join(format!("dev/block/{}", m.dev)).exists() || !privileged {
                    continue;
                }
                match nix::mount::umount2(&d.mount_path, nix::mount::MntFlags::MNT_DETACH) {
                    Ok(()) => {
                        tracing::warn!(disk = %d.id, dev = %m.dev, "device gone: stale mount detached");
                        remounted = true;
                    }
                    Err(e) => {
                        tracing::warn!(disk = %d.id, error = %e, "cannot detach stale mount");
                        continue;
                    }
                }
            }
            let Some((_, dev)) = device_with_uuid(devices, &d.id) else {
                continue;
            };
            match adopt::mount(&self.roots, &dev, &d.id, &d.mount_path) {
                Ok(()) => remounted = true,
                Err(e @ MountError::NeedsMountHelper { .. }) => {
                    tracing::debug!(disk = %d.id, "{e}")
                }
                Err(e) => tracing::warn!(disk = %d.id, "{e}"),
            }
        }
        if remounted {
            mounts = mountinfo::read(&self.roots.mountinfo());
        }
        let system_devs = adopt::system_devnums(devices);
        let mut changes = Vec::new();
        for d in &mut self.disks {
            let input = ProbeInput {
                mount_path: d.mount_path.clone(),
                expect_mount: d.expect_mount,
                mounts: mounts.clone(),
                sys_root: self.roots.sys.clone(),
                system_devs: system_devs.clone(),
                reserve: self.reserve,
                hook: d.hook.clone(),
            };
            let r = probe_with_timeout(input, self.probe_timeout);
            if let Some((dd, _)) = device_with_uuid(devices, &d.id) {
                d.label = dd.display_name();
            }
            if let Some(c) = r.capacity {
                d.capacity = c;
            }
            d.on_system_device = r.on_system_device;
            d.last_error = r.error.clone();
            let mut r = r;
            // A disk that failed a real write stays failing while it is
            // attached, whatever one small probe write says; once it was
            // away it is judged anew.
            if r.state == DiskState::Missing {
                d.failed_write = None;
            } else if let Some(why) = &d.failed_write {
                if r.state != DiskState::Failing {
                    r.state = DiskState::Failing;
                    d.last_error = Some(why.clone());
                }
            }
            if d.state != r.state {
                tracing::info!(disk = %d.id, from = %d.state, to = %r.state, error = ?d.last_error, "data disk state");
                changes.push(StateChange {
                    disk: d.id.clone(),
                    from: d.state,
                    to: r.state,
                });
                d.state = r.state;
            }
        }
        changes
    }

    /// The disk to put `bytes` of new data on: among the active disks whose
    /// free space beyond the reserve holds it, the one with the most, so data
    /// spreads and no disk fills while another is empty.
    pub fn choose_for(&self, bytes: u64) -> Result<&DataDisk, NoRoom> {
        let active = || self.disks.iter().filter(|d| d.state.accepts_new_data());
        active()
            .filter(|d| d.capacity.usable_bytes() >= bytes)
            .max_by_key(|d| d.capacity.usable_bytes())
            .ok_or_else(|| NoRoom {
                bytes,
                largest_usable: active()
                    .map(|d| d.capacity.usable_bytes())
                    .max()
                    .unwrap_or(0),
                active: active().count(),
                total: self.disks.len(),
            })
    }

    /// Free space beyond the reserves over the active disks: what the box
    /// can still take (DESIGN §6's capacity before local files and offers).
    pub fn usable_bytes(&self) -> u64 {
        self.disks
            .iter()
            .filter(|d| d.state.accepts_new_data())
            .map(|d| d.capacity.usable_bytes())
            .sum()
    }

    /// Every disk.
    pub fn disks(&self) -> &[DataDisk] {
        &self.disks
    }

    /// One disk by id.
    pub fn get(&self, id: &str) -> Option<&DataDisk> {
        self.disks.iter().find(|d| d.id == id)
    }

    /// The data root this set was scanned under.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// An I/O error the caller hit while writing or reading `path`: if it
    /// says something about the disk holding `path` (full, read-only, I/O
    /// error, gone), that disk's state changes now instead of at the next
    /// probe. Returns the change.
    pub fn note_io_error(&mut self, path: &Path, e: &io::Error) -> Option<StateChange> {
        let state = DiskState::from_io_error(e)?;
        let d = self
            .disks
            .iter_mut()
            .filter(|d| path.starts_with(&d.mount_path))
            .max_by_key(|d| d.mount_path.as_os_str().len())?;
        d.last_error = Some(format!("{}: {e}", path.display()));
        if state == DiskState::Failing {
            d.failed_write = d.last_error.clone();
        }
        if d.state == state {
            return None;
        }
        let change = StateChange {
            disk: d.id.clone(),
            from: d.state,
            to: state,
        };
        tracing::warn!(disk = %d.id, from = %d.state, to = %state, error = %e, "data disk state");
        d.state = state;
        Some(change)
    }

    /// What the owner must be told about the disks now.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut out = Vec::new();
        for d in &self.disks {
            let name = &d.label;
            let why = d.last_error.as_deref().unwrap_or("");
            let id = Some(d.id.clone());
            match d.state {
                DiskState::Active => {}
                DiskState::Missing => out.push(Alert::new(
                    Severity::Critical,
                    "Disk missing",
                    format!("Data disk {name} is missing ({why}). Plug it back in: nothing on it is lost, and the box resumes when it returns."),
                    id.clone(),
                )),
                DiskState::ReadOnly => out.push(Alert::new(
                    Severity::Critical,
                    "Disk read-only",
                    format!("Data disk {name} went read-only ({why}), usually after disk errors. Its data can still be read; no new data goes to it. Check the disk and the power supply."),
                    id.clone(),
                )),
                DiskState::Full => out.push(Alert::new(
                    Severity::Warning,
                    "Disk full",
                    format!("Data disk {name} is full: {} free, {} kept in reserve. The box takes no new contracts on it; add a disk or remove files.", human_bytes(d.capacity.free_bytes), human_bytes(d.capacity.reserved_bytes)),
                    id.clone(),
                )),
                DiskState::Failing => out.push(Alert::new(
                    Severity::Critical,
                    "Disk failing",
                    format!("Data disk {name} is failing ({why}). Replace it: the box repairs its data from the copies kept by peers."),
                    id.clone(),
                )),
            }
            if d.on_system_device && d.state != DiskState::Missing {
                out.push(Alert::new(
                    Severity::Warning,
                    "Data on SD card",
                    format!("Data on SD card: {} is on the system card, which wears out and is small. Adopt a USB disk for your data.", d.mount_path.display()),
                    id,
                ));
            }
        }
        if self.disks.is_empty() {
            out.push(Alert::new(
                Severity::Warning,
                "No data disk",
                "No data disk: plug in a USB disk and adopt it on the admin page.".into(),
                None,
            ));
        }
        out
    }
}

/// Runs the probe on its own thread and gives up after `timeout` (the
/// thread, stuck in the kernel, is left behind; it ends if the call returns).
fn probe_with_timeout(input: ProbeInput, timeout: Duration) -> health::ProbeResult {
    let path = input.mount_path.clone();
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("disk-probe".into())
        .spawn(move || {
            let _ = tx.send(health::probe(&input));
        });
    let hung = |why: String| health::ProbeResult {
        state: DiskState::Failing,
        capacity: None,
        on_system_device: false,
        error: Some(why),
    };
    if let Err(e) = spawned {
        return hung(format!("cannot start a probe thread: {e}"));
    }
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => hung(format!(
            "{} did not answer within {} s",
            path.display(),
            timeout.as_secs()
        )),
    }
}

/// The device holding a Bunker file system with this UUID, and its node.
fn device_with_uuid<'a>(
    devices: &'a [BlockDevice],
    uuid: &str,
) -> Option<(&'a BlockDevice, PathBuf)> {
    devices.iter().find_map(|d| {
        if d.system.is_some() {
            return None;
        }
        d.bunker_filesystem()
            .filter(|(_, _, fs)| fs.uuid == uuid)
            .map(|(dev, _, _)| (d, dev.to_path_buf()))
    })
}

/// Only UUID-shaped names under `disks/` are adopted disks (hex and hyphens,
/// like `1b4e28ba-2fa1-11d2-883f-0016d3cca427`); anything else there is ignored.
fn looks_like_uuid(s: &str) -> bool {
    (8..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Capacity;

    fn disk(id: &str, free: u64, reserved: u64, state: DiskState) -> DataDisk {
        let mut d = DataDisk::new(id.into(), id.into(), PathBuf::from("/x").join(id), true);
        d.capacity = Capacity {
            total_bytes: 1000,
            free_bytes: free,
            reserved_bytes: reserved,
        };
        d.state = state;
        d
    }

    fn set(disks: Vec<DataDisk>) -> Disks {
        Disks {
            roots: Roots::system(),
            data_root: PathBuf::from("/x"),
            reserve: ReservePolicy {
                min_bytes: 0,
                percent: 0,
            },
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            disks,
        }
    }

    #[test]
    fn new_data_goes_to_the_active_disk_with_most_room_beyond_its_reserve() {
        let s = set(vec![
            disk("a", 500, 100, DiskState::Active), // 400 usable
            disk("b", 700, 400, DiskState::Active), // 300 usable despite more free
            disk("c", 900, 0, DiskState::ReadOnly), // not a candidate
            disk("d", 950, 0, DiskState::Missing),  // not a candidate
        ]);
        assert_eq!(s.choose_for(10).unwrap().id, "a");
        assert_eq!(s.choose_for(400).unwrap().id, "a");
        let e = s.choose_for(401).unwrap_err();
        assert_eq!(
            e,
            NoRoom {
                bytes: 401,
                largest_usable: 400,
                active: 2,
                total: 4
            }
        );
        assert_eq!(s.usable_bytes(), 700);
    }

    #[test]
    fn io_errors_change_the_state_of_the_disk_holding_the_path() {
        let mut s = set(vec![
            disk("a", 500, 0, DiskState::Active),
            disk("a/nested", 500, 0, DiskState::Active),
        ]);
        let enospc = io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32);
        let c = s
            .note_io_error(Path::new("/x/a/nested/obj"), &enospc)
            .unwrap();
        assert_eq!(
            (c.disk.as_str(), c.to),
            ("a/nested", DiskState::Full),
            "longest mount wins"
        );
        assert_eq!(
            s.note_io_error(Path::new("/x/a/nested/obj"), &enospc),
            None,
            "no change twice"
        );
        let eacces = io::Error::from_raw_os_error(nix::errno::Errno::EACCES as i32);
        assert_eq!(
            s.note_io_error(Path::new("/x/a/f"), &eacces),
            None,
            "says nothing about the disk"
        );
        assert_eq!(s.note_io_error(Path::new("/elsewhere"), &enospc), None);
        assert_eq!(s.get("a").unwrap().state, DiskState::Active);
    }

    #[test]
    fn a_disk_that_failed_a_write_stays_failing_until_it_was_away() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = set(Vec::new());
        s.disks.push(DataDisk::new(
            "d".into(),
            "SanDisk".into(),
            dir.path().to_path_buf(),
            false,
        ));
        assert!(s.probe_with(&[]).iter().any(|c| c.to == DiskState::Active));
        let eio = io::Error::from_raw_os_error(nix::errno::Errno::EIO as i32);
        let c = s
            .note_io_error(&dir.path().join("tmp/x/object"), &eio)
            .unwrap();
        assert_eq!((c.from, c.to), (DiskState::Active, DiskState::Failing));
        // The probe's own small write passes: the disk stays failing, and
        // the alert names the write that failed.
        assert!(s.probe_with(&[]).is_empty());
        assert_eq!(s.get("d").unwrap().state, DiskState::Failing);
        let alert = s.alerts().into_iter().find(|a| a.short == "Disk failing").unwrap();
        assert!(alert.text.contains("Input/output error"), "{}", alert.text);
        // Away (unplugged), then back: judged anew.
        let back = dir.path().with_extension("away");
        std::fs::rename(dir.path(), &back).unwrap();
        s.probe_with(&[]);
        assert_eq!(s.get("d").unwrap().state, DiskState::Missing);
        std::fs::rename(&back, dir.path()).unwrap();
        s.probe_with(&[]);
        assert_eq!(s.get("d").unwrap().state, DiskState::Active);
    }
}
