//! Object format v1: how a file's bytes become sealed segments.
//!
//! Plaintext is cut into segments of `segment_size` bytes (the last one may
//! be shorter; an empty file is one empty segment so that every object has a
//! root). Segment `i` is sealed with XChaCha20-Poly1305 under the replica
//! key, nonce = `i` little-endian padded to 24 bytes, and associated data
//! binding the file id, replica index, `i`, the segment count, the segment
//! size and the plaintext size: a segment moved, repeated, dropped or taken
//! from another object fails authentication. A sealed segment is the
//! ciphertext followed by the 16-byte tag; the stored object is the sealed
//! segments back to back, so segment `i` is at a known offset.

use crate::keys::FileId;
use crate::merkle::Hash;

/// The object format this crate writes.
pub const FORMAT_VERSION: u8 = 1;
/// Segment size used when a file does not say otherwise.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Smallest segment size accepted: below it the tag and tree overhead
/// dominate.
pub const MIN_SEGMENT_SIZE: u32 = 64;
/// Largest segment size accepted: an audit answer carries one segment.
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;
/// Most segments one object may have; keeps every proof ≤ 30 hashes (and
/// under 1 KiB). 2^30 segments of 64 KiB is 64 TiB.
pub const MAX_SEGMENT_COUNT: u64 = 1 << 30;
/// Bytes a sealed segment adds to its plaintext (the Poly1305 tag).
pub const TAG_LEN: usize = 16;

/// Label at the start of every segment's associated data.
const AD_LABEL: &[u8; 16] = b"bunker object v1";
/// Length of the associated data of one segment.
pub(crate) const AD_LEN: usize = 16 + 16 + 4 + 8 + 8 + 4 + 8;

/// Why a set of object parameters or a stored descriptor is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum FormatError {
    /// Segment size outside [`MIN_SEGMENT_SIZE`]..=[`MAX_SEGMENT_SIZE`].
    #[error("segment size {0} is outside {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE} bytes")]
    SegmentSize(u32),
    /// The object would have more than [`MAX_SEGMENT_COUNT`] segments.
    #[error(
        "{size} bytes in segments of {segment_size} is more than {MAX_SEGMENT_COUNT} segments"
    )]
    TooManySegments {
        /// Plaintext size.
        size: u64,
        /// Segment size.
        segment_size: u32,
    },
    /// A descriptor's segment count does not follow from its size.
    #[error("descriptor says {count} segments but {size} bytes in segments of {segment_size} make {expected}")]
    CountMismatch {
        /// Count stored in the descriptor.
        count: u64,
        /// Count that the size and segment size give.
        expected: u64,
        /// Plaintext size.
        size: u64,
        /// Segment size.
        segment_size: u32,
    },
    /// A descriptor of a format version this build cannot read.
    #[error(
        "object format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnknownVersion(u8),
    /// Encoded descriptor of the wrong length.
    #[error("an encoded descriptor is {DESCRIPTOR_LEN} bytes, got {0}")]
    DescriptorLength(usize),
}

/// Sizes and positions of an object's segments, from its plaintext size and
/// segment size alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    size: u64,
    segment_size: u32,
    segment_count: u64,
}

impl Layout {
    /// The layout of `size` plaintext bytes in segments of `segment_size`.
    pub fn new(size: u64, segment_size: u32) -> Result<Layout, FormatError> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(FormatError::SegmentSize(segment_size));
        }
        let segment_count = size.div_ceil(u64::from(segment_size)).max(1);
        if segment_count > MAX_SEGMENT_COUNT {
            return Err(FormatError::TooManySegments { size, segment_size });
        }
        Ok(Layout {
            size,
            segment_size,
            segment_count,
        })
    }

    /// Plaintext size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Plaintext bytes per segment (all but the last segment).
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }

    /// Number of segments (at least 1).
    pub fn segment_count(&self) -> u64 {
        self.segment_count
    }

    /// Plaintext length of segment `index` (`index` < count).
    pub fn plain_len(&self, index: u64) -> usize {
        debug_assert!(index < self.segment_count);
        let start = index * u64::from(self.segment_size);
        (self.size.saturating_sub(start)).min(u64::from(self.segment_size)) as usize
    }

    /// Sealed length of segment `index` (`index` < count).
    pub fn sealed_len(&self, index: u64) -> usize {
        self.plain_len(index) + TAG_LEN
    }

    /// Offset of sealed segment `index` in the stored object.
    pub fn sealed_offset(&self, index: u64) -> u64 {
        index * (u64::from(self.segment_size) + TAG_LEN as u64)
    }

    /// Size of the whole stored (sealed) object.
    pub fn sealed_size(&self) -> u64 {
        self.size + self.segment_count * TAG_LEN as u64
    }
}

/// What the manifest keeps about one stored object: enough to check an
/// audit answer (root, count, sizes) and to open the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// Object format version ([`FORMAT_VERSION`]).
    pub version: u8,
    /// Merkle root over the sealed segments: names the object on the host.
    pub root: Hash,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Plaintext bytes per segment.
    pub segment_size: u32,
    /// Number of segments.
    pub segment_count: u64,
}

/// Length of [`Descriptor::to_bytes`].
pub const DESCRIPTOR_LEN: usize = 1 + 32 + 8 + 4 + 8;

impl Descriptor {
    /// Checks that the fields agree with each other and gives the layout.
    pub fn layout(&self) -> Result<Layout, FormatError> {
        if self.version != FORMAT_VERSION {
            return Err(FormatError::UnknownVersion(self.version));
        }
        let layout = Layout::new(self.size, self.segment_size)?;
        if layout.segment_count() != self.segment_count {
            return Err(FormatError::CountMismatch {
                count: self.segment_count,
                expected: layout.segment_count(),
                size: self.size,
                segment_size: self.segment_size,
            });
        }
        Ok(layout)
    }

    /// Fixed-size encoding: version, root, size (LE), segment size (LE),
    /// segment count (LE).
    pub fn to_bytes(&self) -> [u8; DESCRIPTOR_LEN] {
        let mut out = [0u8; DESCRIPTOR_LEN];
        out[0] = self.version;
        out[1..33].copy_from_slice(&self.root);
        out[33..41].copy_from_slice(&self.size.to_le_bytes());
        out[41..45].copy_from_slice(&self.segment_size.to_le_bytes());
        out[45..53].copy_from_slice(&self.segment_count.to_le_bytes());
        out
    }

    /// Decodes and checks [`Descriptor::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Descriptor, FormatError> {
        let b: &[u8; DESCRIPTOR_LEN] = bytes
            .try_into()
            .map_err(|_| FormatError::DescriptorLength(bytes.len()))?;
        let mut root = [0u8; 32];
        root.copy_from_slice(&b[1..33]);
        let d = Descriptor {
            version: b[0],
            root,
            size: u64::from_le_bytes(b[33..41].try_into().expect("8 bytes")),
            segment_size: u32::from_le_bytes(b[41..45].try_into().expect("4 bytes")),
            segment_count: u64::from_le_bytes(b[45..53].try_into().expect("8 bytes")),
        };
        d.layout()?;
        Ok(d)
    }
}

/// Which replica of which file an object is: with the layout, it fixes
/// every segment's associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// The stored file version.
    pub file_id: FileId,
    /// Which of the file's replicas.
    pub replica_index: u32,
}

/// The nonce of segment `index`.
pub(crate) fn nonce(index: u64) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(&index.to_le_bytes());
    n
}

/// The associated data of segment `index`.
pub(crate) fn associated_data(object: &ObjectId, layout: &Layout, index: u64) -> [u8; AD_LEN] {
    let mut ad = [0u8; AD_LEN];
    ad[..16].copy_from_slice(AD_LABEL);
    ad[16..32].copy_from_slice(object.file_id.as_bytes());
    ad[32..36].copy_from_slice(&object.replica_index.to_le_bytes());
    ad[36..44].copy_from_slice(&index.to_le_bytes());
    ad[44..52].copy_from_slice(&layout.segment_count.to_le_bytes());
    ad[52..56].copy_from_slice(&layout.segment_size.to_le_bytes());
    ad[56..64].copy_from_slice(&layout.size.to_le_bytes());
    ad
}

/// First 8 hex digits of a root, for error messages and logs.
pub(crate) fn short(root: &Hash) -> String {
    format!("{}…", hex::encode(&root[..4]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_counts_and_offsets() {
        let l = Layout::new(0, 64).unwrap();
        assert_eq!(
            (l.segment_count(), l.plain_len(0), l.sealed_size()),
            (1, 0, 16)
        );
        let l = Layout::new(129, 64).unwrap();
        assert_eq!(l.segment_count(), 3);
        assert_eq!(
            [l.plain_len(0), l.plain_len(1), l.plain_len(2)],
            [64, 64, 1]
        );
        assert_eq!(l.sealed_offset(2), 160);
        assert_eq!(l.sealed_size(), 129 + 48);
        let l = Layout::new(128, 64).unwrap();
        assert_eq!((l.segment_count(), l.plain_len(1)), (2, 64));
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(Layout::new(1, 63), Err(FormatError::SegmentSize(63)));
        assert_eq!(
            Layout::new(1, MAX_SEGMENT_SIZE + 1),
            Err(FormatError::SegmentSize(MAX_SEGMENT_SIZE + 1))
        );
        assert!(matches!(
            Layout::new(u64::MAX, 64),
            Err(FormatError::TooManySegments { .. })
        ));
    }

    #[test]
    fn descriptor_round_trips_and_rejects_inconsistency() {
        let d = Descriptor {
            version: 1,
            root: [9; 32],
            size: 1000,
            segment_size: 64,
            segment_count: 16,
        };
        assert_eq!(Descriptor::from_bytes(&d.to_bytes()), Ok(d));
        let mut bad = d;
        bad.segment_count = 17;
        assert!(matches!(
            Descriptor::from_bytes(&bad.to_bytes()),
            Err(FormatError::CountMismatch {
                count: 17,
                expected: 16,
                ..
            })
        ));
        bad = d;
        bad.version = 2;
        assert_eq!(
            Descriptor::from_bytes(&bad.to_bytes()),
            Err(FormatError::UnknownVersion(2))
        );
        assert_eq!(
            Descriptor::from_bytes(&[1, 2]),
            Err(FormatError::DescriptorLength(2))
        );
    }
}
