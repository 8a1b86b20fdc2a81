//! The one writer. A thread owns the [`Ledger`]; HTTP intake and Kafka hand it batches through
//! one bounded queue and wait for their answers. Each round takes every batch waiting (up to
//! [`MAX_GROUP`] records) and appends them with one flush: group commit, so many producers
//! share one fsync. The flush runs behind the writer ([`Ledger::append_slices_unsettled`]):
//! while batches wait, the next round is appended as the last one is flushed, and a round is
//! answered once its flush has returned (at once when nothing waits behind it). Within a round the records are applied in atomic slices, each projected
//! into the views on its own: of at most [`super::pace::SLICE`] while readers ask questions
//! (so that no single store batch holds them back for long) or rounds run slow, wider
//! otherwise ([`super::pace`]). It publishes what readers need ([`Published`]) after each
//! round's append and before answering it (a producer that has its answer reads its events in
//! the status), and again after the upkeep that follows rounds and runs every second when idle
//! (a checkpoint when one is due, the service's other upkeep), so that reads never wait for
//! the writer.
//!
//! A full queue is answered at once ([`Submit::Full`]): intake turns it into 503 with
//! `Retry-After`; it never buffers without bound. When every handle is dropped the writer
//! finishes the batches queued, cuts a checkpoint and hands the ledger back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use evidence_ingest::{Batch, BatchReport, Origin, Outcome, Pending, Record, Sink, Verdict};
use tokio::sync::oneshot::Sender;

use super::pace::{Pace, Reads};
use crate::ledger::Ledger;
use crate::log::{LogError, Status};
use crate::store::Storage;

/// The most records one round appends (a round always takes at least one whole batch): two
/// HTTP requests of 500, a Kafka batch of the default size, one wide slice
/// ([`super::pace::WIDE_SLICE`]).
/// It was 500 while a round was one store batch: readers of the store wait while sled applies
/// a batch, and with 8 producers posting 500 events a request (ops/bench/http) groups of up to
/// 20,000 records gave readers a p99 of 47 ms, 1,000 gave 25 ms and 500 gave 17 ms. Since then
/// a round is applied in slices ([`super::pace`]), which bound that wait, and at 500 a round of
/// requests of 500 was one request: no two shared a flush. At 1,000, on the same bench: intake
/// alone 0.86 -> 0.93-0.94 of `evidence ingest`, 401 -> about 200 rounds, readers' p99 within
/// 10 ms (2,000 gave the same rate and a round with a p99 of 12 ms).
pub const MAX_GROUP: usize = 1000;

/// What readers need of the log, as of the last round.
#[derive(Clone, Debug)]
pub struct Published {
    /// The log's summary.
    pub status: Status,
    /// Entries in the log.
    pub size: u64,
    /// The tree size of the latest signed checkpoint.
    pub latest: u64,
    /// Entries the views have projected.
    pub watermark: u64,
    /// Whether the last append failed (the writer is refusing or failing appends).
    pub append_failure: Option<String>,
}

impl Published {
    fn of<S: Storage>(ledger: &Ledger<S>, append_failure: Option<String>) -> Self {
        let log = ledger.log();
        Published {
            status: log.status(),
            size: log.size(),
            latest: log.latest_size(),
            watermark: ledger.views().watermark(),
            append_failure,
        }
    }

    /// Whether the views have projected every entry.
    pub fn caught_up(&self) -> bool {
        self.watermark == self.size
    }
}

type Reply = Result<BatchReport, String>;

/// A task run on the writer thread with the ledger (publishing a policy).
type Task<S> = Box<dyn FnOnce(&mut Ledger<S>) + Send>;

enum Job<S: Storage> {
    Batch { batch: Batch, reply: Sender<Reply> },
    Task(Task<S>),
    Stop,
}

/// The answer to a submission.
#[derive(Debug)]
pub enum Submit {
    /// The batch is queued; the receiver gets its report after the flush.
    Queued(tokio::sync::oneshot::Receiver<Reply>),
    /// The queue is full: try again later.
    Full,
    /// The writer has stopped.
    Stopped,
}

/// A handle to the writer: submit batches, read what it published.
pub struct WriterHandle<S: Storage> {
    queue: SyncSender<Job<S>>,
    published: Arc<RwLock<Published>>,
    finished: Arc<AtomicBool>,
    reads: Arc<Reads>,
}

/// Marks the writer finished when its thread ends, by a return or a panic.
struct Finished(Arc<AtomicBool>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl<S: Storage> Clone for WriterHandle<S> {
    fn clone(&self) -> Self {
        WriterHandle {
            queue: self.queue.clone(),
            published: Arc::clone(&self.published),
            finished: Arc::clone(&self.finished),
            reads: Arc::clone(&self.reads),
        }
    }
}

impl<S: Storage> std::fmt::Debug for WriterHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterHandle").finish_non_exhaustive()
    }
}

impl<S: Storage> WriterHandle<S> {
    /// Tells the writer that a reader is asking the store something: it keeps its atomic
    /// slices narrow for a while ([`Pace`]).
    pub fn reading(&self) {
        self.reads.mark();
    }

    /// Queues a batch without waiting.
    pub fn try_submit(&self, records: Vec<Record>) -> Submit {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job::Batch { batch: Batch { records, positions: Vec::new() }, reply };
        match self.queue.try_send(job) {
            Ok(()) => Submit::Queued(rx),
            Err(TrySendError::Full(_)) => Submit::Full,
            Err(TrySendError::Disconnected(_)) => Submit::Stopped,
        }
    }

    /// Runs `task` on the writer thread with the ledger, without waiting for room in the
    /// queue; `None` when the queue is full or the writer stopped.
    pub fn try_run<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Ledger<S>) -> T + Send + 'static,
    ) -> Option<tokio::sync::oneshot::Receiver<T>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job::Task(Box::new(move |ledger: &mut Ledger<S>| {
            let _ = reply.send(task(ledger));
        }));
        self.queue.try_send(job).ok().map(|()| rx)
    }

    /// Asks the writer to stop after the batches queued before this call, waiting for room
    /// in the queue. Batches queued after it are answered as stopped.
    pub async fn stop(&self) {
        let queue = self.queue.clone();
        let _ = tokio::task::spawn_blocking(move || queue.send(Job::Stop)).await;
    }

    /// Whether the writer thread has ended (a stop, or a failure).
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// What the writer last published.
    pub fn published(&self) -> Published {
        self.published.read().expect("published lock").clone()
    }
}

/// A [`Sink`] for sources that run on their own blocking thread (Kafka): it waits for room in
/// the queue and for the flush.
#[derive(Debug)]
pub struct WriterSink<S: Storage>(pub WriterHandle<S>);

/// The writer stopped, or failed the batch.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WriterError(String);

impl<S: Storage> Sink for WriterSink<S> {
    type Error = WriterError;

    fn append(&mut self, batch: &Batch) -> Result<BatchReport, WriterError> {
        self.append_owned(batch.clone())
    }

    fn append_owned(&mut self, batch: Batch) -> Result<BatchReport, WriterError> {
        self.submit(batch)()
    }

    /// Queues the batch (waiting for room) and returns at once: the writer appends batches in
    /// the order queued, and a source with the next one queued lets it append that one while
    /// this one's flush runs.
    fn submit(&mut self, batch: Batch) -> Pending<WriterError> {
        let stopped = || WriterError("the writer has stopped".into());
        let (reply, rx) = tokio::sync::oneshot::channel();
        if self.0.queue.send(Job::Batch { batch, reply }).is_err() {
            return Box::new(move || Err(stopped()));
        }
        Box::new(move || rx.blocking_recv().map_err(|_| stopped())?.map_err(WriterError))
    }
}

/// Upkeep run on the writer thread after each round and when idle.
pub type Upkeep<S> = Box<dyn FnMut(&mut Ledger<S>) + Send>;

/// Starts the writer thread with a queue of `capacity` batches.
pub fn spawn<S: Storage>(
    ledger: Ledger<S>,
    capacity: usize,
    upkeep: Upkeep<S>,
) -> (WriterHandle<S>, std::thread::JoinHandle<Result<Ledger<S>, LogError>>) {
    let (queue, jobs) = sync_channel(capacity.max(1));
    let published = Arc::new(RwLock::new(Published::of(&ledger, None)));
    let finished = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(Reads::default());
    let handle = WriterHandle {
        queue,
        published: Arc::clone(&published),
        finished: Arc::clone(&finished),
        reads: Arc::clone(&reads),
    };
    let thread = std::thread::Builder::new()
        .name("evidence-writer".into())
        .spawn(move || {
            let _finished = Finished(finished);
            run(ledger, &jobs, &published, Pace::new(reads), upkeep)
        })
        .expect("the writer thread starts");
    (handle, thread)
}

fn run<S: Storage>(
    mut ledger: Ledger<S>,
    jobs: &Receiver<Job<S>>,
    published: &RwLock<Published>,
    mut pace: Pace,
    mut upkeep: Upkeep<S>,
) -> Result<Ledger<S>, LogError> {
    let mut failure = None;
    let mut last_upkeep = Instant::now();
    let mut held: Option<Held> = None;
    loop {
        // A round held back while it is flushed is answered at once when nothing waits behind
        // it: its producers wait for no later one.
        let next = match jobs.try_recv() {
            Ok(job) => Ok(job),
            Err(TryRecvError::Empty) => {
                failure = answer_held(&mut ledger, &mut held).or(failure);
                // Views not saved with a round (no producer waited on it) are saved when due,
                // by the wait's end at the latest.
                let due = ledger.save_views_when_due();
                jobs.recv_timeout(due.unwrap_or(Duration::from_secs(1)))
            }
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
        };
        let first = match next {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let idle = first.is_none();
        match first {
            Some(Job::Task(task)) => {
                failure = answer_held(&mut ledger, &mut held).or(failure);
                task(&mut ledger)
            }
            Some(Job::Stop) => break,
            Some(Job::Batch { batch, reply }) => {
                let stop;
                (failure, stop) = round(&mut ledger, (batch, reply), jobs, &mut pace, published, &mut held);
                if stop {
                    break;
                }
            }
            None => {}
        }
        if idle || last_upkeep.elapsed() >= Duration::from_millis(200) {
            upkeep(&mut ledger);
            last_upkeep = Instant::now();
        }
        *published.write().expect("published lock") = Published::of(&ledger, failure.clone());
    }
    failure = answer_held(&mut ledger, &mut held).or(failure);
    // The views reach the disk before the writer hands the ledger back: nothing to catch up.
    failure = ledger.settle_all_for(true).err().map(|e| e.to_string()).or(failure);
    upkeep(&mut ledger);
    ledger.checkpoint_now()?;
    *published.write().expect("published lock") = Published::of(&ledger, failure);
    Ok(ledger)
}

/// A round appended and being flushed while the next one is appended
/// ([`Ledger::append_slices_unsettled`]): answered once it is settled.
struct Held {
    slices: Vec<Batch>,
    sizes: Vec<usize>,
    replies: Vec<Sender<Reply>>,
    report: BatchReport,
}

impl Held {
    /// Answers each batch of the round: its outcomes if the round is on disk, else the
    /// failure. Returns the failure.
    fn answer(self, settled: Result<(), String>) -> Option<String> {
        match settled {
            Ok(()) => {
                count(self.slices.iter().flat_map(|s| &s.records), &self.report);
                let mut outcomes = self.report.outcomes.into_iter();
                for (size, reply) in self.sizes.into_iter().zip(self.replies) {
                    let _ = reply.send(Ok(BatchReport { outcomes: outcomes.by_ref().take(size).collect() }));
                }
                None
            }
            Err(message) => {
                refuse(self.replies, &message);
                Some(message)
            }
        }
    }
}

/// Puts every round appended on disk and answers the one held back, if any, saving the views
/// first when an HTTP producer waits on it (it may read its events back at once). Returns the
/// failure.
fn answer_held<S: Storage>(ledger: &mut Ledger<S>, held: &mut Option<Held>) -> Option<String> {
    let held = held.take()?;
    // Every record is looked at: a slice may hold a Kafka batch and then an HTTP request.
    let readers_wait = held.slices.iter().flat_map(|s| &s.records).any(|r| matches!(r.origin, Origin::Http { .. }));
    held.answer(ledger.settle_all_for(readers_wait).map_err(|e| e.to_string()))
}

/// Refuses each batch of a round that failed.
fn refuse(replies: Vec<Sender<Reply>>, message: &str) {
    tracing::error!(
        message = "Failed to append a round; none of it is acknowledged (what was stored is a duplicate when sent again).",
        error = %message
    );
    for reply in replies {
        let _ = reply.send(Err(message.to_string()));
    }
}

/// Appends `first` and every batch waiting behind it as one durable batch, publishes the log
/// as it now is, and answers each. A task met while grouping runs after the group's append, in
/// queue order.
/// Returns the append's failure, and whether a stop was met.
fn round<S: Storage>(
    ledger: &mut Ledger<S>,
    first: (Batch, Sender<Reply>),
    jobs: &Receiver<Job<S>>,
    pace: &mut Pace,
    published: &RwLock<Published>,
    held: &mut Option<Held>,
) -> (Option<String>, bool) {
    let started = Instant::now();
    let mut records = first.0.records.len();
    let mut group = vec![first];
    let mut task = None;
    let mut stop = false;
    while records < MAX_GROUP {
        match jobs.try_recv() {
            Ok(Job::Task(t)) => {
                task = Some(t);
                break;
            }
            Ok(Job::Stop) => {
                stop = true;
                break;
            }
            Ok(Job::Batch { batch, reply }) => {
                records += batch.records.len();
                group.push((batch, reply));
            }
            Err(_) => break,
        }
    }
    let slice = pace.slice();
    metrics::gauge!("evidence_writer_slice_records").set(slice as f64);
    let mut slices = vec![Batch { records: Vec::with_capacity(records.min(slice)), positions: Vec::new() }];
    let mut positions = Vec::new();
    let mut sizes = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    for (one, reply) in group {
        sizes.push(one.records.len());
        for record in one.records {
            if slices.last().is_some_and(|s| s.records.len() == slice) {
                slices.push(Batch { records: Vec::with_capacity(slice), positions: Vec::new() });
            }
            slices.last_mut().expect("one slice at least").records.push(record);
        }
        positions.extend(one.positions);
        replies.push(reply);
    }
    // Sources' positions move with the round's last slice, after every record before them.
    slices.last_mut().expect("one slice at least").positions = positions;
    let mut failure = append_group(ledger, slices, sizes, replies, started, published, held);
    pace.record(records, started.elapsed());
    if let Some(task) = task {
        failure = answer_held(ledger, held).or(failure);
        task(ledger);
    }
    (failure, stop)
}

/// Appends a round's slices unsettled and publishes the result; then settles the round before
/// it, and answers that one, while this one is flushed (held back in `held`, answered at the
/// next round or as soon as nothing waits). Returns the failure.
fn append_group<S: Storage>(
    ledger: &mut Ledger<S>,
    slices: Vec<Batch>,
    sizes: Vec<usize>,
    replies: Vec<Sender<Reply>>,
    started: Instant,
    published: &RwLock<Published>,
    held: &mut Option<Held>,
) -> Option<String> {
    let appended = ledger.append_slices_unsettled(&slices);
    // The round before this one is on disk once this returns, and this one's flush starts.
    let settled = ledger.settle().map_err(|e| e.to_string());
    let failure = appended.as_ref().err().map(ToString::to_string).or_else(|| settled.clone().err());
    // Readers see the round before its producers hear of it: whoever was answered finds what
    // it sent in the status (read your writes).
    *published.write().expect("published lock") = Published::of(ledger, failure.clone());
    metrics::histogram!("evidence_append_batch_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("evidence_append_batch_events")
        .record(slices.iter().map(|s| s.records.len()).sum::<usize>() as f64);
    if let Some(before) = held.take() {
        before.answer(settled.clone());
    }
    match (appended, settled) {
        (Ok(report), Ok(())) => *held = Some(Held { slices, sizes, replies, report }),
        (Err(error), _) => refuse(replies, &error.to_string()),
        (Ok(_), Err(message)) => refuse(replies, &message),
    }
    failure
}

/// Counts each record by its source and outcome: tallied here first, then one increment a
/// label pair, since a labelled counter is looked up in the registry on every call (1,000
/// lookups a round took about 180 µs of the writer's thread).
fn count<'a>(records: impl Iterator<Item = &'a Record>, report: &BatchReport) {
    for (source, counts) in SOURCES.iter().zip(tally(records, report)) {
        for (outcome, n) in OUTCOMES.iter().zip(counts) {
            if n > 0 {
                metrics::counter!("evidence_events_total", "source" => *source, "outcome" => *outcome).increment(n);
            }
        }
    }
}

/// The `source` labels of `evidence_events_total`, in [`tally`]'s order.
const SOURCES: [&str; 3] = ["kafka", "http", "file"];
/// Its `outcome` labels, in [`tally`]'s order.
const OUTCOMES: [&str; 4] = ["accepted", "duplicate", "rejected", "conflict"];

/// The records by source ([`SOURCES`]) and outcome ([`OUTCOMES`]).
fn tally<'a>(records: impl Iterator<Item = &'a Record>, report: &BatchReport) -> [[u64; 4]; 3] {
    let mut tally = [[0u64; 4]; 3];
    for (record, outcome) in records.zip(&report.outcomes) {
        let source = match record.origin {
            Origin::Kafka { .. } => 0,
            Origin::Http { .. } => 1,
            Origin::File { .. } | Origin::Stdin { .. } => 2,
        };
        let outcome = match (outcome, &record.verdict) {
            (Outcome::Accepted { .. }, _) => 0,
            (Outcome::Duplicate { .. }, _) => 1,
            (Outcome::Quarantined { .. }, Verdict::Rejected { .. }) => 2,
            (Outcome::Quarantined { .. }, Verdict::Valid(_)) => 3,
        };
        tally[source][outcome] += 1;
    }
    tally
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
