//! The `(source, id)` index: which entry holds each event, so that a redelivered event is
//! acknowledged as a duplicate and the same `(source, id)` with other content is caught as a
//! conflict.
//!
//! The index is derived from the entries (each entry holds its event, and so its source and
//! id), so it is written behind the log rather than in the log's own batch: one sled key per
//! event was the largest single cost of an append.
//! 1. [`super::Log`]'s append commits a batch of entries (flushed), then hands the batch's
//!    index entries to [`Index::record`]. They are held in memory ("pending") and queued for a
//!    writer thread, which applies them with the index watermark `m indexed` (the number of
//!    entries indexed) in one atomic batch, and only then drops them from pending.
//! 2. A lookup ([`Index::lookup`]) consults the Bloom filter, then pending, then the store, in
//!    that order: a key leaves pending only after it is in the store, so every committed entry
//!    is found, by one or the other. Dedup stays exact.
//! 3. An index batch is applied only after its entries were flushed, so the store never
//!    indexes an entry it does not hold. A crash loses at most the index batches not yet on
//!    disk; [`Index::open`] rebuilds them from the entries past the watermark before the log
//!    accepts anything.
//! 4. At most two batches wait for the writer thread; a third waits in `record`. If the store
//!    fails under the writer thread (or the thread panics), the keys stay pending (lookups
//!    stay exact) and the log refuses the next batch with the error; a batch already
//!    committed stays accepted. Reopening rebuilds the index from the entries.
//!
//! 5. The Bloom filter is built from every index key in the store, which takes seconds on a
//!    store of millions of entries; [`Index::open`] leaves that to a thread of its own. Until
//!    it is done every lookup reads the index (exact, only slower); the hashes of the keys
//!    recorded meanwhile are kept with the build and added to the filter when it is taken. A
//!    build that fails leaves every lookup reading the index until the filter is next rebuilt.
//!    A filter that fills up (more keys than it was sized for) is grown the same way: a filter
//!    sized for twice the log, hashing as the full one, is built on that thread from the store
//!    (once every pending key is in it), while the full one goes on answering (it never
//!    forgets a key, it only guesses more often). Appends never wait for it.
//! 6. A clean close keeps a complete filter in the store with the size of the log it covers
//!    ([`META_ID_FILTER`]), when the log grew since it opened (finishing the filter's build
//!    first, if it is still running); [`Index::open`] takes it back
//!    instead of building one only when it covers exactly the log it opens. A log that grew
//!    after it (a crash, an older binary) or a damaged one has its filter rebuilt as above.
//!
//! A clean close ([`Drop`]) stops a filter build, writes the pending batches, keeps the
//! filter (step 6) and flushes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use evidence_verifier::entry::EntryRef;

use super::error::LogError;
use super::filter::IdFilter;
use crate::store::keyspace::{prefix_end, INDEX, META_ID_FILTER, META_INDEXED};
use crate::store::{Storage, StorageError, StorageErrorKind, WriteBatch};

/// Entries re-indexed per store batch when catching up on open.
const CATCH_UP_BATCH: usize = 4096;

/// The index key of `(source, id)`: `i` + source length (u16 BE) + source + id.
fn id_key(source: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + source.len() + id.len());
    k.push(INDEX);
    k.extend_from_slice(&(source.len() as u16).to_be_bytes());
    k.extend_from_slice(source.as_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The index value: seq (u64 BE) + blake3 event digest.
fn id_value(seq: u64, digest: &[u8; 32]) -> [u8; 40] {
    let mut v = [0; 40];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(digest);
    v
}

fn parse_id_value(v: &[u8]) -> Result<(u64, [u8; 32]), LogError> {
    let bad = || LogError::Damaged("malformed (source, id) index value".into());
    let seq = u64::from_be_bytes(v.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let digest = v.get(8..40).ok_or_else(bad)?.try_into().map_err(|_| bad())?;
    Ok((seq, digest))
}

/// What the index says about one incoming event.
pub(crate) struct Lookup {
    /// Its index key.
    pub(crate) key: Vec<u8>,
    /// The key's hash in the filter ([`IdFilter::hash`]).
    pub(crate) hash: u64,
    /// `(seq, digest)` of the entry already holding its `(source, id)`.
    pub(crate) stored: Option<(u64, [u8; 32])>,
}

/// One new entry's index entry.
pub(crate) struct Item {
    /// The key's hash in the filter.
    pub(crate) hash: u64,
    /// The index key.
    pub(crate) key: Vec<u8>,
    /// The entry.
    pub(crate) seq: u64,
    /// Its event digest.
    pub(crate) digest: [u8; 32],
}

/// A committed batch's index entries, sorted by filter hash, not yet in the store.
struct Pending {
    items: Vec<Item>,
    /// The number of entries indexed once it is written.
    end: u64,
}

impl Pending {
    fn get(&self, key: &[u8], hash: u64) -> Option<(u64, [u8; 32])> {
        let from = self.items.partition_point(|i| i.hash < hash);
        self.items[from..].iter().take_while(|i| i.hash == hash).find(|i| i.key == key).map(|i| (i.seq, i.digest))
    }
}

#[derive(Default)]
struct Queue {
    /// Oldest first; the writer thread removes the front once it is in the store.
    pending: VecDeque<Arc<Pending>>,
    /// Why the writer thread stopped.
    failed: Option<StorageError>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled whenever the queue shrinks or the writer fails.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the writer stopped (the first reason is kept) and wakes whoever waits on it.
    fn fail(&self, reason: StorageError) {
        self.lock().failed.get_or_insert(reason);
        self.changed.notify_all();
    }
}

/// Marks the writer stopped if its thread ends by a panic, so that nothing waits for it.
struct PanicGuard(Arc<Shared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(StorageError::new(StorageErrorKind::Other, "the index writer panicked"));
        }
    }
}

/// The writer thread: writes each batch's keys, then the watermark, in order, then drops it
/// from pending; stops at the first store error, leaving that batch and the later ones
/// pending. Each key is a write of its own ([`Storage::apply_each`]), which never holds
/// readers back; a crash before the watermark leaves keys that re-indexing from the
/// watermark writes again, with the same values.
fn write_behind<S: Storage>(store: &S, shared: Arc<Shared>, batches: Receiver<Arc<Pending>>) {
    let guard = PanicGuard(shared);
    for batch in batches {
        let mut wb = WriteBatch::default();
        for item in &batch.items {
            wb.put(item.key.as_slice(), id_value(item.seq, &item.digest));
        }
        // The watermark last, a write of its own: one key needs no batch.
        wb.put(META_INDEXED, batch.end.to_be_bytes());
        if let Err(e) = store.apply_each(wb) {
            guard.0.fail(e);
            return;
        }
        let front = guard.0.lock().pending.pop_front();
        debug_assert!(front.is_some_and(|f| Arc::ptr_eq(&f, &batch)), "index batches are written in order");
        guard.0.changed.notify_all();
    }
}

/// The filter being built from the store's index keys (step 5 of the module docs).
struct Building {
    thread: JoinHandle<Result<IdFilter, LogError>>,
    stop: Arc<AtomicBool>,
    /// The hashes of the keys recorded since the build began, for the built filter.
    recorded: Vec<u64>,
}

/// Starts building, into `filter`, a filter of every index key in `store`.
fn build_filter<S: Storage>(store: Arc<S>, mut filter: IdFilter) -> Result<Building, LogError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("evidence-filter".into())
        .spawn(move || {
            for (n, item) in store.range(&[INDEX], &prefix_end(INDEX)).enumerate() {
                if n % 4096 == 0 && stopped.load(Ordering::Relaxed) {
                    break;
                }
                filter.insert(item?.0.as_ref());
            }
            Ok(filter)
        })
        .map_err(|e| LogError::Storage(StorageError::from(e)))?;
    Ok(Building { thread, stop, recorded: Vec::new() })
}

/// The `(source, id)` index with its filter and its writer thread (see the module docs).
pub(crate) struct Index<S: Storage> {
    store: Arc<S>,
    /// The filter; while `building`, only of the keys recorded since the index opened.
    filter: IdFilter,
    /// Whether `filter` holds every key of the index; if not, every lookup reads the index.
    complete: bool,
    building: Option<Building>,
    /// The log's size as last recorded, and whether it grew since the index opened.
    size: u64,
    grew: bool,
    shared: Arc<Shared>,
    tx: Option<SyncSender<Arc<Pending>>>,
    writer: Option<JoinHandle<()>>,
}

impl<S: Storage> Index<S> {
    /// Opens the index of a log of `size` entries: re-indexes the entries past the watermark
    /// (read through `entries(from)`), starts building the filter and starts the writer thread.
    pub(crate) fn open<I>(store: Arc<S>, size: u64, entries: impl FnOnce(u64) -> I) -> Result<Self, LogError>
    where
        I: Iterator<Item = Result<(u64, Vec<u8>), LogError>>,
    {
        catch_up(&*store, size, entries)?;
        let (filter, complete, building) = match kept_filter(&*store, size) {
            Some(filter) => (filter, true, None),
            None => {
                let filter = IdFilter::with_capacity(filter_capacity(size))?;
                let building = build_filter(Arc::clone(&store), filter.sibling(filter_capacity(size)))?;
                (filter, false, Some(building))
            }
        };
        let shared = Arc::new(Shared::default());
        let (tx, rx) = sync_channel::<Arc<Pending>>(1);
        let writer = {
            let (store, shared) = (Arc::clone(&store), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("evidence-index".into())
                .spawn(move || write_behind(&*store, shared, rx))
                .map_err(|e| LogError::Storage(StorageError::from(e)))?
        };
        Ok(Index { store, filter, complete, building, size, grew: false, shared, tx: Some(tx), writer: Some(writer) })
    }

    /// What the index holds for `(source, id)`. Safe to call from several threads.
    pub(crate) fn lookup(&self, source: &str, id: &str) -> Result<Lookup, LogError> {
        let key = id_key(source, id);
        let hash = self.filter.hash(&key);
        let stored = if !self.complete || self.filter.may_contain_hashed(hash) {
            // Pending first: a key leaves pending only once it is in the store.
            let pending = self.shared.lock().pending.iter().find_map(|p| p.get(&key, hash));
            match pending {
                Some(found) => Some(found),
                None => self.store.get(&key)?.map(|b| parse_id_value(b.as_ref())).transpose()?,
            }
        } else {
            None
        };
        Ok(Lookup { key, hash, stored })
    }

    /// Puts what the writer has applied on disk (an empty durable commit).
    fn flush(&self) -> Result<(), LogError> {
        Ok(self.store.commit(WriteBatch::default())?)
    }

    /// Fails if the writer thread has stopped (on a store error, or a panic).
    pub(crate) fn check(&self) -> Result<(), LogError> {
        match &self.shared.lock().failed {
            Some(e) => Err(failed(e)),
            None => Ok(()),
        }
    }

    /// Records the index entries of a committed batch, after which the log holds `end`
    /// entries. They are found by lookups at once and written to the store behind the log.
    ///
    /// It cannot fail: the batch is committed, so its records are accepted whatever happens
    /// here. If the writer has stopped, the entries stay pending (found by lookups) and the
    /// next [`Index::check`] refuses the next batch.
    pub(crate) fn record(&mut self, end: u64, mut items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        (self.size, self.grew) = (end, true);
        for item in &items {
            self.filter.insert_hashed(item.hash);
        }
        if let Some(building) = &mut self.building {
            building.recorded.extend(items.iter().map(|i| i.hash));
        }
        if self.building.as_ref().is_some_and(|b| b.thread.is_finished()) {
            self.finish_building();
        }
        items.sort_unstable_by_key(|i| i.hash);
        let batch = Arc::new(Pending { items, end });
        self.shared.lock().pending.push_back(Arc::clone(&batch));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            self.shared.fail(StorageError::new(StorageErrorKind::Other, "the index writer has stopped"));
            return;
        }
        if self.complete && self.building.is_none() && self.filter.is_full() {
            self.grow(end);
        }
    }

    /// Starts building a filter for twice the log of `end` entries in place of the full one
    /// (step 5). It is built from the store, so everything pending goes there first; if that
    /// cannot be, the full filter stays (it never forgets a key; it only guesses more often).
    fn grow(&mut self, end: u64) {
        let bigger = self.filter.sibling(filter_capacity(end));
        match self.settle().and_then(|()| build_filter(Arc::clone(&self.store), bigger)) {
            Ok(building) => {
                tracing::info!(message = "The id filter is full; a bigger one is being built.", entries = end);
                self.building = Some(building);
            }
            Err(e) => tracing::warn!(message = "The id filter is full and could not be rebuilt.", error = %e),
        }
    }

    /// Takes the finished filter build, with the keys recorded while it ran. A filter that
    /// was complete (one being grown) stays, and goes on answering, if the build failed.
    fn finish_building(&mut self) {
        let Some(building) = self.building.take() else { return };
        let growing = self.complete;
        match building.thread.join() {
            Ok(Ok(mut built)) => {
                for hash in building.recorded {
                    built.insert_hashed(hash);
                }
                (self.filter, self.complete) = (built, true);
                if growing {
                    tracing::info!(message = "Id filter grown.");
                } else {
                    tracing::debug!(message = "Id filter built.");
                }
            }
            Ok(Err(e)) if growing => tracing::warn!(message = "The id filter could not be grown.", error = %e),
            Err(_) if growing => tracing::warn!(message = "The id filter's thread panicked while growing it."),
            Ok(Err(e)) => {
                tracing::warn!(message = "The id filter could not be built; every lookup reads the index.", error = %e)
            }
            Err(_) => tracing::warn!(message = "The id filter's thread panicked; every lookup reads the index."),
        }
    }

    /// Waits until every recorded batch is in the store, and flushes it.
    pub(crate) fn settle(&self) -> Result<(), LogError> {
        let mut queue = self.shared.lock();
        loop {
            if let Some(e) = &queue.failed {
                return Err(failed(e));
            }
            if queue.pending.is_empty() {
                drop(queue);
                return self.flush();
            }
            queue = self.shared.changed.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

impl<S: Storage> Drop for Index<S> {
    fn drop(&mut self) {
        // The filter's builder holds the store: it ends first. When the log grew, the build
        // is finished (on a store of millions of entries a short run ends before it), so that
        // the filter can be kept and the next open need not build it again; otherwise stopped.
        if self.grew && self.check().is_ok() {
            self.finish_building();
        } else if let Some(building) = self.building.take() {
            building.stop.store(true, Ordering::Relaxed);
            let _ = building.thread.join();
        }
        // Closing the channel ends the writer's loop once it has written what is queued.
        drop(self.tx.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let mut last = WriteBatch::default();
        if self.complete && self.grew && self.check().is_ok() {
            last.put(META_ID_FILTER, self.filter.to_bytes(self.size));
        }
        if let Err(e) = self.store.commit(last) {
            tracing::warn!(message = "Could not flush the index on close; it is rebuilt on open.", error = %e);
        }
    }
}

/// The filter a clean close kept ([`META_ID_FILTER`]), if it covers exactly the log of `size`
/// entries and is intact.
fn kept_filter<S: Storage>(store: &S, size: u64) -> Option<IdFilter> {
    let kept = match store.get(META_ID_FILTER) {
        Ok(kept) => kept?,
        Err(e) => {
            tracing::warn!(message = "The kept id filter could not be read; it is rebuilt.", error = %e);
            return None;
        }
    };
    match IdFilter::from_bytes(kept.as_ref()) {
        Some((filter, covered)) if covered == size => Some(filter),
        Some((_, covered)) => {
            tracing::debug!(
                message = "The kept id filter is of another size of the log; it is rebuilt.",
                covered,
                size
            );
            None
        }
        None => {
            tracing::warn!(message = "The kept id filter is damaged; it is rebuilt.");
            None
        }
    }
}

fn failed(reason: &StorageError) -> LogError {
    LogError::IndexStopped(reason.clone())
}

/// The number of entries the stored index covers.
fn indexed<S: Storage>(store: &S) -> Result<u64, LogError> {
    match store.get(META_INDEXED)? {
        // A store without a watermark is re-indexed from its first entry (idempotent).
        None => Ok(0),
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| LogError::Damaged("malformed index watermark".into())),
    }
}

/// Re-indexes the entries from the watermark to `size`.
fn catch_up<S: Storage, I>(store: &S, size: u64, entries: impl FnOnce(u64) -> I) -> Result<(), LogError>
where
    I: Iterator<Item = Result<(u64, Vec<u8>), LogError>>,
{
    #[derive(serde::Deserialize)]
    struct Names {
        source: String,
        id: String,
    }
    let from = indexed(store)?;
    if from > size {
        return Err(LogError::Damaged(format!(
            "the (source, id) index covers {from} entries but the log holds {size}; run evidence-verify"
        )));
    }
    if from == size {
        return Ok(());
    }
    let mut wb = WriteBatch::default();
    let mut expected = from;
    let mut after_damage = false;
    for record in entries(from) {
        let (seq, record) = match record {
            Ok(pair) => pair,
            // A damaged entry cannot be indexed; reading it stopped appends (`verified`).
            Err(LogError::BadEntry { seq, problem }) if seq >= expected => {
                tracing::warn!(message = "A damaged entry is left out of the (source, id) index.", seq, %problem);
                (expected, after_damage) = (seq + 1, true);
                continue;
            }
            Err(e) => return Err(e),
        };
        // A segment whose framing broke hides the entries after the break: skip them too.
        if seq > expected && after_damage {
            expected = seq;
        }
        if seq != expected {
            return Err(LogError::Damaged(format!("re-indexing: entry {expected} is missing (the next is {seq})")));
        }
        let entry = EntryRef::decode(&record).map_err(|e| LogError::Damaged(format!("entry {seq}: {e}")))?;
        let names: Names = serde_json::from_slice(entry.event)
            .map_err(|e| LogError::Damaged(format!("entry {seq}: the event has no source and id: {e}")))?;
        wb.put(id_key(&names.source, &names.id), id_value(seq, entry.digest));
        expected = seq + 1;
        if wb.len() >= CATCH_UP_BATCH {
            wb.put(META_INDEXED, expected.to_be_bytes());
            store.commit(std::mem::take(&mut wb))?;
        }
    }
    if after_damage {
        expected = size;
    }
    wb.put(META_INDEXED, expected.to_be_bytes());
    store.commit(wb)?;
    let now = indexed(store)?;
    if now != size {
        return Err(LogError::Damaged(format!("re-indexing stopped at entry {now} of {size}")));
    }
    tracing::info!(message = "Index caught up from the entries.", from, to = size);
    Ok(())
}

/// Keys a filter for a log of `size` entries is made for: twice the log.
fn filter_capacity(size: u64) -> u64 {
    size.saturating_mul(2).max(1 << 20)
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
