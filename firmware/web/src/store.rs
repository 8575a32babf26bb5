//! The admin state that must survive a restart, kept in the data directory:
//! `admin.json` (password hash and how far first-run setup got) and
//! `pairing-code` (the code shown on the OLED while the box is unclaimed).
//!
//! Both files are 0600 and written atomically (temp file, fsync, rename),
//! so a power cut never leaves a half-claimed box: either the old file or
//! the new one is there.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// File name of the admin state inside the data directory.
pub const ADMIN_FILE: &str = "admin.json";
/// File name of the pairing code inside the data directory.
pub const PAIRING_FILE: &str = "pairing-code";

/// Letters of a pairing code: Crockford's base32 (no I, L, O, U), so that
/// what the OLED shows cannot be misread; 8 of them carry 40 bits.
const PAIRING_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a pairing code (shown as two groups of four).
pub const PAIRING_LEN: usize = 8;

/// Why the admin state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The file exists but is not admin state this version understands.
    #[error("{path} is not valid admin state: {message} (move it away to claim the box again)")]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
}

/// How far first-run setup got, and the password hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRecord {
    /// Format version of this file.
    pub version: u32,
    /// The admin password as an argon2id PHC string; `None` while unclaimed.
    pub password_hash: Option<String>,
    /// The 24 words were shown (once); they are never shown again.
    pub words_shown: bool,
    /// Word positions (1-based) the owner must give back, picked when the
    /// words were shown and kept, so reloading the page does not reroll them.
    pub quiz_positions: Vec<u8>,
    /// The owner gave the asked words back correctly: setup is done.
    pub setup_complete: bool,
}

impl AdminRecord {
    /// Whether someone has claimed the box (set the password).
    pub fn claimed(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// Reads `admin.json` from `dir`; a missing file is an unclaimed box.
pub fn load(dir: &Path) -> Result<AdminRecord, StoreError> {
    let path = dir.join(ADMIN_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let record: AdminRecord = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt { path: path.clone(), message: e.to_string() })?;
            if record.version != 1 {
                return Err(StoreError::Corrupt { path, message: format!("unknown version {}", record.version) });
            }
            Ok(record)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AdminRecord { version: 1, ..AdminRecord::default() }),
        Err(source) => Err(StoreError::Io { path, what: "cannot read it", source }),
    }
}

/// Writes `record` to `admin.json` in `dir`, atomically, mode 0600.
pub fn save(dir: &Path, record: &AdminRecord) -> Result<(), StoreError> {
    let path = dir.join(ADMIN_FILE);
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| StoreError::Corrupt { path: path.clone(), message: e.to_string() })?;
    write_private(&path, &json).map_err(|source| StoreError::Io { path, what: "cannot write it", source })
}

/// Reads the pairing code, creating one if there is none yet.
pub fn load_or_create_pairing_code(dir: &Path) -> Result<String, StoreError> {
    let path = dir.join(PAIRING_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let code = normalize_pairing_code(&text);
            if code.len() == PAIRING_LEN {
                return Ok(code);
            }
            tracing::warn!(file = %path.display(), "pairing code file was unreadable; making a new code");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(StoreError::Io { path, what: "cannot read it", source }),
    }
    let mut rng = rand::rngs::OsRng;
    let code: String =
        (0..PAIRING_LEN).map(|_| PAIRING_ALPHABET[rng.gen_range(0..PAIRING_ALPHABET.len())] as char).collect();
    write_private(&path, code.as_bytes()).map_err(|source| StoreError::Io { path, what: "cannot write it", source })?;
    Ok(code)
}

/// Deletes the pairing code: once the box is claimed it opens nothing.
pub fn remove_pairing_code(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(PAIRING_FILE);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io { path, what: "cannot remove it", source }),
    }
}

/// A code as typed by a person, in the form it is stored: capitals, no
/// spaces or dashes, and the letters people confuse with digits mapped to
/// the digit (O→0, I and L→1), as Crockford's base32 says.
pub fn normalize_pairing_code(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// The code grouped for reading off a screen: `ABCD-EFGH`.
pub fn display_pairing_code(code: &str) -> String {
    if code.len() == PAIRING_LEN && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// Writes `bytes` to `path` with mode 0600: temp file, fsync, rename, fsync
/// of the directory, so a power cut leaves the old file or the new one,
/// never half of either. The one writer of the box's private files (admin
/// record, pairing code, and bunkerd's seed file).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_file_is_an_unclaimed_box_and_a_saved_record_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = load(dir.path()).unwrap();
        assert!(!fresh.claimed());
        let record = AdminRecord {
            version: 1,
            password_hash: Some("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
            words_shown: true,
            quiz_positions: vec![3, 11, 20],
            setup_complete: false,
        };
        save(dir.path(), &record).unwrap();
        assert_eq!(load(dir.path()).unwrap(), record);
        let mode = fs::metadata(dir.path().join(ADMIN_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_admin_file_is_an_error_naming_the_file_not_an_open_box() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(ADMIN_FILE), "{\"version\":1,").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(ADMIN_FILE), "{err}");
        fs::write(dir.path().join(ADMIN_FILE), "{\"version\":7,\"password_hash\":null,\"words_shown\":false,\"quiz_positions\":[],\"setup_complete\":false}").unwrap();
        assert!(load(dir.path()).unwrap_err().to_string().contains("unknown version 7"));
    }

    #[test]
    fn the_pairing_code_is_private_stable_and_removable() {
        let dir = tempfile::tempdir().unwrap();
        let code = load_or_create_pairing_code(dir.path()).unwrap();
        assert_eq!(code.len(), PAIRING_LEN);
        assert!(code.bytes().all(|b| PAIRING_ALPHABET.contains(&b)), "{code}");
        let mode = fs::metadata(dir.path().join(PAIRING_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_pairing_code(dir.path()).unwrap(), code);
        remove_pairing_code(dir.path()).unwrap();
        assert!(!dir.path().join(PAIRING_FILE).exists());
        remove_pairing_code(dir.path()).unwrap();
        assert_ne!(load_or_create_pairing_code(dir.path()).unwrap(), "");
    }

    #[test]
    fn typed_codes_forgive_case_dashes_spaces_and_look_alike_letters() {
        assert_eq!(normalize_pairing_code(" ab1o-xyzl "), "AB10XYZ1");
        assert_eq!(normalize_pairing_code("I0"), "10");
        assert_eq!(display_pairing_code("ABCDEFGH"), "ABCD-EFGH");
    }
}
