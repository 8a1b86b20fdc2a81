//! Audit-query latency on a large store: `query state` and `query artifact` (audit questions
//! 1 and 2) on a ledger of 1,000,000 sample events (`BENCH_QUERY_ENTRIES` to change), a mixed
//! stream over 1,000 model artifacts and 50 apps (`evidence_schemas::sample`).
//!
//! The store is built through `Ledger::append` with views and rules on (batches of 1,000, a
//! durable flush each), then 2,000 queries of each kind are timed one by one: `state` for a
//! random app at a random time within the stream, `artifact` for a random artifact. It prints
//! p50, p99 and the maximum. Run it with `cargo bench -p evidence-ledger --bench query`.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta};
use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::query::{self, ArtifactName};
use evidence_ledger::{CheckpointPolicy, Ledger, Log, SledStorage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::{ArtifactKind, Validator};
use evidence_verifier::SignerKey;

const BATCH: u64 = 1000;
const QUERIES: usize = 2000;

fn percentiles(name: &str, mut times: Vec<Duration>, answered: usize) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "  {name:<15} p50 {:>8.1} µs   p99 {:>8.1} µs   max {:>8.1} µs   ({answered} of {} answered with data)",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        times[times.len() - 1].as_secs_f64() * 1e6,
        times.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let entries: u64 = std::env::var("BENCH_QUERY_ENTRIES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let signer = SignerKey::from_seed("bench.example/query", [5u8; 32]).unwrap();
    let policy = CheckpointPolicy { every_entries: 100_000, interval: Duration::from_secs(3600) };
    let log = Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer], policy).unwrap();
    let mut ledger = Ledger::open(log).unwrap();
    let v = Validator::default();
    let started = Instant::now();
    let mut next = 0;
    while next < entries {
        let records = (next..next + BATCH)
            .map(|i| Record {
                origin: Origin::Kafka { topic: "bench".into(), partition: 0, offset: i as i64 },
                verdict: Verdict::Valid(Box::new(v.validate(sample_event(i).as_bytes()).unwrap())),
            })
            .collect();
        ledger.append(&Batch { records, positions: vec![] }).unwrap();
        next += BATCH;
    }
    ledger.checkpoint_now().unwrap();
    let alerts = query::alerts(ledger.log().store(), None, None, None).unwrap().len();
    println!(
        "query: built a ledger of {} entries with views in {:.1} s ({alerts} alerts)",
        ledger.log().size(),
        started.elapsed().as_secs_f64()
    );

    let store = ledger.log().store();
    let start = DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z").unwrap();
    let span = entries as i64; // the sample stream advances one second an event
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };

    let (mut times, mut answered) = (Vec::with_capacity(QUERIES), 0);
    for _ in 0..QUERIES {
        let app = format!("app-{:02}", rand() % 50);
        let at = start + TimeDelta::seconds((rand() % span as u64) as i64);
        let t = Instant::now();
        let answer = query::state(store, &app, "prod", at).unwrap();
        times.push(t.elapsed());
        answered += usize::from(answer.is_some_and(|a| !a.artifacts.is_empty()));
    }
    println!("query latency over {QUERIES} random queries each:");
    percentiles("query state", times, answered);

    let (mut times, mut answered) = (Vec::with_capacity(QUERIES), 0);
    for _ in 0..QUERIES {
        let a = rand() % 1000;
        let name = ArtifactName {
            kind: ArtifactKind::Model,
            name: format!("model-{a:03}"),
            version: format!("1.{}.0", a % 7),
        };
        let t = Instant::now();
        let answer = query::artifact(store, &name).unwrap();
        times.push(t.elapsed());
        answered += usize::from(answer.is_some_and(|h| !h.history.is_empty()));
    }
    percentiles("query artifact", times, answered);
}
