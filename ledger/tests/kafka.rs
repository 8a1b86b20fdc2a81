//! Kafka ingest against a real Kafka-protocol broker (tansu), started by the harness on a free
//! loopback port and stopped after each test. A missing broker binary fails the test: run
//! `ops/broker install` (the README's test command does).

mod common;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::{evidence, status, stderr, stdout, verify_store};
use evidence_schemas::sample::sample_event;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Produces `messages` to `topic`, message `n` to partition `n % partitions`, batched as real
/// producers do (records linger 5 ms and go many to a produce request), and waits until the
/// broker has them all.
fn produce(addr: &str, topic: &str, partitions: i32, messages: impl Iterator<Item = Vec<u8>>) -> usize {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap();
    let mut n = 0usize;
    for payload in messages {
        let key = n.to_string();
        let mut record = BaseRecord::to(topic).payload(&payload).key(&key).partition((n as i32) % partitions);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
        n += 1;
    }
    producer.flush(Duration::from_secs(120)).expect("every message delivered");
    n
}

/// `evidence serve` as a child process, with a thread that follows its committed batches.
struct Serve {
    child: Child,
    data: PathBuf,
    broker: String,
    entries: Arc<AtomicU64>,
    quarantined: Arc<AtomicU64>,
    duplicates: Arc<AtomicU64>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn field(line: &str, name: &str) -> Option<u64> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    line[start..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

impl Serve {
    fn start(data: &std::path::Path, broker: &str, topic: &str, extra: &[&str]) -> Serve {
        let mut child = evidence()
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0", "--kafka-brokers", broker, "--topics", topic])
            .args(["--group", "ledger-test", "--batch-wait-ms", "50", "--checkpoint-every", "20000"])
            .args(extra)
            .env("RUST_LOG", "evidence_ledger=debug,evidence_ingest=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let entries = Arc::new(AtomicU64::new(0));
        let quarantined = Arc::new(AtomicU64::new(0));
        let duplicates = Arc::new(AtomicU64::new(0));
        let (e, q, d) = (entries.clone(), quarantined.clone(), duplicates.clone());
        let err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("Batch committed.") {
                    if let Some(n) = field(&line, "entries") {
                        e.fetch_max(n, Ordering::SeqCst);
                    }
                    if let Some(n) = field(&line, "quarantined") {
                        q.fetch_add(n, Ordering::SeqCst);
                    }
                    if let Some(n) = field(&line, "duplicates") {
                        d.fetch_add(n, Ordering::SeqCst);
                    }
                } else if line.contains("WARN")
                    || line.contains("ERROR")
                    || line.contains("Partitions")
                    || line.contains("Progress.")
                {
                    eprintln!("serve: {line}");
                }
            }
        });
        Serve {
            child,
            data: data.to_path_buf(),
            broker: broker.to_string(),
            entries,
            quarantined,
            duplicates,
            reader: Some(reader),
        }
    }

    /// Waits until the log holds `n` entries (and `q` quarantined records, if given).
    fn wait_for(&mut self, n: u64, q: Option<u64>, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let (e, qq) = (self.entries.load(Ordering::SeqCst), self.quarantined.load(Ordering::SeqCst));
            if e >= n && q.is_none_or(|q| qq >= q) {
                return;
            }
            assert!(self.child.try_wait().unwrap().is_none(), "serve exited early at {e} entries");
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let s = status(&self.data);
                let marks = watermarks(&self.broker, "evidence");
                panic!(
                    "serve reached only {e} entries and {qq} quarantined in {limit:?}; positions {} vs high watermarks {marks:?}",
                    s["positions"]
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = common::wait_exit(&mut self.child, Duration::from_secs(60), "serve did not stop on SIGTERM");
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        status
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
    }
}

fn watermarks(broker: &str, topic: &str) -> Vec<(i32, i64, i64)> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", broker).set("group.id", "watermarks").create().unwrap();
    (0..4)
        .filter_map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(5)).ok().map(|(l, h)| (p, l, h)))
        .collect()
}

fn verify(data: &std::path::Path) {
    let s = status(data);
    let out = verify_store(data, s["verifier_keys"][0].as_str().unwrap(), None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A SIGKILLed consumer stays in its group until its session times out; a short session lets
/// the broker hand its partitions on quickly.
const FAST_FAILOVER: &[&str] =
    &["--kafka-setting", "session.timeout.ms=6000", "--kafka-setting", "heartbeat.interval.ms=1000"];

fn events(range: std::ops::Range<u64>) -> impl Iterator<Item = Vec<u8>> {
    range.map(|i| sample_event(i).into_bytes())
}

#[test]
fn every_event_from_four_partitions_is_stored_exactly_once() {
    let broker = Broker::start(&[("evidence", 4)]);
    let produced = produce(&broker.addr, "evidence", 4, events(0..100_000));
    let data = common::Store::new("kafka.example/ledger");
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &[]);
    serve.wait_for(100_000, None, Duration::from_secs(300));
    assert!(serve.stop().success());
    let s = status(data.path());
    assert_eq!((produced, s["entries"].as_u64()), (100_000, Some(100_000)), "{s}");
    assert_eq!(s["duplicates"].as_u64(), Some(0), "{s}");
    assert_eq!(s["checkpoint_size"].as_u64(), Some(100_000), "{s}");
    verify(data.path());
}

#[test]
fn events_produced_twice_are_stored_once() {
    let broker = Broker::start(&[("evidence", 4)]);
    produce(&broker.addr, "evidence", 4, events(0..5_000).chain(events(0..5_000)));
    let data = common::Store::new("kafka.example/ledger");
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &[]);
    serve.wait_for(5_000, None, Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(120);
    while serve.duplicates.load(Ordering::SeqCst) < 5_000 {
        assert!(Instant::now() < deadline, "the second copies were not all seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(serve.stop().success());
    let s = status(data.path());
    assert_eq!((s["entries"].as_u64(), s["duplicates"].as_u64()), (Some(5_000), Some(5_000)), "{s}");
    verify(data.path());
}

#[test]
fn bad_messages_are_quarantined_and_dead_lettered_without_blocking() {
    let broker = Broker::start(&[("evidence", 4), ("evidence-dlq", 1)]);
    let total = 20_000u64;
    let mut bad = 0u64;
    let messages: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            if i % 100 != 7 {
                return sample_event(i).into_bytes();
            }
            bad += 1;
            match (i / 100) % 4 {
                0 => vec![0xff, 0xfe, b'{'],
                1 => b"{\"specversion\": \"1.0\", \"id\":".to_vec(),
                2 => sample_event(i).replace("\"data\":{", "\"data\":{\"colour\":\"blue\",").into_bytes(),
                _ => format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024)).into_bytes(),
            }
        })
        .collect();
    produce(&broker.addr, "evidence", 4, messages.into_iter());
    let data = common::Store::new("kafka.example/ledger");
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &["--dead-letter-topic", "evidence-dlq"]);
    serve.wait_for(total - bad, Some(bad), Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(2)); // let the outbox forward the last ones
    assert!(serve.stop().success());
    let s = status(data.path());
    assert_eq!((s["entries"].as_u64(), s["quarantined"].as_u64()), (Some(total - bad), Some(bad)), "{s}");
    verify(data.path());

    // Every bad message is on the dead-letter topic, with its reason in a header.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "dlq-check")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("evidence-dlq", 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (reasons.len() as u64) < bad && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let headers = m.headers().expect("dead letters carry headers");
            let reason = headers.iter().find(|h| h.key == "evidence-reason").and_then(|h| h.value).unwrap();
            reasons.push(String::from_utf8_lossy(reason).into_owned());
        }
    }
    assert_eq!(reasons.len() as u64, bad, "dead letters received");
    assert!(reasons.iter().any(|r| r.contains("not UTF-8")));
    assert!(reasons.iter().any(|r| r.contains("not JSON")));
    assert!(reasons.iter().any(|r| r.contains("/data/colour: unknown field")));
    assert!(reasons.iter().any(|r| r.contains("over the limit")));
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let broker = Broker::start(&[("evidence", 4)]);
    // The stream is kept 150,000 events ahead of the ledger before each start, so that no
    // kill finds it done (serve reads 30,000 or more a second on an idle machine).
    let mut sent = 0u64;
    let mut top_up = |at: u64| {
        while sent < at + 150_000 {
            produce(&broker.addr, "evidence", 4, events(sent..sent + 50_000));
            sent += 50_000;
        }
        sent
    };
    let mut total = top_up(0);
    let data = common::Store::new("kafka.example/ledger");
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("KAFKA_CRASH_SEED={seed}");
    let mut kills = 0;
    while kills < 5 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let serve = Serve::start(data.path(), &broker.addr, "evidence", FAST_FAILOVER);
        // Kill once it has appended something new, after a random extra moment.
        let start = Instant::now();
        while serve.entries.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(seed % 1500));
        let at = serve.entries.load(Ordering::SeqCst);
        serve.kill();
        kills += 1;
        println!("kill {kills}: around {at} entries of {total}");
        assert!(at < total, "the stream ended before kill {kills}");
        total = top_up(at);
        // The next serve starts once the group has let the dead member go (FAST_FAILOVER's
        // session.timeout.ms, 6 s), as an orchestrator's restart backoff would have it. tansu
        // 0.6.0's coordinator can otherwise form a group with no partitions assigned: when the
        // dead leader's session ends between a new member's JoinGroup and its SyncGroup, it
        // takes that follower's empty assignment list as the leader's and never rebalances
        // again (`Inner<Forming>::sync` in its group administrator). One CI run stalled so for
        // 600 s. The ledger's resuming is the same either way: from its own stored positions.
        std::thread::sleep(Duration::from_secs(7));
    }
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", FAST_FAILOVER);
    serve.wait_for(total, None, Duration::from_secs(600));
    assert!(serve.stop().success());
    let s = status(data.path());
    assert_eq!(s["entries"].as_u64(), Some(total), "{s}");
    verify(data.path());
}

#[test]
fn a_frozen_broker_is_waited_for() {
    let broker = Broker::start(&[("evidence", 4)]);
    let total = 60_000u64;
    produce(&broker.addr, "evidence", 4, events(0..total));
    let data = common::Store::new("kafka.example/ledger");
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &["--batch-size", "200"]);
    serve.wait_for(1_000, None, Duration::from_secs(120));
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_secs(10));
    broker.signal("-CONT");
    serve.wait_for(total, None, Duration::from_secs(300));
    assert!(serve.stop().success());
    let s = status(data.path());
    assert_eq!((s["entries"].as_u64(), s["duplicates"].as_u64()), (Some(total), Some(0)), "{s}");
    verify(data.path());
}

/// kafka-python, from the test virtualenv, as an independent producer.
fn kafka_python() -> PathBuf {
    common::test_python()
}

#[test]
fn events_from_kafka_python_are_stored_exactly_once() {
    let broker = Broker::start(&[("evidence", 4)]);
    let total = 100_000u64;
    let script = r#"
import sys, json
from kafka import KafkaProducer
broker, path = sys.argv[1], sys.argv[2]
p = KafkaProducer(bootstrap_servers=broker, linger_ms=20, acks=1, api_version=(2, 0, 0))
n = 0
with open(path, 'rb') as f:
    for line in f:
        p.send('evidence', value=line.rstrip(b'\n'), partition=n % 4)
        n += 1
p.flush()
print(n)
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    let lines: Vec<String> = (0..total).map(sample_event).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = Command::new(kafka_python()).args(["-c", script, &broker.addr]).arg(&file).output().unwrap();
    assert!(out.status.success(), "kafka-python failed: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), total.to_string());
    let data = common::Store::new("kafka.example/ledger");
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &[]);
    serve.wait_for(total, None, Duration::from_secs(300));
    assert!(serve.stop().success());
    let s = status(data.path());
    assert_eq!((s["entries"].as_u64(), s["duplicates"].as_u64()), (Some(total), Some(0)), "{s}");
    verify(data.path());
}

/// The harness's own assumption, checked: the test broker keeps every message it acknowledged
/// and a fetch from any offset starts at that offset's message, also inside a multi-record
/// produce batch. (tansu 0.6.0's memory engine breaks the second: a fetch from offset X can
/// start hundreds of messages later, which makes any resuming consumer lose data. Its libsql
/// engine, which the harness uses, serves every offset; this test fails if that changes.)
#[test]
fn harness_broker_serves_every_offset_it_acknowledged() {
    let broker = Broker::start(&[("evidence", 4)]);
    let total = 200_000u64;
    produce(&broker.addr, "evidence", 4, events(0..total));
    let marks = watermarks(&broker.addr, "evidence");
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &broker.addr).set("group.id", "count").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition_offset("evidence", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut ids = std::collections::HashSet::new();
    let mut offsets: std::collections::HashMap<(i32, i64), u32> = Default::default();
    let mut by_offset: std::collections::HashMap<(i32, i64), String> = Default::default();
    let mut read = 0u64;
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            read += 1;
            last = Instant::now();
            *offsets.entry((m.partition(), m.offset())).or_default() += 1;
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            ids.insert(v["id"].as_str().unwrap().to_string());
            by_offset.insert((m.partition(), m.offset()), v["id"].as_str().unwrap().to_string());
        }
    }
    let repeated = offsets.values().filter(|n| **n > 1).count();
    println!("produced {total}, watermarks {marks:?}, read {read} messages, {} distinct ids, {} distinct (partition, offset), {repeated} offsets carried by more than one message", ids.len(), offsets.len());
    let mut wrong = 0;
    for x in [1000i64, 12345, 30000, 45678, 49900] {
        let c: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &broker.addr).set("group.id", "seek").create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("evidence", 0, Offset::Offset(x)).unwrap();
        c.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                let want = by_offset.get(&(0, x)).cloned().unwrap_or_default();
                println!(
                    "seek to {x}: first message at offset {} is {} (the scan had {want} at {x})",
                    m.offset(),
                    v["id"]
                );
                if m.offset() != x || v["id"].as_str().unwrap() != want {
                    wrong += 1;
                }
                break;
            }
        }
    }
    assert_eq!(ids.len() as u64, total);
    assert_eq!(wrong, 0, "a fetch from an offset does not start at that offset's message");
}

/// A broker that loses records is caught: tansu's memory engine serves a fetch that starts
/// inside a multi-record batch from a later offset, so each restart of `serve` in the middle
/// of a producer's batch loses records. The ledger notices each such gap on resuming, and
/// `status` accounts for every record: stored or counted as skipped.
#[test]
fn offsets_a_broker_skips_on_resume_are_counted() {
    let broker = Broker::start_on("memory://tansu/", &[("evidence", 4)]);
    let total = 40_000u64;
    produce(&broker.addr, "evidence", 4, events(0..total));
    let data = common::Store::new("kafka.example/ledger");
    // Six resumes of four partitions: each resume lands inside a producer batch and loses
    // records about a third of the time here, so all 24 serving exactly is vanishingly rare.
    for round in 1..=6u64 {
        let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &["--batch-size", "700"]);
        serve.wait_for(round * 5_000, None, Duration::from_secs(120));
        assert!(serve.stop().success());
    }
    // A gap shows only when a later record comes: a resume inside a partition's last producer
    // batch loses its tail unseen. Records produced now start a batch of their own past every
    // position, so every gap has a record after it (serve reads several batches ahead since it
    // pipelines them, and a stop after 30,000 left partition 0 inside its last batch).
    let tail = 400u64;
    produce(&broker.addr, "evidence", 4, events(total..total + tail));
    let total = total + tail;
    // The last run reads to the end of the topic: wait until it has been idle for 5 s.
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &["--batch-size", "700"]);
    serve.wait_for(6 * 5_000 + 1, None, Duration::from_secs(120));
    let (deadline, mut seen, mut since) = (Instant::now() + Duration::from_secs(120), 0, Instant::now());
    while since.elapsed() < Duration::from_secs(5) {
        assert!(Instant::now() < deadline, "serve kept appending for 120 s");
        let now = serve.entries.load(Ordering::SeqCst);
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(serve.stop().success());
    let s = status(data.path());
    let entries = s["entries"].as_u64().unwrap();
    let skipped: u64 = s["skipped_offsets"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    println!("{entries} entries, {skipped} offsets skipped: {}", s["skipped_offsets"]);
    assert!(skipped > 0, "the memory engine served every offset this time; the test shows nothing: {s}");
    // (The engine also serves some records twice; the index acknowledges those as duplicates.)
    assert_eq!(entries + skipped, total, "every record is stored or counted as skipped: {s}");
    let human = evidence().arg("--data-dir").arg(data.path()).arg("status").output().unwrap();
    assert!(stdout(&human).contains("skipped offsets:"), "{}", stdout(&human));
}

#[test]
fn with_no_broker_serve_keeps_retrying_and_still_stops_cleanly() {
    // A loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = common::Store::new("kafka.example/ledger");
    let mut child = evidence()
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kafka-brokers",
            &format!("127.0.0.1:{port}"),
            "--topics",
            "evidence",
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("Kafka client error; librdkafka keeps retrying.") {
                let _ = tx.send(line);
            }
        }
    });
    let warning = rx.recv_timeout(Duration::from_secs(30)).expect("a clear warning that the broker is unreachable");
    assert!(warning.contains(&port.to_string()) || warning.contains("Connection refused"), "{warning}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "serve gave up instead of retrying");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status =
        common::wait_exit(&mut child, Duration::from_secs(30), "serve did not stop on SIGTERM without a broker");
    reader.join().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn the_service_runs_on_the_in_memory_engine_too() {
    use evidence_ingest::kafka::{position_name, KafkaConfig};
    use evidence_ledger::service::{self, ServeConfig};
    use evidence_ledger::{CheckpointPolicy, Ledger, Log, MemStorage};

    let broker = Broker::start(&[("memory", 2)]);
    assert_eq!(produce(&broker.addr, "memory", 2, events(0..300)), 300);
    let signer = evidence_verifier::SignerKey::from_seed("test.example/memory", [3u8; 32]).unwrap();
    let log = Log::open(MemStorage::default(), vec![signer], CheckpointPolicy::default()).unwrap();
    let ledger = Ledger::open(log).unwrap();
    let store = ledger.log().shared_store();
    let tokens = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        kafka: Some(KafkaConfig {
            brokers: broker.addr.clone(),
            topics: vec!["memory".into()],
            group: "memory-test".into(),
            partitions: None,
            batch_size: 100,
            batch_wait: Duration::from_millis(100),
            settings: Vec::new(),
        }),
        http: service::HttpConfig::on("127.0.0.1:0".parse().unwrap()),
        tokens: service::tokens::TokenFile::of(tokens.path()),
        announce: None,
        self_audit_every: Duration::from_secs(3600),
        dead_letter_topic: None,
        checkpoints: CheckpointPolicy::default(),
        siem: Default::default(),
        witnesses: Vec::new(),
    };
    // Stop once both partitions' stored positions say every message is in.
    let stop = async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let next = |p| evidence_ledger::log::read_position(&*store, &position_name("memory", p)).unwrap();
            if next(0).unwrap_or(0) + next(1).unwrap_or(0) >= 300 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ledger = service::run_until(ledger, config, stop).unwrap();
    assert_eq!(ledger.log().size(), 300, "every message stored once, on MemStorage");
    assert_eq!(ledger.log().latest_size(), 300, "the stop cut a checkpoint of everything");
    ledger.log().audit().unwrap();
}

/// The Kafka source hands a batch to its sink before the batch before it is stored, so that
/// serve's writer appends one while it flushes the other. The sink here stores a batch only
/// once a later one was handed over (or every record was): a source that waited for each
/// batch before handing over the next would find every batch refused after 20 s.
#[test]
fn the_kafka_source_hands_over_a_batch_before_the_one_before_is_stored() {
    use evidence_ingest::kafka::KafkaConfig;
    use evidence_ingest::{Batch, BatchReport, Outcome, Pending, Sink};
    use std::sync::{Condvar, Mutex};

    const TOTAL: usize = 600;
    /// Batches and records handed over so far, and records stored.
    type Counts = Arc<(Mutex<(usize, usize, usize)>, Condvar)>;
    struct Gate(Counts);
    impl Sink for Gate {
        type Error = std::io::Error;
        fn append(&mut self, batch: &Batch) -> Result<BatchReport, std::io::Error> {
            self.submit(batch.clone())()
        }
        fn submit(&mut self, batch: Batch) -> Pending<std::io::Error> {
            let counts = Arc::clone(&self.0);
            let n = batch.records.len();
            let this = {
                let mut c = counts.0.lock().unwrap();
                c.0 += 1;
                c.1 += n;
                counts.1.notify_all();
                c.0
            };
            Box::new(move || {
                let (lock, changed) = &*counts;
                let (mut c, waited) = changed
                    .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(20), |c| c.0 == this && c.1 < TOTAL)
                    .unwrap();
                if waited.timed_out() {
                    return Err(std::io::Error::other(format!(
                        "batch {this} stored only once the next is handed over"
                    )));
                }
                c.2 += n;
                changed.notify_all();
                Ok(BatchReport { outcomes: (0..n).map(|i| Outcome::Accepted { seq: i as u64 }).collect() })
            })
        }
    }

    let broker = Broker::start(&[("overlap", 1)]);
    assert_eq!(produce(&broker.addr, "overlap", 1, events(0..TOTAL as u64)), TOTAL);
    let counts: Counts = Arc::default();
    let config = KafkaConfig {
        brokers: broker.addr.clone(),
        topics: vec!["overlap".into()],
        group: "overlap-test".into(),
        partitions: Some(vec![0]),
        batch_size: 100,
        batch_wait: Duration::from_millis(100),
        settings: Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let stored = Arc::clone(&counts);
    let all_stored = async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored.0.lock().unwrap().2 < TOTAL && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let validator = Arc::new(evidence_schemas::Validator::default());
    let validation = evidence_ingest::validation::Validation::start(validator, 1).unwrap();
    let positions: evidence_ingest::kafka::Positions = Arc::new(|_, _| None);
    let ran = runtime.block_on(evidence_ingest::kafka::run(
        config,
        validation,
        Gate(Arc::clone(&counts)),
        positions,
        all_stored,
    ));
    let (_, progress) = ran.expect("every batch stored");
    assert_eq!(progress.totals.accepted, TOTAL as u64);
    let c = counts.0.lock().unwrap();
    assert!(c.0 >= 2, "{} batches", c.0);
    assert_eq!((c.1, c.2), (TOTAL, TOTAL));
}

/// The open alerts of a store (drift left out: it counts windows in arrival order), by rule,
/// app, env, artifact or route, and a fold's count.
fn open_alerts(data: &std::path::Path) -> Vec<String> {
    let out = evidence().arg("--data-dir").arg(data).args(["alerts", "--status", "open", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut keys: Vec<String> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|a| a["rule"] != "drift.behavior")
        .map(|a| {
            format!(
                "{} {} {} {} {} {}",
                a["rule"], a["app"], a["env"], a["artifact"], a["route"], a["fold"]["occurrences"]
            )
        })
        .collect();
    keys.sort();
    keys
}

/// Every example scenario sent through `serve` over a 4-partition topic without keys, so the
/// ledger receives events out of event-time order (the policy first): the same open alerts
/// as the files ingested in order, and the clean release's properly gated release raises
/// nothing that stays open.
#[test]
fn scenarios_over_four_partitions_end_with_the_alerts_of_the_files() {
    let lines: Vec<String> = evidence_ledger::examples::SCENARIOS
        .iter()
        .flat_map(|(_, text)| text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string))
        .collect();
    let (policies, rest): (Vec<String>, Vec<String>) =
        lines.iter().cloned().partition(|l| l.contains(r#""type":"registry.policy""#));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), [policies[..1].to_vec(), rest.clone()].concat().join("\n")).unwrap();
    let in_order = common::Store::new("kafka.example/files");
    let out =
        evidence().arg("--data-dir").arg(in_order.path()).args(["ingest", "--file"]).arg(file.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let want = open_alerts(in_order.path());
    assert!(!want.is_empty());

    let broker = Broker::start(&[("evidence", 4)]);
    let data = common::Store::new("kafka.example/ledger");
    let mut serve = Serve::start(data.path(), &broker.addr, "evidence", &[]);
    produce(&broker.addr, "evidence", 1, policies[..1].iter().map(|l| l.clone().into_bytes()));
    serve.wait_for(1, None, Duration::from_secs(120));
    produce(&broker.addr, "evidence", 4, rest.iter().map(|l| l.clone().into_bytes()));
    serve.wait_for(1 + rest.len() as u64, None, Duration::from_secs(120));
    assert!(serve.stop().success());
    assert_eq!(open_alerts(data.path()), want);
    let resolved =
        evidence().arg("--data-dir").arg(data.path()).args(["alerts", "--status", "resolved"]).output().unwrap();
    println!("resolved over Kafka:\n{}", stdout(&resolved));
}

/// The Kafka coordinates and the event id of every entry in the stopped store at `data`, in
/// log order: `(partition, offset, id)` of `topic`.
fn stored_from(data: &std::path::Path, topic: &str) -> Vec<(i32, i64, String)> {
    use evidence_ledger::{CheckpointPolicy, Log, SledStorage};
    let log = Log::open_reader(SledStorage::open(&data.join("log")).unwrap(), CheckpointPolicy::default()).unwrap();
    let prefix = format!("kafka:{topic}/");
    let mut stored = Vec::new();
    for entry in log.entries(0) {
        let (_, record) = entry.unwrap();
        let entry = evidence_verifier::entry::EntryRef::decode(&record).unwrap();
        let (partition, offset) = entry.origin.strip_prefix(&prefix).and_then(|r| r.split_once('@')).unwrap();
        let event: serde_json::Value = serde_json::from_slice(entry.event).unwrap();
        let id = event["id"].as_str().unwrap().to_string();
        stored.push((partition.parse().unwrap(), offset.parse().unwrap(), id));
    }
    stored
}

/// The partition of every entry in the stopped store at `data`, by event id, with how many
/// entries carry that id.
fn partitions_by_id(data: &std::path::Path) -> std::collections::HashMap<String, (i32, u32)> {
    let mut held = std::collections::HashMap::new();
    for (partition, _, id) in stored_from(data, "evidence") {
        held.entry(id).or_insert((partition, 0)).1 += 1;
    }
    held
}

/// A partition the ledger holds no position for starts at its group's committed offset, and
/// one the group never committed at the earliest offset, whether the group assigns the
/// partitions or serve owns them (`--partitions`). serve asks the group itself (librdkafka
/// would too, but starts an uncommitted partition only after a 100 ms timer).
#[test]
fn a_partition_new_to_the_ledger_starts_at_the_groups_committed_offset_or_the_earliest() {
    let broker = Broker::start(&[("joined", 2), ("owned", 2)]);
    for (topic, extra) in [("joined", &[][..]), ("owned", &["--partitions", "0,1"][..])] {
        // 100 events a partition, at offsets 0 to 99; the group Serve uses has committed
        // partition 0 up to offset 40, and nothing of partition 1.
        produce(&broker.addr, topic, 2, events(0..200));
        let group: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &broker.addr).set("group.id", "ledger-test").create().unwrap();
        let mut committed = TopicPartitionList::new();
        committed.add_partition_offset(topic, 0, Offset::Offset(40)).unwrap();
        group.commit(&committed, rdkafka::consumer::CommitMode::Sync).unwrap();
        drop(group);
        let data = common::Store::new("kafka.example/ledger");
        let mut serve = Serve::start(data.path(), &broker.addr, topic, extra);
        serve.wait_for(160, None, Duration::from_secs(60));
        assert!(serve.stop().success());
        let mut stored: Vec<(i32, i64)> = stored_from(data.path(), topic).into_iter().map(|(p, o, _)| (p, o)).collect();
        stored.sort_unstable();
        let expected: Vec<(i32, i64)> = (40..100).map(|o| (0, o)).chain((0..100).map(|o| (1, o))).collect();
        assert_eq!(stored, expected, "{topic}: partition 0 from offset 40, partition 1 from the start, each once");
    }
}

/// Two `serve` shards over a 4-partition topic, each owning two partitions, killed in turn
/// while the stream arrives: each holds its partitions' events exactly once and verifies.
#[test]
fn two_shards_owning_two_partitions_each_hold_every_event_once_across_sigkills() {
    let broker = Broker::start(&[("evidence", 4)]);
    // The stream flows until the last kill (and 100,000 events at least), 20,000 events a
    // second in batches of 2,000, so that every kill finds its shard at work and none finds it
    // done (a shard reads 30,000 or more a second on an idle machine); 20,000 more come after.
    let (killing, addr) = (Arc::new(AtomicBool::new(true)), broker.addr.clone());
    let producing = {
        let killing = Arc::clone(&killing);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while (killing.load(Ordering::SeqCst) || sent < 100_000) && sent < 1_000_000 {
                produce(&addr, "evidence", 4, events(sent..sent + 2_000));
                sent += 2_000;
                std::thread::sleep(Duration::from_millis(100));
            }
            sent
        })
    };
    let shards = [("kafka.example/shard-a", "0,1"), ("kafka.example/shard-b", "2,3")];
    let stores: Vec<common::Store> = shards.iter().map(|(origin, _)| common::Store::new(origin)).collect();
    let start = |i: usize| Serve::start(stores[i].path(), &broker.addr, "evidence", &["--partitions", shards[i].1]);
    let mut running = [Some(start(0)), Some(start(1))];
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("SHARD_CRASH_SEED={seed}");
    for kill in 0..4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let victim = kill % 2;
        let serve = running[victim].take().unwrap();
        // Killed once it has stored something since it started, after a random extra moment.
        let waited = Instant::now();
        while serve.entries.load(Ordering::SeqCst) == 0 && waited.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(seed % 1000));
        let at = serve.entries.load(Ordering::SeqCst);
        serve.kill();
        println!("kill {}: shard {victim} around {at} entries", kill + 1);
        assert!(at > 0, "shard {victim} stored nothing in 120 s before kill {}", kill + 1);
        running[victim] = Some(start(victim));
    }
    killing.store(false, Ordering::SeqCst);
    let sent = producing.join().unwrap();
    let total = sent + 20_000;
    produce(&broker.addr, "evidence", 4, events(sent..total));
    println!("{total} events produced");
    for serve in &mut running {
        serve.as_mut().unwrap().wait_for(total / 2, None, Duration::from_secs(600));
    }
    for serve in running {
        assert!(serve.unwrap().stop().success());
    }
    // Event n went to partition n % 4: each shard holds exactly its partitions' events, once.
    let mut keys = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, store) in stores.iter().enumerate() {
        let s = status(store.path());
        let positions: Vec<&String> = s["positions"].as_object().unwrap().keys().collect();
        let owned: Vec<String> = shards[i].1.split(',').map(|p| format!("kafka:evidence/{p}")).collect();
        assert_eq!(positions, owned.iter().collect::<Vec<_>>(), "shard {i} read only its partitions: {s}");
        assert_eq!(s["entries"].as_u64(), Some(total / 2), "{s}");
        for (id, (partition, times)) in partitions_by_id(store.path()) {
            assert_eq!(times, 1, "{id} is held {times} times by shard {i}");
            assert!(
                owned.contains(&format!("kafka:evidence/{partition}")),
                "shard {i} holds {id} of partition {partition}"
            );
            assert!(seen.insert(id.clone(), i).is_none(), "{id} is in both shards");
        }
        verify(store.path());
        keys.push(s["verifier_keys"][0].as_str().unwrap().to_string());
    }
    let expected: std::collections::HashSet<String> = events(0..total)
        .map(|e| serde_json::from_slice::<serde_json::Value>(&e).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen.len(), expected.len());
    assert!(seen.keys().all(|id| expected.contains(id)), "every event held is one produced");
    assert_ne!(keys[0], keys[1], "each shard signs with its own key");
}
