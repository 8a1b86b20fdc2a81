//! The ledger entry format and the hash chain: what an entry's bytes are, what is hashed, and
//! how. The ledger writes entries with [`encode`]; every checker reads them with
//! [`EntryRef::decode`], so writer and checker agree by construction.
//!
//! Entry record (version 1), as stored and exported:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 1 | format version, `1` |
//! | 1 | 32 | event digest: `blake3(event bytes)` |
//! | 33 | 32 | chain hash |
//! | 65 | .. | leaf bytes |
//!
//! Leaf bytes, the input of both the Merkle leaf hash and the chain:
//!
//! | size | field |
//! | --- | --- |
//! | 8 | sequence number, u64 big-endian, from 0 with no gaps |
//! | 8 | ledger receive time, microseconds since the Unix epoch, i64 big-endian |
//! | 2 | origin length, u16 big-endian |
//! | n | origin, UTF-8 (`kafka:<topic>/<partition>@<offset>`, `file:<path>#<line>`, ...) |
//! | .. | the event's canonical JSON (RFC 8785), to the end |
//!
//! Chain: `chain[n] = blake3_derive_key(CHAIN_CONTEXT, chain[n-1] || leaf bytes[n])` with
//! `chain[-1]` = 32 zero bytes. Merkle leaf hash: `SHA-256(0x00 || leaf bytes)`. No I/O.

use crate::merkle::{leaf_hash, Hash};

/// The blake3 key-derivation context of the chain.
pub const CHAIN_CONTEXT: &str = "evidence-ledger 2026-04 entry chain v1";
/// The chain value before the first entry.
pub const GENESIS: Hash = [0u8; 32];
/// The entry format version written by [`encode`].
pub const VERSION: u8 = 1;
const HEADER: usize = 65;
const LEAF_FIXED: usize = 18;

/// Why entry bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Fewer bytes than the fixed fields need.
    #[error("record is {len} bytes, too short for an entry")]
    TooShort {
        /// The record's length.
        len: usize,
    },
    /// An unknown format version.
    #[error("unknown entry format version {0}")]
    Version(u8),
    /// The origin runs past the end or is not UTF-8.
    #[error("the origin field is malformed")]
    Origin,
}

/// `blake3(event bytes)`.
pub fn event_digest(event: &[u8]) -> [u8; 32] {
    *blake3::hash(event).as_bytes()
}

/// The chain hash that follows `prev` for an entry with these leaf bytes.
pub fn chain_next(prev: &Hash, leaf: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new_derive_key(CHAIN_CONTEXT);
    h.update(prev);
    h.update(leaf);
    *h.finalize().as_bytes()
}

fn truncate_origin(origin: &str) -> &str {
    let mut end = origin.len().min(u16::MAX as usize);
    while !origin.is_char_boundary(end) {
        end -= 1;
    }
    &origin[..end]
}

/// An encoded entry with the hashes the writer needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The entry record; its leaf bytes are `record[LEAF_OFFSET..]`.
    pub record: Vec<u8>,
    /// Its Merkle leaf hash.
    pub leaf_hash: Hash,
    /// Its chain hash.
    pub chain: Hash,
}

/// Where the leaf bytes start in an entry record.
pub const LEAF_OFFSET: usize = HEADER;
/// Where the chain hash sits in an entry record.
pub const CHAIN_RANGE: std::ops::Range<usize> = 33..65;

/// Encodes entry `seq` following chain value `prev`. `digest` must be [`event_digest`] of
/// `event` (the writer has it already from duplicate detection). Origins longer than 65,535
/// bytes are cut.
pub fn encode(seq: u64, received_micros: i64, origin: &str, event: &[u8], digest: &[u8; 32], prev: &Hash) -> Encoded {
    let mut record = encode_unchained(seq, received_micros, origin, event, digest);
    let chain = seal(&mut record, prev);
    Encoded { leaf_hash: leaf_hash(&record[HEADER..]), chain, record }
}

/// The entry record with its chain hash still zero: the part of [`encode`] that does not
/// depend on the previous entry. [`seal`] completes it.
pub fn encode_unchained(seq: u64, received_micros: i64, origin: &str, event: &[u8], digest: &[u8; 32]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + LEAF_FIXED + origin.len().min(u16::MAX as usize) + event.len());
    encode_unchained_into(&mut record, seq, received_micros, origin, event, digest);
    record
}

/// [`encode_unchained`], appending the record to `out` (a segment being built) instead of
/// allocating one.
pub fn encode_unchained_into(
    out: &mut Vec<u8>,
    seq: u64,
    received_micros: i64,
    origin: &str,
    event: &[u8],
    digest: &[u8; 32],
) {
    debug_assert_eq!(digest, &event_digest(event));
    let origin = truncate_origin(origin);
    out.reserve(HEADER + LEAF_FIXED + origin.len() + event.len());
    out.push(VERSION);
    out.extend_from_slice(digest);
    out.extend_from_slice(&[0u8; 32]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&received_micros.to_be_bytes());
    out.extend_from_slice(&(origin.len() as u16).to_be_bytes());
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(event);
}

/// The chain hash of an [`encode_unchained`] record following `prev`, written into it.
pub fn seal(record: &mut [u8], prev: &Hash) -> Hash {
    let chain = chain_next(prev, &record[HEADER..]);
    record[CHAIN_RANGE].copy_from_slice(&chain);
    chain
}

/// A decoded entry, borrowing the record's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The stored event digest.
    pub digest: &'a [u8; 32],
    /// The stored chain hash.
    pub chain: &'a [u8; 32],
    /// The leaf bytes.
    pub leaf: &'a [u8],
    /// The sequence number written in the leaf.
    pub seq: u64,
    /// Ledger receive time, microseconds since the Unix epoch.
    pub received_micros: i64,
    /// Where the event came from.
    pub origin: &'a str,
    /// The event's canonical JSON.
    pub event: &'a [u8],
}

impl<'a> EntryRef<'a> {
    /// Reads an entry record.
    pub fn decode(record: &'a [u8]) -> Result<Self, EntryError> {
        if record.len() < HEADER + LEAF_FIXED {
            return Err(EntryError::TooShort { len: record.len() });
        }
        if record[0] != VERSION {
            return Err(EntryError::Version(record[0]));
        }
        let digest: &[u8; 32] = record[1..33].try_into().expect("32 bytes");
        let chain: &[u8; 32] = record[33..65].try_into().expect("32 bytes");
        let leaf = &record[HEADER..];
        let seq = u64::from_be_bytes(leaf[0..8].try_into().expect("8 bytes"));
        let received_micros = i64::from_be_bytes(leaf[8..16].try_into().expect("8 bytes"));
        let origin_len = u16::from_be_bytes([leaf[16], leaf[17]]) as usize;
        let origin = leaf.get(LEAF_FIXED..LEAF_FIXED + origin_len).ok_or(EntryError::Origin)?;
        let origin = std::str::from_utf8(origin).map_err(|_| EntryError::Origin)?;
        let event = &leaf[LEAF_FIXED + origin_len..];
        Ok(EntryRef { digest, chain, leaf, seq, received_micros, origin, event })
    }

    /// The Merkle leaf hash of this entry.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(self.leaf)
    }
}
