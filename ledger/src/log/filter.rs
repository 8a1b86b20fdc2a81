//! An in-memory Bloom filter over the `(source, id)` index keys, so that an event seen for the
//! first time (nearly every event) needs no index read. It answers "certainly absent" or
//! "maybe present"; only the second costs a read. It never forgets a key (no false
//! negatives): it is built from every index key when the log opens, and every key the log
//! commits is added after the commit. About 10 bits a key, for about 1% false positives; it
//! doubles (rebuilt from the index) when it fills.
//!
//! Building it reads every index key, which on a store of 10,000,000 entries took about 8 s of
//! CPU at each start. So a log that closes cleanly keeps it in the store ([`IdFilter::to_bytes`],
//! with the number of entries it covers and a checksum), and the next open takes it back when
//! it covers exactly the log as it is ([`IdFilter::from_bytes`]); any other filter is rebuilt.
//! The hash is keyed BLAKE3 with a random key kept with the filter, so that it hashes the same
//! in every process and build, and producers cannot choose ids that crowd one block.
//!
//! It is a blocked filter: all of a key's probes fall in one 64-byte block, so a lookup costs
//! one cache miss rather than one per probe.

use super::error::LogError;
use crate::store::{StorageError, StorageErrorKind};

/// Bits per key; 10 bits and 7 probes give about 1% false positives.
const BITS_PER_KEY: u64 = 10;
const HASHES: u64 = 7;
/// 64-bit words per block: one cache line.
const BLOCK_WORDS: usize = 8;

/// The first byte of a kept filter: its format.
const FORMAT: u8 = 1;
/// A kept filter's header: format, hash key, capacity, keys, entries covered, blocks.
const HEADER: usize = 1 + 32 + 4 * 8;

/// A Bloom filter sized for `capacity` keys.
#[derive(Clone, Debug)]
pub(crate) struct IdFilter {
    bits: Vec<[u64; BLOCK_WORDS]>,
    capacity: u64,
    len: u64,
    /// The BLAKE3 key its hashes are made with.
    key: [u8; 32],
}

/// The blocks of a filter for `capacity` keys (at least 2^16).
fn blocks_for(capacity: u64) -> u64 {
    capacity.max(1 << 16).saturating_mul(BITS_PER_KEY).div_ceil(64 * BLOCK_WORDS as u64)
}

/// The little-endian u64 of 8 bytes.
fn le_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// A random hash key, from the operating system (as the log's signer keys are).
pub(crate) fn random_key() -> Result<[u8; 32], LogError> {
    let mut key = [0; 32];
    getrandom::getrandom(&mut key).map_err(|e| {
        LogError::Storage(StorageError::new(StorageErrorKind::Other, format!("no randomness for the id filter: {e}")))
    })?;
    Ok(key)
}

impl IdFilter {
    /// An empty filter for `capacity` keys, with a new random hash key.
    #[cfg(test)]
    pub(crate) fn with_capacity(capacity: u64) -> Result<Self, LogError> {
        Ok(Self::with_key(capacity, random_key()?))
    }

    /// An empty filter for `capacity` keys that hashes as every filter made with `key`.
    pub(crate) fn with_key(capacity: u64, key: [u8; 32]) -> Self {
        let capacity = capacity.max(1 << 16);
        IdFilter { bits: vec![[0; BLOCK_WORDS]; blocks_for(capacity) as usize], capacity, len: 0, key }
    }

    /// An empty filter for `capacity` keys that hashes as this one, so that a key's
    /// [`IdFilter::hash`] serves both (the filter built or grown beside it).
    pub(crate) fn sibling(&self, capacity: u64) -> Self {
        Self::with_key(capacity, self.key)
    }

    /// The key its hashes are made with.
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The filter as kept in the store, saying that it holds the index keys of the first
    /// `covered` entries: a header, the blocks (little-endian words) and a BLAKE3 checksum.
    pub(crate) fn to_bytes(&self, covered: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.bits.len() * 64 + 32);
        out.push(FORMAT);
        out.extend_from_slice(&self.key);
        for n in [self.capacity, self.len, covered, self.bits.len() as u64] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for word in self.bits.iter().flatten() {
            out.extend_from_slice(&word.to_le_bytes());
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// A filter kept by [`IdFilter::to_bytes`], with the entries it covers; `None` when the
    /// bytes are not one whole and intact (then it is rebuilt from the index).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<(Self, u64)> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if blake3::hash(body).as_bytes() != sum || body.len() < HEADER || body[0] != FORMAT {
            return None;
        }
        let key: [u8; 32] = body[1..33].try_into().ok()?;
        let number = |n: usize| le_u64(&body[33 + 8 * n..41 + 8 * n]);
        let (capacity, len, covered, blocks) = (number(0)?, number(1)?, number(2)?, number(3)?);
        let words = &body[HEADER..];
        // Checked before anything is allocated: the blocks are the bytes there are.
        if blocks != blocks_for(capacity) || words.len() as u64 != blocks.checked_mul(64)? {
            return None;
        }
        let mut filter = Self::with_key(capacity, key);
        for (word, bytes) in filter.bits.iter_mut().flatten().zip(words.chunks_exact(8)) {
            *word = le_u64(bytes)?;
        }
        filter.len = len;
        Some((filter, covered))
    }

    /// The key's hash, from which its probes follow. Computing it is most of the cost of a
    /// lookup, so a writer may compute it once (on any thread) and use the `_hashed` methods.
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        let hash = blake3::keyed_hash(&self.key, key);
        let mut first = [0; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    /// The key's block, and its probes in it as (word, bit mask).
    fn probes(&self, hash: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
        // The high half picks the block; the low half, spread by double hashing, the bits.
        let block = ((hash >> 32) * self.bits.len() as u64) >> 32;
        let (a, b) = (hash as u32, (hash as u32).rotate_left(16) | 1);
        let bits = (0..HASHES as u32).map(move |i| {
            let bit = (a.wrapping_add(i.wrapping_mul(b)) % (64 * BLOCK_WORDS as u32)) as usize;
            (bit / 64, 1u64 << (bit % 64))
        });
        (block as usize, bits)
    }

    /// Adds a key.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: &[u8]) {
        self.insert_hashed(self.hash(key));
    }

    /// Adds the key with this [`IdFilter::hash`].
    pub(crate) fn insert_hashed(&mut self, hash: u64) {
        let (block, bits) = self.probes(hash);
        let words = &mut self.bits[block];
        for (word, mask) in bits {
            words[word] |= mask;
        }
        self.len += 1;
    }

    /// False only if the key was certainly never added.
    #[cfg(test)]
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hashed(self.hash(key))
    }

    /// [`IdFilter::may_contain`] for the key with this [`IdFilter::hash`].
    pub(crate) fn may_contain_hashed(&self, hash: u64) -> bool {
        let (block, mut bits) = self.probes(hash);
        let words = &self.bits[block];
        bits.all(|(word, mask)| words[word] & mask != 0)
    }

    /// Whether it holds more keys than it was sized for.
    pub(crate) fn is_full(&self) -> bool {
        self.len > self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_forgets_and_rarely_guesses() {
        let mut f = IdFilter::with_capacity(100_000).unwrap();
        for i in 0..100_000u32 {
            f.insert(format!("key-{i}").as_bytes());
        }
        assert!((0..100_000u32).all(|i| f.may_contain(format!("key-{i}").as_bytes())));
        let false_positives = (0..100_000u32).filter(|i| f.may_contain(format!("other-{i}").as_bytes())).count();
        assert!(false_positives < 2_000, "{false_positives} false positives in 100,000");
        assert!(!f.is_full());
    }

    #[test]
    fn a_kept_filter_comes_back_whole_and_a_damaged_one_not_at_all() {
        let mut f = IdFilter::with_capacity(100_000).unwrap();
        for i in 0..50_000u32 {
            f.insert(format!("key-{i}").as_bytes());
        }
        let kept = f.to_bytes(50_000);
        let (back, covered) = IdFilter::from_bytes(&kept).expect("an intact filter reads back");
        assert_eq!(covered, 50_000);
        assert_eq!((back.capacity, back.len, back.key), (f.capacity, f.len, f.key));
        assert!(back.bits == f.bits, "the same bits");
        // It hashes as the one kept, so every key is found in it.
        assert!((0..50_000u32).all(|i| back.may_contain(format!("key-{i}").as_bytes())));
        for damage in [1, 40, HEADER + 100, kept.len() - 1] {
            let mut bad = kept.clone();
            bad[damage] ^= 1;
            assert!(IdFilter::from_bytes(&bad).is_none(), "a bit flipped at byte {damage}");
        }
        assert!(IdFilter::from_bytes(&kept[..kept.len() - 1]).is_none(), "cut short");
        assert!(IdFilter::from_bytes(&[]).is_none());
    }
}
