//! The witness (C2SP tlog-witness add-checkpoint): it cosigns a checkpoint only when it is
//! signed by the log and extends the latest one it cosigned, and refuses everything else with
//! the spec's status: unknown log 404, untrusted signature 403, old size mismatch 409 (with
//! the latest size), a fork 409, a bad consistency proof 422, a malformed request 400. What it
//! cosigned survives a restart.

use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::witness::{Refusal, Request, Witness};
use evidence_ledger::{CheckpointPolicy, Log, MemStorage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;
use evidence_verifier::cosignature::CosignerKey;
use evidence_verifier::note::Note;
use evidence_verifier::SignerKey;

const ORIGIN: &str = "witness.test/log";

/// A log in memory signing as `ORIGIN` with the key from `seed`.
fn log(seed: u8) -> Log<MemStorage> {
    let signer = SignerKey::from_seed(ORIGIN, [seed; 32]).unwrap();
    Log::open(MemStorage::default(), vec![signer], CheckpointPolicy::new(Some(1_000_000), Some(100_000))).unwrap()
}

/// Appends events `from..to` (entry `i` is sample event `i + salt`) and cuts a checkpoint;
/// returns its note.
fn grow(log: &mut Log<MemStorage>, from: u64, to: u64, salt: u64) -> Vec<u8> {
    let validator = Validator::default();
    let records = (from..to)
        .map(|i| Record {
            origin: Origin::File { path: "w".into(), line: i + 1 },
            verdict: Verdict::Valid(Box::new(validator.validate(sample_event(i + salt).as_bytes()).unwrap())),
        })
        .collect();
    log.append(&Batch { records, positions: Vec::new() }).unwrap();
    log.checkpoint_now().unwrap().unwrap().into_bytes()
}

fn request(log: &Log<MemStorage>, old: u64, note: &[u8]) -> Vec<u8> {
    let proof = if old == 0 { Vec::new() } else { log.consistency_proof(old, log.size()).unwrap() };
    Request { old, proof, checkpoint: note.to_vec() }.encode()
}

#[test]
fn a_witness_cosigns_only_checkpoints_that_extend_what_it_cosigned() {
    let dir = tempfile::tempdir().unwrap();
    let key = CosignerKey::from_seed("witness.test/w1", [7; 32]).unwrap();
    let trusted = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap().verifier();
    let witness =
        Witness::open(CosignerKey::parse(&key.to_key_string()).unwrap(), vec![trusted.clone()], dir.path()).unwrap();
    let mut a = log(1);
    let note10 = grow(&mut a, 0, 10, 0);
    // The first checkpoint: old size 0, no proof. The cosignature verifies with the witness key.
    let line = witness.add_checkpoint(&request(&a, 0, &note10), 1_780_000_000).unwrap();
    let mut cosigned = String::from_utf8(note10.clone()).unwrap();
    cosigned.push_str(&line);
    let note = Note::parse(cosigned.as_bytes()).unwrap();
    assert_eq!(key.witness_key().cosigned(&note).unwrap(), Some(1_780_000_000));
    // It extends: 10 -> 20 with a consistency proof.
    let note20 = grow(&mut a, 10, 20, 0);
    witness.add_checkpoint(&request(&a, 10, &note20), 1_780_000_100).unwrap();
    assert_eq!(witness.latest(ORIGIN).unwrap().map(|(s, _)| s), Some(20));
    // Rollback: the checkpoint of size 10 again, from old size 10: the witness is at 20.
    let refused = witness.add_checkpoint(&Request { old: 10, proof: vec![], checkpoint: note10.clone() }.encode(), 1);
    assert_eq!(refused, Err(Refusal::OldSizeMismatch { old: 10, latest: 20 }));
    assert_eq!(refused.unwrap_err().status(), 409);
    // An old size beyond the checkpoint's: 400.
    let refused = witness.add_checkpoint(&Request { old: 20, proof: vec![], checkpoint: note10.clone() }.encode(), 1);
    assert_eq!(refused.unwrap_err().status(), 400);
    // A fork: the same key signs another log of 20 entries. Same size, another root: 409.
    let mut b = log(1);
    let fork20 = grow(&mut b, 0, 20, 1000);
    let refused = witness.add_checkpoint(&Request { old: 20, proof: vec![], checkpoint: fork20 }.encode(), 1);
    assert_eq!(refused.unwrap_err(), Refusal::Fork { size: 20 });
    // The fork grown to 30, with its own proof from 20: the proof does not lead from the root
    // the witness cosigned: 422.
    let fork30 = grow(&mut b, 20, 30, 1000);
    let refused = witness.add_checkpoint(&request(&b, 20, &fork30), 1).unwrap_err();
    assert!(matches!(refused, Refusal::BadProof { old: 20, size: 30, .. }), "{refused:?}");
    assert_eq!(refused.status(), 422);
    // A proof with a hash changed: 422.
    let note30 = grow(&mut a, 20, 30, 0);
    let mut proof = a.consistency_proof(20, 30).unwrap();
    proof[0][0] ^= 1;
    let refused = witness.add_checkpoint(&Request { old: 20, proof, checkpoint: note30.clone() }.encode(), 1);
    assert_eq!(refused.unwrap_err().status(), 422);
    // Signed by a key the witness does not trust for the log: 403. An unknown log: 404.
    let mut c = log(2);
    let untrusted = grow(&mut c, 0, 30, 0);
    assert_eq!(witness.add_checkpoint(&request(&c, 20, &untrusted), 1).unwrap_err().status(), 403);
    let other = SignerKey::from_seed("witness.test/other", [3; 32]).unwrap();
    let mut d = Log::open(MemStorage::default(), vec![other], CheckpointPolicy::default()).unwrap();
    let unknown = grow(&mut d, 0, 5, 0);
    assert_eq!(witness.add_checkpoint(&request(&d, 0, &unknown), 1).unwrap_err().status(), 404);
    // Malformed: 400.
    assert_eq!(witness.add_checkpoint(b"old 01\n\nx", 1).unwrap_err().status(), 400);
    assert_eq!(witness.add_checkpoint(b"no empty line", 1).unwrap_err().status(), 400);
    // The latest cosigned survives a restart: the right extension goes on from 20.
    drop(witness);
    let witness = Witness::open(key, vec![trusted], dir.path()).unwrap();
    let refused = witness.add_checkpoint(&request(&a, 0, &note30), 1).unwrap_err();
    assert_eq!(refused, Refusal::OldSizeMismatch { old: 0, latest: 20 });
    witness.add_checkpoint(&request(&a, 20, &note30), 1_780_000_200).unwrap();
    assert_eq!(witness.latest(ORIGIN).unwrap().map(|(s, _)| s), Some(30));
}

mod common;

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{evidence, stderr, stdout};

/// `evidence witness serve` on a free port: the child and its URL.
fn witness_serve(key: &Path, logs: &[String], state: &Path) -> (Child, String) {
    witness_serve_on(key, logs, state, 0)
}

/// `evidence witness serve` on loopback port `port` (0: a free one): the child and its URL.
fn witness_serve_on(key: &Path, logs: &[String], state: &Path, port: u16) -> (Child, String) {
    let mut cmd = evidence();
    let listen = format!("127.0.0.1:{port}");
    cmd.args(["witness", "serve", "--listen", &listen, "--key"]).arg(key).arg("--state").arg(state);
    for l in logs {
        cmd.args(["--log", l]);
    }
    let mut child = cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the witness printed no address").unwrap();
        if let Some(at) = line.find("url=") {
            break line[at + 4..].split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

/// POSTs `body` to the witness's add-checkpoint: (status, content type, body).
fn submit(url: &str, body: &[u8]) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut answer = agent.post(format!("{url}/add-checkpoint")).send(body).unwrap();
    let kind = answer.headers().get("content-type").map_or(String::new(), |v| v.to_str().unwrap().to_string());
    (answer.status().as_u16(), kind, answer.body_mut().read_to_string().unwrap())
}

/// Runs `evidence --data-dir DATA ARGS`, which must succeed; its standard output.
fn run(data: &Path, args: &[&str]) -> String {
    let out = evidence().arg("--data-dir").arg(data).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Ingests sample events `from..to` into the store at `data` (a checkpoint is cut at the end).
fn ingest(data: &Path, from: u64, to: u64, salt: u64) {
    let file = data.with_extension(format!("{from}.ndjson"));
    let lines: Vec<String> = (from..to).map(|i| sample_event(i + salt)).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    run(data, &["ingest", "--file", file.to_str().unwrap()]);
}

#[test]
fn the_witness_service_answers_add_checkpoint_with_the_specs_codes_and_remembers_across_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("witness.key");
    let witness_key =
        run(tmp.path(), &["witness", "keygen", "--name", "witness.test/w1", "--key", key_file.to_str().unwrap()]);
    let witness_key = witness_key.trim().to_string();
    let data = tmp.path().join("log");
    let log_key = common::init(&data, "witness.test/served");
    ingest(&data, 0, 7, 0);
    ingest(&data, 7, 20, 0);
    let c: serde_json::Value = serde_json::from_str(&run(&data, &["consistency", "--from", "7", "--json"])).unwrap();
    let (note7, note20) = (c["checkpoint1"].as_str().unwrap(), c["checkpoint2"].as_str().unwrap());
    let proof: Vec<evidence_verifier::Hash> =
        c["proof"].as_array().unwrap().iter().map(|h| base64_decode(h.as_str().unwrap())).collect();
    let state = tmp.path().join("state");
    let logs = vec![format!("witness.test/served={log_key}")];
    let (mut child, url) = witness_serve(&key_file, &logs, &state);
    let first = Request { old: 0, proof: vec![], checkpoint: note7.as_bytes().to_vec() }.encode();
    let (status, _, line) = submit(&url, &first);
    assert_eq!(status, 200, "{line}");
    assert!(line.starts_with("\u{2014} witness.test/w1 ") && line.ends_with('\n'), "{line:?}");
    // The cosigned checkpoint, in a tlog-proof of entry 3, passes the independent checker.
    let out = run(&data, &["proof", "--seq", "3", "--size", "7", "--tlog-proof"]);
    let leaf: serde_json::Value =
        serde_json::from_str(&run(&data, &["proof", "--seq", "3", "--size", "7", "--json"])).unwrap();
    let mut proof3 = evidence_verifier::tlog_proof::TlogProof::parse(out.as_bytes()).unwrap();
    proof3.checkpoint.extend_from_slice(line.as_bytes());
    let file = tmp.path().join("3.tlog-proof");
    std::fs::write(&file, proof3.encode()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/tlog_check.py");
    let checked = std::process::Command::new(common::test_python())
        .arg(script)
        .args(["--witness", &witness_key, &log_key, leaf["leaf_hash"].as_str().unwrap()])
        .arg(&file)
        .output()
        .unwrap();
    let checked: serde_json::Value =
        serde_json::from_slice(&checked.stdout).unwrap_or_else(|_| panic!("{}", stderr(&checked)));
    assert_eq!(checked["ok"], true, "{checked}");
    // Extending with the consistency proof: 200. A stale old size: 409 with the latest size.
    let next = Request { old: 7, proof: proof.clone(), checkpoint: note20.as_bytes().to_vec() }.encode();
    assert_eq!(submit(&url, &next).0, 200);
    assert_eq!(submit(&url, &next), (409, "text/x.tlog.size".to_string(), "20\n".to_string()));
    // A log it does not know: 404. Malformed: 400.
    let other = tmp.path().join("other");
    common::init(&other, "witness.test/other");
    ingest(&other, 0, 3, 0);
    let other_note = run(&other, &["checkpoint"]);
    let unknown = Request { old: 0, proof: vec![], checkpoint: other_note.into_bytes() }.encode();
    assert_eq!(submit(&url, &unknown).0, 404);
    assert_eq!(submit(&url, b"old x\n\n").0, 400);
    // SIGKILLed and started again: it remembers 20.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, url) = witness_serve(&key_file, &logs, &state);
    assert_eq!(submit(&url, &first), (409, "text/x.tlog.size".to_string(), "20\n".to_string()));
    let _ = child.kill();
    let _ = child.wait();
    // A fresh witness: the 7 -> 20 proof with a hash changed is refused 422.
    let (mut child, url) = witness_serve(&key_file, &logs, &tmp.path().join("state2"));
    assert_eq!(submit(&url, &first).0, 200);
    let mut bad = proof;
    bad[0][0] ^= 1;
    let bad = Request { old: 7, proof: bad, checkpoint: note20.as_bytes().to_vec() }.encode();
    assert_eq!(submit(&url, &bad).0, 422);
    let _ = child.kill();
    let _ = child.wait();
}

fn base64_decode(text: &str) -> evidence_verifier::Hash {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap().try_into().unwrap()
}

/// What a submitter got: the sizes cosigned, and each 409 as (old size sent, latest size).
type Submitted = (Vec<u64>, Vec<(u64, u64)>);

/// One submitter: a log in memory that grows and submits each new checkpoint, following the
/// witness's 409s; what it got cosigned (sizes), and the largest size the witness reported.
fn submitter(
    mut log: Log<MemStorage>,
    salt: u64,
    url: std::sync::Arc<std::sync::Mutex<String>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Submitted> {
    std::thread::spawn(move || {
        let (mut cosigned, mut conflicts) = (Vec::new(), Vec::new());
        let mut old = 0u64;
        let mut note = grow(&mut log, 0, 3, salt);
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let proof =
                if old == 0 || old > log.size() { Vec::new() } else { log.consistency_proof(old, log.size()).unwrap() };
            let body = Request { old, proof, checkpoint: note.clone() }.encode();
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            let target = url.lock().unwrap().clone();
            let Ok(mut answer) = agent.post(format!("{target}/add-checkpoint")).send(&body[..]) else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let text = answer.body_mut().read_to_string().unwrap_or_default();
            match answer.status().as_u16() {
                200 => {
                    cosigned.push(log.size());
                    old = log.size();
                    let size = log.size();
                    note = grow(&mut log, size, size + 1 + salt % 3, salt);
                }
                409 if text.trim().parse::<u64>().is_ok() => {
                    let latest: u64 = text.trim().parse().unwrap();
                    conflicts.push((old, latest));
                    old = latest;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        (cosigned, conflicts)
    })
}

#[test]
fn a_witness_killed_at_random_moments_never_cosigns_two_inconsistent_checkpoints_of_a_log() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("witness.key");
    run(tmp.path(), &["witness", "keygen", "--name", "witness.test/w1", "--key", key_file.to_str().unwrap()]);
    // Two ledgers: an honest one, and a log whose key signs two diverging histories (a fork),
    // both submitted.
    let key = |origin: &str, seed: u8| SignerKey::from_seed(origin, [seed; 32]).unwrap();
    let open = |k: SignerKey| {
        Log::open(MemStorage::default(), vec![k], CheckpointPolicy::new(Some(1_000_000), Some(100_000))).unwrap()
    };
    let logs = vec![
        format!("witness.test/a={}", key("witness.test/a", 1).verifier()),
        format!("witness.test/b={}", key("witness.test/b", 2).verifier()),
    ];
    let state = tmp.path().join("state");
    let (mut child, first) = witness_serve(&key_file, &logs, &state);
    let url = Arc::new(Mutex::new(first));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = vec![
        submitter(open(key("witness.test/a", 1)), 0, url.clone(), stop.clone()),
        submitter(open(key("witness.test/b", 2)), 1000, url.clone(), stop.clone()),
        submitter(open(key("witness.test/b", 2)), 2000, url.clone(), stop.clone()),
    ];
    let mut rng = common::Rng(0x0123_4567_89ab_cdef);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(50 + rng.below(250) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        let (c, u) = witness_serve(&key_file, &logs, &state);
        child = c;
        *url.lock().unwrap() = u;
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let results: Vec<Submitted> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let _ = child.kill();
    let _ = child.wait();
    let (honest, fork1, fork2) = (&results[0], &results[1], &results[2]);
    eprintln!(
        "cosigned: honest {} checkpoints (up to {:?}), fork one {}, fork two {}",
        honest.0.len(),
        honest.0.last(),
        fork1.0.len(),
        fork2.0.len()
    );
    assert!(honest.0.len() >= 10, "the honest log got {} cosignatures across 10 kills", honest.0.len());
    // The forked log: only one of its two histories was ever cosigned.
    assert!(
        fork1.0.is_empty() || fork2.0.is_empty(),
        "both histories of one log were cosigned: {:?} and {:?}",
        fork1.0,
        fork2.0
    );
    assert!(!fork1.0.is_empty() || !fork2.0.is_empty(), "neither history of the forked log was cosigned");
    // Nothing cosigned was forgotten across a kill: no 409 ever reported a size below one
    // the witness had cosigned for that submitter's log before.
    for (name, (cosigned, conflicts)) in [("honest", honest), ("fork one", fork1), ("fork two", fork2)] {
        for &(old, latest) in conflicts {
            let acked = cosigned.iter().copied().filter(|&s| s <= old).max().unwrap_or(0);
            assert!(latest >= acked, "{name}: the witness went back to {latest} after cosigning {acked}");
        }
    }
}

/// Polls `/v1/checkpoint` (at most `limit`) until `done` says yes; the note then.
fn checkpoint_when(server: &common::server::Server, limit: Duration, done: impl Fn(&Note) -> bool) -> Note {
    let start = std::time::Instant::now();
    loop {
        let answer = server.get("/v1/checkpoint", &server.reader);
        if answer.status == 200 {
            let note = Note::parse(answer.body.as_bytes()).unwrap();
            if done(&note) {
                return note;
            }
        }
        assert!(start.elapsed() < limit, "the checkpoint never got there: {}", answer.body);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serve_submits_each_checkpoint_to_its_witnesses_keeps_their_cosignatures_and_waits_for_none() {
    use evidence_verifier::checkpoint::Checkpoint;
    use evidence_verifier::cosignature::WitnessKey;
    let tmp = tempfile::tempdir().unwrap();
    let keygen = |name: &str| {
        let file = tmp.path().join(format!("{}.key", name.replace('/', "_")));
        let key = run(tmp.path(), &["witness", "keygen", "--name", name, "--key", file.to_str().unwrap()]);
        (file, key.trim().to_string())
    };
    let ((file1, key1), (file2, key2)) = (keygen("witness.test/one"), keygen("witness.test/two"));
    let data = tmp.path().join("log");
    let tokens = common::server::init_with_tokens_as(&data, "witness.test/serving");
    let log_key = common::status(&data)["verifier_keys"][0].as_str().unwrap().to_string();
    let logs = vec![format!("witness.test/serving={log_key}")];
    // Witness one already cosigned the log at 7 entries; the service does not know that yet,
    // so its first submission is answered 409 with 7 and it submits again from there.
    ingest(&data, 0, 7, 0);
    let (mut one, url1) = witness_serve(&file1, &logs, &tmp.path().join("state1"));
    let note7 = run(&data, &["checkpoint"]);
    let first = Request { old: 0, proof: vec![], checkpoint: note7.into_bytes() }.encode();
    assert_eq!(submit(&url1, &first).0, 200);
    // Witness two is down: nothing listens on its port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url2 = format!("http://127.0.0.1:{port}");
    let witnesses = [format!("{url1}={key1}"), format!("{url2}={key2}")];
    let args = ["--witness", &witnesses[0], "--witness", &witnesses[1], "--checkpoint-interval-secs", "1"];
    let mut server = common::server::Server::on(&data, &args, tokens.clone());
    let events: Vec<String> = (7..57).map(sample_event).collect();
    let posted = server.post("/v1/events", &tokens.1, "application/x-ndjson", events.join("\n").as_bytes());
    assert_eq!(posted.status, 200, "{}", posted.body);
    let (w1, w2) = (WitnessKey::parse(&key1).unwrap(), WitnessKey::parse(&key2).unwrap());
    let size = |n: &Note| Checkpoint::parse(&n.text).unwrap().size;
    // Checkpoints are cut and cosigned by witness one while witness two is down.
    let note =
        checkpoint_when(&server, Duration::from_secs(60), |n| size(n) == 57 && w1.cosigned(n).unwrap().is_some());
    assert_eq!(w2.cosigned(&note).unwrap(), None);
    note.verify(&[evidence_verifier::VerifierKey::parse(&log_key).unwrap()]).unwrap();
    let down = server.log.try_iter().find(|l| l.contains("A witness did not cosign") && l.contains("witness.test/two"));
    assert!(down.is_some(), "the failing witness is logged");
    // A bundle carries the cosignature: it verifies requiring witness one, not two.
    let bundle = tmp.path().join("b.tar.gz");
    let out = evidence()
        .args(["--server", &server.url, "export", "--out", bundle.to_str().unwrap()])
        .args(["--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z"])
        .env("EVIDENCE_TOKEN", &tokens.0)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let verify = |witness: &str| {
        let out = std::process::Command::new(common::evidence_verify())
            .args(["bundle", bundle.to_str().unwrap(), "--key", &log_key, "--witness-key", witness])
            .output()
            .unwrap();
        (out.status.code(), stdout(&out))
    };
    let (code, line) = verify(&key1);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("cosigned by witness.test/one"), "{line}");
    assert_eq!(verify(&key2).0, Some(1));
    // Witness two comes up: the service catches it up on the latest checkpoint.
    let (mut two, _) = witness_serve_on(&file2, &logs, &tmp.path().join("state2"), port);
    let note = checkpoint_when(&server, Duration::from_secs(90), |n| w2.cosigned(n).unwrap().is_some());
    assert!(w1.cosigned(&note).unwrap().is_some());
    // After a restart, new checkpoints are cosigned by both, from where each left off.
    assert!(server.stop().success());
    let server = common::server::Server::on(&data, &args, tokens.clone());
    let events: Vec<String> = (57..80).map(sample_event).collect();
    let posted = server.post("/v1/events", &tokens.1, "application/x-ndjson", events.join("\n").as_bytes());
    assert_eq!(posted.status, 200, "{}", posted.body);
    checkpoint_when(&server, Duration::from_secs(60), |n| {
        size(n) == 80 && w1.cosigned(n).unwrap().is_some() && w2.cosigned(n).unwrap().is_some()
    });
    for child in [&mut one, &mut two] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
