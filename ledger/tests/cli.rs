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

    let run = || {
        evidence()
            .arg("--data-dir")
            .arg(&data)
            .arg("--signer-key")
            .arg(&key)
            .args(["ingest", "--file"])
            .arg(&file)
            .output()
            .unwrap()
    };
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
    let status = evidence()
        .arg("--data-dir")
        .arg(&data)
        .arg("--signer-key")
        .arg(&key)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (s["entries"].as_u64(), s["duplicates"].as_u64(), s["quarantined"].as_u64(), s["checkpoint_size"].as_u64()),
        (Some(5), Some(5), Some(3), Some(5))
    );

    // A proof from the CLI verifies with the verifier's code against the signed checkpoint.
    let proof = evidence()
        .arg("--data-dir")
        .arg(&data)
        .arg("--signer-key")
        .arg(&key)
        .args(["proof", "--seq", "3", "--json"])
        .output()
        .unwrap();
    assert!(proof.status.success(), "{}", stderr(&proof));
    let p: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    let keys = [VerifierKey::parse(&vkey).unwrap()];
    let cp = Checkpoint::open(p["checkpoint"].as_str().unwrap().as_bytes(), &keys, None).unwrap();
    let hashes: Vec<Vec<u8>> =
        p["proof"].as_array().unwrap().iter().map(|h| B64.decode(h.as_str().unwrap()).unwrap()).collect();
    assert_eq!((p["seq"].as_u64(), p["tree_size"].as_u64()), (Some(3), Some(5)));
    verify_inclusion(3, 5, &B64.decode(p["leaf_hash"].as_str().unwrap()).unwrap(), &hashes, &cp.root).unwrap();

    // The checkpoint command prints the same signed note.
    let cp_out =
        evidence().arg("--data-dir").arg(&data).arg("--signer-key").arg(&key).arg("checkpoint").output().unwrap();
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
    for rule in evidence_ledger::rules::Rule::ALL {
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
    for (n, range) in [(0u64, 0..7u64), (1, 7..20)] {
        let lines: Vec<String> = range.map(evidence_schemas::sample::sample_event).collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let out = run(&["ingest", "--file", file.to_str().unwrap()]);
        assert!(out.status.success(), "round {n}: {}", stderr(&out));
    }
    let out = run(&["consistency", "--from", "7"]);
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
