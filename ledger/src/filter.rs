//! An in-memory Bloom filter over the `(source, id)` index keys, so that an event seen for the
//! first time (nearly every event) needs no index read. It answers "certainly absent" or
//! "maybe present"; only the second costs a read. It never forgets a key (no false
//! negatives): it is built from every index key when the log opens, and every key the log
//! commits is added after the commit. About 10 bits a key, for a 1% false-positive rate; it
//! doubles (rebuilt from the index) when it fills. Memory only; nothing to recover.

use std::hash::{BuildHasher, Hasher};

/// Bits per key; 10 bits and 7 hashes give about 1% false positives.
const BITS_PER_KEY: u64 = 10;
const HASHES: u64 = 7;

/// A Bloom filter sized for `capacity` keys.
#[derive(Clone, Debug)]
pub struct IdFilter {
    bits: Vec<u64>,
    capacity: u64,
    len: u64,
    hasher: std::hash::RandomState,
}

impl IdFilter {
    /// An empty filter for `capacity` keys.
    pub fn with_capacity(capacity: u64) -> Self {
        let capacity = capacity.max(1 << 16);
        let words = (capacity * BITS_PER_KEY).div_ceil(64) as usize;
        IdFilter { bits: vec![0; words], capacity, len: 0, hasher: std::hash::RandomState::new() }
    }

    fn probes(&self, key: &[u8]) -> impl Iterator<Item = usize> + '_ {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        let a = h.finish();
        let b = a.rotate_left(32) | 1;
        let m = self.bits.len() as u64 * 64;
        (0..HASHES).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % m) as usize)
    }

    /// Adds a key.
    pub fn insert(&mut self, key: &[u8]) {
        let probes: Vec<usize> = self.probes(key).collect();
        for bit in probes {
            self.bits[bit / 64] |= 1 << (bit % 64);
        }
        self.len += 1;
    }

    /// False only if the key was certainly never added.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.probes(key).all(|bit| self.bits[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// Whether it holds more keys than it was sized for.
    pub fn is_full(&self) -> bool {
        self.len > self.capacity
    }

    /// Keys added.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no key was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
