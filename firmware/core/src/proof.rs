//! Merkle proofs for audits: that a segment at an index belongs to an
//! object's root.
//!
//! Wire encoding, version 1 (integers little-endian):
//!
//! ```text
//! version u8 = 1 | index u64 | count u64 | n u8 | n × 32-byte sibling hashes (bottom up)
//! ```
//!
//! `n` must be exactly the path length for (index, count), and count is at
//! most [`MAX_SEGMENT_COUNT`], so a proof is at most 978 bytes and
//! [`MAX_PROOF_LEN`] rejects anything longer before it is looked at.

use rs_merkle::MerkleProof;

use crate::format::{short, Descriptor, FormatError, MAX_SEGMENT_COUNT};
use crate::merkle::{leaf_hash, proof_len, root_from_path, tree_height, Blake3Hasher, Hash};

/// Proof encoding version this build writes and reads.
pub const PROOF_VERSION: u8 = 1;
/// Largest encoded proof accepted.
pub const MAX_PROOF_LEN: usize = 1024;
/// Most sibling hashes a proof can carry (tree height at
/// [`MAX_SEGMENT_COUNT`] leaves).
pub const MAX_PROOF_HASHES: usize = 30;
const FIXED_LEN: usize = 1 + 8 + 8 + 1;

/// A Merkle proof for one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Segment index.
    pub index: u64,
    /// Segments in the object.
    pub count: u64,
    /// Sibling hashes from the leaf's level up.
    pub siblings: Vec<Hash>,
}

/// Why bytes are not a proof.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ProofDecodeError {
    /// More bytes than any valid proof.
    #[error("proof of {0} bytes is over the {MAX_PROOF_LEN}-byte limit")]
    TooLong(usize),
    /// No bytes, or fewer than the fixed fields.
    #[error("proof of {0} bytes is shorter than its {FIXED_LEN}-byte header")]
    TooShort(usize),
    /// A version this build does not read.
    #[error(
        "proof encoding version {0} is not supported (this build reads version {PROOF_VERSION})"
    )]
    UnknownVersion(u8),
    /// Count of 0 or above [`MAX_SEGMENT_COUNT`], or index not below count.
    #[error("proof for segment {index} of {count} segments names no segment of a valid object")]
    BadPosition {
        /// Index in the proof.
        index: u64,
        /// Count in the proof.
        count: u64,
    },
    /// The hash count does not match the path length of the position.
    #[error(
        "proof for segment {index} of {count} carries {got} hashes, that position needs {expected}"
    )]
    HashCount {
        /// Index in the proof.
        index: u64,
        /// Count in the proof.
        count: u64,
        /// Hashes the position needs.
        expected: usize,
        /// Hashes declared.
        got: usize,
    },
    /// The byte length does not match the declared hash count.
    #[error("proof declares {hashes} hashes ({expected} bytes) but is {got} bytes")]
    Length {
        /// Hashes declared.
        hashes: usize,
        /// Bytes that many hashes need.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

/// Why a segment did not verify against an object's root.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum VerifyError {
    /// The descriptor is not usable.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The proof is for another segment than the one challenged.
    #[error("proof is for segment {got}, segment {expected} of object {} was challenged", short(.root))]
    WrongIndex {
        /// Root of the object.
        root: Hash,
        /// Challenged index.
        expected: u64,
        /// Index in the proof.
        got: u64,
    },
    /// The proof's segment count is not the object's.
    #[error("proof says {got} segments, object {} has {expected}", short(.root))]
    WrongCount {
        /// Root of the object.
        root: Hash,
        /// Segments in the object.
        expected: u64,
        /// Segments in the proof.
        got: u64,
    },
    /// The segment has the wrong length for its index.
    #[error("segment {index} of object {} is {got} bytes sealed, it should be {expected}", short(.root))]
    SegmentLength {
        /// Root of the object.
        root: Hash,
        /// Segment index.
        index: u64,
        /// Sealed length it should have.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The segment and proof do not hash to the root.
    #[error("segment {index} of object {} failed verification: it does not hash to the root", short(.root))]
    RootMismatch {
        /// Root of the object.
        root: Hash,
        /// Segment index.
        index: u64,
    },
}

impl Proof {
    /// The version-1 encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.siblings.len() * 32);
        out.push(PROOF_VERSION);
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        // A proof built by this crate has at most 30 hashes.
        out.push(self.siblings.len().min(u8::MAX as usize) as u8);
        for s in &self.siblings {
            out.extend_from_slice(s);
        }
        out
    }

    /// Decodes a proof received from a peer, checking every length before
    /// using it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Proof, ProofDecodeError> {
        if bytes.len() > MAX_PROOF_LEN {
            return Err(ProofDecodeError::TooLong(bytes.len()));
        }
        if bytes.len() < FIXED_LEN {
            return Err(ProofDecodeError::TooShort(bytes.len()));
        }
        if bytes[0] != PROOF_VERSION {
            return Err(ProofDecodeError::UnknownVersion(bytes[0]));
        }
        let index = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let count = u64::from_le_bytes(bytes[9..17].try_into().expect("8 bytes"));
        if count == 0 || count > MAX_SEGMENT_COUNT || index >= count {
            return Err(ProofDecodeError::BadPosition { index, count });
        }
        let hashes = usize::from(bytes[17]);
        let expected = proof_len(index, count);
        if hashes != expected {
            return Err(ProofDecodeError::HashCount {
                index,
                count,
                expected,
                got: hashes,
            });
        }
        let body = &bytes[FIXED_LEN..];
        if body.len() != hashes * 32 {
            return Err(ProofDecodeError::Length {
                hashes,
                expected: FIXED_LEN + hashes * 32,
                got: bytes.len(),
            });
        }
        let siblings = body
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        Ok(Proof {
            index,
            count,
            siblings,
        })
    }

    /// Whether `leaf` at this proof's position hashes to `root`.
    ///
    /// Walks the path without allocating (an audit verifier may check many
    /// answers a second); the unit tests check that it accepts exactly what
    /// rs_merkle's `MerkleProof::verify` accepts for the same tree.
    pub fn verify_leaf(&self, leaf: &Hash, root: &Hash) -> bool {
        if self.count == 0
            || self.count > MAX_SEGMENT_COUNT
            || self.siblings.len() > MAX_PROOF_HASHES
        {
            return false;
        }
        root_from_path(leaf, self.index, self.count, &self.siblings).as_ref() == Some(root)
    }

    /// The same check done by rs_merkle's `MerkleProof::verify`; slower
    /// (it allocates per level), kept as the reference the fast path is
    /// tested against.
    pub fn verify_leaf_with_rs_merkle(&self, leaf: &Hash, root: &Hash) -> bool {
        if self.count == 0
            || self.index >= self.count
            || self.siblings.len() != proof_len(self.index, self.count)
            || tree_height(self.count) as usize > MAX_PROOF_HASHES
        {
            return false;
        }
        let (Ok(index), Ok(count)) = (usize::try_from(self.index), usize::try_from(self.count))
        else {
            return false;
        };
        MerkleProof::<Blake3Hasher>::new(self.siblings.clone()).verify(
            *root,
            &[index],
            &[*leaf],
            count,
        )
    }
}

/// Checks an audit answer: `sealed` is segment `index` of the object that
/// `descriptor` describes, by `proof`.
pub fn verify_segment(
    descriptor: &Descriptor,
    index: u64,
    sealed: &[u8],
    proof: &Proof,
) -> Result<(), VerifyError> {
    let layout = descriptor.layout()?;
    let root = descriptor.root;
    if proof.index != index {
        return Err(VerifyError::WrongIndex {
            root,
            expected: index,
            got: proof.index,
        });
    }
    if proof.count != layout.segment_count() {
        return Err(VerifyError::WrongCount {
            root,
            expected: layout.segment_count(),
            got: proof.count,
        });
    }
    if index >= layout.segment_count() {
        return Err(VerifyError::RootMismatch { root, index });
    }
    let expected = layout.sealed_len(index);
    if sealed.len() != expected {
        return Err(VerifyError::SegmentLength {
            root,
            index,
            expected,
            got: sealed.len(),
        });
    }
    if !proof.verify_leaf(&leaf_hash(sealed), &root) {
        return Err(VerifyError::RootMismatch { root, index });
    }
    Ok(())
}
