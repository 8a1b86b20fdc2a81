//! Durability behind the writer, for a producer that can hold its reports back by one batch
//! (`evidence ingest`): a batch is applied at once ([`Log::append_unsettled`]) and put on disk
//! by a thread of its own ([`Flusher`]) while the writer encodes the next one, and
//! [`Log::settle`] waits for that flush before the batch's outcomes may be told. The flush
//! and the writer's work on the next batch overlap instead of adding up.
//!
//! At most one flush is under way. A batch is durable, as after a durable append
//! (`Sink::append`), once the second `settle` after it returns (the one after the next batch
//! is appended), or [`Log::settle_all`]; a crash before that loses it and every later one,
//! whole (each was applied atomically).
//!
//! After the flush, the same thread reads the flushed segments back and compares them with
//! the bytes the writer encoded and hashed: what a checkpoint checks before signing, that the
//! store holds what the chain and the tree were computed over, without hashing every entry
//! twice more. The writer notes any damage found when it settles (appends stop), and a
//! checkpoint then reads back, and checks against their digests and chain, only the entries no
//! flush checked. (The writer's own hashing is checked by `evidence-verify`, as always.)
//! Checkpoints are cut on the writer, after a flush, as after a durable append.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use evidence_ingest::{Batch, BatchReport};
use evidence_verifier::layout::{segment_key, segment_records, unpack_segment};

use super::append::Written;
use super::error::LogError;
use super::Log;
use crate::store::{Storage, StorageError, StorageErrorKind, WriteBatch};

fn ended() -> LogError {
    LogError::Storage(StorageError::new(StorageErrorKind::Other, "the flushing thread ended"))
}

/// What a flush found: the store's failure, or, the flush done, the first damaged entry among
/// those it read back, and the end of the entries it checked from the first one not yet
/// checked (those of the log's `checked` on that the checkpoint need not read again).
type Flushed = Result<(Option<LogError>, u64), StorageError>;

/// Reads back `segments` (each with its first entry; written in order from entry `from` on) and
/// compares each with what was written: the first entry that differs, and the end of the
/// entries checked without a gap from `from`.
fn check_written<S: Storage>(
    store: &S,
    from: u64,
    segments: &Written,
) -> Result<(Option<LogError>, u64), StorageError> {
    let mut end = from;
    for (first, written) in segments {
        let records = || segment_records(written).filter_map(Result::ok);
        let bad = |seq: u64, problem: &str| LogError::BadEntry { seq, problem: problem.into() };
        let stored = match store.get(&segment_key(*first))? {
            None => return Ok((Some(bad(*first, "its segment is missing after it was written")), end)),
            Some(value) => match unpack_segment(value.as_ref()) {
                Ok(stored) => stored.into_owned(),
                Err(e) => return Ok((Some(bad(*first, &format!("its segment is unreadable: {e}"))), end)),
            },
        };
        if stored != *written {
            let mut theirs = segment_records(&stored);
            let at = records().position(|ours| theirs.next().and_then(Result::ok) != Some(ours)).unwrap_or(0);
            return Ok((Some(bad(first + at as u64, "it reads back other than it was written")), end));
        }
        if *first == end {
            end += records().count() as u64;
        }
    }
    Ok((None, end))
}

/// The thread that flushes the store, one request at a time, then reads back the segments the
/// flush put on disk and compares them with what was written (see the module docs).
pub(crate) struct Flusher {
    /// The first entry not yet checked, and the segments written since.
    jobs: Option<SyncSender<(u64, Written)>>,
    /// In a mutex only so that the log stays `Sync`: only the writer takes from it.
    done: Mutex<Receiver<Flushed>>,
    thread: Option<JoinHandle<()>>,
    /// A flush was asked for and its result not yet taken.
    busy: bool,
}

impl Flusher {
    fn start<S: Storage>(store: Arc<S>) -> Result<Flusher, LogError> {
        let (jobs, asked) = sync_channel::<(u64, Written)>(1);
        let (tell, done) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("evidence-flush".into())
            .spawn(move || {
                for (from, segments) in asked {
                    let flushed =
                        store.commit(WriteBatch::default()).and_then(|()| check_written(&*store, from, &segments));
                    if tell.send(flushed).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| LogError::Storage(StorageError::from(e)))?;
        Ok(Flusher { jobs: Some(jobs), done: Mutex::new(done), thread: Some(thread), busy: false })
    }

    /// Waits for the flush under way, if any: what it found (see [`Flushed`]).
    fn wait(&mut self) -> Result<Option<(Option<LogError>, u64)>, LogError> {
        if !std::mem::take(&mut self.busy) {
            return Ok(None);
        }
        match self.done.get_mut().map_err(|_| ended())?.recv() {
            Ok(result) => Ok(Some(result?)),
            Err(_) => Err(ended()),
        }
    }

    fn ask(&mut self, from: u64, segments: Written) -> Result<(), LogError> {
        let sent = self.jobs.as_ref().map(|jobs| jobs.send((from, segments)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(ended());
        }
        self.busy = true;
        Ok(())
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the flush under way.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<S: Storage> Log<S> {
    /// Appends a batch as the durable `Sink::append` does, except that it returns before the batch is
    /// on disk: nothing of it may be told to anyone before the next [`Log::settle`] but one
    /// returns (see the module docs), or [`Log::settle_all`].
    pub fn append_unsettled(&mut self, batch: &Batch) -> Result<BatchReport, LogError> {
        let (report, written) = self.append_written(batch, false)?;
        self.unsettled = true;
        self.written.extend(written);
        Ok(report)
    }

    /// Waits for the flush under way: every batch appended before the previous `settle` is
    /// then on disk, and a checkpoint is cut if one is due. Then starts flushing what was
    /// appended since, and returns while that flush runs.
    pub fn settle(&mut self) -> Result<(), LogError> {
        if let Some(flusher) = &mut self.flusher {
            if let Some((found, to)) = flusher.wait()? {
                self.checked = self.checked.max(to);
                if let Some(damaged) = found {
                    // Appends stop, as when any read meets a damaged entry.
                    self.damage.note(&*self.store, &damaged);
                }
                self.checkpoint_if_due();
            }
        }
        if std::mem::take(&mut self.unsettled) {
            let flusher = match &mut self.flusher {
                Some(flusher) => flusher,
                None => self.flusher.insert(Flusher::start(Arc::clone(&self.store))?),
            };
            // From the first entry no flush checked yet.
            let from = self.checked.max(self.latest.as_ref().map_or(0, |c| c.size)).min(self.head.size);
            flusher.ask(from, std::mem::take(&mut self.written))?;
        }
        Ok(())
    }

    /// Waits until every batch appended so far is on disk, then cuts a checkpoint if one is
    /// due.
    pub fn settle_all(&mut self) -> Result<(), LogError> {
        self.settle()?;
        self.settle()
    }
}
