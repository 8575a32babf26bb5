//! The proof sidecar: every level of an object's Merkle tree in one file
//! beside the object, so a host answers an audit with one positioned read
//! per level instead of rehashing the object.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! 0   magic "BNKSIDE1" (8)  version u32  reserved u32  leaf count u64  root (32)  zero (8)
//! 64  level 0: the leaves, 32 bytes each
//!     level 1: ceil(n/2) parents, … up to the single root
//! ```
//!
//! The header is written last, so an interrupted build never passes for a
//! finished sidecar. For 1.6 M leaves (a 100 GiB object) the file is about
//! 100 MiB and a proof is ~21 reads of 32 bytes.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::format::{Layout, MAX_SEGMENT_COUNT, TAG_LEN};
use crate::merkle::{inner_hash, leaf_hash, Hash};
use crate::proof::Proof;
use crate::seal::LeafSink;

const MAGIC: &[u8; 8] = b"BNKSIDE1";
const VERSION: u32 = 1;
/// Bytes before level 0.
pub const HEADER_LEN: u64 = 64;
/// Leaves buffered before a write while building.
const WRITE_BUFFER_HASHES: usize = 4096;
/// Hashes read per step while building the upper levels (even, so a chunk
/// never splits a pair).
const LEVEL_CHUNK_HASHES: usize = 8192;

/// Why a sidecar could not be built or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SidecarError {
    /// Reading or writing the sidecar file failed.
    #[error("sidecar I/O: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with a finished sidecar header.
    #[error("not a finished Bunker sidecar (magic {0:02x?})")]
    BadMagic([u8; 8]),
    /// A sidecar of a version this build cannot read.
    #[error("sidecar version {0} is not supported (this build reads version {VERSION})")]
    UnknownVersion(u32),
    /// A leaf count of 0 or above the format's limit.
    #[error("sidecar holds {0} leaves, expected 1..={MAX_SEGMENT_COUNT}")]
    LeafCount(u64),
    /// The file is shorter than its leaf count needs.
    #[error("sidecar of {leaves} leaves needs {needed} bytes, the file has {len}")]
    Short {
        /// Leaves in the header.
        leaves: u64,
        /// Bytes the levels need.
        needed: u64,
        /// Bytes in the file.
        len: u64,
    },
    /// A proof was asked for a leaf the tree does not have.
    #[error("segment {index} asked, the object has {count} segments")]
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// Leaves in the tree.
        count: u64,
    },
    /// The stored object ended before its last segment.
    #[error("stored object ends inside segment {index} of {count}")]
    ObjectShort {
        /// First incomplete segment.
        index: u64,
        /// Segments the layout needs.
        count: u64,
    },
    /// The stored object has bytes after its last segment.
    #[error("stored object is longer than its {count} segments")]
    ObjectLong {
        /// Segments the layout needs.
        count: u64,
    },
    /// Leaves were pushed out of order.
    #[error("leaf {got} pushed where leaf {expected} was due")]
    OutOfOrder {
        /// Index that was due.
        expected: u64,
        /// Index that came.
        got: u64,
    },
}

/// Byte offset of each level, bottom first, for `count` leaves.
fn level_offsets(count: u64) -> Vec<(u64, u64)> {
    let mut levels = Vec::new();
    let (mut offset, mut len) = (HEADER_LEN, count);
    loop {
        levels.push((offset, len));
        if len <= 1 {
            return levels;
        }
        offset += len * 32;
        len = len.div_ceil(2);
    }
}

/// Total sidecar size for `count` leaves.
pub fn sidecar_len(count: u64) -> u64 {
    let last = *level_offsets(count).last().expect("at least one level");
    last.0 + last.1 * 32
}

/// Builds a sidecar while the object is sealed or received: push the leaves
/// in order, then [`SidecarWriter::finish`].
#[derive(Debug)]
pub struct SidecarWriter<F: Read + Write + Seek> {
    file: F,
    buffer: Vec<u8>,
    count: u64,
}

impl<F: Read + Write + Seek> SidecarWriter<F> {
    /// Starts a sidecar at the beginning of `file` (an empty file).
    pub fn new(mut file: F) -> Result<SidecarWriter<F>, SidecarError> {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&[0u8; HEADER_LEN as usize])?;
        Ok(SidecarWriter {
            file,
            buffer: Vec::with_capacity(WRITE_BUFFER_HASHES * 32),
            count: 0,
        })
    }

    /// Appends the next leaf.
    pub fn push(&mut self, leaf: &Hash) -> Result<(), SidecarError> {
        if self.count >= MAX_SEGMENT_COUNT {
            return Err(SidecarError::LeafCount(self.count + 1));
        }
        self.buffer.extend_from_slice(leaf);
        self.count += 1;
        if self.buffer.len() >= WRITE_BUFFER_HASHES * 32 {
            self.file.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Leaves pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Computes and stores the upper levels and the header; returns the
    /// root and the file.
    pub fn finish(mut self) -> Result<(Hash, F), SidecarError> {
        if self.count == 0 {
            return Err(SidecarError::LeafCount(0));
        }
        self.file.write_all(&self.buffer)?;
        self.buffer = Vec::new();
        let levels = level_offsets(self.count);
        let mut input = vec![0u8; LEVEL_CHUNK_HASHES * 32];
        let mut output = Vec::with_capacity(LEVEL_CHUNK_HASHES / 2 * 32);
        for pair in levels.windows(2) {
            let ((from, len), (to, _)) = (pair[0], pair[1]);
            let mut done = 0u64;
            let mut written = 0u64;
            while done < len {
                let take = (len - done).min(LEVEL_CHUNK_HASHES as u64) as usize;
                self.file.seek(SeekFrom::Start(from + done * 32))?;
                self.file.read_exact(&mut input[..take * 32])?;
                output.clear();
                for k in (0..take).step_by(2) {
                    let left: Hash = input[k * 32..k * 32 + 32].try_into().expect("32 bytes");
                    if k + 1 < take {
                        let right: Hash = input[k * 32 + 32..k * 32 + 64]
                            .try_into()
                            .expect("32 bytes");
                        output.extend_from_slice(&inner_hash(&left, &right));
                    } else {
                        // Odd last node of the level: carried up as is.
                        output.extend_from_slice(&left);
                    }
                }
                self.file.seek(SeekFrom::Start(to + written))?;
                self.file.write_all(&output)?;
                written += output.len() as u64;
                done += take as u64;
            }
        }
        let (top, _) = *levels.last().expect("at least one level");
        let mut root = [0u8; 32];
        self.file.seek(SeekFrom::Start(top))?;
        self.file.read_exact(&mut root)?;
        let mut header = [0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&self.count.to_le_bytes());
        header[24..56].copy_from_slice(&root);
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&header)?;
        self.file.flush()?;
        Ok((root, self.file))
    }
}

impl<F: Read + Write + Seek> LeafSink for SidecarWriter<F> {
    fn push_leaf(&mut self, index: u64, leaf: &Hash) -> io::Result<()> {
        if index != self.count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                SidecarError::OutOfOrder {
                    expected: self.count,
                    got: index,
                },
            ));
        }
        self.push(leaf).map_err(|e| match e {
            SidecarError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other),
        })
    }
}

/// Builds the sidecar of a stored object by reading its sealed bytes once,
/// as a host does for an object it received (or to rebuild a lost sidecar).
/// Returns the root, which the host compares with the contract's.
pub fn build_from_sealed<R: Read, F: Read + Write + Seek>(
    layout: &Layout,
    mut sealed: R,
    file: F,
) -> Result<(Hash, F), SidecarError> {
    let mut writer = SidecarWriter::new(file)?;
    let mut buf = vec![0u8; layout.segment_size() as usize + TAG_LEN];
    let count = layout.segment_count();
    for index in 0..count {
        let len = layout.sealed_len(index);
        let got = crate::seal::read_full(&mut sealed, &mut buf[..len])?;
        if got < len {
            return Err(SidecarError::ObjectShort { index, count });
        }
        writer.push(&leaf_hash(&buf[..len]))?;
    }
    if crate::seal::read_full(&mut sealed, &mut buf[..1])? != 0 {
        return Err(SidecarError::ObjectLong { count });
    }
    writer.finish()
}

/// Positioned reads, so that concurrent audits share one open file without
/// a seek position between them.
pub trait ReadAt {
    /// Fills `buf` from byte `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Length in bytes.
    fn size(&self) -> io::Result<u64>;
}

#[cfg(unix)]
impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(Vec::len(self) as u64)
    }
}

/// Reads sealed segment `index` of a stored object with one positioned
/// read: what a host sends with the proof to answer an audit.
pub fn read_sealed_segment<F: ReadAt + ?Sized>(
    object: &F,
    layout: &Layout,
    index: u64,
) -> Result<Vec<u8>, SidecarError> {
    if index >= layout.segment_count() {
        return Err(SidecarError::IndexOutOfRange {
            index,
            count: layout.segment_count(),
        });
    }
    let mut buf = vec![0u8; layout.sealed_len(index)];
    object
        .read_exact_at(&mut buf, layout.sealed_offset(index))
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => SidecarError::ObjectShort {
                index,
                count: layout.segment_count(),
            },
            _ => SidecarError::Io(e),
        })?;
    Ok(buf)
}

/// A finished sidecar, open for proofs.
#[derive(Debug)]
pub struct Sidecar<F: ReadAt> {
    file: F,
    count: u64,
    root: Hash,
    levels: Vec<(u64, u64)>,
}

impl<F: ReadAt> Sidecar<F> {
    /// Opens a finished sidecar, checking its header and length.
    pub fn open(file: F) -> Result<Sidecar<F>, SidecarError> {
        let mut header = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => SidecarError::BadMagic([0; 8]),
                _ => SidecarError::Io(e),
            })?;
        let magic: [u8; 8] = header[..8].try_into().expect("8 bytes");
        if &magic != MAGIC {
            return Err(SidecarError::BadMagic(magic));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(SidecarError::UnknownVersion(version));
        }
        let count = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
        if count == 0 || count > MAX_SEGMENT_COUNT {
            return Err(SidecarError::LeafCount(count));
        }
        let root: Hash = header[24..56].try_into().expect("32 bytes");
        let needed = sidecar_len(count);
        let len = file.size()?;
        if len < needed {
            return Err(SidecarError::Short {
                leaves: count,
                needed,
                len,
            });
        }
        Ok(Sidecar {
            file,
            count,
            root,
            levels: level_offsets(count),
        })
    }

    /// Leaves in the tree: the object's segment count.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The tree's root as stored.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The stored leaf hash of segment `index`, to check the object's own
    /// bytes during a scrub.
    pub fn leaf(&self, index: u64) -> Result<Hash, SidecarError> {
        if index >= self.count {
            return Err(SidecarError::IndexOutOfRange {
                index,
                count: self.count,
            });
        }
        let mut leaf = [0u8; 32];
        self.file
            .read_exact_at(&mut leaf, HEADER_LEN + index * 32)?;
        Ok(leaf)
    }

    /// The proof for segment `index`: one 32-byte read per level.
    pub fn proof(&self, index: u64) -> Result<Proof, SidecarError> {
        if index >= self.count {
            return Err(SidecarError::IndexOutOfRange {
                index,
                count: self.count,
            });
        }
        let mut siblings = Vec::with_capacity(self.levels.len());
        let mut i = index;
        for &(offset, len) in &self.levels {
            if len <= 1 {
                break;
            }
            let sibling = i ^ 1;
            if sibling < len {
                let mut hash = [0u8; 32];
                self.file.read_exact_at(&mut hash, offset + sibling * 32)?;
                siblings.push(hash);
            }
            i >>= 1;
        }
        Ok(Proof {
            index,
            count: self.count,
            siblings,
        })
    }

    /// The file, e.g. to close it explicitly.
    pub fn into_inner(self) -> F {
        self.file
    }
}
