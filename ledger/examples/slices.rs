//! What the writer's atomic slices cost: one `Ledger` appends N sample events (validated
//! beforehand, in order) in rounds of 1,000 through `append_slices`, cut into slices of SLICE
//! records, and prints the rate (see `service::pace`).
//!
//! `cargo run --release -p evidence-ledger --example slices -- [N=100000] [SLICE=100]`
//!
//! On the allocator `evidence` uses (mimalloc).
use evidence_ingest::sink::{Batch, Origin, Record, Verdict};
use evidence_ledger::ledger::{Access, LedgerDir};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let slice: usize = std::env::args().nth(2).and_then(|v| v.parse().ok()).unwrap_or(100);
    let tmp = tempfile::tempdir().unwrap();
    let dir = LedgerDir { data_dir: tmp.path().join("data"), signer_key: None };
    dir.init("bench.example/slices").unwrap();
    let mut ledger = dir.open(Access::Append, Default::default(), None).unwrap();
    let validator = evidence_schemas::Validator::default();
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            origin: Origin::Kafka { topic: "t".into(), partition: 0, offset: i as i64 },
            verdict: Verdict::Valid(Box::new(
                validator.validate(evidence_schemas::sample::sample_event(i).as_bytes()).unwrap(),
            )),
        })
        .collect();
    let t = std::time::Instant::now();
    for round in records.chunks(1000) {
        let slices: Vec<Batch> =
            round.chunks(slice).map(|s| Batch { records: s.to_vec(), positions: Vec::new() }).collect();
        ledger.append_slices(&slices).unwrap();
    }
    println!("slice {slice}: {:.0} events/s", n as f64 / t.elapsed().as_secs_f64());
}
