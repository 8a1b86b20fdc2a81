//! The narrow interface between intake and storage: a [`Batch`] of [`Record`]s (each valid or
//! rejected, each with its [`Origin`]) plus the source [`Position`]s the batch reaches, and a
//! [`Sink`] that stores the batch atomically and durably and answers with one [`Outcome`] per
//! record.

use std::fmt;

use evidence_schemas::{Rejection, ValidEvent};

/// Where a record came from. Written into the ledger entry (its `Display` form) and into
/// quarantine records.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A Kafka message.
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// A line of a file.
    File {
        /// The file's path as given.
        path: String,
        /// 1-based line number.
        line: u64,
    },
    /// A line of standard input.
    Stdin {
        /// 1-based line number.
        line: u64,
    },
    /// An event of an HTTP request body.
    Http {
        /// The name of the token the producer sent.
        token: String,
        /// The peer's address.
        peer: String,
        /// 1-based index of the event in the request.
        item: u64,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Kafka { topic, partition, offset } => write!(f, "kafka:{topic}/{partition}@{offset}"),
            Origin::File { path, line } => write!(f, "file:{path}#{line}"),
            Origin::Stdin { line } => write!(f, "stdin#{line}"),
            Origin::Http { token, peer, item } => write!(f, "http:{token}@{peer}#{item}"),
        }
    }
}

/// What validation made of a record.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// A valid event, ready to append.
    Valid(Box<ValidEvent>),
    /// A rejected record, to quarantine with its raw bytes.
    Rejected {
        /// Why.
        rejection: Rejection,
        /// The bytes as received.
        raw: Vec<u8>,
    },
}

/// One record of a batch.
#[derive(Clone, Debug)]
pub struct Record {
    /// Where it came from.
    pub origin: Origin,
    /// What validation made of it.
    pub verdict: Verdict,
}

/// How far a source has been read, stored in the same atomic write as the batch so that a
/// restart resumes exactly there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The source's stable name, e.g. `kafka:<group>:<topic>/<partition>`.
    pub source: String,
    /// The next offset to read.
    pub next: i64,
    /// Offsets the source skipped in this batch: its first record after a resume was this far
    /// past the stored position (0 normally). A gap means records lost between producer and
    /// ledger (or, on a compacted or transactional topic, records the broker legitimately
    /// leaves out), so the log counts it per source.
    pub skipped: u64,
}

/// A batch for the sink.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The records, in source order.
    pub records: Vec<Record>,
    /// Positions reached once this batch is stored.
    pub positions: Vec<Position>,
}

/// What became of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Appended as entry `seq`.
    Accepted {
        /// Its sequence number.
        seq: u64,
    },
    /// Already in the log as entry `seq` with the same content: acknowledged, not appended.
    Duplicate {
        /// The existing entry.
        seq: u64,
    },
    /// Kept out of the log, in quarantine.
    Quarantined {
        /// Why, in a sentence.
        reason: String,
    },
}

/// The sink's answer: one outcome per record, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// One per record.
    pub outcomes: Vec<Outcome>,
}

/// Storage for batches. When `append` returns `Ok`, every record is accounted for: accepted
/// ones are durable, duplicates acknowledged, the rest quarantined, and the positions stored
/// with them. When it returns `Err`, nothing of the batch was stored.
pub trait Sink {
    /// The storage's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores a batch atomically and durably.
    fn append(&mut self, batch: &Batch) -> Result<BatchReport, Self::Error>;

    /// Stores a batch handed over whole, as [`Sink::append`] does: a sink that passes batches
    /// to another thread takes it without a copy (by default it is lent to `append`). On an
    /// error nothing of it was stored, and the caller reads it again from its source.
    fn append_owned(&mut self, batch: Batch) -> Result<BatchReport, Self::Error> {
        self.append(&batch)
    }

    /// Stores a batch atomically, perhaps not yet durably: its outcomes may be told only once
    /// the second [`Sink::settle`] after it returns, or [`Sink::settle_all`]. A sink that can
    /// put a batch on disk while the caller prepares the next one does so (by default the
    /// batch is appended durably at once).
    fn append_unsettled(&mut self, batch: &Batch) -> Result<BatchReport, Self::Error> {
        self.append(batch)
    }

    /// Waits until every batch appended before the previous call is durable, and starts
    /// putting the ones appended since on disk.
    fn settle(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Waits until every batch appended so far is durable.
    fn settle_all(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Hands a batch over whole, to be stored after every batch submitted before it, and
    /// returns how to wait for its report ([`Pending`]), so that a source can hand over the
    /// next batch while this one is stored (a sink that stores on another thread overlaps
    /// them; by default the batch is stored at once, [`Sink::append_owned`]). Waiting gives
    /// what `append_owned` would have.
    fn submit(&mut self, batch: Batch) -> Pending<Self::Error> {
        let result = self.append_owned(batch);
        Box::new(move || result)
    }
}

/// A batch submitted to a sink ([`Sink::submit`]): calling it waits until the batch is stored
/// and gives its report, or why it was not stored.
pub type Pending<E> = Box<dyn FnOnce() -> Result<BatchReport, E> + Send>;
