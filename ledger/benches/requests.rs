//! Audit question 3 on a month of gateway traffic: `query requests` (the counts by env,
//! provider, model, region and data class, and the first page of the requests that broke the
//! approved routes) over 10,000,000 requests spread evenly over 30 days
//! (`BENCH_REQUESTS` to change).
//!
//! Workload: 12 provider routes (3 providers x 2 models x 2 regions), approved at the start
//! for 2 of 3 data classes in both envs, so about a third of the requests break the routes;
//! each request picks its route, data class and env at random. The store is built through
//! `Ledger::append` with views and rules on (sled, batches of 10,000, a durable flush each).
//! Then 200 questions are timed one by one: the whole month, and random ranges of 1 hour to
//! 30 days with random ends (so both ends cost narrow buckets): first asked (the counters
//! read from disk), asked again, with the violations listed (a page of 100), and with an env
//! and data class filter.
//!
//! Baseline, in the same run: the same month's counts computed by reading every entry of the
//! log and counting its requests, as an auditor without the view would. Prints p50, p99 and
//! the maximum, and the baseline's time as a multiple of the view's p50.
//! Run it with `cargo bench -p evidence-ledger --bench requests`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta};
use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::query::{self, RequestQuery, ViolationPage};
use evidence_ledger::{CheckpointPolicy, Ledger, Log, SledStorage};
use evidence_schemas::Validator;
use evidence_verifier::entry::EntryRef;
use evidence_verifier::SignerKey;

const BATCH: u64 = 10_000;
const QUESTIONS: usize = 200;
const MONTH: i64 = 30 * 86_400;
const PROVIDERS: [&str; 3] = ["openai", "anthropic", "acme"];
const MODELS: [&str; 2] = ["large", "small"];
const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];
const CLASSES: [&str; 3] = ["public", "internal", "customer-pii"];
const ENVS: [&str; 2] = ["prod", "staging"];

fn start() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap()
}

/// A registry decision approving every route for the first two data classes in both envs,
/// dated before the month.
fn approvals() -> Vec<String> {
    let mut out = Vec::new();
    for p in PROVIDERS {
        for m in MODELS {
            for r in REGIONS {
                out.push(format!(
                    r#"{{"specversion":"1.0","id":"route-{p}-{m}-{r}","source":"registry","type":"registry.provider","time":"2026-02-01T00:00:00Z","actor":"sec@acme","data":{{"provider":"{p}","model":"{m}","region":"{r}","data_classes":["public","internal"],"envs":["prod","staging"],"decision":"approved"}}}}"#
                ));
            }
        }
    }
    out
}

/// Request `i` of `n`, dated `i / n` of the way through the month.
fn request(i: u64, n: u64, x: u64) -> String {
    let at = start() + TimeDelta::microseconds((i128::from(i) * i128::from(MONTH) * 1_000_000 / i128::from(n)) as i64);
    let pick = |k: u64, len: usize| (x >> k) as usize % len;
    format!(
        r#"{{"specversion":"1.0","id":"req-{i}","source":"gateway","type":"proxy.request","time":"{}","env":"{}","data":{{"request_id":"r-{i}","app":"app-{}","provider":"{}","model":"{}","region":"{}","data_class":"{}","tokens_in":100,"tokens_out":50,"latency_ms":300.0,"status":"ok","refused":false,"safety_flags":[],"tool_calls":[]}}}}"#,
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ENVS[pick(0, 2)],
        pick(4, 4),
        PROVIDERS[pick(8, 3)],
        MODELS[pick(12, 2)],
        REGIONS[pick(16, 2)],
        CLASSES[pick(20, 3)],
    )
}

fn rng(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn append(ledger: &mut Ledger<SledStorage>, v: &Validator, lines: &[String], first: u64) {
    let records = lines
        .iter()
        .enumerate()
        .map(|(n, l)| Record {
            origin: Origin::Kafka { topic: "gateway".into(), partition: 0, offset: (first + n as u64) as i64 },
            verdict: Verdict::Valid(Box::new(v.validate(l.as_bytes()).unwrap())),
        })
        .collect();
    ledger.append(&Batch { records, positions: vec![] }).unwrap();
}

fn percentiles(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "  {name:<34} p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
    at(0.50)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("BENCH_REQUESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let signer = SignerKey::from_seed("bench.example/requests", [6u8; 32]).unwrap();
    let policy = CheckpointPolicy { every_entries: 1_000_000, interval: Duration::from_secs(3600) };
    let log = Log::open(SledStorage::open(dir.path()).unwrap(), vec![signer], policy).unwrap();
    let mut ledger = Ledger::open(log).unwrap();
    let v = Validator::default();
    let built = Instant::now();
    append(&mut ledger, &v, &approvals(), 0);
    let mut rand = rng(0x9e37_79b9_7f4a_7c15);
    let mut next = 0;
    while next < n {
        let end = (next + BATCH).min(n);
        let lines: Vec<String> = (next..end).map(|i| request(i, n, rand())).collect();
        append(&mut ledger, &v, &lines, 100 + next);
        next = end;
    }
    println!(
        "requests: built a ledger of {} entries ({n} requests over 30 days) with views in {:.1} s",
        ledger.log().size(),
        built.elapsed().as_secs_f64()
    );
    let store = ledger.log().store();
    let month = RequestQuery {
        from: start(),
        to: start() + TimeDelta::seconds(MONTH),
        env: None,
        data_class: None,
        provider: None,
    };
    let whole = query::requests(store, &month, None).unwrap();
    assert_eq!(whole.requests, n, "every request is counted");
    println!(
        "  the month: {} requests in {} groups, {} broke the routes",
        whole.requests,
        whole.groups.len(),
        whole.breaches
    );

    let mut rand = rng(0x0123_4567_89ab_cdef);
    let mut questions = vec![month.clone()];
    while questions.len() < QUESTIONS {
        let from = (rand() % MONTH as u64) as i64;
        let len = 3_600 + (rand() % MONTH as u64) as i64;
        let q = RequestQuery {
            from: start() + TimeDelta::seconds(from),
            to: start() + TimeDelta::seconds((from + len).min(MONTH)),
            ..month.clone()
        };
        questions.push(q);
    }
    let page = ViolationPage { cursor: None, limit: 100 };
    let timed = |q: &RequestQuery, page: Option<&ViolationPage>| {
        let t = Instant::now();
        let a = query::requests(store, q, page).unwrap();
        assert!(page.is_none() || a.violations.is_some());
        t.elapsed()
    };
    println!("query requests over {QUESTIONS} ranges (the month, then random ranges of 1 h to 30 days):");
    percentiles("counts, first asked (cold cache)", questions.iter().map(|q| timed(q, None)).collect());
    let counts = percentiles("counts, asked again", questions.iter().map(|q| timed(q, None)).collect());
    percentiles("counts and a page of violations", questions.iter().map(|q| timed(q, Some(&page))).collect());
    let filtered = |q: &RequestQuery| RequestQuery {
        env: Some("prod".into()),
        data_class: Some("customer-pii".into()),
        ..q.clone()
    };
    percentiles(
        "env and data class, with violations",
        questions.iter().map(|q| timed(&filtered(q), Some(&page))).collect(),
    );

    // The baseline: the month counted from the log itself.
    let t = Instant::now();
    let mut groups: BTreeMap<[String; 5], u64> = BTreeMap::new();
    for item in ledger.log().entries(0) {
        let (_, record) = item.unwrap();
        let e: serde_json::Value = serde_json::from_slice(EntryRef::decode(&record).unwrap().event).unwrap();
        if e["type"] == "proxy.request" {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let d = &e["data"];
            *groups
                .entry([s(&e["env"]), s(&d["provider"]), s(&d["model"]), s(&d["region"]), s(&d["data_class"])])
                .or_default() += 1;
        }
    }
    let baseline = t.elapsed();
    assert_eq!(groups.values().sum::<u64>(), n);
    assert_eq!(groups.len(), whole.groups.len());
    println!(
        "  baseline: the month counted by reading the log, {:.2} s; the view's p50 is {:.0}x faster",
        baseline.as_secs_f64(),
        baseline.as_secs_f64() / counts.as_secs_f64()
    );
}
