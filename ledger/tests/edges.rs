//! Hardening item 1, as a property: whatever the validator accepts, the views can apply. Events
//! of every type are pushed to the edges one field at a time (the longest strings the contract
//! allows, drawn from every Unicode plane with controls, combining marks and bidi overrides;
//! the largest and smallest numbers; the deepest nesting), and every accepted one must project
//! both as it is appended and again, from its stored canonical bytes, on a rebuild, raising no
//! `ledger.unprojectable` alert.

use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::{query, CheckpointPolicy, Ledger, Log, MemStorage, Rule};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;
use evidence_verifier::SignerKey;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Characters from every Unicode plane in use, and the awkward ones of the BMP.
const CHARS: &[char] = &[
    'a',
    '\u{0}',
    '\u{1b}',
    '\n',
    '"',
    '\\',
    '\u{7f}',
    '\u{9b}',
    'é',
    '\u{301}',
    '\u{202e}',
    '\u{200d}',
    '中',
    '\u{fffd}',
    '\u{feff}',
    '\u{1d11e}',
    '\u{1f600}',
    '\u{20000}',
    '\u{30000}',
    '\u{e0041}',
    '\u{f0000}',
    '\u{10fffd}',
];

/// The values a leaf is pushed to.
fn edge(kind: u8, len_pick: u8, seed: u32) -> Value {
    let string = |n: usize| -> Value {
        (0..n).map(|i| CHARS[(seed as usize).wrapping_add(i * 7) % CHARS.len()]).collect::<String>().into()
    };
    let nested = |depth: usize| (0..depth).fold(json!("leaf"), |inner, _| json!({ "a": inner }));
    let lengths = [1usize, 32, 128, 256, 4096];
    match kind % 4 {
        0 | 1 => string(lengths[len_pick as usize % lengths.len()]),
        2 => [
            json!(0),
            json!(9_007_199_254_740_991u64),
            json!(-9_007_199_254_740_991i64),
            json!(86_400_000),
            json!(1.7976931348623157e308),
            json!(5e-324),
            json!(-0.0),
            json!(0.1),
            json!(u32::MAX),
        ][len_pick as usize % 9]
            .clone(),
        _ => nested([1usize, 8, 29, 30, 31][len_pick as usize % 5]),
    }
}

/// Where edge `kind` goes in `event`: deep nesting into a deploy's free-form `config` (the one
/// place the contract takes any JSON object), everything else into the leaf at `path`.
fn target<'a>(event: &Value, kind: u8, path: &'a str) -> &'a str {
    if kind % 4 == 3 && event["type"] == "pipeline.deploy" {
        "/data/config"
    } else {
        path
    }
}

/// The paths of every leaf of `v` (object members and array items).
fn leaves(v: &Value, at: &mut Vec<String>, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            at.push(k.replace('~', "~0").replace('/', "~1"));
            leaves(x, at, out);
            at.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            at.push(i.to_string());
            leaves(x, at, out);
            at.pop();
        }),
        _ => out.push(format!("/{}", at.join("/"))),
    }
}

fn ledger() -> Ledger<MemStorage> {
    let signer = SignerKey::from_seed("test.example/edges", [9u8; 32]).unwrap();
    Ledger::open(Log::open(MemStorage::default(), vec![signer], CheckpointPolicy::default()).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_event_the_validator_accepts_projects(
        edits in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>(), any::<u8>(), any::<u32>()), 1..40),
    ) {
        let validator = Validator::default();
        let mut ledger = ledger();
        let mut accepted = 0u64;
        for (n, (base, leaf, kind, len, seed)) in edits.into_iter().enumerate() {
            let mut event: Value = serde_json::from_str(&sample_event(u64::from(base))).unwrap();
            let mut paths = Vec::new();
            leaves(&event, &mut Vec::new(), &mut paths);
            let path = target(&event, kind, &paths[leaf as usize % paths.len()]);
            if path == "/data/config" {
                event["data"]["config"] = json!({});
            }
            *event.pointer_mut(path).unwrap() = edge(kind, len, seed);
            event["id"] = format!("edge-{n}").into();
            let Ok(valid) = validator.validate(event.to_string().as_bytes()) else { continue };
            accepted += 1;
            let record = Record { origin: Origin::Stdin { line: n as u64 + 1 }, verdict: Verdict::Valid(Box::new(valid)) };
            ledger.append(&Batch { records: vec![record], positions: Vec::new() }).unwrap();
        }
        // From the stored canonical bytes, as a restart or a rebuild reads them.
        ledger.rebuild().unwrap();
        let alerts = query::alerts(ledger.log().store(), None, Some(Rule::EntryUnprojectable), None).unwrap();
        prop_assert!(alerts.is_empty(), "accepted but not projectable: {alerts:#?}");
        prop_assert_eq!(ledger.views().watermark(), accepted);
        prop_assert_eq!(ledger.log().size(), accepted);
    }
}

/// The property above must see accepted edge events, not only refusals: over a fixed sweep,
/// most kinds of edge are accepted somewhere.
#[test]
fn the_edges_are_accepted_often_enough_to_mean_something() {
    let validator = Validator::default();
    let (mut tried, mut accepted) = (0, 0);
    let mut kinds_accepted = [0u32; 4];
    for base in 0..100u64 {
        let event: Value = serde_json::from_str(&sample_event(base)).unwrap();
        let mut paths = Vec::new();
        leaves(&event, &mut Vec::new(), &mut paths);
        for path in &paths {
            for kind in 0..4u8 {
                for len in 0..9u8 {
                    let mut e = event.clone();
                    let at = target(&e, kind, path);
                    if at == "/data/config" {
                        e["data"]["config"] = json!({});
                    }
                    *e.pointer_mut(at).unwrap() = edge(kind, len, base as u32);
                    tried += 1;
                    if validator.validate(e.to_string().as_bytes()).is_ok() {
                        accepted += 1;
                        kinds_accepted[kind as usize] += 1;
                    }
                }
            }
        }
    }
    println!("{accepted} of {tried} edge events accepted; by kind {kinds_accepted:?}");
    assert!(kinds_accepted.iter().all(|k| *k > 50), "{kinds_accepted:?}");
}
