//! Views and rules: golden tests over the example scenarios (each yields exactly the alerts in
//! `examples/scenarios/expected/`), and a property test over random contract streams (a
//! rebuild reproduces the incremental views byte for byte, batching does not matter, and
//! feeding a stream twice adds nothing).
//!
//! `UPDATE_GOLDEN=1` rewrites the expected files; review the diff before committing it.

use std::path::{Path, PathBuf};

mod common;

use common::stream::{feed, ledger};
use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::examples::SCENARIOS;
use evidence_ledger::governance::Views;
use evidence_ledger::query;
use evidence_ledger::{Alert, CheckpointPolicy, Ledger, Log, MemStorage, Rule, Storage};
use evidence_schemas::Validator;
use evidence_verifier::SignerKey;
use proptest::prelude::*;
use serde_json::{json, Value};

fn view_keys(store: &MemStorage) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.range(b"v", b"w").map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios")
}

/// The scenarios the demo ingests ([`SCENARIOS`]): each name with its file. The directory must
/// hold exactly these files, so that a scenario added, renamed or removed on one side only is
/// a failure, not a silent skip.
fn scenarios() -> Vec<(&'static str, PathBuf)> {
    let mut on_disk: Vec<String> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|(name, _)| name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "examples/scenarios and evidence_ledger::examples::SCENARIOS differ");
    SCENARIOS.iter().map(|(name, _)| (*name, scenario_dir().join(format!("{name}.ndjson")))).collect()
}

fn alerts_of(path: &Path) -> Vec<Alert> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut l = ledger();
    feed(&mut l, &Validator::default(), &lines, 1000);
    query::alerts(l.log().store(), None, None, None).unwrap()
}

#[test]
fn each_scenario_raises_exactly_its_expected_alerts() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let mut rules_seen = std::collections::BTreeSet::new();
    let mut ran = 0;
    for (name, path) in scenarios() {
        ran += 1;
        let expected_path = path.parent().unwrap().join("expected").join(format!("{name}.ndjson"));
        let alerts = alerts_of(&path);
        let got: String = alerts.iter().map(|a| serde_json::to_string(a).unwrap() + "\n").collect();
        for a in alerts {
            rules_seen.insert(a.rule);
        }
        if update {
            std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", expected_path.display()));
        if got != want {
            failures.push(format!("{name}:\n--- expected\n{want}--- got\n{got}"));
        }
        println!("{name}: {} alert(s)", got.lines().count());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ran, 13, "every scenario ran");
    let all: std::collections::BTreeSet<Rule> = Rule::ALL.into_iter().collect();
    assert_eq!(rules_seen, all, "every rule has a scenario that raises it");
}

#[test]
fn the_clean_release_raises_no_alert() {
    let (_, path) = scenarios().into_iter().find(|(name, _)| *name == "clean-release").unwrap();
    let alerts = alerts_of(&path);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn each_focused_scenario_raises_its_own_rule() {
    // Every rule has a scenario named after it, which raises that rule, and only that rule.
    let scenarios = scenarios();
    for rule in Rule::ALL {
        let name = rule.name().replace(['.', '_'], "-");
        let (_, path) = scenarios.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no scenario {name}"));
        let alerts = alerts_of(path);
        assert!(!alerts.is_empty(), "{name} raises nothing");
        for a in &alerts {
            assert_eq!(a.rule, rule, "{name}: {}", a.explanation);
            assert!(!a.entries.is_empty() && a.entries.contains(&a.seq), "{name}: {a:?}");
        }
    }
}

// ---- property test: random valid streams from the contract ----

use common::stream::event;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rebuild_reproduces_incremental_views_and_replay_adds_nothing(
        choices in prop::collection::vec(any::<(u8, u8, u8, u8, u8)>(), 1..220),
        batch in 1usize..40,
        reopen_at in 0usize..220,
    ) {
        let validator = Validator::default();
        let lines: Vec<String> = choices.iter().enumerate().map(|(i, c)| event(i, *c)).collect();

        // Incrementally, in batches, with the views reloaded from the store part way through.
        let mut l = ledger();
        let cut = reopen_at.min(lines.len());
        feed(&mut l, &validator, &lines[..cut], batch);
        let mut l = Ledger::open(l.into_log()).unwrap();
        feed(&mut l, &validator, &lines[cut..], batch);
        let incremental = view_keys(l.log().store());
        let alerts = query::alerts(l.log().store(), None, None, None).unwrap();
        for a in &alerts {
            prop_assert!(a.entries.iter().all(|&e| e < l.log().size()), "{a:?}");
        }

        // One entry a batch gives the same bytes.
        let mut single = ledger();
        feed(&mut single, &validator, &lines, 1);
        prop_assert!(view_keys(single.log().store()) == incremental, "batching changed the views");

        // A rebuild gives the same bytes.
        let size = l.log().size();
        prop_assert_eq!(l.rebuild().unwrap(), size);
        prop_assert!(view_keys(l.log().store()) == incremental, "rebuild differs from incremental");

        // Feeding the stream again adds nothing: no entry, no view change, no alert.
        feed(&mut l, &validator, &lines, batch);
        prop_assert_eq!(l.log().size(), size);
        prop_assert!(view_keys(l.log().store()) == incremental, "replay changed the views");
    }
}

#[test]
fn the_random_streams_exercise_the_rules() {
    // Guards the property test against generating streams in which nothing ever fires.
    let validator = Validator::default();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut lines = Vec::new();
    for i in 0..3000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let b = rng.to_le_bytes();
        lines.push(event(i, (b[0], b[1], b[2], b[3], b[4])));
    }
    let mut l = ledger();
    feed(&mut l, &validator, &lines, 100);
    let rules: std::collections::BTreeSet<Rule> =
        query::alerts(l.log().store(), None, None, None).unwrap().into_iter().map(|a| a.rule).collect();
    println!("rules raised by a random stream: {rules:?}");
    assert!(rules.len() >= 9, "only {rules:?}");
}

// ---- defects found when the crate was laid out by concern ----

fn envelope(id: &str, ty: &str, data: Value) -> String {
    json!({"specversion": "1.0", "id": id, "source": "feedback/test", "type": ty,
           "time": "2026-04-01T00:00:00Z", "actor": "ana@x", "data": data})
    .to_string()
}

fn submit(id: &str, batch: &str) -> String {
    envelope(id, "feedback.submit", json!({"feedback_id": id, "batch": batch, "channel": "user"}))
}

fn vet(id: &str, batch: &str) -> String {
    envelope(id, "feedback.vet", json!({"batch": batch, "decision": "accepted"}))
}

#[test]
fn names_are_capped_by_the_contract_and_long_ones_never_share_a_view() {
    // The contract caps a batch name (256 characters): a longer one is refused at intake,
    // with its pointer.
    let long = "b".repeat(70_000);
    let err = Validator::default().validate(submit("s0", &format!("{long}1")).as_bytes()).unwrap_err();
    assert!(err.problems().iter().any(|p| p.pointer == "/data/batch"), "{err}");
    // Entries stored before the caps existed may hold such names: projecting them keeps two
    // batches that differ only past 65,535 bytes apart, so vetting one says nothing of the
    // other.
    let (vetted, other) = (format!("{long}1"), format!("{long}2"));
    let store = MemStorage::default();
    let mut views = Views::load(&store).unwrap();
    let lines = [submit("s1", &vetted), submit("s2", &other), vet("v1", &vetted)];
    for (seq, line) in lines.iter().enumerate() {
        let event = evidence_schemas::parse_validated(line.as_bytes()).unwrap();
        views.project(seq as u64, &std::sync::Arc::new(event), &evidence_ledger::governance::NoHistory);
    }
    views.save(&store).unwrap();
    let base: query::ArtifactName = "model/base@1".parse().unwrap();
    let decision = query::training_gate(&store, "job", &base, &[vetted.clone(), other.clone()]).unwrap();
    let verdict = |name: &str| decision.batches.iter().find(|b| b.batch == name).unwrap();
    assert!(verdict(&vetted).allowed, "{}", verdict(&vetted).reason);
    assert!(!verdict(&other).allowed, "{}", verdict(&other).reason);
    assert!(verdict(&other).reason.starts_with("never vetted (1 submissions)"), "{}", verdict(&other).reason);
}

#[test]
fn an_alert_whose_time_does_not_parse_is_an_error_not_kept() {
    let mut l = ledger();
    let (_, text) = SCENARIOS.iter().find(|(name, _)| *name == "gate-skipped").unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    feed(&mut l, &Validator::default(), &lines, 1000);
    let (from, to) = evidence_ledger::governance::keys::alerts();
    let (key, value) = l.store().range(&from, &to).next().unwrap().unwrap();
    let mut alert: Value = serde_json::from_slice(&value).unwrap();
    alert["time"] = json!("yesterday");
    let mut wb = evidence_ledger::store::WriteBatch::default();
    wb.put(key.to_vec(), serde_json::to_vec(&alert).unwrap());
    l.store().commit(wb).unwrap();
    let since = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    for since in [None, Some(since)] {
        let err = query::alerts(l.store(), since, None, None).unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
        assert!(err.to_string().contains("time \"yesterday\""), "{err}");
    }
}

/// Hardening item 1: an entry the views cannot apply (here: one an older validator accepted, a
/// policy naming an undeclared env, and bytes that are not JSON) is recorded as an alert of its
/// own and skipped; the entries after it are projected as usual, now and on every rebuild.
#[test]
fn an_entry_the_views_cannot_apply_raises_its_own_alert_and_projection_goes_on() {
    let signer = SignerKey::from_seed("test.example/views", [7u8; 32]).unwrap();
    let mut log = Log::open(MemStorage::default(), vec![signer], CheckpointPolicy::default()).unwrap();
    let validator = Validator::default();
    let text = std::fs::read_to_string(scenario_dir().join("gate-skipped.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Stored bytes the current contract no longer reads back, as an older ledger could hold.
    let forged = |id: &str, canonical: Vec<u8>| {
        let mut valid = validator.validate(lines[0].as_bytes()).unwrap();
        std::sync::Arc::make_mut(&mut valid.event).id = id.into();
        valid.digest = *blake3::hash(&canonical).as_bytes();
        valid.canonical = canonical;
        valid
    };
    let typo = json!({"specversion": "1.0", "id": "p-typo", "source": "old/registry", "type": "registry.policy",
        "time": "2026-04-01T00:00:00Z", "actor": "board", "data": {"version": "typo",
        "policy": {"required_gates": {"production": ["leakage"]}}}});
    let mut records = vec![forged("p-typo", typo.to_string().into_bytes()), forged("garbled", b"{not json".to_vec())];
    records.extend(lines.iter().map(|l| validator.validate(l.as_bytes()).unwrap()));
    let records = records
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record {
            origin: Origin::File { path: "old".into(), line: i as u64 + 1 },
            verdict: Verdict::Valid(Box::new(v)),
        })
        .collect();
    log.append(&Batch { records, positions: Vec::new() }).unwrap();

    let mut ledger = Ledger::open(log).expect("the views open past the bad entries");
    let check = |ledger: &Ledger<MemStorage>| {
        let alerts = query::alerts(ledger.log().store(), None, None, None).unwrap();
        let skipped: Vec<u64> = alerts.iter().filter(|a| a.rule == Rule::EntryUnprojectable).map(|a| a.seq).collect();
        assert_eq!(skipped, [0, 1], "{alerts:#?}");
        assert!(alerts[0].explanation.contains("/data/policy/required_gates/production"), "{}", alerts[0].explanation);
        assert!(alerts.iter().any(|a| a.rule == Rule::GateSkipped), "the scenario after them still raises its alert");
        assert_eq!(ledger.views().watermark(), ledger.log().size());
    };
    check(&ledger);
    ledger.rebuild().unwrap();
    check(&ledger);
    let rule: Rule = "ledger.unprojectable".parse().unwrap();
    assert_eq!(query::alerts(ledger.log().store(), None, Some(rule), None).unwrap().len(), 2);
}

/// The records of `lines` as a batch (each line valid or not), with file origins from `first`.
fn records(v: &Validator, lines: &[String], first: usize) -> Vec<Record> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| Record {
            origin: Origin::File { path: "round".into(), line: (first + i + 1) as u64 },
            verdict: match v.validate(line.as_bytes()) {
                Ok(valid) => Verdict::Valid(Box::new(valid)),
                Err(rejection) => Verdict::Rejected { rejection, raw: line.as_bytes().to_vec() },
            },
        })
        .collect()
}

/// The service writes a round as several atomic slices with one flush: the outcomes, the
/// entries' events, the counters and every view equal one batch's, duplicates and conflicts
/// across slices included.
#[test]
fn a_round_written_in_slices_stores_what_one_batch_stores() {
    let v = Validator::default();
    let mut lines: Vec<String> = SCENARIOS.iter().flat_map(|(_, text)| text.lines().map(str::to_string)).collect();
    // A duplicate, a conflicting event and a rejected line, far from the originals.
    lines.push(lines[3].clone());
    let actor = lines.iter().find(|l| l.contains("\"actor\":\"")).unwrap();
    lines.push(actor.replacen("\"actor\":\"", "\"actor\":\"someone-else-", 1));
    lines.push("{not json".to_string());
    let whole = Batch { records: records(&v, &lines, 0), positions: Vec::new() };
    let mut one = ledger();
    let want = one.append(&whole).unwrap();
    let slices: Vec<Batch> = lines
        .chunks(7)
        .enumerate()
        .map(|(n, chunk)| Batch { records: records(&v, chunk, n * 7), positions: Vec::new() })
        .collect();
    let mut sliced = ledger();
    let got = sliced.append_slices(&slices).unwrap();
    assert_eq!(got, want, "the same outcome for every record");
    assert!(want.outcomes.iter().any(|o| matches!(o, evidence_ingest::Outcome::Duplicate { .. })));
    let quarantined = want.outcomes.iter().filter(|o| matches!(o, evidence_ingest::Outcome::Quarantined { .. }));
    assert_eq!(quarantined.count(), 2, "the conflict and the rejected line");
    let (a, b) = (one.log(), sliced.log());
    assert_eq!(
        (a.size(), a.status().duplicates, a.status().quarantined),
        (b.size(), b.status().duplicates, b.status().quarantined)
    );
    let events = |l: &Log<MemStorage>| -> Vec<Vec<u8>> {
        l.entries(0)
            .map(|e| evidence_verifier::entry::EntryRef::decode(&e.unwrap().1).unwrap().event.to_vec())
            .collect()
    };
    assert_eq!(events(a), events(b));
    assert!(view_keys(a.store()) == view_keys(b.store()), "the views are the same");
    assert_eq!(a.latest_size(), b.latest_size(), "a checkpoint is cut once the round is flushed");
}

// ---- the alert outbox ----

use evidence_ledger::governance::outbox::{self, Activity};

/// Every alert of a stream is created once in the outbox, closed once after that when (and
/// only when) it ends resolved, and a fold counted one request a save announces an update
/// whenever its count reaches a power of two; the changes are numbered from 0 without a gap.
#[test]
fn the_outbox_holds_every_change_of_every_alert_in_order() {
    let validator = Validator::default();
    let scenario = |name: &str| -> Vec<String> {
        SCENARIOS.iter().find(|(n, _)| *n == name).unwrap().1.lines().map(str::to_string).collect()
    };
    // The clean release with its gates late (gate.skipped opened, then resolved), and the
    // unapproved route's requests one a batch (a fold counted at every save).
    let (early, gates): (Vec<String>, Vec<String>) =
        scenario("clean-release").into_iter().partition(|l| !l.contains("\"type\":\"pipeline.gate\""));
    let mut l = ledger();
    feed(&mut l, &validator, &early, 1000);
    feed(&mut l, &validator, &gates, 1000);
    let mut route = scenario("routing-unapproved");
    let breach = route.last().unwrap().clone();
    route.extend((0..6).map(|i| {
        breach.replace("routing-unapproved-007", &format!("more-{i}")).replace("10:05:00Z", &format!("10:1{i}:00Z"))
    }));
    feed(&mut l, &validator, &route, 1);
    let store = l.log().store();
    let changes = outbox::read(store, 0, u64::MAX, 100_000).unwrap();
    assert_eq!(outbox::head(store).unwrap(), changes.len() as u64);
    assert!(changes.iter().enumerate().all(|(i, c)| c.number == i as u64), "numbers with a gap");
    let alerts = query::alerts(store, None, None, None).unwrap();
    assert!(alerts.iter().any(|a| a.status == evidence_ledger::governance::Status::Resolved), "nothing resolved");
    // The route's requests came one a save: its fold announces every power of two it reached.
    let folded = alerts.iter().find(|a| a.rule == Rule::RoutingUnapproved).expect("a routing.unapproved alert");
    assert!(folded.fold.as_ref().is_some_and(|f| f.occurrences >= 8), "{folded:?}");
    for a in &alerts {
        let of = |activity| changes.iter().filter(|c| c.alert.id == a.id && c.activity == activity).count();
        assert_eq!(of(Activity::Create), 1, "{}: created {} times", a.id, of(Activity::Create));
        let resolved = a.status == evidence_ledger::governance::Status::Resolved;
        assert_eq!(of(Activity::Close), usize::from(resolved), "{}: closes", a.id);
        let first = |activity| changes.iter().position(|c| c.alert.id == a.id && c.activity == activity);
        if resolved {
            assert!(first(Activity::Create) < first(Activity::Close), "{}: closed before it was created", a.id);
        }
        if let (Rule::RoutingUnapproved, Some(fold)) = (a.rule, &a.fold) {
            let powers = (1..64).map(|k| 1u64 << k).take_while(|&p| p <= fold.occurrences).count();
            assert_eq!(of(Activity::Update), powers, "{}: {} occurrences", a.id, fold.occurrences);
        }
    }
}
