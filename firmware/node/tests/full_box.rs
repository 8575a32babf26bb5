//! A box whose data disks are full: a put is refused with
//! `PutError::NoRoom` (not a stringified I/O error), and nothing of it stays
//! behind — no file row, nothing in staging or tmp, no contract on a host —
//! while what was stored before reads back whole.
//!
//! Real engines on loopback swarms. The owner's store is a small tmpfs
//! mounted for the test (the tests run as root, as the other disk tests
//! do), so "full" is a real `ENOSPC` from the kernel, not a simulation.

mod owner_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bunker_core::Layout;
use bunker_manifest::{ContractDirection, ContractState};
use bunker_node::{DiskStatus, Policy, PutError};
use owner_common::*;

const SEGMENT: u32 = 4096;

/// A tmpfs of `mib` MiB mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "bunker-full-box"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "these tests mount a small tmpfs and need root: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        SmallDisk { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: an engine task may still hold a file open for a moment.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Free bytes on the file system at `p`, as `statvfs` tells an unprivileged writer.
fn free_bytes(p: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(p).unwrap();
    st.blocks_available() as u64 * st.fragment_size() as u64
}

fn entries(dir: PathBuf) -> Vec<String> {
    std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Nothing of a refused put is left: no file row, no staged or half-written
/// object, no contract on our side or a host's.
async fn assert_nothing_left(owner: &Box_, store: &Path, hosts: &[Box_], path: &str, kept_files: usize) {
    assert!(owner.node.file(path).await.is_err(), "{path} must not be in the manifest");
    assert_eq!(owner.node.list("/").await.unwrap().files.len(), 1 + kept_files, "only /MANIFEST.db and the files kept");
    assert_eq!(entries(store.join("staging")), Vec::<String>::new(), "staging emptied");
    assert_eq!(entries(store.join("tmp")), Vec::<String>::new(), "no half-written object in tmp");
    assert_eq!(entries(store.join("local")).len(), kept_files, "local copies: only the files kept");
    let m = owner.manifest();
    let active = m.contracts(ContractDirection::OursOnPeer, ContractState::Active).unwrap();
    assert_eq!(active.len(), kept_files, "one open contract per kept file, none for the refused one");
    let hosted: usize = hosts.iter().map(|h| h.hosted().len()).sum();
    assert_eq!(hosted, kept_files, "hosts hold only the kept files' replicas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_put_larger_than_the_room_beyond_the_reserve_is_no_room_before_a_byte_is_read() {
    let disk = SmallDisk::mount(32);
    let store = disk.root();
    let (owner, hosts) = swarm(2, |c| c.store_root = store.clone()).await;
    let kept = content(100_000, 1);
    put(&owner, "/kept", &kept, Policy { copies: 1, keep_local: true }).await.unwrap();

    // The watcher keeps all but 1 MiB of the disk in reserve.
    let mut status = DiskStatus::directory(&store);
    status.reserved_bytes = free_bytes(&store).saturating_sub(1 << 20);
    owner.node.set_disks(vec![status]).await.unwrap();

    // Two sealed copies of 700 kB need 1.4 MB: more than the 1 MiB beyond the reserve.
    let size = 700_000u64;
    let (body, mut unread) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        // Never read: the refusal comes before the body is.
        let _ = unread.write_all(&content(size as usize, 2)).await;
    });
    let err = owner.node.put("/big", size, Policy { copies: 1, keep_local: true }, body).await.unwrap_err();
    writer.abort();
    match &err {
        PutError::NoRoom { path, copies, needed, free, disks } => {
            let sealed = Layout::new(size, SEGMENT).unwrap().sealed_size();
            assert_eq!((path.as_str(), *copies, *needed), ("/big", 2, 2 * sealed));
            assert!(*free <= 1 << 20, "free beyond the reserve: {free}");
            assert!(disks.contains("active"), "{disks}");
        }
        other => panic!("expected NoRoom, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("no room for /big") && text.contains("add a data disk"), "{text}");
    assert_nothing_left(&owner, &store, &hosts, "/big", 1).await;

    // A file that fits is still taken, and the first one is whole.
    let small = content(200_000, 3);
    put(&owner, "/small", &small, Policy { copies: 1, keep_local: true }).await.unwrap();
    assert_eq!(get(&owner, "/kept").await.unwrap(), kept);
    assert_eq!(get(&owner, "/small").await.unwrap(), small);
    owner.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disk_that_fills_up_while_sealing_is_no_room_and_keeps_nothing_of_the_put() {
    let disk = SmallDisk::mount(8);
    let store = disk.root();
    let (owner, hosts) = swarm(2, |c| c.store_root = store.clone()).await;
    let kept = content(300_000, 4);
    put(&owner, "/kept", &kept, Policy { copies: 1, keep_local: true }).await.unwrap();

    // Two sealed copies that just fit the free space by their sealed bytes,
    // so the check before sealing lets them in, but not with their proof
    // sidecars and layout files: the kernel says ENOSPC half-way.
    let free = free_bytes(&store);
    let mut size = free / 2;
    while Layout::new(size, SEGMENT).unwrap().sealed_size() * 2 > free.saturating_sub(8192) {
        size -= 4096;
    }
    let data = content(size as usize, 5);
    let err = put(&owner, "/fills", &data, Policy { copies: 1, keep_local: true }).await.unwrap_err();
    match &err {
        PutError::NoRoom { path, copies: 2, needed, .. } => {
            assert_eq!(path, "/fills");
            assert_eq!(*needed, 2 * Layout::new(size, SEGMENT).unwrap().sealed_size());
        }
        other => panic!("expected NoRoom from the full disk, got {other:?}"),
    }
    assert_nothing_left(&owner, &store, &hosts, "/fills", 1).await;
    // The space of the refused put is free again.
    assert!(free_bytes(&store) + 16384 >= free, "{} of {free} bytes free again", free_bytes(&store));
    assert_eq!(get(&owner, "/kept").await.unwrap(), kept);

    // The same file with one copy on a peer and none kept here fits.
    let stored = put(&owner, "/fills", &data[..(size as usize) / 2], Policy { copies: 2, keep_local: false }).await;
    assert!(stored.is_ok(), "{stored:?}");
    owner.node.shutdown().await;
}
