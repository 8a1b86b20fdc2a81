//! Batched append against raw sled, each measured alone in a process of its own, alternating.
//!
//! Workload: the same as `benches/log.rs` (sample contract events of about 500 bytes, already
//! validated, batches of 1,000, one durable flush per batch), from an empty store each time:
//! - `raw`: the canonical event bytes inserted into a bare sled tree under 8-byte keys, one
//!   `apply_batch` and one `flush` per batch (sled configured as the ledger configures it);
//! - `ledger`: `Log::append` of the same events.
//!
//! The two run in turn, `BENCH_APPEND_ROUNDS` rounds (default 5) of `BENCH_APPEND_BATCHES`
//! batches each (default 200). Each run is timed whole, from the first append until the store
//! is closed, with the events validated before: the log writes its `(source, id)` index on a
//! thread of its own behind the appends, and that work is timed too. Separate processes keep one store's background work (sled's
//! deferred frees run on whichever thread comes next) out of the other's figures, and
//! alternating rounds expose both to the same drift of a shared machine. It prints each
//! round's rates and ratio, then the median ratio.
//!
//! `cargo bench -p evidence-ledger --bench append`

use std::process::Command;
use std::time::Instant;

use evidence_ingest::Sink;
use evidence_schemas::Validator;

mod common;

use common::{as_batches, prepared, RawSled, Store, BATCH};

const ONLY: &str = "BENCH_APPEND_ONLY";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Times `batches` appends of one kind into a fresh store, back to back, from the first
/// append to the store's close (so work a store leaves to background threads is timed too);
/// returns events a second. The events are validated before the clock starts.
fn measure(kind: &str, batches: u64) -> f64 {
    let events = prepared(&Validator::default(), 0, batches);
    let elapsed = match kind {
        "raw" => {
            let mut raw = RawSled::new();
            let t = Instant::now();
            for batch in &events {
                raw.append(batch);
            }
            let _dir = raw.close();
            t.elapsed()
        }
        "ledger" => {
            let batches = as_batches(events, 0);
            let mut store = Store::new();
            let t = Instant::now();
            for batch in &batches {
                store.log.append(batch).unwrap();
            }
            let _dir = store.close();
            t.elapsed()
        }
        other => panic!("{ONLY} is raw or ledger, not {other}"),
    };
    (batches * BATCH) as f64 / elapsed.as_secs_f64()
}

fn child(kind: &str, batches: u64) -> f64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ONLY, kind)
        .env("BENCH_APPEND_BATCHES", batches.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "the {kind} run failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

fn main() {
    let batches = env("BENCH_APPEND_BATCHES", 200);
    if let Ok(kind) = std::env::var(ONLY) {
        println!("{}", measure(&kind, batches));
        return;
    }
    let rounds = env("BENCH_APPEND_ROUNDS", 5);
    println!("append: {rounds} rounds, each a fresh store per kind, {batches} batches of {BATCH} events (~500 B), durable flush per batch");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let raw = child("raw", batches);
        let ledger = child("ledger", batches);
        ratios.push(ledger / raw);
        println!(
            "  round {round}: raw sled {raw:>9.0} events/s   ledger {ledger:>9.0} events/s   ratio {:.2}",
            ledger / raw
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("  median ratio ledger/raw sled: {:.2}", ratios[ratios.len() / 2]);
}
