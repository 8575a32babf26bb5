//! A fake machine: sysfs, /dev and /proc trees in a temporary directory,
//! laid out as the kernel lays them out, so discovery and the device profile
//! are tested against the shapes they meet on a Pi.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use std::process::Command;

use bunker_disks::Roots;
use nix::mount::{umount2, MntFlags};

pub struct FakeMachine {
    pub dir: tempfile::TempDir,
    pub roots: Roots,
}

/// Where a disk sits in the device tree.
pub enum Bus {
    /// Behind a USB port of the Pi's controller.
    Usb,
    /// The Pi's SD slot.
    Mmc,
    /// A SATA/virtio disk of a PC.
    Internal,
    /// loop, zram: not a disk.
    Virtual,
}

pub struct FakeDisk<'a> {
    pub name: &'a str,
    pub bus: Bus,
    pub devnum: (u32, u32),
    pub model: &'a str,
    pub vendor: &'a str,
    pub sectors: u64,
    pub removable: bool,
    /// Contents of the whole device's first bytes (e.g. an ext4 superblock).
    pub head: Option<Vec<u8>>,
    /// `(name, minor offset, sectors, head)`.
    pub partitions: Vec<(&'a str, u32, u64, Option<Vec<u8>>)>,
}

impl FakeMachine {
    pub fn new() -> FakeMachine {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = Roots::under(dir.path());
        for d in [&roots.sys, &roots.dev, &roots.proc] {
            fs::create_dir_all(d).unwrap();
        }
        fs::create_dir_all(roots.sys.join("block")).unwrap();
        fs::create_dir_all(roots.sys.join("dev/block")).unwrap();
        fs::create_dir_all(roots.proc.join("self")).unwrap();
        let m = FakeMachine { dir, roots };
        m.set_mountinfo("");
        m
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, contents).unwrap();
    }

    pub fn set_mountinfo(&self, text: &str) {
        fs::write(self.roots.proc.join("self/mountinfo"), text).unwrap();
    }

    /// Lays out `/sys/devices/.../block/NAME` with its attributes, the
    /// `/sys/block/NAME` symlink, `/sys/dev/block/MAJ:MIN` and `/dev/NAME`.
    /// Returns the real sysfs directory of the disk.
    pub fn add_disk(&self, d: &FakeDisk) -> PathBuf {
        let parent = match d.bus {
            Bus::Usb => "devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb2/2-2/2-2:1.0/host0/target0:0:0/0:0:0:0",
            Bus::Mmc => "devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa",
            Bus::Internal => "devices/pci0000:00/0000:00:02.0/virtio1",
            Bus::Virtual => "devices/virtual",
        };
        // One device directory per disk (its model and vendor live there).
        let parent = match d.bus {
            Bus::Virtual => parent.to_string(),
            _ => format!("{parent}-{}", d.name),
        };
        let parent = parent.as_str();
        let real = self.roots.sys.join(parent).join("block").join(d.name);
        fs::create_dir_all(&real).unwrap();
        let attr = |p: &Path, k: &str, v: &str| fs::write(p.join(k), format!("{v}\n")).unwrap();
        attr(&real, "dev", &format!("{}:{}", d.devnum.0, d.devnum.1));
        attr(&real, "size", &d.sectors.to_string());
        attr(&real, "removable", if d.removable { "1" } else { "0" });
        attr(&real, "ro", "0");
        // SCSI pads model and vendor with spaces; discovery trims them.
        let device = self.roots.sys.join(parent);
        if matches!(d.bus, Bus::Mmc) {
            attr(&device, "name", d.model);
        } else {
            fs::write(device.join("model"), format!("{:<16}\n", d.model)).unwrap();
            fs::write(device.join("vendor"), format!("{:<8}\n", d.vendor)).unwrap();
        }
        symlink(&device, real.join("device")).unwrap();
        symlink(
            Path::new("..").join(parent).join("block").join(d.name),
            self.roots.sys.join("block").join(d.name),
        )
        .unwrap();
        self.devlink(d.devnum, &real);
        if let Some(head) = &d.head {
            fs::write(self.roots.dev.join(d.name), head).unwrap();
        } else {
            fs::write(self.roots.dev.join(d.name), [0u8; 4096]).unwrap();
        }
        for (pname, off, sectors, head) in &d.partitions {
            let p = real.join(pname);
            fs::create_dir_all(&p).unwrap();
            attr(&p, "dev", &format!("{}:{}", d.devnum.0, d.devnum.1 + off));
            attr(&p, "size", &sectors.to_string());
            attr(&p, "partition", &off.to_string());
            self.devlink((d.devnum.0, d.devnum.1 + off), &p);
            fs::write(
                self.roots.dev.join(pname),
                head.clone().unwrap_or_else(|| vec![0u8; 4096]),
            )
            .unwrap();
        }
        real
    }

    /// Takes a disk away as a yank does: its sysfs entries and node vanish.
    pub fn remove_disk(&self, name: &str, devnum: (u32, u32)) {
        let link = self.roots.sys.join("block").join(name);
        let real = fs::canonicalize(&link).unwrap();
        fs::remove_file(&link).unwrap();
        fs::remove_dir_all(real).unwrap();
        let _ = fs::remove_file(
            self.roots
                .sys
                .join(format!("dev/block/{}:{}", devnum.0, devnum.1)),
        );
        let _ = fs::remove_file(self.roots.dev.join(name));
    }

    fn devlink(&self, devnum: (u32, u32), target: &Path) {
        let l = self
            .roots
            .sys
            .join(format!("dev/block/{}:{}", devnum.0, devnum.1));
        let _ = fs::remove_file(&l);
        symlink(target, l).unwrap();
    }
}

/// A fake USB disk with sensible defaults.
pub fn usb_disk<'a>(name: &'a str, minor: u32, model: &'a str, sectors: u64) -> FakeDisk<'a> {
    FakeDisk {
        name,
        bus: Bus::Usb,
        devnum: (8, minor),
        model,
        vendor: "SanDisk",
        sectors,
        removable: true,
        head: None,
        partitions: Vec::new(),
    }
}

/// A loop device over an image file, detached on drop.
pub struct Loop {
    pub dev: PathBuf,
    pub devnum: (u32, u32),
}

impl Loop {
    pub fn attach(img: &Path) -> Result<Loop, String> {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(img)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let name = dev.file_name().unwrap().to_string_lossy().into_owned();
        let devnum =
            std::fs::read_to_string(format!("/sys/block/{name}/dev")).map_err(|e| e.to_string())?;
        let (a, b) = devnum.trim().split_once(':').unwrap();
        Ok(Loop {
            dev,
            devnum: (a.parse().unwrap(), b.parse().unwrap()),
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// Unmounts (lazily) whatever is still mounted at the path on drop.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        while umount2(&self.0, MntFlags::MNT_DETACH).is_ok() {}
    }
}

pub fn mounted_at(path: &Path) -> Option<bunker_disks::mountinfo::Mount> {
    bunker_disks::mountinfo::read(Path::new("/proc/self/mountinfo"))
        .into_iter()
        .rev()
        .find(|m| m.mount_point == path)
}
