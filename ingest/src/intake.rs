//! Validation and batching shared by every source: records go in one at a time, full batches
//! go to the [`Sink`], and the running [`Totals`] say what became of everything.

use evidence_schemas::Validator;

use crate::sink::{Batch, Origin, Outcome, Position, Record, Sink, Verdict};

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
    fn count(&mut self, outcome: &Outcome) {
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

    /// Validates one raw record. Returns true when the batch is full and should be flushed.
    pub fn push(&mut self, origin: Origin, raw: &[u8]) -> bool {
        let verdict = match self.validator.validate(raw) {
            Ok(event) => Verdict::Valid(Box::new(event)),
            Err(rejection) => Verdict::Rejected { rejection, raw: raw.to_vec() },
        };
        self.push_verdict(origin, verdict)
    }

    /// Adds a record whose verdict the source reached itself (e.g. a line over the size
    /// limit, never read whole). Returns true when the batch is full.
    pub fn push_verdict(&mut self, origin: Origin, verdict: Verdict) -> bool {
        self.pending.records.push(Record { origin, verdict });
        self.pending.records.len() >= self.batch_size
    }

    /// Records the position the pending batch reaches.
    pub fn reach(&mut self, position: Position) {
        match self.pending.positions.iter_mut().find(|p| p.source == position.source) {
            Some(p) => p.next = position.next,
            None => self.pending.positions.push(position),
        }
    }

    /// Records waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending.records.len()
    }

    /// Hands the pending batch to the sink; calls `report` with each record and its outcome.
    pub fn flush<S: Sink>(&mut self, sink: &mut S, mut report: impl FnMut(&Record, &Outcome)) -> Result<(), S::Error> {
        if self.pending.records.is_empty() && self.pending.positions.is_empty() {
            return Ok(());
        }
        // On error the batch stays pending: nothing of it was stored.
        let result = sink.append(&self.pending)?;
        for (record, outcome) in self.pending.records.iter().zip(&result.outcomes) {
            self.totals.count(outcome);
            report(record, outcome);
        }
        self.pending = Batch::default();
        Ok(())
    }

    /// What became of every record flushed so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }
}
