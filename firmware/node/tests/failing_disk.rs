//! A data disk that fails a write while an object is stored on it: the
//! engine marks it (the state the panel and the admin page show, through
//! `Node::disks` and `Node::disk_faults`), the put moves on to another disk
//! with room, or fails with a sentence naming the disks when none is left;
//! what was stored before stays readable.
//!
//! Real engine, real file systems: two tmpfs data disks mounted for the
//! test, one remounted read-only under the engine (the kernel's EROFS, as
//! ext4 does after errors). The tests run as root, as the other disk tests do.

mod owner_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bunker_node::{DiskHealth, DiskStatus, Policy, PutError};
use owner_common::*;

/// A tmpfs mounted for one test, unmounted when dropped.
struct TmpDisk {
    dir: tempfile::TempDir,
}

impl TmpDisk {
    fn mount(mib: u64) -> TmpDisk {
        let dir = tempfile::tempdir().unwrap();
        mount(&["-t", "tmpfs", "-o", &format!("size={mib}m"), "bunker-failing-disk"], dir.path());
        TmpDisk { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn remount_read_only(&self) {
        mount(&["-o", "remount,ro"], self.root());
    }

    fn status(&self, label: &str) -> DiskStatus {
        DiskStatus { label: label.into(), ..DiskStatus::directory(self.root()) }
    }
}

impl Drop for TmpDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn mount(args: &[&str], at: &Path) {
    let out = Command::new("mount").args(args).arg(at).output().expect("running mount");
    assert!(out.status.success(), "these tests mount tmpfs disks and need root: {}", String::from_utf8_lossy(&out.stderr).trim());
}

/// The disk (of `disks`) whose `local/` holds a copy.
fn holder<'a>(disks: &'a [&TmpDisk], before: &[usize]) -> (usize, &'a TmpDisk) {
    let counts: Vec<usize> = disks.iter().map(|d| entries(d.root().join("local"))).collect();
    let i = counts.iter().zip(before).position(|(now, was)| now > was).expect("a new local copy on some disk");
    (i, disks[i])
}

fn entries(dir: PathBuf) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disk_that_turns_read_only_under_a_put_is_marked_and_the_put_moves_to_another_disk() {
    let owner = start_box(|c| c.audit_interval = Duration::from_secs(3600)).await;
    // "big" has the most room, so new objects go there first.
    let big = TmpDisk::mount(256);
    let small = TmpDisk::mount(32);
    let mut sd = DiskStatus::directory(owner.store());
    sd.on_system_device = true; // the SD card takes nothing once there are data disks
    owner.node.set_disks(vec![sd, big.status("big"), small.status("small")]).await.unwrap();
    let mut faults = owner.node.disk_faults();

    let first = content(300_000, 1);
    put(&owner, "/first.bin", &first, Policy { copies: 0, keep_local: true }).await.unwrap();
    assert_eq!(entries(big.root().join("local")), 1, "the roomiest disk took it");

    // The kernel remounts "big" read-only (as ext4 does after errors); the
    // disk watcher has not probed it yet, so the engine still thinks it active.
    big.remount_read_only();
    let second = content(400_000, 2);
    let view = put(&owner, "/second.bin", &second, Policy { copies: 0, keep_local: true }).await.unwrap();
    assert!(view.has_local);
    let (on, _) = holder(&[&big, &small], &[1, 0]);
    assert_eq!(on, 1, "the put moved on to the disk that can be written");

    // Marked: the engine's view (what /api/node and the panel are told) and
    // the fault channel the daemon's watcher follows.
    let state = |name: &str| owner.node.disks().into_iter().find(|d| d.label == name).unwrap().health;
    assert_eq!(state("big"), DiskHealth::ReadOnly);
    assert_eq!(state("small"), DiskHealth::Active);
    tokio::time::timeout(Duration::from_secs(5), faults.wait_for(|v| v.iter().any(|d| d.label == "big")))
        .await
        .expect("the fault reaches the watcher's channel")
        .unwrap();
    let reported = faults.borrow().clone();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!((reported[0].root.as_path(), reported[0].health), (big.root(), DiskHealth::ReadOnly));

    // Nothing stored is lost: the read-only disk is still read.
    assert_eq!(get(&owner, "/first.bin").await.unwrap(), first);
    assert_eq!(get(&owner, "/second.bin").await.unwrap(), second);
    // New data keeps going to the healthy disk.
    put(&owner, "/third.bin", &content(100_000, 3), Policy { copies: 0, keep_local: true }).await.unwrap();
    assert_eq!(entries(small.root().join("local")), 2);

    // The last writable disk fails too: a clear refusal naming the disks,
    // and nothing half-stored.
    small.remount_read_only();
    let err = put(&owner, "/fourth.bin", &content(100_000, 4), Policy { copies: 0, keep_local: true }).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PutError::NoRoom { .. }), "{err:?}");
    assert!(text.contains("big read-only") && text.contains("small read-only"), "{text}");
    assert!(owner.node.file("/fourth.bin").await.is_err());
    for f in ["/first.bin", "/second.bin"] {
        assert!(get(&owner, f).await.is_ok(), "{f} still reads");
    }

    // The watcher sees the disks writable again: they are opened anew and
    // take data again.
    mount(&["-o", "remount,rw"], big.root());
    mount(&["-o", "remount,rw"], small.root());
    let mut ro = big.status("big");
    ro.health = DiskHealth::ReadOnly;
    let mut ro_small = small.status("small");
    ro_small.health = DiskHealth::ReadOnly;
    owner.node.set_disks(vec![ro, ro_small]).await.unwrap();
    owner.node.set_disks(vec![big.status("big"), small.status("small")]).await.unwrap();
    assert_eq!((state("big"), state("small")), (DiskHealth::Active, DiskHealth::Active));
    assert!(faults.borrow().is_empty(), "{:?}", faults.borrow());
    put(&owner, "/fourth.bin", &content(100_000, 4), Policy { copies: 0, keep_local: true }).await.unwrap();
    owner.node.shutdown().await;
}
