//! The `evidence` command line, as a user runs it.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{evidence, stderr, stdout};
use evidence_verifier::merkle::verify_inclusion;
use evidence_verifier::{Checkpoint, VerifierKey};

#[test]
fn keygen_writes_a_private_key_file_and_prints_the_verifier_key() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("keys/ledger.key");
    let out = evidence().args(["keygen", "--origin", "ledger.example.com/prod", "--out"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let vkey = VerifierKey::parse(stdout(&out).trim()).unwrap();
    assert_eq!(vkey.name(), "ledger.example.com/prod");
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("PRIVATE+KEY+ledger.example.com/prod+"));
    // Never overwrites a key.
    let again = evidence().args(["keygen", "--origin", "x", "--out"]).arg(&key).output().unwrap();
    assert!(!again.status.success());
    assert!(stderr(&again).contains("must not exist yet"), "{}", stderr(&again));
}

#[test]
fn ingest_reports_each_bad_line_accepts_the_good_ones_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = tmp.path().join("ledger.key");
    let out = evidence().args(["keygen", "--origin", "cli.example/ledger", "--out"]).arg(&key).output().unwrap();
    let vkey = stdout(&out).trim().to_string();
    let mut lines: Vec<String> = (0..8).map(evidence_schemas::sample::sample_event).collect();
    lines[2] = lines[2].replace("\"source\":\"", "\"Source\":\"");
    lines[5] = "{\"specversion\": \"1.0\",".into();
    lines[6] = lines[6].replace("sha256:", "md5:");
    lines.insert(7, String::new()); // a blank line is skipped, not an event
    let file = tmp.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let init = run_keyed(&data, &key, &["init"]);
    assert_eq!(init.status.code(), Some(2), "init names its origin: {}", stderr(&init));
    let init = run_keyed(&data, &key, &["init", "--origin", "cli.example/ledger"]);
    assert!(init.status.success(), "{}", stderr(&init));
    assert_eq!(stdout(&init).trim(), vkey, "init takes the existing key");
    let run = || run_keyed(&data, &key, &["ingest", "--file", file.to_str().unwrap()]);
    let out = run();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "accepted 5, duplicate 0, quarantined 3");
    let err = stderr(&out);
    let path = file.display().to_string();
    for expected in [
        format!("file:{path}#3: /source: required field is missing"),
        format!("file:{path}#3: /Source: unknown field: the contract has no such field here"),
        format!("file:{path}#6: (event): event is not JSON: EOF while parsing a value at line 1, column 22"),
        format!("file:{path}#7: /data/model_digest: expected \"sha256:\" and 64 hex digits, found \"md5:"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }

    // Nothing lost: the same file again stores nothing new and quarantines nothing new.
    let out = run();
    assert_eq!(stdout(&out).trim(), "accepted 0, duplicate 5, quarantined 3");
    let status = run_keyed(&data, &key, &["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (s["entries"].as_u64(), s["duplicates"].as_u64(), s["quarantined"].as_u64(), s["checkpoint_size"].as_u64()),
        (Some(5), Some(5), Some(3), Some(5))
    );

    // A proof from the CLI verifies with the verifier's code against the signed checkpoint.
    let proof = run_keyed(&data, &key, &["proof", "--seq", "3", "--json"]);
    assert!(proof.status.success(), "{}", stderr(&proof));
    let p: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    let keys = [VerifierKey::parse(&vkey).unwrap()];
    let cp = Checkpoint::open(p["checkpoint"].as_str().unwrap().as_bytes(), &keys, None).unwrap();
    let hashes: Vec<Vec<u8>> =
        p["proof"].as_array().unwrap().iter().map(|h| B64.decode(h.as_str().unwrap()).unwrap()).collect();
    assert_eq!((p["seq"].as_u64(), p["tree_size"].as_u64()), (Some(3), Some(5)));
    verify_inclusion(3, 5, &B64.decode(p["leaf_hash"].as_str().unwrap()).unwrap(), &hashes, &cp.root).unwrap();

    // The checkpoint command prints the same signed note.
    let cp_out = run_keyed(&data, &key, &["checkpoint"]);
    assert_eq!(stdout(&cp_out), p["checkpoint"].as_str().unwrap());

    // And the store verifies.
    let v = common::verify_store(&data, &vkey, None);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
}

#[test]
fn reading_a_missing_ledger_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = evidence().arg("--data-dir").arg(tmp.path().join("nope")).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("There is no ledger at"), "{}", stderr(&out));
}

#[test]
fn demo_runs_and_verifies() {
    let out = evidence().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // 261 scenario lines, the shared policy line stored once: 249 entries.
    assert!(text.contains("OK: 249 entries"), "{text}");
    for rule in evidence_ledger::Rule::ALL {
        assert!(text.contains(&format!("] {} alert-", rule.name())), "{} never fired:\n{text}", rule.name());
    }
    assert!(text.contains("accepted 0, duplicate 45, quarantined 0"), "{text}");
    assert!(text.contains("DENY: job ft-next"), "{text}");
}

#[test]
fn consistency_proof_between_checkpoints_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("events.ndjson");
    let run = |args: &[&str]| evidence().arg("--data-dir").arg(&data).args(args).output().unwrap();
    common::init(&data, "cli.example/ledger");
    for (n, range) in [(0u64, 0..7u64), (1, 7..20)] {
        let lines: Vec<String> = range.map(evidence_schemas::sample::sample_event).collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let out = run(&["ingest", "--file", file.to_str().unwrap()]);
        assert!(out.status.success(), "round {n}: {}", stderr(&out));
    }
    let out = run(&["consistency", "--from", "7", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status: serde_json::Value = serde_json::from_slice(&run(&["status", "--json"]).stdout).unwrap();
    let keys = [VerifierKey::parse(status["verifier_keys"][0].as_str().unwrap()).unwrap()];
    let cp1 = Checkpoint::open(c["checkpoint1"].as_str().unwrap().as_bytes(), &keys, None).unwrap();
    let cp2 = Checkpoint::open(c["checkpoint2"].as_str().unwrap().as_bytes(), &keys, None).unwrap();
    assert_eq!((cp1.size, cp2.size), (7, 20));
    let proof: Vec<Vec<u8>> =
        c["proof"].as_array().unwrap().iter().map(|h| B64.decode(h.as_str().unwrap()).unwrap()).collect();
    evidence_verifier::merkle::verify_consistency(7, 20, &proof, &cp1.root, &cp2.root).unwrap();
    // A size with no checkpoint is refused.
    assert!(!run(&["consistency", "--from", "5"]).status.success());
}

/// Runs `evidence --data-dir DATA ARGS...`.
fn run_in(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    evidence().arg("--data-dir").arg(data).args(args).output().unwrap()
}

/// Runs `evidence --data-dir DATA --signer-key KEY ARGS...`.
fn run_keyed(data: &std::path::Path, key: &std::path::Path, args: &[&str]) -> std::process::Output {
    evidence().arg("--data-dir").arg(data).arg("--signer-key").arg(key).args(args).output().unwrap()
}

fn example(path: &str) -> String {
    format!("{}/../examples/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn audit_queries_alerts_the_retraining_gate_and_rebuild_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::init(&data, "cli.example/ledger");
    let out = run_in(&data, &["ingest", "--file", &example("scenarios/seed-support-assistant.ndjson")]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Alerts print to standard error as they fire; standard output keeps the summary.
    assert_eq!(stdout(&out).trim(), "accepted 45, duplicate 0, quarantined 0");
    assert_eq!(stderr(&out).matches("ALERT [high]").count(), 4, "{}", stderr(&out));

    // Question 1: what was live, as JSON, citing its entries.
    let out = run_in(
        &data,
        &["query", "state", "--app", "support-assistant", "--env", "prod", "--at", "2026-04-09T12:00:00Z", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let live: Vec<String> = state["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}/{}@{}",
                a["artifact"]["kind"].as_str().unwrap(),
                a["artifact"]["name"].as_str().unwrap(),
                a["artifact"]["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(live, ["index/support-kb-retrieval@4", "model/gpt-4o@2024-08-06", "prompt/support-assistant-system@8"]);
    assert_eq!(state["artifacts"][2]["deployed"]["actor"], "raj@acme");
    assert!(state["entries"].as_array().unwrap().contains(&serde_json::json!(31)));
    // Before the edit, version 7 of the prompt and version 3 of the index were live.
    let out = run_in(
        &data,
        &["query", "state", "--app", "support-assistant", "--env", "prod", "--at", "2026-04-05T00:00:00Z"],
    );
    assert!(stdout(&out).contains("prompt/support-assistant-system@7"), "{}", stdout(&out));
    assert!(stdout(&out).contains("index/support-kb-retrieval@3"), "{}", stdout(&out));
    let out = run_in(
        &data,
        &["query", "state", "--app", "support-assistant", "--env", "prod", "--at", "2026-03-01T00:00:00Z"],
    );
    // An empty answer is an answer: exit 0, said in a sentence (and an empty list in JSON).
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Nothing was deployed to support-assistant in prod by"), "{}", stdout(&out));
    let out = run_in(
        &data,
        &["query", "state", "--app", "support-assistant", "--env", "prod", "--at", "2026-03-01T00:00:00Z", "--json"],
    );
    let empty: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((empty["artifacts"].as_array().map(Vec::len), out.status.code()), (Some(0), Some(0)), "{empty}");
    // A time without an offset is named as the problem; a span before now is a time.
    let out = run_in(
        &data,
        &["query", "state", "--app", "support-assistant", "--env", "prod", "--at", "2026-04-05T00:00:00"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no UTC offset"), "{}", stderr(&out));
    let out = run_in(&data, &["alerts", "--since", "1h"]);
    assert_eq!((out.status.code(), stdout(&out).trim()), (Some(0), "No alerts."), "{}", stderr(&out));

    // Question 2: the prompt's history, in ledger order.
    let out = run_in(&data, &["query", "artifact", "prompt/support-assistant-system@8", "--json"]);
    let history: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let steps: Vec<&str> = history["history"].as_array().unwrap().iter().map(|s| s["what"].as_str().unwrap()).collect();
    assert_eq!(steps, ["registered", "signed", "gated", "gated", "approved", "deployed"]);
    assert_eq!(history["served"]["requests"], 4);
    let out = run_in(&data, &["query", "artifact", "nonsense"]);
    assert!(stderr(&out).contains("is not KIND/NAME@VERSION"), "{}", stderr(&out));

    // Question 4: the training job and its batches.
    let out = run_in(&data, &["query", "training", "--job", "ft-support-2026-04-10", "--json"]);
    let job: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let vetted: Vec<(String, bool)> = job["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["at_start"]["batch"].as_str().unwrap().to_string(), b["at_start"]["allowed"].as_bool().unwrap()))
        .collect();
    assert_eq!(vetted, [("fb-support-w14".to_string(), true), ("fb-support-w15".to_string(), false)]);

    // Question 5: alerts, one JSON object a line, with the fields the SIEM needs.
    let out = run_in(&data, &["alerts", "--json"]);
    let alerts: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(alerts.len(), 4);
    for a in &alerts {
        for field in ["id", "rule", "severity", "title", "explanation", "policy_version", "entries"] {
            assert!(!a[field].is_null(), "{field} missing in {a}");
        }
    }
    let out = run_in(&data, &["alerts", "--json", "--rule", "gate.skipped", "--since", "2026-04-08T00:00:00Z"]);
    assert_eq!(stdout(&out).lines().count(), 2);
    let out = run_in(&data, &["alerts", "--since", "2026-04-10T00:00:00Z", "--json"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    let out = run_in(&data, &["alerts", "--rule", "gate.skiped"]);
    assert!(stderr(&out).contains("unknown rule \"gate.skiped\""), "{}", stderr(&out));

    // The retraining gate: deny with a reason per batch (exit 4), allow with vetted batches.
    let base = "model/support-assistant-base@3.1.0";
    let out = run_in(
        &data,
        &["gate", "training", "--job", "j1", "--base", base, "--batches", "fb-support-w14,fb-support-w15", "--json"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let decision: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(decision["decision"], "deny");
    assert_eq!(decision["batches"][1]["reason"], "never vetted (2 submissions)");
    let out = run_in(&data, &["gate", "training", "--job", "j2", "--base", base, "--batches", "fb-support-w14"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("ALLOW: job j2"), "{}", stdout(&out));
    let out =
        run_in(&data, &["gate", "training", "--job", "j3", "--base", "model/unknown@1", "--batches", "fb-support-w14"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stdout(&out).contains("model/unknown@1 is not registered"), "{}", stdout(&out));

    // Rebuild derives the same alerts from the log.
    let before = stdout(&run_in(&data, &["alerts", "--json"]));
    let out = run_in(&data, &["rebuild"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Rebuilt the views from 45 entries"), "{}", stdout(&out));
    assert_eq!(stdout(&run_in(&data, &["alerts", "--json"])), before);

    // A published policy is in force from its entry on, and cited by later alerts.
    let out = run_in(&data, &["policy", "publish", &example("policy.toml"), "--actor", "governance-board@acme"]);
    assert!(!out.status.success(), "the scenario already carries version 2026-04-01");
    assert!(stderr(&out).contains("already published"), "{}", stderr(&out));
    let relaxed = tmp.path().join("relaxed.json");
    std::fs::write(&relaxed, r#"{"version": "2026-05-01", "policy": {"feedback_requires_vetting": false}}"#).unwrap();
    let out = run_in(&data, &["policy", "publish", relaxed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Published policy 2026-05-01 as entry 45"), "{}", stdout(&out));
    let out = run_in(&data, &["gate", "training", "--job", "j4", "--base", base, "--batches", "fb-support-w15"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("policy 2026-05-01 does not require vetting"), "{}", stdout(&out));
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "version = \"x\"\n[policy]\nrequired_approvals = { prod = -1 }\n").unwrap();
    let out = run_in(&data, &["policy", "publish", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.toml"), "{}", stderr(&out));
}

#[test]
fn control_characters_from_producers_never_reach_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let forged = "ana\u{1b}[2K\r...\nFORGED LINE";
    let digest = format!("sha256:{}", "ab".repeat(32));
    let events = [
        serde_json::json!({"specversion": "1.0", "id": "r1", "source": "registry/test", "type": "registry.register",
            "time": "2026-04-01T00:00:00Z", "actor": forged,
            "data": {"artifact": {"kind": "prompt", "name": "p\u{202e}txt", "version": "1", "digest": digest},
                     "owner": "team\u{7}"}}),
        serde_json::json!({"specversion": "1.0", "id": "d1", "source": "cd/test", "type": "pipeline.deploy",
            "time": "2026-04-02T00:00:00Z", "actor": forged, "env": "prod",
            "data": {"app": "bot\u{9b}31m", "target_env": "prod",
                     "artifacts": [{"kind": "prompt", "name": "p\u{202e}txt", "version": "1", "digest": digest}]}}),
    ];
    let file = tmp.path().join("events.ndjson");
    std::fs::write(&file, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    common::init(&data, "cli.example/ledger");
    let out = run_in(&data, &["ingest", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let outputs = [
        run_in(&data, &["query", "artifact", "prompt/p\u{202e}txt@1"]),
        run_in(&data, &["query", "state", "--app", "bot\u{9b}31m", "--env", "prod"]),
        run_in(&data, &["alerts"]),
        out,
    ];
    for out in &outputs {
        for text in [stdout(out), stderr(out)] {
            assert!(
                !text.chars().any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
                "a control character reached the terminal:\n{text:?}"
            );
            assert!(!text.lines().any(|l| l.starts_with("FORGED LINE")), "a forged line:\n{text}");
        }
    }
    assert!(stdout(&outputs[0]).contains("ana\\u{1b}[2K\\r...\\nFORGED LINE"), "{}", stdout(&outputs[0]));
    assert!(
        stdout(&outputs[2]).contains("\\nFORGED LINE"),
        "the alerts name the actor, escaped: {}",
        stdout(&outputs[2])
    );
    // JSON output escapes as JSON does, and reads back to the producer's exact text.
    let json = run_in(&data, &["query", "artifact", "prompt/p\u{202e}txt@1", "--json"]);
    let answer: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(answer["history"][0]["actor"], forged);
}

#[test]
fn an_event_canonical_json_would_change_is_quarantined_and_the_ledger_carries_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let request = |id: &str, tokens: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"gw/test","type":"proxy.request","time":"2026-04-01T00:00:00Z","env":"prod","data":{{"request_id":"{id}","app":"a","provider":"p","model":"m","region":"r","data_class":"public","tokens_in":{tokens}}}}}"#
        )
    };
    let lines = [
        request("poison", "18446744073709551615"),
        request("big1", "9007199254740993"),
        request("big2", "9007199254740992"),
        r#"{"specversion":"1.0","id":"dupA","id":"dupB","source":"gw/test","type":"proxy.request","time":"2026-04-01T00:00:00Z","env":"prod","data":{"request_id":"x","app":"a","provider":"p","model":"m","region":"r","data_class":"public"}}"#.to_string(),
        request("fine", "12"),
    ];
    let file = tmp.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    common::init(&data, "cli.example/ledger");
    let out = run_in(&data, &["ingest", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "accepted 1, duplicate 0, quarantined 4");
    let err = stderr(&out);
    assert!(err.contains("#1: /data/tokens_in: the number 18446744073709551615 is beyond"), "{err}");
    assert!(err.contains("#4: /id: the key \"id\" appears more than once in this object"), "{err}");
    // Everything that reads the views still works.
    for args in [&["rebuild"][..], &["alerts"], &["query", "state", "--app", "a", "--env", "prod"]] {
        let out = run_in(&data, args);
        assert!(!stderr(&out).contains("cannot be projected"), "{args:?}: {}", stderr(&out));
    }
    assert!(run_in(&data, &["rebuild"]).status.success());
}

#[test]
fn settings_out_of_range_unsafe_key_files_and_a_byte_order_mark_get_a_sentence() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let events = example("scenarios/clean-release.ndjson");
    // Sizes that would abort allocating, or cap every event to nothing, are refused at once.
    for args in [["--batch-size", "1000000000"], ["--max-event-bytes", "18446744073709551615"]] {
        let out = run_in(&data, &["ingest", "--file", &events, args[0], args[1]]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("not in 1.."), "{args:?}: {}", stderr(&out));
    }
    assert!(!data.exists(), "nothing was created");
    // A key file others can read is refused, naming its mode.
    let key = tmp.path().join("open.key");
    let init = run_keyed(&data, &key, &["init", "--origin", "t.example/k"]);
    assert!(init.status.success(), "{}", stderr(&init));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_keyed(&data, &key, &["ingest", "--file", &events]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has mode 0644: a signer key must be readable by its owner only"),
        "{}",
        stderr(&out)
    );
    // evidence-verify never echoes a private key given as --key.
    let secret = std::fs::read_to_string(&key).unwrap();
    let out = common::verify_store(&data, secret.trim(), None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(secret.trim()) && !stdout(&out).contains(secret.trim()),
        "the private key was echoed"
    );
    assert!(stderr(&out).contains("a private signer key, not a verifier key"), "{}", stderr(&out));
    // A byte-order mark at the start of a file is named as what it is.
    let bom = tmp.path().join("bom.ndjson");
    let first = std::fs::read_to_string(&events).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&bom, format!("\u{feff}{first}\n")).unwrap();
    common::init(&tmp.path().join("data2"), "t.example/bom");
    let out = run_in(&tmp.path().join("data2"), &["ingest", "--file", bom.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("#1: (event): event is not JSON: the event starts with a byte-order mark (U+FEFF)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_closed_pipe_or_a_full_device_on_standard_output_is_no_panic() {
    let bin = env!("CARGO_BIN_EXE_evidence");
    // The demo's temporary store goes with it, even when it stops early.
    let tmp = tempfile::tempdir().unwrap();
    // The reader goes away after one line: a quiet stop with the status of a closed pipe.
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("'{bin}' demo 2>err.txt | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}; cat err.txt")])
        .current_dir(tempfile::tempdir().unwrap().path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(text.lines().next(), Some("141"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    // A full device: one sentence, status 1.
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("'{bin}' demo >/dev/full")])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write to standard output: No space left on device"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the stopped demos left {left:?} behind");
}

#[test]
fn a_store_in_use_is_named_with_its_process_never_audited_torn() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::init(&data, "cli.example/ledger");
    let out = run_in(&data, &["ingest", "--file", &example("scenarios/clean-release.ndjson")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let vkey = stdout(&run_in(&data, &["status", "--json"]));
    let vkey: serde_json::Value = serde_json::from_str(&vkey).unwrap();
    let vkey = vkey["verifier_keys"][0].as_str().unwrap().to_string();
    // This test process holds the store, as `evidence serve` would.
    let held = evidence_ledger::SledStorage::open(&data.join("log")).unwrap();
    let pid = format!("in use by process {}", std::process::id());
    for _ in 0..3 {
        let v = common::verify_store(&data, &vkey, None);
        assert_eq!(v.status.code(), Some(2), "{}{}", stdout(&v), stderr(&v));
        assert!(stderr(&v).contains(&pid), "{}", stderr(&v));
        assert!(!stdout(&v).contains("FAILED") && !stderr(&v).contains("panicked"), "{}{}", stdout(&v), stderr(&v));
    }
    let out = run_in(&data, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&pid), "{}", stderr(&out));
    drop(held);
    let v = common::verify_store(&data, &vkey, None);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
}

/// Item 11 of the hardening issue: stores are created on purpose, keys stay out of them, and a
/// copy of a store reads without any key.
#[test]
fn stores_are_made_on_purpose_and_their_keys_stay_out_of_them() {
    let tmp = tempfile::tempdir().unwrap();
    let events = example("scenarios/clean-release.ndjson");
    // A mistyped --data-dir creates nothing: every command names the path.
    let typo = tmp.path().join("dtaa");
    for args in [&["ingest", "--file", &events][..], &["policy", "publish", &example("policy.toml")], &["status"]] {
        let out = run_in(&typo, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let want = format!("There is no ledger at {}", typo.display());
        assert!(stderr(&out).contains(&want), "{args:?}: {}", stderr(&out));
        assert!(!typo.exists() && !tmp.path().join("dtaa.key").exists(), "{args:?} created something");
    }
    // A directory holding something else is not a store, and init will not take it over.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    assert!(stderr(&run_in(&other, &["alerts"])).contains(&format!("There is no ledger at {}", other.display())));
    let out = run_in(&other, &["init", "--origin", "t.example/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not empty and holds no ledger"), "{}", stderr(&out));

    // init: the key beside the data directory, mode 0600, nothing secret inside.
    let data = tmp.path().join("data");
    let vkey = common::init(&data, "t.example/ledger");
    let key = tmp.path().join("data.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(common::private_keys_in(&data).is_empty(), "a private key inside the data directory");
    assert_eq!(run_in(&data, &["init", "--origin", "t.example/ledger"]).status.code(), Some(1));
    assert!(run_in(&data, &["ingest", "--file", &events]).status.success());

    // The auditor's copy: every read-only command works without the key.
    let copy = tmp.path().join("elsewhere/copy");
    common::copy_dir(&data, &copy);
    for args in [
        &["status"][..],
        &["alerts"],
        &["checkpoint"],
        &["proof", "--seq", "1"],
        &["policy", "show"],
        &["query", "state", "--app", "claims-helper", "--env", "prod"],
    ] {
        let out = run_in(&copy, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("keygen"), "{args:?}: {}", stderr(&out));
    }
    assert!(!tmp.path().join("elsewhere/copy.key").exists(), "a key was made for the copy");
    let v = common::verify_store(&copy, &vkey, None);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(!stderr(&v).contains("warning"), "{}", stderr(&v));
    // Appending to the copy needs the key, and says where it looked.
    let out = run_in(&copy, &["ingest", "--file", &events]);
    assert!(stderr(&out).contains("The signer key is not at"), "{}", stderr(&out));
    // A store handed over with its key is warned about.
    std::fs::copy(&key, copy.join("checkpoint.key")).unwrap();
    let v = common::verify_store(&copy, &vkey, None);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(stderr(&v).contains("checkpoint.key holds a private signer key"), "{}", stderr(&v));

    // An init that fails gives the directory back: run again right, it succeeds.
    let retry = tmp.path().join("retry");
    let out = run_keyed(&retry, &key, &["init", "--origin", "t.example/wrong"]);
    assert!(stderr(&out).contains("is for origin \"t.example/ledger\", not \"t.example/wrong\""), "{}", stderr(&out));
    let out = run_keyed(&retry, &key, &["init", "--origin", "t.example/ledger"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // `.` as the data directory: the key still goes beside it, never inside.
    let here = tmp.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let out =
        evidence().current_dir(&here).args(["--data-dir", ".", "init", "--origin", "t.example/here"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tmp.path().join("here.key").exists() && common::private_keys_in(&here).is_empty());

    // Two inits racing on one new directory: exactly one makes the store.
    for round in 0..5 {
        let dir = tmp.path().join(format!("race{round}"));
        let children: Vec<_> = (0..2)
            .map(|_| {
                evidence()
                    .arg("--data-dir")
                    .arg(&dir)
                    .args(["init", "--origin", "t.example/race"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let won = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(won, 1, "round {round}: {:?}", outs.iter().map(stderr).collect::<Vec<_>>());
        let lost = outs.iter().find(|o| !o.status.success()).unwrap();
        assert!(stderr(lost).contains("There is already a ledger at"), "round {round}: {}", stderr(lost));
        assert!(run_in(&dir, &["status"]).status.success());
    }
}

/// Item 4: the signing key is never replaced silently; rotating is deliberate and recorded.
#[test]
fn the_signer_key_is_never_replaced_silently_and_a_rotation_is_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (k1, k2, k3) = (tmp.path().join("k1.key"), tmp.path().join("k2.key"), tmp.path().join("k3.key"));
    let with_key = |key: &std::path::Path, args: &[&str]| run_keyed(&data, key, args);
    let v1 = stdout(&with_key(&k1, &["init", "--origin", "t.example/keys"])).trim().to_string();
    let first: Vec<String> = (0..10).map(evidence_schemas::sample::sample_event).collect();
    let file = tmp.path().join("events.ndjson");
    std::fs::write(&file, first.join("\n")).unwrap();
    assert!(with_key(&k1, &["ingest", "--file", file.to_str().unwrap()]).status.success());

    // Without --signer-key: no key is made, nothing is appended.
    let out = run_in(&data, &["ingest", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("The signer key is not at"), "{}", stderr(&out));
    assert!(!tmp.path().join("data.key").exists());
    // Another key with the same origin: refused, naming the store's key.
    let v2 = stdout(&evidence().args(["keygen", "--origin", "t.example/keys", "--out"]).arg(&k2).output().unwrap());
    let out = with_key(&k2, &["ingest", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("({}) is not this store's: the store signs with {v1}", v2.trim())),
        "{}",
        stderr(&out)
    );
    assert_eq!(common::status(&data)["entries"].as_u64(), Some(10));

    // A producer cannot forge a rotation.
    let forged = serde_json::json!({"specversion": "1.0", "id": "key-x", "source": "evil", "type": "ledger.key",
        "time": "2026-04-01T00:00:00Z", "actor": "mallory", "data": {"verifier_key": v2.trim(), "previous_key": v1}});
    std::fs::write(&file, format!("{forged}\n")).unwrap();
    let out = with_key(&k1, &["ingest", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"ledger.key\" is written by the ledger itself"), "{}", stderr(&out));

    // A rotation that cannot happen appends nothing: a key of another origin, the current key.
    let other = tmp.path().join("other.key");
    assert!(evidence()
        .args(["keygen", "--origin", "t.example/other", "--out"])
        .arg(&other)
        .status()
        .unwrap()
        .success());
    for bad in [&other, &k1] {
        let out = with_key(&k1, &["key", "rotate", "--new-key", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
    assert_eq!(common::status(&data)["entries"].as_u64(), Some(10), "a refused rotation left an entry");

    // A rotation on purpose: recorded in the log, covered by a checkpoint both keys signed.
    let out = with_key(&k1, &["key", "rotate", "--new-key", k3.to_str().unwrap(), "--reason", "yearly"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v3 = stdout(&out).trim().to_string();
    let s = common::status(&data);
    assert_eq!(s["verifier_keys"], serde_json::json!([v1, v3]));
    let note = stdout(&run_in(&data, &["checkpoint"]));
    for key in [&v1, &v3] {
        let cp = Checkpoint::open(note.as_bytes(), &[VerifierKey::parse(key).unwrap()], None).unwrap();
        assert_eq!(cp.size, 11, "the rotation checkpoint covers the rotation entry");
    }
    let out = run_in(&data, &["proof", "--seq", "10", "--json"]);
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["tree_size"].as_u64(), Some(11), "{}", stderr(&out));
    // The old key is retired: refused, and named as such.
    let more: Vec<String> = (10..20).map(evidence_schemas::sample::sample_event).collect();
    std::fs::write(&file, more.join("\n")).unwrap();
    let out = with_key(&k1, &["ingest", "--file", file.to_str().unwrap()]);
    assert!(stderr(&out).contains("was this store's until a rotation"), "{}", stderr(&out));
    assert!(with_key(&k3, &["ingest", "--file", file.to_str().unwrap()]).status.success());
    // An auditor needs both keys for the whole log, and the log shows why.
    assert_eq!(common::verify_store(&data, &v1, None).status.code(), Some(1));
    let both = std::process::Command::new(common::evidence_verify())
        .arg("store")
        .arg(&data)
        .args(["--key", &v1, "--key", &v3])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(0), "{}", stdout(&both));
}

/// Item 9: a policy that leaves a control out keeps the default's; a typo'd env is refused; a
/// policy can be checked before it is published.
#[test]
fn a_policy_is_secure_by_default_and_checked_before_it_is_published() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let empty = write("empty.toml", "version = \"empty\"\n[policy]\n");
    let typo = write("typo.toml", "version = \"typo\"\n[policy]\nrequired_gates = { production = [\"leakage\"] }\n");
    let off = write("off.toml", "version = \"off\"\n[policy]\nseparation_of_duties = false\ndrift = \"off\"\n");
    let canary = write(
        "canary.json",
        r#"{"version": "canary", "policy": {"envs": ["canary"], "required_approvals": {"canary": 2}}}"#,
    );

    // Checked with no ledger: against the default, which an empty policy leaves as it is.
    let out = run_in(&data, &["policy", "check", &empty, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changes"], serde_json::json!([]), "{report}");
    assert_eq!(report["defaulted"].as_array().unwrap().len(), 7, "{report}");
    assert_eq!(report["effective"]["separation_of_duties"], true);
    assert_eq!(report["effective"]["required_gates"]["prod"], serde_json::json!(["prompt-injection", "leakage"]));
    assert!(!data.exists(), "check creates nothing");

    // An env nobody declared is refused with its pointer, by check and by publish alike.
    common::init(&data, "t.example/policy");
    for args in [&["policy", "check", &typo][..], &["policy", "publish", &typo]] {
        let out = run_in(&data, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let want =
            "/data/policy/required_gates/production: the environment \"production\" is neither dev, staging nor prod";
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert!(run_in(&data, &["policy", "check", &canary]).status.success(), "a declared env is fine");

    // Turning controls off is written out, and check names what changes.
    let out = run_in(&data, &["policy", "check", &off]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("separation_of_duties: true -> false"), "{text}");
    assert!(text.contains("drift: {"), "{text}");
    assert!(text.contains("-> null"), "{text}");

    // Published, the empty policy keeps every control of the default in force.
    assert!(run_in(&data, &["policy", "publish", &empty]).status.success());
    let shown: serde_json::Value = serde_json::from_slice(&run_in(&data, &["policy", "show"]).stdout).unwrap();
    assert_eq!(shown["version"], "empty");
    assert_eq!(shown["policy"], report["effective"], "{shown}");
}

/// Found while writing the NDJSON fuzz target's oracle: a CRLF file's blank lines are blank
/// lines, not events to quarantine.
#[test]
fn blank_lines_of_a_crlf_file_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::init(&data, "cli.example/crlf");
    let file = tmp.path().join("events.ndjson");
    let text = format!(
        "{}\r\n\r\n \t \r\n{}\r\n",
        evidence_schemas::sample::sample_event(1),
        evidence_schemas::sample::sample_event(2)
    );
    std::fs::write(&file, text).unwrap();
    let out = run_in(&data, &["ingest", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "accepted 2, duplicate 0, quarantined 0");
}

/// The clean release with its gate runs arriving after the deploy, as a user sees it: the
/// alerts the deploy raised are listed as resolved, each by the gate run that cured it, none
/// stays open, the artifact's history shows that lifecycle, and a status that does not exist
/// gets a sentence.
#[test]
fn late_gate_runs_resolve_what_the_deploy_raised_and_alerts_filter_by_status() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::init(&data, "cli.example/ledger");
    let text = std::fs::read_to_string(example("scenarios/clean-release.ndjson")).unwrap();
    let (gates, mut lines): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.contains(r#""type":"pipeline.gate""#));
    lines.extend(gates);
    let file = tmp.path().join("late-gates.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = run_in(&data, &["ingest", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("(open): Required gate skipped"), "{}", stderr(&out));
    assert!(stderr(&out).contains("(resolved): Required gate skipped"), "{}", stderr(&out));

    let open = run_in(&data, &["alerts", "--status", "open"]);
    assert!(open.status.success() && stdout(&open).trim() == "No alerts.", "{}{}", stdout(&open), stderr(&open));
    let resolved = run_in(&data, &["alerts", "--status", "resolved", "--json"]);
    let resolved: Vec<serde_json::Value> =
        stdout(&resolved).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!resolved.is_empty());
    let gate_entries: Vec<u64> = (lines.len() as u64 - 6..lines.len() as u64).collect();
    for a in &resolved {
        let by = a["resolved_by"].as_u64().unwrap();
        assert!(gate_entries.contains(&by), "{a}");
        assert!(a["resolution"].as_str().unwrap().contains(&format!("entry {by} (pipeline.gate")), "{a}");
    }
    let history = run_in(&data, &["query", "artifact", "model/claims-model@2.0.0"]);
    assert!(stdout(&history).contains("resolved gate.skipped"), "{}", stdout(&history));

    let bad = run_in(&data, &["alerts", "--status", "closed"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains(r#"unknown status "closed" (statuses: open, resolved)"#), "{}", stderr(&bad));
}

#[test]
fn printing_commands_take_json_and_validate_completions_and_a_kept_demo_work() {
    let tmp = tempfile::tempdir().unwrap();
    // validate: no store; every problem with its line, exit 3; a clean file exits 0.
    let bad = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bad-lines.ndjson");
    let out = evidence().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l.contains("bad-lines.ndjson:1: ")), "{text}");
    let summary = text.lines().last().unwrap();
    let invalid: u64 = summary.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(summary.starts_with("valid ") && invalid > 0, "{text}");
    let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios/clean-release.ndjson");
    let out = evidence().arg("validate").arg(&good).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["invalid"], 0, "{report}");
    assert!(report["valid"].as_u64().unwrap() > 10);
    assert!(!tmp.path().join("evidence-data").exists(), "validate creates no store");

    // completions for a shell.
    let out = evidence().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success() && stdout(&out).contains("_evidence"), "{}", stderr(&out));

    // The demo keeps its store where asked, and the commands it prints run on it, with --json.
    let kept = tmp.path().join("demo");
    let out = evidence().arg("demo").arg("--keep").arg(&kept).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let store = kept.join("store");
    assert!(stdout(&out).contains(&format!("--data-dir {}", store.display())), "{}", stdout(&out));
    for args in
        [&["rebuild", "--json"][..], &["checkpoint", "--json"], &["policy", "show", "--json"], &["status", "--json"]]
    {
        let out = evidence().arg("--data-dir").arg(&store).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(v.is_object(), "{args:?}: {v}");
    }
    let out = evidence().arg("--data-dir").arg(&store).args(["checkpoint", "--json"]).output().unwrap();
    let cp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        cp["size"].as_u64().unwrap() > 0 && cp["note"].as_str().unwrap().contains(cp["root"].as_str().unwrap()),
        "{cp}"
    );
    let again = evidence().arg("demo").arg("--keep").arg(&kept).output().unwrap();
    assert!(!again.status.success() && stderr(&again).contains("not empty"), "{}", stderr(&again));
}

/// Runs `command` (a shell line) on a terminal: a pseudo-terminal made by `script` (Debian's
/// bsdutils, an essential package), its output and errors together.
fn on_a_terminal(command: &str) -> std::process::Output {
    std::process::Command::new("script").args(["-qec", command, "/dev/null"]).output().unwrap()
}

/// `--version` names the release; colour and the progress line of a long ingest appear only
/// on a terminal, never in a pipe or a file.
#[test]
fn version_and_colour_and_progress_only_on_a_terminal() {
    let bin = env!("CARGO_BIN_EXE_evidence");
    let out = evidence().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), format!("evidence {}", env!("CARGO_PKG_VERSION")));

    let piped = evidence().arg("--no-such-flag").output().unwrap();
    assert!(stderr(&piped).contains("--no-such-flag") && !piped.stderr.contains(&0x1b), "{}", stderr(&piped));
    let shown = on_a_terminal(&format!("{bin} --no-such-flag"));
    assert!(shown.stdout.contains(&0x1b), "colour on a terminal: {}", stdout(&shown));

    // An ingest that runs for seconds: a progress line on a terminal, cleared before the summary.
    let tmp = tempfile::tempdir().unwrap();
    let events = tmp.path().join("events.ndjson");
    let lines: Vec<String> = (0..60_000)
        .map(|i| {
            format!(
                r#"{{"specversion":"1.0","id":"r{i}","source":"gw","type":"proxy.request","time":"2026-05-01T00:{:02}:{:02}Z","env":"prod","data":{{"request_id":"r{i}","app":"a","provider":"p","model":"m","region":"r","data_class":"internal","tokens_in":1,"tokens_out":1,"latency_ms":1.0,"status":"ok","refused":false,"safety_flags":[],"tool_calls":[]}}}}"#,
                i / 1000 % 60,
                i % 60
            )
        })
        .collect();
    std::fs::write(&events, lines.join("\n")).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        assert!(evidence()
            .arg("--data-dir")
            .arg(dir)
            .args(["init", "--origin", "t.example/x"])
            .status()
            .unwrap()
            .success());
    }
    let piped = evidence().arg("--data-dir").arg(&a).arg("ingest").arg("--file").arg(&events).output().unwrap();
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(stdout(&piped).trim(), "accepted 60000, duplicate 0, quarantined 0");
    assert!(!stderr(&piped).contains("events:"), "no progress in a pipe: {}", stderr(&piped));
    // Fed through a pipe that pauses half-way, so that it runs past the first second however
    // fast the ingest is.
    let shown = on_a_terminal(&format!(
        "(head -n 30000 {events}; sleep 1.5; tail -n 30000 {events}) | {bin} --data-dir {} ingest --file -",
        b.display(),
        events = events.display()
    ));
    let text = stdout(&shown);
    assert!(text.contains("events: accepted ") && text.contains("events/s)"), "a progress line: {text:?}");
    let last = text.rsplit('\r').find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.contains("accepted 60000, duplicate 0, quarantined 0"),
        "the summary after the cleared line: {text:?}"
    );
}

#[test]
fn tlog_proof_files_verify_here_and_with_a_checker_written_from_the_c2sp_specs() {
    use evidence_verifier::tlog_proof::TlogProof;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = common::init(&data, "cli.example/proofs");
    let file = tmp.path().join("events.ndjson");
    let lines: Vec<String> = (0..37u64).map(evidence_schemas::sample::sample_event).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    assert!(run_in(&data, &["ingest", "--file", file.to_str().unwrap()]).status.success());
    let trusted = [VerifierKey::parse(&key).unwrap()];
    let mut args = vec![key.clone()];
    for seq in [0u64, 1, 17, 31, 36] {
        let out = run_in(&data, &["proof", "--seq", &seq.to_string(), "--tlog-proof"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let path = tmp.path().join(format!("{seq}.tlog-proof"));
        std::fs::write(&path, &out.stdout).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&run_in(&data, &["proof", "--seq", &seq.to_string(), "--json"]).stdout).unwrap();
        let leaf = json["leaf_hash"].as_str().unwrap().to_string();
        // Ours: the file reads back and verifies against the store's key, for the entry's leaf.
        let proof = TlogProof::parse(&out.stdout).unwrap();
        assert_eq!(proof.index, seq);
        let leaf_hash: evidence_verifier::Hash = B64.decode(&leaf).unwrap().try_into().unwrap();
        assert_eq!(proof.verify(&leaf_hash, &trusted, Some("cli.example/proofs")).unwrap().size, 37);
        args.extend([leaf, path.to_str().unwrap().to_string()]);
    }
    // A copy of one with a hash of its path changed, and one checked for another entry's leaf.
    let text = std::fs::read_to_string(tmp.path().join("17.tlog-proof")).unwrap();
    let line = text.lines().nth(2).unwrap().to_string();
    let mut flipped = B64.decode(&line).unwrap();
    flipped[0] ^= 1;
    std::fs::write(tmp.path().join("bad.tlog-proof"), text.replace(&line, &B64.encode(flipped))).unwrap();
    let (leaf17, leaf31) = (args[5].clone(), args[7].clone());
    args.extend([leaf17, tmp.path().join("bad.tlog-proof").to_str().unwrap().to_string()]);
    args.extend([leaf31, tmp.path().join("17.tlog-proof").to_str().unwrap().to_string()]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/tlog_check.py");
    let out = std::process::Command::new(common::test_python()).arg(script).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let results: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), 7);
    for r in &results[..5] {
        assert_eq!(r["ok"], true, "the independent checker refused {r}");
        assert_eq!((r["size"].as_u64(), r["origin"].as_str()), (Some(37), Some("cli.example/proofs")));
    }
    assert_eq!(results[5]["ok"], false, "a changed path passed: {}", results[5]);
    assert_eq!(results[6]["ok"], false, "another entry's leaf passed: {}", results[6]);
    let bad = TlogProof::parse(std::fs::read(tmp.path().join("bad.tlog-proof")).unwrap().as_slice()).unwrap();
    let leaf: evidence_verifier::Hash = B64.decode(&args[5]).unwrap().try_into().unwrap();
    assert!(bad.verify(&leaf, &trusted, None).is_err(), "ours passed a changed path");
}

#[test]
fn witness_cosignatures_verify_here_and_with_a_checker_written_from_the_c2sp_specs() {
    use evidence_verifier::cosignature::CosignerKey;
    use evidence_verifier::note::Note;
    use evidence_verifier::tlog_proof::TlogProof;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = common::init(&data, "cli.example/witnessed");
    let file = tmp.path().join("events.ndjson");
    let lines: Vec<String> = (0..9u64).map(evidence_schemas::sample::sample_event).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    assert!(run_in(&data, &["ingest", "--file", file.to_str().unwrap()]).status.success());
    let out = run_in(&data, &["proof", "--seq", "4", "--tlog-proof"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&run_in(&data, &["proof", "--seq", "4", "--json"]).stdout).unwrap();
    let leaf = json["leaf_hash"].as_str().unwrap().to_string();
    // A witness cosigns the checkpoint: its line is added to the note in the proof.
    let mut proof = TlogProof::parse(&out.stdout).unwrap();
    let mut note = Note::parse(&proof.checkpoint).unwrap();
    let witness = CosignerKey::from_seed("witness.test/w1", [5; 32]).unwrap();
    note.signatures.push(witness.cosign(&note.text, 1_780_000_000).unwrap());
    proof.checkpoint = note.to_string().into_bytes();
    let cosigned = tmp.path().join("cosigned.tlog-proof");
    std::fs::write(&cosigned, proof.encode()).unwrap();
    // Ours: the log's signature and the witness's cosignature verify.
    let parsed = Note::parse(&proof.checkpoint).unwrap();
    assert_eq!(witness.witness_key().cosigned(&parsed).unwrap(), Some(1_780_000_000));
    parsed.verify(&[VerifierKey::parse(&key).unwrap()]).unwrap();
    // The independent checker: cosigned by this witness, and not by another one.
    let check = |witness_key: &str| {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/tlog_check.py");
        let out = std::process::Command::new(common::test_python())
            .arg(script)
            .args(["--witness", witness_key, &key, &leaf])
            .arg(&cosigned)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let good = check(&witness.witness_key().to_string());
    assert_eq!((good["ok"].as_bool(), good["cosigned_at"].as_u64()), (Some(true), Some(1_780_000_000)), "{good}");
    let other = CosignerKey::from_seed("witness.test/w2", [6; 32]).unwrap().witness_key().to_string();
    assert_eq!(check(&other)["ok"], false, "a cosignature by a witness that never signed passed");
}
