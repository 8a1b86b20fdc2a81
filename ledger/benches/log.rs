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
//! Each timing covers back-to-back appends of batches validated before the clock starts, and
//! ends once the log's `(source, id)` index (written on a thread of its own, behind the
//! appends) has caught up, so no work of the timed appends goes untimed.
//!
//! After the criterion groups, `summary` measures raw sled, ledger append, and ledger append
//! with views and rules over the same events, taking turns of ten batches, and prints the
//! rates and their ratios.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use evidence_ingest::Sink;
use evidence_ledger::{Ledger, Log, SledStorage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;

// Each bench uses part of the shared workload (`close` is for whole-run timings).
#[allow(dead_code)]
mod common;

use common::{as_batches, batch_of, prepared, validated, RawSled, Store, BATCH};

/// A log with views and rules following it.
fn with_views() -> (tempfile::TempDir, Ledger<SledStorage>) {
    let Store { _dir, log } = Store::new();
    (_dir, Ledger::open(log).unwrap())
}

/// Appends `iters` batches of events from `next` on to `sink`, back to back, then waits for
/// the log's index writer (`settle`) so that no work of the timed appends is left untimed.
/// The events are validated before the clock starts.
fn timed_appends<S: Sink>(v: &Validator, next: &mut u64, iters: u64, sink: &mut S, settle: fn(&S)) -> Duration {
    let batches = as_batches(prepared(v, *next / BATCH, iters), *next / BATCH);
    *next += iters * BATCH;
    let t = Instant::now();
    for batch in &batches {
        sink.append(batch).unwrap();
    }
    settle(sink);
    t.elapsed()
}

fn settle_log(log: &Log<SledStorage>) {
    log.settle_index().unwrap();
}

fn settle_ledger(ledger: &Ledger<SledStorage>) {
    ledger.log().settle_index().unwrap();
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
            let batches = prepared(&v, next / BATCH, iters);
            next += iters * BATCH;
            let t = Instant::now();
            for events in &batches {
                raw.append(events);
            }
            t.elapsed()
        })
    });

    let mut ledger = Store::new();
    let mut next = 0u64;
    group.bench_function("ledger", |b| {
        b.iter_custom(|iters| timed_appends(&v, &mut next, iters, &mut ledger.log, settle_log))
    });

    let (_dir, mut ledger) = with_views();
    let mut next = 0u64;
    group.bench_function("ledger_with_views", |b| {
        b.iter_custom(|iters| timed_appends(&v, &mut next, iters, &mut ledger, settle_ledger))
    });

    let mut ledger = Store::new();
    let mut next = 0u64;
    group.bench_function("ledger_with_validation", |b| {
        b.iter_custom(|iters| {
            let lines: Vec<Vec<String>> =
                (0..iters).map(|n| (next + n * BATCH..next + (n + 1) * BATCH).map(sample_event).collect()).collect();
            let t = Instant::now();
            for lines in &lines {
                let events = lines.iter().map(|l| v.validate(l.as_bytes()).unwrap()).collect();
                ledger.log.append(&batch_of(events, next)).unwrap();
                next += BATCH;
            }
            ledger.log.settle_index().unwrap();
            t.elapsed()
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

/// Batches per turn in `summary`.
const TURN: u64 = 10;

/// Raw sled, ledger, and ledger with views append over the same events, taking turns of
/// `TURN` batches, so that the ratios are measured under the same conditions. Each turn is
/// timed from its first append until the log's index writer has caught up.
fn summary(_: &mut Criterion) {
    let v = Validator::default();
    let batches: u64 = std::env::var("BENCH_SUMMARY_BATCHES").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let (mut raw, mut ledger, (_dir, mut viewed)) = (RawSled::new(), Store::new(), with_views());
    let (mut t_raw, mut t_ledger, mut t_viewed) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for turn in 0..batches.div_ceil(TURN) {
        let from = turn * TURN;
        let events = prepared(&v, from, TURN.min(batches - from));
        let t = Instant::now();
        for batch in &events {
            raw.append(batch);
        }
        t_raw += t.elapsed();
        let events = as_batches(events, from);
        let t = Instant::now();
        for batch in &events {
            ledger.log.append(batch).unwrap();
        }
        ledger.log.settle_index().unwrap();
        t_ledger += t.elapsed();
        let t = Instant::now();
        for batch in &events {
            viewed.append(batch).unwrap();
        }
        viewed.log().settle_index().unwrap();
        t_viewed += t.elapsed();
    }
    let mut by_rule = std::collections::BTreeMap::<evidence_ledger::Rule, usize>::new();
    for a in evidence_ledger::query::alerts(viewed.log().store(), None, None, None).unwrap() {
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
