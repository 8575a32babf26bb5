//! A real ext4 on a real block device: an image file behind a loop device,
//! presented to discovery as a USB disk (a fake sysfs entry whose /dev node
//! is the loop device). Adopted (formatted and mounted by this crate), filled
//! to ENOSPC, remounted read-only, unmounted and taken away (yank), brought
//! back (remounted by the probe) with every file intact.
//!
//! Needs root (CAP_SYS_ADMIN) and loop devices; without them the test says
//! why on stderr and passes without checking anything.

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;

use bunker_disks::adopt::can_mount;
use bunker_disks::{
    adopt, discovery, AdoptError, Confirmation, DiskState, Disks, ReservePolicy, Roots,
};
use common::{mounted_at, usb_disk, FakeMachine, Loop, Unmount};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

const IMG_BYTES: u64 = 64 << 20;

/// Presents the loop device as USB disk `sdz`.
fn plug(m: &FakeMachine, lp: &Loop) {
    let mut d = usb_disk("sdz", 0, "Flash Drive", IMG_BYTES / 512);
    d.devnum = lp.devnum;
    m.add_disk(&d);
    let node = m.roots.dev.join("sdz");
    std::fs::remove_file(&node).unwrap();
    symlink(&lp.dev, &node).unwrap();
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn loop_disk_adopted_filled_read_only_yanked_and_back_with_files_intact() {
    if !can_mount(&Roots::system()) {
        eprintln!("SKIPPED: not running with CAP_SYS_ADMIN: cannot mount a loop device here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(IMG_BYTES)
        .unwrap();
    let lp = match Loop::attach(&img) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("SKIPPED: no loop device in this sandbox ({e})");
            return;
        }
    };
    let m = FakeMachine::new();
    // Fake sysfs and /dev (the loop device posing as a USB disk), the real
    // mount table and capabilities.
    let roots = Roots {
        proc: PathBuf::from("/proc"),
        ..m.roots.clone()
    };
    plug(&m, &lp);
    let data_root = tmp.path().join("data");

    let reserve = ReservePolicy {
        min_bytes: 1 << 20,
        percent: 0,
    };
    let mut early = Disks::scan(&roots, &data_root, reserve).expect("scan before adoption");
    assert!(early.disks().is_empty());

    // 1. Adoption: only with the confirmation discovery's words make.
    let d = discovery::find(&roots, "sdz")
        .unwrap()
        .expect("sdz discovered");
    assert!(d.usb && d.system.is_none());
    assert_eq!(d.size_bytes, IMG_BYTES);
    assert!(matches!(
        adopt(&roots, &data_root, "sdz", None),
        Err(AdoptError::ConfirmationRequired { .. })
    ));
    let wrong = Confirmation {
        model: "Flash Drive".into(),
        size_bytes: IMG_BYTES + 1,
    };
    assert!(matches!(
        adopt(&roots, &data_root, "sdz", Some(&wrong)),
        Err(AdoptError::ConfirmationMismatch { .. })
    ));
    let adopted = adopt(
        &roots,
        &data_root,
        "sdz",
        Some(&Confirmation::for_device(&d)),
    )
    .expect("adopt");
    let _unmount = Unmount(adopted.mount_path.clone());
    assert!(adopted.formatted);
    let mp = adopted.mount_path.clone();
    assert_eq!(mp, data_root.join("disks").join(&adopted.uuid));
    let mounted = mounted_at(&mp).expect("mounted");
    assert_eq!(mounted.fs_type, "ext4");
    assert_eq!((mounted.dev.major, mounted.dev.minor), lp.devnum);
    let blkid = Command::new("blkid")
        .args(["-o", "value", "-s", "UUID"])
        .arg(&lp.dev)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&blkid.stdout).trim(),
        adopted.uuid,
        "blkid agrees"
    );

    // 2. Health: active, not on the system device; files go there.
    let changes = early.probe().unwrap();
    assert_eq!(
        changes.len(),
        1,
        "a set made before adoption takes the disk in"
    );
    assert_eq!(
        (changes[0].disk.as_str(), changes[0].to),
        (adopted.uuid.as_str(), DiskState::Active)
    );
    drop(early);
    let mut disks = Disks::scan(&roots, &data_root, reserve).expect("scan");
    assert_eq!(disks.disks().len(), 1);
    let disk = disks.get(&adopted.uuid).expect("the adopted disk").clone();
    assert_eq!(disk.state, DiskState::Active, "{:?}", disk.last_error);
    assert_eq!(disk.label, "SanDisk Flash Drive");
    assert!(!disk.on_system_device);
    assert!(disk.capacity.total_bytes > 50 << 20 && disk.capacity.total_bytes <= IMG_BYTES);
    assert!(disks.alerts().is_empty(), "{:?}", disks.alerts());
    assert_eq!(disks.choose_for(1 << 20).unwrap().id, adopted.uuid);
    let files: Vec<(PathBuf, Vec<u8>)> = (0..3u8)
        .map(|i| (mp.join(format!("obj{i}")), pattern(1 << 20, i)))
        .collect();
    for (p, data) in &files {
        let mut f = std::fs::File::create(p).unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
    }

    // 3. Fill it to ENOSPC: the error the writer sees marks the disk full.
    let filler = mp.join("filler");
    let err = {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0x5a; 1 << 20];
        loop {
            if let Err(e) = f.write_all(&chunk).and_then(|_| f.sync_data()) {
                break e;
            }
        }
    };
    assert_eq!(
        err.raw_os_error(),
        Some(nix::errno::Errno::ENOSPC as i32),
        "{err}"
    );
    let change = disks.note_io_error(&filler, &err).expect("full now");
    assert_eq!(change.to, DiskState::Full);
    disks.probe().unwrap();
    let d = disks.get(&adopted.uuid).unwrap();
    assert_eq!(d.state, DiskState::Full, "probe agrees: {:?}", d.last_error);
    assert!(d.capacity.free_bytes < reserve.min_bytes);
    assert!(disks.alerts().iter().any(|a| a.short == "Disk full"));
    let no_room = disks.choose_for(1).unwrap_err();
    assert_eq!(no_room.active, 0);
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(disks.probe().unwrap()[0].to, DiskState::Active);

    // 4. The kernel remounts read-only (as errors=remount-ro does).
    let keep = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOATIME;
    mount(
        None::<&str>,
        &mp,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        None::<&str>,
    )
    .expect("remount ro");
    assert_eq!(disks.probe().unwrap()[0].to, DiskState::ReadOnly);
    let a = disks
        .alerts()
        .into_iter()
        .find(|a| a.short == "Disk read-only")
        .expect("alert");
    assert!(a.text.contains("read-only"), "{}", a.text);
    let ro_err = std::fs::File::create(mp.join("x")).unwrap_err();
    assert_eq!(ro_err.raw_os_error(), Some(nix::errno::Errno::EROFS as i32));
    mount(
        None::<&str>,
        &mp,
        None::<&str>,
        MsFlags::MS_REMOUNT | keep,
        None::<&str>,
    )
    .expect("remount rw");
    assert_eq!(disks.probe().unwrap()[0].to, DiskState::Active);

    // 5. Yank: the device vanishes from the bus while still mounted (the
    //    kernel keeps the dead mount); the probe reports it missing and
    //    detaches the stale mount so the disk can come back.
    m.remove_disk("sdz", lp.devnum);
    let changes = disks.probe().unwrap();
    assert_eq!(changes[0].to, DiskState::Missing);
    let d = disks.get(&adopted.uuid).unwrap();
    assert!(
        d.last_error.as_deref().unwrap().contains("not mounted"),
        "{:?}",
        d.last_error
    );
    assert!(mounted_at(&mp).is_none(), "stale mount detached");
    assert!(disks.alerts().iter().any(|a| a.short == "Disk missing"));
    assert!(disks.choose_for(1).is_err());
    assert_eq!(disks.probe().unwrap(), [], "still missing");
    assert_eq!(
        std::fs::read_dir(&mp).unwrap().count(),
        0,
        "nothing written to the empty mount point"
    );

    // 6. Plugged back: the probe mounts it again; nothing lost.
    plug(&m, &lp);
    let changes = disks.probe().unwrap();
    assert_eq!(
        changes[0].to,
        DiskState::Active,
        "{:?}",
        disks.get(&adopted.uuid).unwrap().last_error
    );
    assert!(mounted_at(&mp).is_some());
    for (p, data) in &files {
        assert_eq!(&std::fs::read(p).unwrap(), data, "{} intact", p.display());
    }
    assert!(disks.alerts().is_empty());

    // 7. Adopting a disk that already is a Bunker disk formats nothing.
    umount2(&mp, MntFlags::empty()).expect("umount");
    let again = adopt(&roots, &data_root, "sdz", None).expect("adopt without confirmation");
    assert!(!again.formatted);
    assert_eq!(again.uuid, adopted.uuid);
    for (p, data) in &files {
        assert_eq!(&std::fs::read(p).unwrap(), data);
    }
}
