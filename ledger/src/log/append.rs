//! [`Log`]'s append (its [`Sink`] implementation): dedupe and conflicts through the index,
//! quarantine, entries encoded and chained into their segments, Merkle tiles, positions and
//! counters in one flushed batch; then the index and the checkpoint follow. The numbered
//! durability steps are at the top of [`crate::log`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use evidence_ingest::{Batch, BatchReport, Outcome, Record, Sink, Verdict};
use evidence_schemas::{Problem, ValidEvent};
use evidence_verifier::entry::{chain_next, encode_unchained_into, CHAIN_RANGE, LEAF_OFFSET};
use evidence_verifier::layout::{pack_segment, push_record, segment_key};
use evidence_verifier::merkle::leaf_hash;

use super::entries::{gap_key, position_key};
use super::error::LogError;
use super::index::{Item, Lookup};
use super::quarantine::{Conflict, Quarantine, Rejected};
use super::{Head, Log};
use crate::store::keyspace::META_COUNTERS;
use crate::store::{Storage, WriteBatch};

/// Most entries in one segment value. Segments are stored compressed: 32 gateway requests of
/// 600 bytes take about 3 KB (their digests and chain hashes, 64 bytes an entry, do not
/// compress), and sled splits its leaf nodes by key count (16), so values of this size keep
/// nodes well below its blob threshold. More entries a value compress better and cost fewer
/// keys; reading one entry decompresses its whole segment (about 20 KB, some microseconds).
const SEGMENT_ENTRIES: usize = 32;
/// The fewest records a batch needs before a helper thread takes half of its lookups, or its
/// encoding: a scoped thread is started and joined for each, and under that it costs more
/// than it saves (the writer's narrow slices of 100 went from 53,000-57,000 to 68,000-72,000
/// events/s without, `examples/slices`).
const HELPED: usize = 256;

/// [`HELPED`], on a machine of more than two cores; on two or fewer, no batch is helped. There
/// the intake validates on the other core, so a helper waits for a time slice while the writer
/// waits for the helper: `evidence ingest` of gateway requests spent 1.6 s of its 12 s in
/// lookups with a helper and 0.7 s without, and ran 4-6% faster.
fn helped() -> usize {
    static FROM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *FROM.get_or_init(|| match std::thread::available_parallelism().map_or(1, |n| n.get()) {
        cores if cores > 2 => HELPED,
        _ => usize::MAX,
    })
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
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

/// Segment values as written, each with the sequence number of its first entry, before
/// compression.
pub(super) type Written = Vec<(u64, Vec<u8>)>;

/// One segment value with its entry records' places in it, encoded but not yet chained.
type Unchained = (Vec<u8>, Vec<Range<usize>>);

/// Encodes `new` (entries `first..`) into segment values and puts them, with the Merkle tiles
/// they change, into `wb`; moves `head`'s chain and tree on.
///
/// Encoding, the Merkle leaf and node hashes and the tiles need no order between entries but
/// the tree's, so a helper thread does them, segment by segment, handing each finished segment
/// to this thread, which only chains it (the chain is sequential) and writes its chain hashes
/// in place. A small batch does both in turn on this thread.
///
/// Returns the segments as written, before compression, for the check after their flush
/// (`settle`).
fn write_entries(head: &mut Head, first: u64, now: i64, new: &NewEntries<'_>, wb: &mut WriteBatch) -> Written {
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
    let mut written = Written::new();
    let mut seal = |wb: &mut WriteBatch| {
        for (n, (mut value, records)) in rx.iter().enumerate() {
            for range in records {
                chain = chain_next(&chain, &value[range.start + LEAF_OFFSET..range.end]);
                value[range.start + CHAIN_RANGE.start..range.start + CHAIN_RANGE.end].copy_from_slice(&chain);
            }
            let at = first + (n * SEGMENT_ENTRIES) as u64;
            wb.put(segment_key(at), pack_segment(&value));
            written.push((at, value));
        }
    };
    let tiles_wb = if new.len() < helped() {
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
    written
}

/// One batch in the making: the head it advances, its write batch, and what it found.
struct Pass<'b, 's, S: Storage> {
    head: Head,
    wb: WriteBatch,
    quarantine: Quarantine<'s, S>,
    /// Index entries added by this batch, for events that appear in it more than once.
    in_batch: HashMap<Vec<u8>, (u64, [u8; 32])>,
    /// The new entries' index entries.
    fresh: Vec<Item>,
    /// The new entries.
    new: NewEntries<'b>,
    /// Their segments as written.
    written: Written,
}

impl<'b, S: Storage> Pass<'b, '_, S> {
    /// Keeps `rejected` out of the log.
    fn quarantine(&mut self, rejected: Rejected<'_>) -> Result<Outcome, LogError> {
        let reason = rejected.reason.clone();
        let is_conflict = rejected.conflict.is_some();
        if self.quarantine.put(&mut self.wb, &mut self.head.next_quarantine, rejected)? {
            self.head.counters.quarantined += 1;
            self.head.counters.conflicts += u64::from(is_conflict);
        }
        Ok(Outcome::Quarantined { reason })
    }

    /// A valid event: a duplicate, a conflict, or a new entry.
    fn valid(
        &mut self,
        record: &'b Record,
        valid: &'b ValidEvent,
        lookup: Lookup,
        repeated: bool,
    ) -> Result<Outcome, LogError> {
        let Lookup { key, hash, stored } = lookup;
        let digest = valid.digest;
        let existing = if repeated { self.in_batch.get(&key).copied().or(stored) } else { stored };
        match existing {
            Some((seq, stored)) if stored == digest => {
                self.head.counters.duplicates += 1;
                Ok(Outcome::Duplicate { seq })
            }
            Some((seq, stored)) => {
                let conflict = Conflict {
                    source: valid.event.source.clone(),
                    id: valid.event.id.clone(),
                    seq,
                    stored_digest: hex::encode(stored),
                    new_digest: hex::encode(digest),
                };
                let reason = conflict.reason();
                let problems = vec![Problem { pointer: "/id".into(), message: reason.clone() }];
                let origin = record.origin.to_string();
                let raw = &valid.canonical;
                self.quarantine(Rejected { origin: &origin, raw, reason, problems, conflict: Some(conflict) })
            }
            None => {
                let seq = self.head.size;
                self.new.push((record, valid));
                if repeated {
                    self.in_batch.insert(key.clone(), (seq, digest));
                }
                self.fresh.push(Item { hash, key, seq, digest });
                self.head.size += 1;
                Ok(Outcome::Accepted { seq })
            }
        }
    }
}

impl<S: Storage> Log<S> {
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
        if valid.len() < helped() {
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

    /// Steps 1 and 2 of the durability steps: every record's outcome, and the batch to commit.
    fn prepare<'b>(&self, batch: &'b Batch, now: i64) -> Result<(Pass<'b, '_, S>, Vec<Outcome>), LogError> {
        let lookups = self.lookup(batch)?;
        let repeated = repeated(&lookups);
        let quarantine = Quarantine { store: &*self.store, seen: Default::default(), received: rfc3339(now) };
        let mut pass = Pass {
            head: self.head.clone(),
            wb: WriteBatch::default(),
            quarantine,
            in_batch: HashMap::new(),
            fresh: Vec::with_capacity(lookups.len()),
            new: Vec::with_capacity(lookups.len()),
            written: Written::new(),
        };
        let mut outcomes = Vec::with_capacity(batch.records.len());
        let mut lookups = lookups.into_iter().zip(repeated);
        for record in &batch.records {
            let outcome = match &record.verdict {
                Verdict::Valid(valid) => {
                    let (lookup, repeated) = lookups.next().expect("one lookup per valid record");
                    pass.valid(record, valid, lookup, repeated)?
                }
                Verdict::Rejected { rejection, raw } => {
                    let origin = record.origin.to_string();
                    let (reason, problems) = (rejection.to_string(), rejection.problems());
                    pass.quarantine(Rejected { origin: &origin, raw, reason, problems, conflict: None })?
                }
            };
            outcomes.push(outcome);
        }
        if !pass.new.is_empty() {
            pass.written = write_entries(&mut pass.head, self.head.size, now, &pass.new, &mut pass.wb);
        }
        for position in &batch.positions {
            pass.wb.put(position_key(&position.source), position.next.to_be_bytes());
            if position.skipped > 0 {
                let key = gap_key(&position.source);
                let before =
                    self.store.get(&key)?.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes);
                pass.wb.put(key, before.saturating_add(position.skipped).to_be_bytes());
            }
        }
        if pass.head.counters != self.head.counters {
            pass.wb.put(META_COUNTERS, serde_json::to_vec(&pass.head.counters).expect("counters serialize"));
        }
        Ok((pass, outcomes))
    }
}

impl<S: Storage> Sink for Log<S> {
    type Error = LogError;

    /// Appends a batch (the durability steps at the top of [`crate::log`]). `Ok` means the
    /// batch is committed; a checkpoint that is due but fails to be cut does not undo that: it
    /// is logged, kept in [`Log::checkpoint_failure`], and tried again after the next batch.
    fn append(&mut self, batch: &Batch) -> Result<BatchReport, LogError> {
        self.append_with(batch, true)
    }
}

impl<S: Storage> Log<S> {
    /// Appends a batch as [`Sink::append`] does, but without waiting for the disk: applied
    /// atomically and at once, on disk with the next durable commit ([`Log::flush`] or an
    /// append), and no checkpoint is cut. Nothing of it may be acknowledged before that
    /// commit returns. It lets one durable round be written as several smaller atomic
    /// batches: sled holds every reader back while a batch applies.
    pub fn append_unflushed(&mut self, batch: &Batch) -> Result<BatchReport, LogError> {
        self.append_with(batch, false)
    }

    /// Puts every batch appended so far on disk, then cuts a checkpoint if one is due (a
    /// failure to cut one is logged and kept, as after an append).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.store.commit(WriteBatch::default())?;
        self.checkpoint_if_due();
        Ok(())
    }

    pub(super) fn checkpoint_if_due(&mut self) {
        if let Err(error) = self.maybe_checkpoint() {
            tracing::error!(message = "Failed to cut a checkpoint; the batch is stored, the next one retries.", %error);
        }
    }

    fn append_with(&mut self, batch: &Batch, durable: bool) -> Result<BatchReport, LogError> {
        self.append_written(batch, durable).map(|(report, _)| report)
    }

    /// Appends as [`Log::append_with`] does; also returns the batch's segments as written.
    pub(super) fn append_written(&mut self, batch: &Batch, durable: bool) -> Result<(BatchReport, Written), LogError> {
        if !self.can_sign() {
            return Err(LogError::NoSigner);
        }
        if let Some((seq, problem)) = self.damage() {
            return Err(LogError::AppendsStopped { seq: *seq, problem: problem.clone() });
        }
        self.index.check()?;
        let now = now_micros();
        let (pass, outcomes) = self.prepare(batch, now)?;
        let Pass { head, wb, fresh, written, .. } = pass;
        match (wb.is_empty(), durable) {
            (false, true) => self.store.commit(wb)?,
            (false, false) => self.store.apply(wb)?,
            (true, _) => {}
        }
        tracing::debug!(
            message = "Batch committed.",
            accepted = head.size - self.head.size,
            duplicates = head.counters.duplicates - self.head.counters.duplicates,
            quarantined = head.counters.quarantined - self.head.counters.quarantined,
            entries = head.size,
            durable
        );
        self.head = head;
        self.index.record(self.head.size, fresh);
        if durable {
            self.checkpoint_if_due();
        }
        Ok((BatchReport { outcomes }, written))
    }
}
