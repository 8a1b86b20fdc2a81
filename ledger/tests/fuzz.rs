//! The fuzz targets of `fuzz_targets/` run on stable Rust for a bounded time each: valid seeds
//! (real events, NDJSON files, entries, segments, signed checkpoints, a whole small store) and
//! mutations of them (bit flips, random bytes, cuts, splices, repeats, and bytes parsers trip
//! on). `FUZZ_SECONDS` (default 5) bounds each target; `FUZZ_SEED` replays a run. An input that
//! panics is written to `target/fuzz-failures/` and fails the test. The same bodies run
//! coverage-guided under cargo-fuzz (`ledger/fuzz/`, nightly; see ops/README.md), where
//! `FUZZ_SEEDS_OUT=DIR` writes these seeds as its starting corpus.

mod common;
mod fuzz_targets;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use common::Rng;
use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::{CheckpointPolicy, Log, MemStorage, Storage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;
use fuzz_targets::*;

/// Bytes parsers of these formats trip on.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\r",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b",",
    b":",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"9007199254740993",
    b"18446744073709551616",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\"id\":\"x\",\"id\":\"y\"",
    b"\xe2\x80\x94 ",
    b"\n\n",
    b"PRIVATE+KEY+",
    b"+",
    b"\xff\xff\xff\xff",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => {
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            3 if at < out.len() => {
                let end = at + 1 + rng.below((out.len() - at).min(64));
                out.drain(at..end.min(out.len()));
            }
            4 => out.truncate(at),
            5 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            6 if at < out.len() => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
    out
}

/// Runs `target` on the seeds, then on mutations, for the time budget.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: fn(&[u8])) {
    let secs = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5u64);
    let seed = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    }) | 1;
    if let Ok(dir) = std::env::var("FUZZ_SEEDS_OUT") {
        let dir = std::path::Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:04}")), s).unwrap();
        }
    }
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runs = 0u64;
    let mut pool = seeds.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    let mut next_seed = 0;
    loop {
        let input = if next_seed < seeds.len() {
            next_seed += 1;
            seeds[next_seed - 1].clone()
        } else if Instant::now() < deadline {
            let base = pool[rng.below(pool.len())].clone();
            mutate(&mut rng, &base, &seeds)
        } else {
            break;
        };
        runs += 1;
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| target(&input))) {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failure = Some((input, what));
            break;
        }
        if pool.len() < 4096 && runs.is_multiple_of(16) {
            pool.push(input);
        }
    }
    std::panic::set_hook(previous);
    println!("fuzz {name}: {runs} inputs in {secs} s budget, FUZZ_SEED={seed}");
    if let Some((input, what)) = failure {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{seed}.bin"));
        std::fs::write(&path, &input).unwrap();
        panic!("fuzz {name}: the input saved at {} panicked: {what}", path.display());
    }
}

fn events() -> Vec<String> {
    let scenario = include_str!("../../examples/scenarios/seed-support-assistant.ndjson");
    (0..100).map(sample_event).chain(scenario.lines().map(str::to_string)).collect()
}

/// Stored records by the number in their key.
type Records = Vec<(u64, Vec<u8>)>;

/// A small store signed by [`store_signer`]: its checkpoints and segments as stored.
fn small_store() -> (Records, Records) {
    let policy = CheckpointPolicy::new(Some(40), Some(3600));
    let mut log = Log::open(MemStorage::default(), vec![store_signer()], policy).unwrap();
    let v = Validator::default();
    for chunk in events().chunks(25) {
        let records = chunk
            .iter()
            .enumerate()
            .map(|(i, line)| Record {
                origin: Origin::Stdin { line: i as u64 + 1 },
                verdict: Verdict::Valid(Box::new(v.validate(line.as_bytes()).unwrap())),
            })
            .collect();
        log.append(&Batch { records, positions: Vec::new() }).unwrap();
        log.maybe_checkpoint().unwrap();
    }
    log.checkpoint_now().unwrap();
    let read = |prefix: u8| {
        log.store()
            .range(&[prefix], &[prefix + 1])
            .map(|r| r.unwrap())
            .map(|(k, v)| (u64::from_be_bytes(k[1..9].try_into().unwrap()), v.to_vec()))
            .collect::<Vec<_>>()
    };
    (read(b'c'), read(b'e'))
}

#[test]
fn fuzz_the_validator() {
    fuzz("validator", events().into_iter().map(String::into_bytes).collect(), validator_target);
}

#[test]
fn fuzz_the_ndjson_reader() {
    let lines = events();
    let seeds = (0..8u8)
        .map(|pick| {
            let sep = if pick % 2 == 0 { "\n" } else { "\r\n\r\n" };
            let mut s = vec![pick];
            s.extend_from_slice(lines[pick as usize * 10..pick as usize * 10 + 10].join(sep).as_bytes());
            s
        })
        .collect();
    fuzz("ndjson", seeds, ndjson_target);
}

#[test]
fn fuzz_the_entry_and_segment_parsers() {
    let (_, segments) = small_store();
    let mut seeds: Vec<Vec<u8>> = segments.iter().map(|(_, s)| s.clone()).collect();
    seeds.extend(segments.iter().flat_map(|(_, s)| {
        let plain = evidence_verifier::layout::unpack_segment(s).unwrap();
        evidence_verifier::layout::segment_records(&plain).map(|r| r.unwrap().to_vec()).collect::<Vec<_>>()
    }));
    fuzz("entry", seeds, entry_target);
}

#[test]
fn fuzz_the_note_checkpoint_and_key_parsers() {
    let (checkpoints, _) = small_store();
    let mut seeds: Vec<Vec<u8>> = checkpoints.into_iter().map(|(_, n)| n).collect();
    seeds.push(store_signer().verifier().to_string().into_bytes());
    seeds.push(store_signer().to_key_string().into_bytes());
    fuzz("note", seeds, note_target);
}

#[test]
fn fuzz_the_store_adapter() {
    let (checkpoints, segments) = small_store();
    let whole = encode_store(&checkpoints, &segments);
    let half = encode_store(&checkpoints[..1], &segments[..segments.len() / 2]);
    // The seed store audits clean: the fuzzer starts from a log the auditor walks to the end.
    let keys = [store_signer().verifier()];
    let report = evidence_verifier::store::audit_records(
        &keys,
        None,
        checkpoints.iter().map(|(n, v)| Ok((evidence_verifier::layout::checkpoint_key(*n).to_vec(), v.clone()))),
        segments.iter().map(|(n, v)| Ok((evidence_verifier::layout::segment_key(*n).to_vec(), v.clone()))),
    );
    assert!(matches!(report, Ok(Ok(_))), "{report:?}");
    fuzz("store", vec![whole, half], store_target);
}

#[test]
fn fuzz_the_entries_file_reader() {
    let (checkpoints, segments) = small_store();
    let whole = encode_entries_file(&checkpoints, &segments);
    let keys = [store_signer().verifier()];
    let report = evidence_verifier::store::audit_entries(&whole[..], &keys, None);
    assert!(matches!(report, Ok(Ok(_))), "the seed file audits clean: {report:?}");
    let cut = whole[..whole.len() * 2 / 3].to_vec();
    fuzz("entries_file", vec![whole, cut], entries_file_target);
}
