//! The blake3 Merkle tree over an object's sealed segments.
//!
//! Leaves and inner nodes are hashed with different one-byte prefixes
//! (RFC 6962 style) so that an inner node can never be passed off as a leaf
//! and a proof cannot be shortened. The tree shape is rs_merkle's: nodes are
//! paired left to right on each level and an odd last node is carried up
//! unchanged, which is the same shape as RFC 6962's "split at the largest
//! power of two".

use rs_merkle::Hasher;

/// A blake3 digest: leaves, inner nodes and roots.
pub type Hash = [u8; 32];

/// Prefix of a leaf hash input.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an inner-node hash input.
pub const INNER_PREFIX: u8 = 0x01;

/// The leaf hash of one sealed segment: `blake3(0x00 ‖ sealed)`.
pub fn leaf_hash(sealed: &[u8]) -> Hash {
    let mut h = leaf_hasher();
    h.update(sealed);
    *h.finalize().as_bytes()
}

/// [`leaf_hash`] fed piece by piece: `leaf_hasher()`, `update` with the
/// segment's bytes as they arrive, `finalize`. For a receiver that would
/// otherwise copy every segment together before hashing it.
pub fn leaf_hasher() -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(&[LEAF_PREFIX]);
    h
}

/// An inner node: `blake3(0x01 ‖ left ‖ right)`.
pub fn inner_hash(left: &Hash, right: &Hash) -> Hash {
    let mut input = [0u8; 65];
    input[0] = INNER_PREFIX;
    input[1..33].copy_from_slice(left);
    input[33..].copy_from_slice(right);
    *blake3::hash(&input).as_bytes()
}

/// rs_merkle's view of our hashing: `hash` is the leaf hash and
/// `concat_and_hash` the prefixed inner hash, carrying an odd node up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Blake3Hasher;

impl Hasher for Blake3Hasher {
    type Hash = Hash;

    fn hash(data: &[u8]) -> Hash {
        leaf_hash(data)
    }

    fn concat_and_hash(left: &Hash, right: Option<&Hash>) -> Hash {
        match right {
            Some(right) => inner_hash(left, right),
            None => *left,
        }
    }
}

/// Computes the root of a stream of leaves in O(log n) memory, so that a
/// sealer or opener never keeps all leaves of a large object.
#[derive(Clone, Debug, Default)]
pub struct RootBuilder {
    /// Roots of perfect subtrees, oldest (largest) first, with their height.
    stack: Vec<(u32, Hash)>,
    count: u64,
}

impl RootBuilder {
    /// An empty builder.
    pub fn new() -> RootBuilder {
        RootBuilder::default()
    }

    /// Adds the next leaf.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, inner_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.count += 1;
    }

    /// How many leaves were pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The root of the leaves pushed so far; `None` when there are none.
    pub fn root(&self) -> Option<Hash> {
        let mut nodes = self.stack.iter().rev();
        let mut acc = nodes.next()?.1;
        for (_, left) in nodes {
            acc = inner_hash(left, &acc);
        }
        Some(acc)
    }
}

/// Number of levels above the leaves in a tree of `count` leaves: the
/// longest proof has this many hashes.
pub fn tree_height(count: u64) -> u32 {
    if count <= 1 {
        0
    } else {
        64 - (count - 1).leading_zeros()
    }
}

/// Number of sibling hashes in the proof of leaf `index` of `count`: levels
/// where the node is an odd last one carried up have no sibling.
pub fn proof_len(index: u64, count: u64) -> usize {
    let mut len = 0;
    let (mut i, mut n) = (index, count);
    while n > 1 {
        if (i ^ 1) < n {
            len += 1;
        }
        i >>= 1;
        n = n.div_ceil(2);
    }
    len
}

/// Recomputes the root from leaf `index` of `count` and its siblings (bottom
/// up); `None` when the number of siblings does not fit the position.
pub fn root_from_path(leaf: &Hash, index: u64, count: u64, siblings: &[Hash]) -> Option<Hash> {
    if index >= count {
        return None;
    }
    let mut acc = *leaf;
    let mut rest = siblings.iter();
    let (mut i, mut n) = (index, count);
    while n > 1 {
        let sibling = i ^ 1;
        if sibling < n {
            let s = rest.next()?;
            acc = if i & 1 == 0 {
                inner_hash(&acc, s)
            } else {
                inner_hash(s, &acc)
            };
        }
        i >>= 1;
        n = n.div_ceil(2);
    }
    if rest.next().is_some() {
        return None;
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rs_merkle::{MerkleProof, MerkleTree};

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn streaming_root_equals_rs_merkle_root() {
        for n in 1..=70 {
            let l = leaves(n);
            let mut b = RootBuilder::new();
            l.iter().for_each(|x| b.push(*x));
            let tree = MerkleTree::<Blake3Hasher>::from_leaves(&l);
            assert_eq!(b.root(), tree.root(), "{n} leaves");
            assert_eq!(b.count(), n as u64);
        }
        assert_eq!(RootBuilder::new().root(), None);
    }

    #[test]
    fn our_paths_are_rs_merkle_proofs() {
        for n in 1..=40usize {
            let l = leaves(n);
            let tree = MerkleTree::<Blake3Hasher>::from_leaves(&l);
            let root = tree.root().unwrap();
            for i in 0..n {
                let proof = tree.proof(&[i]);
                let path = proof.proof_hashes();
                assert_eq!(path.len(), proof_len(i as u64, n as u64), "{i}/{n}");
                assert_eq!(root_from_path(&l[i], i as u64, n as u64, path), Some(root));
                let again = MerkleProof::<Blake3Hasher>::new(path.to_vec());
                assert!(again.verify(root, &[i], &[l[i]], n));
                // The wrong leaf or position never gives the root.
                let other = (i + 1) % n;
                if other != i {
                    assert_ne!(
                        root_from_path(&l[other], i as u64, n as u64, path),
                        Some(root)
                    );
                }
            }
            assert!(proof_len(0, n as u64) <= tree_height(n as u64) as usize);
        }
    }

    #[test]
    fn an_inner_node_is_not_a_leaf() {
        let l = leaves(2);
        let mut joined = Vec::new();
        joined.extend_from_slice(&l[0]);
        joined.extend_from_slice(&l[1]);
        assert_ne!(leaf_hash(&joined), inner_hash(&l[0], &l[1]));
    }

    #[test]
    fn wrong_path_length_is_refused() {
        let l = leaves(5);
        assert_eq!(root_from_path(&l[0], 0, 5, &[]), None);
        assert_eq!(root_from_path(&l[0], 5, 5, &[]), None);
        assert_eq!(root_from_path(&l[0], 0, 1, &[l[1]]), None);
        assert_eq!(root_from_path(&l[0], 0, 1, &[]), Some(l[0]));
    }
}
