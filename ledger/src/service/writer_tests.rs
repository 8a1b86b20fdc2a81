//! Tests of the writer's rounds: published before answered, group commit of waiting
//! requests, the views saved for HTTP answers and when due, records tallied by source.

use std::sync::mpsc::sync_channel;
use std::sync::{Arc, RwLock};

use evidence_ingest::{Batch, Origin, Record, Verdict};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;
use evidence_verifier::SignerKey;

use super::{round, Job, Published, Reply};
use crate::ledger::Ledger;
use crate::log::{CheckpointPolicy, Log};
use crate::service::pace::{Pace, Reads};
use crate::store::MemStorage;

/// A ledger on an empty in-memory store.
fn ledger() -> Ledger<MemStorage> {
    let signer = SignerKey::from_seed("test.example/writer", [7u8; 32]).unwrap();
    let log = Log::open(MemStorage::default(), vec![signer], CheckpointPolicy::default()).unwrap();
    Ledger::open(log).unwrap()
}

/// A request of `n` sample events from `from` on, as HTTP intake submits it.
fn request(v: &Validator, from: u64, n: u64) -> Batch {
    let records = (from..from + n)
        .map(|i| Record {
            origin: Origin::Http { token: "producer".into(), peer: "127.0.0.1:1".into(), item: i - from + 1 },
            verdict: Verdict::Valid(Box::new(v.validate(sample_event(i).as_bytes()).unwrap())),
        })
        .collect();
    Batch { records, positions: Vec::new() }
}

/// A producer that has its answer finds its events in what the writer publishes (the
/// status readers get), even while the writer still has upkeep to do after the round.
#[test]
fn a_round_is_published_before_it_is_answered() {
    let v = Validator::default();
    let mut ledger = ledger();
    let published = Arc::new(RwLock::new(Published::of(&ledger, None)));
    let (_queue, jobs) = sync_channel::<Job<MemStorage>>(1);
    let (reply, answer) = tokio::sync::oneshot::channel();
    let (go_on, held) = std::sync::mpsc::channel::<()>();
    let writer = {
        let published = Arc::clone(&published);
        std::thread::spawn(move || {
            let mut pace = Pace::new(Arc::new(Reads::default()));
            let mut round_held = None;
            round(&mut ledger, (request(&v, 0, 10), reply), &jobs, &mut pace, &published, &mut round_held);
            // Nothing waits behind it: the round is settled and answered at once.
            assert_eq!(super::answer_held(&mut ledger, &mut round_held), None);
            // The writer's upkeep after the round: the answer must not wait for it.
            held.recv().unwrap();
        })
    };
    let answered = answer.blocking_recv().unwrap().unwrap();
    assert_eq!(answered.outcomes.len(), 10);
    assert_eq!(published.read().unwrap().size, 10, "answered before the round was published");
    go_on.send(()).unwrap();
    writer.join().unwrap();
}

/// A round of HTTP requests is answered with the views saved, since its producer may ask
/// about its events at once; a round read from Kafka, which nobody waits on, leaves them to
/// be saved when due (saving them each time the queue ran empty took about a quarter of
/// the writer's thread under Kafka intake).
#[test]
fn views_are_saved_before_http_answers_and_when_due_for_kafka() {
    use crate::store::Storage as _;
    let v = Validator::default();
    let mut ledger = ledger();
    ledger.set_durable_every(std::time::Duration::from_secs(3600));
    let saved = |ledger: &Ledger<MemStorage>| {
        let bytes = ledger.log().store().get(crate::governance::keys::WATERMARK).unwrap();
        bytes.map(|b| u64::from_be_bytes(b[..8].try_into().unwrap()))
    };
    let kafka = |from: u64| {
        let mut batch = request(&v, from, 10);
        for (i, r) in batch.records.iter_mut().enumerate() {
            r.origin = Origin::Kafka { topic: "t".into(), partition: 0, offset: from as i64 + i as i64 };
        }
        batch
    };
    let (_queue, jobs) = sync_channel::<Job<MemStorage>>(1);
    let mut pace = Pace::new(Arc::new(Reads::default()));
    let published = RwLock::new(Published::of(&ledger, None));
    let mut step = |ledger: &mut Ledger<MemStorage>, batch: Batch| {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let mut held = None;
        round(ledger, (batch, reply), &jobs, &mut pace, &published, &mut held);
        assert_eq!(super::answer_held(ledger, &mut held), None);
        assert_eq!(answer.try_recv().unwrap().unwrap().outcomes.len(), 10);
    };
    step(&mut ledger, kafka(0));
    assert_ne!(saved(&ledger), Some(10), "a Kafka round saved the views although none were due");
    step(&mut ledger, request(&v, 10, 10));
    assert_eq!(saved(&ledger), Some(20), "an HTTP round was answered before the views held it");
    step(&mut ledger, kafka(20));
    assert_eq!(saved(&ledger), Some(20));
    assert!(ledger.save_views_when_due().is_some(), "views unsaved and not due yet");
    ledger.set_durable_every(std::time::Duration::ZERO);
    assert_eq!(ledger.save_views_when_due(), None);
    assert_eq!(saved(&ledger), Some(30), "the views are saved once due");
    assert_eq!(ledger.save_views_when_due(), None, "nothing unsaved");
}

/// Each record is counted under its own source and outcome.
#[test]
fn records_are_tallied_by_source_and_outcome() {
    use evidence_ingest::{BatchReport, Outcome};
    let v = Validator::default();
    let valid = |i: u64| Verdict::Valid(Box::new(v.validate(sample_event(i).as_bytes()).unwrap()));
    let rejected = || Verdict::Rejected { rejection: v.validate(b"{}").unwrap_err(), raw: b"{}".to_vec() };
    let kafka = Origin::Kafka { topic: "t".into(), partition: 0, offset: 0 };
    let file = Origin::File { path: "f".into(), line: 1 };
    let http = Origin::Http { token: "p".into(), peer: "127.0.0.1:1".into(), item: 1 };
    let records = [
        Record { origin: kafka.clone(), verdict: valid(0) },
        Record { origin: kafka, verdict: valid(1) },
        Record { origin: file, verdict: valid(2) },
        Record { origin: http.clone(), verdict: rejected() },
        Record { origin: http, verdict: valid(3) },
    ];
    let quarantined = || Outcome::Quarantined { reason: "r".into() };
    let outcomes = vec![
        Outcome::Accepted { seq: 0 },
        Outcome::Accepted { seq: 1 },
        Outcome::Duplicate { seq: 0 },
        quarantined(),
        quarantined(),
    ];
    let counted = super::tally(records.iter(), &BatchReport { outcomes });
    assert_eq!(counted, [[2, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0]]);
}

/// Requests of 500 waiting together share a round, and so a flush, up to [`super::MAX_GROUP`]
/// records; the rest wait for the next round.
#[test]
fn two_requests_of_500_share_a_round_and_a_third_waits() {
    let v = Validator::default();
    let mut ledger = ledger();
    let (queue, jobs) = sync_channel::<Job<MemStorage>>(4);
    let mut answers: Vec<tokio::sync::oneshot::Receiver<Reply>> = Vec::new();
    let mut first = None;
    for n in 0..3 {
        let (reply, answer) = tokio::sync::oneshot::channel();
        answers.push(answer);
        let batch = request(&v, n * 500, 500);
        match first {
            None => first = Some((batch, reply)),
            Some(_) => queue.send(Job::Batch { batch, reply }).unwrap(),
        }
    }
    let mut pace = Pace::new(Arc::new(Reads::default()));
    let published = RwLock::new(Published::of(&ledger, None));
    let mut held = None;
    let (failure, stop) = round(&mut ledger, first.unwrap(), &jobs, &mut pace, &published, &mut held);
    assert_eq!((failure, stop), (None, false));
    assert!(answers[0].try_recv().is_err(), "a round is answered only once it is on disk");
    assert_eq!(super::answer_held(&mut ledger, &mut held), None);
    for answer in &mut answers[..2] {
        assert_eq!(answer.try_recv().expect("answered in the round").unwrap().outcomes.len(), 500);
    }
    assert!(answers[2].try_recv().is_err(), "the third request waits for the next round");
    assert_eq!(ledger.log().size(), 1000);
    assert!(matches!(jobs.try_recv(), Ok(Job::Batch { .. })), "the third request is still queued");
}
