//! Alerts to the SIEM, end to end: `evidence serve` delivering to real receivers started by
//! the harness on loopback ports: the test broker (tansu) read back by kafka-python, Debian's
//! rsyslog writing what it received to a file, and a collector in Splunk HEC's shape. What
//! each receiver got is read and checked by an independent Python checker (OCSF documents
//! validated against the official OCSF 1.5.0 schema export; syslog parsed as RFC 5424).
//! A missing broker, rsyslog or Python package fails the test: `ops/test` installs them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::server::{init_with_tokens_as, Server};
use common::siem::{self, Collector, Deliveries, Received, Rsyslog};
use common::{evidence, stderr, stdout};
use evidence_ledger::examples::SCENARIOS;
use serde_json::Value;

const NDJSON: &str = "application/x-ndjson";

/// The tests here run one at a time: each runs three receivers and a service, and one
/// measures ingest rates.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
const TOPIC: &str = "alerts";
const HEC_TOKEN: &str = "hec-test-token-7f3a";

/// The receivers, all up.
struct Receivers {
    broker: Broker,
    syslog: Rsyslog,
    hec: Collector,
}

impl Receivers {
    fn start() -> Receivers {
        Receivers { broker: Broker::start(&[(TOPIC, 3)]), syslog: Rsyslog::start(), hec: Collector::start(HEC_TOKEN) }
    }

    /// `serve`'s flags for delivering to them all.
    fn args(&self) -> Vec<String> {
        vec![
            "--siem-kafka-topic".into(),
            TOPIC.into(),
            "--siem-kafka-brokers".into(),
            self.broker.addr.clone(),
            "--siem-syslog".into(),
            self.syslog.url(),
            "--siem-hec".into(),
            self.hec.url(),
            "--siem-hec-token".into(),
            HEC_TOKEN.into(),
            "--siem-max-backoff-secs".into(),
            "2".into(),
        ]
    }

    /// What every receiver got (rsyslog stopped first, so that it has written all it read).
    fn read(&mut self) -> Deliveries {
        self.syslog.stop();
        let deliveries = siem::read(Some((&self.broker.addr, TOPIC)), Some(&self.hec), Some(&self.syslog));
        assert!(
            deliveries.errors.is_empty(),
            "the checker found: {:#?}",
            &deliveries.errors[..deliveries.errors.len().min(20)]
        );
        deliveries
    }
}

/// A new store for `origin` served with `args`.
fn serve(dir: &Path, origin: &str, args: &[String]) -> Server {
    let data = dir.join(origin.replace('/', "_"));
    let tokens = init_with_tokens_as(&data, origin);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::on(&data, &args, tokens)
}

/// The service's status.
fn status(server: &Server) -> Value {
    let answer = server.get("/v1/status", &server.reader);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// Waits until the views have caught up with the log and every sink has delivered the whole
/// outbox.
fn wait_delivered(server: &Server, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(server);
        let caught_up = s["views_watermark"] == s["entries"];
        let sinks = s["sinks"].as_array().unwrap();
        if caught_up && !sinks.is_empty() && sinks.iter().all(|k| k["lag"] == 0) {
            return s;
        }
        assert!(Instant::now() < deadline, "the sinks did not deliver within {limit:?}: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Posts `lines` as one NDJSON request.
fn post(server: &Server, lines: &[String]) {
    let answer = server.post("/v1/events", &server.producer, NDJSON, lines.join("\n").as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// The ledger's alerts, by id, with their status, as `evidence alerts --json` gives them on
/// the stopped store.
fn ledger_alerts(data: &Path) -> BTreeMap<String, String> {
    let out = evidence().arg("--data-dir").arg(data).args(["alerts", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["status"].as_str().unwrap().to_string()))
        .collect()
}

/// What a receiver ends with for the log `origin`, replaying what it got in the order it got
/// it: each alert's status after the last change it got about it.
fn replay(got: &[Received], origin: &str) -> BTreeMap<String, String> {
    got.iter().filter(|r| r.log == origin).map(|r| (r.id.clone(), r.status.clone())).collect()
}

/// The service's whole outbox, read from `GET /v1/alerts/stream?from=0`: change number ->
/// (alert id, activity).
fn outbox(server: &Server) -> BTreeMap<u64, (String, String)> {
    use std::io::BufRead as _;
    let head = status(server)["alert_changes"].as_u64().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(60))).build().into();
    let response = agent
        .get(format!("{}/v1/alerts/stream?from=0", server.url))
        .header("Authorization", format!("Bearer {}", server.reader))
        .call()
        .unwrap();
    let mut out = BTreeMap::new();
    for line in std::io::BufReader::new(response.into_body().into_reader()).lines() {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data:") else { continue };
        let change: Value = serde_json::from_str(data.trim()).unwrap();
        let number = change["number"].as_u64().unwrap();
        let id = change["alert"]["id"].as_str().unwrap().to_string();
        out.insert(number, (id, change["activity"].as_str().unwrap().to_string()));
        if number + 1 >= head {
            break;
        }
    }
    assert_eq!(out.len() as u64, head, "the stream did not send the whole outbox");
    out
}

/// The clean release with its gates arriving after the deploy and the requests: the release
/// raises gate.skipped alerts that the late gates, dated before it, resolve.
fn late_gates() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios/clean-release.ndjson"),
    )
    .unwrap();
    text.lines().map(str::to_string).partition(|l| !l.contains("\"type\":\"pipeline.gate\""))
}

#[test]
fn every_alert_of_every_scenario_reaches_every_sink_and_a_replay_ends_as_the_ledger() {
    let _serial = serial();
    let mut receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let args = receivers.args();
    // A wrong HEC token: refused (403, HEC's "Invalid token"), retried, and said in the status.
    let wrong: Vec<String> =
        vec!["--siem-hec".into(), receivers.hec.url(), "--siem-hec-token".into(), "not-the-token".into()];
    let server = serve(dir.path(), "siem.test/wrong-token", &wrong);
    post(&server, &SCENARIOS[0].1.lines().map(str::to_string).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&server);
        let error = s["sinks"][0]["last_error"].as_str().unwrap_or("").to_string();
        if error.contains("403") && error.contains("Invalid token") {
            assert!(s["sinks"][0]["lag"].as_u64().unwrap() > 0 && s["sinks"][0]["failing"] == true, "{s:#}");
            break;
        }
        assert!(Instant::now() < deadline, "a wrong token was not refused: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    assert!(receivers.hec.refused.lock().unwrap().contains(&403));
    let mut expected: BTreeMap<String, (std::path::PathBuf, BTreeMap<String, String>)> = BTreeMap::new();
    for (name, text) in SCENARIOS {
        let origin = format!("siem.test/{name}");
        let mut server = serve(dir.path(), &origin, &args);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        post(&server, &lines);
        wait_delivered(&server, Duration::from_secs(60));
        assert!(server.stop().success());
        expected.insert(origin, (server.data.clone(), ledger_alerts(&server.data)));
    }
    // The late gates: everything but the gates, delivered; then the gates.
    let origin = "siem.test/late-gates".to_string();
    let mut server = serve(dir.path(), &origin, &args);
    let (early, gates) = late_gates();
    post(&server, &early);
    let before = wait_delivered(&server, Duration::from_secs(60));
    assert!(before["alert_changes"].as_u64().unwrap() > 0, "the release without its gates raised nothing");
    post(&server, &gates);
    wait_delivered(&server, Duration::from_secs(60));
    assert!(server.stop().success());
    let late = ledger_alerts(&server.data);
    assert!(!late.is_empty() && late.values().all(|s| s == "resolved"), "late gates: {late:?}");
    expected.insert(origin.clone(), (server.data.clone(), late));

    let got = receivers.read();
    let raised: usize = expected.values().map(|(_, a)| a.len()).sum();
    assert!(raised >= 20, "the scenarios raise {raised} alerts");
    for (receiver, list) in got.receivers() {
        for (origin, (_, alerts)) in &expected {
            let ends = replay(list, origin);
            assert_eq!(
                ends.keys().collect::<BTreeSet<_>>(),
                alerts.keys().collect::<BTreeSet<_>>(),
                "{receiver}: the alert ids of {origin} differ from evidence alerts"
            );
            assert_eq!(&ends, alerts, "{receiver}: replaying {origin} ends with other statuses than the ledger's");
        }
        // The false alerts of the late gates: a create, then its close, same id throughout.
        for id in expected[&origin].1.keys() {
            let seen: Vec<&Received> = list.iter().filter(|r| r.log == origin && &r.id == id).collect();
            let create = seen.iter().position(|r| r.activity == "create");
            let close = seen.iter().position(|r| r.activity == "close");
            assert!(
                matches!((create, close), (Some(a), Some(b)) if a < b),
                "{receiver}: {id} was not created then closed: {seen:?}"
            );
            assert_eq!(seen.last().unwrap().status, "resolved", "{receiver}: {id}");
        }
    }
    // The three receivers got the same changes.
    let changes =
        |list: &Vec<Received>| -> BTreeSet<(String, u64)> { list.iter().map(|r| (r.log.clone(), r.change)).collect() };
    assert_eq!(changes(&got.kafka), changes(&got.hec), "kafka and hec got different changes");
    assert_eq!(changes(&got.kafka), changes(&got.syslog), "kafka and syslog got different changes");
}

/// The policy and the one approved provider route of the routing scenario.
fn preamble() -> Vec<String> {
    let text = SCENARIOS.iter().find(|(n, _)| *n == "routing-unapproved").unwrap().1;
    text.lines().take(2).map(str::to_string).collect()
}

/// Gateway requests `from..to`, of apps `first_app..first_app + apps` in turn, each over an
/// unapproved route: every app's requests fold into one routing.unapproved alert.
fn requests(from: usize, to: usize, first_app: usize, apps: usize) -> Vec<String> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-04-07T00:00:00Z").unwrap();
    (from..to)
        .map(|i| {
            let time = (start + chrono::Duration::seconds(i as i64)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let app = first_app + i % apps;
            format!(
                r#"{{"specversion":"1.0","id":"siem-load-{i}","source":"gateway/acme/siem-load","type":"proxy.request","time":"{time}","env":"prod","data":{{"request_id":"req-{i}","app":"app-{app}","provider":"openai","model":"gpt-4o","region":"eu-west-1","data_class":"public","tokens_in":420,"tokens_out":130,"latency_ms":600.0,"status":"ok","refused":false,"safety_flags":[],"tool_calls":[]}}}}"#
            )
        })
        .collect()
}

/// Posts `lines` in requests of 1,000; returns the events per second.
fn post_all(server: &Server, lines: &[String]) -> f64 {
    let started = Instant::now();
    for chunk in lines.chunks(1000) {
        post(server, chunk);
    }
    lines.len() as f64 / started.elapsed().as_secs_f64()
}

/// Checks that every receiver ends, for `origin`, with exactly the ledger's alerts and
/// statuses.
fn assert_every_alert_delivered(got: &Deliveries, origin: &str, alerts: &BTreeMap<String, String>) {
    for (receiver, list) in got.receivers() {
        let ends = replay(list, origin);
        let missing: Vec<_> = alerts.keys().filter(|id| !ends.contains_key(*id)).take(5).collect();
        assert!(missing.is_empty(), "{receiver} lacks alerts of {origin} (of {}): {missing:?}", alerts.len());
        assert_eq!(&ends, alerts, "{receiver}: replaying {origin} ends otherwise than the ledger");
    }
}

#[test]
fn receivers_down_for_30_s_miss_nothing_and_hold_ingest_back_in_nothing() {
    let _serial = serial();
    let mut receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let origin = "siem.test/outage";
    let mut server = serve(dir.path(), origin, &receivers.args());
    post(&server, &preamble());
    // 100,000 requests of 1,200 apps: the first half with the receivers up (apps 0 to 599),
    // the second half while they are all down (apps 600 to 1,199: their alerts open then).
    let up = requests(0, 50_000, 0, 600);
    let down = requests(50_000, 100_000, 600, 600);
    let rate_up = post_all(&server, &up);
    wait_delivered(&server, Duration::from_secs(120));
    let delivered_before = status(&server)["alert_changes"].as_u64().unwrap();

    let outage = Instant::now();
    receivers.syslog.stop();
    receivers.hec.stop();
    receivers.broker.stop();
    let rate_down = post_all(&server, &down);
    // The lag is visible meanwhile: every sink behind, failing, with its error.
    let deadline = Instant::now() + Duration::from_secs(25);
    let during = loop {
        let s = status(&server);
        let sinks = s["sinks"].as_array().unwrap().clone();
        if sinks.iter().all(|k| k["lag"].as_u64().unwrap() > 0 && k["failing"] == true && k["last_error"].is_string()) {
            break s;
        }
        assert!(Instant::now() < deadline, "the outage is not visible in the status: {s:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let metrics = server.get("/metrics", &server.reader).body;
    assert!(metrics.contains("evidence_siem_lag_changes{sink=\"hec:"), "no lag metric");
    std::thread::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed()));
    receivers.broker.restart();
    receivers.syslog.restart();
    receivers.hec.restart();
    let after = wait_delivered(&server, Duration::from_secs(180));
    eprintln!(
        "ingest with the receivers up: {rate_up:.0} events/s; down: {rate_down:.0} events/s ({:.2}x); outbox: {delivered_before} changes before the outage, {} after; lag during it: {}",
        rate_down / rate_up,
        after["alert_changes"],
        during["sinks"].as_array().unwrap().iter().map(|k| format!("{} {}", k["name"], k["lag"])).collect::<Vec<_>>().join(", ")
    );
    assert!(server.stop().success());
    let alerts = ledger_alerts(&server.data);
    assert!(alerts.len() >= 1_000, "the load raised {} alerts", alerts.len());
    assert_every_alert_delivered(&receivers.read(), origin, &alerts);
}

#[test]
fn serve_killed_during_delivery_five_times_delivers_every_alert_at_least_once() {
    let _serial = serial();
    let mut receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let origin = "siem.test/killed";
    let data = dir.path().join("killed");
    let tokens = init_with_tokens_as(&data, origin);
    let args: Vec<String> = receivers.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut rng = common::Rng(0x5eed_0fa1_e7e7);
    let mut server = Server::on(&data, &args, tokens.clone());
    post(&server, &preamble());
    let mut mid_delivery = 0;
    for round in 0..5 {
        // 4,000 requests of 100 new apps a round: 100 alerts opened, each updated as it folds.
        // The collector answers the next batches 503 (HEC's "Server is busy"): the HEC sink
        // retries them, so it is behind while the service is killed.
        receivers.hec.busy.store(3, std::sync::atomic::Ordering::SeqCst);
        let lines = requests(round * 4_000, (round + 1) * 4_000, round * 100, 100);
        post_all(&server, &lines);
        std::thread::sleep(Duration::from_millis(rng.below(300) as u64));
        let lags: Vec<u64> =
            status(&server)["sinks"].as_array().unwrap().iter().map(|k| k["lag"].as_u64().unwrap()).collect();
        eprintln!("round {round}: SIGKILL with the sinks behind by {lags:?}");
        mid_delivery += usize::from(lags.iter().any(|&l| l > 0));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        server = Server::on(&data, &args, tokens.clone());
    }
    assert!(mid_delivery >= 3, "only {mid_delivery} of 5 kills came while the sinks were delivering");
    wait_delivered(&server, Duration::from_secs(120));
    let outbox = outbox(&server);
    assert!(server.stop().success());
    let alerts = ledger_alerts(&data);
    assert!(alerts.len() >= 500, "the rounds raised {} alerts", alerts.len());
    assert!(receivers.hec.refused.lock().unwrap().contains(&503), "the collector was never busy");
    let got = receivers.read();
    assert_every_alert_delivered(&got, origin, &alerts);
    // Every change reached every receiver, and each number always named the same change:
    // nothing delivered before a kill was numbered again after it.
    for (receiver, list) in got.receivers() {
        let mine: Vec<&Received> = list.iter().filter(|r| r.log == origin).collect();
        for r in &mine {
            assert_eq!(
                outbox.get(&r.change),
                Some(&(r.id.clone(), r.activity.clone())),
                "{receiver}: change {}",
                r.change
            );
        }
        let numbers: BTreeSet<u64> = mine.iter().map(|r| r.change).collect();
        assert_eq!(numbers.len(), outbox.len(), "{receiver} lacks changes");
    }
}

#[test]
fn syslog_over_tls_reaches_a_server_whose_certificate_chains_to_the_ca_given() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::private_ca(dir.path());
    let syslog = Rsyslog::start_tls(&ca, &cert, &key);
    let url = syslog.url();
    assert!(url.starts_with("tls://"), "{url}");
    // Trusting the private CA: delivered.
    let ca_arg = ca.to_str().unwrap().to_string();
    let args = vec!["--siem-syslog".to_string(), url.clone(), "--siem-ca-cert".into(), ca_arg];
    let mut server = serve(dir.path(), "siem.test/tls", &args);
    let text = SCENARIOS.iter().find(|(n, _)| *n == "gate-skipped").unwrap().1;
    post(&server, &text.lines().map(str::to_string).collect::<Vec<_>>());
    wait_delivered(&server, Duration::from_secs(60));
    assert!(server.stop().success());
    let alerts = ledger_alerts(&server.data);
    let got = siem::read(None, None, Some(&syslog));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(replay(&got.syslog, "siem.test/tls"), alerts);
    // Trusting only the system's store: refused, and the status says why.
    let args = vec!["--siem-syslog".to_string(), url];
    let server = serve(dir.path(), "siem.test/untrusted", &args);
    post(&server, &text.lines().map(str::to_string).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&server);
        let sink = &s["sinks"][0];
        if sink["failing"] == true {
            let error = sink["last_error"].as_str().unwrap();
            assert!(error.to_lowercase().contains("certificate"), "{error}");
            assert!(sink["lag"].as_u64().unwrap() > 0, "{s:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the untrusted server was not refused: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn alerts_follow_prints_every_change_of_the_outbox_as_it_happens() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), "siem.test/follow", &[]);
    let (early, gates) = late_gates();
    post(&server, &early);
    // Followed from the start, as JSON: one change a line, in order, the same as the stream.
    let mut follow = evidence()
        .args(["--server", &server.url, "alerts", "--follow", "--from", "0", "--json"])
        .env("EVIDENCE_TOKEN", &server.reader)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed: Vec<Value> = Vec::new();
    let mut take = |until: u64| {
        while (printed.len() as u64) < until {
            let line = rx.recv_timeout(Duration::from_secs(30)).expect("--follow printed nothing for 30 s");
            printed.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")));
        }
    };
    take(status(&server)["alert_changes"].as_u64().unwrap());
    // The late gates arrive while it follows: their closes are printed as they happen.
    post(&server, &gates);
    let head = status(&server)["alert_changes"].as_u64().unwrap();
    take(head);
    let _ = follow.kill();
    let _ = follow.wait();
    let stream = outbox(&server);
    let seen: BTreeMap<u64, (String, String)> = printed
        .iter()
        .map(|c| {
            let id = c["alert"]["id"].as_str().unwrap().to_string();
            (c["number"].as_u64().unwrap(), (id, c["activity"].as_str().unwrap().to_string()))
        })
        .collect();
    assert_eq!(seen, stream, "--follow printed otherwise than the stream");
    let numbers: Vec<u64> = printed.iter().map(|c| c["number"].as_u64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order: {numbers:?}");
    assert!(printed.iter().any(|c| c["activity"] == "close"), "no close printed");
    // A client reconnecting with Last-Event-ID gets the changes after it, from the first on.
    let resumed = first_event_after(&server, 3);
    assert_eq!(resumed, (4, stream[&4].1.clone()), "resumed after change 3");
    // Without a service to follow, a sentence saying how to name one.
    let out = evidence().arg("--data-dir").arg(dir.path()).args(["alerts", "--follow"]).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("--server"), "{}", stderr(&out));
}

/// The first event of the stream for a client that got change `last` before: (its id, its
/// event name).
fn first_event_after(server: &Server, last: u64) -> (u64, String) {
    use std::io::BufRead as _;
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build().into();
    let response = agent
        .get(format!("{}/v1/alerts/stream", server.url))
        .header("Authorization", format!("Bearer {}", server.reader))
        .header("Last-Event-ID", last.to_string())
        .call()
        .unwrap();
    let (mut id, mut event) = (None, None);
    for line in std::io::BufReader::new(response.into_body().into_reader()).lines() {
        let line = line.unwrap();
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().parse().unwrap());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_string());
        } else if line.is_empty() && id.is_some() {
            break;
        }
    }
    (id.expect("no event"), event.expect("no event name"))
}
