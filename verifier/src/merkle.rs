//! RFC 6962 / RFC 9162 Merkle tree hashing with SHA-256, a streaming root builder, and the
//! verification of inclusion and consistency proofs.
//!
//! Hashing: `leaf = SHA-256(0x00 || leaf bytes)`, `node = SHA-256(0x01 || left || right)`, and
//! the empty tree's root is `SHA-256("")`. Proofs are checked with the algorithms of RFC 9162
//! §2.1.3.2 and §2.1.4.2; roots and leaf hashes are compared as byte strings, so a root of
//! the wrong length simply fails to match. Producing proofs is the ledger's job, not this
//! module's. No I/O.

use sha2::{Digest as _, Sha256};

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Builds the root of a growing tree from its leaf hashes, keeping only the roots of the
/// perfect subtrees on its right edge (one per set bit of the size): O(log n) memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootBuilder {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    frontier: Vec<Hash>,
}

impl RootBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of `size` leaves given the roots of its perfect subtrees, largest first (as
    /// [`RootBuilder::frontier`] returns them). `None` if their number does not match `size`.
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Option<Self> {
        (frontier.len() == size.count_ones() as usize).then_some(RootBuilder { size, frontier })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Roots of the perfect subtrees on the right edge, largest first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// Appends a leaf hash. Returns the new perfect subtrees completed by it, as
    /// `(level, index, hash)` with level ≥ 1: what a store keeps so that proofs need no rebuild.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u8, u64, Hash)> {
        let mut completed = Vec::new();
        let mut hash = leaf;
        let mut level = 0u8;
        let mut index = self.size;
        // Every trailing one bit of the old size is a subtree that the new leaf completes.
        while index & 1 == 1 {
            let left = self.frontier.pop().expect("a set bit has a frontier subtree");
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            completed.push((level, index, hash));
        }
        self.frontier.push(hash);
        self.size += 1;
        completed
    }

    /// The root of the tree as it stands.
    pub fn root(&self) -> Hash {
        let mut iter = self.frontier.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(first) => iter.fold(*first, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// Why a proof was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The first size is larger than the second.
    #[error("tree size {size1} is larger than tree size {size2}")]
    SizesOutOfOrder {
        /// The earlier size.
        size1: u64,
        /// The later size.
        size2: u64,
    },
    /// A consistency proof from the empty tree proves nothing and is refused.
    #[error("a consistency proof from the empty tree proves nothing")]
    FromEmptyTree,
    /// The proof has more or fewer hashes than the sizes call for.
    #[error("the proof has the wrong number of hashes ({len})")]
    WrongLength {
        /// The number of hashes given.
        len: usize,
    },
    /// A proof element is not 32 bytes.
    #[error("proof hash {position} is {len} bytes, not 32")]
    BadHash {
        /// Its position in the proof.
        position: usize,
        /// Its length.
        len: usize,
    },
    /// The leaf hash is not 32 bytes.
    #[error("the leaf hash is {len} bytes, not 32")]
    BadLeafHash {
        /// Its length.
        len: usize,
    },
    /// The proof leads to a root other than the one expected.
    #[error("the proof leads to root {computed}, not the expected {expected}")]
    RootMismatch {
        /// The root the proof leads to (hex).
        computed: String,
        /// The root expected (hex).
        expected: String,
    },
}

fn check_hashes<H: AsRef<[u8]>>(proof: &[H]) -> Result<(), ProofError> {
    for (position, h) in proof.iter().enumerate() {
        let len = h.as_ref().len();
        if len != 32 {
            return Err(ProofError::BadHash { position, len });
        }
    }
    Ok(())
}

fn matches(computed: &[u8], expected: &[u8]) -> Result<(), ProofError> {
    if computed == expected {
        Ok(())
    } else {
        Err(ProofError::RootMismatch { computed: hex::encode(computed), expected: hex::encode(expected) })
    }
}

/// The root that an inclusion proof for `leaf` at `index` in a tree of `size` leads to.
pub fn root_from_inclusion_proof<H: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[H],
) -> Result<Vec<u8>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if leaf.len() != 32 {
        return Err(ProofError::BadLeafHash { len: leaf.len() });
    }
    check_hashes(proof)?;
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = leaf.to_vec();
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength { len: proof.len() });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p.as_ref(), &r).to_vec();
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p.as_ref()).to_vec();
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength { len: proof.len() });
    }
    Ok(r)
}

/// Checks that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion<H: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[H],
    root: &[u8],
) -> Result<(), ProofError> {
    matches(&root_from_inclusion_proof(index, size, leaf, proof)?, root)
}

/// Checks that the tree of `size2` leaves with `root2` extends the tree of `size1` leaves
/// with `root1`.
pub fn verify_consistency<H: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[H],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { len: proof.len() });
        }
        return matches(root1, root2);
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { len: 0 });
    }
    check_hashes(proof)?;
    // When size1 is a power of two, the old root is itself the first node of the path.
    let mut path: Vec<&[u8]> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    path.extend(proof.iter().map(AsRef::as_ref));

    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = path[0].to_vec();
    let mut sr = path[0].to_vec();
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength { len: proof.len() });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr).to_vec();
            sr = node_hash(c, &sr).to_vec();
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c).to_vec();
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength { len: proof.len() });
    }
    matches(&fr, root1)?;
    matches(&sr, root2)
}
