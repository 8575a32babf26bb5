//! The streaming sealer: plaintext in, sealed segments and leaf hashes out.
//!
//! Memory is one segment (single core) or two batches of at most a few MiB
//! (multi-core), whatever the object's size. Both paths write the same
//! bytes: the segment's nonce and associated data depend only on its index.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rayon::prelude::*;

use crate::format::{
    associated_data, nonce, Descriptor, FormatError, Layout, ObjectId, FORMAT_VERSION, TAG_LEN,
};
use crate::keys::ReplicaKey;
use crate::merkle::{leaf_hash, Hash, RootBuilder};

/// Bytes of one multi-core batch: large enough that the join between
/// batches costs nothing next to the crypto, small enough that the two
/// batches in flight stay a few MiB (at least one segment per thread).
const BATCH_BYTES: usize = 1 << 20;
/// Most sealing threads one sealer starts.
pub const MAX_THREADS: usize = 64;
/// Most segments per thread in a batch, so that small segments still make
/// several batches (and tests with small segments exercise the pipeline).
const MAX_SEGMENTS_PER_THREAD: usize = 32;

/// Why sealing stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The object parameters are not valid.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Reading the plaintext failed.
    #[error("reading plaintext at byte {offset}: {source}")]
    Read {
        /// Offset in the plaintext where the read failed.
        offset: u64,
        /// The reader's error.
        source: io::Error,
    },
    /// The plaintext ended before the announced size.
    #[error("plaintext ended after {got} bytes but {expected} were announced")]
    InputShort {
        /// Announced size.
        expected: u64,
        /// Bytes read.
        got: u64,
    },
    /// The plaintext goes on past the announced size.
    #[error("plaintext is longer than the {expected} bytes announced")]
    InputLong {
        /// Announced size.
        expected: u64,
    },
    /// Writing a sealed segment failed.
    #[error("writing sealed segment {index}: {source}")]
    Write {
        /// Segment being written.
        index: u64,
        /// The writer's error.
        source: io::Error,
    },
    /// Recording a leaf hash (e.g. in the sidecar) failed.
    #[error("recording the leaf hash of segment {index}: {source}")]
    Leaf {
        /// Segment whose leaf was being recorded.
        index: u64,
        /// The sink's error.
        source: io::Error,
    },
    /// The worker threads could not be started.
    #[error("starting {threads} sealing threads: {reason}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// Why they could not start.
        reason: String,
    },
}

/// Where the sealer puts each leaf hash, in index order: a sidecar file on a
/// host, a list in tests, or nowhere when only the root matters.
pub trait LeafSink {
    /// Records the leaf hash of segment `index`.
    fn push_leaf(&mut self, index: u64, leaf: &Hash) -> io::Result<()>;
}

/// Keeps no leaves: only the root is wanted.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLeaves;

impl LeafSink for NoLeaves {
    fn push_leaf(&mut self, _: u64, _: &Hash) -> io::Result<()> {
        Ok(())
    }
}

impl LeafSink for Vec<Hash> {
    fn push_leaf(&mut self, _: u64, leaf: &Hash) -> io::Result<()> {
        self.push(*leaf);
        Ok(())
    }
}

impl<T: LeafSink + ?Sized> LeafSink for &mut T {
    fn push_leaf(&mut self, index: u64, leaf: &Hash) -> io::Result<()> {
        (**self).push_leaf(index, leaf)
    }
}

/// Seals one object: one replica of one file version.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    object: ObjectId,
    layout: Layout,
    threads: usize,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("object", &self.object)
            .field("layout", &self.layout)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for `size` plaintext bytes in segments of `segment_size`,
    /// single-threaded until [`Sealer::threads`] says otherwise.
    pub fn new(
        key: &ReplicaKey,
        object: ObjectId,
        size: u64,
        segment_size: u32,
    ) -> Result<Sealer, SealError> {
        let layout = Layout::new(size, segment_size)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(key.as_bytes()));
        Ok(Sealer {
            cipher,
            object,
            layout,
            threads: 1,
        })
    }

    /// Seal on `threads` cores; 0 means every core the machine has. More
    /// threads than [`MAX_THREADS`] are not started.
    pub fn threads(mut self, threads: usize) -> Sealer {
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        self.threads = threads.min(MAX_THREADS);
        self
    }

    /// The object's segment layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Seals the plaintext from `input` into `output`, sending each leaf
    /// hash to `leaves`, and returns the descriptor the manifest keeps.
    pub fn seal<R, W, L>(&self, input: R, output: W, leaves: L) -> Result<Descriptor, SealError>
    where
        R: Read + Send,
        W: Write + Send,
        L: LeafSink + Send,
    {
        let root = if self.threads <= 1 || self.layout.segment_count() < 2 {
            self.seal_one_core(input, output, leaves)?
        } else {
            self.seal_many_cores(input, output, leaves)?
        };
        tracing::debug!(
            root = %crate::format::short(&root),
            size = self.layout.size(),
            segments = self.layout.segment_count(),
            threads = self.threads,
            "sealed object"
        );
        Ok(Descriptor {
            version: FORMAT_VERSION,
            root,
            size: self.layout.size(),
            segment_size: self.layout.segment_size(),
            segment_count: self.layout.segment_count(),
        })
    }

    /// Seals like [`Sealer::seal`] and also returns the blake3 hash of the
    /// plaintext, which the manifest keeps: computed in the same pass, so a
    /// file on a slow USB disk is read only once.
    pub fn seal_and_hash<R, W, L>(
        &self,
        input: R,
        output: W,
        leaves: L,
    ) -> Result<(Descriptor, Hash), SealError>
    where
        R: Read + Send,
        W: Write + Send,
        L: LeafSink + Send,
    {
        let mut hashing = HashingReader {
            inner: input,
            hasher: blake3::Hasher::new(),
        };
        let descriptor = self.seal(&mut hashing, output, leaves)?;
        Ok((descriptor, *hashing.hasher.finalize().as_bytes()))
    }

    /// Encrypts segment `index` in place: `buf` holds its plaintext followed
    /// by `TAG_LEN` bytes of room for the tag. Returns the leaf hash.
    fn seal_segment(&self, index: u64, buf: &mut [u8]) -> Hash {
        let n = buf.len() - TAG_LEN;
        let ad = associated_data(&self.object, &self.layout, index);
        let (plain, tag_room) = buf.split_at_mut(n);
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce(index)), &ad, plain)
            // Only fails for buffers beyond 256 GiB; a segment is ≤ 16 MiB.
            .expect("a segment is far below XChaCha20-Poly1305's length limit");
        tag_room.copy_from_slice(&tag);
        leaf_hash(buf)
    }

    fn seal_one_core<R: Read, W: Write, L: LeafSink>(
        &self,
        mut input: R,
        mut output: W,
        mut leaves: L,
    ) -> Result<Hash, SealError> {
        let layout = self.layout;
        let mut buf = vec![0u8; layout.segment_size() as usize + TAG_LEN];
        let mut root = RootBuilder::new();
        let mut offset = 0u64;
        for index in 0..layout.segment_count() {
            let n = layout.plain_len(index);
            read_plain(&mut input, &mut buf[..n], &mut offset, layout.size())?;
            let sealed = &mut buf[..n + TAG_LEN];
            let leaf = self.seal_segment(index, sealed);
            output
                .write_all(sealed)
                .map_err(|source| SealError::Write { index, source })?;
            leaves
                .push_leaf(index, &leaf)
                .map_err(|source| SealError::Leaf { index, source })?;
            root.push(leaf);
        }
        expect_end(&mut input, layout.size())?;
        output.flush().map_err(|source| SealError::Write {
            index: layout.segment_count() - 1,
            source,
        })?;
        Ok(root.root().expect("an object has at least one segment"))
    }

    /// Seals batch `k` on all cores while one core also writes batch `k-1`
    /// and reads batch `k+1`, so reading and writing overlap the crypto.
    fn seal_many_cores<R, W, L>(
        &self,
        mut input: R,
        mut output: W,
        mut leaves: L,
    ) -> Result<Hash, SealError>
    where
        R: Read + Send,
        W: Write + Send,
        L: LeafSink + Send,
    {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| SealError::Threads {
                threads: self.threads,
                reason: e.to_string(),
            })?;
        let layout = self.layout;
        let stride = layout.segment_size() as usize + TAG_LEN;
        let per_batch =
            (BATCH_BYTES / stride).clamp(self.threads, self.threads * MAX_SEGMENTS_PER_THREAD);
        let mut next_index = 0u64;
        let mut offset = 0u64;
        let mut root = RootBuilder::new();
        let mut current = Batch::new(layout, per_batch);
        let mut other = Batch::new(layout, per_batch);
        current.read(&mut input, &mut next_index, &mut offset)?;
        pool.install(|| -> Result<(), SealError> {
            while current.len > 0 {
                let ((), io) = rayon::join(
                    || current.seal(self),
                    || -> Result<(), SealError> {
                        other.write(&mut output, &mut leaves, &mut root)?;
                        other.read(&mut input, &mut next_index, &mut offset)
                    },
                );
                io?;
                std::mem::swap(&mut current, &mut other);
            }
            // `other` now holds the last sealed batch.
            other.write(&mut output, &mut leaves, &mut root)
        })?;
        expect_end(&mut input, layout.size())?;
        output.flush().map_err(|source| SealError::Write {
            index: layout.segment_count() - 1,
            source,
        })?;
        Ok(root.root().expect("an object has at least one segment"))
    }
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A run of consecutive segments, each in a slot of `segment_size + TAG_LEN`.
struct Batch {
    layout: Layout,
    data: Vec<u8>,
    leaves: Vec<Hash>,
    first: u64,
    len: usize,
}

impl Batch {
    fn new(layout: Layout, segments: usize) -> Batch {
        let stride = layout.segment_size() as usize + TAG_LEN;
        Batch {
            layout,
            data: vec![0u8; stride * segments],
            leaves: vec![[0u8; 32]; segments],
            first: 0,
            len: 0,
        }
    }

    fn stride(&self) -> usize {
        self.layout.segment_size() as usize + TAG_LEN
    }

    /// Fills the batch with the next segments' plaintext (none at the end).
    fn read<R: Read>(
        &mut self,
        input: &mut R,
        next_index: &mut u64,
        offset: &mut u64,
    ) -> Result<(), SealError> {
        let stride = self.stride();
        let capacity = self.leaves.len();
        self.first = *next_index;
        self.len = 0;
        while self.len < capacity && *next_index < self.layout.segment_count() {
            let n = self.layout.plain_len(*next_index);
            let start = self.len * stride;
            read_plain(
                input,
                &mut self.data[start..start + n],
                offset,
                self.layout.size(),
            )?;
            self.len += 1;
            *next_index += 1;
        }
        Ok(())
    }

    fn seal(&mut self, sealer: &Sealer) {
        let stride = self.stride();
        let (first, len, layout) = (self.first, self.len, self.layout);
        self.data[..stride * len]
            .par_chunks_mut(stride)
            .zip(self.leaves[..len].par_iter_mut())
            .enumerate()
            .for_each(|(k, (slot, leaf))| {
                let index = first + k as u64;
                *leaf = sealer.seal_segment(index, &mut slot[..layout.sealed_len(index)]);
            });
    }

    /// Writes the sealed segments (contiguous: only the object's last
    /// segment is short, and it ends its batch) and records their leaves.
    fn write<W: Write, L: LeafSink>(
        &mut self,
        output: &mut W,
        leaves: &mut L,
        root: &mut RootBuilder,
    ) -> Result<(), SealError> {
        if self.len == 0 {
            return Ok(());
        }
        let last = self.first + self.len as u64 - 1;
        let bytes = (self.len - 1) * self.stride() + self.layout.sealed_len(last);
        output
            .write_all(&self.data[..bytes])
            .map_err(|source| SealError::Write {
                index: self.first,
                source,
            })?;
        for (k, leaf) in self.leaves[..self.len].iter().enumerate() {
            let index = self.first + k as u64;
            leaves
                .push_leaf(index, leaf)
                .map_err(|source| SealError::Leaf { index, source })?;
            root.push(*leaf);
        }
        self.len = 0;
        Ok(())
    }
}

/// Fills `buf` from `input`; a short read is [`SealError::InputShort`].
fn read_plain<R: Read>(
    input: &mut R,
    buf: &mut [u8],
    offset: &mut u64,
    size: u64,
) -> Result<(), SealError> {
    let got = read_full(input, buf).map_err(|source| SealError::Read {
        offset: *offset,
        source,
    })?;
    *offset += got as u64;
    if got < buf.len() {
        return Err(SealError::InputShort {
            expected: size,
            got: *offset,
        });
    }
    Ok(())
}

/// After the announced size, the input must be at its end.
fn expect_end<R: Read>(input: &mut R, size: u64) -> Result<(), SealError> {
    let mut byte = [0u8; 1];
    match read_full(input, &mut byte) {
        Ok(0) => Ok(()),
        Ok(_) => Err(SealError::InputLong { expected: size }),
        Err(source) => Err(SealError::Read {
            offset: size,
            source,
        }),
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
