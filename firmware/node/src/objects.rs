//! Sealed objects and their proof sidecars on disk.
//!
//! Under `config.store_root`, one directory per area:
//!
//! ```text
//! hosted/<owner PeerId>-<root hex>/   what we keep for peers
//! local/<file id hex>/                our own keep-local sealed copies
//! staging/<name>/                     finished objects not yet placed
//! tmp/<random>/                       writers in progress (emptied at start)
//! ```
//!
//! Each object is a directory holding `object` (the sealed bytes), `sidecar`
//! (every level of its Merkle tree, bunker-core's format) and `layout` (plain
//! size and segment size: the sidecar does not carry them). A writer builds
//! the three in `tmp/` and publishes them with one directory rename after
//! fsync, so an object is either complete or absent — a crash or an
//! abandoned upload never leaves half an object under a real name.
//!
//! Everything here is blocking file I/O: call it from `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bunker_core::sidecar::read_sealed_segment;
use bunker_core::{leaf_hash, leaf_hasher, Descriptor, FileId, Hash, Layout, LeafSink, Proof, Sidecar, SidecarWriter, FORMAT_VERSION};
use bunker_net::PeerId;

use crate::data_disks::DiskHealth;
pub(crate) use crate::disk_set::ObjectStore;

const OBJECT_FILE: &str = "object";
const SIDECAR_FILE: &str = "sidecar";
const LAYOUT_FILE: &str = "layout";
const TMP_DIR: &str = "tmp";
const LAYOUT_MAGIC: &[u8; 8] = b"BNKLYT01";
const LAYOUT_LEN: usize = 8 + 8 + 4;
/// Bytes written to the object file per system call.
const WRITE_BUFFER: usize = 256 * 1024;
/// Longest object name accepted (a PeerId is ≤ 60 characters, a root 64).
const MAX_NAME_LEN: usize = 200;

/// Where an object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Area {
    /// Objects we keep for peers.
    Hosted,
    /// Our own keep-local sealed copies.
    Local,
    /// Finished objects not yet placed.
    Staging,
}

impl Area {
    pub(crate) const ALL: [Area; 3] = [Area::Hosted, Area::Local, Area::Staging];

    fn dir(self) -> &'static str {
        match self {
            Area::Hosted => "hosted",
            Area::Local => "local",
            Area::Staging => "staging",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Area {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir())
    }
}

/// Name of an object we host: whose it is and which root.
pub(crate) fn hosted_name(owner: &PeerId, root: &Hash) -> String {
    format!("{owner}-{}", hex::encode(root))
}

/// Name of a keep-local copy: the file's object id.
pub(crate) fn local_name(file_id: &FileId) -> String {
    hex::encode(file_id.as_bytes())
}

/// What went wrong with which object. Messages name the object and area so
/// a log line or an admin-page alert is enough to act on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ObjectError {
    /// No such object.
    #[error("object {area}/{name} is not in the store")]
    Missing { area: Area, name: String },
    /// The name would escape its area or is not a name at all.
    #[error("{name:?} is not a valid object name: {reason}")]
    BadName { name: String, reason: &'static str },
    /// The proof sidecar (or layout record) is damaged: the object cannot be
    /// proven until it is rebuilt.
    #[error("object {area}/{name}: corrupt proof sidecar: {reason}")]
    CorruptSidecar { area: Area, name: String, reason: String },
    /// The sealed bytes do not match what the sidecar says they were.
    #[error("object {area}/{name}: corrupt: {reason}")]
    Corrupt { area: Area, name: String, reason: String },
    /// A writer got more or fewer bytes or leaves than its layout needs.
    #[error("object {area}/{name}: {reason}")]
    Length { area: Area, name: String, reason: String },
    /// The bytes hash to another root than expected.
    #[error("object {area}/{name}: the bytes hash to root {got}, expected {expected}")]
    RootMismatch { area: Area, name: String, expected: String, got: String },
    /// Another object already has this name.
    #[error("object {area}/{name} already exists with another root")]
    Exists { area: Area, name: String },
    /// The disk is full.
    #[error("object {area}/{name}: disk full while {what}")]
    DiskFull { area: Area, name: String, what: &'static str },
    /// The file system is read-only (a USB disk remounted after errors).
    #[error("object {area}/{name}: store is read-only while {what}")]
    ReadOnly { area: Area, name: String, what: &'static str },
    /// The object is on a data disk that cannot be read now (missing,
    /// failing): nothing is lost, it is back when the disk is.
    #[error("object {area}/{name} is unavailable: data disk {disk} is {state}")]
    Unavailable { area: Area, name: String, disk: String, state: DiskHealth },
    /// No data disk that takes new data has room for the object.
    #[error("object {area}/{name}: no data disk can take {bytes} bytes now ({disks})")]
    NoRoom { area: Area, name: String, bytes: u64, disks: String },
    /// Any other I/O failure.
    #[error("object {area}/{name}: {what}: {source}")]
    Io {
        area: Area,
        name: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ObjectError {
    fn io(area: Area, name: &str, what: &'static str, source: io::Error) -> ObjectError {
        let name = name.to_string();
        // ENOSPC / EDQUOT, EROFS: named so the host can say "full" to a peer.
        match (source.kind(), source.raw_os_error()) {
            (io::ErrorKind::StorageFull, _) | (_, Some(28)) | (_, Some(122)) => ObjectError::DiskFull { area, name, what },
            (io::ErrorKind::ReadOnlyFilesystem, _) | (_, Some(30)) => ObjectError::ReadOnly { area, name, what },
            _ => ObjectError::Io { area, name, what, source },
        }
    }

    /// True when the object is simply not there (as opposed to damaged).
    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, ObjectError::Missing { .. })
    }

    /// True when the object exists on a disk that is away or failing.
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, ObjectError::Unavailable { .. })
    }

    /// True when the object did not fit: no disk had room for it, or its
    /// disk filled up while it was written (`ENOSPC`, `EDQUOT`).
    pub(crate) fn is_no_room(&self) -> bool {
        matches!(self, ObjectError::NoRoom { .. } | ObjectError::DiskFull { .. })
    }
}

/// What a write to a disk said about the disk itself (not about one file):
/// it failed with an I/O error, went read-only, or went away. Kept by the
/// disk's [`DiskObjects`] until the disk is opened again (it came back or
/// was replaced), so no new data goes to it meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskFault {
    /// What the disk can do now, as far as the engine saw.
    pub(crate) health: DiskHealth,
    /// The failed operation and the system's words.
    pub(crate) reason: String,
}

impl DiskFault {
    /// The fault an I/O error means, if it says something about the disk:
    /// `EIO`, `EUCLEAN`, `EBADMSG` (failing), `EROFS` (read-only), `ENODEV`,
    /// `ENXIO`, `ENOTCONN`, `ESHUTDOWN` (gone) — bunker-disks' reading of
    /// the same errors.
    pub(crate) fn from_io(e: &io::Error, what: &str) -> Option<DiskFault> {
        let health = match e.raw_os_error()? {
            5 | 117 | 74 => DiskHealth::Failing,
            30 => DiskHealth::ReadOnly,
            19 | 6 | 107 | 108 => DiskHealth::Missing,
            _ => return None,
        };
        Some(DiskFault { health, reason: format!("{what}: {e}") })
    }
}

/// Where a disk's fault is reported: the disk as last told, and the
/// channel the daemon's disk watcher follows (`Node::disk_faults`).
pub(crate) type FaultReport = (crate::data_disks::DiskStatus, Arc<tokio::sync::watch::Sender<Vec<crate::data_disks::DiskStatus>>>);

#[derive(Default)]
struct SlotState {
    fault: Option<DiskFault>,
    report: Option<FaultReport>,
}

/// The fault slot of one disk, shared by its writers.
#[derive(Default, Clone)]
pub(crate) struct FaultSlot(Arc<Mutex<SlotState>>);

impl FaultSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what `e` says about the disk (the first fault stays) and
    /// reports it.
    fn note(&self, e: &io::Error, what: &str) {
        let Some(f) = DiskFault::from_io(e, what) else { return };
        let mut slot = self.lock();
        if slot.fault.is_some() {
            return;
        }
        tracing::warn!(health = %f.health, reason = %f.reason, "data disk failed a write: it takes no new data");
        if let Some((status, tx)) = &slot.report {
            let faulted = crate::data_disks::DiskStatus { health: f.health, ..status.clone() };
            tx.send_modify(|v| {
                v.retain(|d| d.id != faulted.id);
                v.push(faulted);
            });
        }
        slot.fault = Some(f);
    }

    fn get(&self) -> Option<DiskFault> {
        self.lock().fault.clone()
    }
}

/// The sealed objects of one data disk (one store root).
pub(crate) struct DiskObjects {
    /// What writes said about the disk since it was opened.
    fault: FaultSlot,
    /// Tests: object writes fail with this errno once they pass this many
    /// bytes, as a disk that dies under a write does.
    #[cfg(test)]
    fail_after: Mutex<Option<(u64, i32)>>,
    root: PathBuf,
    /// Bytes on disk per area (object + sidecar), kept current by this
    /// store's own writes so the allocation policy never walks 10 000 dirs.
    used: [AtomicU64; 3],
    /// Names of the finished objects per area: kept while the disk is away,
    /// so a request for an object on a yanked disk is answered
    /// "unavailable" rather than "not here".
    names: [Mutex<HashSet<String>>; 3],
}

impl DiskObjects {
    /// Opens (creating) the store at `root`, removing writers a crash left
    /// behind and counting what each area holds.
    pub(crate) fn new(root: &Path) -> io::Result<DiskObjects> {
        DiskObjects::open_at(root, true)
    }

    /// Opens the store at `root`. A `writable` store is created if needed
    /// and its crashed writers removed; a read-only disk is only read.
    pub(crate) fn open_at(root: &Path, writable: bool) -> io::Result<DiskObjects> {
        if writable {
            fs::create_dir_all(root)?;
            let tmp = root.join(TMP_DIR);
            if tmp.exists() {
                fs::remove_dir_all(&tmp)?;
            }
            fs::create_dir_all(&tmp)?;
        } else if !root.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} is not a directory", root.display())));
        }
        let store = DiskObjects {
            fault: FaultSlot::default(),
            #[cfg(test)]
            fail_after: Mutex::new(None),
            root: root.to_path_buf(),
            used: Default::default(),
            names: Default::default(),
        };
        for area in Area::ALL {
            let dir = store.area_dir(area);
            if writable {
                fs::create_dir_all(&dir)?;
            } else if !dir.is_dir() {
                continue;
            }
            let mut total = 0u64;
            let mut names = HashSet::new();
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                total += dir_bytes(&entry.path());
                if let Some(name) = entry.file_name().to_str() {
                    names.insert(name.to_string());
                }
            }
            store.used[area.slot()].store(total, Ordering::Relaxed);
            *store.names(area) = names;
        }
        Ok(store)
    }

    /// What a write said about this disk since it was opened, if anything.
    pub(crate) fn fault(&self) -> Option<DiskFault> {
        self.fault.get()
    }

    /// Tests: from now on, each object write fails with `errno` once it
    /// passes `bytes`.
    #[cfg(test)]
    pub(crate) fn fail_writes_after(&self, bytes: u64, errno: i32) {
        *self.fail_after.lock().unwrap() = Some((bytes, errno));
    }

    /// Where a fault of this disk is reported (see [`FaultReport`]).
    pub(crate) fn report_faults(&self, report: FaultReport) {
        self.fault.lock().report = Some(report);
    }

    /// An I/O error of this disk as an [`ObjectError`], noting what it says
    /// about the disk.
    fn io_error(&self, area: Area, name: &str, what: &'static str, source: io::Error) -> ObjectError {
        self.fault.note(&source, what);
        ObjectError::io(area, name, what, source)
    }

    fn names(&self, area: Area) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.names[area.slot()].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this disk held object `name` when last seen (true also while
    /// the disk is away).
    pub(crate) fn knows(&self, area: Area, name: &str) -> bool {
        self.names(area).contains(name)
    }

    fn area_dir(&self, area: Area) -> PathBuf {
        self.root.join(area.dir())
    }

    fn object_dir(&self, area: Area, name: &str) -> Result<PathBuf, ObjectError> {
        check_name(name)?;
        Ok(self.area_dir(area).join(name))
    }

    /// Starts writing object `name` in `area`. The writer hashes the sealed
    /// bytes as they arrive (what a host does with a received object).
    pub(crate) fn create(self: &Arc<Self>, area: Area, name: &str, layout: Layout) -> Result<ObjectWriter<'static>, ObjectError> {
        self.start_writer(area, name, layout, true)
    }

    /// Starts writing object `name` in `area` for a [`bunker_core::Sealer`]:
    /// the sealer hands over the leaves it computed through
    /// [`ObjectWriter::sealer_parts`], so nothing is hashed twice.
    pub(crate) fn create_sealed(self: &Arc<Self>, area: Area, name: &str, layout: Layout) -> Result<ObjectWriter<'static>, ObjectError> {
        self.start_writer(area, name, layout, false)
    }

    fn start_writer(self: &Arc<Self>, area: Area, name: &str, layout: Layout, hashing: bool) -> Result<ObjectWriter<'static>, ObjectError> {
        self.object_dir(area, name)?;
        let tmp = self.root.join(TMP_DIR).join(format!("{}-{}", hex::encode(rand::random::<[u8; 8]>()), name));
        let e = |what| move |source| self.io_error(area, name, what, source);
        fs::create_dir(&tmp).map_err(e("creating its temporary directory"))?;
        let guard = TmpDir(Some(tmp.clone()));
        let object = File::create(tmp.join(OBJECT_FILE)).map_err(e("creating the object file"))?;
        let sidecar_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(tmp.join(SIDECAR_FILE))
            .map_err(e("creating the sidecar"))?;
        let sidecar = SidecarWriter::new(sidecar_file).map_err(|err| {
            if let bunker_core::SidecarError::Io(source) = &err {
                self.fault.note(source, "starting the sidecar");
            }
            sidecar_io(area, name, "starting the sidecar", err)
        })?;
        let segment = (leaf_hasher(), 0);
        Ok(ObjectWriter {
            store: Arc::clone(self),
            _borrow: std::marker::PhantomData,
            area,
            name: name.to_string(),
            layout,
            body: ObjectBody {
                file: BufWriter::with_capacity(WRITE_BUFFER, object),
                written: 0,
                limit: layout.sealed_size(),
                fault: self.fault.clone(),
                #[cfg(test)]
                fail_after: *self.fail_after.lock().unwrap(),
            },
            leaves: ObjectLeaves { sidecar, fault: self.fault.clone() },
            hashing,
            segment,
            tmp: guard,
        })
    }

    /// Opens a finished object, checking that its three parts agree.
    pub(crate) fn open(&self, area: Area, name: &str) -> Result<StoredObject, ObjectError> {
        let dir = self.object_dir(area, name)?;
        let object = match File::open(dir.join(OBJECT_FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ObjectError::Missing { area, name: name.to_string() })
            }
            Err(e) => return Err(ObjectError::io(area, name, "opening the object", e)),
        };
        let corrupt = |reason: String| ObjectError::CorruptSidecar { area, name: name.to_string(), reason };
        let layout = read_layout(&dir.join(LAYOUT_FILE)).map_err(corrupt)?;
        let sidecar_file = File::open(dir.join(SIDECAR_FILE)).map_err(|e| corrupt(format!("cannot open: {e}")))?;
        let sidecar = Sidecar::open(sidecar_file).map_err(|e| corrupt(e.to_string()))?;
        if sidecar.count() != layout.segment_count() {
            return Err(corrupt(format!(
                "{} leaves, the layout has {} segments",
                sidecar.count(),
                layout.segment_count()
            )));
        }
        let len = object.metadata().map_err(|e| ObjectError::io(area, name, "reading the object's size", e))?.len();
        if len != layout.sealed_size() {
            return Err(ObjectError::Corrupt {
                area,
                name: name.to_string(),
                reason: format!("{len} bytes on disk, the layout needs {}", layout.sealed_size()),
            });
        }
        Ok(StoredObject { area, name: name.to_string(), layout, object, sidecar })
    }

    /// Deletes an object. Missing is an error the caller may ignore.
    pub(crate) fn remove(&self, area: Area, name: &str) -> Result<(), ObjectError> {
        let dir = self.object_dir(area, name)?;
        if !dir.is_dir() {
            return Err(ObjectError::Missing { area, name: name.to_string() });
        }
        let bytes = dir_bytes(&dir);
        fs::remove_dir_all(&dir).map_err(|e| ObjectError::io(area, name, "removing", e))?;
        self.names(area).remove(name);
        self.sub(area, bytes);
        Ok(())
    }

    /// Moves an object to another area or name (staging → local, …):
    /// one rename, so it is never in both places or in neither.
    pub(crate) fn rename(&self, area: Area, name: &str, to_area: Area, to_name: &str) -> Result<(), ObjectError> {
        let from = self.object_dir(area, name)?;
        let to = self.object_dir(to_area, to_name)?;
        if !from.is_dir() {
            return Err(ObjectError::Missing { area, name: name.to_string() });
        }
        if to.exists() {
            return Err(ObjectError::Exists { area: to_area, name: to_name.to_string() });
        }
        if area == Area::Staging {
            // Staging is not fsynced (see `finish_inner`): make it durable before it counts.
            for part in [OBJECT_FILE, SIDECAR_FILE, LAYOUT_FILE] {
                File::open(from.join(part))
                    .and_then(|f| f.sync_all())
                    .map_err(|e| ObjectError::io(area, name, "syncing before the move", e))?;
            }
            sync_dir(&from);
        }
        let bytes = dir_bytes(&from);
        fs::rename(&from, &to).map_err(|e| ObjectError::io(area, name, "renaming", e))?;
        sync_dir(&self.area_dir(to_area));
        sync_dir(&self.area_dir(area));
        self.names(area).remove(name);
        self.names(to_area).insert(to_name.to_string());
        self.sub(area, bytes);
        self.used[to_area.slot()].fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Names of the finished objects in an area.
    #[cfg(test)]
    pub(crate) fn list(&self, area: Area) -> Result<Vec<String>, ObjectError> {
        let dir = self.area_dir(area);
        let e = |source| ObjectError::io(area, "*", "listing", source);
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(e)? {
            let entry = entry.map_err(e)?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Bytes on disk in an area (objects and their sidecars).
    pub(crate) fn bytes_used(&self, area: Area) -> u64 {
        self.used[area.slot()].load(Ordering::Relaxed)
    }

    /// Size and free bytes of the file system of the store root.
    pub(crate) fn fs_bytes(&self) -> io::Result<(u64, u64)> {
        let st = nix::sys::statvfs::statvfs(&self.root).map_err(io::Error::from)?;
        #[allow(clippy::useless_conversion)]
        let frag = u64::from(st.fragment_size());
        #[allow(clippy::useless_conversion)]
        Ok((u64::from(st.blocks()).saturating_mul(frag), u64::from(st.blocks_available()).saturating_mul(frag)))
    }

    fn sub(&self, area: Area, bytes: u64) {
        let _ = self.used[area.slot()].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(bytes)));
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), ObjectError> {
    let bad = |reason| Err(ObjectError::BadName { name: name.chars().take(MAX_NAME_LEN).collect(), reason });
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("too long");
    }
    if name.starts_with('.') {
        return bad("starts with a dot");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

fn sidecar_io(area: Area, name: &str, what: &'static str, err: bunker_core::SidecarError) -> ObjectError {
    match err {
        bunker_core::SidecarError::Io(source) => ObjectError::io(area, name, what, source),
        other => ObjectError::Length { area, name: name.to_string(), reason: format!("{what}: {other}") },
    }
}

fn write_layout(path: &Path, layout: &Layout) -> io::Result<()> {
    let mut buf = [0u8; LAYOUT_LEN];
    buf[..8].copy_from_slice(LAYOUT_MAGIC);
    buf[8..16].copy_from_slice(&layout.size().to_le_bytes());
    buf[16..20].copy_from_slice(&layout.segment_size().to_le_bytes());
    let mut f = File::create(path)?;
    f.write_all(&buf)?;
    f.sync_all()
}

fn read_layout(path: &Path) -> Result<Layout, String> {
    let mut buf = Vec::with_capacity(LAYOUT_LEN);
    File::open(path)
        .and_then(|f| f.take(LAYOUT_LEN as u64 + 1).read_to_end(&mut buf))
        .map_err(|e| format!("layout record: {e}"))?;
    if buf.len() != LAYOUT_LEN || &buf[..8] != LAYOUT_MAGIC {
        return Err("layout record is damaged".into());
    }
    let size = u64::from_le_bytes(buf[8..16].try_into().map_err(|_| "layout size")?);
    let segment_size = u32::from_le_bytes(buf[16..20].try_into().map_err(|_| "layout segment size")?);
    Layout::new(size, segment_size).map_err(|e| format!("layout record: {e}"))
}

/// Bytes of the regular files directly inside `dir` (or of `dir` if it is a file).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return fs::metadata(dir).map(|m| m.len()).unwrap_or(0);
    };
    entries.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
}

/// Makes a rename durable. Best effort: some file systems refuse to fsync a
/// directory, and the data files are already synced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes a writer's temporary directory unless it was published.
struct TmpDir(Option<PathBuf>);

impl Drop for TmpDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove an unfinished object");
            }
        }
    }
}

/// The sealed bytes half of a writer.
pub(crate) struct ObjectBody {
    file: BufWriter<File>,
    written: u64,
    limit: u64,
    fault: FaultSlot,
    #[cfg(test)]
    fail_after: Option<(u64, i32)>,
}

impl Write for ObjectBody {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("more than the {} sealed bytes the layout holds", self.limit),
            ));
        }
        #[cfg(test)]
        if let Some((after, errno)) = self.fail_after {
            if self.written + buf.len() as u64 > after {
                let e = io::Error::from_raw_os_error(errno);
                self.fault.note(&e, "writing the object");
                return Err(e);
            }
        }
        let n = self.file.write(buf).inspect_err(|e| self.fault.note(e, "writing the object"))?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush().inspect_err(|e| self.fault.note(e, "writing the object"))
    }
}

/// The leaves half of a writer: where a Sealer sends its leaf hashes.
pub(crate) struct ObjectLeaves {
    sidecar: SidecarWriter<File>,
    fault: FaultSlot,
}

impl LeafSink for ObjectLeaves {
    fn push_leaf(&mut self, index: u64, leaf: &Hash) -> io::Result<()> {
        self.sidecar.push_leaf(index, leaf).inspect_err(|e| self.fault.note(e, "writing the proof sidecar"))
    }
}

/// An object being written. Implements [`Write`] for the sealed bytes;
/// [`ObjectWriter::finish`] publishes it, dropping it removes everything.
pub(crate) struct ObjectWriter<'s> {
    store: Arc<DiskObjects>,
    /// Writers were borrowed from the store once; the lifetime stays for callers.
    _borrow: std::marker::PhantomData<&'s ()>,
    area: Area,
    name: String,
    layout: Layout,
    body: ObjectBody,
    leaves: ObjectLeaves,
    /// Hash leaves from the bytes (received objects) rather than take them from a sealer.
    hashing: bool,
    /// The segment being received: its leaf hash so far and its length
    /// (hashed as it comes, never copied together).
    segment: (blake3::Hasher, usize),
    tmp: TmpDir,
}

impl std::fmt::Debug for ObjectWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("area", &self.area)
            .field("name", &self.name)
            .field("written", &self.body.written)
            .finish_non_exhaustive()
    }
}

impl ObjectWriter<'_> {
    /// The root of the disk it writes to.
    pub(crate) fn disk_root(&self) -> PathBuf {
        self.store.root.clone()
    }

    /// The two halves a `Sealer::seal(input, body, leaves)` needs. Only for
    /// writers from [`DiskObjects::create_sealed`]; on a hashing writer the
    /// leaves come from the bytes and this returns `None`.
    pub(crate) fn sealer_parts(&mut self) -> Option<(&mut ObjectBody, &mut ObjectLeaves)> {
        if self.hashing {
            None
        } else {
            Some((&mut self.body, &mut self.leaves))
        }
    }

    /// Checks the object is complete, fsyncs it and publishes it under its
    /// name. Returns the Merkle root. If an object of that name already
    /// exists with the same root (same bytes), the new copy is dropped and
    /// the existing one stays.
    #[cfg(test)]
    pub(crate) fn finish(self) -> Result<Hash, ObjectError> {
        self.finish_inner(None)
    }

    /// Like [`ObjectWriter::finish`], but publishes nothing (and removes the
    /// temporary files) unless the computed root is `expected`.
    pub(crate) fn finish_expect(self, expected: &Hash) -> Result<Hash, ObjectError> {
        self.finish_inner(Some(expected))
    }

    fn finish_inner(mut self, expected: Option<&Hash>) -> Result<Hash, ObjectError> {
        let area = self.area;
        let name = self.name.clone();
        let length = move |reason: String| ObjectError::Length { area, name: name.clone(), reason };
        if self.body.written != self.layout.sealed_size() {
            return Err(length(format!(
                "got {} sealed bytes, the layout needs {}",
                self.body.written,
                self.layout.sealed_size()
            )));
        }
        if self.leaves.sidecar.count() != self.layout.segment_count() {
            return Err(length(format!(
                "got {} leaves, the layout has {} segments",
                self.leaves.sidecar.count(),
                self.layout.segment_count()
            )));
        }
        let e = |what: &'static str| {
            let name = self.name.clone();
            let store = Arc::clone(&self.store);
            move |source| store.io_error(area, &name, what, source)
        };
        let Some(tmp) = self.tmp.0.clone() else {
            return Err(length("writer already finished".into()));
        };
        let object = self
            .body
            .file
            .into_inner()
            .map_err(|err| self.store.io_error(area, &self.name, "flushing the object", err.into_error()))?;
        // Staging is scratch for the upload that follows (read back from the
        // page cache, deleted after): no fsync there; `rename` out of it syncs.
        let durable = area != Area::Staging;
        if durable {
            object.sync_all().map_err(e("syncing the object"))?;
        }
        drop(object);
        let (root, sidecar) = self
            .leaves
            .sidecar
            .finish()
            .map_err(|err| {
                if let bunker_core::SidecarError::Io(source) = &err {
                    self.store.fault.note(source, "finishing the sidecar");
                }
                sidecar_io(area, &self.name, "finishing the sidecar", err)
            })?;
        if let Some(expected) = expected {
            if &root != expected {
                return Err(ObjectError::RootMismatch {
                    area,
                    name: self.name.clone(),
                    expected: hex::encode(expected),
                    got: hex::encode(root),
                });
            }
        }
        if durable {
            sidecar.sync_all().map_err(e("syncing the sidecar"))?;
        }
        drop(sidecar);
        write_layout(&tmp.join(LAYOUT_FILE), &self.layout).map_err(e("writing the layout"))?;
        if durable {
            sync_dir(&tmp);
        }
        let dest = self.store.object_dir(area, &self.name)?;
        if dest.exists() {
            // Same name: keep what is there if it is the same object.
            return match self.store.open(area, &self.name) {
                Ok(existing) if existing.root() == root => Ok(root),
                _ => Err(ObjectError::Exists { area, name: self.name.clone() }),
            };
        }
        let bytes = dir_bytes(&tmp);
        fs::rename(&tmp, &dest).map_err(e("publishing"))?;
        self.tmp.0 = None;
        if durable {
            sync_dir(&self.store.area_dir(area));
        }
        self.store.names(area).insert(self.name.clone());
        self.store.used[area.slot()].fetch_add(bytes, Ordering::Relaxed);
        Ok(root)
    }

    fn push_hashed(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let index = self.leaves.sidecar.count();
            if index >= self.layout.segment_count() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "bytes past the last segment"));
            }
            let want = self.layout.sealed_len(index) - self.segment.1;
            let take = want.min(buf.len());
            self.segment.0.update(&buf[..take]);
            self.segment.1 += take;
            buf = &buf[take..];
            if self.segment.1 == self.layout.sealed_len(index) {
                let leaf = *std::mem::replace(&mut self.segment, (leaf_hasher(), 0)).0.finalize().as_bytes();
                self.leaves.push_leaf(index, &leaf)?;
            }
        }
        Ok(())
    }
}

impl Write for ObjectWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.body.write(buf)?;
        if self.hashing {
            self.push_hashed(&buf[..n])?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.body.flush()
    }
}

/// A finished object, open for audits and reads.
pub(crate) struct StoredObject {
    area: Area,
    name: String,
    layout: Layout,
    object: File,
    sidecar: Sidecar<File>,
}

impl std::fmt::Debug for StoredObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredObject").field("area", &self.area).field("name", &self.name).finish_non_exhaustive()
    }
}

impl StoredObject {
    /// The Merkle root recorded in the sidecar.
    pub(crate) fn root(&self) -> Hash {
        self.sidecar.root()
    }

    /// Sealed length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.layout.sealed_size()
    }

    /// What the manifest keeps about this object.
    pub(crate) fn descriptor(&self) -> Descriptor {
        Descriptor {
            version: FORMAT_VERSION,
            root: self.root(),
            size: self.layout.size(),
            segment_size: self.layout.segment_size(),
            segment_count: self.layout.segment_count(),
        }
    }

    /// Sealed segment `index` and its Merkle proof: one positioned read of
    /// the object and one per tree level of the sidecar. The segment is
    /// checked against its stored leaf and the proof against the root, so a
    /// damaged disk is reported here instead of sent to the owner as if good.
    pub(crate) fn segment_with_proof(&self, index: u64) -> Result<(Vec<u8>, Proof), ObjectError> {
        let (area, name) = (self.area, &self.name);
        let sealed = read_sealed_segment(&self.object, &self.layout, index).map_err(|err| match err {
            bunker_core::SidecarError::IndexOutOfRange { index, count } => ObjectError::Length {
                area,
                name: name.clone(),
                reason: format!("segment {index} asked, the object has {count}"),
            },
            bunker_core::SidecarError::Io(source) => ObjectError::io(area, name, "reading a segment", source),
            other => ObjectError::Corrupt { area, name: name.clone(), reason: other.to_string() },
        })?;
        let corrupt_sidecar = |reason: String| ObjectError::CorruptSidecar { area, name: name.clone(), reason };
        let leaf = leaf_hash(&sealed);
        let stored = self.sidecar.leaf(index).map_err(|e| corrupt_sidecar(e.to_string()))?;
        if leaf != stored {
            return Err(ObjectError::Corrupt {
                area,
                name: name.clone(),
                reason: format!("segment {index} does not match its stored hash"),
            });
        }
        let proof = self.sidecar.proof(index).map_err(|e| corrupt_sidecar(e.to_string()))?;
        if !proof.verify_leaf(&leaf, &self.root()) {
            return Err(corrupt_sidecar(format!("the proof of segment {index} does not lead to the root")));
        }
        Ok((sealed, proof))
    }

    /// The whole sealed object from its first byte (fetch, get, full checks).
    pub(crate) fn reader(&self) -> Result<File, ObjectError> {
        let mut f = self.object.try_clone().map_err(|e| ObjectError::io(self.area, &self.name, "reopening", e))?;
        f.seek(SeekFrom::Start(0)).map_err(|e| ObjectError::io(self.area, &self.name, "seeking", e))?;
        Ok(f)
    }
}

/// Chunks read ahead by [`AsyncObjectReader`].
const READ_AHEAD: usize = 4;

/// A sealed object (or any file) as a `futures` `AsyncRead`, read on the
/// blocking pool in 256 KiB chunks, a few ahead: what `InboundFetch::send`
/// and the owner's reads take, without blocking the async runtime on a slow
/// USB disk.
pub(crate) struct AsyncObjectReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl AsyncObjectReader {
    /// Reads `file` from its current position to its end.
    pub(crate) fn new(mut file: File) -> AsyncObjectReader {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::task::spawn_blocking(move || loop {
            // Read into spare capacity: no zeroing of a buffer the read
            // overwrites anyway.
            let mut buf = Vec::with_capacity(WRITE_BUFFER);
            let item = match (&mut file).take(WRITE_BUFFER as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => Ok(buf),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            // The reader was dropped (transfer ended): stop reading.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        });
        AsyncObjectReader { rx, chunk: Vec::new(), pos: 0 }
    }
}

impl futures::io::AsyncRead for AsyncObjectReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        use std::task::Poll;
        let this = &mut *self;
        while this.pos >= this.chunk.len() {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.chunk = chunk;
                    this.pos = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.len().min(this.chunk.len() - this.pos);
        buf[..n].copy_from_slice(&this.chunk[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bunker_core::{verify_segment, Keys, NoLeaves, ObjectId, Sealer, Seed};

    fn sealed(size: usize, segment: u32) -> (Vec<u8>, Descriptor, Vec<Hash>, bunker_core::ReplicaKey, ObjectId) {
        let keys = Keys::from_seed(&Seed::generate());
        let object = ObjectId { file_id: FileId::random(), replica_index: 0 };
        let key = keys.replica_key(&object.file_id, 0);
        let plain: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        let mut leaves = Vec::new();
        let d = Sealer::new(&key, object, size as u64, segment).unwrap().seal(&plain[..], &mut out, &mut leaves).unwrap();
        (out, d, leaves, key, object)
    }

    #[test]
    fn received_object_proves_every_segment_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path()).unwrap();
        let (bytes, d, _, _, _) = sealed(1000, 64);
        let layout = d.layout().unwrap();
        let mut w = store.create(Area::Hosted, "peer-abc", layout).unwrap();
        // Odd write sizes: segments split across writes.
        for chunk in bytes.chunks(37) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.finish().unwrap(), d.root);
        let obj = store.open(Area::Hosted, "peer-abc").unwrap();
        assert_eq!(obj.root(), d.root);
        assert_eq!(obj.len(), bytes.len() as u64);
        assert_eq!(obj.descriptor(), d);
        for i in 0..layout.segment_count() {
            let (seg, proof) = obj.segment_with_proof(i).unwrap();
            verify_segment(&d, i, &seg, &proof).unwrap();
        }
        let mut back = Vec::new();
        obj.reader().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, bytes);
        assert!(store.bytes_used(Area::Hosted) >= bytes.len() as u64);
        assert!(store.free_bytes().unwrap() > 0);
    }

    #[test]
    fn sealer_leaves_go_straight_to_the_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path()).unwrap();
        let (bytes, d, _, key, object) = sealed(5000, 256);
        let plain_len = d.size;
        let mut w = store.create_sealed(Area::Local, "file1", d.layout().unwrap()).unwrap();
        let plain: Vec<u8> = (0..plain_len as usize).map(|i| (i * 7 % 251) as u8).collect();
        let (body, leaves) = w.sealer_parts().expect("sealer writer");
        let again = Sealer::new(&key, object, plain_len, 256).unwrap().seal(&plain[..], body, leaves).unwrap();
        assert_eq!(again.root, d.root);
        assert_eq!(w.finish().unwrap(), d.root);
        let obj = store.open(Area::Local, "file1").unwrap();
        let (seg, proof) = obj.segment_with_proof(3).unwrap();
        verify_segment(&d, 3, &seg, &proof).unwrap();
        assert_eq!(obj.len(), bytes.len() as u64);
        // A hashing writer gives no sealer parts (it would hash twice).
        let mut h = store.create(Area::Local, "file2", d.layout().unwrap()).unwrap();
        assert!(h.sealer_parts().is_none());
    }

    #[test]
    fn unfinished_or_short_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path()).unwrap();
        let (bytes, d, _, _, _) = sealed(1000, 64);
        let layout = d.layout().unwrap();
        {
            let mut w = store.create(Area::Hosted, "dropped", layout).unwrap();
            w.write_all(&bytes[..500]).unwrap();
        }
        let mut w = store.create(Area::Hosted, "short", layout).unwrap();
        w.write_all(&bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(w.finish(), Err(ObjectError::Length { .. })));
        let mut w = store.create(Area::Hosted, "long", layout).unwrap();
        w.write_all(&bytes).unwrap();
        assert!(w.write_all(&[0]).is_err(), "a byte past the layout is refused");
        drop(w);
        assert!(store.open(Area::Hosted, "dropped").unwrap_err().is_missing());
        assert!(store.list(Area::Hosted).unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
        assert_eq!(store.bytes_used(Area::Hosted), 0);
    }

    #[test]
    fn wrong_root_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path()).unwrap();
        let (bytes, d, _, _, _) = sealed(700, 64);
        let mut w = store.create(Area::Hosted, "x", d.layout().unwrap()).unwrap();
        w.write_all(&bytes).unwrap();
        assert!(matches!(w.finish_expect(&[0; 32]), Err(ObjectError::RootMismatch { .. })));
        assert!(!store.exists(Area::Hosted, "x"));
        let mut w = store.create(Area::Hosted, "x", d.layout().unwrap()).unwrap();
        w.write_all(&bytes).unwrap();
        assert_eq!(w.finish_expect(&d.root).unwrap(), d.root);
        assert!(store.exists(Area::Hosted, "x"));
    }

    #[test]
    fn corrupted_object_or_sidecar_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path()).unwrap();
        let (bytes, d, _, _, _) = sealed(1000, 64);
        let mut w = store.create(Area::Hosted, "o", d.layout().unwrap()).unwrap();
        w.write_all(&bytes).unwrap();
        w.finish().unwrap();
        let odir = dir.path().join("hosted/o");

        // Flip a byte of segment 2 of the object.
        let mut obj = fs::read(odir.join(OBJECT_FILE)).unwrap();
        obj[2 * 80 + 5] ^= 1;
        fs::write(odir.join(OBJECT_FILE), &obj).unwrap();
        let o = store.open(Area::Hosted, "o").unwrap();
        assert!(matches!(o.segment_with_proof(2), Err(ObjectError::Corrupt { .. })));
        o.segment_with_proof(1).unwrap();
        obj[2 * 80 + 5] ^= 1;
        fs::write(odir.join(OBJECT_FILE), &obj).unwrap();

        // Flip a byte in an upper level of the sidecar: the proof no longer reaches the root.
        let mut side = fs::read(odir.join(SIDECAR_FILE)).unwrap();
        let leaves = d.segment_count as usize;
        let level1 = 64 + leaves * 32;
        side[level1 + 3] ^= 1;
        fs::write(odir.join(SIDECAR_FILE), &side).unwrap();
        let o = store.open(Area::Hosted, "o").unwrap();
        assert!(matches!(o.segment_with_proof(2), Err(ObjectError::CorruptSidecar { .. })));

        // A damaged header: the object cannot be opened at all.
        side[0] ^= 1;
        fs::write(odir.join(SIDECAR_FILE), &side).unwrap();
        assert!(matches!(store.open(Area::Hosted, "o"), Err(ObjectError::CorruptSidecar { .. })));

        // A truncated object.
        fs::write(odir.join(OBJECT_FILE), &bytes[..100]).unwrap();
        assert!(store.open(Area::Hosted, "o").is_err());
    }

    #[tokio::test]
    async fn async_reader_yields_the_whole_object() {
        use futures::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path()).unwrap();
        let (bytes, d, _, _, _) = sealed(700_000, 4096);
        let mut w = store.create(Area::Local, "big", d.layout().unwrap()).unwrap();
        w.write_all(&bytes).unwrap();
        w.finish().unwrap();
        let file = store.open(Area::Local, "big").unwrap().reader().unwrap();
        let mut back = Vec::new();
        AsyncObjectReader::new(file).read_to_end(&mut back).await.unwrap();
        assert_eq!(back, bytes);
    }

    #[test]
    fn rename_remove_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path()).unwrap();
        let (bytes, d, _, _, _) = sealed(300, 64);
        let mut w = store.create(Area::Staging, "s", d.layout().unwrap()).unwrap();
        w.write_all(&bytes).unwrap();
        w.finish().unwrap();
        let used = store.bytes_used(Area::Staging);
        assert!(used > 0);
        store.rename(Area::Staging, "s", Area::Local, "l").unwrap();
        assert_eq!((store.bytes_used(Area::Staging), store.bytes_used(Area::Local)), (0, used));
        assert!(store.open(Area::Local, "l").is_ok());
        // Counts survive a restart.
        let again = ObjectStore::new(dir.path()).unwrap();
        assert_eq!(again.bytes_used(Area::Local), used);
        again.remove(Area::Local, "l").unwrap();
        assert_eq!(again.bytes_used(Area::Local), 0);
        assert!(again.remove(Area::Local, "l").unwrap_err().is_missing());
        assert!(matches!(again.open(Area::Local, "../x"), Err(ObjectError::BadName { .. })));
        let _ = NoLeaves;
    }
}
