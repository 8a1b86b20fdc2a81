//! The append-only log: entries with their hash chain and Merkle tree, the `(source, id)`
//! index, quarantine, source positions, counters and signed checkpoints, all in one ordered
//! key space on a [`Storage`]. One writer appends ([`Log`] takes `&mut self` to append);
//! anything may read.
//!
//! Files: `append` (the [`evidence_ingest::Sink`]), `checkpoint`, `keys` (key continuity and
//! rotation), `proof`, `quarantine`, `verified` (entries read back and checked; damage stops
//! appends), `entries` (positions and gaps), `tree` (Merkle tiles), `index`, `runs`, `reindex` and
//! `filter` (the `(source, id)` index), `cosigned` (witness cosignatures beside the checkpoints),
//! `settle` (flushing behind the writer, for `evidence ingest`). This module owns
//! every key below and nothing else: it never reads or writes the views (`v`).
//!
//! Key space (prefixes from [`crate::store::keyspace`]; `e` and `c` are shared with the
//! verifier, see [`evidence_verifier::layout`]):
//!
//! | key | value |
//! | --- | --- |
//! | `e` + first seq (u64 BE) | segment: up to 32 consecutive entry records ([`evidence_verifier::layout`]; with sled, the value is in the entries file and sled holds its place) |
//! | `c` + tree size (u64 BE) | signed checkpoint note |
//! | `n` + level (u8) + tile (u64 BE) | 64 Merkle node hashes (`tree`) |
//! | `J` + start (u64 BE) + end (u64 BE) | a run of the `(source, id)` index: the first hash of each 4 KiB chunk of its file `index/run-<start>-<end>` (`(hash, seq)` pairs sorted by hash); written behind the log (`runs`) |
//! | `q` + number (u64 BE) | quarantine record, JSON ([`QuarantineRecord`]) |
//! | `Q` + first 16 bytes of blake3(origin, 0, raw bytes) | quarantine number: the same bad record is kept once |
//! | `p` + source name | next source offset (i64 BE) |
//! | `g` + source name | offsets the source skipped, summed (u64 BE) |
//! | `w` + tree size (u64 BE) + witness name | a witness's cosignature line of that checkpoint (`cosigned`) |
//! | `m` + name | metadata: `origin`, `counters` (JSON), `deadletters` (outbox cursor, u64 BE), `indexed` (entries the index covers, u64 BE), `indexkey` (the index's hash key), `idfilter` (the index's Bloom filter, kept on close), `keys` (verifier keys signed with, JSON; `keys`) |
//!
//! Durability, step by step, for [`Log::append`] (the `Sink` implementation):
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
//!    handed to the index (`index`), which finds them at once and writes them to the store on a
//!    thread of its own, behind the log, in runs of 65,536; a crash before they reach the disk is repaired on
//!    open, from the entries.
//!    [`Log::append_unsettled`] stops before the flush: a thread of its own flushes while the
//!    writer appends the next batch, then reads the flushed entries back and checks them, and
//!    [`Log::settle`] waits for it before the batch may be reported (`settle`).
//! 4. A checkpoint is cut when `checkpoint_every` entries have been appended since the last
//!    one, or `checkpoint_interval` has passed with new entries. Its tree size is always one
//!    already flushed; before signing, the new root is proven consistent with the previous
//!    checkpoint's from the stored nodes (a storage fault cannot get signed); the signed note
//!    is committed and flushed before it is returned or published. A checkpoint that fails
//!    after the batch's commit does not unsay step 3: the batch is reported committed, the
//!    failure is logged and kept ([`Log::checkpoint_failure`]), and the next batch retries.
//!
//! Damage: every entry read is checked against its digest and chain hash (`verified`). The
//! first damaged entry any read meets stops appends and checkpoints ([`Log::damage`]), is
//! marked in the store so later processes refuse too, and is re-checked on open (a repaired
//! store appends again); opening also checks the last segment, and a checkpoint re-reads the
//! entries it is about to sign (but for those the flush behind [`Log::append_unsettled`] read
//! back and checked already).
//!
//! A crash at any point leaves either the whole batch or none of it (and an index that covers
//! a prefix of the entries, caught up on open); re-sending the same events after a restart
//! finds them in the index, so nothing is lost or appended twice.

mod append;
mod audit;
mod checkpoint;
pub mod cosigned;
mod entries;
mod error;
mod filter;
mod index;
mod keys;
mod proof;
mod quarantine;
mod read;
mod reindex;
mod runs;
mod settle;
mod tree;
mod verified;

use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_verifier::entry::{EntryRef, GENESIS};
use evidence_verifier::layout::{key_number, segment_records, unpack_segment};
use evidence_verifier::merkle::{Hash, RootBuilder};
use evidence_verifier::note::{Note, SignerKey, VerifierKey};
use evidence_verifier::Checkpoint;
use serde::{Deserialize, Serialize};

pub use self::audit::SelfAuditError;
pub use self::checkpoint::CheckpointPolicy;
use self::entries::read_by_source;
pub use self::entries::read_position;
pub use self::error::LogError;
use self::index::{Index, Resolve};
pub use self::proof::{ConsistencyProof, InclusionProof};
pub use self::quarantine::{Conflict, QuarantineRecord, RawEncoding};
pub use self::read::{Extension, InclusionPaths, LogAt};
use self::reindex::entry_key;
pub use self::tree::ProofError;
use self::tree::{TileWriter, TreeReader};
use self::verified::{read_entries, read_entries_where, Damage};
use crate::store::keyspace::{
    prefix_end, CHECKPOINT, ENTRY, GAP, META_COUNTERS, META_DEAD_LETTERS, META_ORIGIN, POSITION,
};
use crate::store::{Storage, WriteBatch};

/// Running counts kept with the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counters {
    /// Duplicate deliveries acknowledged and not appended.
    pub duplicates: u64,
    /// Records quarantined (each distinct bad record once).
    pub quarantined: u64,
    /// Of those, `(source, id)` conflicts.
    pub conflicts: u64,
}

/// A summary of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Every verifier key the log's checkpoints were signed with, oldest first; the last
    /// signs now.
    pub verifier_keys: Vec<String>,
    /// The next offset stored for each source position (e.g. `kafka:<topic>/<partition>`).
    pub positions: std::collections::BTreeMap<String, i64>,
    /// Offsets each source skipped, summed over the log's life: records a source (a Kafka
    /// partition) no longer served when the ledger resumed it. Lost between producer and
    /// ledger unless the topic is compacted or transactional. Sources with no gap are left out.
    pub skipped_offsets: std::collections::BTreeMap<String, u64>,
    /// Why the last attempt to cut a checkpoint failed, while no later one succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_failure: Option<String>,
    /// The first damaged entry a read met (appends are stopped), in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// The ledger's log on a [`Storage`].
pub struct Log<S: Storage> {
    store: Arc<S>,
    /// The key that signs (none when opened for reading only; two during a rotation).
    signers: Vec<SignerKey>,
    /// Every verifier key the store has signed with, oldest first.
    keys: Vec<VerifierKey>,
    origin: String,
    policy: CheckpointPolicy,
    head: Head,
    index: Index<S>,
    latest: Option<Checkpoint>,
    last_cut: Instant,
    /// Why the last checkpoint attempt failed, until one succeeds.
    checkpoint_failure: Option<String>,
    /// The first damaged entry met: appends stop.
    damage: Damage,
    /// Flushes behind [`Log::append_unsettled`] (`settle`); started on first use.
    flusher: Option<self::settle::Flusher>,
    /// Batches were appended unsettled since the last flush was asked for.
    unsettled: bool,
    /// Entries below this were read back and checked after their flush (`settle`): a
    /// checkpoint need not read them again.
    checked: u64,
    /// Segments appended unsettled since the last flush was asked for, as written.
    written: self::append::Written,
}

impl<S: Storage> std::fmt::Debug for Log<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("origin", &self.origin).field("size", &self.head.size).finish_non_exhaustive()
    }
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

/// The origin the signers name: the first signer's, and every other signer's the same.
fn origin_of(signers: &[SignerKey]) -> Result<String, LogError> {
    let origin = signers.first().map(|s| s.name().to_string()).ok_or(LogError::NoSigner)?;
    if let Some(k) = signers.iter().find(|k| k.name() != origin) {
        return Err(LogError::OriginMismatch { store: origin, key: k.name().to_string() });
    }
    Ok(origin)
}

/// Checks the store's origin against `origin`; a new store takes it.
fn check_origin<S: Storage>(store: &S, origin: &str) -> Result<(), LogError> {
    match store.get(META_ORIGIN)? {
        Some(stored) if stored.as_ref() != origin.as_bytes() => Err(LogError::OriginMismatch {
            store: String::from_utf8_lossy(stored.as_ref()).into_owned(),
            key: origin.to_string(),
        }),
        Some(_) => Ok(()),
        None => {
            let mut wb = WriteBatch::default();
            wb.put(META_ORIGIN, origin.as_bytes());
            Ok(store.commit(wb)?)
        }
    }
}

/// The log's size and the chain hash of its last entry, from the last segment.
fn tail<S: Storage>(store: &S) -> Result<(u64, Hash), LogError> {
    let Some((key, segment)) = store.last_in(&[ENTRY], &prefix_end(ENTRY))? else { return Ok((0, GENESIS)) };
    let first = key_number(key.as_ref()).ok_or_else(|| LogError::Damaged("malformed segment key".into()))?;
    let mut last = None;
    let mut count = 0u64;
    let segment = unpack_segment(segment.as_ref()).map_err(|e| LogError::Damaged(format!("segment {first}: {e}")))?;
    for record in segment_records(&segment) {
        last = Some(record.map_err(|e| LogError::Damaged(format!("segment {first}: {e}")))?);
        count += 1;
    }
    let last = last.ok_or_else(|| LogError::Damaged(format!("segment {first} is empty")))?;
    let seq = first + count - 1;
    let entry = EntryRef::decode(last).map_err(|e| LogError::Damaged(format!("entry {seq}: {e}")))?;
    Ok((seq + 1, *entry.chain))
}

/// The latest signed checkpoint, checked against the stored tree of a log of `size` entries:
/// a store whose tree no longer matches what it signed is not extended.
fn latest_checkpoint<S: Storage>(store: &S, size: u64) -> Result<Option<Checkpoint>, LogError> {
    let Some((_, note)) = store.last_in(&[CHECKPOINT], &prefix_end(CHECKPOINT))? else { return Ok(None) };
    let damaged = |e: String| LogError::Damaged(format!("latest checkpoint: {e}"));
    let note = Note::parse(note.as_ref()).map_err(|e| damaged(e.to_string()))?;
    let cp = Checkpoint::parse(&note.text).map_err(|e| damaged(e.to_string()))?;
    if cp.size > size || TreeReader::new(store).root(cp.size)? != cp.root {
        return Err(LogError::Damaged(format!(
            "the entries no longer match the latest checkpoint (size {}); run evidence-verify",
            cp.size
        )));
    }
    Ok(Some(cp))
}

impl<S: Storage> Log<S> {
    /// Opens the log on `store` to append, signing checkpoints with `signers` (the first
    /// names the log: its origin, and must be the key the store signs with; see `keys`). A new
    /// store takes that origin and key; an existing one must already have them.
    pub fn open(store: S, signers: Vec<SignerKey>, policy: CheckpointPolicy) -> Result<Self, LogError> {
        let origin = origin_of(&signers)?;
        check_origin(&store, &origin)?;
        let keys = keys::check(&store, &signers[0])?;
        Log::open_with(store, signers, keys, origin, policy)
    }

    /// Opens an existing log for reading, without its signer key: everything but appending
    /// and signing works.
    pub fn open_reader(store: S, policy: CheckpointPolicy) -> Result<Self, LogError> {
        let origin = store.get(META_ORIGIN)?.ok_or_else(|| LogError::Damaged("the store names no origin".into()))?;
        let origin = String::from_utf8_lossy(origin.as_ref()).into_owned();
        let keys = keys::history(&store)?;
        Log::open_with(store, Vec::new(), keys, origin, policy)
    }

    fn open_with(
        store: S,
        signers: Vec<SignerKey>,
        keys: Vec<VerifierKey>,
        origin: String,
        policy: CheckpointPolicy,
    ) -> Result<Self, LogError> {
        let (size, chain) = tail(&store)?;
        let tree = TreeReader::new(&store).frontier(size)?;
        let tiles = TileWriter::load(&store, size)?;
        let counters = match store.get(META_COUNTERS)? {
            Some(v) => serde_json::from_slice(v.as_ref()).map_err(|e| LogError::Damaged(format!("counters: {e}")))?,
            None => Counters::default(),
        };
        let next_quarantine = quarantine::next_number(&store)?;
        let damage = Damage::on_open(&store)?;
        let latest = latest_checkpoint(&store, size)?;
        let store = Arc::new(store);
        // Re-indexing reads entries too: damage it meets stops appends like any other read.
        let resolve: Resolve = {
            let store = Arc::clone(&store);
            Arc::new(move |seq| match read_entries(&*store, seq).next() {
                Some(Ok((at, record))) if at == seq => entry_key(seq, &record),
                Some(Err(e)) => Err(e),
                _ => Err(LogError::Damaged(format!("entry {seq}, named by the (source, id) index, is missing"))),
            })
        };
        let index = Index::open(
            Arc::clone(&store),
            size,
            |from| {
                read_entries(&*store, from).inspect(|r| {
                    if let Err(e) = r {
                        damage.note(&*store, e);
                    }
                })
            },
            resolve,
        )?;
        Ok(Log {
            store,
            signers,
            keys,
            origin,
            policy,
            head: Head { size, chain, tree, tiles, counters, next_quarantine },
            index,
            latest,
            last_cut: Instant::now(),
            checkpoint_failure: None,
            damage,
            flusher: None,
            unsettled: false,
            checked: 0,
            written: Vec::new(),
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
    /// with every committed batch (writing what it holds as a run, however small), and
    /// flushes it. Appends never need this (a lagging index
    /// is caught up on open); it is for measuring all the work of appends, and for a copy of
    /// the store that needs no catching up.
    pub fn settle_index(&self) -> Result<(), LogError> {
        self.index.settle()
    }

    /// The underlying store (read access, e.g. for views).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The underlying store, shared, for readers on other threads (they read; only the log
    /// writes the keys it owns).
    pub fn shared_store(&self) -> Arc<S> {
        Arc::clone(&self.store)
    }

    /// A summary of the log.
    pub fn status(&self) -> Status {
        Status {
            origin: self.origin.clone(),
            entries: self.head.size,
            duplicates: self.head.counters.duplicates,
            quarantined: self.head.counters.quarantined,
            conflicts: self.head.counters.conflicts,
            checkpoint_size: self.latest_size(),
            root: B64.encode(self.head.tree.root()),
            verifier_keys: self.verifier_keys().iter().map(ToString::to_string).collect(),
            positions: read_by_source(&*self.store, POSITION)
                .unwrap_or_default()
                .into_iter()
                .map(|(source, next)| (source, next as i64))
                .collect(),
            skipped_offsets: read_by_source(&*self.store, GAP).unwrap_or_default(),
            checkpoint_failure: self.checkpoint_failure.clone(),
            damaged: self.damage().map(|(seq, problem)| format!("entry {seq}: {problem}")),
        }
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Option<&Checkpoint> {
        self.latest.as_ref()
    }

    /// The tree size of the latest signed checkpoint (0 if none).
    pub fn latest_size(&self) -> u64 {
        self.latest.as_ref().map_or(0, |c| c.size)
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
        self.at().checkpoint_note(size)
    }

    /// The entry record at `seq`.
    pub fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.entries(seq).next().transpose()?.filter(|(s, _)| *s == seq).map(|(_, r)| r))
    }

    /// Entry records from `from` on, in order, each checked as it is read (`verified`). A
    /// damaged one comes as [`LogError::BadEntry`] and reading goes on after it; the first one
    /// met stops appends ([`Log::damage`]).
    pub fn entries(&self, from: u64) -> impl Iterator<Item = Result<(u64, Vec<u8>), LogError>> + '_ {
        read_entries(&*self.store, from).inspect(|r| {
            if let Err(e) = r {
                self.damage.note(&*self.store, e);
            }
        })
    }

    /// Like [`Log::entries`], the records `keep` picks only (see
    /// [`verified::read_entries_where`]): a scan for a few entries among many checks and copies
    /// only those.
    pub fn entries_where<'s>(
        &'s self,
        from: u64,
        keep: impl Fn(&EntryRef<'_>) -> bool + 's,
    ) -> impl Iterator<Item = Result<(u64, Vec<u8>), LogError>> + 's {
        read_entries_where(&*self.store, from, keep).inspect(|r| {
            if let Err(e) = r {
                self.damage.note(&*self.store, e);
            }
        })
    }

    /// The first damaged entry a read met, with what is wrong with it: while there is one,
    /// appends are refused.
    pub fn damage(&self) -> Option<&(u64, String)> {
        self.damage.get()
    }

    /// Quarantine records from number `from` on, at most `limit`.
    pub fn quarantine(&self, from: u64, limit: usize) -> Result<Vec<QuarantineRecord>, LogError> {
        self.at().quarantine(from, limit)
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
}
