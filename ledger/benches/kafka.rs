//! End-to-end Kafka ingest against a bare consumer, in the same run (see `ops/bench/kafka`).
//!
//! Workload: `BENCH_EVENTS` (default 1,000,000) sample contract events of about 500 bytes,
//! produced to 4 partitions of a tansu broker on a free loopback port before anything is
//! timed: keyed by the app each concerns, as `ops/README.md` asks producers to (librdkafka's
//! default partitioner maps a key to a partition), or with `BENCH_KAFKA_KEYS=none` round-robin
//! (event `i` to partition `i % 4`), which splits every app's story across the partitions, so
//! serve reads evidence out of its order and re-judges.
//! - baseline: an rdkafka consumer (same library, same broker) reading every message.
//! - ledger: `evidence serve` (release build) from start until its log holds every event,
//!   validated, appended, flushed; its peak resident memory (VmHWM) is read from /proc.
//! - ingest: `evidence ingest --file` of the same events, as NDJSON, into a fresh store: what
//!   the user's file command does with them (issue 16 asks serve for 0.9x of it).
//!
//! `BENCH_SERVE_BINS=A:B` alternates serve's rounds between two builds (an A/B of a change,
//! measured against the same broker and `ingest` in one run) and prints each one's medians.
//!
//! Serve and ingest run in `BENCH_ROUNDS` (default 5) alternating rounds, so that both meet the
//! same state of the machine; the figures are the medians. Five, not three: a round's CPU an
//! event varies by a third on a 2-core machine (41-57 µs for serve at 1,000,000 in one
//! session), and on the same code medians of three came out 0.85 and 0.88, from rounds
//! between 0.74 and 1.04.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evidence_schemas::sample::{sample_app, sample_event};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// CPU seconds (user and system, every thread) process `pid` has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

fn tansu() -> PathBuf {
    let home = PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo/bin/tansu");
    let found = Command::new("sh").args(["-c", "command -v tansu"]).output().ok().filter(|o| o.status.success());
    found.map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())).unwrap_or(home)
}

fn main() {
    let events: u64 = std::env::var("BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Command::new(tansu())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu runs (ops/broker install)");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok = Command::new(tansu())
        .args(["topic", "create", "evidence", "--broker", &url, "--partitions", "4"])
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "cannot create the topic");

    let keyed = std::env::var("BENCH_KAFKA_KEYS").map_or(true, |k| k != "none");
    let t = Instant::now();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap();
    for i in 0..events {
        let payload = sample_event(i);
        let key = sample_app(i);
        let record = BaseRecord::<str, _>::to("evidence").payload(&payload);
        let mut record = if keyed { record.key(key.as_str()) } else { record.partition((i % 4) as i32) };
        while let Err((_, back)) = producer.send(record) {
            record = back;
            producer.poll(Duration::from_millis(20));
        }
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    let how = if keyed { "keyed by app" } else { "round-robin" };
    println!("preloaded {events} events over 4 partitions ({how}) in {:.1} s", t.elapsed().as_secs_f64());

    // Baseline: a bare consumer reading everything.
    // BENCH_KAFKA_SETTINGS (`key=value,...`): librdkafka settings for both consumers. By
    // default fetch.wait.max.ms=10. Kafka answers a fetch once it has fetch.min.bytes (one
    // byte); tansu holds every fetch for the whole wait, records waiting or not, and answers
    // with one partition's records (about 10,800 of these events). At 10 ms it serves a backlog
    // as Kafka would: a bare consumer reads about 400,000 events/s here. At 100 ms it read
    // about 91,000, in chunks 110 ms apart, hardly more than serve takes, and serve waited on
    // the broker; at librdkafka's 500 ms, about 37,000.
    let settings: Vec<(String, String)> = std::env::var("BENCH_KAFKA_SETTINGS")
        .unwrap_or_else(|_| "fetch.wait.max.ms=10".into())
        .split(',')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let mut raw_config = ClientConfig::new();
    raw_config.set("bootstrap.servers", &addr).set("group.id", "bench-raw").set("enable.auto.commit", "false");
    for (k, v) in &settings {
        raw_config.set(k, v);
    }
    let consumer: BaseConsumer = raw_config.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition_offset("evidence", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let broker_before = cpu_seconds(broker.id());
    let t = Instant::now();
    let mut read = 0u64;
    while read < events {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(500)) {
            read += 1;
        }
        assert!(t.elapsed() < Duration::from_secs(600), "raw consumption stalled at {read}");
    }
    let raw = events as f64 / t.elapsed().as_secs_f64();
    let broker_raw = cpu_seconds(broker.id()) - broker_before;
    drop(consumer);

    // The ledger: evidence serve until every event is durable, and the same events through
    // `evidence ingest --file`, in alternating rounds, each into a fresh store (serve with a
    // fresh consumer group, so that it reads every partition from the start).
    let tmp = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/evidence");
    let built = Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "-p", "evidence-ledger", "--bin", "evidence"])
        .status()
        .unwrap();
    assert!(built.success());
    let file = tmp.path().join("events.ndjson");
    let mut text = String::new();
    for i in 0..events {
        text.push_str(&sample_event(i));
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    println!(
        "\nkafka ingest: {events} events (~500 B) over 4 partitions ({how}), batches of 1000, durable flush per batch"
    );
    println!("  bare rdkafka consumer: {raw:>9.0} events/s (broker CPU {:.1} us an event)", us(broker_raw, events));
    let serve_bins: Vec<PathBuf> =
        std::env::var_os("BENCH_SERVE_BINS").map_or_else(|| vec![bin.clone()], |v| std::env::split_paths(&v).collect());
    let mut runs = Vec::new();
    for r in 1..=rounds {
        let serve_bin = &serve_bins[(r - 1) % serve_bins.len()];
        if serve_bins.len() > 1 {
            println!("  round {r}: serve is {}", serve_bin.display());
        }
        let served =
            serve_round(serve_bin, &tmp.path().join(format!("served-{r}")), &addr, r, &settings, events, &broker);
        let ingested = ingest_round(&bin, &tmp.path().join(format!("ingested-{r}")), &file, events);
        println!(
            "  round {r}: serve {:>6.0} events/s ({:.1} us CPU an event, broker {:.1} us, peak RSS {:.0} MB)   \
             ingest --file {:>6.0} events/s ({:.1} us CPU an event)   ratio serve/ingest {:.2}",
            served.rate,
            us(served.cpu, events),
            us(served.broker_cpu, events),
            served.peak_kb as f64 / 1024.0,
            ingested.0,
            us(ingested.1, events),
            served.rate / ingested.0
        );
        runs.push((served, ingested));
    }
    let _ = broker.kill();
    let _ = broker.wait();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[(v.len() - 1) / 2]
    };
    let serve = median(runs.iter().map(|(s, _)| s.rate).collect());
    let ingest = median(runs.iter().map(|(_, i)| i.0).collect());
    println!("median of {rounds} rounds:");
    println!("  evidence serve:        {serve:>9.0} events/s (validated, appended, flushed)");
    println!("  ratio serve/consumer:  {:.2}", serve / raw);
    println!("  evidence ingest --file:{ingest:>9.0} events/s (the same events from a file)");
    println!(
        "  ratio serve/ingest:    {:.2} (median of the rounds' ratios; target >= 0.9)",
        median(runs.iter().map(|(s, i)| s.rate / i.0).collect())
    );
    if serve_bins.len() > 1 {
        for (i, serve_bin) in serve_bins.iter().enumerate() {
            let own: Vec<&(Served, (f64, f64))> = runs.iter().skip(i).step_by(serve_bins.len()).collect();
            println!(
                "  {}: serve {:.0} events/s, ratio serve/ingest {:.2} (medians of its {} rounds)",
                serve_bin.display(),
                median(own.iter().map(|(s, _)| s.rate).collect()),
                median(own.iter().map(|(s, i)| s.rate / i.0).collect()),
                own.len()
            );
        }
    }
    println!(
        "  serve peak RSS:        {:.0} MB (the largest)",
        runs.iter().map(|(s, _)| s.peak_kb).max().unwrap_or(0) as f64 / 1024.0
    );
    println!(
        "  CPU an event (user + system, every thread; the broker shares the cores): serve {:.1} us, ingest {:.1} us",
        median(runs.iter().map(|(s, _)| us(s.cpu, events)).collect()),
        median(runs.iter().map(|(_, i)| us(i.1, events)).collect())
    );
}

/// `evidence init` of a fresh store at `dir` for `origin`.
fn init(bin: &Path, dir: &Path, origin: &str) {
    let init = Command::new(bin).arg("--data-dir").arg(dir).args(["init", "--origin", origin]).status();
    assert!(init.unwrap().success(), "evidence init failed");
}

/// Microseconds an event of `cpu` seconds over `events`.
fn us(cpu: f64, events: u64) -> f64 {
    cpu * 1e6 / events as f64
}

/// One run of `evidence serve`: its rate, its CPU seconds, the broker's CPU seconds meanwhile
/// and serve's peak resident memory.
struct Served {
    rate: f64,
    cpu: f64,
    broker_cpu: f64,
    peak_kb: u64,
}

/// `evidence serve` into a fresh store at `data`, with consumer group `bench-ledger-<round>`,
/// from start until its log holds every event.
fn serve_round(
    bin: &Path,
    data: &Path,
    addr: &str,
    round: usize,
    settings: &[(String, String)],
    events: u64,
    broker: &Child,
) -> Served {
    init(bin, data, "bench.example/ledger");
    let broker_before = cpu_seconds(broker.id());
    let t = Instant::now();
    let mut serve = Command::new(bin)
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--kafka-brokers", addr, "--topics", "evidence", "--group"])
        .arg(format!("bench-ledger-{round}"))
        .args(settings.iter().flat_map(|(k, v)| ["--kafka-setting".to_string(), format!("{k}={v}")]))
        .env("RUST_LOG", "evidence_ledger=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = serve.id();
    let reader = std::io::BufReader::new(serve.stderr.take().unwrap());
    let mut lines = reader.lines();
    // Only the lines are read here: serve writes its logs from the writer's thread, and a
    // slow reader (this loop read /proc for every line) fills the pipe and holds serve back.
    let done = format!("entries={events}");
    // BENCH_SERVE_LOG=DIR keeps each round's log (debug, timestamped) as DIR/serve-<round>.log.
    let mut kept = std::env::var_os("BENCH_SERVE_LOG").map(|dir| {
        std::io::BufWriter::new(std::fs::File::create(Path::new(&dir).join(format!("serve-{round}.log"))).unwrap())
    });
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(kept) = kept.as_mut() {
            use std::io::Write as _;
            writeln!(kept, "{line}").unwrap();
        }
        if line.contains("Batch committed.") && line.contains(&done) {
            break;
        }
    }
    // VmHWM is the peak so far: read once, before serve stops.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
    let peak_kb: u64 = hwm.and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    let rate = events as f64 / t.elapsed().as_secs_f64();
    let (cpu, broker_cpu) = (cpu_seconds(pid), cpu_seconds(broker.id()) - broker_before);
    // serve still logs (its stop, the last alerts): its stderr is read to the end, or it would
    // block on a full pipe and never stop.
    let drain = std::thread::spawn(move || lines.for_each(drop));
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    serve.wait().unwrap();
    drain.join().unwrap();
    Served { rate, cpu, broker_cpu, peak_kb }
}

/// `evidence ingest --file` of `file` into a fresh store at `store`: its rate and CPU seconds.
fn ingest_round(bin: &Path, store: &Path, file: &Path, events: u64) -> (f64, f64) {
    init(bin, store, "bench.example/ingest");
    let t = Instant::now();
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(store)
        .args(["ingest", "--file"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its CPU time is read while it runs (every 10 ms), so the last reading misses at most that.
    let mut cpu = 0.0;
    let ingested = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        cpu = cpu_seconds(child.id()).max(cpu);
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(ingested.code().is_some_and(|c| c == 0 || c == 3), "evidence ingest failed: {ingested}");
    (events as f64 / t.elapsed().as_secs_f64(), cpu)
}
