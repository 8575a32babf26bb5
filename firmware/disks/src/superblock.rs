//! Reading a file system's identity straight from its superblock, the way
//! blkid does, so the daemon needs neither libblkid nor udev's database.
//!
//! Only ext2/3/4 is decoded fully (UUID and label): it is the only file
//! system Bunker writes. Anything else is reported as "other" so the admin
//! page can say the disk holds data that formatting would erase.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The ext superblock starts 1024 bytes into the device.
const SB_OFFSET: u64 = 1024;
/// Bytes of the superblock we decode (magic, features, UUID, label).
const SB_LEN: usize = 0x88;
const MAGIC_AT: usize = 0x38;
const EXT_MAGIC: u16 = 0xEF53;
const COMPAT_AT: usize = 0x5C;
const INCOMPAT_AT: usize = 0x60;
const UUID_AT: usize = 0x68;
const LABEL_AT: usize = 0x78;
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;

/// The label `adopt` gives the file systems it makes; a disk whose ext4
/// carries it is a Bunker data disk and is adopted without formatting.
pub const BUNKER_LABEL: &str = "bunker-data";

/// What a superblock says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Filesystem {
    /// `ext4`, `ext3`, `ext2`, or `other`.
    pub kind: String,
    /// Lower-case hyphenated UUID as blkid prints it.
    pub uuid: String,
    /// Volume label (empty when none).
    pub label: String,
}

impl Filesystem {
    /// Whether this is a file system Bunker made (ext4 labelled `bunker-data`).
    pub fn is_bunker(&self) -> bool {
        self.kind == "ext4" && self.label == BUNKER_LABEL
    }
}

/// Reads the superblock of a device (or an image file). `Ok(None)` when the
/// device holds no ext file system we recognise; `Err` when it cannot be read.
pub fn read_ext(dev: &Path) -> std::io::Result<Option<Filesystem>> {
    let mut f = std::fs::File::open(dev)?;
    f.seek(SeekFrom::Start(SB_OFFSET))?;
    let mut sb = [0u8; SB_LEN];
    match f.read_exact(&mut sb) {
        Ok(()) => {}
        // Too small to hold a superblock: not an ext file system.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    Ok(decode(&sb))
}

/// Decodes the superblock bytes that start at offset 1024.
pub fn decode(sb: &[u8]) -> Option<Filesystem> {
    if sb.len() < SB_LEN {
        return None;
    }
    let le16 = |at: usize| u16::from_le_bytes([sb[at], sb[at + 1]]);
    let le32 = |at: usize| u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]);
    if le16(MAGIC_AT) != EXT_MAGIC {
        return None;
    }
    let compat = le32(COMPAT_AT);
    let incompat = le32(INCOMPAT_AT);
    let kind = if incompat & (INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG) != 0 {
        "ext4"
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    let u = &sb[UUID_AT..UUID_AT + 16];
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let raw = &sb[LABEL_AT..LABEL_AT + 16];
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let label = String::from_utf8_lossy(&raw[..end]).into_owned();
    Some(Filesystem {
        kind: kind.to_string(),
        uuid,
        label,
    })
}

/// Builds the first 2048 bytes of an ext4 device with the given UUID and
/// label: fake `/dev` nodes in tests.
pub fn fake_ext4_head(uuid: [u8; 16], label: &str) -> Vec<u8> {
    let mut v = vec![0u8; 2048];
    let sb = &mut v[SB_OFFSET as usize..];
    sb[MAGIC_AT..MAGIC_AT + 2].copy_from_slice(&EXT_MAGIC.to_le_bytes());
    sb[COMPAT_AT..COMPAT_AT + 4].copy_from_slice(&COMPAT_HAS_JOURNAL.to_le_bytes());
    sb[INCOMPAT_AT..INCOMPAT_AT + 4]
        .copy_from_slice(&(INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG).to_le_bytes());
    sb[UUID_AT..UUID_AT + 16].copy_from_slice(&uuid);
    let l = label.as_bytes();
    let n = l.len().min(16);
    sb[LABEL_AT..LABEL_AT + n].copy_from_slice(&l[..n]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_it_builds_and_rejects_other_bytes() {
        let head = fake_ext4_head([0x12; 16], BUNKER_LABEL);
        let fs = decode(&head[1024..]).expect("ext4");
        assert_eq!(fs.uuid, "12121212-1212-1212-1212-121212121212");
        assert!(fs.is_bunker());
        assert_eq!(decode(&[0u8; 0x88]), None);
        assert_eq!(decode(&[0u8; 10]), None);
    }
}
