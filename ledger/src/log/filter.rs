//! An in-memory Bloom filter over the `(source, id)` index keys, so that an event seen for the
//! first time (nearly every event) needs no index read. It answers "certainly absent" or
//! "maybe present"; only the second costs a read. It never forgets a key (no false
//! negatives): it is built from every index key when the log opens, and every key the log
//! commits is added after the commit. About 10 bits a key, for about 1% false positives; it
//! doubles (rebuilt from the index) when it fills. Memory only; nothing to recover.
//!
//! It is a blocked filter: all of a key's probes fall in one 64-byte block, so a lookup costs
//! one cache miss rather than one per probe.

use std::hash::{BuildHasher, Hasher};

/// Bits per key; 10 bits and 7 probes give about 1% false positives.
const BITS_PER_KEY: u64 = 10;
const HASHES: u64 = 7;
/// 64-bit words per block: one cache line.
const BLOCK_WORDS: usize = 8;

/// A Bloom filter sized for `capacity` keys.
#[derive(Clone, Debug)]
pub(crate) struct IdFilter {
    bits: Vec<[u64; BLOCK_WORDS]>,
    capacity: u64,
    len: u64,
    hasher: std::hash::RandomState,
}

impl IdFilter {
    /// An empty filter for `capacity` keys.
    pub(crate) fn with_capacity(capacity: u64) -> Self {
        Self::with_hasher(capacity, std::hash::RandomState::new())
    }

    /// An empty filter for `capacity` keys that hashes as every filter made with `hasher`.
    fn with_hasher(capacity: u64, hasher: std::hash::RandomState) -> Self {
        let capacity = capacity.max(1 << 16);
        let blocks = (capacity * BITS_PER_KEY).div_ceil(64 * BLOCK_WORDS as u64) as usize;
        IdFilter { bits: vec![[0; BLOCK_WORDS]; blocks], capacity, len: 0, hasher }
    }

    /// An empty filter of the same size that hashes as this one: keys added to either can be
    /// merged into the other ([`IdFilter::merge`]).
    pub(crate) fn twin(&self) -> Self {
        Self::with_hasher(self.capacity, self.hasher.clone())
    }

    /// Adds every key of `other`, a [`IdFilter::twin`] of this one.
    pub(crate) fn merge(&mut self, other: &IdFilter) {
        debug_assert_eq!(self.bits.len(), other.bits.len(), "twins have the same size");
        for (mine, theirs) in self.bits.iter_mut().zip(&other.bits) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m |= t;
            }
        }
        self.len += other.len;
    }

    /// The key's hash, from which its probes follow. Computing it is most of the cost of a
    /// lookup, so a writer may compute it once (on any thread) and use the `_hashed` methods.
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        h.finish()
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
        let mut f = IdFilter::with_capacity(100_000);
        for i in 0..100_000u32 {
            f.insert(format!("key-{i}").as_bytes());
        }
        assert!((0..100_000u32).all(|i| f.may_contain(format!("key-{i}").as_bytes())));
        let false_positives = (0..100_000u32).filter(|i| f.may_contain(format!("other-{i}").as_bytes())).count();
        assert!(false_positives < 2_000, "{false_positives} false positives in 100,000");
        assert!(!f.is_full());
    }
}
