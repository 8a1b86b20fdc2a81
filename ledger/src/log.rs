//! The append-only log: entries with their hash chain and Merkle tree, the `(source, id)`
//! index, quarantine, source positions, counters and signed checkpoints, all in one ordered
//! key space on a [`Storage`]. One writer appends ([`Log`] takes `&mut self` to append);
//! anything may read.
//!
//! Key space (one-byte prefixes; `e` and `c` are shared with the verifier, see
//! [`evidence_verifier::layout`]):
//!
//! | key | value |
//! | --- | --- |
//! | `e` + first seq (u64 BE) | segment: up to 8 consecutive entry records ([`evidence_verifier::layout`]) |
//! | `c` + tree size (u64 BE) | signed checkpoint note |
//! | `n` + level (u8) + tile (u64 BE) | 64 Merkle node hashes ([`crate::tree`]) |
//! | `i` + source length (u16 BE) + source + id | seq (u64 BE) + blake3 event digest (32); written behind the log ([`crate::index`]) |
//! | `q` + number (u64 BE) | quarantine record, JSON ([`QuarantineRecord`]) |
//! | `Q` + first 16 bytes of blake3(origin, 0, raw bytes) | quarantine number: the same bad record is kept once |
//! | `p` + source name | next source offset (i64 BE) |
//! | `m` + name | metadata: `origin`, `counters` (JSON), `deadletters` (outbox cursor, u64 BE), `indexed` (entries the index covers, u64 BE) |
//!
//! Durability, step by step, for [`Log::append`] (the [`Sink`] implementation):
//! 1. Each valid event is looked up in the `(source, id)` index (and among the batch's own
//!    events): same digest → duplicate, acknowledged and not appended; other digest →
//!    conflict, quarantined with both digests.
//! 2. New events get the next sequence numbers and are encoded with their chain hash straight
//!    into the segment values they are stored as; the Merkle tiles they change, the
//!    quarantine records, the source positions and the counters go into the same write batch.
//!    (Index lookups, and then the Merkle hashes beside the sequential chain, are computed on
//!    two threads: work with no order between records; the log still has one writer. The
//!    event digest comes with the event: the validator computes it with the canonical bytes,
//!    on the intake's threads.)
//! 3. The batch is committed: applied atomically and flushed to disk. Only then does `append`
//!    return, and only then is anything in it "accepted"; the in-memory head (size, chain,
//!    frontier) moves only after the commit succeeds. Then the new entries' index entries are
//!    handed to [`crate::index`], which finds them at once and writes them to the store on a
//!    thread of its own, behind the log; a crash before they reach the disk is repaired on
//!    open, from the entries.
//! 4. A checkpoint is cut when `checkpoint_every` entries have been appended since the last
//!    one, or `checkpoint_interval` has passed with new entries. Its tree size is always one
//!    already flushed; before signing, the new root is proven consistent with the previous
//!    checkpoint's from the stored nodes (a storage fault cannot get signed); the signed note
//!    is committed and flushed before it is returned or published.
//!
//! A crash at any point leaves either the whole batch or none of it (and an index that covers
//! a prefix of the entries, caught up on open); re-sending the same events after a restart
//! finds them in the index, so nothing is lost or appended twice.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_ingest::{Batch, BatchReport, Outcome, Record, Sink, Verdict};
use evidence_schemas::{Problem, ValidEvent};
use evidence_verifier::entry::{chain_next, encode_unchained_into, EntryRef, CHAIN_RANGE, GENESIS, LEAF_OFFSET};
use evidence_verifier::layout::{
    checkpoint_key, key_number, push_record, segment_key, segment_records, CHECKPOINT, ENTRY,
};
use evidence_verifier::merkle::{leaf_hash, verify_consistency, Hash, RootBuilder};
use evidence_verifier::note::{Note, NoteError, SignerKey, VerifierKey};
use evidence_verifier::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::index::{Index, Item, Lookup};
use crate::storage::{prefix_end, Storage, StorageError, WriteBatch};
use crate::tree::{ProofError, TileWriter, TreeReader};

/// Most entries in one segment value (about 5 KB of 600-byte entries): sled splits its leaf
/// nodes by key count (16), so small values keep nodes well below its blob threshold.
const SEGMENT_ENTRIES: usize = 8;
const QUARANTINE: u8 = b'q';
const QUARANTINE_SEEN: u8 = b'Q';
const POSITION: u8 = b'p';
const META_ORIGIN: &[u8] = b"morigin";
const META_COUNTERS: &[u8] = b"mcounters";
const META_DEAD_LETTERS: &[u8] = b"mdeadletters";

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store failed; nothing of the operation was stored.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A proof could not be made.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The signer key belongs to another log.
    #[error("the signer key is for origin {key:?}, but this store's log is {store:?}")]
    OriginMismatch {
        /// The store's origin.
        store: String,
        /// The key's name.
        key: String,
    },
    /// The store contradicts itself.
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// Signing failed.
    #[error("cannot sign the checkpoint: {0}")]
    Signing(#[from] NoteError),
    /// A proof was asked for a tree size no checkpoint covers.
    #[error("no checkpoint at tree size {size}; checkpointed sizes end at {latest}")]
    NoCheckpoint {
        /// The size asked for.
        size: u64,
        /// The latest checkpointed size (0 if none).
        latest: u64,
    },
    /// An entry beyond the latest checkpoint has no proof yet.
    #[error("entry {seq} is not covered by a checkpoint yet (the latest covers {size} entries)")]
    NotYetCheckpointed {
        /// The entry.
        seq: u64,
        /// The latest checkpoint's size.
        size: u64,
    },
}

/// When to cut checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Cut after this many new entries.
    pub every_entries: u64,
    /// Cut when this long has passed since the last one and there are new entries.
    pub interval: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { every_entries: 10_000, interval: Duration::from_secs(10) }
    }
}

/// Running counts kept with the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Duplicate deliveries acknowledged and not appended.
    pub duplicates: u64,
    /// Records quarantined (each distinct bad record once).
    pub quarantined: u64,
    /// Of those, `(source, id)` conflicts.
    pub conflicts: u64,
}

/// The same `(source, id)` arrived with other content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The event's source.
    pub source: String,
    /// The event's id.
    pub id: String,
    /// The entry already holding that `(source, id)`.
    pub seq: u64,
    /// Its event digest (hex blake3).
    pub stored_digest: String,
    /// The digest of the conflicting event.
    pub new_digest: String,
}

/// A record kept out of the log, with everything needed to understand and replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// Its number, from 0 in arrival order.
    pub number: u64,
    /// When the ledger received it (RFC 3339).
    pub received: String,
    /// Where it came from.
    pub origin: String,
    /// Why it was kept out, in a sentence.
    pub reason: String,
    /// Each problem, with its JSON pointer.
    pub problems: Vec<Problem>,
    /// Set when the record conflicts with an entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
    /// The bytes as received: UTF-8 text, or base64 when they are not UTF-8.
    pub raw: String,
    /// `utf8` or `base64`.
    pub raw_encoding: String,
}

/// A summary of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The log's origin (its name in checkpoints).
    pub origin: String,
    /// Entries in the log.
    pub entries: u64,
    /// Duplicate deliveries acknowledged.
    pub duplicates: u64,
    /// Records in quarantine.
    pub quarantined: u64,
    /// Of those, `(source, id)` conflicts.
    pub conflicts: u64,
    /// Size of the latest signed checkpoint.
    pub checkpoint_size: u64,
    /// Merkle root of all entries (base64).
    pub root: String,
    /// The verifier keys of the checkpoint signers.
    pub verifier_keys: Vec<String>,
    /// The next offset stored for each source position (e.g. `kafka:<topic>/<partition>`).
    pub positions: std::collections::BTreeMap<String, i64>,
}

/// An inclusion proof with the signed checkpoint it is against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry.
    pub seq: u64,
    /// The tree size of the checkpoint.
    pub tree_size: u64,
    /// The entry's Merkle leaf hash.
    pub leaf_hash: Hash,
    /// The audit path, leaf first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note at `tree_size`.
    pub checkpoint: String,
}

/// The ledger's log on a [`Storage`].
pub struct Log<S: Storage> {
    store: Arc<S>,
    signers: Vec<SignerKey>,
    origin: String,
    policy: CheckpointPolicy,
    head: Head,
    index: Index<S>,
    latest: Option<Checkpoint>,
    last_cut: Instant,
}

impl<S: Storage> std::fmt::Debug for Log<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("origin", &self.origin).field("size", &self.head.size).finish_non_exhaustive()
    }
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// The stored next offset of a source in `store` (readable while another thread appends).
pub fn read_position<S: Storage + ?Sized>(store: &S, source: &str) -> Result<Option<i64>, LogError> {
    let v = store.get(&prefixed(POSITION, source.as_bytes()))?;
    Ok(v.and_then(|v| v.as_ref().try_into().ok()).map(i64::from_be_bytes))
}

/// Entry records with their sequence numbers, in order.
type EntryRecords<'s> = Box<dyn Iterator<Item = Result<(u64, Vec<u8>), LogError>> + 's>;

/// Entry records of `store` from `from` on, in order.
fn read_entries<S: Storage>(store: &S, from: u64) -> EntryRecords<'_> {
    // Start at the segment holding `from`: the last one whose first entry is at or before it.
    let start = match store.last_in(&segment_key(0), &segment_key(from.saturating_add(1))) {
        Ok(Some((k, _))) => k.as_ref().to_vec(),
        Ok(None) => segment_key(from).to_vec(),
        Err(e) => return Box::new(std::iter::once(Err(e.into()))),
    };
    let segments = store.range(&start, &prefix_end(ENTRY));
    Box::new(
        segments
            .flat_map(|r| -> Vec<Result<(u64, Vec<u8>), LogError>> {
                let (k, segment) = match r {
                    Ok(pair) => pair,
                    Err(e) => return vec![Err(e.into())],
                };
                let Some(first) = key_number(k.as_ref()) else {
                    return vec![Err(LogError::Damaged("malformed segment key".into()))];
                };
                segment_records(segment.as_ref())
                    .enumerate()
                    .map(|(n, r)| {
                        r.map(|rec| (first + n as u64, rec.to_vec()))
                            .map_err(|e| LogError::Damaged(format!("segment {first}: {e}")))
                    })
                    .collect()
            })
            .filter(move |r| r.as_ref().map_or(true, |(seq, _)| *seq >= from)),
    )
}

/// Which lookups of a batch may share their `(source, id)` with another of the same batch:
/// those with an equal filter hash (nearly always none). Only they need the batch's own map.
fn repeated(lookups: &[Lookup]) -> Vec<bool> {
    let mut hashes: Vec<(u64, usize)> = lookups.iter().enumerate().map(|(n, l)| (l.hash, n)).collect();
    hashes.sort_unstable();
    let mut repeated = vec![false; lookups.len()];
    for pair in hashes.windows(2) {
        if pair[0].0 == pair[1].0 {
            repeated[pair[0].1] = true;
            repeated[pair[1].1] = true;
        }
    }
    repeated
}

/// A batch's new entries: each one's record and event. Their sequence numbers follow the log's
/// size in this order.
type NewEntries<'b> = Vec<(&'b Record, &'b ValidEvent)>;

/// One segment value with its entry records' places in it, encoded but not yet chained.
type Unchained = (Vec<u8>, Vec<Range<usize>>);

/// Encodes `new` (entries `first..`) into segment values and puts them, with the Merkle tiles
/// they change, into `wb`; moves `head`'s chain and tree on.
///
/// Encoding, the Merkle leaf and node hashes and the tiles need no order between entries but
/// the tree's, so a helper thread does them, segment by segment, handing each finished segment
/// to this thread, which only chains it (the chain is sequential) and writes its chain hashes
/// in place. A small batch does both in turn on this thread.
fn write_entries(head: &mut Head, first: u64, now: i64, new: &NewEntries<'_>, wb: &mut WriteBatch) {
    let (tree, tiles, mut chain) = (&mut head.tree, &mut head.tiles, head.chain);
    let (tx, rx) = std::sync::mpsc::channel::<Unchained>();
    // The sender is passed in and dropped when `encode` returns, which ends `seal`'s loop.
    let mut encode = move |tx: std::sync::mpsc::Sender<Unchained>| {
        let mut tiles_wb = WriteBatch::default();
        let mut origin = String::new();
        for (number, chunk) in new.chunks(SEGMENT_ENTRIES).enumerate() {
            let mut value = Vec::with_capacity(chunk.iter().map(|(_, event)| event.canonical.len() + 128).sum());
            let mut records = Vec::with_capacity(chunk.len());
            for (record, event) in chunk {
                let seq = first + (number * SEGMENT_ENTRIES + records.len()) as u64;
                origin.clear();
                write!(origin, "{}", record.origin).expect("writing to a String cannot fail");
                let range = push_record(&mut value, |out| {
                    encode_unchained_into(out, seq, now, &origin, &event.canonical, &event.digest)
                });
                let leaf = leaf_hash(&value[range.start + LEAF_OFFSET..range.end]);
                tiles.push(0, &leaf, &mut tiles_wb);
                for (level, _, hash) in tree.push(leaf) {
                    tiles.push(level, &hash, &mut tiles_wb);
                }
                records.push(range);
            }
            // The receiver lives until every segment is taken.
            let _ = tx.send((value, records));
        }
        tiles.flush(&mut tiles_wb);
        tiles_wb
    };
    let mut seal = |wb: &mut WriteBatch| {
        for (n, (mut value, records)) in rx.iter().enumerate() {
            for range in records {
                chain = chain_next(&chain, &value[range.start + LEAF_OFFSET..range.end]);
                value[range.start + CHAIN_RANGE.start..range.start + CHAIN_RANGE.end].copy_from_slice(&chain);
            }
            wb.put(segment_key(first + (n * SEGMENT_ENTRIES) as u64), value);
        }
    };
    let tiles_wb = if new.len() < 64 {
        let tiles_wb = encode(tx);
        seal(wb);
        tiles_wb
    } else {
        std::thread::scope(|s| {
            let helper = s.spawn(move || encode(tx));
            seal(wb);
            helper.join().expect("the encoding thread does not panic")
        })
    };
    head.chain = chain;
    wb.extend(tiles_wb);
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

/// The state a batch advances; swapped into the log only after the batch is committed.
#[derive(Clone)]
struct Head {
    size: u64,
    chain: Hash,
    tree: RootBuilder,
    tiles: TileWriter,
    counters: Counters,
    next_quarantine: u64,
}

impl<S: Storage> Log<S> {
    /// Opens the log on `store`, signing checkpoints with `signers` (the first names the log:
    /// its origin). A new store takes that origin; an existing one must already have it.
    pub fn open(store: S, signers: Vec<SignerKey>, policy: CheckpointPolicy) -> Result<Self, LogError> {
        let origin =
            signers.first().map(|s| s.name().to_string()).ok_or_else(|| LogError::Damaged("no signer".into()))?;
        if let Some(k) = signers.iter().find(|k| k.name() != origin) {
            return Err(LogError::OriginMismatch { store: origin, key: k.name().to_string() });
        }
        match store.get(META_ORIGIN)? {
            Some(stored) if stored.as_ref() != origin.as_bytes() => {
                return Err(LogError::OriginMismatch {
                    store: String::from_utf8_lossy(stored.as_ref()).into_owned(),
                    key: origin,
                });
            }
            Some(_) => {}
            None => {
                let mut wb = WriteBatch::default();
                wb.put(META_ORIGIN, origin.as_bytes());
                store.commit(wb)?;
            }
        }
        let (size, chain) = match store.last_in(&[ENTRY], &prefix_end(ENTRY))? {
            None => (0, GENESIS),
            Some((key, segment)) => {
                let first =
                    key_number(key.as_ref()).ok_or_else(|| LogError::Damaged("malformed segment key".into()))?;
                let mut last = None;
                let mut count = 0u64;
                for record in segment_records(segment.as_ref()) {
                    last = Some(record.map_err(|e| LogError::Damaged(format!("segment {first}: {e}")))?);
                    count += 1;
                }
                let last = last.ok_or_else(|| LogError::Damaged(format!("segment {first} is empty")))?;
                let seq = first + count - 1;
                let entry = EntryRef::decode(last).map_err(|e| LogError::Damaged(format!("entry {seq}: {e}")))?;
                (seq + 1, *entry.chain)
            }
        };
        let tree = TreeReader::new(&store).frontier(size)?;
        let tiles = TileWriter::load(&store, size)?;
        let counters = match store.get(META_COUNTERS)? {
            Some(v) => serde_json::from_slice(v.as_ref()).map_err(|e| LogError::Damaged(format!("counters: {e}")))?,
            None => Counters::default(),
        };
        let next_quarantine = match store.last_in(&[QUARANTINE], &prefix_end(QUARANTINE))? {
            Some((k, _)) => key_number(k.as_ref()).map_or(0, |n| n + 1),
            None => 0,
        };
        let latest = match store.last_in(&[CHECKPOINT], &prefix_end(CHECKPOINT))? {
            None => None,
            Some((_, note)) => {
                let note =
                    Note::parse(note.as_ref()).map_err(|e| LogError::Damaged(format!("latest checkpoint: {e}")))?;
                Some(Checkpoint::parse(&note.text).map_err(|e| LogError::Damaged(format!("latest checkpoint: {e}")))?)
            }
        };
        if let Some(cp) = &latest {
            // Refuse to extend a store whose tree no longer matches what it signed.
            if cp.size > size || TreeReader::new(&store).root(cp.size)? != cp.root {
                return Err(LogError::Damaged(format!(
                    "the entries no longer match the latest checkpoint (size {}); run evidence-verify",
                    cp.size
                )));
            }
        }
        let store = Arc::new(store);
        let index = Index::open(Arc::clone(&store), size, |from| read_entries(&*store, from))?;
        Ok(Log {
            store,
            signers,
            origin,
            policy,
            head: Head { size, chain, tree, tiles, counters, next_quarantine },
            index,
            latest,
            last_cut: Instant::now(),
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.head.size
    }

    /// Waits until the `(source, id)` index, which is written behind the log, has caught up
    /// with every committed batch, and flushes it. Appends never need this (a lagging index
    /// is caught up on open); it is for measuring all the work of appends, and for a copy of
    /// the store that needs no catching up.
    pub fn settle_index(&self) -> Result<(), LogError> {
        self.index.settle()
    }

    /// The underlying store (read access, e.g. for views).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The verifier keys matching the signers.
    pub fn verifier_keys(&self) -> Vec<VerifierKey> {
        self.signers.iter().map(SignerKey::verifier).collect()
    }

    /// A summary of the log.
    pub fn status(&self) -> Status {
        Status {
            origin: self.origin.clone(),
            entries: self.head.size,
            duplicates: self.head.counters.duplicates,
            quarantined: self.head.counters.quarantined,
            conflicts: self.head.counters.conflicts,
            checkpoint_size: self.latest.as_ref().map_or(0, |c| c.size),
            root: B64.encode(self.head.tree.root()),
            verifier_keys: self.verifier_keys().iter().map(ToString::to_string).collect(),
            positions: self
                .store
                .range(&[POSITION], &prefix_end(POSITION))
                .filter_map(Result::ok)
                .filter_map(|(k, v)| {
                    let name = String::from_utf8_lossy(&k.as_ref()[1..]).into_owned();
                    Some((name, i64::from_be_bytes(v.as_ref().try_into().ok()?)))
                })
                .collect(),
        }
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Option<&Checkpoint> {
        self.latest.as_ref()
    }

    /// Every signed checkpoint note with its tree size, in size order.
    pub fn checkpoints(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>), LogError>> + '_ {
        self.store.range(&[CHECKPOINT], &prefix_end(CHECKPOINT)).map(|r| {
            let (k, v) = r?;
            let size = key_number(k.as_ref()).ok_or_else(|| LogError::Damaged("malformed checkpoint key".into()))?;
            Ok((size, v.as_ref().to_vec()))
        })
    }

    /// The signed checkpoint note at `size`, if one was cut there.
    pub fn checkpoint_note(&self, size: u64) -> Result<Option<String>, LogError> {
        Ok(self.store.get(&checkpoint_key(size))?.map(|v| String::from_utf8_lossy(v.as_ref()).into_owned()))
    }

    /// The entry record at `seq`.
    pub fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.entries(seq).next().transpose()?.filter(|(s, _)| *s == seq).map(|(_, r)| r))
    }

    /// Entry records from `from` on, in order.
    pub fn entries(&self, from: u64) -> impl Iterator<Item = Result<(u64, Vec<u8>), LogError>> + '_ {
        read_entries(&*self.store, from)
    }

    /// Quarantine records from number `from` on, at most `limit`.
    pub fn quarantine(&self, from: u64, limit: usize) -> Result<Vec<QuarantineRecord>, LogError> {
        let start = prefixed(QUARANTINE, &from.to_be_bytes());
        self.store
            .range(&start, &prefix_end(QUARANTINE))
            .take(limit)
            .map(|r| {
                let (_, v) = r?;
                serde_json::from_slice(v.as_ref()).map_err(|e| LogError::Damaged(format!("quarantine record: {e}")))
            })
            .collect()
    }

    /// The stored next offset of a source, if any.
    pub fn position(&self, source: &str) -> Result<Option<i64>, LogError> {
        read_position(&*self.store, source)
    }

    /// How many quarantine records have been forwarded to the dead-letter topic (the outbox
    /// cursor): records from this number on are still to send.
    pub fn dead_letter_cursor(&self) -> Result<u64, LogError> {
        let v = self.store.get(META_DEAD_LETTERS)?;
        Ok(v.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
    }

    /// Records that quarantine records before `next` have been forwarded.
    pub fn set_dead_letter_cursor(&mut self, next: u64) -> Result<(), LogError> {
        let mut wb = WriteBatch::default();
        wb.put(META_DEAD_LETTERS, next.to_be_bytes());
        Ok(self.store.commit(wb)?)
    }

    /// The inclusion proof of entry `seq` against the checkpoint at `size` (default: the
    /// latest checkpoint).
    pub fn inclusion_proof(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof, LogError> {
        let latest = self.latest.as_ref().map_or(0, |c| c.size);
        let size = size.unwrap_or(latest);
        if size == latest && seq >= size {
            return Err(LogError::NotYetCheckpointed { seq, size });
        }
        let checkpoint = self.checkpoint_note(size)?.ok_or(LogError::NoCheckpoint { size, latest })?;
        let reader = TreeReader::new(&*self.store);
        Ok(InclusionProof {
            seq,
            tree_size: size,
            leaf_hash: reader.leaf(seq)?,
            proof: reader.inclusion_proof(seq, size)?,
            checkpoint,
        })
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, LogError> {
        if size2 > self.head.size {
            return Err(ProofError::OutOfRange(format!("the log has only {} entries", self.head.size)).into());
        }
        Ok(TreeReader::new(&*self.store).consistency_proof(size1, size2)?)
    }

    /// Cuts and stores a signed checkpoint of the whole log now, unless the latest one
    /// already covers it. Returns the signed note.
    pub fn checkpoint_now(&mut self) -> Result<Option<String>, LogError> {
        let size = self.head.size;
        if size == 0 || self.latest.as_ref().is_some_and(|c| c.size >= size) {
            return Ok(None);
        }
        let root = self.head.tree.root();
        if let Some(prev) = &self.latest {
            let proof = TreeReader::new(&*self.store).consistency_proof(prev.size, size)?;
            verify_consistency(prev.size, size, &proof, &prev.root, &root).map_err(|e| {
                LogError::Damaged(format!(
                    "new tree of size {size} is not consistent with checkpoint {}: {e}",
                    prev.size
                ))
            })?;
        }
        let checkpoint = Checkpoint { origin: self.origin.clone(), size, root, extensions: Vec::new() };
        let signers: Vec<&SignerKey> = self.signers.iter().collect();
        let note = Note::sign(&checkpoint.to_string(), &signers)?.to_string();
        let mut wb = WriteBatch::default();
        wb.put(checkpoint_key(size), note.as_bytes());
        self.store.commit(wb)?;
        self.latest = Some(checkpoint);
        self.last_cut = Instant::now();
        tracing::debug!(message = "Checkpoint signed.", size);
        Ok(Some(note))
    }

    /// Cuts a checkpoint if the policy says one is due.
    pub fn maybe_checkpoint(&mut self) -> Result<Option<String>, LogError> {
        let since = self.head.size - self.latest.as_ref().map_or(0, |c| c.size);
        if since >= self.policy.every_entries || (since > 0 && self.last_cut.elapsed() >= self.policy.interval) {
            return self.checkpoint_now();
        }
        Ok(None)
    }

    /// For every valid record of the batch, in order: its index key, the key's hash in the
    /// filter, and what the index holds for it. The work is independent per record and mostly
    /// waits on memory (and on the store, for replayed events), so it is split over the
    /// machine's cores (two threads at most; the single writer stays single).
    fn lookup(&self, batch: &Batch) -> Result<Vec<Lookup>, LogError> {
        let valid: Vec<&ValidEvent> = batch
            .records
            .iter()
            .filter_map(|r| match &r.verdict {
                Verdict::Valid(v) => Some(&**v),
                Verdict::Rejected { .. } => None,
            })
            .collect();
        let one = |events: &[&ValidEvent]| -> Result<Vec<Lookup>, LogError> {
            events.iter().map(|v| self.index.lookup(&v.event.source, &v.event.id)).collect()
        };
        if valid.len() < 64 {
            return one(&valid);
        }
        let (left, right) = valid.split_at(valid.len() / 2);
        let (mut a, b) = std::thread::scope(|s| {
            let helper = s.spawn(|| one(right));
            let a = one(left);
            (a, helper.join().expect("the lookup thread does not panic"))
        });
        if let Ok(found) = &mut a {
            found.extend(b?);
        }
        a
    }

    #[allow(clippy::too_many_arguments)]
    fn quarantine_record(
        &self,
        head: &mut Head,
        wb: &mut WriteBatch,
        seen: &mut HashSet<Vec<u8>>,
        now: i64,
        origin: &str,
        raw: &[u8],
        reason: String,
        problems: Vec<Problem>,
        conflict: Option<Conflict>,
    ) -> Result<Outcome, LogError> {
        let mut h = blake3::Hasher::new();
        h.update(origin.as_bytes());
        h.update(&[0]);
        h.update(raw);
        let seen_key = prefixed(QUARANTINE_SEEN, &h.finalize().as_bytes()[..16]);
        let fresh = !seen.contains(&seen_key) && self.store.get(&seen_key)?.is_none();
        if fresh {
            let number = head.next_quarantine;
            let (raw, raw_encoding) = match std::str::from_utf8(raw) {
                Ok(s) => (s.to_string(), "utf8"),
                Err(_) => (B64.encode(raw), "base64"),
            };
            let is_conflict = conflict.is_some();
            let record = QuarantineRecord {
                number,
                received: rfc3339(now),
                origin: origin.to_string(),
                reason: reason.clone(),
                problems,
                conflict,
                raw,
                raw_encoding: raw_encoding.to_string(),
            };
            let json = serde_json::to_vec(&record).map_err(|e| LogError::Damaged(e.to_string()))?;
            wb.put(prefixed(QUARANTINE, &number.to_be_bytes()), json);
            wb.put(seen_key.clone(), number.to_be_bytes());
            seen.insert(seen_key);
            head.next_quarantine += 1;
            head.counters.quarantined += 1;
            if is_conflict {
                head.counters.conflicts += 1;
            }
        }
        Ok(Outcome::Quarantined { reason })
    }
}

fn conflict_reason(c: &Conflict) -> String {
    format!(
        "conflict: ({}, {}) is already entry {} with digest {}, this event has digest {}",
        c.source, c.id, c.seq, c.stored_digest, c.new_digest
    )
}

impl<S: Storage> Sink for Log<S> {
    type Error = LogError;

    fn append(&mut self, batch: &Batch) -> Result<BatchReport, LogError> {
        self.index.check()?;
        let now = now_micros();
        let mut head = self.head.clone();
        let mut wb = WriteBatch::default();
        let lookups = self.lookup(batch)?;
        let repeated = repeated(&lookups);
        // Index entries added by this batch, for events that appear in it more than once.
        let mut in_batch: HashMap<Vec<u8>, (u64, [u8; 32])> = HashMap::new();
        let mut fresh: Vec<Item> = Vec::with_capacity(lookups.len());
        let mut quarantined_in_batch = HashSet::new();
        let mut outcomes = Vec::with_capacity(batch.records.len());
        let first = self.head.size;
        let mut new: NewEntries<'_> = Vec::with_capacity(lookups.len());
        let mut lookups = lookups.into_iter().zip(repeated);
        for record in &batch.records {
            let outcome = match &record.verdict {
                Verdict::Valid(valid) => {
                    let (Lookup { key, hash, stored }, repeated) = lookups.next().expect("one lookup per valid record");
                    let digest = valid.digest;
                    let existing = if repeated { in_batch.get(&key).copied().or(stored) } else { stored };
                    match existing {
                        Some((seq, stored)) if stored == digest => {
                            head.counters.duplicates += 1;
                            Outcome::Duplicate { seq }
                        }
                        Some((seq, stored)) => {
                            let conflict = Conflict {
                                source: valid.event.source.clone(),
                                id: valid.event.id.clone(),
                                seq,
                                stored_digest: hex::encode(stored),
                                new_digest: hex::encode(digest),
                            };
                            let reason = conflict_reason(&conflict);
                            let problems = vec![Problem { pointer: "/id".into(), message: reason.clone() }];
                            self.quarantine_record(
                                &mut head,
                                &mut wb,
                                &mut quarantined_in_batch,
                                now,
                                &record.origin.to_string(),
                                &valid.canonical,
                                reason,
                                problems,
                                Some(conflict),
                            )?
                        }
                        None => {
                            let seq = head.size;
                            new.push((record, &**valid));
                            if repeated {
                                in_batch.insert(key.clone(), (seq, digest));
                            }
                            fresh.push(Item { hash, key, seq, digest });
                            head.size += 1;
                            Outcome::Accepted { seq }
                        }
                    }
                }
                Verdict::Rejected { rejection, raw } => self.quarantine_record(
                    &mut head,
                    &mut wb,
                    &mut quarantined_in_batch,
                    now,
                    &record.origin.to_string(),
                    raw,
                    rejection.to_string(),
                    rejection.problems(),
                    None,
                )?,
            };
            outcomes.push(outcome);
        }
        if !new.is_empty() {
            write_entries(&mut head, first, now, &new, &mut wb);
        }
        for position in &batch.positions {
            wb.put(prefixed(POSITION, position.source.as_bytes()), position.next.to_be_bytes());
        }
        if head.counters != self.head.counters {
            wb.put(META_COUNTERS, serde_json::to_vec(&head.counters).map_err(|e| LogError::Damaged(e.to_string()))?);
        }
        if !wb.is_empty() {
            self.store.commit(wb)?;
        }
        let accepted = head.size - self.head.size;
        tracing::debug!(
            message = "Batch committed.",
            accepted,
            duplicates = head.counters.duplicates - self.head.counters.duplicates,
            quarantined = head.counters.quarantined - self.head.counters.quarantined,
            entries = head.size
        );
        self.head = head;
        self.index.record(self.head.size, fresh);
        self.maybe_checkpoint()?;
        Ok(BatchReport { outcomes })
    }
}
