//! How large the writer cuts a round's atomic slices ([`Pace::slice`]).
//!
//! Each slice is one store batch, and a store batch has a fixed cost (the last segment and
//! the last Merkle tile of each level are rewritten, sled applies and logs the batch): a round
//! of 1,000 sample events appends at about 68,000-72,000 events/s in slices of 100 and
//! 80,000-86,000 in slices of 1,000 (`cargo run --release -p evidence-ledger --example
//! slices`; before batches under 256 records stopped starting helper threads, slices of 100
//! ran at 53,000-57,000). Small slices
//! buy two things, and the writer pays for them only when it needs them:
//! - **Readers.** sled holds every reader of the store back while a batch applies (about 5 µs
//!   a record), so while readers ask questions (an HTTP read in the last
//!   [`READERS_LINGER`]), slices are [`SLICE`] records.
//! - **Progress through crashes.** A round that runs past [`crate::ledger::DURABLE_EVERY`] is
//!   flushed slice by slice on the way (late evidence re-judging old traffic can make a round
//!   take seconds). A wide slice would be one unflushed step, so slices are wide only when the
//!   last round ran quickly, and a writer that has not timed a round yet (after a start, or a
//!   crash) starts narrow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most records one atomic store batch of a round holds while readers are about or rounds
/// run slow (see [`crate::Ledger::append_slices`]; otherwise [`WIDE_SLICE`]).
/// sled stops every reader of the store while a batch applies (its concurrency control), about
/// 5 µs a record here: a round of 500 as one batch held readers back for 2.4 ms at the median
/// and 10 ms at p99, and questions asked under intake had a p99 of 12 to 17 ms. In slices of
/// 100, with the views saved once a round and the index written key by key, they have a p99
/// of 7 to 9.5 ms; intake costs about 15% of its rate for it (ops/bench/http).
pub(super) const SLICE: usize = 100;

/// The records of a slice when no reader is about and rounds run quickly: a Kafka batch of
/// the default size, two HTTP requests of 500 events.
pub(super) const WIDE_SLICE: usize = 1000;

/// How long after a read the writer keeps slices narrow.
pub(super) const READERS_LINGER: Duration = Duration::from_secs(1);

/// The most a wide slice may be expected to take, at the last round's time per record (125 µs
/// a record; a round usually takes 20 to 50): half of [`crate::ledger::DURABLE_EVERY`].
const WIDE_SLICE_BUDGET: Duration = Duration::from_millis(125);

/// When readers last asked the store something, shared by the HTTP API (which marks it) and
/// the writer (which reads it).
#[derive(Debug)]
pub(super) struct Reads {
    since: Instant,
    /// Milliseconds from `since` to the last read, plus one; 0 for none yet.
    last: AtomicU64,
}

impl Default for Reads {
    fn default() -> Self {
        Reads { since: Instant::now(), last: AtomicU64::new(0) }
    }
}

impl Reads {
    /// Records a read now.
    pub(super) fn mark(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Whether a read was marked within `within`.
    pub(super) fn within(&self, within: Duration) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        last != 0 && self.now().saturating_sub(last) <= within.as_millis() as u64
    }

    fn now(&self) -> u64 {
        self.since.elapsed().as_millis() as u64 + 1
    }
}

/// The writer's measure of its last round (time per record), and the readers it watches.
#[derive(Debug)]
pub(super) struct Pace {
    per_record: Option<Duration>,
    reads: Arc<Reads>,
}

impl Pace {
    /// A pace that has timed no round yet, watching `reads`.
    pub(super) fn new(reads: Arc<Reads>) -> Self {
        Pace { per_record: None, reads }
    }

    /// Records a round of `records` that took `took`.
    pub(super) fn record(&mut self, records: usize, took: Duration) {
        if records > 0 {
            self.per_record = Some(took / records as u32);
        }
    }

    /// The records of each slice of the next round: [`WIDE_SLICE`] when no reader is about and
    /// the last round was quick enough for a wide slice to stay inside its budget, else
    /// [`SLICE`].
    pub(super) fn slice(&self) -> usize {
        let quick = self.per_record.is_some_and(|d| d * WIDE_SLICE as u32 <= WIDE_SLICE_BUDGET);
        if quick && !self.reads.within(READERS_LINGER) {
            WIDE_SLICE
        } else {
            SLICE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_wide_only_after_a_quick_round_with_no_reader_about() {
        let reads = Arc::new(Reads::default());
        let mut pace = Pace::new(Arc::clone(&reads));
        assert_eq!(pace.slice(), SLICE, "no round timed yet (a start, a crash): narrow");
        pace.record(1000, Duration::from_millis(30));
        assert_eq!(pace.slice(), WIDE_SLICE, "a quick round, no reader");
        reads.mark();
        assert_eq!(pace.slice(), SLICE, "a reader just asked");
        let quiet = Reads { since: Instant::now() - Duration::from_secs(5), last: AtomicU64::new(1) };
        assert!(!quiet.within(READERS_LINGER));
        pace.reads = Arc::new(quiet);
        assert_eq!(pace.slice(), WIDE_SLICE, "the last read was 5 s ago");
        pace.record(500, Duration::from_millis(2500));
        assert_eq!(pace.slice(), SLICE, "a slow round (late evidence re-judging): narrow, flushed on the way");
        pace.record(0, Duration::from_secs(9));
        assert_eq!(pace.slice(), SLICE, "an empty round says nothing of the pace");
    }
}
