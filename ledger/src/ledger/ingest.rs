//! Ingesting NDJSON (a file or standard input) into a ledger, with every record's outcome
//! reported as it is stored and a checkpoint cut at the end: what `evidence ingest` does, as
//! a function the API and the demo call too.

use std::io::BufRead;

use evidence_ingest::file::{ingest_lines, FileError, LineSource};
use evidence_ingest::{Intake, Outcome, Record, Totals, Verdict};
use evidence_schemas::{Limits, Validator};

use super::Ledger;
use crate::error::ErrorKind;
use crate::log::LogError;
use crate::store::Storage;
use crate::text::esc;

/// How to ingest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestOptions {
    /// Events per durable batch.
    pub batch_size: usize,
    /// Largest accepted event in bytes.
    pub max_event_bytes: usize,
}

impl IngestOptions {
    /// The default events per durable batch, for every intake.
    pub const DEFAULT_BATCH_SIZE: usize = 1000;
    /// The most events per durable batch any intake takes.
    pub const MAX_BATCH_SIZE: usize = 100_000;
    /// The largest event size limit that may be set (16 MiB).
    pub const MAX_EVENT_BYTES: usize = 16 << 20;
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { batch_size: Self::DEFAULT_BATCH_SIZE, max_event_bytes: Limits::default().max_event_bytes }
    }
}

/// Why an ingest stopped. What was stored before it stays stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading the input or appending failed.
    #[error(transparent)]
    Input(#[from] FileError<LogError>),
    /// The final checkpoint could not be cut.
    #[error("the events are stored, but the checkpoint could not be cut: {0}")]
    Checkpoint(LogError),
}

impl IngestError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Input(FileError::Sink { source, .. }) | IngestError::Checkpoint(source) => source.kind(),
            IngestError::Input(FileError::Read { .. }) => ErrorKind::Engine,
        }
    }
}

/// What an ingest tells its caller as it goes.
#[derive(Debug)]
pub enum Report<'a> {
    /// A quarantined record's problem: its origin and a sentence, escaped for a terminal.
    Problem(&'a str),
    /// The totals so far, after each record (a progress line throttles itself).
    Progress(&'a Totals),
}

/// Ingests every line of `reader` into `ledger`, calling `report` with each quarantined
/// record's problems and the totals as they grow, then cuts a checkpoint. Returns the
/// totals.
pub fn ingest<S: Storage>(
    ledger: &mut Ledger<S>,
    reader: impl BufRead + Send,
    source: &LineSource,
    options: IngestOptions,
    mut report: impl FnMut(Report<'_>),
) -> Result<Totals, IngestError> {
    let validator = Validator::new(Limits { max_event_bytes: options.max_event_bytes, ..Limits::default() });
    let mut intake = Intake::new(&validator, options.batch_size);
    let mut so_far = Totals::default();
    ingest_lines(reader, source, &mut intake, ledger, options.max_event_bytes, |record: &Record, outcome| {
        match (outcome, &record.verdict) {
            (Outcome::Quarantined { .. }, Verdict::Rejected { rejection, .. }) => {
                for problem in rejection.problems() {
                    report(Report::Problem(&esc(&format!("{}: {problem}", record.origin)).to_string()));
                }
            }
            (Outcome::Quarantined { reason }, _) => {
                report(Report::Problem(&esc(&format!("{}: {reason}", record.origin)).to_string()))
            }
            _ => {}
        }
        match outcome {
            Outcome::Accepted { .. } => so_far.accepted += 1,
            Outcome::Duplicate { .. } => so_far.duplicates += 1,
            Outcome::Quarantined { .. } => so_far.quarantined += 1,
        }
        report(Report::Progress(&so_far));
    })?;
    ledger.checkpoint_now().map_err(IngestError::Checkpoint)?;
    Ok(intake.totals())
}
