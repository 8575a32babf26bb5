//! One read of the plaintext, many sealed replicas: the plaintext is cut in
//! chunks that fan out to one [`Sealer`] per replica, each on its own thread
//! and under its own key, writing into the object store's staging area. The
//! plaintext blake3 is computed in the same pass. A file is read once
//! whatever its number of copies, and memory stays a few chunks per replica.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use bunker_core::{FileId, Hash, Keys, Layout, ObjectId, SealError, Sealer};

use crate::objects::{Area, ObjectError, ObjectStore};
use crate::owner::bridge::CHUNK;

/// Chunks queued per sealer: a slow replica holds the reader back instead
/// of growing memory.
const DEPTH: usize = 4;

/// A sealed replica waiting in staging to be uploaded (or moved to the
/// local area for the keep-local copy).
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    /// Replica index it was sealed under.
    pub(crate) index: u32,
    /// Its name in the staging area.
    pub(crate) name: String,
    /// Merkle root over its sealed segments.
    pub(crate) root: Hash,
    /// Sealed length.
    pub(crate) sealed_len: u64,
}

/// Why sealing did not finish. Nothing stays in staging after it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealFailure {
    /// The plaintext was not the announced size.
    #[error("expected {expected} bytes, got {got}")]
    Size {
        /// Announced.
        expected: u64,
        /// Read (when too long: as far as it was read).
        got: u64,
    },
    /// Reading the plaintext failed (the uploader went away, a source replica broke).
    #[error("reading the plaintext: {0}")]
    Source(String),
    /// No data disk had room for a replica, or its disk filled up while it
    /// was written.
    #[error("sealing replica {index}: no room: {reason}")]
    NoRoom {
        /// Replica index.
        index: u32,
        /// What the store said.
        reason: String,
    },
    /// The data disk failed while the replica was written to it (I/O
    /// error, read-only remount): the disk is marked and takes no new data.
    #[error("sealing replica {index}: data disk {disk} failed: {reason}")]
    DiskFailed {
        /// Replica index.
        index: u32,
        /// The disk, as the admin page names it.
        disk: String,
        /// What it answered.
        reason: String,
    },
    /// Sealing or writing a replica failed.
    #[error("sealing replica {index}: {reason}")]
    Seal {
        /// Replica index.
        index: u32,
        /// What failed.
        reason: String,
    },
}

/// The staging name of replica `index` of `file_id`.
pub(crate) fn staging_name(file_id: &FileId, index: u32) -> String {
    format!("{file_id}-{index}")
}

/// The writing end the plaintext source feeds: hashes, counts, and hands
/// each chunk to every sealer.
pub(crate) struct FanOut {
    senders: Vec<SyncSender<Arc<Vec<u8>>>>,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
    written: u64,
    expected: u64,
}

impl FanOut {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Arc::new(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        for tx in &self.senders {
            tx.send(Arc::clone(&chunk))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "a sealer stopped"))?;
        }
        Ok(())
    }
}

impl Write for FanOut {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.written += data.len() as u64;
        if self.written > self.expected {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TooLong(self.written)));
        }
        self.hasher.update(data);
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Marker inside an io::Error: the source went past the announced size.
#[derive(Debug)]
struct TooLong(u64);

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than announced ({} bytes read)", self.0)
    }
}

impl std::error::Error for TooLong {}

/// The reading end one sealer pulls its plaintext from.
struct FanReader {
    rx: Receiver<Arc<Vec<u8>>>,
    current: Arc<Vec<u8>>,
    pos: usize,
}

impl Read for FanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Seals the plaintext `feed` writes, once per index in `indices`, into
/// staging. Blocking: run it on the blocking pool. Returns the staged
/// replicas (in `indices` order) and the plaintext blake3. On any failure
/// nothing stays in staging.
pub(crate) fn seal_fanout<F>(
    objects: &ObjectStore,
    keys: &Keys,
    file_id: FileId,
    layout: Layout,
    indices: &[u32],
    feed: F,
) -> Result<(Vec<Staged>, Hash), SealFailure>
where
    F: FnOnce(&mut FanOut) -> io::Result<()>,
{
    let mut senders = Vec::with_capacity(indices.len());
    let mut readers = Vec::with_capacity(indices.len());
    for _ in indices {
        let (tx, rx) = sync_channel(DEPTH);
        senders.push(tx);
        readers.push(FanReader { rx, current: Arc::new(Vec::new()), pos: 0 });
    }
    let mut fan = FanOut {
        senders,
        buf: Vec::with_capacity(CHUNK),
        hasher: blake3::Hasher::new(),
        written: 0,
        expected: layout.size(),
    };
    let (fed, results) = std::thread::scope(|scope| {
        let handles: Vec<_> = indices
            .iter()
            .zip(readers)
            .map(|(&index, reader)| {
                let key = keys.replica_key(&file_id, index);
                scope.spawn(move || seal_one(objects, &key, file_id, index, layout, reader))
            })
            .collect();
        let fed = feed(&mut fan).and_then(|()| fan.send_buf());
        // Closing the channels tells each sealer the plaintext ended.
        fan.senders.clear();
        let results: Vec<_> = handles
            .into_iter()
            .zip(indices)
            .map(|(h, &index)| {
                h.join().unwrap_or_else(|_| {
                    Err(SealFailure::Seal { index, reason: "the sealing thread panicked".into() })
                })
            })
            .collect();
        (fed, results)
    });
    let staged: Vec<Staged> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let cleanup = |staged: &[Staged]| {
        for s in staged {
            let _ = objects.remove(Area::Staging, &s.name);
        }
    };
    if let Err(e) = fed {
        cleanup(&staged);
        if let Some(too_long) = e.get_ref().and_then(|inner| inner.downcast_ref::<TooLong>()) {
            return Err(SealFailure::Size { expected: layout.size(), got: too_long.0 });
        }
        // A sealer that stopped explains itself better than the broken pipe.
        if let Some(failure) = first_cause(results) {
            return Err(failure);
        }
        return Err(SealFailure::Source(e.to_string()));
    }
    if fan.written != layout.size() {
        cleanup(&staged);
        return Err(SealFailure::Size { expected: layout.size(), got: fan.written });
    }
    if results.iter().any(|r| r.is_err()) {
        cleanup(&staged);
        return Err(first_cause(results).unwrap_or(SealFailure::Source("sealing failed".into())));
    }
    Ok((staged, *fan.hasher.finalize().as_bytes()))
}

/// The failure that stopped the sealing: a full disk first (the other
/// sealers then only saw their input cut short), else the first one.
fn first_cause(results: Vec<Result<Staged, SealFailure>>) -> Option<SealFailure> {
    let mut failures: Vec<SealFailure> = results.into_iter().filter_map(|r| r.err()).collect();
    let pick = failures
        .iter()
        .position(|f| matches!(f, SealFailure::DiskFailed { .. }))
        .or_else(|| failures.iter().position(|f| matches!(f, SealFailure::NoRoom { .. })))
        .unwrap_or(0);
    (!failures.is_empty()).then(|| failures.swap_remove(pick))
}

/// Whether an I/O error means the disk is full (`ENOSPC`, `EDQUOT`).
fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28) | Some(122))
}

fn seal_one(
    objects: &ObjectStore,
    key: &bunker_core::ReplicaKey,
    file_id: FileId,
    index: u32,
    layout: Layout,
    reader: FanReader,
) -> Result<Staged, SealFailure> {
    let fail = |reason: String| SealFailure::Seal { index, reason };
    let stored = |e: ObjectError| {
        if e.is_no_room() {
            SealFailure::NoRoom { index, reason: e.to_string() }
        } else {
            fail(e.to_string())
        }
    };
    let name = staging_name(&file_id, index);
    // A leftover from an interrupted attempt with this id cannot be ours to keep.
    if objects.exists(Area::Staging, &name) {
        let _ = objects.remove(Area::Staging, &name);
    }
    let mut writer = objects.create_sealed(Area::Staging, &name, layout).map_err(stored)?;
    let sealer = Sealer::new(key, ObjectId { file_id, replica_index: index }, layout.size(), layout.segment_size())
        .map_err(|e| fail(e.to_string()))?;
    // A disk that fails while the copy is written is marked by the writer;
    // the put says which disk it was (its bytes cannot be read again to
    // move on: the plaintext streamed past).
    let disk_root = writer.disk_root();
    let disk_failed = |other: SealFailure| match objects.fault_at(&disk_root) {
        Some((disk, fault)) => SealFailure::DiskFailed { index, disk, reason: fault.reason },
        None => other,
    };
    let (body, leaves) = writer.sealer_parts().ok_or_else(|| fail("staging writer does not take leaves".into()))?;
    let descriptor = sealer
        .seal(reader, body, leaves)
        .map_err(|e| match &e {
            SealError::Write { source, .. } | SealError::Leaf { source, .. } if is_full(source) => {
                SealFailure::NoRoom { index, reason: e.to_string() }
            }
            _ => fail(e.to_string()),
        })
        .map_err(disk_failed)?;
    let root = writer.finish_expect(&descriptor.root).map_err(stored).map_err(disk_failed)?;
    Ok(Staged { index, name, root, sealed_len: layout.sealed_size() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_disks::{DiskHealth, DiskStatus};
    use bunker_core::Seed;

    fn layout(size: u64) -> Layout {
        Layout::new(size, 4096).unwrap()
    }

    fn plain(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_disk_failing_under_a_seal_is_named_marked_and_skipped_by_the_next_one() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(a.path()).unwrap();
        // a has the most room (b keeps all but 64 MiB in reserve): new objects go to a.
        let mut sb = DiskStatus::directory(b.path());
        sb.label = "disk-b".into();
        sb.reserved_bytes = store.free_bytes().unwrap().saturating_sub(64 << 20);
        store.set_disks(&[sb]);
        let keys = Keys::from_seed(&Seed::generate());
        let data = plain(300_000);
        // The disk dies (EIO) 100 kB into the write of the copy.
        let disk_a = store.disks().into_iter().find(|d| d.status().root == a.path()).unwrap();
        disk_a.objects().unwrap().fail_writes_after(100_000, 5);
        let file_id = FileId::random();
        let failed = seal_fanout(&store, &keys, file_id, layout(300_000), &[0, 1], |fan| fan.write_all(&data));
        match failed {
            Err(SealFailure::DiskFailed { disk, reason, .. }) => {
                assert_eq!(disk, a.path().display().to_string());
                assert!(reason.contains("Input/output error"), "{reason}");
            }
            other => panic!("expected DiskFailed, got {other:?}"),
        }
        // Marked failing (what the panel and page are told), nothing staged or half-written.
        assert_eq!(disk_a.status().health, DiskHealth::Failing);
        assert_eq!(store.faults().borrow().len(), 1);
        assert!(store.list(Area::Staging).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(a.path().join("tmp")).unwrap().count(), 0);
        // The next seal goes to the other disk, and reads back whole.
        let (staged, _) = seal_fanout(&store, &keys, FileId::random(), layout(300_000), &[0], |fan| fan.write_all(&data)).unwrap();
        let held = store.disk_of(Area::Staging, &staged[0].name).unwrap();
        assert_eq!(held.status().root, b.path());
        assert_eq!(store.open(Area::Staging, &staged[0].name).unwrap().len(), layout(300_000).sealed_size());
    }
}
