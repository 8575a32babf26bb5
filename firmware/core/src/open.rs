//! The streaming opener: sealed segments in, verified plaintext out.
//!
//! Every segment is authenticated before any of its bytes are written, so
//! no unverified plaintext ever leaves. Because each segment's associated
//! data binds its index and the segment count, a segment in the wrong place
//! fails authentication; the opener then looks a little further to tell the
//! caller what happened (flipped bits, a dropped, duplicated or reordered
//! segment, or a truncated object) and names the segment.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};

use crate::format::{
    associated_data, nonce, short, Descriptor, FormatError, Layout, ObjectId, TAG_LEN,
};
use crate::keys::ReplicaKey;
use crate::merkle::{leaf_hash, Hash, RootBuilder};
use crate::seal::read_full;

/// How many positions around a failing segment are tried to find which
/// segment is there instead. Bounds the work an attacker can cause.
const SEARCH_WINDOW: u64 = 16;
/// How many following segments are read to tell a dropped segment from a
/// reordered one.
const LOOKAHEAD: u64 = 64;

/// Why an object could not be opened. Every variant names the object (first
/// hex digits of its root) and the segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The descriptor is not usable.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Reading the sealed stream failed.
    #[error("reading segment {index} of object {}: {source}", short(.root))]
    Read {
        /// Root of the object.
        root: Hash,
        /// Segment being read.
        index: u64,
        /// The reader's error.
        source: io::Error,
    },
    /// Writing plaintext failed.
    #[error("writing plaintext of segment {index} of object {}: {source}", short(.root))]
    Write {
        /// Root of the object.
        root: Hash,
        /// Segment being written.
        index: u64,
        /// The writer's error.
        source: io::Error,
    },
    /// The segment's bytes were altered (or it is from another object).
    #[error("segment {index} of {count} of object {} failed authentication: its bytes were altered", short(.root))]
    Corrupt {
        /// Root of the object.
        root: Hash,
        /// The bad segment.
        index: u64,
        /// Segments in the object.
        count: u64,
    },
    /// A segment appears where a later one should be, and never comes back.
    #[error("segment {index} of object {} is missing: segment {found} is in its place", short(.root))]
    Dropped {
        /// Root of the object.
        root: Hash,
        /// The missing segment.
        index: u64,
        /// The segment found at its position.
        found: u64,
    },
    /// An earlier segment appears a second time.
    #[error("segment {index} of object {} appears again at position {position}", short(.root))]
    Duplicated {
        /// Root of the object.
        root: Hash,
        /// The repeated segment.
        index: u64,
        /// Where its second copy is.
        position: u64,
    },
    /// Segments are out of order.
    #[error("segment {index} of object {} is out of order: found at position {position}, segment {found} is in its place", short(.root))]
    Reordered {
        /// Root of the object.
        root: Hash,
        /// The segment that is out of place.
        index: u64,
        /// Where it was found.
        position: u64,
        /// The segment found at its position.
        found: u64,
    },
    /// The stream ended before the last segment was complete.
    #[error("object {} is truncated: segment {index} of {count} is missing or short", short(.root))]
    Truncated {
        /// Root of the object.
        root: Hash,
        /// The first segment that is not complete.
        index: u64,
        /// Segments in the object.
        count: u64,
    },
    /// Bytes follow the last segment.
    #[error("object {} has bytes after its last segment ({count} segments)", short(.root))]
    TrailingData {
        /// Root of the object.
        root: Hash,
        /// Segments in the object.
        count: u64,
    },
    /// Every segment authenticated but the tree root differs: the descriptor
    /// does not belong to these bytes.
    #[error("object {} opened but its segments hash to root {}", short(.expected), short(.computed))]
    RootMismatch {
        /// Root in the descriptor.
        expected: Hash,
        /// Root of the segments read.
        computed: Hash,
    },
}

/// Opens objects sealed under one replica key.
pub struct Opener {
    cipher: XChaCha20Poly1305,
    object: ObjectId,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("object", &self.object)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener for replica `object` sealed under `key`.
    pub fn new(key: &ReplicaKey, object: ObjectId) -> Opener {
        Opener {
            cipher: XChaCha20Poly1305::new(Key::from_slice(key.as_bytes())),
            object,
        }
    }

    /// Reads the sealed object described by `descriptor` from `input` and
    /// writes its plaintext to `output`, one verified segment at a time.
    /// Returns the number of plaintext bytes written.
    pub fn open<R: Read, W: Write>(
        &self,
        descriptor: &Descriptor,
        mut input: R,
        mut output: W,
    ) -> Result<u64, OpenError> {
        let layout = descriptor.layout()?;
        let root = descriptor.root;
        let count = layout.segment_count();
        let mut buf = vec![0u8; layout.segment_size() as usize + TAG_LEN];
        let mut tree = RootBuilder::new();
        let mut written = 0u64;
        for index in 0..count {
            let sealed_len = layout.sealed_len(index);
            let got = read_full(&mut input, &mut buf[..sealed_len]).map_err(|source| {
                OpenError::Read {
                    root,
                    index,
                    source,
                }
            })?;
            if got < sealed_len {
                return Err(self.explain_short(&layout, root, index, &mut buf[..got]));
            }
            tree.push(leaf_hash(&buf[..sealed_len]));
            if !self.open_segment(&layout, index, &mut buf[..sealed_len]) {
                let err = self.explain(&layout, root, index, &buf[..sealed_len], &mut input);
                tracing::debug!(%err, "opening failed");
                return Err(err);
            }
            let plain = &buf[..sealed_len - TAG_LEN];
            output.write_all(plain).map_err(|source| OpenError::Write {
                root,
                index,
                source,
            })?;
            written += plain.len() as u64;
        }
        let mut byte = [0u8; 1];
        match read_full(&mut input, &mut byte) {
            Ok(0) => {}
            Ok(_) => return Err(OpenError::TrailingData { root, count }),
            Err(source) => {
                return Err(OpenError::Read {
                    root,
                    index: count,
                    source,
                })
            }
        }
        output.flush().map_err(|source| OpenError::Write {
            root,
            index: count - 1,
            source,
        })?;
        let computed = tree.root().expect("an object has at least one segment");
        if computed != root {
            return Err(OpenError::RootMismatch {
                expected: root,
                computed,
            });
        }
        Ok(written)
    }

    /// Opens one segment on its own (random access, e.g. a read of part of
    /// a file): `sealed` must be exactly segment `index` of the object.
    /// Returns its plaintext; the AEAD tag authenticates it, so no proof is
    /// needed.
    pub fn open_segment_at(
        &self,
        descriptor: &Descriptor,
        index: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let layout = descriptor.layout()?;
        let (root, count) = (descriptor.root, layout.segment_count());
        if index >= count || sealed.len() != layout.sealed_len(index) {
            return Err(OpenError::Truncated {
                root,
                index: index.min(count),
                count,
            });
        }
        let mut buf = sealed.to_vec();
        if !self.open_segment(&layout, index, &mut buf) {
            return Err(OpenError::Corrupt { root, index, count });
        }
        buf.truncate(sealed.len() - TAG_LEN);
        Ok(buf)
    }

    /// Authenticates and decrypts `sealed` in place as segment `index`.
    /// On failure the buffer is left as it was.
    fn open_segment(&self, layout: &Layout, index: u64, sealed: &mut [u8]) -> bool {
        let n = sealed.len() - TAG_LEN;
        let (body, tag) = sealed.split_at_mut(n);
        let tag = *Tag::from_slice(tag);
        let ad = associated_data(&self.object, layout, index);
        self.cipher
            .decrypt_in_place_detached(XNonce::from_slice(&nonce(index)), &ad, body, &tag)
            .is_ok()
    }

    /// Whether `sealed` authenticates as segment `index`. Left untouched
    /// when it does not; decrypted in place when it does (callers only
    /// look at it again after a failure, so no copy is made).
    fn is_segment(&self, layout: &Layout, index: u64, sealed: &mut [u8]) -> bool {
        sealed.len() == layout.sealed_len(index) && self.open_segment(layout, index, sealed)
    }

    /// Which segment, near `position`, the bytes found there really are,
    /// and how many of `sealed`'s bytes it takes (a short last segment
    /// moved earlier takes fewer than were read).
    fn identify(&self, layout: &Layout, position: u64, sealed: &mut [u8]) -> Option<(u64, usize)> {
        let lo = position.saturating_sub(SEARCH_WINDOW);
        let hi = (position + SEARCH_WINDOW).min(layout.segment_count() - 1);
        (lo..=hi).filter(|&j| j != position).find_map(|j| {
            let len = layout.sealed_len(j);
            (len <= sealed.len() && self.is_segment(layout, j, &mut sealed[..len]))
                .then_some((j, len))
        })
    }

    /// The bytes at `position` failed authentication: find out why.
    fn explain<R: Read>(
        &self,
        layout: &Layout,
        root: Hash,
        position: u64,
        sealed: &[u8],
        input: &mut R,
    ) -> OpenError {
        let count = layout.segment_count();
        let stride = layout.segment_size() as usize + TAG_LEN;
        let mut bytes = sealed.to_vec();
        let mut found = self.identify(layout, position, &mut bytes);
        if found.is_none() && bytes.len() < stride {
            // The short last position may hold a full-size segment: read
            // the rest of it and look again.
            let have = bytes.len();
            bytes.resize(stride, 0);
            let got = read_full(input, &mut bytes[have..]).unwrap_or(0);
            bytes.truncate(have + got);
            found = self.identify(layout, position, &mut bytes);
        }
        match found {
            None => OpenError::Corrupt {
                root,
                index: position,
                count,
            },
            Some((found, _)) if found < position => OpenError::Duplicated {
                root,
                index: found,
                position,
            },
            Some((found, used)) => {
                // A later segment is here. If the missing one turns up
                // further on, the segments were reordered; otherwise dropped.
                let mut rest = (&bytes[used..]).chain(input);
                let want = layout.sealed_len(position);
                let mut next = vec![0u8; want];
                for ahead in 1..=LOOKAHEAD {
                    match read_full(&mut rest, &mut next) {
                        Ok(got) if got == want => {}
                        _ => break,
                    }
                    if self.is_segment(layout, position, &mut next) {
                        return OpenError::Reordered {
                            root,
                            index: position,
                            position: position + ahead,
                            found,
                        };
                    }
                }
                OpenError::Dropped {
                    root,
                    index: position,
                    found,
                }
            }
        }
    }

    /// The stream ended inside segment `position`.
    fn explain_short(
        &self,
        layout: &Layout,
        root: Hash,
        position: u64,
        partial: &mut [u8],
    ) -> OpenError {
        let count = layout.segment_count();
        // A short read that is a whole later segment (the object's last
        // one, shorter than the rest) means a segment was dropped before it.
        if !partial.is_empty()
            && position + 1 < count
            && self.is_segment(layout, count - 1, partial)
        {
            return OpenError::Dropped {
                root,
                index: position,
                found: count - 1,
            };
        }
        OpenError::Truncated {
            root,
            index: position,
            count,
        }
    }
}
