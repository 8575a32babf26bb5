//! Sealed objects spread over the box's data disks (DESIGN §6).
//!
//! Each data disk holds its own [`DiskObjects`] store at its root
//! (`hosted/`, `local/`, `staging/`, `tmp/`, the layout `objects.rs`
//! describes). [`ObjectStore`] is the one the engine talks to:
//!
//! - a new object goes to the active disk with the most room beyond its
//!   reserve that holds it (the rule bunker-disks' `choose_for` states), and
//!   never to the SD card once the box has a data disk;
//! - an object is read from the disk that holds it; a move (staging → local)
//!   stays on its disk, so a local copy is where it was sealed;
//! - an object on a disk that is missing or failing is *unavailable*: the
//!   store knows it is there (the disk's names are kept while it is away)
//!   and says so, instead of "not found" or an accidental I/O error;
//! - the space offered to peers is the room beyond the reserves of the
//!   active disks, each file system counted once.
//!
//! The store root given at start (`NodeConfig::store_root`) is the first
//! disk; it also holds the manifest snapshots kept for peers (small). The
//! daemon's disk watcher adds the adopted USB disks with
//! [`crate::Node::set_disks`].
//!
//! Everything here is blocking file I/O: call it from `spawn_blocking`.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use bunker_core::Layout;
use bunker_manifest::DiskId;

use crate::data_disks::{DiskHealth, DiskStatus};
use crate::objects::{Area, DiskObjects, ObjectError, ObjectWriter, StoredObject};

/// Rooms closer than this are equal when choosing a disk.
const ROOM_GRAIN: u64 = 64 << 20;

/// One data disk as the store keeps it.
pub(crate) struct Disk {
    id: String,
    root: PathBuf,
    now: Mutex<DiskNow>,
}

struct DiskNow {
    status: DiskStatus,
    /// Its objects: opened when the disk was last seen readable, kept (with
    /// their names) while it is away.
    objects: Option<Arc<DiskObjects>>,
    /// Its row in MANIFEST.db, once recorded.
    row: Option<DiskId>,
    /// Objects released while the disk could not be written: deleted when
    /// it can be again.
    doomed: Vec<(Area, String)>,
}

impl Disk {
    fn now(&self) -> std::sync::MutexGuard<'_, DiskNow> {
        self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its last known status: the watcher's, made worse by what a write
    /// found since the disk was opened (an I/O error, a read-only remount).
    pub(crate) fn status(&self) -> DiskStatus {
        let n = self.now();
        let mut status = n.status.clone();
        if let Some(fault) = n.objects.as_ref().and_then(|o| o.fault()) {
            if severity(fault.health) > severity(status.health) {
                status.health = fault.health;
            }
        }
        status
    }

    pub(crate) fn health(&self) -> DiskHealth {
        self.status().health
    }

    pub(crate) fn row(&self) -> Option<DiskId> {
        self.now().row
    }

    pub(crate) fn set_row(&self, id: DiskId) {
        self.now().row = Some(id);
    }

    pub(crate) fn objects(&self) -> Option<Arc<DiskObjects>> {
        self.now().objects.clone()
    }

    /// Room for new data now: free space (statvfs, fresh) beyond the reserve,
    /// or `None` when the disk takes no new data.
    fn room(&self) -> Option<(u64, u64)> {
        let health = self.health();
        let (reserved, objects) = {
            let n = self.now();
            (n.status.reserved_bytes, n.objects.clone())
        };
        if !health.takes_new_data() {
            return None;
        }
        let objects = objects?;
        let (_, free) = objects.fs_bytes().ok()?;
        Some((free.saturating_sub(reserved), device_of(&self.root)))
    }

    fn describe(&self) -> String {
        let s = self.status();
        format!("{} {}", s.label, s.health)
    }

    /// Opens (again) the disk's objects after it was away, then deletes
    /// what was released meanwhile. A fault a write found before is
    /// forgotten: the disk came back (or was replaced) and is judged anew.
    fn reopen(&self, faults: &Faults) {
        let (health, doomed, status) = {
            let mut n = self.now();
            (n.status.health, std::mem::take(&mut n.doomed), n.status.clone())
        };
        match DiskObjects::open_at(&self.root, health != DiskHealth::ReadOnly) {
            Ok(objects) => {
                objects.report_faults((status, Arc::clone(faults)));
                faults.send_if_modified(|v| {
                    let before = v.len();
                    v.retain(|d| d.id != self.id);
                    v.len() != before
                });
                let objects = Arc::new(objects);
                let mut kept = Vec::new();
                for (area, name) in doomed {
                    match objects.remove(area, &name) {
                        Ok(()) => tracing::info!(disk = %self.id, object = %name, "released object deleted now that its disk is back"),
                        Err(e) if e.is_missing() => {}
                        Err(e) => {
                            tracing::warn!(disk = %self.id, error = %e, "released object still cannot be deleted");
                            kept.push((area, name));
                        }
                    }
                }
                let mut n = self.now();
                n.objects = Some(objects);
                n.doomed.extend(kept);
            }
            Err(e) => {
                tracing::warn!(disk = %self.id, root = %self.root.display(), error = %e, "data disk cannot be opened; treated as failing");
                let mut n = self.now();
                n.status.health = DiskHealth::Failing;
                n.doomed.extend(doomed);
            }
        }
    }
}

/// How bad a state is, for "a write found it worse than the watcher said".
fn severity(h: DiskHealth) -> u8 {
    match h {
        DiskHealth::Active => 0,
        DiskHealth::Full => 1,
        DiskHealth::ReadOnly => 2,
        DiskHealth::Failing => 3,
        DiskHealth::Missing => 4,
    }
}

/// The disks a write found failing, read-only or gone since they were
/// opened (see [`crate::Node::disk_faults`]).
type Faults = Arc<tokio::sync::watch::Sender<Vec<DiskStatus>>>;

/// The device a path is on, so two directories on one file system are
/// counted once.
// `dev_t` is u64 on the targets built today; the cast keeps 32-bit ones building.
#[allow(clippy::unnecessary_cast)]
fn device_of(path: &Path) -> u64 {
    nix::sys::stat::stat(path).map(|st| st.st_dev as u64).unwrap_or(0)
}

/// The sealed objects of the box, over all its data disks.
pub(crate) struct ObjectStore {
    primary: PathBuf,
    disks: RwLock<Vec<Arc<Disk>>>,
    faults: Faults,
}

impl ObjectStore {
    /// Opens the store with its first disk at `root` (created if needed).
    pub(crate) fn new(root: &Path) -> io::Result<ObjectStore> {
        let objects = DiskObjects::new(root)?;
        let (total, free) = objects.fs_bytes().unwrap_or((0, 0));
        let status = DiskStatus { total_bytes: total, free_bytes: free, ..DiskStatus::directory(root) };
        let faults: Faults = Arc::new(tokio::sync::watch::channel(Vec::new()).0);
        objects.report_faults((status.clone(), Arc::clone(&faults)));
        let disk = Disk {
            id: status.id.clone(),
            root: root.to_path_buf(),
            now: Mutex::new(DiskNow { status, objects: Some(Arc::new(objects)), row: None, doomed: Vec::new() }),
        };
        Ok(ObjectStore { primary: root.to_path_buf(), disks: RwLock::new(vec![Arc::new(disk)]), faults })
    }

    /// The first disk's root: where manifest snapshots kept for peers live.
    pub(crate) fn root(&self) -> &Path {
        &self.primary
    }

    /// Every disk.
    pub(crate) fn disks(&self) -> Vec<Arc<Disk>> {
        self.disks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every disk's status.
    pub(crate) fn statuses(&self) -> Vec<DiskStatus> {
        self.disks().iter().map(|d| d.status()).collect()
    }

    /// Takes in the watcher's view of the disks (see [`crate::Node::set_disks`]).
    pub(crate) fn set_disks(&self, list: &[DiskStatus]) {
        for s in list {
            let known = self.disks().into_iter().find(|d| d.id == s.id);
            let disk = match known {
                Some(d) => d,
                None => {
                    let d = Arc::new(Disk {
                        id: s.id.clone(),
                        root: s.root.clone(),
                        now: Mutex::new(DiskNow {
                            status: DiskStatus { health: DiskHealth::Missing, ..s.clone() },
                            objects: None,
                            row: None,
                            doomed: Vec::new(),
                        }),
                    });
                    tracing::info!(disk = %s.id, root = %s.root.display(), "data disk taken in");
                    self.disks.write().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&d));
                    d
                }
            };
            let (was, had_objects) = {
                let mut n = disk.now();
                let was = n.status.health;
                // The root never changes under an id: objects are where they were.
                n.status = DiskStatus { root: disk.root.clone(), ..s.clone() };
                (was, n.objects.is_some())
            };
            if was != s.health {
                tracing::info!(disk = %s.id, from = %was, to = %s.health, "data disk state");
            }
            let back = !was.readable() || !had_objects || (was == DiskHealth::ReadOnly && s.health.writable());
            if s.health.readable() && back {
                disk.reopen(&self.faults);
            }
        }
    }

    /// The disk holding `area/name`, readable ones first (a stale copy on a
    /// disk that is away never hides the one that can be read).
    fn holder(&self, area: Area, name: &str) -> Option<Arc<Disk>> {
        let mut away = None;
        for d in self.disks() {
            let Some(objects) = d.objects() else { continue };
            if objects.knows(area, name) {
                if d.health().readable() {
                    return Some(d);
                }
                away.get_or_insert(d);
            }
        }
        away
    }

    fn unavailable(area: Area, name: &str, d: &Disk) -> ObjectError {
        let s = d.status();
        ObjectError::Unavailable { area, name: name.to_string(), disk: s.label, state: s.health }
    }

    /// The disk a new object of `bytes` goes to.
    fn choose(&self, area: Area, name: &str, bytes: u64) -> Result<(Arc<Disk>, Arc<DiskObjects>), ObjectError> {
        // The same object again (a retried store): where it already is.
        if let Some(d) = self.holder(area, name) {
            if let (true, Some(objects)) = (d.health().writable(), d.objects()) {
                return Ok((d, objects));
            }
            return Err(Self::unavailable(area, name, &d));
        }
        // Most room first; disks within one grain of each other (or on one
        // file system) count as equal, and the one holding less of ours
        // takes it, so objects spread instead of piling on one disk.
        let used = |d: &Disk| d.objects().map(|o| Area::ALL.iter().map(|a| o.bytes_used(*a)).sum::<u64>()).unwrap_or(0);
        self.candidates()
            .into_iter()
            .filter(|(_, room, _)| *room >= bytes)
            .max_by_key(|(d, room, _)| (*room / ROOM_GRAIN, std::cmp::Reverse(used(d))))
            .and_then(|(d, _, _)| d.objects().map(|o| (d, o)))
            .ok_or_else(|| ObjectError::NoRoom { area, name: name.to_string(), bytes, disks: self.describe() })
    }

    /// Disks that take new data with their room and device. A disk on the
    /// system device (the SD card) takes none once the box has a data disk
    /// of its own, even one that is away or full (DESIGN §6: bulk data never
    /// lives on the SD card); a box with no data disk yet uses it to start.
    fn candidates(&self) -> Vec<(Arc<Disk>, u64, u64)> {
        let all: Vec<_> = self
            .disks()
            .into_iter()
            .filter_map(|d| d.room().map(|(room, dev)| (d, room, dev)))
            .collect();
        let has_data_disk = self.disks().iter().any(|d| !d.status().on_system_device);
        all.into_iter().filter(|(d, _, _)| !has_data_disk || !d.status().on_system_device).collect()
    }

    /// The disks in words, for refusals and logs ("SanDisk active, sdb missing").
    pub(crate) fn describe(&self) -> String {
        let v: Vec<String> = self.disks().iter().map(|d| d.describe()).collect();
        if v.is_empty() {
            "no data disk".into()
        } else {
            format!("data disks: {}", v.join(", "))
        }
    }

    /// Room for new data over all disks that take it, each file system once.
    pub(crate) fn free_bytes(&self) -> io::Result<u64> {
        let mut per_fs: HashMap<u64, u64> = HashMap::new();
        for (_, room, dev) in self.candidates() {
            let e = per_fs.entry(dev).or_insert(room);
            *e = (*e).min(room);
        }
        Ok(per_fs.values().fold(0u64, |a, b| a.saturating_add(*b)))
    }

    /// The most one object can take: the roomiest disk's room.
    pub(crate) fn largest_free(&self) -> u64 {
        self.candidates().into_iter().map(|(_, room, _)| room).max().unwrap_or(0)
    }

    /// Starts writing object `name` in `area` on the disk chosen for it;
    /// the writer hashes the bytes as they arrive (received objects).
    pub(crate) fn create(&self, area: Area, name: &str, layout: Layout) -> Result<ObjectWriter<'_>, ObjectError> {
        self.start(area, name, layout, |o| o.create(area, name, layout))
    }

    /// Like [`ObjectStore::create`], for a sealer that hands over its leaves.
    pub(crate) fn create_sealed(&self, area: Area, name: &str, layout: Layout) -> Result<ObjectWriter<'_>, ObjectError> {
        self.start(area, name, layout, |o| o.create_sealed(area, name, layout))
    }

    /// Starts a writer on the chosen disk; when that disk fails the very
    /// first write (read-only remount, I/O error, gone), it is marked so and
    /// the next disk with room is tried, until none is left (`NoRoom`,
    /// naming every disk's state).
    fn start(
        &self,
        area: Area,
        name: &str,
        layout: Layout,
        open: impl Fn(&Arc<DiskObjects>) -> Result<ObjectWriter<'static>, ObjectError>,
    ) -> Result<ObjectWriter<'_>, ObjectError> {
        for _ in 0..=self.disks().len() {
            let (disk, objects) = self.choose(area, name, layout.sealed_size())?;
            match open(&objects) {
                Ok(w) => return Ok(w),
                Err(e) if objects.fault().is_some() => {
                    tracing::warn!(disk = %disk.id, error = %e, "data disk failed a write; the object goes to another disk");
                }
                Err(e) => return Err(e),
            }
        }
        Err(ObjectError::NoRoom { area, name: name.to_string(), bytes: layout.sealed_size(), disks: self.describe() })
    }

    /// The disks a write found failing, read-only or gone since they were
    /// last opened, each with that state.
    pub(crate) fn faults(&self) -> tokio::sync::watch::Receiver<Vec<DiskStatus>> {
        self.faults.subscribe()
    }

    /// The fault a write found on the disk whose objects live at `root`,
    /// with the disk's name as the admin page shows it.
    pub(crate) fn fault_at(&self, root: &Path) -> Option<(String, crate::objects::DiskFault)> {
        let d = self.disks().into_iter().find(|d| d.root == root)?;
        let fault = d.objects()?.fault()?;
        Some((d.status().label, fault))
    }

    /// Opens a finished object on its disk; `Unavailable` when that disk is away.
    pub(crate) fn open(&self, area: Area, name: &str) -> Result<StoredObject, ObjectError> {
        crate::objects::check_name(name)?;
        match self.holder(area, name) {
            Some(d) => match (d.health().readable(), d.objects()) {
                (true, Some(objects)) => objects.open(area, name),
                _ => Err(Self::unavailable(area, name, &d)),
            },
            None => Err(ObjectError::Missing { area, name: name.to_string() }),
        }
    }

    /// Whether an object of that name is on some disk (also one that is away:
    /// its local copy is not lost, only out of reach).
    pub(crate) fn exists(&self, area: Area, name: &str) -> bool {
        self.holder(area, name).is_some()
    }

    /// The disk holding an object, if any.
    pub(crate) fn disk_of(&self, area: Area, name: &str) -> Option<Arc<Disk>> {
        self.holder(area, name)
    }

    /// Whether some disk cannot be read now (then "not found" may only mean
    /// "not on the disks that are here").
    pub(crate) fn some_disk_away(&self) -> bool {
        self.disks().iter().any(|d| !d.health().readable())
    }

    /// The disk with MANIFEST.db row `row`, if known.
    pub(crate) fn disk_with_row(&self, row: DiskId) -> Option<Arc<Disk>> {
        self.disks().into_iter().find(|d| d.row() == Some(row))
    }

    /// Deletes an object. On a disk that cannot be written now the deletion
    /// waits for the disk (and `Unavailable` says so).
    pub(crate) fn remove(&self, area: Area, name: &str) -> Result<(), ObjectError> {
        crate::objects::check_name(name)?;
        let Some(d) = self.holder(area, name) else {
            return Err(ObjectError::Missing { area, name: name.to_string() });
        };
        match (d.health().writable(), d.objects()) {
            (true, Some(objects)) => objects.remove(area, name),
            _ => {
                d.now().doomed.push((area, name.to_string()));
                Err(Self::unavailable(area, name, &d))
            }
        }
    }

    /// Moves an object to another area or name on its own disk (one rename).
    /// A move into the local area tells `owner::local` which disk the local
    /// copy is on.
    pub(crate) fn rename(&self, area: Area, name: &str, to_area: Area, to_name: &str) -> Result<(), ObjectError> {
        crate::objects::check_name(name)?;
        crate::objects::check_name(to_name)?;
        let Some(d) = self.holder(area, name) else {
            return Err(ObjectError::Missing { area, name: name.to_string() });
        };
        let (true, Some(objects)) = (d.health().writable(), d.objects()) else {
            return Err(Self::unavailable(area, name, &d));
        };
        if let Some(other) = self.holder(to_area, to_name) {
            if !Arc::ptr_eq(&other, &d) {
                return Err(ObjectError::Exists { area: to_area, name: to_name.to_string() });
            }
        }
        objects.rename(area, name, to_area, to_name)?;
        if to_area == Area::Local {
            if let Some(row) = d.row() {
                crate::owner::local::note_local_disk(to_name, row);
            }
        }
        Ok(())
    }

    /// Bytes on disk in an area over all disks.
    pub(crate) fn bytes_used(&self, area: Area) -> u64 {
        self.disks().iter().filter_map(|d| d.objects()).map(|o| o.bytes_used(area)).sum()
    }

    /// Names in an area over all disks.
    #[cfg(test)]
    pub(crate) fn list(&self, area: Area) -> Result<Vec<String>, ObjectError> {
        let mut all = Vec::new();
        for o in self.disks().iter().filter_map(|d| d.objects()) {
            all.extend(o.list(area)?);
        }
        all.sort();
        Ok(all)
    }
}

impl crate::node::Node {
    /// The data disks a write of the engine found failing (I/O error),
    /// read-only or gone since they were last opened, each with that state.
    /// The daemon's disk watcher follows it, so the panel and the admin page
    /// show the disk's state at once instead of at the next probe. A disk
    /// leaves the list when it is opened again (it came back or was replaced).
    pub fn disk_faults(&self) -> tokio::sync::watch::Receiver<Vec<DiskStatus>> {
        self.inner.objects.faults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bunker_core::{FileId, Keys, NoLeaves, ObjectId, Sealer, Seed};
    use std::io::Write;

    fn sealed(size: usize) -> (Vec<u8>, Layout, bunker_core::Hash) {
        let keys = Keys::from_seed(&Seed::generate());
        let object = ObjectId { file_id: FileId::random(), replica_index: 0 };
        let key = keys.replica_key(&object.file_id, 0);
        let plain: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        let d = Sealer::new(&key, object, size as u64, 64).unwrap().seal(&plain[..], &mut out, NoLeaves).unwrap();
        (out, d.layout().unwrap(), d.root)
    }

    fn put(store: &ObjectStore, name: &str) -> Arc<Disk> {
        let (bytes, layout, root) = sealed(1000);
        let mut w = store.create(Area::Hosted, name, layout).unwrap();
        w.write_all(&bytes).unwrap();
        w.finish_expect(&root).unwrap();
        store.disk_of(Area::Hosted, name).unwrap()
    }

    #[test]
    fn objects_go_to_the_roomiest_disk_and_off_the_sd_card() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(a.path()).unwrap();
        // b has the most room: a keeps all but 1 MiB in reserve.
        let free = store.free_bytes().unwrap();
        let mut sa = DiskStatus::directory(a.path());
        sa.reserved_bytes = free.saturating_sub(1 << 20);
        store.set_disks(&[sa.clone(), DiskStatus::directory(b.path())]);
        assert_eq!(put(&store, "one").root, b.path());
        // b is on the SD card: a takes new data although it has less room.
        let mut sb = DiskStatus::directory(b.path());
        sb.on_system_device = true;
        store.set_disks(&[sa, sb]);
        assert_eq!(put(&store, "two").root, a.path());
        // Only a's room beyond its reserve is offered (b is the SD card, and
        // one file system is never counted twice).
        assert!(store.free_bytes().unwrap() < free / 2);
        assert_eq!(store.list(Area::Hosted).unwrap(), vec!["one".to_string(), "two".into()]);
    }

    #[test]
    fn an_object_on_a_disk_that_is_away_is_unavailable_then_back() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(a.path()).unwrap();
        let mut sb = DiskStatus::directory(b.path());
        store.set_disks(&[sb.clone()]);
        let mut sa = DiskStatus::directory(a.path());
        sa.health = DiskHealth::Full;
        store.set_disks(&[sa.clone()]);
        assert_eq!(put(&store, "x").root, b.path());
        sb.health = DiskHealth::Missing;
        store.set_disks(&[sb.clone()]);
        let e = store.open(Area::Hosted, "x").unwrap_err();
        assert!(e.is_unavailable() && e.to_string().contains("missing"), "{e}");
        assert!(store.exists(Area::Hosted, "x"));
        // Nothing takes new data: a is full, b missing.
        let (_, layout, _) = sealed(1000);
        let e = store.create(Area::Hosted, "y", layout).unwrap_err();
        assert!(matches!(e, ObjectError::NoRoom { .. }) && e.to_string().contains("missing"), "{e}");
        // Released while away: deleted when back.
        assert!(store.remove(Area::Hosted, "x").unwrap_err().is_unavailable());
        sb.health = DiskHealth::Active;
        store.set_disks(&[sb]);
        assert!(!store.exists(Area::Hosted, "x"));
        assert!(!b.path().join("hosted/x").exists());
    }
}
