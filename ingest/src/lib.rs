//! Evidence Ledger intake: turns what producers send (NDJSON files and stdin here; Kafka and
//! HTTP build on the same pieces) into batches of validated events and rejections, and hands
//! them to a [`Sink`].
//!
//! Every intake goes through [`intake::Intake`]: the same validation, the same batching, the
//! same accounting. This crate knows nothing of storage beyond the [`Sink`] trait: a batch in,
//! one outcome per record out, and a promise that what the sink reports as accepted is durable.

pub mod file;
pub mod intake;
pub mod kafka;
pub mod sink;
pub mod validation;

pub use intake::{Intake, Totals};
pub use sink::{Batch, BatchReport, Origin, Outcome, Pending, Position, Record, Sink, Verdict};
