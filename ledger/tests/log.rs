//! The log through its public interface, on both engines behind the storage boundary
//! (`MemStorage` and `SledStorage` run the same checks), with every proof checked by the
//! verifier's code.

use std::collections::HashMap;
use std::time::Duration;

use evidence_ingest::{Batch, Origin, Outcome, Record, Sink, Verdict};
use evidence_ledger::log::QuarantineRecord;
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
    assert_eq!((q[2].raw.as_str(), q[2].raw_encoding.as_str()), ("e/8=", "base64"));
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
fn positions_are_stored_with_the_batch() {
    let v = Validator::default();
    let mut log = Log::open(MemStorage::default(), vec![signer()], policy(100)).unwrap();
    let mut b = batch(&v, [(1, sample_event(1))]);
    b.positions.push(evidence_ingest::Position { source: "kafka:g:t/0".into(), next: 42 });
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
                        Op::Conflict(i) => sample_event(*i).replace("\"specversion\":\"1.0\"", "\"specversion\":\"1.0\",\"x1\":1"),
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
