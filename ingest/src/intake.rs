//! Validation and batching shared by every source: records go in one at a time, full batches
//! go to the [`Sink`], and the running [`Totals`] say what became of everything.

use evidence_schemas::{Rejection, Validator};

use crate::sink::{Batch, BatchReport, Origin, Outcome, Position, Record, Sink, Verdict};

/// Counts of what became of the records an intake handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Appended to the log.
    pub accepted: u64,
    /// Already in the log; acknowledged.
    pub duplicates: u64,
    /// Quarantined.
    pub quarantined: u64,
}

impl Totals {
    /// Counts one record's outcome.
    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Accepted { .. } => self.accepted += 1,
            Outcome::Duplicate { .. } => self.duplicates += 1,
            Outcome::Quarantined { .. } => self.quarantined += 1,
        }
    }

    /// All records handled.
    pub fn total(&self) -> u64 {
        self.accepted + self.duplicates + self.quarantined
    }
}

/// A batch handed to a sink and what became of each of its records.
pub type Appended = (Batch, BatchReport);

/// A record as a source read it: where from, its bytes, and the source's own rejection if any.
pub type Incoming = (Origin, Vec<u8>, Option<Rejection>);

/// Validates records and hands them to a sink in batches of at most `batch_size`.
#[derive(Debug)]
pub struct Intake<'v> {
    validator: &'v Validator,
    batch_size: usize,
    pending: Batch,
    totals: Totals,
}

impl<'v> Intake<'v> {
    /// An intake validating with `validator`, flushing every `batch_size` records.
    pub fn new(validator: &'v Validator, batch_size: usize) -> Self {
        Intake { validator, batch_size: batch_size.max(1), pending: Batch::default(), totals: Totals::default() }
    }

    /// Validates many records at once, spread over the machine's cores, and adds them in order.
    /// A record that comes with a rejection was refused by the source itself (an empty message,
    /// a line over the size limit) and is kept with the bytes given.
    pub fn push_many(&mut self, records: Vec<Incoming>) {
        let done = validate_many(self.validator, records);
        self.add(done);
    }

    /// Adds records validated already ([`validate_many`]), in order. Into an empty batch they
    /// move as they are, without a copy.
    pub fn add(&mut self, records: Vec<Record>) {
        if self.pending.records.is_empty() {
            self.pending.records = records;
        } else {
            self.pending.records.extend(records);
        }
    }

    /// The validator, for validating on another thread ([`validate_many`]).
    pub fn validator(&self) -> &'v Validator {
        self.validator
    }

    /// Records the position the pending batch reaches.
    pub fn reach(&mut self, position: Position) {
        match self.pending.positions.iter_mut().find(|p| p.source == position.source) {
            Some(p) => {
                p.next = position.next;
                p.skipped += position.skipped;
            }
            None => self.pending.positions.push(position),
        }
    }

    /// Records per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Records waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending.records.len()
    }

    /// Whether a flush has nothing to hand over: no record and no position.
    fn idle(&self) -> bool {
        self.pending.records.is_empty() && self.pending.positions.is_empty()
    }

    /// Hands the pending batch to the sink; calls `report` with each record and its outcome.
    pub fn flush<S: Sink>(&mut self, sink: &mut S, mut report: impl FnMut(&Record, &Outcome)) -> Result<(), S::Error> {
        if self.idle() {
            return Ok(());
        }
        // On error the batch stays pending: nothing of it was stored.
        let result = sink.append(&self.pending)?;
        let batch = std::mem::take(&mut self.pending);
        self.settled(&(batch, result), &mut report);
        Ok(())
    }

    /// Hands the pending batch to the sink without waiting for the disk
    /// ([`Sink::append_unsettled`]) and returns it with its outcomes, for [`Intake::settled`]
    /// once the sink has settled it. On error the batch stays pending: nothing of it was
    /// stored.
    pub fn flush_unsettled<S: Sink>(&mut self, sink: &mut S) -> Result<Option<Appended>, S::Error> {
        if self.idle() {
            return Ok(None);
        }
        let report = sink.append_unsettled(&self.pending)?;
        Ok(Some((std::mem::take(&mut self.pending), report)))
    }

    /// Counts what became of a batch now durable, calling `report` with each record and its
    /// outcome.
    pub fn settled(&mut self, (batch, result): &Appended, mut report: impl FnMut(&Record, &Outcome)) {
        for (record, outcome) in batch.records.iter().zip(&result.outcomes) {
            self.totals.count(outcome);
            report(record, outcome);
        }
    }

    /// Hands the pending batch over whole ([`Sink::append_owned`]: no copy when the sink passes
    /// it to another thread) and counts what became of it. On an error the batch is gone, as
    /// nothing of it was stored: the caller reads it again from its source.
    pub fn flush_owned<S: Sink>(&mut self, sink: &mut S) -> Result<(), S::Error> {
        if self.idle() {
            return Ok(());
        }
        let report = sink.append_owned(std::mem::take(&mut self.pending))?;
        for outcome in &report.outcomes {
            self.totals.count(outcome);
        }
        Ok(())
    }

    /// What became of every record flushed so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }
}

/// Validates `records` spread over the machine's cores; the verdicts in order. A record that
/// comes with a rejection was refused by the source itself (an empty message, a line over the
/// size limit) and is kept with the bytes given.
pub fn validate_many(validator: &Validator, records: Vec<Incoming>) -> Vec<Record> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    validate_on(validator, records, threads)
}

/// How many threads a source validates on while the writer appends: all cores but one, which
/// the appending thread keeps (on two cores, two validating threads took turns with it, and
/// `evidence ingest` of gateway requests ran 5-10% faster on one).
pub fn validation_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).clamp(1, 8)
}

/// `records` cut into at most `threads` runs in order, for as many threads to validate: none
/// shorter than 64 records but the last, where handing a run over would cost more than it saves.
pub fn shares<T>(records: Vec<T>, threads: usize) -> Vec<Vec<T>> {
    let share = records.len().div_ceil(threads.max(1)).max(64);
    let mut shares = Vec::new();
    let mut rest = records;
    while rest.len() > share {
        let tail = rest.split_off(share);
        shares.push(rest);
        rest = tail;
    }
    shares.push(rest);
    shares
}

/// Like [`validate_many`], on at most `threads` threads: with one, on this thread.
pub fn validate_on(validator: &Validator, records: Vec<Incoming>, threads: usize) -> Vec<Record> {
    if records.is_empty() {
        return Vec::new();
    }
    let verdict = |raw: Vec<u8>, refused: Option<Rejection>| match refused {
        Some(rejection) => Verdict::Rejected { rejection, raw },
        None => match validator.validate(&raw) {
            Ok(event) => Verdict::Valid(Box::new(event)),
            Err(rejection) => Verdict::Rejected { rejection, raw },
        },
    };
    if threads <= 1 {
        return records
            .into_iter()
            .map(|(origin, raw, refused)| Record { origin, verdict: verdict(raw, refused) })
            .collect();
    }
    let done: Vec<Vec<Record>> = std::thread::scope(|s| {
        let handles: Vec<_> = shares(records, threads)
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.into_iter()
                        .map(|(origin, raw, refused)| Record { origin, verdict: verdict(raw, refused) })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("validation does not panic")).collect()
    });
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use evidence_schemas::Limits;

    use super::*;

    /// A sink that takes batches only whole, as the writer's does, and keeps them.
    #[derive(Default)]
    struct Taking(Vec<Batch>);

    impl Sink for Taking {
        type Error = std::io::Error;

        fn append(&mut self, _: &Batch) -> Result<BatchReport, Self::Error> {
            panic!("the batch was lent, not handed over")
        }

        fn append_owned(&mut self, batch: Batch) -> Result<BatchReport, Self::Error> {
            let outcomes = (0..batch.records.len() as u64).map(|seq| Outcome::Accepted { seq }).collect();
            self.0.push(batch);
            Ok(BatchReport { outcomes })
        }
    }

    #[test]
    fn flush_owned_hands_the_pending_batch_over_whole_and_counts_what_became_of_it() {
        let validator = Validator::new(Limits::default());
        let mut intake = Intake::new(&validator, 10);
        let origin = |offset| Origin::Kafka { topic: "t".into(), partition: 0, offset };
        intake.push_many(vec![(origin(0), b"{".to_vec(), None), (origin(1), b"[]".to_vec(), None)]);
        intake.reach(Position { source: "kafka:g:t/0".into(), next: 2, skipped: 0 });
        let mut sink = Taking::default();
        intake.flush_owned(&mut sink).unwrap();
        assert_eq!(sink.0.len(), 1);
        assert_eq!(sink.0[0].records.iter().map(|r| r.origin.clone()).collect::<Vec<_>>(), [origin(0), origin(1)]);
        assert_eq!(sink.0[0].positions, [Position { source: "kafka:g:t/0".into(), next: 2, skipped: 0 }]);
        assert_eq!((intake.pending(), intake.totals().accepted), (0, 2));
        intake.flush_owned(&mut sink).unwrap();
        assert_eq!(sink.0.len(), 1, "nothing pending, nothing handed over");
    }
}
