//! Where a ledger directory keeps what the verifier reads. The ledger writes with these keys
//! and the verifier's read-only adapter reads with them, so both agree by construction.
//!
//! A ledger directory is a sled database; everything lives in its default tree so that one
//! atomic batch can write entries, indexes and source positions together. Keys begin with a
//! one-byte prefix; the verifier reads two of them:
//!
//! | key | value |
//! | --- | --- |
//! | `e` + seq (u64 big-endian) | entry record ([`crate::entry`]) |
//! | `c` + tree size (u64 big-endian) | signed checkpoint note ([`crate::checkpoint`]) |
//!
//! The other prefixes are the ledger's own (indexes, Merkle nodes, quarantine, positions).

/// The directory, inside a ledger data directory, that holds the sled database.
pub const LOG_DIR: &str = "log";

/// Prefix of entry records.
pub const ENTRY: u8 = b'e';
/// Prefix of signed checkpoints.
pub const CHECKPOINT: u8 = b'c';

/// The key of entry `seq`.
pub fn entry_key(seq: u64) -> [u8; 9] {
    prefixed(ENTRY, seq)
}

/// The key of the checkpoint at tree size `size`.
pub fn checkpoint_key(size: u64) -> [u8; 9] {
    prefixed(CHECKPOINT, size)
}

/// The number in a 9-byte prefixed key, if the key is one.
pub fn key_number(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(1..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

fn prefixed(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}
