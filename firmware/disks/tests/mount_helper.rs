//! systemd/bunker-mount, the root helper that mounts adopted disks for the
//! unprivileged daemon, run against a real ext4 on a loop device presented
//! through a fake sysfs and a fake /dev/disk/by-uuid.
//!
//! Needs root and loop devices; without them the test says why on stderr
//! and passes without checking anything.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bunker_disks::adopt::can_mount;
use bunker_disks::Roots;
use common::{mounted_at, usb_disk, Bus, FakeMachine, Loop, Unmount};

fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd/bunker-mount")
}

fn run(disks: &Path, by_uuid: &Path, sys: &Path) -> Output {
    let out = Command::new("sh")
        .arg(helper())
        .env("BUNKER_DISKS_DIR", disks)
        .env("BUNKER_BY_UUID", by_uuid)
        .env("BUNKER_SYSFS", sys)
        .output()
        .expect("run bunker-mount");
    eprintln!(
        "bunker-mount: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mkfs(dev: &Path, label: &str) -> String {
    assert!(Command::new("mkfs.ext4")
        .args(["-F", "-q", "-L", label])
        .arg(dev)
        .status()
        .unwrap()
        .success());
    let o = Command::new("blkid")
        .args(["-o", "value", "-s", "UUID"])
        .arg(dev)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn helper_mounts_adopted_usb_disks_only_and_detaches_pulled_ones() {
    if !can_mount(&Roots::system()) {
        eprintln!("SKIPPED: not running with CAP_SYS_ADMIN: cannot mount a loop device here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let lp = match Loop::attach(&img) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("SKIPPED: no loop device in this sandbox ({e})");
            return;
        }
    };
    let uuid = mkfs(&lp.dev, "bunker-data");
    let m = FakeMachine::new();
    let by_uuid = tmp.path().join("by-uuid");
    std::fs::create_dir_all(&by_uuid).unwrap();
    symlink(&lp.dev, by_uuid.join(&uuid)).unwrap();
    let disks = tmp.path().join("disks");
    let mp = disks.join(&uuid);

    // Present but not adopted (no directory): left alone.
    let mut d = usb_disk("sdz", 0, "Flash Drive", (32 << 20) / 512);
    d.devnum = lp.devnum;
    m.add_disk(&d);
    std::fs::create_dir_all(&disks).unwrap();
    assert!(run(&disks, &by_uuid, &m.roots.sys).status.success());
    assert!(mounted_at(&mp).is_none());

    // Adopted: mounted, and only once however often the helper runs.
    std::fs::create_dir_all(&mp).unwrap();
    std::fs::create_dir_all(disks.join("not-a-uuid!")).unwrap();
    let _unmount = Unmount(mp.clone());
    assert!(run(&disks, &by_uuid, &m.roots.sys).status.success());
    let mounted = mounted_at(&mp).expect("mounted");
    assert_eq!((mounted.dev.major, mounted.dev.minor), lp.devnum);
    assert_eq!(mounted.fs_type, "ext4");
    std::fs::write(mp.join("kept"), b"still here").unwrap();
    assert!(run(&disks, &by_uuid, &m.roots.sys).status.success());
    let count = bunker_disks::mountinfo::read(Path::new("/proc/self/mountinfo"))
        .iter()
        .filter(|x| x.mount_point == mp)
        .count();
    assert_eq!(count, 1, "not mounted twice");

    // Pulled: its device left sysfs (and udev removed the by-uuid link): the
    // dead mount is detached.
    m.remove_disk("sdz", lp.devnum);
    std::fs::remove_file(by_uuid.join(&uuid)).unwrap();
    assert!(run(&disks, &by_uuid, &m.roots.sys).status.success());
    assert!(mounted_at(&mp).is_none(), "stale mount detached");

    // Back, but on a bus that is not USB: refused.
    let mut internal = usb_disk("vdz", 0, "Internal", (32 << 20) / 512);
    internal.bus = Bus::Internal;
    internal.devnum = lp.devnum;
    m.add_disk(&internal);
    symlink(&lp.dev, by_uuid.join(&uuid)).unwrap();
    let out = run(&disks, &by_uuid, &m.roots.sys);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not a USB disk"));
    assert!(mounted_at(&mp).is_none());

    // Back on USB: mounted again, the file intact.
    m.remove_disk("vdz", lp.devnum);
    m.add_disk(&d);
    assert!(run(&disks, &by_uuid, &m.roots.sys).status.success());
    assert!(mounted_at(&mp).is_some());
    assert_eq!(std::fs::read(mp.join("kept")).unwrap(), b"still here");

    // Not a Bunker file system (another label): refused.
    nix::mount::umount2(&mp, nix::mount::MntFlags::empty()).unwrap();
    let other = mkfs(&lp.dev, "photos");
    std::fs::remove_file(by_uuid.join(&uuid)).unwrap();
    symlink(&lp.dev, by_uuid.join(&other)).unwrap();
    let other_mp = disks.join(&other);
    std::fs::create_dir_all(&other_mp).unwrap();
    let _unmount_other = Unmount(other_mp.clone());
    let out = run(&disks, &by_uuid, &m.roots.sys);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not Bunker's"));
    assert!(mounted_at(&other_mp).is_none());
}
