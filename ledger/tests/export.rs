//! Evidence bundles end to end, through the binaries: `evidence export` of every scope kind
//! (a directory and a `.tar.gz`, from the store and from `serve`), checked by
//! `evidence-verify bundle` and by an independent checker written from the C2SP specs and
//! the bundle's documented format (`tests/py/tlog_check.py bundle`); each way of tampering
//! caught with its own message; an artifact's bundle holding no other event; and the report
//! opened in headless Chromium with networking off.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{evidence, evidence_verify, stderr, stdout};
use evidence_verifier::bundle::{self, Manifest};

/// The demo's store (every example scenario) in `dir`: (the store, its key, its verifier key).
fn demo(dir: &Path) -> (PathBuf, PathBuf, String) {
    let kept = dir.join("demo");
    let out = evidence().args(["demo", "--keep"]).arg(&kept).output().unwrap();
    assert!(out.status.success(), "demo: {}", stderr(&out));
    let data = kept.join("store");
    let status = common::status(&data);
    (data, kept.join("checkpoint.key"), status["verifier_keys"][0].as_str().unwrap().to_string())
}

fn run(data: &Path, args: &[&str]) -> Output {
    evidence().arg("--data-dir").arg(data).args(args).output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `evidence-verify bundle PATH --key KEY ARGS...`: (passed, the line it printed).
fn verify(path: &Path, key: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(evidence_verify())
        .args(["bundle"])
        .arg(path)
        .args(["--key", key])
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code();
    assert!(matches!(code, Some(0) | Some(1)), "evidence-verify failed to run ({code:?}): {}", stderr(&out));
    (code == Some(0), stdout(&out).trim().to_string())
}

/// The independent checker on a bundle directory.
fn check_independently(dir: &Path, key: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/tlog_check.py");
    let out =
        std::process::Command::new(common::test_python()).arg(script).args(["bundle", key]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn export(data: &Path, out: &Path, scope: &[&str]) -> serde_json::Value {
    let mut args = vec!["export", "--json", "--out", out.to_str().unwrap()];
    args.extend(scope);
    json(&run(data, &args))
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    evidence_verifier::bundle_files::read_bundle(dir).unwrap()
}

/// The sequence numbers `entries.ndjson` holds.
fn held(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_to_string(dir.join(bundle::ENTRIES))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_scope_of_the_example_scenarios_exports_a_bundle_that_verifies_here_and_independently() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _, key) = demo(tmp.path());
    let mut scopes: Vec<Vec<String>> = Vec::new();
    let artifacts = json(&run(&data, &["query", "artifacts", "--json"]));
    for a in artifacts["artifacts"].as_array().unwrap() {
        let a = &a["artifact"];
        scopes.push(vec![
            "--artifact".into(),
            format!(
                "{}/{}@{}",
                a["kind"].as_str().unwrap(),
                a["name"].as_str().unwrap(),
                a["version"].as_str().unwrap()
            ),
        ]);
    }
    let apps = json(&run(&data, &["query", "apps", "--json"]));
    for a in apps["apps"].as_array().unwrap() {
        let (app, env) = (a["app"].as_str().unwrap().to_string(), a["env"].as_str().unwrap().to_string());
        scopes.push(vec!["--app".into(), app.clone(), "--env".into(), env.clone()]);
        scopes.push(vec!["--app".into(), app, "--env".into(), env, "--at".into(), "2026-04-05T00:00:00Z".into()]);
    }
    let alerts = run(&data, &["alerts", "--json"]);
    assert!(alerts.status.success());
    let alert_ids: Vec<String> = stdout(&alerts)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert!(alert_ids.len() >= 10, "the scenarios raise alerts: {alert_ids:?}");
    scopes.extend(alert_ids.iter().map(|id| vec!["--alert".into(), id.clone()]));
    scopes.push(vec!["--from".into(), "2026-04-02T00:00:00Z".into(), "--to".into(), "2026-04-04T00:00:00Z".into()]);
    scopes.push(vec!["--from".into(), "2000-01-01T00:00:00Z".into(), "--to".into(), "2100-01-01T00:00:00Z".into()]);
    let size = common::status(&data)["checkpoint_size"].as_u64().unwrap();
    let mut last = PathBuf::new();
    for (n, scope) in scopes.iter().enumerate() {
        let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
        let archive = n % 2 == 1;
        let out = tmp.path().join(if archive { format!("b{n}.tar.gz") } else { format!("b{n}") });
        let written = export(&data, &out, &scope);
        let (ok, line) = verify(&out, &key, &[]);
        assert!(ok, "{scope:?}: {line}");
        assert!(line.starts_with(&format!("bundle OK: {} entries proven", written["entries"])), "{scope:?}: {line}");
        // The independent checker reads a directory: unpack an archive with tar(1).
        let dir = if archive {
            let dir = tmp.path().join(format!("u{n}"));
            std::fs::create_dir(&dir).unwrap();
            assert!(std::process::Command::new("tar")
                .arg("xzf")
                .arg(&out)
                .arg("-C")
                .arg(&dir)
                .status()
                .unwrap()
                .success());
            dir
        } else {
            out.clone()
        };
        last = dir.clone();
        let independent = check_independently(&dir, &key);
        assert_eq!(independent["ok"], true, "{scope:?}: {independent}");
        assert_eq!(independent["entries"], written["entries"], "{scope:?}");
        assert_eq!(independent["size"].as_u64(), Some(size), "{scope:?}");
        // Every entry the answers and alerts cite is in it.
        let answers: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(bundle::ANSWERS)).unwrap()).unwrap();
        let mut cited = BTreeSet::new();
        bundle::cited(&answers["answers"], &mut cited);
        bundle::cited(&answers["alerts"], &mut cited);
        assert!(cited.is_subset(&held(&dir)), "{scope:?}");
        if scope[0] == "--alert" {
            assert_eq!(answers["alerts"][0]["id"].as_str(), Some(scope[1]));
            assert!(!cited.is_empty());
        }
    }
    // The whole range holds every entry; the short one only those dated in it and cited.
    let all = held(&last);
    assert_eq!(all.len() as u64, size);
    // A scope that finds nothing, or two scopes, get a sentence.
    let out = run(&data, &["export", "--out", tmp.path().join("x").to_str().unwrap(), "--alert", "alert-nope"]);
    assert!(!out.status.success() && stderr(&out).contains("no alert alert-nope in the ledger"), "{}", stderr(&out));
    let out = run(
        &data,
        &["export", "--out", tmp.path().join("x").to_str().unwrap(), "--alert", "a", "--artifact", "model/x@1"],
    );
    assert!(!out.status.success() && stderr(&out).contains("exactly one scope"), "{}", stderr(&out));
    assert!(!tmp.path().join("x").exists(), "a failed export leaves nothing behind");
}

/// Recomputes the manifest, as someone tampering with a bundle would.
fn refresh_manifest(dir: &Path) {
    let mut manifest = Manifest::new();
    for (path, bytes) in files(dir) {
        if path != bundle::MANIFEST {
            manifest.add(&path, &bytes);
        }
    }
    std::fs::write(dir.join(bundle::MANIFEST), manifest.encode()).unwrap();
}

/// Replaces the checkpoint note inside every proof with `note`.
fn replace_proof_notes(dir: &Path, note: &[u8]) {
    for entry in std::fs::read_dir(dir.join("proofs")).unwrap() {
        let path = entry.unwrap().path();
        let mut proof = evidence_verifier::tlog_proof::TlogProof::parse(&std::fs::read(&path).unwrap()).unwrap();
        proof.checkpoint = note.to_vec();
        std::fs::write(&path, proof.encode()).unwrap();
    }
}

#[test]
fn each_tampering_of_a_bundle_is_caught_with_its_own_message() {
    use evidence_verifier::checkpoint::Checkpoint;
    use evidence_verifier::note::{Note, SignerKey};
    let tmp = tempfile::tempdir().unwrap();
    let (data, key_file, key) = demo(tmp.path());
    // Last quarter's checkpoint; then the log grows.
    let old = tmp.path().join("old.checkpoint");
    let note = run(&data, &["checkpoint"]);
    assert!(note.status.success());
    std::fs::write(&old, &note.stdout).unwrap();
    let old_size = common::status(&data)["checkpoint_size"].as_u64().unwrap();
    let more = tmp.path().join("more.ndjson");
    let lines: Vec<String> = (0..20u64).map(evidence_schemas::sample::sample_event).collect();
    std::fs::write(&more, lines.join("\n")).unwrap();
    let key_arg = key_file.to_str().unwrap();
    assert!(run(&data, &["--signer-key", key_arg, "ingest", "--file", more.to_str().unwrap()]).status.success());
    let alerts = run(&data, &["alerts", "--json", "--rule", "gate.skipped"]);
    let alert: serde_json::Value = serde_json::from_str(stdout(&alerts).lines().next().unwrap()).unwrap();
    let id = alert["id"].as_str().unwrap();
    let cites: Vec<u64> = alert["entries"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let base = tmp.path().join("base");
    let args = [
        "--signer-key",
        key_arg,
        "export",
        "--out",
        base.to_str().unwrap(),
        "--alert",
        id,
        "--since-checkpoint",
        old.to_str().unwrap(),
    ];
    assert!(run(&data, &args).status.success());
    let size = common::status(&data)["checkpoint_size"].as_u64().unwrap();
    assert!(size > old_size);
    let trusted = ["--trusted-checkpoint", old.to_str().unwrap()];
    let (ok, line) = verify(&base, &key, &trusted);
    assert!(ok && line.contains(&format!("extends the trusted checkpoint of {old_size} entries")), "{line}");
    let held = held(&base);
    let absent = (0..size).find(|s| !held.contains(s)).unwrap();
    let cited = cites[1];
    let copy = |name: &str| {
        let dir = tmp.path().join(name);
        common::copy_dir(&base, &dir);
        dir
    };
    let mut messages = Vec::new();
    let mut caught = |dir: &Path, args: &[&str], want: &str| {
        let (ok, line) = verify(dir, &key, args);
        assert!(!ok, "{}: passed: {line}", dir.display());
        assert!(
            line.starts_with("FAILED: ") && line.contains(want),
            "{}: {line:?} does not say {want:?}",
            dir.display()
        );
        messages.push(line);
    };

    // 1. An edited event (its digest left as it was; the manifest fixed up).
    let dir = copy("edited");
    let entries = std::fs::read_to_string(dir.join(bundle::ENTRIES)).unwrap();
    let edited = entries.replacen("\"actor\":\"", "\"actor\":\"x", 1);
    assert_ne!(edited, entries);
    std::fs::write(dir.join(bundle::ENTRIES), edited).unwrap();
    refresh_manifest(&dir);
    caught(&dir, &[], "its event's bytes do not match its digest: the event was changed");

    // 2. A cited entry removed, with its proof.
    let dir = copy("removed");
    let kept: String =
        entries.lines().filter(|l| !l.starts_with(&format!("{{\"seq\":{cited},"))).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join(bundle::ENTRIES), kept).unwrap();
    std::fs::remove_file(dir.join(bundle::proof_path(cited))).unwrap();
    refresh_manifest(&dir);
    caught(&dir, &[], &format!("cites entry {cited}, which the bundle does not hold"));

    // 3. A proof from another tree size: the same entry's proof against last quarter's.
    let dir = copy("other-tree");
    let proof = run(&data, &["proof", "--seq", &cites[0].to_string(), "--size", &old_size.to_string(), "--tlog-proof"]);
    assert!(proof.status.success(), "{}", stderr(&proof));
    std::fs::write(dir.join(bundle::proof_path(cites[0])), &proof.stdout).unwrap();
    refresh_manifest(&dir);
    caught(&dir, &[], &format!("is against a checkpoint of {old_size} entries, not the bundle's checkpoint of {size}"));

    // 4. The checkpoint re-signed by another key (and every proof made to match).
    let dir = copy("resigned");
    let note = Note::parse(&std::fs::read(dir.join(bundle::CHECKPOINT)).unwrap()).unwrap();
    let origin = Checkpoint::parse(&note.text).unwrap().origin;
    let other = SignerKey::from_seed(&origin, [7; 32]).unwrap();
    let resigned = Note::sign(&note.text, &[&other]).unwrap().to_string();
    std::fs::write(dir.join(bundle::CHECKPOINT), &resigned).unwrap();
    replace_proof_notes(&dir, resigned.as_bytes());
    refresh_manifest(&dir);
    caught(&dir, &[], "the checkpoint is not signed by the verifier key given");

    // 5. A manifest mismatch: a file changed, the manifest not.
    let dir = copy("manifest");
    let mut report = std::fs::read(dir.join(bundle::REPORT)).unwrap();
    report.extend_from_slice(b"<!-- changed -->");
    std::fs::write(dir.join(bundle::REPORT), report).unwrap();
    caught(&dir, &[], "report.html does not match the manifest");

    // 6. An alert citing an entry the bundle lacks.
    let dir = copy("alert-cites");
    let mut answers: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(bundle::ANSWERS)).unwrap()).unwrap();
    answers["alerts"][0]["entries"].as_array_mut().unwrap().push(absent.into());
    std::fs::write(dir.join(bundle::ANSWERS), serde_json::to_vec_pretty(&answers).unwrap()).unwrap();
    refresh_manifest(&dir);
    caught(&dir, &[], &format!("alert {id} cites entry {absent}, which the bundle does not hold"));

    // 7. A required cosignature missing.
    let witness = evidence_verifier::cosignature::CosignerKey::from_seed("witness.test/w", [3; 32]).unwrap();
    let witness_key = witness.witness_key().to_string();
    caught(
        &base,
        &["--witness-key", &witness_key, "--min-witnesses", "1"],
        "has 0 of the 1 witness cosignatures required",
    );

    // 8. A checkpoint that does not extend the trusted one: last quarter's size, another
    //    root, signed with the log's own key (a fork the auditor was shown).
    let signer = SignerKey::parse(std::fs::read_to_string(&key_file).unwrap().trim()).unwrap();
    let forked = Checkpoint { origin, size: old_size, root: [9; 32], extensions: vec![] };
    let fork = tmp.path().join("fork.checkpoint");
    std::fs::write(&fork, Note::sign(&forked.to_string(), &[&signer]).unwrap().to_string()).unwrap();
    caught(&base, &["--trusted-checkpoint", fork.to_str().unwrap()], "does not extend the trusted checkpoint");
    // ... and a later checkpoint than the bundle's (a rollback).
    let later = Checkpoint { origin: forked.origin.clone(), size: size + 5, root: [9; 32], extensions: vec![] };
    std::fs::write(&fork, Note::sign(&later.to_string(), &[&signer]).unwrap().to_string()).unwrap();
    let (ok, line) = verify(&base, &key, &["--trusted-checkpoint", fork.to_str().unwrap()]);
    assert!(!ok && line.contains("it is older"), "{line}");

    let distinct: BTreeSet<&String> = messages.iter().collect();
    assert_eq!(distinct.len(), 8, "each tampering has its own message: {messages:#?}");
    // The untouched bundle still verifies with everything asked.
    let (ok, line) = verify(&base, &key, &trusted);
    assert!(ok, "{line}");
}

#[test]
fn a_bundle_scoped_to_one_artifact_holds_no_other_event_s_bytes() {
    use evidence_ledger::ledger::{Access, LedgerDir};
    let tmp = tempfile::tempdir().unwrap();
    let (data, key_file, key) = demo(tmp.path());
    let out = tmp.path().join("one");
    let artifact = "index/support-kb-retrieval@4";
    let written = export(&data, &out, &["--artifact", artifact]);
    assert!(verify(&out, &key, &[]).0);
    let held = held(&out);
    // Exactly the entries its answer and alerts cite; the artifact's history among them.
    let answers: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(bundle::ANSWERS)).unwrap()).unwrap();
    let mut cited = BTreeSet::new();
    bundle::cited(&answers, &mut cited);
    assert_eq!(held, cited);
    assert_eq!(written["entries"].as_u64(), Some(held.len() as u64));
    // Every other entry of the log: neither its event's bytes nor its id anywhere in the bundle.
    let ledger = LedgerDir { data_dir: data.clone(), signer_key: Some(key_file) }
        .open_log(Access::Read, Default::default())
        .unwrap();
    let bundle_files = files(&out);
    let mut others = 0;
    for item in ledger.at().entries(0) {
        let (seq, record) = item.unwrap();
        if held.contains(&seq) {
            continue;
        }
        let entry = evidence_verifier::entry::EntryRef::decode(&record).unwrap();
        let event: serde_json::Value = serde_json::from_slice(entry.event).unwrap();
        let id = format!("\"{}\"", event["id"].as_str().unwrap());
        for (path, bytes) in &bundle_files {
            let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
            assert!(!found(entry.event), "{path} holds the bytes of entry {seq}, outside the scope");
            assert!(!found(id.as_bytes()), "{path} holds the id of entry {seq}, {id}, outside the scope");
        }
        others += 1;
    }
    assert!(others > 200, "the log has many other entries: {others}");
}

#[test]
fn the_report_renders_in_headless_chromium_with_networking_off_and_requests_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _, _) = demo(tmp.path());
    let out = tmp.path().join("bundle");
    export(&data, &out, &["--app", "support-assistant", "--env", "prod"]);
    let answers: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(bundle::ANSWERS)).unwrap()).unwrap();
    let alert_ids: Vec<&str> =
        answers["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert!(!alert_ids.is_empty());
    let shot = std::env::var_os("EVIDENCE_REPORT_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/report_check.py");
    let run = std::process::Command::new(common::test_python())
        .arg(script)
        .arg(out.join(bundle::REPORT))
        .arg(&shot)
        .output()
        .unwrap();
    assert!(run.status.success(), "the browser check failed: {}", stderr(&run));
    let seen: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    println!("screenshot: {}", shot.display());
    let text = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    assert!(text(&seen["scope"]).contains("what was live in support-assistant in prod"), "{seen}");
    assert!(text(&seen["title"]).contains("support-assistant in prod"), "{seen}");
    let questions: Vec<String> = seen["questions"].as_array().unwrap().iter().map(text).collect();
    assert_eq!(questions.len(), 1, "{seen}");
    assert!(questions[0].contains("what was live in support-assistant in prod"), "{seen}");
    let shown: Vec<String> = seen["alert_ids"].as_array().unwrap().iter().map(text).collect();
    assert_eq!(shown, alert_ids, "the alert table shows the bundle's alerts");
    let controls: Vec<String> = seen["controls"].as_array().unwrap().iter().map(text).collect();
    for control in ["Article 12", "Article 19", "GOVERN", "MEASURE", "MANAGE", "A.6.2.8"] {
        assert!(controls.iter().any(|c| c.contains(control)), "no {control} in {controls:?}");
    }
    assert_eq!(seen["scripts"], 0, "readable without scripts: it has none");
    assert_eq!(seen["external"], serde_json::json!([]), "no reference outside the file");
    assert_eq!(seen["requests"], serde_json::json!([seen["url"]]), "the page requested more than itself");
    assert_eq!(seen["pdf_magic"], "%PDF-", "it prints");
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000, "a screenshot of the rendered page");
}

#[test]
fn serve_streams_bundles_from_get_v1_export_to_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, key_file, key) = demo(tmp.path());
    let token = |role: &str| {
        let out = run(&data, &["token", "create", "--name", role, "--role", role]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    let tokens = (token("reader"), token("producer"), token("admin"));
    let server = common::server::Server::on(&data, &["--signer-key", key_file.to_str().unwrap()], tokens.clone());
    let old = tmp.path().join("old.checkpoint");
    let note = server.get("/v1/checkpoint", &tokens.0);
    std::fs::write(&old, note.body.as_bytes()).unwrap();
    let old_size = server.get("/v1/status", &tokens.0).json()["checkpoint_size"].as_u64().unwrap();
    // New events, not yet in a checkpoint: the export has one cut first.
    let more: Vec<String> = (0..30u64).map(evidence_schemas::sample::sample_event).collect();
    let posted = server.post("/v1/events", &tokens.1, "application/x-ndjson", more.join("\n").as_bytes());
    assert_eq!(posted.status, 200, "{}", posted.body);
    let remote = |out: &Path, scope: &[&str]| {
        evidence()
            .args(["--server", &server.url, "export", "--out", out.to_str().unwrap()])
            .args(scope)
            .env("EVIDENCE_TOKEN", &tokens.0)
            .output()
            .unwrap()
    };
    let archive = tmp.path().join("range.tar.gz");
    let out = remote(
        &archive,
        &[
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
            "--since-checkpoint",
            old.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, line) = verify(&archive, &key, &["--trusted-checkpoint", old.to_str().unwrap()]);
    assert!(ok, "{line}");
    assert!(line.contains(&format!("extends the trusted checkpoint of {old_size} entries")), "{line}");
    let size = server.get("/v1/status", &tokens.0).json()["checkpoint_size"].as_u64().unwrap();
    assert_eq!(size, old_size + 30, "the export covered the new entries with a checkpoint");
    assert!(line.contains(&format!("bundle OK: {size} entries proven")), "{line}");
    let dir = tmp.path().join("artifact");
    let out = remote(&dir, &["--artifact", "model/claims-model@2.0.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(verify(&dir, &key, &[]).0);
    assert_eq!(check_independently(&dir, &key)["ok"], true);
    // Problems: no such alert (404, before any byte), two scopes (400), no token (401), and a
    // producer's token (403).
    let answer = server.get("/v1/export?alert=alert-nope", &tokens.0);
    assert_eq!((answer.status, answer.content_type.as_str()), (404, "application/problem+json"), "{}", answer.body);
    assert!(answer.body.contains("no alert alert-nope"), "{}", answer.body);
    assert_eq!(server.get("/v1/export?alert=a&artifact=model/x@1", &tokens.0).status, 400);
    assert_eq!(server.get("/v1/export?since_size=3&alert=a", &tokens.0).status, 404);
    assert_eq!(server.get("/v1/export?alert=a", "").status, 401);
    assert_eq!(server.get("/v1/export?alert=a", &tokens.1).status, 403);
}
