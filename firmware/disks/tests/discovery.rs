//! Discovery and adoption refusals on fake sysfs trees shaped like a Pi's.

mod common;

use std::process::Command;

use bunker_disks::superblock::{fake_ext4_head, read_ext, BUNKER_LABEL};
use bunker_disks::{adopt, discovery, AdoptError, Confirmation, MountError, SystemReason};
use common::{usb_disk, Bus, FakeDisk, FakeMachine};

const SD_ROOT_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
28 27 179:1 / /boot/firmware rw,relatime shared:2 - vfat /dev/mmcblk0p1 rw
";

/// A Pi 4 booted from its SD card, with a USB stick holding an ext4
/// partition of someone's photos, a Bunker-formatted USB SSD and a loop device.
fn pi_with_two_usb_disks() -> FakeMachine {
    let m = FakeMachine::new();
    m.set_mountinfo(SD_ROOT_MOUNTINFO);
    m.add_disk(&FakeDisk {
        name: "mmcblk0",
        bus: Bus::Mmc,
        devnum: (179, 0),
        model: "SC32G",
        vendor: "",
        sectors: 62_333_952,
        removable: false,
        head: None,
        partitions: vec![
            ("mmcblk0p1", 1, 1_048_576, None),
            (
                "mmcblk0p2",
                2,
                61_000_000,
                Some(fake_ext4_head([7; 16], "rootfs")),
            ),
        ],
    });
    let mut stick = usb_disk("sda", 0, "Ultra Fit", 125_042_688);
    stick.partitions = vec![(
        "sda1",
        1,
        125_040_640,
        Some(fake_ext4_head([0xab; 16], "photos")),
    )];
    m.add_disk(&stick);
    let mut ssd = usb_disk("sdb", 16, "Portable SSD T7", 1_953_525_168);
    ssd.vendor = "Samsung";
    ssd.removable = false;
    ssd.head = Some(fake_ext4_head([0x5b; 16], BUNKER_LABEL));
    m.add_disk(&ssd);
    m.add_disk(&FakeDisk {
        name: "loop0",
        bus: Bus::Virtual,
        devnum: (7, 0),
        model: "",
        vendor: "",
        sectors: 1000,
        removable: false,
        head: None,
        partitions: vec![],
    });
    m
}

#[test]
fn finds_usb_disks_with_their_filesystems_and_flags_the_sd_card() {
    let m = pi_with_two_usb_disks();
    let devs = discovery::scan(&m.roots).expect("scan");
    let names: Vec<&str> = devs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["mmcblk0", "sda", "sdb"],
        "loop devices are not disks"
    );

    let sd = &devs[0];
    assert_eq!(sd.system, Some(SystemReason::SdCard));
    assert!(!sd.usb);
    assert_eq!(sd.partitions.len(), 2);

    let stick = &devs[1];
    assert!(stick.usb && stick.removable && stick.system.is_none());
    assert_eq!(stick.model, "Ultra Fit", "SCSI padding trimmed");
    assert_eq!(stick.vendor, "SanDisk");
    assert_eq!(stick.display_name(), "SanDisk Ultra Fit");
    assert_eq!(stick.size_bytes, 125_042_688 * 512);
    assert_eq!(stick.partitions.len(), 1);
    let fs = stick.partitions[0]
        .filesystem
        .as_ref()
        .expect("ext4 on sda1");
    assert_eq!(fs.kind, "ext4");
    assert_eq!(fs.label, "photos");
    assert_eq!(fs.uuid, "abababab-abab-abab-abab-abababababab");
    assert!(stick.bunker_filesystem().is_none());

    let ssd = &devs[2];
    assert_eq!(ssd.display_name(), "Samsung Portable SSD T7");
    let (dev, _, fs) = ssd
        .bunker_filesystem()
        .expect("bunker fs on the whole disk");
    assert_eq!(dev, m.roots.dev.join("sdb"));
    assert_eq!(fs.uuid, "5b5b5b5b-5b5b-5b5b-5b5b-5b5b5b5b5b5b");
}

#[test]
fn the_sd_card_is_refused_as_a_data_disk_even_with_a_confirmation() {
    let m = pi_with_two_usb_disks();
    let sd = discovery::find(&m.roots, "mmcblk0").unwrap().unwrap();
    let data_root = m.path().join("data");
    let err = adopt(
        &m.roots,
        &data_root,
        "mmcblk0",
        Some(&Confirmation::for_device(&sd)),
    )
    .expect_err("SD card refused");
    assert!(
        matches!(
            err,
            AdoptError::SystemDisk {
                reason: SystemReason::SdCard,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("mmcblk0") && text.contains("SD card"),
        "{text}"
    );
    assert!(!data_root.join("disks").exists(), "nothing was prepared");
}

#[test]
fn a_usb_disk_holding_the_root_file_system_is_refused() {
    // A Pi 4 booting from a USB SSD: that SSD is the system disk.
    let m = FakeMachine::new();
    m.set_mountinfo("27 1 8:2 / / rw,noatime shared:1 - ext4 /dev/sda2 rw\n");
    let mut ssd = usb_disk("sda", 0, "Extreme SSD", 976_773_168);
    ssd.partitions = vec![
        ("sda1", 1, 524_288, None),
        (
            "sda2",
            2,
            976_000_000,
            Some(fake_ext4_head([1; 16], "rootfs")),
        ),
    ];
    m.add_disk(&ssd);
    let d = discovery::find(&m.roots, "sda").unwrap().unwrap();
    assert_eq!(d.system, Some(SystemReason::HoldsRoot));
    let err = adopt(
        &m.roots,
        &m.path().join("data"),
        "sda",
        Some(&Confirmation::for_device(&d)),
    )
    .expect_err("root disk refused");
    assert!(err.to_string().contains("root file system"), "{err}");
}

#[test]
fn formatting_is_refused_without_the_exact_model_and_size() {
    let m = pi_with_two_usb_disks();
    let data_root = m.path().join("data");
    let before = std::fs::read(m.roots.dev.join("sda1")).unwrap();
    let d = discovery::find(&m.roots, "sda").unwrap().unwrap();

    let err = adopt(&m.roots, &data_root, "sda", None).expect_err("needs confirmation");
    match &err {
        AdoptError::ConfirmationRequired {
            model, size_bytes, ..
        } => {
            assert_eq!(model, "Ultra Fit");
            assert_eq!(*size_bytes, d.size_bytes);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("\"Ultra Fit\""), "{err}");
    assert!(err.to_string().contains("64.0 GB"), "{err}");

    let wrong = [
        Confirmation {
            model: "Ultra".into(),
            size_bytes: d.size_bytes,
        },
        Confirmation {
            model: "Ultra Fit".into(),
            size_bytes: d.size_bytes - 512,
        },
        Confirmation {
            model: "Portable SSD T7".into(),
            size_bytes: 1_953_525_168 * 512,
        },
    ];
    for c in &wrong {
        let err = adopt(&m.roots, &data_root, "sda", Some(c)).expect_err("mismatch");
        match &err {
            AdoptError::ConfirmationMismatch {
                expected_model,
                expected_size,
                got_model,
                got_size,
                ..
            } => {
                assert_eq!(expected_model, "Ultra Fit");
                assert_eq!(*expected_size, d.size_bytes);
                assert_eq!(got_model, &c.model);
                assert_eq!(*got_size, c.size_bytes);
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "expected model \"Ultra Fit\" and size {} bytes",
                d.size_bytes
            )),
            "{text}"
        );
    }
    assert_eq!(
        std::fs::read(m.roots.dev.join("sda1")).unwrap(),
        before,
        "disk untouched"
    );
    assert!(!data_root.join("disks").exists());

    let err = adopt(&m.roots, &data_root, "sdz", None).expect_err("no such disk");
    assert!(matches!(err, AdoptError::NoSuchDevice { .. }), "{err:?}");
}

#[test]
fn a_bunker_disk_is_adopted_without_formatting_and_without_caps_asks_for_the_helper() {
    let m = pi_with_two_usb_disks();
    let data_root = m.path().join("data");
    let before = std::fs::read(m.roots.dev.join("sdb")).unwrap();
    // The fake /proc has no CapEff: this process counts as unprivileged, as
    // bunkerd under its hardened unit is.
    let err = adopt(&m.roots, &data_root, "sdb", None).expect_err("no caps");
    let uuid = "5b5b5b5b-5b5b-5b5b-5b5b-5b5b5b5b5b5b";
    match &err {
        AdoptError::Mount(MountError::NeedsMountHelper {
            uuid: u,
            mount_path,
        }) => {
            assert_eq!(u, uuid);
            assert_eq!(mount_path, &data_root.join("disks").join(uuid));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("bunker-mount"), "{err}");
    assert!(
        data_root.join("disks").join(uuid).is_dir(),
        "mount point marks the disk adopted"
    );
    assert_eq!(
        std::fs::read(m.roots.dev.join("sdb")).unwrap(),
        before,
        "not formatted"
    );

    // A confirmation, if given, must still be the right one.
    let bad = Confirmation {
        model: "x".into(),
        size_bytes: 1,
    };
    assert!(matches!(
        adopt(&m.roots, &data_root, "sdb", Some(&bad)),
        Err(AdoptError::ConfirmationMismatch { .. })
    ));
}

#[test]
fn superblock_reading_agrees_with_blkid_on_a_real_ext4() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let ok = Command::new("mkfs.ext4")
        .args(["-F", "-q", "-L", BUNKER_LABEL])
        .arg(&img)
        .status()
        .expect("mkfs.ext4 (e2fsprogs) is installed")
        .success();
    assert!(ok);
    let fs = read_ext(&img).unwrap().expect("ext4");
    let blkid = |tag: &str| {
        let o = Command::new("blkid")
            .args(["-o", "value", "-s", tag])
            .arg(&img)
            .output()
            .expect("blkid");
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    assert_eq!(fs.uuid, blkid("UUID"));
    assert_eq!(fs.label, blkid("LABEL"));
    assert_eq!(fs.kind, blkid("TYPE"));
    assert!(fs.is_bunker());
}

#[test]
fn an_unreadable_disk_is_recognised_from_udevs_record() {
    // Without read access to the raw device (here: its node cannot be
    // opened), udev's database still tells the file system.
    let m = FakeMachine::new();
    m.add_disk(&usb_disk("sdc", 32, "Elements", 1_000_000));
    let node = m.roots.dev.join("sdc");
    std::fs::remove_file(&node).unwrap();
    std::os::unix::fs::symlink("/nonexistent/sdc", &node).unwrap();
    m.write(
        "run/udev/data/b8:32",
        "S:disk/by-uuid/0d0e0a0d-0000-4000-8000-00000000beef\nE:ID_BUS=usb\nE:ID_FS_TYPE=ext4\nE:ID_FS_UUID=0d0e0a0d-0000-4000-8000-00000000beef\nE:ID_FS_LABEL=bunker-data\nG:systemd\n",
    );
    let d = discovery::find(&m.roots, "sdc").unwrap().unwrap();
    let (_, _, fs) = d
        .bunker_filesystem()
        .expect("bunker disk from udev's record");
    assert_eq!(fs.uuid, "0d0e0a0d-0000-4000-8000-00000000beef");

    // Readable and not ext (wiped): the superblock wins over a stale record.
    std::fs::remove_file(&node).unwrap();
    std::fs::write(&node, [0u8; 4096]).unwrap();
    let d = discovery::find(&m.roots, "sdc").unwrap().unwrap();
    assert!(d.bunker_filesystem().is_none());
    assert_eq!(
        d.filesystem.as_ref().map(|f| f.kind.as_str()),
        Some("other")
    );
}
