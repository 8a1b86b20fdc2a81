//! The evidence API, called over HTTP on the real binary: who may call what, intake's answers,
//! and the audit answers equal to the CLI's for every example scenario.

mod common;

use common::server::Server;
use common::{evidence, stderr, stdout};
use evidence_ledger::examples::SCENARIOS;
use serde_json::Value;

const NDJSON: &str = "application/x-ndjson";

/// Every route with a request that reaches its handler, and the role it needs.
fn routes() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("GET", "/v1/status", "reader"),
        ("GET", "/v1/checkpoint", "reader"),
        ("GET", "/v1/entries", "reader"),
        ("GET", "/v1/entries/0", "reader"),
        ("GET", "/v1/proofs/inclusion?seq=0", "reader"),
        ("GET", "/v1/proofs/consistency?from=1", "reader"),
        ("GET", "/v1/quarantine", "reader"),
        ("GET", "/v1/integrity", "reader"),
        ("GET", "/v1/artifacts?kind=model", "reader"),
        ("GET", "/v1/apps", "reader"),
        ("GET", "/v1/state?app=support-assistant&env=prod", "reader"),
        ("GET", "/v1/artifacts/model/support-model/1", "reader"),
        ("GET", "/v1/training/ft-1", "reader"),
        ("GET", "/v1/requests?from=24h&violations=true", "reader"),
        ("GET", "/v1/alerts", "reader"),
        ("GET", "/metrics", "reader"),
        ("POST", "/v1/gates/training", "reader"),
        ("POST", "/v1/events?dry_run=true", "producer"),
        ("POST", "/v1/policy", "admin"),
    ]
}

fn call(server: &Server, method: &str, path: &str, token: &str) -> common::server::Answer {
    match method {
        "GET" => server.get(path, token),
        _ if path.starts_with("/v1/events") => server.post(path, token, NDJSON, SCENARIOS[0].1.as_bytes()),
        _ => server.post(path, token, "application/json", b"{}"),
    }
}

#[test]
fn every_route_refuses_a_missing_or_unknown_token_and_a_role_without_the_right() {
    let mut server = Server::start(&[]);
    let roles =
        [("reader", server.reader.clone()), ("producer", server.producer.clone()), ("admin", server.admin.clone())];
    for (method, path, needed) in routes() {
        for (token, why) in [("", "no token"), ("evl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "an unknown token")]
        {
            let a = call(&server, method, path, token);
            assert_eq!(a.status, 401, "{method} {path} with {why}: {}", a.body);
            assert_eq!(a.content_type, "application/problem+json", "{method} {path}");
            assert_eq!(a.header("www-authenticate"), Some("Bearer"));
            assert_eq!(a.json()["status"], 401);
        }
        for (role, token) in &roles {
            let a = call(&server, method, path, token);
            let allowed = *role == "admin" || role == &needed;
            if allowed {
                assert!(a.status != 401 && a.status != 403, "{role} may {method} {path}: {} {}", a.status, a.body);
            } else {
                assert_eq!(a.status, 403, "{role} may not {method} {path}: {}", a.body);
                assert!(a.json()["detail"].as_str().unwrap().contains(needed), "{}", a.body);
            }
        }
    }
    for open in ["/healthz", "/readyz"] {
        assert_eq!(server.get(open, "").status, 200, "{open} needs no token");
    }
    assert_eq!(server.get("/nowhere", &server.reader).status, 404);
    assert!(server.stop().success());
}

#[test]
fn metrics_can_be_opened_by_the_operator() {
    let mut server = Server::start(&["--metrics-open"]);
    let a = server.get("/metrics", "");
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.content_type.starts_with("text/plain"), "{}", a.content_type);
    assert_eq!(server.get("/v1/status", "").status, 401, "only /metrics opens");
    assert!(server.stop().success());
}

#[test]
fn intake_answers_each_event_in_order_after_the_flush_and_quarantines_the_rejected() {
    let mut server = Server::start(&[]);
    let scenario = SCENARIOS.iter().find(|(n, _)| *n == "gate-failed").unwrap().1;
    let lines: Vec<&str> = scenario.lines().collect();
    let mut body = lines[..3].join("\n");
    body.push_str("\n{\"id\": 1}\n\n");
    let a = server.post("/v1/events", &server.producer, NDJSON, body.as_bytes());
    assert_eq!(a.status, 200, "{}", a.body);
    let answer = a.json();
    assert_eq!(answer["errors"], true);
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "blank lines are not events: {answer}");
    for (i, item) in items[..3].iter().enumerate() {
        assert_eq!(item["status"], "accepted");
        assert_eq!(item["seq"], i as u64);
    }
    assert_eq!(items[3]["status"], "rejected");
    assert!(items[3]["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == "/id"), "{}", items[3]);

    // The same events again, as a CloudEvents batch: duplicates with their first entries.
    let batch = format!("[{}]", lines[..3].join(","));
    let again = server.post("/v1/events", &server.producer, "application/cloudevents-batch+json", batch.as_bytes());
    assert_eq!(again.status, 200, "{}", again.body);
    let again = again.json();
    assert_eq!(again["errors"], false);
    for (i, item) in again["items"].as_array().unwrap().iter().enumerate() {
        assert_eq!((item["status"].as_str(), item["seq"].as_u64()), (Some("duplicate"), Some(i as u64)));
    }

    // One event alone: accepted, or a 400 problem naming every pointer.
    let one = server.post("/v1/events", &server.producer, "application/cloudevents+json", lines[3].as_bytes());
    assert_eq!(one.json()["items"][0]["seq"], 3, "{}", one.body);
    let bad = server.post("/v1/events", &server.producer, "application/cloudevents+json", b"{\"id\":\"x\"}");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.content_type, "application/problem+json");
    assert!(bad.json()["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == "/specversion"), "{}", bad.body);

    // A dry run stores nothing.
    let dry = server.post("/v1/events?dry_run=true", &server.producer, NDJSON, lines[4].as_bytes());
    assert_eq!(dry.json()["items"][0]["status"], "valid", "{}", dry.body);

    let quarantine = server.get("/v1/quarantine", &server.reader).json();
    let records = quarantine["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{quarantine}");
    assert!(records[0]["origin"].as_str().unwrap().starts_with("http:ci@127.0.0.1:"), "{}", records[0]);
    let status = server.get("/v1/status", &server.reader).json();
    assert_eq!((status["entries"].as_u64(), status["quarantined"].as_u64()), (Some(4), Some(2)), "{status}");
    let metrics = server.get("/metrics", &server.reader).body;
    for line in [
        r#"evidence_events_total{source="http",outcome="accepted"} 4"#,
        r#"evidence_events_total{source="http",outcome="rejected"} 2"#,
        r#"evidence_events_total{source="http",outcome="duplicate"} 3"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(server.stop().success());
}

/// The questions a scenario's events make sense to ask: question 1 at every release's time
/// and after all of them, 2 for every artifact named, 4 for every training job.
/// Three strings: app, env and time, or kind, name and version.
type Triple = (String, String, String);

fn questions(scenario: &str) -> (Vec<Triple>, Vec<Triple>, Vec<String>) {
    let (mut states, mut artifacts, mut jobs) = (Vec::new(), Vec::new(), Vec::new());
    for line in scenario.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let data = &e["data"];
        let time = e["time"].as_str().unwrap().to_string();
        match e["type"].as_str().unwrap() {
            "pipeline.deploy" => {
                let (app, env) = (data["app"].as_str().unwrap(), data["target_env"].as_str().unwrap());
                states.push((app.into(), env.into(), time));
                states.push((app.into(), env.into(), "2030-01-01T00:00:00Z".into()));
            }
            "training.start" => jobs.push(data["job_id"].as_str().unwrap().to_string()),
            _ => {}
        }
        for a in std::iter::once(&data["artifact"]).chain(data["artifacts"].as_array().into_iter().flatten()) {
            if let (Some(k), Some(n), Some(v)) = (a["kind"].as_str(), a["name"].as_str(), a["version"].as_str()) {
                artifacts.push((k.into(), n.into(), v.into()));
            }
        }
    }
    states.sort();
    states.dedup();
    artifacts.sort();
    artifacts.dedup();
    jobs.sort();
    jobs.dedup();
    (states, artifacts, jobs)
}

/// Question 3's range in the scenario comparisons: every example's events are in it.
const FROM: &str = "2000-01-01T00:00:00Z";
const TO: &str = "2030-01-01T00:00:00Z";
const RANGE: &str = "from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z";
/// Question 3's filters in the scenario comparisons.
const REQUEST_FILTERS: [&str; 4] = ["", "&env=prod", "&data_class=customer-pii&provider=openai", "&env=staging"];

fn cli(data: &std::path::Path, args: &[&str]) -> Option<Value> {
    let out = evidence().arg("--data-dir").arg(data).args(args).output().unwrap();
    out.status.success().then(|| serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}")))
}

#[test]
fn the_audit_answers_of_the_api_equal_the_clis_for_every_example_scenario() {
    let mut compared = 0;
    for (name, scenario) in SCENARIOS {
        let mut server = Server::start(&[]);
        let a = server.post("/v1/events", &server.producer, NDJSON, scenario.as_bytes());
        assert_eq!(a.status, 200, "{name}: {}", a.body);
        let (states, artifacts, jobs) = questions(scenario);
        let mut api = Vec::new();
        for (app, env, at) in &states {
            let a = server.get(&format!("/v1/state?app={app}&env={env}&at={at}"), &server.reader);
            api.push((a.status == 200).then(|| a.json()));
        }
        for (kind, n, v) in &artifacts {
            let a = server.get(&format!("/v1/artifacts/{kind}/{n}/{v}"), &server.reader);
            api.push((a.status == 200).then(|| a.json()));
        }
        for job in &jobs {
            let a = server.get(&format!("/v1/training/{job}"), &server.reader);
            api.push((a.status == 200).then(|| a.json()));
        }
        let alerts = server.get("/v1/alerts?limit=1000", &server.reader).json();
        let mut requests = Vec::new();
        for filter in REQUEST_FILTERS {
            let a = server.get(&format!("/v1/requests?{RANGE}&violations=true&limit=1000{filter}"), &server.reader);
            assert_eq!(a.status, 200, "{name}: {}", a.body);
            requests.push(a.json());
        }
        // A page at a time, the violations are the same list.
        let mut paged = Vec::new();
        let mut cursor = String::new();
        for _ in 0..1000 {
            let page = server.get(&format!("/v1/requests?{RANGE}&violations=true&limit=1{cursor}"), &server.reader);
            let page = page.json();
            paged.extend(page["violations"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(&paged, requests[0]["violations"].as_array().unwrap(), "{name}: violations page by page");
        let data = server.data.clone();
        assert!(server.stop().success(), "{name}: serve stops cleanly");

        let mut want = Vec::new();
        for (app, env, at) in &states {
            want.push(cli(&data, &["query", "state", "--app", app, "--env", env, "--at", at, "--json"]));
        }
        for (kind, n, v) in &artifacts {
            want.push(cli(&data, &["query", "artifact", &format!("{kind}/{n}@{v}"), "--json"]));
        }
        for job in &jobs {
            want.push(cli(&data, &["query", "training", "--job", job, "--json"]));
        }
        assert_eq!(api, want, "{name}: questions 1, 2 and 4");
        for (filter, answer) in REQUEST_FILTERS.iter().zip(&requests) {
            let mut args = vec!["query", "requests", "--from", FROM, "--to", TO, "--violations", "--json"];
            let pairs: Vec<&str> = filter.split(['&', '=']).filter(|p| !p.is_empty()).collect();
            let flags: Vec<String> = pairs.chunks(2).map(|kv| format!("--{}", kv[0].replace('_', "-"))).collect();
            for (flag, kv) in flags.iter().zip(pairs.chunks(2)) {
                args.extend([flag.as_str(), kv[1]]);
            }
            assert_eq!(Some(answer.clone()), cli(&data, &args), "{name}: question 3, {filter:?}");
        }
        let breaches = requests[0]["breaches"].as_u64().unwrap();
        assert_eq!(breaches > 0, name == "routing-unapproved", "{name}: {}", requests[0]);
        let out = evidence().arg("--data-dir").arg(&data).args(["alerts", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let cli_alerts: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(alerts["alerts"].as_array().unwrap(), &cli_alerts, "{name}: question 5");
        assert!(want.iter().any(Option::is_some) || !cli_alerts.is_empty(), "{name}: some question has an answer");
        compared += want.len() + cli_alerts.len() + requests.len();
    }
    println!("{compared} answers compared");
    assert!(compared > 40, "{compared} answers compared");
}

#[test]
fn an_independent_python_client_posts_the_scenarios_and_reads_answers_equal_to_the_clis() {
    let python = common::test_python();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/api_client.py");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    for (name, scenario) in SCENARIOS {
        let mut server = Server::start(&[]);
        let file = examples.join(format!("{name}.ndjson"));
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args([&server.url, &server.producer, &server.reader])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: the Python client failed: {}", stderr(&out));
        let read: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(read["openapi"], "valid");
        let paths: Vec<&str> = read["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        for route in ROUTES {
            assert!(paths.contains(route), "{route} in the OpenAPI document: {paths:?}");
        }
        let lines = scenario.lines().filter(|l| !l.trim().is_empty()).count();
        assert_eq!(read["intake"].as_array().unwrap().len(), lines, "{name}");
        assert!(read["intake"].as_array().unwrap().iter().all(|s| s == "accepted"), "{name}: {}", read["intake"]);
        assert_eq!(read["status"]["entries"].as_u64(), Some(lines as u64), "{name}");
        let data = server.data.clone();
        assert!(server.stop().success());
        let out = evidence().arg("--data-dir").arg(&data).args(["alerts", "--json"]).output().unwrap();
        let cli_alerts: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(read["alerts"].as_array().unwrap(), &cli_alerts, "{name}: alerts read page by page in Python");
    }
}

/// Every route of the API, as the OpenAPI document names it.
const ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/v1/events",
    "/v1/status",
    "/v1/checkpoint",
    "/v1/entries",
    "/v1/entries/{seq}",
    "/v1/proofs/inclusion",
    "/v1/proofs/consistency",
    "/v1/quarantine",
    "/v1/integrity",
    "/v1/artifacts",
    "/v1/apps",
    "/v1/state",
    "/v1/artifacts/{kind}/{name}/{version}",
    "/v1/training/{job}",
    "/v1/requests",
    "/v1/alerts",
    "/v1/gates/training",
    "/v1/policy",
];

/// Runs `evidence --server URL ARGS` with `token`.
fn remote(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    evidence().args(["--server", &server.url]).args(args).env("EVIDENCE_TOKEN", token).output().unwrap()
}

#[test]
fn the_cli_asks_a_running_service_and_prints_what_it_prints_locally() {
    let scenario = SCENARIOS.iter().find(|(n, _)| *n == "seed-support-assistant").unwrap().1;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), scenario).unwrap();
    let path = file.path().to_str().unwrap();
    let mut server = Server::start(&[]);

    // While the service holds the store, a local command says how to reach it.
    let local = evidence().arg("--data-dir").arg(&server.data).args(["status"]).output().unwrap();
    assert!(!local.status.success());
    let hint = stderr(&local);
    assert!(hint.contains(&format!("process {}", server.child.id())) && hint.contains(&server.url), "{hint}");
    assert!(hint.contains("--server"), "{hint}");

    let ingest = remote(&server, &server.producer, &["ingest", "--file", path]);
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    let lines = scenario.lines().count();
    assert_eq!(stdout(&ingest).trim(), format!("accepted {lines}, duplicate 0, quarantined 0"));
    let again = remote(&server, &server.producer, &["ingest", "--file", path]);
    assert_eq!(stdout(&again).trim(), format!("accepted 0, duplicate {lines}, quarantined 0"));
    let refused = remote(&server, &server.reader, &["ingest", "--file", path]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("403") && stderr(&refused).contains("needs producer"), "{}", stderr(&refused));

    let questions: Vec<Vec<&str>> = vec![
        vec!["alerts", "--json"],
        vec!["alerts"],
        vec!["alerts", "--status", "open", "--rule", "feedback.unvetted"],
        vec!["query", "state", "--app", "support-assistant", "--env", "prod", "--at", "2026-04-20T00:00:00Z", "--json"],
        vec!["query", "state", "--app", "support-assistant", "--env", "prod", "--at", "2026-04-20T00:00:00Z"],
        vec!["query", "artifact", "model/support-assistant-base@3.1.0", "--json"],
        vec!["query", "training", "--job", "ft-support-2026-04-10"],
        vec!["query", "artifacts"],
        vec!["query", "artifacts", "--kind", "model", "--name", "support", "--json"],
        vec!["query", "apps"],
        vec!["query", "apps", "--json"],
        vec!["query", "requests", "--from", FROM, "--to", TO, "--violations"],
        vec!["query", "requests", "--from", FROM, "--to", TO, "--env", "prod", "--json"],
        vec![
            "gate",
            "training",
            "--job",
            "ft-x",
            "--base",
            "model/support-assistant-base@3.1.0",
            "--batches",
            "fb-support-w14",
            "--json",
        ],
    ];
    let answers: Vec<(Option<i32>, String)> = questions
        .iter()
        .map(|args| {
            let out = remote(&server, &server.reader, args);
            (out.status.code(), stdout(&out))
        })
        .collect();
    assert!(server.stop().success());
    let listed = &answers[questions.iter().position(|q| q == &vec!["query", "artifacts"]).unwrap()].1;
    assert!(listed.contains("model/support-assistant-base@3.1.0") && listed.contains("registered (entry"), "{listed}");
    let apps = &answers[questions.iter().position(|q| q == &vec!["query", "apps"]).unwrap()].1;
    assert!(
        apps.contains("support-assistant in prod:") && apps.contains("prompt/support-assistant-system@8"),
        "{apps}"
    );
    for (args, (code, text)) in questions.iter().zip(answers) {
        let local = evidence().arg("--data-dir").arg(&server.data).args(args).output().unwrap();
        assert_eq!((code, text), (local.status.code(), stdout(&local)), "evidence {args:?}, remote and local");
    }
}

#[test]
fn integrity_reports_the_self_audit_and_whether_the_log_extends_a_saved_checkpoint() {
    let mut server = Server::start(&["--checkpoint-every", "10"]);
    let scenario = SCENARIOS.iter().find(|(n, _)| *n == "seed-support-assistant").unwrap().1;
    let lines: Vec<&str> = scenario.lines().collect();
    let post = |part: &[&str]| {
        let a = server.post("/v1/events", &server.producer, NDJSON, part.join("\n").as_bytes());
        assert_eq!(a.status, 200, "{}", a.body);
    };
    post(&lines[..20]);
    let integrity = |query: &str| server.get(&format!("/v1/integrity{query}"), &server.reader).json();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let first = loop {
        let i = integrity("");
        if i["checkpoint_size"].as_u64() == Some(20) && i["self_audit"]["ok"] == true {
            break i;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint of 20 and self-audit: {i}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let saved = first["checkpoint"].as_str().unwrap().to_string();
    post(&lines[20..]);
    let grown = loop {
        let i = integrity(&format!("?checkpoint={}", urlencode(&saved)));
        if i["checkpoint_size"].as_u64() == Some(lines.len() as u64) {
            break i;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint of everything: {i}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let extension = &grown["extension"];
    assert_eq!(extension["extends"], "yes", "{grown}");
    assert_eq!(
        (extension["proof"]["size1"].as_u64(), extension["proof"]["size2"].as_u64()),
        (Some(20), Some(lines.len() as u64))
    );
    assert_eq!(extension["proof"]["checkpoint1"], saved.as_str());
    // A checkpoint whose root was changed is not extended, in a sentence.
    let forged = saved.replacen(&saved.lines().nth(2).unwrap()[..4], "AAAA", 1);
    let no = integrity(&format!("?checkpoint={}", urlencode(&forged)));
    assert_eq!(no["extension"]["extends"], "no", "{no}");
    assert!(no["extension"]["reason"].as_str().unwrap().contains("not signed"), "{no}");
    assert!(server.stop().success());
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[test]
fn with_a_certificate_the_api_speaks_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    // A private CA and a server certificate it signed, as an operator would have.
    let (ca, cert, key) = common::private_ca(dir.path());
    let mut server = Server::start(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let curl = |url: &str, extra: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&ca)
            .args(extra)
            .arg(url)
            .output()
            .unwrap()
    };
    let auth = format!("Authorization: Bearer {}", server.reader);
    let status = curl(&format!("{}/v1/status", server.url), &["-H", &auth]);
    assert!(status.status.success(), "{}", stderr(&status));
    let body: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(body["entries"], 0, "{body}");
    // Plain HTTP on the TLS port gets no answer; a client that does not trust the certificate
    // refuses it.
    let plain = curl(&server.url.replace("https://", "http://"), &[]);
    assert!(!plain.status.success() || !stdout(&plain).contains("entries"), "{}", stdout(&plain));
    let untrusted = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("{}/healthz", server.url)])
        .output()
        .unwrap();
    assert!(!untrusted.status.success(), "a self-signed certificate is not trusted by default");
    // The CLI as a client: over TLS with the certificate trusted through EVIDENCE_CA_CERT, and
    // refused without it (the system's trust store does not hold it).
    let cli = |ca: Option<&std::path::Path>| {
        let mut c = evidence();
        c.args(["--server", &server.url, "status", "--json"]).env("EVIDENCE_TOKEN", &server.reader);
        match ca {
            Some(ca) => c.env("EVIDENCE_CA_CERT", ca),
            None => c.env_remove("EVIDENCE_CA_CERT"),
        };
        c.output().unwrap()
    };
    let trusted = cli(Some(&ca));
    assert!(trusted.status.success(), "{}", stderr(&trusted));
    let body: Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert_eq!(body["entries"], 0, "{body}");
    let refused = cli(None);
    assert!(!refused.status.success() && stderr(&refused).contains("Cannot reach"), "{}", stderr(&refused));
    assert!(server.stop().success());
}
