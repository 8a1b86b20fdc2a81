//! The evidence API under hostile and faulty clients, on the real binary: every bad-input
//! class answered with its own status and a problem document, counted, and nothing valid
//! lost; slow and idle clients cannot hold connections; producers retrying through SIGKILLs
//! lose and duplicate nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::Server;
use evidence_schemas::sample::sample_event;
use serde_json::Value;

const NDJSON: &str = "application/x-ndjson";

fn host(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// The value of the metric line starting with `prefix` (labels included), or 0.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

fn problem(answer: &common::server::Answer, status: u16, words: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.content_type, "application/problem+json", "{}", answer.body);
    let p = answer.json();
    assert_eq!(p["status"], status);
    assert!(p["detail"].as_str().unwrap().contains(words), "{words:?} in {}", answer.body);
}

/// Reads until the server closes the connection; how long that took.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("the server did not close the connection within {limit:?}: {e}"),
        }
    }
}

#[test]
fn every_bad_input_class_gets_its_status_and_problem_and_nothing_valid_is_lost() {
    let mut server = Server::start(&[
        "--max-body-bytes",
        "1000000",
        "--max-events-per-request",
        "50",
        "--header-timeout-secs",
        "2",
        "--request-timeout-secs",
        "3",
    ]);
    let (p, r) = (server.producer.clone(), server.reader.clone());
    let valid = |i: u64| sample_event(i);
    // Event-level classes, each beside a valid event in one request: answered item by item.
    let oversize = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    let invalid = valid(2).replace("\"data\":{", "\"data\":{\"colour\":\"blue\",");
    let body = [valid(1), "this is not JSON".into(), oversize, invalid, valid(3)].join("\n");
    let a = server.post("/v1/events", &p, NDJSON, body.as_bytes());
    assert_eq!(a.status, 200, "{}", a.body);
    let items = a.json()["items"].as_array().unwrap().clone();
    let statuses: Vec<&str> = items.iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "rejected", "rejected", "accepted"]);
    assert!(items[1]["detail"].as_str().unwrap().contains("not JSON"), "{}", items[1]);
    assert!(items[2]["detail"].as_str().unwrap().contains("over the limit"), "{}", items[2]);
    assert!(items[3]["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == "/data/colour"), "{}", items[3]);
    let mut conflict: Value = serde_json::from_str(&valid(1)).unwrap();
    conflict["time"] = "2026-05-01T00:00:00Z".into();
    let conflict = conflict.to_string();
    let c = server.post("/v1/events", &p, "application/cloudevents+json", conflict.as_bytes());
    problem(&c, 409, "conflicts");

    // Request-level classes: refused whole, each with its own status.
    problem(&server.post("/v1/events", &p, "text/plain", valid(4).as_bytes()), 415, "content type");
    // An oversize body is refused on its Content-Length, before it is read (a client that
    // sends it all anyway finds the connection closed): a raw client reads the answer.
    let mut big = TcpStream::connect(host(&server)).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {p}\r\nContent-Type: {NDJSON}\r\nContent-Length: 1200000\r\n\r\n"
    );
    big.write_all(head.as_bytes()).unwrap();
    let _ = big.write_all(&[b' '; 65536]);
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut text = String::new();
    let _ = big.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/problem+json") && text.contains("over the limit of 1000000 bytes"), "{text}");
    let many: Vec<String> = (10..61).map(valid).collect();
    problem(&server.post("/v1/events", &p, NDJSON, many.join("\n").as_bytes()), 413, "51 events");
    problem(&server.post("/v1/events", "", NDJSON, valid(5).as_bytes()), 401, "bearer token");
    problem(&server.post("/v1/events", "evl_unknown", NDJSON, valid(5).as_bytes()), 401, "not one this ledger issued");
    problem(&server.post("/v1/events", &r, NDJSON, valid(5).as_bytes()), 403, "needs producer");

    // A client sending its headers a byte a second is cut off at the header timeout.
    let mut slow = TcpStream::connect(host(&server)).unwrap();
    let started = Instant::now();
    let writer = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n".iter().take(30) {
                if slow.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    closed_within(&mut slow, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(6), "cut off after {:?}", started.elapsed());
    writer.join().unwrap();
    // A body sent a byte a second is answered 408 at the request timeout.
    let mut slow_body = TcpStream::connect(host(&server)).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {p}\r\nContent-Type: {NDJSON}\r\nContent-Length: 1000\r\n\r\n"
    );
    slow_body.write_all(head.as_bytes()).unwrap();
    slow_body.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut answer = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") && Instant::now() < deadline {
        let _ = slow_body.write_all(b"{");
        let mut buf = [0u8; 4096];
        if let Ok(n) = slow_body.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Nothing valid lost, every bad event quarantined, every refusal counted.
    let status = server.get("/v1/status", &r).json();
    assert_eq!((status["entries"].as_u64(), status["quarantined"].as_u64()), (Some(2), Some(4)), "{status}");
    let quarantine = server.get("/v1/quarantine", &r).json();
    let reasons: Vec<String> =
        quarantine["records"].as_array().unwrap().iter().map(|q| q["reason"].as_str().unwrap().to_string()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    let m = server.get("/metrics", &r).body;
    let requests = |status: u16| {
        metric(&m, &format!("evidence_http_requests_total{{route=\"/v1/events\",method=\"POST\",status=\"{status}\"}}"))
    };
    for (status, count) in [(200, 1.0), (409, 1.0), (415, 1.0), (413, 2.0), (401, 2.0), (403, 1.0), (408, 1.0)] {
        assert_eq!(requests(status), count, "POST /v1/events answered {status}:\n{m}");
    }
    assert_eq!(metric(&m, r#"evidence_events_total{source="http",outcome="rejected"}"#), 3.0, "{m}");
    assert_eq!(metric(&m, r#"evidence_events_total{source="http",outcome="conflict"}"#), 1.0, "{m}");
    assert!(metric(&m, "evidence_http_connections_timed_out_total") >= 1.0, "{m}");
    assert!(server.stop().success());
}

#[test]
fn a_thousand_idle_connections_neither_stop_others_nor_stay_open() {
    let mut server = Server::start(&["--header-timeout-secs", "3"]);
    let idle: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(host(&server)).unwrap()).collect();
    let a = server.get("/v1/status", &server.reader);
    assert_eq!(a.status, 200, "served beside 1,000 idle connections: {}", a.body);
    let started = Instant::now();
    for mut stream in idle {
        closed_within(&mut stream, Duration::from_secs(20));
    }
    assert!(started.elapsed() < Duration::from_secs(15), "idle connections closed after {:?}", started.elapsed());
    let m = server.get("/metrics", &server.reader).body;
    assert!(metric(&m, "evidence_http_connections_timed_out_total") >= 1000.0, "{m}");
    assert!(server.stop().success());

    // Over the cap, a connection is answered 503 with a problem and closed.
    let mut capped = Server::start(&["--max-connections", "20", "--header-timeout-secs", "30"]);
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(host(&capped)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = TcpStream::connect(host(&capped)).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut text = String::new();
    over.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("application/problem+json") && text.contains("limit of 20 open connections"), "{text}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(capped.get("/healthz", "").status, 200, "slots free again once clients leave");
    assert!(capped.stop().success());
}

#[test]
fn producers_retrying_through_sigkills_lose_and_duplicate_nothing() {
    // Enough that the producers are still posting after ten SIGKILLs however fast the
    // service is (200,000 ended before the tenth once a round's flush overlapped the next).
    const TOTAL: u64 = 400_000;
    const PER_REQUEST: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let tokens = common::server::init_with_tokens(&data);
    let url = std::sync::Arc::new(std::sync::RwLock::new(String::new()));
    let mut server = Server::on(&data, &[], tokens.clone());
    *url.write().unwrap() = server.url.clone();
    let deadline = Instant::now() + Duration::from_secs(900);
    let producers: Vec<_> = (0..8u64)
        .map(|p| {
            let (url, token) = (std::sync::Arc::clone(&url), tokens.1.clone());
            std::thread::spawn(move || produce(p, &url, &token, TOTAL / 8, PER_REQUEST, deadline))
        })
        .collect();
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rounds = 0;
    while rounds < 10 || !producers.iter().all(|p| p.is_finished()) {
        if producers.iter().all(|p| p.is_finished()) {
            break;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(100 + seed % 600));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        rounds += 1;
        server = Server::on(&data, &[], tokens.clone());
        *url.write().unwrap() = server.url.clone();
        assert!(Instant::now() < deadline, "the producers did not finish in time");
    }
    let acknowledged: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
    assert_eq!(acknowledged, TOTAL, "every event acknowledged");
    println!("{rounds} SIGKILLs while 8 producers posted {TOTAL} events");
    assert!(rounds >= 10, "only {rounds} SIGKILLs before the producers finished: make the rounds shorter");
    let mut ids = std::collections::HashSet::new();
    let mut cursor = Some("0".to_string());
    while let Some(c) = cursor {
        let page = server.get(&format!("/v1/entries?limit=1000&cursor={c}"), &server.reader).json();
        for e in page["entries"].as_array().unwrap() {
            assert!(ids.insert(e["event"]["id"].as_str().unwrap().to_string()), "{} twice", e["event"]["id"]);
        }
        cursor = page["next"].as_str().map(str::to_string);
    }
    assert_eq!(ids.len() as u64, TOTAL, "every event in the log exactly once");
    let status = server.get("/v1/status", &server.reader).json();
    assert_eq!((status["entries"].as_u64(), status["quarantined"].as_u64()), (Some(TOTAL), Some(0)), "{status}");
    assert!(server.stop().success());
    let verified = common::verify_store(&data, &verifier_key(&data), None);
    assert!(verified.status.success(), "evidence-verify: {}", common::stderr(&verified));
}

/// The store's verifier key, from `evidence status --json`.
fn verifier_key(data: &std::path::Path) -> String {
    common::status(data)["verifier_keys"][0].as_str().unwrap().to_string()
}

/// Posts events `p, p+8, p+16, ...` (`count` of them) in requests of `per_request`, retrying
/// each request until it is answered 200. Returns the events acknowledged.
fn produce(
    p: u64,
    url: &std::sync::RwLock<String>,
    token: &str,
    count: u64,
    per_request: u64,
    deadline: Instant,
) -> u64 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut acknowledged = 0;
    let events: Vec<u64> = (0..count).map(|k| p + 8 * k).collect();
    for chunk in events.chunks(per_request as usize) {
        let body = chunk.iter().map(|&i| sample_event(i)).collect::<Vec<_>>().join("\n");
        loop {
            assert!(Instant::now() < deadline, "producer {p} gave up");
            let target = format!("{}/v1/events", url.read().unwrap());
            let sent = agent
                .post(&target)
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", NDJSON)
                .send(body.as_bytes());
            match sent {
                Ok(mut response) if response.status() == 200 => {
                    let answer: Value = response.body_mut().read_json().unwrap();
                    let items = answer["items"].as_array().unwrap();
                    assert_eq!(items.len(), chunk.len());
                    assert!(items.iter().all(|i| i["status"] == "accepted" || i["status"] == "duplicate"), "{answer}");
                    acknowledged += chunk.len() as u64;
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    acknowledged
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_then_stops_cleanly() {
    let mut server = Server::start(&[]);
    let data = server.data.clone();
    let events: Vec<String> = (0..2000).map(valid_event).collect();
    let body = events.join("\n");
    let (head, tail) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = TcpStream::connect(host(&server)).unwrap();
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: {NDJSON}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.producer,
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The stop is asked for with half the body sent; the rest follows.
    std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(tail).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..answer.len().min(300)]);
    assert!(answer.contains("\"errors\":false"), "{}", &answer[..answer.len().min(300)]);
    let status = common::wait_exit(&mut server.child, Duration::from_secs(30), "serve stops after the request");
    assert!(status.success(), "{status}");
    let s = common::status(&data);
    assert_eq!((s["entries"].as_u64(), s["checkpoint_size"].as_u64()), (Some(2000), Some(2000)), "{s}");
    // Connections after the stop are refused: the listener is closed.
    assert!(TcpStream::connect(host(&server)).is_err(), "nothing listens once stopped");
}

fn valid_event(i: u64) -> String {
    sample_event(i)
}
