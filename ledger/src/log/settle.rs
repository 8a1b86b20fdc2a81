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
//! After the flush, the same thread reads the flushed entries back and checks them, as a
//! checkpoint would before signing them; the writer notes any damage it found when it settles
//! (appends stop), and a checkpoint then reads back only the entries no flush checked.
//! Checkpoints are cut on the writer, after a flush, as after a durable append.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use evidence_ingest::{Batch, BatchReport};

use super::error::LogError;
use super::verified::read_entries;
use super::Log;
use crate::store::{Storage, StorageError, StorageErrorKind, WriteBatch};

fn ended() -> LogError {
    LogError::Storage(StorageError::new(StorageErrorKind::Other, "the flushing thread ended"))
}

/// What a flush found: the store's failure, or, the flush done, the first damaged entry
/// among those it was asked to read back.
type Flushed = Result<Option<LogError>, StorageError>;

/// The thread that flushes the store, one request at a time, then reads back the entries
/// the flush put on disk and checks them, as a checkpoint would before signing them
/// ([`Log::checked`]): a checkpoint then reads back only what no flush checked.
pub(crate) struct Flusher {
    /// The entries `[from, to)` to read back after the flush.
    jobs: Option<SyncSender<(u64, u64)>>,
    /// In a mutex only so that the log stays `Sync`: only the writer takes from it.
    done: Mutex<Receiver<Flushed>>,
    /// The end of the entries the flush under way reads back.
    to: u64,
    thread: Option<JoinHandle<()>>,
    /// A flush was asked for and its result not yet taken.
    busy: bool,
}

impl Flusher {
    fn start<S: Storage>(store: Arc<S>) -> Result<Flusher, LogError> {
        let (jobs, asked) = sync_channel::<(u64, u64)>(1);
        let (tell, done) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("evidence-flush".into())
            .spawn(move || {
                for (from, to) in asked {
                    let flushed = store
                        .commit(WriteBatch::default())
                        .map(|()| read_entries(&*store, from).take((to - from) as usize).find_map(Result::err));
                    if tell.send(flushed).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| LogError::Storage(StorageError::from(e)))?;
        Ok(Flusher { jobs: Some(jobs), done: Mutex::new(done), to: 0, thread: Some(thread), busy: false })
    }

    /// Waits for the flush under way, if any: what it found, and the end of what it read
    /// back.
    fn wait(&mut self) -> Result<Option<(Option<LogError>, u64)>, LogError> {
        if !std::mem::take(&mut self.busy) {
            return Ok(None);
        }
        match self.done.get_mut().map_err(|_| ended())?.recv() {
            Ok(result) => Ok(Some((result?, self.to))),
            Err(_) => Err(ended()),
        }
    }

    fn ask(&mut self, from: u64, to: u64) -> Result<(), LogError> {
        let sent = self.jobs.as_ref().map(|jobs| jobs.send((from, to)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(ended());
        }
        (self.busy, self.to) = (true, to);
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
        let report = self.append_unflushed(batch)?;
        self.unsettled = true;
        Ok(report)
    }

    /// Waits for the flush under way: every batch appended before the previous `settle` is
    /// then on disk, and a checkpoint is cut if one is due. Then starts flushing what was
    /// appended since, and returns while that flush runs.
    pub fn settle(&mut self) -> Result<(), LogError> {
        if let Some(flusher) = &mut self.flusher {
            if let Some((found, to)) = flusher.wait()? {
                match found {
                    // Appends stop, as when any read meets a damaged entry.
                    Some(damaged) => self.damage.note(&*self.store, &damaged),
                    None => self.checked = self.checked.max(to),
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
            flusher.ask(from, self.head.size)?;
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
