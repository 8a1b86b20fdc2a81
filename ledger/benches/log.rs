//! Benchmarks of the log, each against a baseline measured in the same run.
//!
//! Workload: sample contract events (`evidence_schemas::sample`, about 500 bytes each, mostly
//! `proxy.request`), already validated, in batches of 1,000 with one durable flush per batch.
//!
//! - `append/raw_sled`: the baseline. The same canonical event bytes inserted into a bare
//!   sled tree under 8-byte keys, one `apply_batch` and one `flush` per batch.
//! - `append/ledger`: `Log::append` of the same events: entry encoding, chain, Merkle nodes,
//!   the `(source, id)` index, counters, then the same apply_batch and flush. The events come
//!   validated, as they do to the log: canonical bytes and event digest are the validator's.
//! - `append/ledger_with_validation`: the same, timing JSON Schema validation, RFC 8785
//!   canonicalization and the event digest of the raw lines too (what `evidence ingest` does).
//! - `append/ledger_with_views`: `Ledger::append`, the log with views and rules on: after the
//!   log's flush, every entry is projected and checked and the views are saved.
//! - `proof/inclusion_1m`: `Log::inclusion_proof` for random entries of a 1,000,000-entry
//!   log against its checkpoint (`BENCH_PROOF_ENTRIES` to change the size).
//!
//! After the criterion groups, `summary` measures raw sled, ledger append, and ledger append
//! with views and rules, interleaved batch by batch over the same events, and prints the rates
//! and their ratios.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use evidence_ingest::Sink;
use evidence_ledger::{Ledger, SledStorage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;

mod common;

use common::{batch_of, validated, RawSled, Store, BATCH};

/// A log with views and rules following it.
fn with_views() -> (tempfile::TempDir, Ledger<SledStorage>) {
    let Store { _dir, log } = Store::new();
    (_dir, Ledger::open(log).unwrap())
}

/// Appends `iters` batches of validated events from `next` on to `sink`, timing the appends only.
fn timed_appends(v: &Validator, next: &mut u64, iters: u64, sink: &mut impl Sink) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let batch = batch_of(validated(v, *next), *next);
        *next += BATCH;
        let t = Instant::now();
        sink.append(&batch).unwrap();
        total += t.elapsed();
    }
    total
}

fn append(c: &mut Criterion) {
    let v = Validator::default();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20).measurement_time(Duration::from_secs(15));

    let mut raw = RawSled::new();
    let mut next = 0u64;
    group.bench_function("raw_sled", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let events = validated(&v, next);
                next += BATCH;
                let t = Instant::now();
                raw.append(&events);
                total += t.elapsed();
            }
            total
        })
    });

    let mut ledger = Store::new();
    let mut next = 0u64;
    group.bench_function("ledger", |b| b.iter_custom(|iters| timed_appends(&v, &mut next, iters, &mut ledger.log)));

    let (_dir, mut ledger) = with_views();
    let mut next = 0u64;
    group.bench_function("ledger_with_views", |b| {
        b.iter_custom(|iters| timed_appends(&v, &mut next, iters, &mut ledger))
    });

    let mut ledger = Store::new();
    let mut next = 0u64;
    group.bench_function("ledger_with_validation", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let lines: Vec<String> = (next..next + BATCH).map(sample_event).collect();
                let t = Instant::now();
                let events = lines.iter().map(|l| v.validate(l.as_bytes()).unwrap()).collect();
                ledger.log.append(&batch_of(events, next)).unwrap();
                total += t.elapsed();
                next += BATCH;
            }
            total
        })
    });
    group.finish();
}

fn proof(c: &mut Criterion) {
    let entries: u64 = std::env::var("BENCH_PROOF_ENTRIES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let v = Validator::default();
    let mut ledger = Store::new();
    let started = Instant::now();
    let mut next = 0;
    while next < entries {
        ledger.log.append(&batch_of(validated(&v, next), next)).unwrap();
        next += BATCH;
    }
    ledger.log.checkpoint_now().unwrap();
    let size = ledger.log.size();
    eprintln!("proof: built a log of {size} entries in {:.1} s", started.elapsed().as_secs_f64());

    let mut group = c.benchmark_group("proof");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    group.bench_function(BenchmarkId::new("inclusion", size), |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ledger.log.inclusion_proof(x % size, None).unwrap()
        })
    });
    group.finish();
}

/// Raw sled, ledger, and ledger with views append, interleaved batch by batch over the same
/// events, so that the ratios are measured under the same conditions.
fn summary(_: &mut Criterion) {
    let v = Validator::default();
    let batches: u64 = std::env::var("BENCH_SUMMARY_BATCHES").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let (mut raw, mut ledger, (_dir, mut viewed)) = (RawSled::new(), Store::new(), with_views());
    let (mut t_raw, mut t_ledger, mut t_viewed) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for n in 0..batches {
        let first = n * BATCH;
        let events = validated(&v, first);
        let t = Instant::now();
        raw.append(&events);
        t_raw += t.elapsed();
        let batch = batch_of(events, first);
        let t = Instant::now();
        ledger.log.append(&batch).unwrap();
        t_ledger += t.elapsed();
        let t = Instant::now();
        viewed.append(&batch).unwrap();
        t_viewed += t.elapsed();
    }
    let mut by_rule = std::collections::BTreeMap::<String, usize>::new();
    for a in evidence_ledger::query::alerts(viewed.log().store(), None, None).unwrap() {
        *by_rule.entry(a.rule).or_default() += 1;
    }
    let alerts: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let alerts = alerts.join(", ");
    let events = (batches * BATCH) as f64;
    let rate = |t: Duration| events / t.as_secs_f64();
    let (r, l, w) = (rate(t_raw), rate(t_ledger), rate(t_viewed));
    println!(
        "\nsummary: {batches} batches of {BATCH} events (~500 B), durable flush per batch\n  raw sled:               {r:>9.0} events/s\n  ledger (views off):     {l:>9.0} events/s\n  ledger (views + rules): {w:>9.0} events/s \n  alerts raised: {alerts}\n  ratio ledger/raw sled: {:.2}\n  ratio views on/off:    {:.2}",
        l / r,
        w / l
    );
}

criterion_group!(benches, append, proof, summary);
criterion_main!(benches);
