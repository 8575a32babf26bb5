//! Owner labels: what the owner needs to rebuild its record of one replica
//! when every copy of its manifest is gone.
//!
//! Without MANIFEST.db the owner cannot derive replica keys: the object id,
//! the replica index, the layout and the path live only there. So every
//! contract carries a small label sealed by the owner (XChaCha20-Poly1305
//! under a key derived from the manifest key with its own context string,
//! associated data = the contract id), holding exactly that. The host keeps
//! it beside the object and gives it back on `/bunker/holdings/1`, to the
//! owner's PeerId only. Same words ⇒ same label key, so a new box with the
//! owner's words can open every label and rebuild files, replicas and
//! contracts from them (`recovery::from_labels`).
//!
//! A label that does not open, or that disagrees with the signed terms it
//! came with, is never trusted. [`seal`] is the one function that builds a
//! label; placement calls it for every contract it proposes (first copies,
//! repairs, raised redundancy).

use bunker_core::{FileId, Keys, Layout};
use bunker_manifest::{FilePath, FileRecord};
use bunker_net::{Id32, MAX_OWNER_LABEL};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// Context of the label key: `derive_key(LABEL_CONTEXT, manifest key)`.
/// Part of the stored format: changing it makes every label unreadable.
pub(crate) const LABEL_CONTEXT: &str = "bunker 2026-11 owner label key";
/// Associated-data prefix: binds the format version and the purpose.
const AAD_PREFIX: &[u8] = b"bunker owner label v1\0";
/// Version byte inside the sealed plaintext.
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Plaintext bytes besides the path: version, object id, replica index,
/// root, plain bytes, segment size, blake3, keep-local, redundancy,
/// created, modified, path length.
const FIXED_LEN: usize = 1 + 16 + 4 + 32 + 8 + 4 + 32 + 1 + 1 + 8 + 8 + 2;
/// Longest path (bytes) a label holds: what the 1 KiB cap leaves.
pub const MAX_LABEL_PATH: usize = MAX_OWNER_LABEL - NONCE_LEN - TAG_LEN - FIXED_LEN;

/// What a label says about the file, the same for all its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileFacts {
    /// The object id every replica key derives from.
    pub(crate) object_id: FileId,
    /// Where the file sits in the tree.
    pub(crate) path: FilePath,
    /// Plaintext size and segment size.
    pub(crate) layout: Layout,
    /// blake3 of the plaintext, to check a restore end to end.
    pub(crate) plaintext_blake3: [u8; 32],
    /// Whether the owner keeps a local copy.
    pub(crate) keep_local: bool,
    /// Remote copies the owner asked for.
    pub(crate) redundancy: u8,
    /// When the file was added.
    pub(crate) created_at: i64,
    /// When its content last changed.
    pub(crate) modified_at: i64,
}

impl FileFacts {
    /// The facts of a recorded file (repair, raised redundancy).
    pub(crate) fn of_record(f: &FileRecord) -> Result<FileFacts, String> {
        Ok(FileFacts {
            object_id: f.object_id,
            path: FilePath::parse(&f.path).map_err(|e| e.to_string())?,
            layout: Layout::new(f.size, f.segment_size).map_err(|e| e.to_string())?,
            plaintext_blake3: f.plaintext_blake3,
            keep_local: f.keep_local,
            redundancy: f.redundancy,
            created_at: f.created_at,
            modified_at: f.modified_at,
        })
    }
}

/// Everything one label holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerLabel {
    /// The file.
    pub(crate) file: FileFacts,
    /// Which replica of it this contract covers.
    pub(crate) replica_index: u32,
    /// Merkle root of that replica (must match the signed terms).
    pub(crate) root: Id32,
}

/// Why a label was not made or not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    /// The path does not fit in a label; refused at put so that every file
    /// stays recoverable without its manifest.
    #[error("path of {len} bytes is too long to be recoverable without the manifest (at most {max} bytes)")]
    PathTooLong {
        /// Its length.
        len: usize,
        /// The most a label holds.
        max: usize,
    },
    /// Wrong size for a label.
    #[error("label of {0} bytes is not a label (at most {MAX_OWNER_LABEL}, at least {min})", min = NONCE_LEN + TAG_LEN + FIXED_LEN)]
    Size(usize),
    /// It does not open under this box's label key with this contract id:
    /// made by other words, for another contract, or altered.
    #[error("label does not open with this box's key for this contract")]
    Open,
    /// It opened but its content is not valid.
    #[error("label content is not valid: {0}")]
    Content(String),
}

/// The label key: derived from the manifest key, so only the words give it.
struct LabelKey([u8; 32]);

impl LabelKey {
    fn of(keys: &Keys) -> LabelKey {
        LabelKey(blake3::derive_key(LABEL_CONTEXT, keys.manifest_key().as_bytes()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl Drop for LabelKey {
    fn drop(&mut self) {
        self.0 = [0; 32];
        // Keeps the wipe from being optimised away as a dead store.
        std::hint::black_box(&self.0);
    }
}

fn aad(contract_id: &Id32) -> Vec<u8> {
    [AAD_PREFIX, contract_id.as_slice()].concat()
}

/// Refuses a path no label can hold (checked before a put seals anything).
pub(crate) fn check_path(path: &FilePath) -> Result<(), LabelError> {
    let len = path.to_path_string().len();
    if len > MAX_LABEL_PATH {
        return Err(LabelError::PathTooLong { len, max: MAX_LABEL_PATH });
    }
    Ok(())
}

/// Seals `label` for contract `contract_id`: the one place labels are made.
pub(crate) fn seal(keys: &Keys, contract_id: &Id32, label: &OwnerLabel) -> Result<Vec<u8>, LabelError> {
    let f = &label.file;
    let path = f.path.to_path_string();
    check_path(&f.path)?;
    let mut plain = Vec::with_capacity(FIXED_LEN + path.len());
    plain.push(FORMAT);
    plain.extend_from_slice(f.object_id.as_bytes());
    plain.extend_from_slice(&label.replica_index.to_le_bytes());
    plain.extend_from_slice(&label.root);
    plain.extend_from_slice(&f.layout.size().to_le_bytes());
    plain.extend_from_slice(&f.layout.segment_size().to_le_bytes());
    plain.extend_from_slice(&f.plaintext_blake3);
    plain.push(u8::from(f.keep_local));
    plain.push(f.redundancy);
    plain.extend_from_slice(&f.created_at.to_le_bytes());
    plain.extend_from_slice(&f.modified_at.to_le_bytes());
    // check_path bounds the length far below u16::MAX.
    plain.extend_from_slice(&(path.len() as u16).to_le_bytes());
    plain.extend_from_slice(path.as_bytes());
    let nonce: [u8; NONCE_LEN] = rand::random();
    let sealed = LabelKey::of(keys)
        .cipher()
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad(contract_id) })
        .map_err(|_| LabelError::Content("sealing failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    debug_assert!(out.len() <= MAX_OWNER_LABEL);
    Ok(out)
}

/// Opens a label that came back with contract `contract_id`.
pub(crate) fn open(keys: &Keys, contract_id: &Id32, bytes: &[u8]) -> Result<OwnerLabel, LabelError> {
    if bytes.len() > MAX_OWNER_LABEL || bytes.len() < NONCE_LEN + TAG_LEN + FIXED_LEN {
        return Err(LabelError::Size(bytes.len()));
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let plain = LabelKey::of(keys)
        .cipher()
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad(contract_id) })
        .map_err(|_| LabelError::Open)?;
    decode(&plain)
}

/// Reads the fixed little-endian fields; every length is checked.
fn decode(p: &[u8]) -> Result<OwnerLabel, LabelError> {
    let bad = |what: &str| LabelError::Content(what.to_string());
    if p.len() < FIXED_LEN {
        return Err(bad("too short"));
    }
    if p[0] != FORMAT {
        return Err(LabelError::Content(format!("unknown label format {}", p[0])));
    }
    let mut at = 1;
    let mut take = |n: usize| {
        let s = &p[at..at + n];
        at += n;
        s
    };
    let arr32 = |s: &[u8]| -> [u8; 32] { s.try_into().unwrap_or([0; 32]) };
    let object_id = FileId(take(16).try_into().map_err(|_| bad("object id"))?);
    let replica_index = u32::from_le_bytes(take(4).try_into().map_err(|_| bad("replica index"))?);
    let root = arr32(take(32));
    let plain_bytes = u64::from_le_bytes(take(8).try_into().map_err(|_| bad("size"))?);
    let segment_size = u32::from_le_bytes(take(4).try_into().map_err(|_| bad("segment size"))?);
    let plaintext_blake3 = arr32(take(32));
    let keep_local = match take(1)[0] {
        0 => false,
        1 => true,
        _ => return Err(bad("keep-local flag")),
    };
    let redundancy = take(1)[0];
    let created_at = i64::from_le_bytes(take(8).try_into().map_err(|_| bad("created"))?);
    let modified_at = i64::from_le_bytes(take(8).try_into().map_err(|_| bad("modified"))?);
    let path_len = usize::from(u16::from_le_bytes(take(2).try_into().map_err(|_| bad("path length"))?));
    if p.len() != FIXED_LEN + path_len {
        return Err(bad("path length does not match the label's size"));
    }
    let path = std::str::from_utf8(&p[FIXED_LEN..]).map_err(|_| bad("path is not UTF-8"))?;
    let path = FilePath::parse(path).map_err(|e| LabelError::Content(format!("path: {e}")))?;
    let layout = Layout::new(plain_bytes, segment_size).map_err(|e| LabelError::Content(format!("layout: {e}")))?;
    Ok(OwnerLabel {
        file: FileFacts { object_id, path, layout, plaintext_blake3, keep_local, redundancy, created_at, modified_at },
        replica_index,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bunker_core::Seed;

    fn label(path: &str) -> OwnerLabel {
        OwnerLabel {
            file: FileFacts {
                object_id: FileId([9; 16]),
                path: FilePath::parse(path).unwrap(),
                layout: Layout::new(100_000, 65_536).unwrap(),
                plaintext_blake3: [4; 32],
                keep_local: true,
                redundancy: 2,
                created_at: 1_700_000_000,
                modified_at: 1_700_000_100,
            },
            replica_index: 3,
            root: [5; 32],
        }
    }

    #[test]
    fn a_label_opens_with_the_same_words_and_the_same_contract_only() {
        let seed = Seed::generate();
        let keys = Keys::from_seed(&seed);
        let l = label("/photos/2026/beach.jpg");
        let sealed = seal(&keys, &[1; 32], &l).unwrap();
        assert!(sealed.len() <= MAX_OWNER_LABEL);
        let again = Keys::from_seed(&Seed::from_phrase(&seed.phrase()).unwrap());
        assert_eq!(open(&again, &[1; 32], &sealed).unwrap(), l, "same words open it");
        assert_eq!(open(&keys, &[2; 32], &sealed), Err(LabelError::Open), "bound to its contract id");
        let other = Keys::from_seed(&Seed::generate());
        assert_eq!(open(&other, &[1; 32], &sealed), Err(LabelError::Open), "other words cannot open it");
        assert_ne!(seal(&keys, &[1; 32], &l).unwrap(), sealed, "a fresh nonce every time");
    }

    #[test]
    fn a_tampered_or_truncated_label_is_refused() {
        let keys = Keys::from_seed(&Seed::generate());
        let sealed = seal(&keys, &[1; 32], &label("/a.txt")).unwrap();
        for i in [0, NONCE_LEN, sealed.len() / 2, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(open(&keys, &[1; 32], &t), Err(LabelError::Open), "byte {i} flipped");
        }
        assert!(matches!(open(&keys, &[1; 32], &sealed[..20]), Err(LabelError::Size(20))));
        assert!(matches!(open(&keys, &[1; 32], &vec![0; MAX_OWNER_LABEL + 1]), Err(LabelError::Size(_))));
        assert_eq!(open(&keys, &[1; 32], &sealed[..sealed.len() - 1]), Err(LabelError::Open));
    }

    #[test]
    fn the_longest_path_fits_and_one_byte_more_is_refused() {
        let keys = Keys::from_seed(&Seed::generate());
        // Components of at most 255 bytes (NAME_MAX).
        let fit = |len: usize| {
            let mut p = String::new();
            while p.len() < len {
                let left = len - p.len();
                let chunk = if left > 250 { 200 } else { left };
                p.push('/');
                p.push_str(&"x".repeat(chunk - 1));
            }
            assert_eq!(p.len(), len);
            p
        };
        let longest = label(&fit(MAX_LABEL_PATH));
        let sealed = seal(&keys, &[7; 32], &longest).unwrap();
        assert_eq!(sealed.len(), MAX_OWNER_LABEL, "the cap is used exactly");
        assert_eq!(open(&keys, &[7; 32], &sealed).unwrap(), longest);
        let too_long = label(&fit(MAX_LABEL_PATH + 1));
        let err = seal(&keys, &[7; 32], &too_long).unwrap_err();
        assert_eq!(err, LabelError::PathTooLong { len: MAX_LABEL_PATH + 1, max: MAX_LABEL_PATH });
        assert!(err.to_string().contains("too long"), "{err}");
        assert!(check_path(&too_long.file.path).is_err());
    }
}
