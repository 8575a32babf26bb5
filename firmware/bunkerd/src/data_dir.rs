//! The data directory: created on first run, locked while a daemon uses it,
//! and home of the seed file.
//!
//! The seed file holds the 24 words in plain text, readable by the daemon's
//! user only (0600). It is written to a temporary name, synced and renamed,
//! so that a power cut during the very first start never leaves half a seed
//! (which would be a new identity on the next start).

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bunker_core::seed::{Seed, SeedError};

/// File name of the seed inside the data directory.
pub const SEED_FILE: &str = "seed";
/// File name of the lock that keeps two daemons off one data directory.
pub const LOCK_FILE: &str = "bunkerd.lock";
/// File name of the local API socket used by the `bunker` command.
pub const SOCKET_FILE: &str = "bunkerd.sock";

/// Why the data directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory could not be created or is not writable.
    #[error("data dir {path}: {what}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Another daemon holds the lock.
    #[error("data dir {0} is in use by another bunkerd (lock file {LOCK_FILE} is held)")]
    InUse(PathBuf),
    /// The seed file exists but does not hold a valid seed.
    #[error("seed file {path} is not a valid seed: {source}")]
    BadSeed {
        /// The seed file.
        path: PathBuf,
        /// What is wrong with it.
        source: SeedError,
    },
}

/// An open, locked data directory. The lock is released on drop.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

/// Whether [`DataDir::load_or_create_seed`] made a new seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOrigin {
    /// Read from the seed file.
    Loaded,
    /// Generated now: this is the box's first start.
    Created,
}

impl DataDir {
    /// Creates `path` (mode 0700) if needed and takes its lock.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let io_err = |what| move |source| DataDirError::Io { path: path.to_owned(), what, source };
        fs::create_dir_all(path).map_err(io_err("cannot create it"))?;
        let meta = fs::metadata(path).map_err(io_err("cannot read it"))?;
        if !meta.is_dir() {
            return Err(DataDirError::Io {
                path: path.to_owned(),
                what: "is not a directory",
                source: io::Error::from(io::ErrorKind::NotADirectory),
            });
        }
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, Permissions::from_mode(0o700)).map_err(io_err("cannot restrict it to mode 0700"))?;
        }
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err("is not writable"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(DataDirError::InUse(path.to_owned())),
            Err(fs::TryLockError::Error(source)) => {
                return Err(DataDirError::Io { path: lock_path, what: "cannot lock it", source })
            }
        }
        Ok(DataDir { path: path.to_owned(), _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of the local API socket.
    pub fn socket_path(&self) -> PathBuf {
        self.path.join(SOCKET_FILE)
    }

    /// Reads the seed file, or on first start creates one with new words.
    pub fn load_or_create_seed(&self) -> Result<(Seed, SeedOrigin), DataDirError> {
        let path = self.path.join(SEED_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let seed = Seed::from_phrase(&text).map_err(|source| DataDirError::BadSeed { path: path.clone(), source })?;
                let mode = fs::metadata(&path).map(|m| m.permissions().mode()).unwrap_or(0);
                if mode & 0o077 != 0 {
                    tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "seed file was readable by others; restricting it to 0600");
                    fs::set_permissions(&path, Permissions::from_mode(0o600))
                        .map_err(|source| DataDirError::Io { path: path.clone(), what: "cannot restrict seed file to 0600", source })?;
                }
                Ok((seed, SeedOrigin::Loaded))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let seed = Seed::generate();
                let text = zeroize::Zeroizing::new(format!("{}\n", seed.phrase().as_str()));
                bunker_web::store::write_private(&path, text.as_bytes())
                    .map_err(|source| DataDirError::Io { path: path.clone(), what: "cannot write seed file", source })?;
                Ok((seed, SeedOrigin::Created))
            }
            Err(source) => Err(DataDirError::Io { path, what: "cannot read seed file", source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_open_creates_a_private_seed_and_later_opens_reuse_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir_path = tmp.path().join("box");
        let (seed, origin) = {
            let dir = DataDir::open(&dir_path).unwrap();
            dir.load_or_create_seed().unwrap()
        };
        assert_eq!(origin, SeedOrigin::Created);
        let meta = fs::metadata(dir_path.join(SEED_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir_path).unwrap().permissions().mode() & 0o777, 0o700);

        let dir = DataDir::open(&dir_path).unwrap();
        let (again, origin) = dir.load_or_create_seed().unwrap();
        assert_eq!(origin, SeedOrigin::Loaded);
        assert_eq!(seed, again);
    }

    #[test]
    fn a_seed_file_readable_by_others_is_restricted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        dir.load_or_create_seed().unwrap();
        let seed_path = tmp.path().join(SEED_FILE);
        fs::set_permissions(&seed_path, Permissions::from_mode(0o644)).unwrap();
        dir.load_or_create_seed().unwrap();
        assert_eq!(fs::metadata(&seed_path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_seed_file_is_an_error_not_a_new_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        fs::write(tmp.path().join(SEED_FILE), "abandon ability able\n").unwrap();
        let err = dir.load_or_create_seed().unwrap_err();
        assert!(matches!(err, DataDirError::BadSeed { .. }), "{err}");
        assert!(err.to_string().contains("24 words"), "{err}");
        // The bad file is left for the owner to look at, not overwritten.
        assert_eq!(fs::read_to_string(tmp.path().join(SEED_FILE)).unwrap(), "abandon ability able\n");
    }

    #[test]
    fn two_daemons_cannot_share_a_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let _first = DataDir::open(tmp.path()).unwrap();
        let err = DataDir::open(tmp.path()).unwrap_err();
        assert!(matches!(err, DataDirError::InUse(_)), "{err}");
    }

    #[test]
    fn a_file_in_the_way_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, "x").unwrap();
        let err = DataDir::open(&file.join("data")).unwrap_err();
        assert!(err.to_string().contains("cannot create it"), "{err}");
    }
}
