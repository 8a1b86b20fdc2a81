//! The ledger as sources see it: the [`Log`] with the [`Views`] following it. Every source
//! appends through [`Ledger`] (it is the [`Sink`]), so views and alerts keep up with the log
//! entry by entry, whatever the source.
//!
//! Steps of [`Ledger::append`]:
//! 1. The log appends and flushes the batch ([`Log::append`]); its report is final.
//! 2. Each accepted entry is projected in sequence order: judged and applied to the views, and
//!    what it is late evidence for judged again (reading earlier entries back from the log
//!    where the views keep only a summary). Alerts opened or resolved go to the alert hook.
//! 3. The views' changes and their watermark are saved in one atomic, unflushed write.
//!
//! A failure in steps 2–3 cannot undo step 1, so it does not fail the append: it is logged and
//! the next append (or the next open) reloads the views from the store and projects every
//! entry from the watermark on. Views never run ahead of the log and never skip an entry.
//!
//! Once views exist, [`Ledger`] is the only way to append: it hands out the log for reading
//! only, and offers the log's other writes (checkpoints, the dead-letter cursor) itself.
//! Beside it: creating and opening a ledger directory (`dir`), ingesting NDJSON with a report
//! (`ingest`), publishing a policy (`publish`) and rotating the signer key (`rotate`).

mod dir;
mod ingest;
mod publish;
mod rotate;

use evidence_ingest::{Batch, BatchReport, Outcome, Sink, Verdict};
use evidence_verifier::entry::EntryRef;

pub use self::dir::{Access, Created, LedgerDir, OpenError};
pub use self::ingest::{ingest, IngestError, IngestOptions, Report};
pub use self::publish::PublishError;
pub use self::rotate::{RotateError, Rotated};
use crate::governance::{Alert, History, ViewError, Views};
use crate::log::{Log, LogError, QuarantineRecord};
use crate::store::Storage;

/// How long a round of [`Ledger::append_slices`] goes between flushes at most: a round that
/// runs longer (late evidence re-judging much traffic read back from the log) makes the slices
/// it has done durable, with the views, before it goes on, so that a crash in it redoes at most
/// this much work. Without it a producer whose requests each take longer than the process
/// stays up between crashes never gets one stored, and falls further behind with every retry.
pub const DURABLE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Called with each alert as it is raised.
pub type AlertHook = Box<dyn FnMut(&Alert) + Send>;

/// The log and its views.
pub struct Ledger<S: Storage> {
    log: Log<S>,
    views: Views,
    /// Set when projecting failed after a commit: the views must be reloaded and caught up.
    behind: bool,
    on_alert: Option<AlertHook>,
    /// [`DURABLE_EVERY`], but for tests.
    durable_every: std::time::Duration,
    /// When the views were last saved.
    views_saved: std::time::Instant,
    /// The views' watermark when they were last saved (`u64::MAX` before the first save).
    saved_watermark: u64,
}

impl<S: Storage> std::fmt::Debug for Ledger<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("size", &self.log.size()).field("watermark", &self.views.watermark()).finish()
    }
}

impl<S: Storage> Ledger<S> {
    /// Opens the views beside `log` and projects any entries they are behind by.
    pub fn open(log: Log<S>) -> Result<Self, ViewError> {
        Self::open_with(log, None)
    }

    /// Like [`Ledger::open`], with an alert hook that also sees the alerts of the catch-up.
    pub fn open_with(log: Log<S>, on_alert: Option<AlertHook>) -> Result<Self, ViewError> {
        let views = Views::load(log.store())?;
        let views_saved = std::time::Instant::now();
        let mut ledger = Ledger {
            log,
            views,
            behind: false,
            on_alert,
            durable_every: DURABLE_EVERY,
            views_saved,
            saved_watermark: u64::MAX,
        };
        ledger.catch_up()?;
        Ok(ledger)
    }

    /// The log.
    pub fn log(&self) -> &Log<S> {
        &self.log
    }

    /// The store (read access, for queries).
    pub fn store(&self) -> &S {
        self.log.store()
    }

    /// Cuts a signed checkpoint of the whole log now (see [`Log::checkpoint_now`]).
    pub fn checkpoint_now(&mut self) -> Result<Option<String>, LogError> {
        self.log.checkpoint_now()
    }

    /// Cuts a checkpoint if one is due (see [`Log::maybe_checkpoint`]).
    pub fn maybe_checkpoint(&mut self) -> Result<Option<String>, LogError> {
        self.log.maybe_checkpoint()
    }

    /// Quarantine records from number `from` on, at most `limit`.
    pub fn quarantine(&self, from: u64, limit: usize) -> Result<Vec<QuarantineRecord>, LogError> {
        self.log.quarantine(from, limit)
    }

    /// The dead-letter outbox cursor (see [`Log::dead_letter_cursor`]).
    pub fn dead_letter_cursor(&self) -> Result<u64, LogError> {
        self.log.dead_letter_cursor()
    }

    /// Moves the dead-letter outbox cursor (see [`Log::set_dead_letter_cursor`]).
    pub fn set_dead_letter_cursor(&mut self, next: u64) -> Result<(), LogError> {
        self.log.set_dead_letter_cursor(next)
    }

    /// The views.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// Closes the ledger, returning its log.
    pub fn into_log(self) -> Log<S> {
        self.log
    }

    /// Projects every entry from the views' watermark to the end of the log. Returns how many.
    /// An entry that cannot be read back as an event (damaged, or bytes the contract no longer
    /// reads) is skipped with a `ledger.unprojectable` alert ([`Views::skip`]): one entry never
    /// stops the views. (A damaged entry also stops appends: see [`Log::damage`].)
    pub fn catch_up(&mut self) -> Result<u64, ViewError> {
        let from = self.views.watermark();
        let size = self.log.size();
        if from > size {
            return Err(ViewError::Entry {
                seq: size,
                message: format!(
                    "the views have projected {from} entries but the log holds {size}; run `evidence rebuild`"
                ),
            });
        }
        let mut done = 0;
        let unreadable = "it cannot be read: its segment is damaged before it";
        for item in self.log.entries(from) {
            let (seq, record) = match item {
                Ok(pair) => pair,
                Err(LogError::BadEntry { seq, problem }) => {
                    let mut alerts = skip_to(&mut self.views, seq, unreadable);
                    alerts.push(self.views.skip(seq, received(0), &format!("it is damaged: {problem}")));
                    fire(&mut self.on_alert, &alerts);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let mut alerts = skip_to(&mut self.views, seq, unreadable);
            alerts.extend(match EntryRef::decode(&record) {
                Err(e) => vec![self.views.skip(seq, received(0), &e.to_string())],
                Ok(entry) => match evidence_schemas::parse_validated(entry.event) {
                    Ok(event) => self.views.project(seq, &std::sync::Arc::new(event), &Replay(&self.log)),
                    Err(e) => vec![self.views.skip(seq, received(entry.received_micros), &e.to_string())],
                },
            });
            fire(&mut self.on_alert, &alerts);
            done += 1;
            if done % 10_000 == 0 {
                self.views.save(self.log.store())?;
            }
        }
        let alerts = skip_to(&mut self.views, size, unreadable);
        fire(&mut self.on_alert, &alerts);
        self.views.save(self.log.store())?;
        Ok(done)
    }

    /// Drops every view and alert and projects the whole log again. Returns the entries
    /// projected.
    pub fn rebuild(&mut self) -> Result<u64, ViewError> {
        Views::clear(self.log.store())?;
        self.views = Views::load(self.log.store())?;
        self.catch_up()
    }

    /// Projects a batch's new entries (the log held `first` before it); saves the views when
    /// `save`, else the next save writes them.
    fn follow(&mut self, batch: &Batch, report: &BatchReport, first: u64, save: bool) -> Result<(), ViewError> {
        if self.behind || self.views.watermark() != first {
            self.views = Views::load(self.log.store())?;
            self.catch_up()?;
            self.behind = false;
            return Ok(());
        }
        for (record, outcome) in batch.records.iter().zip(&report.outcomes) {
            if let (Verdict::Valid(valid), Outcome::Accepted { seq }) = (&record.verdict, outcome) {
                let alerts = self.views.project(*seq, &valid.event, &Replay(&self.log));
                fire(&mut self.on_alert, &alerts);
            }
        }
        if save {
            self.views.save(self.log.store())?;
        }
        Ok(())
    }
}

impl<S: Storage> Sink for Ledger<S> {
    type Error = LogError;

    fn append(&mut self, batch: &Batch) -> Result<BatchReport, LogError> {
        let first = self.log.size();
        let report = self.log.append(batch)?;
        self.project(batch, &report, first, true);
        Ok(report)
    }

    fn append_unsettled(&mut self, batch: &Batch) -> Result<BatchReport, LogError> {
        let first = self.log.size();
        let report = self.log.append_unsettled(batch)?;
        self.project(batch, &report, first, false);
        Ok(report)
    }

    /// Saves the views too, every [`DURABLE_EVERY`] rather than every batch, as a round of
    /// [`Ledger::append_slices`] does: they are derived, and catch up from their watermark
    /// after a crash. Saving them with each batch of 1,000 gateway requests rewrote the same
    /// traffic summaries every time, a tenth of `evidence ingest`'s time on its writer.
    fn settle(&mut self) -> Result<(), LogError> {
        self.save_views_if(false);
        self.log.settle()
    }

    /// The views are saved first, and reach the disk with the flush this starts if one is due
    /// (else with the next one: they catch up from their watermark).
    fn settle_all(&mut self) -> Result<(), LogError> {
        self.settle_all_for(true)
    }
}

impl<S: Storage> Ledger<S> {
    /// Appends consecutive batches as one durable round: each is applied atomically and
    /// projected on its own, the views are saved once, and one flush at the end puts them all
    /// on disk before this returns (then a checkpoint is cut if due); a round that runs longer
    /// than [`DURABLE_EVERY`] also saves and flushes what it has done so far on the way. The
    /// outcomes are the batches', in order. [`Ledger::append_slices_unsettled`], then
    /// [`Sink::settle_all`].
    ///
    /// Smaller atomic batches are for readers: sled holds back every read of the store while
    /// a batch applies, for a few milliseconds per 500 events. If a batch fails, the ones
    /// before it are flushed as far as the store still can, and the error is returned: the
    /// caller acknowledges none of them, and what was stored is found as duplicates when it
    /// is sent again.
    pub fn append_slices(&mut self, batches: &[Batch]) -> Result<BatchReport, LogError> {
        let appended = self.append_slices_unsettled(batches);
        let settled = self.settle_all();
        appended.and_then(|report| settled.map(|()| report))
    }

    /// Appends consecutive batches as [`Ledger::append_slices`] does, but unsettled
    /// ([`Log::append_unsettled`]): none of them may be acknowledged before the next
    /// [`Sink::settle`] but one returns, or [`Sink::settle_all`]. A round that runs longer than
    /// [`DURABLE_EVERY`] puts the slices done so far on disk on the way (`settle_all`), so that
    /// a crash in it redoes at most that much.
    pub fn append_slices_unsettled(&mut self, batches: &[Batch]) -> Result<BatchReport, LogError> {
        let mut outcomes = Vec::with_capacity(batches.iter().map(|b| b.records.len()).sum());
        let mut since = std::time::Instant::now();
        for (n, batch) in batches.iter().enumerate() {
            let first = self.log.size();
            let report = self.log.append_unsettled(batch)?;
            self.project(batch, &report, first, false);
            outcomes.extend(report.outcomes);
            if n + 1 < batches.len() && since.elapsed() >= self.durable_every {
                self.settle_all()?;
                since = std::time::Instant::now();
            }
        }
        Ok(BatchReport { outcomes })
    }

    /// Waits until every batch appended so far is durable, as [`Sink::settle_all`] does, but
    /// saves the views first only when `readers_wait` (a producer about to hear of its events
    /// reads them back in the views) or when they are due ([`DURABLE_EVERY`]); otherwise
    /// [`Ledger::save_views_when_due`] saves them within that time. serve's writer settles so
    /// whenever its queue runs empty: under Kafka intake that was every round, and saving the
    /// views each time took about a quarter of its thread.
    pub fn settle_all_for(&mut self, readers_wait: bool) -> Result<(), LogError> {
        self.save_views_if(readers_wait);
        self.log.settle_all()
    }

    /// Saves the views if `now`, or if they were last saved [`DURABLE_EVERY`] ago.
    fn save_views_if(&mut self, now: bool) {
        if now || self.views_due().is_none() {
            self.save_views();
        }
    }

    /// Saves the views if they have projected entries since they were last saved and that was
    /// [`DURABLE_EVERY`] ago; `Some(how long until they are due)` if they have and it was not,
    /// `None` otherwise.
    pub fn save_views_when_due(&mut self) -> Option<std::time::Duration> {
        if self.views.watermark() == self.saved_watermark {
            return None;
        }
        let due = self.views_due();
        if due.is_none() {
            self.save_views();
        }
        due
    }

    /// `None` if the views were last saved [`DURABLE_EVERY`] ago or more, else how long until
    /// then.
    fn views_due(&self) -> Option<std::time::Duration> {
        self.durable_every.checked_sub(self.views_saved.elapsed()).filter(|left| !left.is_zero())
    }

    /// Sets how often the views are saved, for tests ([`DURABLE_EVERY`] otherwise).
    #[cfg(test)]
    pub(crate) fn set_durable_every(&mut self, every: std::time::Duration) {
        self.durable_every = every;
    }

    /// Saves the views (to be flushed with the log's next flush); a failure leaves them
    /// behind, to catch up.
    fn save_views(&mut self) {
        self.views_saved = std::time::Instant::now();
        self.saved_watermark = self.views.watermark();
        if let Err(error) = self.views.save(self.log.store()) {
            tracing::error!(message = "Failed to save the views; they will catch up.", %error);
            self.behind = true;
        }
    }

    /// Projects an appended batch into the views (saving them when `save`); a failure leaves
    /// them behind, to catch up.
    fn project(&mut self, batch: &Batch, report: &BatchReport, first: u64, save: bool) {
        if let Err(error) = self.follow(batch, report, first, save) {
            tracing::error!(message = "Failed to project entries into the views; they will catch up.", %error);
            self.behind = true;
        }
    }
}

/// The log read back for the views' re-judgements.
struct Replay<'a, S: Storage>(&'a Log<S>);

impl<S: Storage> History for Replay<'_, S> {
    fn replay(&self, from: u64, to: u64, needles: &[&[u8]], each: &mut dyn FnMut(u64, &evidence_schemas::Event)) {
        // Only the entries holding every needle are checked, copied and parsed; the first one
        // past `to` ends the scan.
        let finders: Vec<_> = needles.iter().map(memchr::memmem::Finder::new).collect();
        let picked = move |e: &EntryRef<'_>| e.seq > to || finders.iter().all(|f| f.find(e.event).is_some());
        for item in self.0.entries_where(from, picked) {
            let (seq, record) = match item {
                Ok(pair) => pair,
                // A damaged entry has its own alert; the entries after it still count.
                Err(LogError::BadEntry { .. }) => continue,
                Err(error) => {
                    tracing::error!(message = "Failed to read entries back for a re-judgement.", %error);
                    return;
                }
            };
            if seq > to {
                return;
            }
            let Ok(entry) = EntryRef::decode(&record) else { continue };
            if let Ok(event) = evidence_schemas::parse_validated(entry.event) {
                each(seq, &event);
            }
        }
    }
}

/// Skips, with an alert each, the entries from the views' watermark up to `seq` that reading
/// never produced.
fn skip_to(views: &mut Views, seq: u64, problem: &str) -> Vec<Alert> {
    let mut alerts = Vec::new();
    while views.watermark() < seq {
        alerts.push(views.skip(views.watermark(), received(0), problem));
    }
    alerts
}

/// An entry's receive time (microseconds since the epoch) as an alert time, in UTC.
fn received(micros: i64) -> chrono::DateTime<chrono::FixedOffset> {
    let utc = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    utc.fixed_offset()
}

fn fire(hook: &mut Option<AlertHook>, alerts: &[Alert]) {
    if let Some(hook) = hook {
        alerts.iter().for_each(hook);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use evidence_ingest::{Batch, Origin, Record, Verdict};
    use evidence_schemas::sample::sample_event;
    use evidence_schemas::Validator;
    use evidence_verifier::SignerKey;

    use super::Ledger;
    use crate::log::{CheckpointPolicy, Log};
    use crate::store::{MemStorage, Pair, Storage, StorageError, WriteBatch};

    /// A store that keeps what each durable commit left on "disk", to open as a crash would.
    #[derive(Debug, Default)]
    struct Disk {
        live: MemStorage,
        images: Mutex<Vec<BTreeMap<Vec<u8>, Vec<u8>>>>,
    }

    impl Storage for Disk {
        type Bytes = <MemStorage as Storage>::Bytes;
        fn get(&self, key: &[u8]) -> Result<Option<Self::Bytes>, StorageError> {
            self.live.get(key)
        }
        fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair<Self>, StorageError>> + '_> {
            self.live.range(from, to)
        }
        fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<Pair<Self>>, StorageError> {
            self.live.last_in(from, to)
        }
        fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
            self.live.commit(batch)?;
            let image = self.live.range(&[], &[0xff; 8]).map(|p| p.map(|(k, v)| (k.to_vec(), v.to_vec())));
            self.images.lock().unwrap().push(image.collect::<Result<_, _>>()?);
            Ok(())
        }
        fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
            self.live.apply(batch)
        }
        crate::files_from!(live);
    }

    fn signer() -> SignerKey {
        SignerKey::from_seed("test.example/rounds", [5u8; 32]).unwrap()
    }

    /// The log size a process opening each durable image would find.
    fn sizes_after_a_crash(disk: &Disk) -> Vec<u64> {
        let images = disk.images.lock().unwrap().clone();
        let sizes = images.into_iter().map(|image| {
            let store = MemStorage::default();
            let mut batch = WriteBatch::default();
            image.into_iter().for_each(|(k, v)| batch.put(k, v));
            store.commit(batch).unwrap();
            Log::open(store, vec![signer()], CheckpointPolicy::default()).unwrap().size()
        });
        let mut sizes: Vec<u64> = sizes.collect();
        sizes.dedup();
        sizes
    }

    /// Three slices of 100 sample events as one round, with the given bound between flushes.
    fn round(every: std::time::Duration) -> Vec<u64> {
        let v = Validator::default();
        let log = Log::open(Disk::default(), vec![signer()], CheckpointPolicy::default()).unwrap();
        let mut ledger = Ledger::open(log).unwrap();
        ledger.durable_every = every;
        let slices: Vec<Batch> = (0..3u64)
            .map(|n| Batch {
                records: (n * 100..(n + 1) * 100)
                    .map(|i| Record {
                        origin: Origin::File { path: "round".into(), line: i + 1 },
                        verdict: Verdict::Valid(Box::new(v.validate(sample_event(i).as_bytes()).unwrap())),
                    })
                    .collect(),
                positions: Vec::new(),
            })
            .collect();
        ledger.append_slices(&slices).unwrap();
        sizes_after_a_crash(ledger.log().store())
    }

    /// A round that runs past its bound makes each slice durable as it goes: a crash in it
    /// keeps what was done, so the retry finds it stored. A quick round flushes once, at its end.
    #[test]
    fn a_long_round_is_durable_slice_by_slice() {
        assert_eq!(round(std::time::Duration::ZERO), vec![0, 100, 200, 300]);
        assert_eq!(round(std::time::Duration::from_secs(3600)), vec![0, 300]);
    }
}
