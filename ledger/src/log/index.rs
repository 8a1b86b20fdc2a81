//! The `(source, id)` index: which entry holds each event, so that a redelivered event is
//! acknowledged as a duplicate and the same `(source, id)` with other content is caught as a
//! conflict.
//!
//! The index is derived from the entries (each entry holds its event, and so its source and
//! id), so it is written behind the log rather than in the log's own batch. What is stored is
//! a pair `(hash, seq)` per entry, in sorted runs (`log::runs`); a lookup that finds the
//! hash reads the entry back to compare its source and id, so dedup is exact.
//! 1. [`super::Log`]'s append commits a batch of entries (flushed), then hands the batch's
//!    index entries to [`Index::record`]. They are held in memory ("pending") and queued for a
//!    writer thread, which writes them as a run once [`RUN_ENTRIES`] are held (or when asked:
//!    [`Index::settle`], a clean close), with the index watermark `m indexed` (the number of
//!    entries indexed), and only then drops them from pending.
//! 2. A lookup ([`Index::lookup`]) consults the Bloom filter, then pending, then the runs, in
//!    that order: a key leaves pending only after its run is in place, so every committed entry
//!    is found, by one or the other. Dedup stays exact.
//! 3. A run is written only after its entries were flushed, so the store never indexes an
//!    entry it does not hold. A crash loses at most what was pending; [`Index::open`] rebuilds
//!    it from the entries past the watermark before the log accepts anything.
//! 4. If the store fails under the writer thread (or the thread panics), the keys stay pending
//!    (lookups stay exact) and the log refuses the next batch with the error; a batch already
//!    committed stays accepted. Reopening rebuilds the index from the entries. While more than
//!    [`MAX_PENDING`] entries wait for the writer, [`Index::record`] waits.
//!
//! 5. The Bloom filter is built from every hash in the runs, which takes a while on a store of
//!    millions of entries; [`Index::open`] leaves that to a thread of its own. Until it is done
//!    every lookup reads the index (exact, only slower); the hashes of the keys recorded
//!    meanwhile (and those pending when it began) are kept with the build and added to the
//!    filter when it is taken. A build that fails leaves every lookup reading the index until
//!    the filter is next rebuilt. A filter that fills up (more keys than it was sized for) is
//!    grown the same way: a filter sized for twice the log is built on that thread, while the
//!    full one goes on answering (it never forgets a key, it only guesses more often). Appends
//!    never wait for it.
//! 6. A clean close keeps a complete filter in a file with the size of the log it covers
//!    ([`FILTER_FILE`]: a value this large in sled was rewritten whole with its neighbours), when the log grew since it opened (finishing the filter's build
//!    first, if it is still running); [`Index::open`] takes it back
//!    instead of building one only when it covers exactly the log it opens. A log that grew
//!    after it (a crash, an older binary) or a damaged one has its filter rebuilt as above.
//! 7. The hash is keyed with a random key kept in the store ([`META_INDEX_KEY`]), so that
//!    producers cannot choose ids that collide. A store without one (new, or written before the
//!    runs, whose index was one key per event) has its index deleted and rebuilt on open.
//!
//! A clean close ([`Drop`]) stops a filter build, writes what is pending as a run, stops a
//! merge, keeps the filter (step 6) and flushes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::error::LogError;
use super::filter::IdFilter;
use super::reindex::{catch_up, hash_key, id_key, indexed, kept_filter, reset, FILTER_FILE};
use super::runs::{Run, Runs, RUN_ENTRIES};
use crate::store::{Storage, StorageError, StorageErrorKind, WriteBatch};

/// Entries that may wait for the writer thread before [`Index::record`] waits for it.
const MAX_PENDING: usize = 8 * RUN_ENTRIES as usize;

/// Reads back the index key and event digest of entry `seq` (to confirm a hash the runs hold).
pub(crate) type Resolve = Arc<dyn Fn(u64) -> Result<(Vec<u8>, [u8; 32]), LogError> + Send + Sync>;

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
    /// Oldest first; the writer thread removes them from the front once their run is written.
    pending: VecDeque<Arc<Pending>>,
    /// The entries in `pending`.
    held: usize,
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

    fn wait<'a>(&self, queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.changed.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// What the writer thread is sent.
enum Job {
    /// A committed batch's index entries.
    Batch(Arc<Pending>),
    /// Write what is held now, however little.
    Write,
}

/// The writer thread: holds each batch until [`RUN_ENTRIES`] are held (or it is told to
/// write, or the channel closes), writes them as a run, then drops them from pending and
/// wakes the merger; stops at the first store error, leaving them pending.
fn write_behind<S: Storage>(store: &S, runs: &Runs, shared: Arc<Shared>, jobs: Receiver<Job>, merger: &Merger) {
    let guard = PanicGuard(shared);
    let mut held: Vec<Arc<Pending>> = Vec::new();
    let mut count = 0;
    let write = |held: &mut Vec<Arc<Pending>>, count: &mut usize| -> Result<(), LogError> {
        let Some(last) = held.last() else { return Ok(()) };
        let pairs = held.iter().flat_map(|b| b.items.iter().map(|i| (i.hash, i.seq))).collect();
        runs.write(store, runs.end(), last.end, pairs)?;
        let mut queue = guard.0.lock();
        for batch in held.drain(..) {
            let front = queue.pending.pop_front();
            debug_assert!(front.is_some_and(|f| Arc::ptr_eq(&f, &batch)), "index batches are written in order");
        }
        queue.held -= std::mem::take(count);
        drop(queue);
        guard.0.changed.notify_all();
        merger.wake();
        Ok(())
    };
    for job in jobs.iter().map(Some).chain([None]) {
        let due = match job {
            Some(Job::Batch(batch)) => {
                count += batch.items.len();
                held.push(batch);
                count as u64 >= RUN_ENTRIES
            }
            Some(Job::Write) | None => true,
        };
        if due {
            if let Err(e) = write(&mut held, &mut count) {
                guard.0.fail(match e {
                    LogError::Storage(e) => e,
                    other => StorageError::new(StorageErrorKind::Other, other.to_string()),
                });
                return;
            }
        }
    }
}

/// Wakes the merge thread, or stops it.
#[derive(Default)]
struct Merger {
    due: Mutex<bool>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Merger {
    fn wake(&self) {
        *self.due.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake();
    }

    /// The merge thread: merges what is due whenever a run was written, until stopped. A
    /// merge that fails is logged and tried again after the next run; what it left is deleted
    /// on the next open.
    fn run<S: Storage>(&self, store: &S, runs: &Runs) {
        loop {
            let mut due = self.due.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            while !*due {
                due = self.changed.wait(due).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            *due = false;
            drop(due);
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = runs.merge_due(store, &self.stop) {
                tracing::warn!(message = "Could not merge the index's runs; tried again later.", error = %e);
            }
        }
    }
}

/// The filter being built from the index's runs (step 5 of the module docs).
struct Building {
    thread: JoinHandle<Result<IdFilter, LogError>>,
    stop: Arc<AtomicBool>,
    /// The hashes of the keys pending when the build began and recorded since, for the
    /// built filter.
    recorded: Vec<u64>,
}

/// Starts building, into `filter`, a filter of every hash in `runs` (held while it reads).
fn build_filter<S: Storage>(store: Arc<S>, runs: Vec<Arc<Run>>, mut filter: IdFilter) -> Result<Building, LogError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("evidence-filter".into())
        .spawn(move || {
            Runs::hashes(&*store, &runs, &stopped, |hash| filter.insert_hashed(hash))?;
            Ok(filter)
        })
        .map_err(|e| LogError::Storage(StorageError::from(e)))?;
    Ok(Building { thread, stop, recorded: Vec::new() })
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, LogError> {
    std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| LogError::Storage(StorageError::from(e)))
}

/// The `(source, id)` index with its filter and its writer and merge threads (see the module
/// docs).
pub(crate) struct Index<S: Storage> {
    store: Arc<S>,
    runs: Arc<Runs>,
    resolve: Resolve,
    /// The filter; while `building`, only of the keys recorded since the index opened.
    filter: IdFilter,
    /// Whether `filter` holds every key of the index; if not, every lookup reads the index.
    complete: bool,
    building: Option<Building>,
    /// The log's size as last recorded, and whether it grew since the index opened.
    size: u64,
    grew: bool,
    shared: Arc<Shared>,
    tx: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    merger: Arc<Merger>,
    merging: Option<JoinHandle<()>>,
}

impl<S: Storage> Index<S> {
    /// Opens the index of a log of `size` entries: re-indexes the entries past the watermark
    /// (read through `entries(from)`), starts building the filter and starts the writer and
    /// merge threads. `resolve` reads an entry's key back for a lookup.
    pub(crate) fn open<I>(
        store: Arc<S>,
        size: u64,
        entries: impl FnOnce(u64) -> I,
        resolve: Resolve,
    ) -> Result<Self, LogError>
    where
        I: Iterator<Item = Result<(u64, Vec<u8>), LogError>>,
    {
        let key = hash_key(&*store)?;
        let runs = match Runs::load(&*store, indexed(&*store)?)? {
            Some(runs) => runs,
            None => {
                tracing::warn!(message = "The (source, id) index's runs do not cover what it says; it is rebuilt.");
                reset(&*store, key)?;
                Runs::default()
            }
        };
        let runs = Arc::new(runs);
        let hasher = IdFilter::with_key(filter_capacity(size), key);
        catch_up(&*store, &runs, size, entries, &hasher)?;
        let (filter, complete, building) = match kept_filter(&*store, size, &key) {
            Some(filter) => (filter, true, None),
            None => {
                let building =
                    build_filter(Arc::clone(&store), runs.snapshot(), hasher.sibling(filter_capacity(size)))?;
                (hasher, false, Some(building))
            }
        };
        let shared = Arc::new(Shared::default());
        let merger = Arc::new(Merger::default());
        let (tx, rx) = channel::<Job>();
        let writer = {
            let (store, runs, shared, merger) =
                (Arc::clone(&store), Arc::clone(&runs), Arc::clone(&shared), Arc::clone(&merger));
            spawn("evidence-index", move || write_behind(&*store, &runs, shared, rx, &merger))?
        };
        let merging = {
            let (store, runs, merger) = (Arc::clone(&store), Arc::clone(&runs), Arc::clone(&merger));
            spawn("evidence-merge", move || merger.run(&*store, &runs))?
        };
        Ok(Index {
            store,
            runs,
            resolve,
            filter,
            complete,
            building,
            size,
            grew: false,
            shared,
            tx: Some(tx),
            writer: Some(writer),
            merger,
            merging: Some(merging),
        })
    }

    /// What the index holds for `(source, id)`. Safe to call from several threads.
    pub(crate) fn lookup(&self, source: &str, id: &str) -> Result<Lookup, LogError> {
        let key = id_key(source, id);
        let hash = self.filter.hash(&key);
        let stored = if !self.complete || self.filter.may_contain_hashed(hash) {
            // Pending first: a key leaves pending only once its run is in place.
            let pending = self.shared.lock().pending.iter().find_map(|p| p.get(&key, hash));
            match pending {
                Some(found) => Some(found),
                None => self.in_runs(&key, hash)?,
            }
        } else {
            None
        };
        Ok(Lookup { key, hash, stored })
    }

    /// The entry the runs hold for `key`: of the entries whose key has its hash, the one
    /// whose key it is.
    fn in_runs(&self, key: &[u8], hash: u64) -> Result<Option<(u64, [u8; 32])>, LogError> {
        for seq in self.runs.seqs(&*self.store, hash)? {
            let (stored, digest) = (self.resolve)(seq)?;
            if stored == key {
                return Ok(Some((seq, digest)));
            }
        }
        Ok(None)
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
        {
            let mut queue = self.shared.lock();
            while queue.held >= MAX_PENDING && queue.failed.is_none() {
                queue = self.shared.wait(queue);
            }
            queue.held += batch.items.len();
            queue.pending.push_back(Arc::clone(&batch));
        }
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(Job::Batch(batch)).is_ok());
        if !sent {
            self.shared.fail(StorageError::new(StorageErrorKind::Other, "the index writer has stopped"));
            return;
        }
        if self.complete && self.building.is_none() && self.filter.is_full() {
            self.grow(end);
        }
    }

    /// Starts building a filter for twice the log of `end` entries in place of the full one
    /// (step 5), from the runs and what is pending; if that cannot be, the full filter stays
    /// (it never forgets a key; it only guesses more often).
    fn grow(&mut self, end: u64) {
        let bigger = self.filter.sibling(filter_capacity(end));
        // Pending first, then the runs: a batch leaves pending only after its run is in place.
        let pending: Vec<u64> =
            self.shared.lock().pending.iter().flat_map(|p| p.items.iter().map(|i| i.hash)).collect();
        match build_filter(Arc::clone(&self.store), self.runs.snapshot(), bigger) {
            Ok(mut building) => {
                tracing::info!(message = "The id filter is full; a bigger one is being built.", entries = end);
                building.recorded = pending;
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

    /// Writes what is pending as a run, waits until it is written, and flushes.
    pub(crate) fn settle(&self) -> Result<(), LogError> {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job::Write);
        }
        let mut queue = self.shared.lock();
        loop {
            if let Some(e) = &queue.failed {
                return Err(failed(e));
            }
            if queue.pending.is_empty() {
                drop(queue);
                return Ok(self.store.commit(WriteBatch::default())?);
            }
            queue = self.shared.wait(queue);
        }
    }
}

impl<S: Storage> Drop for Index<S> {
    fn drop(&mut self) {
        // The filter's builder holds runs: it ends first. When the log grew, the build is
        // finished (on a store of millions of entries a short run ends before it), so that
        // the filter can be kept and the next open need not build it again; otherwise stopped.
        if self.grew && self.check().is_ok() {
            self.finish_building();
        } else if let Some(building) = self.building.take() {
            building.stop.store(true, Ordering::Relaxed);
            let _ = building.thread.join();
        }
        // Closing the channel ends the writer's loop once it has written what is held.
        drop(self.tx.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        self.merger.stop();
        if let Some(merging) = self.merging.take() {
            let _ = merging.join();
        }
        if let Err(e) = self.runs.sweep(&*self.store) {
            tracing::warn!(message = "Could not delete merged index runs; the next open does.", error = %e);
        }
        if let Err(e) = self.store.commit(WriteBatch::default()) {
            tracing::warn!(message = "Could not flush the index on close; it is rebuilt on open.", error = %e);
            return;
        }
        // After the flush: the filter is taken back only for the log it covers.
        if self.complete && self.grew && self.check().is_ok() {
            let mut bytes = std::iter::once(Ok(self.filter.to_bytes(self.size)));
            if let Err(e) = self.store.write_file(FILTER_FILE, &mut bytes) {
                tracing::warn!(message = "Could not keep the id filter; the next open builds it.", error = %e);
            }
        }
    }
}

fn failed(reason: &StorageError) -> LogError {
    LogError::IndexStopped(reason.clone())
}

/// Keys a filter for a log of `size` entries is made for: twice the log.
fn filter_capacity(size: u64) -> u64 {
    size.saturating_mul(2).max(1 << 20)
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
