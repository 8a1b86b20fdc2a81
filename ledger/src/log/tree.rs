//! The Merkle tree's stored nodes, packed in tiles, and proofs from them in O(log n) reads.
//!
//! Key space: `n` + level (u8) + tile (u64 big-endian) → up to [`TILE`] consecutive 32-byte
//! hashes at that level: hash `i` of a tile at level `l`, tile `t` is the root of the perfect
//! subtree over leaves `[(64t+i)·2^l, (64t+i+1)·2^l)`. Level 0 holds the leaf hashes. The last
//! tile of each level fills up over several batches and is rewritten as it grows; every other
//! tile is written once, whole. Packing 64 hashes (2 KB) to a value keeps the per-entry write
//! cost near zero while keeping sled's nodes small.
//!
//! A subtree that is not perfect (on the tree's right edge) is hashed from at most log n
//! perfect ones; a proof needs at most one such subtree, so both proofs cost O(log n) reads.
//! Proofs follow RFC 6962 §2.1.1 (PATH) and §2.1.2 (SUBPROOF), and are checked by the
//! verifier's code in tests.

use evidence_verifier::merkle::{node_hash, Hash, RootBuilder};

use crate::error::ErrorKind;
use crate::store::keyspace::NODE;
use crate::store::{Storage, StorageError, WriteBatch};

/// Hashes per tile.
pub(crate) const TILE: u64 = 64;
// A full tile is what the storage keeps out of sled (`store::filed`).
const _: () = assert!(TILE as usize * 32 == crate::store::keyspace::FULL_TILE_BYTES);

/// The key of tile `tile` at `level`.
pub(crate) fn tile_key(level: u8, tile: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = NODE;
    k[1] = level;
    k[2..].copy_from_slice(&tile.to_be_bytes());
    k
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A node the tree needs is missing or malformed: the store is damaged.
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// The request names sizes or an index outside the tree.
    #[error("{0}")]
    OutOfRange(String),
}

impl ProofError {
    /// Which kind of failure.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            ProofError::Storage(e) => e.kind(),
            ProofError::Damaged(_) => ErrorKind::Damaged,
            ProofError::OutOfRange(_) => ErrorKind::Caller,
        }
    }
}

/// The last, partly filled tile of every level, kept in memory by the single writer and
/// written with each batch that adds to it.
#[derive(Clone, Debug, Default)]
pub(crate) struct TileWriter {
    /// Per level: hashes at that level so far, and the bytes of its unfinished last tile.
    levels: Vec<(u64, Vec<u8>, bool)>,
}

impl TileWriter {
    /// The writer for a tree of `size` leaves, reading the unfinished tiles from the store.
    pub(crate) fn load<S: Storage + ?Sized>(store: &S, size: u64) -> Result<Self, ProofError> {
        let mut levels = Vec::new();
        for level in 0..64u8 {
            let count = size >> level;
            if count == 0 {
                break;
            }
            let filled = (count % TILE) as usize;
            let mut partial = Vec::with_capacity(TILE as usize * 32);
            if filled > 0 {
                let tile = store
                    .get(&tile_key(level, count / TILE))?
                    .ok_or_else(|| ProofError::Damaged(format!("Merkle tile {level}/{} is missing", count / TILE)))?;
                let bytes = tile
                    .as_ref()
                    .get(..filled * 32)
                    .ok_or_else(|| ProofError::Damaged(format!("Merkle tile {level}/{} is too short", count / TILE)))?;
                partial.extend_from_slice(bytes);
            }
            levels.push((count, partial, false));
        }
        Ok(TileWriter { levels })
    }

    /// Adds the next hash of `level`; writes its tile into `wb` when the tile is full.
    pub(crate) fn push(&mut self, level: u8, hash: &Hash, wb: &mut WriteBatch) {
        let l = level as usize;
        while self.levels.len() <= l {
            self.levels.push((0, Vec::with_capacity(TILE as usize * 32), false));
        }
        let (count, partial, dirty) = &mut self.levels[l];
        partial.extend_from_slice(hash);
        *count += 1;
        *dirty = true;
        if *count % TILE == 0 {
            wb.put(tile_key(level, *count / TILE - 1), std::mem::take(partial));
            partial.reserve(TILE as usize * 32);
            *dirty = false;
        }
    }

    /// Writes every unfinished tile that changed since the last call into `wb`.
    pub(crate) fn flush(&mut self, wb: &mut WriteBatch) {
        for (level, (count, partial, dirty)) in self.levels.iter_mut().enumerate() {
            if *dirty && !partial.is_empty() {
                wb.put(tile_key(level as u8, *count / TILE), partial.clone());
            }
            *dirty = false;
        }
    }
}

/// The tile last read at each level (index: level), with its number.
type LastTiles<S> = std::cell::RefCell<Vec<Option<(u64, <S as Storage>::Bytes)>>>;

/// Reads tree nodes from a store holding a tree of at least the sizes asked about.
#[derive(Debug)]
pub(crate) struct TreeReader<'s, S: ?Sized + Storage> {
    store: &'s S,
    /// With [`TreeReader::caching`]: the tile last read at each level.
    last: Option<LastTiles<S>>,
}

impl<'s, S: Storage + ?Sized> TreeReader<'s, S> {
    /// A reader over `store`.
    pub(crate) fn new(store: &'s S) -> Self {
        TreeReader { store, last: None }
    }

    /// A reader that keeps the tile it last read at each level: proofs of neighbouring
    /// entries, asked in order, share most of their tiles.
    pub(crate) fn caching(store: &'s S) -> Self {
        TreeReader { store, last: Some(std::cell::RefCell::new(Vec::new())) }
    }

    fn tile(&self, level: u8, tile: u64) -> Result<S::Bytes, ProofError> {
        if let Some(last) = &self.last {
            if let Some(Some((t, bytes))) = last.borrow().get(level as usize) {
                if *t == tile {
                    return Ok(bytes.clone());
                }
            }
        }
        let bytes = self
            .store
            .get(&tile_key(level, tile))?
            .ok_or_else(|| ProofError::Damaged(format!("Merkle tile {level}/{tile} is missing")))?;
        if let Some(last) = &self.last {
            let mut last = last.borrow_mut();
            if last.len() <= level as usize {
                last.resize(level as usize + 1, None);
            }
            last[level as usize] = Some((tile, bytes.clone()));
        }
        Ok(bytes)
    }

    /// The leaf hash of entry `index`.
    pub(crate) fn leaf(&self, index: u64) -> Result<Hash, ProofError> {
        self.node(0, index)
    }

    /// The root of the perfect subtree at `level`, `index`.
    pub(crate) fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        let bytes = self.tile(level, index / TILE)?;
        let at = (index % TILE) as usize * 32;
        bytes
            .as_ref()
            .get(at..at + 32)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| ProofError::Damaged(format!("Merkle node {level}/{index} is missing from its tile")))
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
    pub(crate) fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size == 0 {
            return Ok(RootBuilder::new().root());
        }
        self.subtree(0, size)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 PATH).
    pub(crate) fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
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
    pub(crate) fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, ProofError> {
        if size1 == 0 || size1 > size2 {
            return Err(ProofError::OutOfRange(format!("no consistency proof from size {size1} to size {size2}")));
        }
        let mut proof = Vec::new();
        let (mut m, mut begin, mut end) = (size1, 0u64, size2);
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
    pub(crate) fn frontier(&self, size: u64) -> Result<RootBuilder, ProofError> {
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
