//! The append workload shared by the benches: sample contract events (`evidence_schemas::sample`,
//! about 500 bytes each, mostly `proxy.request`), validated, in batches of 1,000; the raw sled
//! baseline; and a log in a temporary directory.

use std::time::Duration;

use evidence_ingest::{Batch, Origin, Record, Verdict};
use evidence_ledger::{CheckpointPolicy, Log, SledStorage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::{ValidEvent, Validator};
use evidence_verifier::SignerKey;

/// Events per batch.
pub(crate) const BATCH: u64 = 1000;

pub(crate) fn signer() -> SignerKey {
    SignerKey::from_seed("bench.example/ledger", [3u8; 32]).unwrap()
}

pub(crate) fn policy() -> CheckpointPolicy {
    CheckpointPolicy { every_entries: 100_000, interval: Duration::from_secs(3600) }
}

/// Batches `from..from + count` (of `BATCH` events each), validated ahead of any timing.
pub(crate) fn prepared(v: &Validator, from: u64, count: u64) -> Vec<Vec<ValidEvent>> {
    (from..from + count).map(|n| validated(v, n * BATCH)).collect()
}

/// Validated batches from batch number `from` on (as [`prepared`] gives them) as the log's
/// batches of Kafka records.
pub(crate) fn as_batches(events: Vec<Vec<ValidEvent>>, from: u64) -> Vec<Batch> {
    events.into_iter().zip(from..).map(|(e, n)| batch_of(e, n * BATCH)).collect()
}

/// Sample events `first..first + BATCH`, validated.
pub(crate) fn validated(v: &Validator, first: u64) -> Vec<ValidEvent> {
    (first..first + BATCH).map(|i| v.validate(sample_event(i).as_bytes()).unwrap()).collect()
}

/// The events as a batch of Kafka records at offsets from `first`.
pub(crate) fn batch_of(events: Vec<ValidEvent>, first: u64) -> Batch {
    let records = events
        .into_iter()
        .enumerate()
        .map(|(n, e)| Record {
            origin: Origin::Kafka { topic: "evidence".into(), partition: 0, offset: (first + n as u64) as i64 },
            verdict: Verdict::Valid(Box::new(e)),
        })
        .collect();
    Batch { records, positions: vec![] }
}

/// The baseline: the canonical event bytes in a bare sled tree (configured as the ledger
/// configures its own) under 8-byte keys, one `apply_batch` and one `flush` per batch.
pub(crate) struct RawSled {
    _dir: tempfile::TempDir,
    db: sled::Db,
    next: u64,
}

impl RawSled {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = evidence_ledger::store::sled_config(dir.path()).open().unwrap();
        RawSled { _dir: dir, db, next: 0 }
    }

    /// Closes the database (sled flushes what is left and stops its threads), keeping the
    /// directory for the caller to drop untimed.
    pub(crate) fn close(self) -> tempfile::TempDir {
        drop(self.db);
        self._dir
    }

    pub(crate) fn append(&mut self, events: &[ValidEvent]) {
        let mut b = sled::Batch::default();
        for e in events {
            b.insert(&self.next.to_be_bytes(), e.canonical.as_slice());
            self.next += 1;
        }
        self.db.apply_batch(b).unwrap();
        self.db.flush().unwrap();
    }
}

/// A log in a temporary directory.
pub(crate) struct Store {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) log: Log<SledStorage>,
}

impl Store {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer()], policy()).unwrap();
        Store { _dir: dir, log }
    }

    /// Closes the log: its index writer finishes and the store is flushed and closed. Keeps
    /// the directory for the caller to drop untimed.
    pub(crate) fn close(self) -> tempfile::TempDir {
        drop(self.log);
        self._dir
    }
}
