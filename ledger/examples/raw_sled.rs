//! The baseline of `ops/bench/ingest`: the lines of an NDJSON file inserted as they are into
//! a bare sled tree, configured as the ledger configures sled, under 8-byte big-endian keys,
//! one `apply_batch` and one `flush` per batch of `--batch-size` lines (default 1,000, as
//! `evidence ingest`), on the allocator `evidence` uses (mimalloc). No validation, no hashing, no index, no views: what sled alone costs
//! for the same bytes and the same durability.
//!
//! `cargo run --release -p evidence-ledger --example raw_sled -- FILE DIR [BATCH]`
//! prints one line: `lines seconds lines_per_second`.

use std::io::BufRead as _;

/// The allocator `evidence` runs with, so that the baseline is the same engine on the same
/// allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (file, dir) = (&args[1], &args[2]);
    let batch_size: usize = args.get(3).map_or(1000, |b| b.parse().expect("a batch size"));
    let started = Instant::now();
    let db = evidence_ledger::store::sled_config(std::path::Path::new(dir)).open().expect("sled opens");
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file).expect("the file opens"));
    let (mut next, mut batch, mut in_batch) = (0u64, sled::Batch::default(), 0);
    for line in reader.split(b'\n') {
        let line = line.expect("the file reads");
        if line.is_empty() {
            continue;
        }
        batch.insert(&next.to_be_bytes(), line);
        next += 1;
        in_batch += 1;
        if in_batch == batch_size {
            db.apply_batch(std::mem::take(&mut batch)).expect("the batch applies");
            db.flush().expect("the batch flushes");
            in_batch = 0;
        }
    }
    db.apply_batch(batch).expect("the batch applies");
    db.flush().expect("the batch flushes");
    drop(db);
    let secs = started.elapsed().as_secs_f64();
    println!("{next} {secs:.3} {:.0}", next as f64 / secs);
}
