//! The log through its public interface, on both engines behind the storage boundary
//! (`MemStorage` and `SledStorage` run the same checks), with every proof checked by the
//! verifier's code.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use evidence_ingest::{Batch, Origin, Outcome, Record, Sink, Verdict};
use evidence_ledger::log::{QuarantineRecord, RawEncoding};
use evidence_ledger::store::{Pair, StorageError, StorageErrorKind, WriteBatch};
use evidence_ledger::{CheckpointPolicy, Log, MemStorage, SledStorage, Storage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;
use evidence_verifier::merkle::{verify_consistency, verify_inclusion};
use evidence_verifier::{Auditor, Checkpoint, SignerKey};

fn signer() -> SignerKey {
    SignerKey::from_seed("test.example/log", [42u8; 32]).unwrap()
}

fn policy(every: u64) -> CheckpointPolicy {
    CheckpointPolicy { every_entries: every, interval: Duration::from_secs(3600) }
}

fn record(validator: &Validator, line: u64, raw: &str) -> Record {
    let verdict = match validator.validate(raw.as_bytes()) {
        Ok(v) => Verdict::Valid(Box::new(v)),
        Err(rejection) => Verdict::Rejected { rejection, raw: raw.as_bytes().to_vec() },
    };
    Record { origin: Origin::File { path: "t.ndjson".into(), line }, verdict }
}

/// Sample event `i` with other content under the same `(source, id)`: a conflict.
fn changed(i: u64) -> String {
    sample_event(i).replace("\"specversion\":\"1.0\"", "\"specversion\":\"1.0\",\"x1\":1")
}

fn batch(validator: &Validator, events: impl IntoIterator<Item = (u64, String)>) -> Batch {
    Batch { records: events.into_iter().map(|(i, e)| record(validator, i, &e)).collect(), positions: vec![] }
}

fn audit<S: Storage>(log: &Log<S>) -> evidence_verifier::AuditReport {
    let checkpoints = log.checkpoints().collect::<Result<Vec<_>, _>>().unwrap();
    let mut auditor = Auditor::new(&log.verifier_keys(), checkpoints, None).unwrap();
    for item in log.entries(0) {
        let (seq, rec) = item.unwrap();
        auditor.entry(seq, &rec).unwrap();
    }
    auditor.finish().unwrap()
}

/// Appends 1..=n events in batches of growing size, a checkpoint after every batch, then checks
/// every inclusion proof at every checkpoint and every consistency proof between checkpoints.
fn proofs_verify<S: Storage>(store: S) {
    let v = Validator::default();
    let mut log = Log::open(store, vec![signer()], policy(1)).unwrap();
    let mut next = 0u64;
    for size in 1..=12u64 {
        log.append(&batch(&v, (next..next + size).map(|i| (i, sample_event(i))))).unwrap();
        next += size;
    }
    assert_eq!(log.size(), 78);
    let keys = log.verifier_keys();
    let checkpoints: Vec<Checkpoint> =
        log.checkpoints().map(|c| Checkpoint::open(&c.unwrap().1, &keys, Some(log.origin())).unwrap()).collect();
    assert_eq!(checkpoints.len(), 12);
    for cp in &checkpoints {
        for seq in 0..cp.size {
            let p = log.inclusion_proof(seq, Some(cp.size)).unwrap();
            verify_inclusion(seq, cp.size, &p.leaf_hash, &p.proof, &cp.root)
                .unwrap_or_else(|e| panic!("entry {seq} at size {}: {e}", cp.size));
        }
        for earlier in checkpoints.iter().filter(|c| c.size <= cp.size) {
            let proof = log.consistency_proof(earlier.size, cp.size).unwrap();
            verify_consistency(earlier.size, cp.size, &proof, &earlier.root, &cp.root)
                .unwrap_or_else(|e| panic!("{} -> {}: {e}", earlier.size, cp.size));
        }
    }
    // A proof for a size no checkpoint covers is refused, not invented.
    assert!(log.inclusion_proof(0, Some(2)).is_err());
    let report = audit(&log);
    assert_eq!((report.entries, report.checkpoints, report.unsigned_tail), (78, 12, 0));
}

#[test]
fn proofs_verify_in_memory() {
    proofs_verify(MemStorage::default());
}

#[test]
fn proofs_verify_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    proofs_verify(SledStorage::open(dir.path()).unwrap());
}

#[test]
fn duplicates_are_acknowledged_and_conflicts_quarantined() {
    let v = Validator::default();
    let mut log = Log::open(MemStorage::default(), vec![signer()], policy(1000)).unwrap();
    let e0 = sample_event(0);
    let e1 = sample_event(1);
    // The same event twice in one batch, and once more in the next.
    let r = log.append(&batch(&v, [(1, e0.clone()), (2, e1.clone()), (3, e0.clone())])).unwrap();
    assert_eq!(
        r.outcomes,
        vec![Outcome::Accepted { seq: 0 }, Outcome::Accepted { seq: 1 }, Outcome::Duplicate { seq: 0 }]
    );
    let r = log.append(&batch(&v, [(4, e1.clone())])).unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Duplicate { seq: 1 }]);
    // Same (source, id), other content: a conflict, with both digests.
    let changed = e1.replace("\"status\":\"ok\"", "\"status\":\"error\"");
    assert_ne!(changed, e1);
    let r = log.append(&batch(&v, [(5, changed.clone())])).unwrap();
    let Outcome::Quarantined { reason } = &r.outcomes[0] else { panic!("{:?}", r.outcomes) };
    assert!(
        reason.starts_with("conflict: (gateway/acme/app-00, evt-0000000001) is already entry 1 with digest "),
        "{reason}"
    );
    let q: Vec<QuarantineRecord> = log.quarantine(0, 10).unwrap();
    assert_eq!(q.len(), 1);
    let c = q[0].conflict.as_ref().unwrap();
    assert_eq!((c.seq, c.id.as_str()), (1, "evt-0000000001"));
    assert_ne!(c.stored_digest, c.new_digest);
    assert_eq!(q[0].origin, "file:t.ndjson#5");
    // The same conflicting record again is not stored twice.
    log.append(&batch(&v, [(5, changed)])).unwrap();
    let s = log.status();
    assert_eq!((s.entries, s.duplicates, s.quarantined, s.conflicts), (2, 2, 1, 1));
}

#[test]
fn bad_records_are_quarantined_with_their_problems_and_raw_bytes() {
    let v = Validator::default();
    let mut log = Log::open(MemStorage::default(), vec![signer()], policy(1000)).unwrap();
    let bad = sample_event(3).replace("\"provider\":\"openai\",", "");
    let mut b = batch(&v, [(1, sample_event(0)), (2, bad.clone()), (3, "{not json".into())]);
    b.records.push(Record {
        origin: Origin::Stdin { line: 9 },
        verdict: Verdict::Rejected {
            rejection: evidence_schemas::Rejection::NotUtf8 { offset: 1 },
            raw: vec![b'{', 0xff],
        },
    });
    let r = log.append(&b).unwrap();
    assert_eq!(r.outcomes[0], Outcome::Accepted { seq: 0 });
    let q = log.quarantine(0, 10).unwrap();
    assert_eq!(q.len(), 3);
    assert_eq!(q[0].problems[0].pointer, "/data/provider");
    assert_eq!(q[0].raw, bad);
    assert_eq!(q[1].origin, "file:t.ndjson#3");
    assert!(q[1].reason.starts_with("event is not JSON"), "{}", q[1].reason);
    assert_eq!((q[2].raw.as_str(), q[2].raw_encoding), ("e/8=", RawEncoding::Base64));
    assert_eq!(log.quarantine(1, 10).unwrap().len(), 2);
}

#[test]
fn reopening_resumes_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let v = Validator::default();
    let (root, chain) = {
        let mut log = Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer()], policy(100)).unwrap();
        log.append(&batch(&v, (0..250).map(|i| (i, sample_event(i))))).unwrap();
        let report = audit(&log);
        (report.root, report.chain_head)
    };
    let mut log = Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer()], policy(100)).unwrap();
    assert_eq!(log.size(), 250);
    let report = audit(&log);
    assert_eq!((report.root, report.chain_head), (root, chain));
    log.append(&batch(&v, (0..300).map(|i| (i, sample_event(i))))).unwrap();
    log.checkpoint_now().unwrap();
    let report = audit(&log);
    assert_eq!((report.entries, report.unsigned_tail), (300, 0));
    // Another key name is another log: refused.
    drop(log);
    let other = SignerKey::from_seed("other.example/log", [1u8; 32]).unwrap();
    let err = Log::open(SledStorage::open(dir.path()).unwrap(), vec![other], policy(100)).unwrap_err();
    assert!(err.to_string().contains("this store's log is \"test.example/log\""), "{err}");
}

#[test]
fn a_batch_committed_while_the_index_writer_fails_is_still_accepted() {
    let v = Validator::default();
    let mut gated = gated_log();
    let (log, gate) = (&mut gated.log, &gated.gate);
    // A batch of a whole run's worth of entries: the index writer writes its run, and is
    // held at the gate. The next batch is committed and handed over meanwhile; only then
    // does the store fail under the writer.
    const RUN: u64 = 1 << 16;
    log.append(&batch(&v, (0..RUN).map(|i| (i, sample_event(i))))).unwrap();
    let r = log.append(&batch(&v, (RUN..RUN + 10).map(|i| (i, sample_event(i))))).unwrap();
    let expected: Vec<Outcome> = (RUN..RUN + 10).map(|seq| Outcome::Accepted { seq }).collect();
    assert_eq!(r.outcomes, expected);
    gate.set(true, true);
    let err = log.settle_index().unwrap_err().to_string();
    assert!(err.contains("the (source, id) index could not be written"), "{err}");
    assert_eq!(log.size(), RUN + 10);
    let err = log.append(&batch(&v, [(RUN + 10, sample_event(RUN + 10))])).unwrap_err().to_string();
    assert!(err.contains("the (source, id) index could not be written"), "{err}");
    assert_eq!(log.size(), RUN + 10);
}

/// The runs of the stored `(source, id)` index, as `(start, end)`.
fn index_runs(store: &SledStorage) -> Vec<(u64, u64)> {
    let be = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap());
    store.range(b"J", b"K").map(|item| item.unwrap().0).map(|k| (be(&k[1..9]), be(&k[9..17]))).collect()
}

/// Rewinds the stored `(source, id)` index of the store in `dir` to cover only the runs that
/// end at or before `keep` (their watermark set to match), as a crash before a run's write
/// leaves it; `None` removes its hash key, as a store of the format before the runs has none.
fn rewind_index(dir: &std::path::Path, keep: Option<u64>) {
    let store = SledStorage::open(dir).unwrap();
    let mut wb = WriteBatch::default();
    let Some(keep) = keep else {
        wb.delete(&b"mindexkey"[..]);
        // A key of the format before the runs, which the rebuild deletes.
        wb.put(&b"i\x00\x03srcold"[..], [0u8; 40]);
        store.commit(wb).unwrap();
        return;
    };
    let mut end = 0;
    for (start, stop) in index_runs(&store) {
        if stop > keep {
            let mut key = b"J".to_vec();
            key.extend_from_slice(&start.to_be_bytes());
            key.extend_from_slice(&stop.to_be_bytes());
            wb.delete(key);
        } else {
            end = stop;
        }
    }
    wb.put(&b"mindexed"[..], end.to_be_bytes());
    store.commit(wb).unwrap();
}

#[test]
fn an_index_behind_the_entries_is_rebuilt_from_them_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let v = Validator::default();
    let open = || Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer()], policy(100));
    let events = || batch(&v, (0..250).map(|i| (i, sample_event(i))));
    {
        // Two runs: the first 100 entries, settled, and the rest, written on close.
        let mut log = open().unwrap();
        log.append(&batch(&v, (0..100).map(|i| (i, sample_event(i))))).unwrap();
        log.settle_index().unwrap();
        log.append(&events()).unwrap();
    }
    assert_eq!(index_runs(&SledStorage::open(dir.path()).unwrap()), [(0, 100), (100, 250)]);
    for keep in [Some(100), Some(0), None] {
        rewind_index(dir.path(), keep);
        let mut log = open().unwrap();
        // Every event is found again: a duplicate of its own entry, nothing appended twice.
        let report = log.append(&events()).unwrap();
        let expected: Vec<Outcome> = (0..250).map(|seq| Outcome::Duplicate { seq }).collect();
        assert_eq!(report.outcomes, expected, "index rewound to {keep:?}");
        assert_eq!(log.size(), 250);
        drop(log);
        let store = SledStorage::open(dir.path()).unwrap();
        assert_eq!(index_runs(&store).last().map(|r| r.1), Some(250), "re-indexed to the end");
        assert!(store.range(b"i", b"j").next().is_none(), "the index of the older format is gone");
    }
    // Other content under a re-indexed (source, id) is a conflict with the right entry.
    let changed = changed(200);
    rewind_index(dir.path(), Some(0));
    let mut log = open().unwrap();
    let report = log.append(&batch(&v, [(1, changed)])).unwrap();
    let Outcome::Quarantined { reason } = &report.outcomes[0] else { panic!("{:?}", report.outcomes) };
    assert!(reason.contains("is already entry 200 with digest"), "{reason}");
    drop(log);
    // An index claiming more entries than the log holds is damage, not something to trust.
    let store = SledStorage::open(dir.path()).unwrap();
    let mut wb = WriteBatch::default();
    let mut key = b"J".to_vec();
    key.extend_from_slice(&250u64.to_be_bytes());
    key.extend_from_slice(&251u64.to_be_bytes());
    // A run of no pairs: its record is the count (0) and the hash of its empty file.
    wb.put(key, [&0u64.to_be_bytes()[..], blake3::hash(b"").as_bytes()].concat());
    wb.put(&b"mindexed"[..], 251u64.to_be_bytes());
    store.commit(wb).unwrap();
    store.write_file(&format!("run-{:020}-{:020}", 250, 251), &mut std::iter::empty()).unwrap();
    drop(store);
    let err = open().unwrap_err();
    assert!(err.to_string().contains("the (source, id) index covers 251 entries but the log holds 250"), "{err}");
}

/// A store whose `apply` (the log uses it only to write its `(source, id)` index, behind the
/// appends) waits until the test opens the gate, or fails once told to.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    open: bool,
    fail: bool,
}

impl Gate {
    fn set(&self, open: bool, fail: bool) {
        let mut state = self.state.lock().unwrap();
        (state.open, state.fail) = (open, fail);
        self.changed.notify_all();
    }
}

struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        let fail = self.0.state.lock().is_ok_and(|s| s.fail);
        self.0.set(true, fail);
    }
}

/// The reads of a test store that wraps a [`MemStorage`] in `inner` and changes only writes.
macro_rules! reads_from_inner {
    () => {
        type Bytes = <MemStorage as Storage>::Bytes;

        fn get(&self, key: &[u8]) -> Result<Option<Self::Bytes>, StorageError> {
            self.inner.get(key)
        }

        fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair<Self>, StorageError>> + '_> {
            self.inner.range(from, to)
        }

        fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<Pair<Self>>, StorageError> {
            self.inner.last_in(from, to)
        }

        evidence_ledger::files_from!(inner);
    };
}

struct GatedStore {
    inner: MemStorage,
    gate: Arc<Gate>,
}

impl Storage for GatedStore {
    reads_from_inner!();

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.inner.commit(batch)
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut state = self.gate.state.lock().unwrap();
        while !state.open {
            state = self.gate.changed.wait(state).unwrap();
        }
        if state.fail {
            return Err(StorageError::new(StorageErrorKind::FullDisk, "no space left on device (test)"));
        }
        self.inner.apply(batch)
    }
}

/// A log on a [`GatedStore`] with its gate shut.
struct Gated {
    /// Dropped before the log, also when an assertion fails: the log's close waits for its
    /// index writer, which must not be left at a shut gate.
    _open_on_exit: OpenOnDrop,
    log: Log<GatedStore>,
    gate: Arc<Gate>,
}

fn gated_log() -> Gated {
    let gate = Arc::new(Gate::default());
    let store = GatedStore { inner: MemStorage::default(), gate: Arc::clone(&gate) };
    let log = Log::open(store, vec![signer()], policy(1000)).unwrap();
    Gated { _open_on_exit: OpenOnDrop(Arc::clone(&gate)), log, gate }
}

#[test]
fn index_entries_not_yet_written_are_found_and_a_failed_index_write_stops_appends() {
    let v = Validator::default();
    let mut gated = gated_log();
    let (log, gate) = (&mut gated.log, &gated.gate);
    let r = log.append(&batch(&v, (0..100).map(|i| (i, sample_event(i))))).unwrap();
    assert!(r.outcomes.iter().all(|o| matches!(o, Outcome::Accepted { .. })));
    // The index writer is held at the gate: the first batch's index entries are in memory
    // only, and the next batch must find them there.
    let changed = changed(10);
    let again = (50..150).map(|i| (i, sample_event(i))).chain([(150, changed)]);
    let r = log.append(&batch(&v, again)).unwrap();
    let expected: Vec<Outcome> = (50..100)
        .map(|seq| Outcome::Duplicate { seq })
        .chain((100..150).map(|seq| Outcome::Accepted { seq }))
        .collect();
    assert_eq!(r.outcomes[..100], expected[..]);
    let Outcome::Quarantined { reason } = &r.outcomes[100] else { panic!("{:?}", r.outcomes[100]) };
    assert!(reason.contains("is already entry 10 with digest"), "{reason}");
    gate.set(true, false);
    log.settle_index().unwrap();
    assert_eq!(log.status().entries, 150);
    // A store failing under the index writer: the batch was committed and stays accepted, but
    // the log takes nothing more until reopened (which rebuilds the index from the entries).
    gate.set(true, true);
    let r = log.append(&batch(&v, (150..160).map(|i| (i, sample_event(i))))).unwrap();
    assert_eq!(r.outcomes[0], Outcome::Accepted { seq: 150 });
    let err = log.settle_index().unwrap_err().to_string();
    assert!(
        err.contains("the (source, id) index could not be written (storage: no space left on device (test))"),
        "{err}"
    );
    let err = log.append(&batch(&v, [(160, sample_event(160))])).unwrap_err().to_string();
    assert!(err.contains("reopen the store to rebuild it from the entries"), "{err}");
    assert_eq!(log.size(), 160);
}

#[test]
fn positions_are_stored_with_the_batch() {
    let v = Validator::default();
    let mut log = Log::open(MemStorage::default(), vec![signer()], policy(100)).unwrap();
    let mut b = batch(&v, [(1, sample_event(1))]);
    b.positions.push(evidence_ingest::Position { source: "kafka:g:t/0".into(), next: 42, skipped: 0 });
    log.append(&b).unwrap();
    assert_eq!(log.position("kafka:g:t/0").unwrap(), Some(42));
    assert_eq!(log.position("kafka:g:t/1").unwrap(), None);
}

mod model {
    //! Random streams of batches (new, repeated, conflicting and malformed records) against a
    //! plain model: a map from (source, id) to content, an ordered list, a quarantine set.
    //! Batches run from 1 to 160 records, so both the one-thread path of small batches and
    //! the two-thread path of large ones (64 records and more) are checked.
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        New(u64),
        Repeat(u64),
        Conflict(u64),
        Malformed(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..400).prop_map(Op::New),
            2 => (0u64..400).prop_map(Op::Repeat),
            1 => (0u64..400).prop_map(Op::Conflict),
            1 => any::<u8>().prop_map(Op::Malformed),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn log_matches_model(batches in prop::collection::vec(prop::collection::vec(op(), 1..160), 1..8), reopen_after in 0usize..8) {
            let v = Validator::default();
            let dir = tempfile::tempdir().unwrap();
            let open = || Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer()], policy(17)).unwrap();
            let mut log = Some(open());
            let mut model_entries: Vec<String> = Vec::new();
            let mut model_index: HashMap<u64, String> = HashMap::new();
            let mut quarantined: std::collections::HashSet<String> = Default::default();
            let mut line = 0u64;
            for (n, ops) in batches.iter().enumerate() {
                if n == reopen_after {
                    drop(log.take());
                    log = Some(open());
                }
                let mut b = Batch::default();
                let mut raws = Vec::new();
                for op in ops {
                    let raw = match op {
                        Op::New(i) | Op::Repeat(i) => sample_event(*i),
                        Op::Conflict(i) => changed(*i),
                        Op::Malformed(b) => format!("{{\"junk\": {b}"),
                    };
                    line += 1;
                    b.records.push(record(&v, line, &raw));
                    raws.push((line, raw));
                }
                let report = log.as_mut().unwrap().append(&b).unwrap();
                for ((line, raw), (op, outcome)) in raws.iter().zip(ops.iter().zip(&report.outcomes)) {
                    let (i, is_event) = match op { Op::Malformed(_) => (0, false), Op::New(i) | Op::Repeat(i) | Op::Conflict(i) => (*i, true) };
                    let expected = if !is_event {
                        quarantined.insert(format!("{line}{raw}"));
                        "quarantined"
                    } else {
                        match model_index.get(&i) {
                            None => { model_index.insert(i, raw.clone()); model_entries.push(raw.clone()); "accepted" }
                            Some(stored) if stored == raw => "duplicate",
                            Some(_) => { quarantined.insert(format!("{line}{raw}")); "quarantined" }
                        }
                    };
                    let got = match outcome { Outcome::Accepted { .. } => "accepted", Outcome::Duplicate { .. } => "duplicate", Outcome::Quarantined { .. } => "quarantined" };
                    prop_assert_eq!(got, expected);
                }
            }
            let log = log.unwrap();
            prop_assert_eq!(log.size(), model_entries.len() as u64);
            prop_assert_eq!(log.status().quarantined, quarantined.len() as u64);
            let canon = |s: &str| v.validate(s.as_bytes()).unwrap().canonical;
            for (item, want) in log.entries(0).zip(&model_entries) {
                let (_, rec) = item.unwrap();
                let e = evidence_verifier::entry::EntryRef::decode(&rec).unwrap();
                let want = canon(want);
                prop_assert_eq!(e.event, want.as_slice());
            }
            let mut log = log;
            log.checkpoint_now().unwrap();
            prop_assert_eq!(audit(&log).entries, model_entries.len() as u64);
        }
    }
}

/// A store whose durable commits fail while `fail` is set, when they write a checkpoint.
struct FailingCheckpoints {
    inner: MemStorage,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Storage for FailingCheckpoints {
    reads_from_inner!();

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let checkpoint = batch.keys().any(|k| k.first() == Some(&b'c'));
        if checkpoint && self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::new(StorageErrorKind::FullDisk, "no space left on device (test)"));
        }
        self.inner.commit(batch)
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.inner.apply(batch)
    }
}

#[test]
fn a_committed_batch_is_reported_committed_when_its_checkpoint_fails() {
    let v = Validator::default();
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let store = FailingCheckpoints { inner: MemStorage::default(), fail: Arc::clone(&fail) };
    let mut log = Log::open(store, vec![signer()], policy(10)).unwrap();
    // The batch is due a checkpoint (10 entries) that cannot be written: the batch is still
    // committed, reported so, and the failure is kept where status shows it.
    let r = log.append(&batch(&v, (0..10).map(|i| (i, sample_event(i))))).unwrap();
    assert_eq!(r.outcomes, (0..10).map(|seq| Outcome::Accepted { seq }).collect::<Vec<_>>());
    assert_eq!(log.size(), 10);
    assert_eq!(log.latest_size(), 0);
    let status = log.status();
    let failure = status.checkpoint_failure.expect("the failure is reported");
    assert!(failure.contains("no space left on device (test)"), "{failure}");
    // Re-sending the batch finds every event: nothing was lost or doubled.
    let r = log.append(&batch(&v, (0..10).map(|i| (i, sample_event(i))))).unwrap();
    assert!(r.outcomes.iter().all(|o| matches!(o, Outcome::Duplicate { .. })), "{:?}", r.outcomes);
    // Once the store takes writes again, the next batch retries the checkpoint, which covers
    // everything committed.
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    log.append(&batch(&v, [(10, sample_event(10))])).unwrap();
    assert_eq!(log.latest_size(), 11);
    assert_eq!(log.status().checkpoint_failure, None);
}

/// A store made before stores recorded their keys takes a key only if it signed the store's
/// checkpoints: another key of the same origin is refused.
#[test]
fn a_store_without_a_key_history_takes_only_the_key_that_signed_it() {
    let v = Validator::default();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer()], policy(5)).unwrap();
    log.append(&batch(&v, (0..10).map(|i| (i, sample_event(i))))).unwrap();
    log.checkpoint_now().unwrap();
    // As such a store was: no key history.
    let mut wb = evidence_ledger::store::WriteBatch::default();
    wb.delete(b"mkeys".to_vec());
    log.store().commit(wb).unwrap();
    drop(log);
    let other = SignerKey::from_seed("test.example/log", [43u8; 32]).unwrap();
    let err = Log::open(SledStorage::open(dir.path()).unwrap(), vec![other], policy(5)).unwrap_err();
    assert!(err.to_string().contains("did not sign this store's checkpoints"), "{err}");
    let log = Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer()], policy(5)).unwrap();
    assert_eq!(log.verifier_keys(), vec![signer().verifier()]);
}
