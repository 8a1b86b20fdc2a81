//! Merkle proofs from stored nodes, in O(log n) reads.
//!
//! Key space: `n` + level (u8) + index (u64 big-endian) → the 32-byte root of the perfect
//! subtree covering leaves `[index·2^level, (index+1)·2^level)`, for every level ≥ 1 subtree
//! completed so far (the [`RootBuilder`] reports them as leaves are pushed). Level 0 is not
//! stored twice: a leaf hash is recomputed from its entry. A subtree that is not perfect (on
//! the tree's right edge) is hashed from at most log n perfect ones; a proof needs at most
//! one such subtree, so both proofs cost O(log n) reads.
//!
//! Proofs follow RFC 6962 §2.1.1 (PATH) and §2.1.2 (SUBPROOF), and are checked by the
//! verifier's code in tests, against the public vectors as well.

use evidence_verifier::entry::EntryRef;
use evidence_verifier::layout::entry_key;
use evidence_verifier::merkle::{node_hash, Hash, RootBuilder};

use crate::storage::{Storage, StorageError};

/// Prefix of stored Merkle nodes.
pub const NODE: u8 = b'n';

/// The key of the node at `level`, `index`.
pub fn node_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = NODE;
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A node or entry the tree needs is missing or malformed: the store is damaged.
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// The request names sizes or an index outside the tree.
    #[error("{0}")]
    OutOfRange(String),
}

/// Reads tree nodes from a store holding a tree of at least the sizes asked about.
#[derive(Debug)]
pub struct TreeReader<'s, S: ?Sized> {
    store: &'s S,
}

impl<'s, S: Storage + ?Sized> TreeReader<'s, S> {
    /// A reader over `store`.
    pub fn new(store: &'s S) -> Self {
        TreeReader { store }
    }

    /// The leaf hash of entry `index`.
    pub fn leaf(&self, index: u64) -> Result<Hash, ProofError> {
        let record = self
            .store
            .get(&entry_key(index))?
            .ok_or_else(|| ProofError::Damaged(format!("entry {index} is missing")))?;
        let entry = EntryRef::decode(&record).map_err(|e| ProofError::Damaged(format!("entry {index}: {e}")))?;
        Ok(entry.leaf_hash())
    }

    /// The root of the perfect subtree at `level`, `index`.
    pub fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        if level == 0 {
            return self.leaf(index);
        }
        let v = self
            .store
            .get(&node_key(level, index))?
            .ok_or_else(|| ProofError::Damaged(format!("Merkle node {level}/{index} is missing")))?;
        v.as_slice().try_into().map_err(|_| ProofError::Damaged(format!("Merkle node {level}/{index} is malformed")))
    }

    /// `MTH(D[begin:end])` for a range the RFC 6962 recursion produces (`begin` aligned).
    fn subtree(&self, begin: u64, end: u64) -> Result<Hash, ProofError> {
        let n = end - begin;
        if n.is_power_of_two() {
            let level = n.trailing_zeros() as u8;
            return self.node(level, begin >> level);
        }
        let k = split(n);
        Ok(node_hash(&self.subtree(begin, begin + k)?, &self.subtree(begin + k, end)?))
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size == 0 {
            return Ok(RootBuilder::new().root());
        }
        self.subtree(0, size)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 PATH).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if index >= size {
            return Err(ProofError::OutOfRange(format!("entry {index} is not in a tree of size {size}")));
        }
        let mut proof = Vec::new();
        let (mut begin, mut end) = (0, size);
        // Walk from the root down, collecting siblings; the proof lists them leaf first.
        while end - begin > 1 {
            let k = split(end - begin);
            if index - begin < k {
                proof.push(self.subtree(begin + k, end)?);
                end = begin + k;
            } else {
                proof.push(self.subtree(begin, begin + k)?);
                begin += k;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// The consistency proof from the tree of `size1` leaves to that of `size2` (RFC 6962
    /// SUBPROOF). Empty when the sizes are equal.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, ProofError> {
        if size1 == 0 || size1 > size2 {
            return Err(ProofError::OutOfRange(format!("no consistency proof from size {size1} to size {size2}")));
        }
        let mut proof = Vec::new();
        let (mut m, mut begin, end) = (size1, 0u64, size2);
        let mut end = end;
        let mut complete = true;
        while m != end - begin {
            let k = split(end - begin);
            if m <= k {
                proof.push(self.subtree(begin + k, end)?);
                end = begin + k;
            } else {
                proof.push(self.subtree(begin, begin + k)?);
                m -= k;
                begin += k;
                complete = false;
            }
        }
        if !complete {
            proof.push(self.subtree(begin, end)?);
        }
        proof.reverse();
        Ok(proof)
    }

    /// The perfect subtrees on the right edge of the tree of `size` leaves, largest first: what
    /// a [`RootBuilder`] needs to carry on appending.
    pub fn frontier(&self, size: u64) -> Result<RootBuilder, ProofError> {
        let mut hashes = Vec::new();
        let mut begin = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                hashes.push(self.node(level, begin >> level)?);
                begin += 1u64 << level;
            }
        }
        RootBuilder::from_frontier(size, hashes).ok_or_else(|| ProofError::Damaged("frontier size mismatch".into()))
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}
