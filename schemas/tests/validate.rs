//! Validation, case by case: each case is an event and the exact problems it must produce.

use evidence_schemas::sample::{digest_of, sample_event};
use evidence_schemas::{EventType, Limits, Rejection, Validator};
use serde_json::{json, Value};

fn digest() -> String {
    digest_of("support-bot@1.4.0")
}

fn artifact() -> Value {
    json!({"kind": "model", "name": "support-bot", "version": "1.4.0", "digest": digest()})
}

/// One valid event of every type.
fn valid_events() -> Vec<Value> {
    let env = |ty: &str, actor: bool, env: Option<&str>, data: Value| {
        let mut e = json!({"specversion": "1.0", "id": format!("id-{ty}"), "source": "ci/acme/support-bot",
            "type": ty, "time": "2026-04-03T10:15:00Z", "data": data});
        if actor {
            e["actor"] = json!("alice@acme");
        }
        if let Some(v) = env {
            e["env"] = json!(v);
        }
        e
    };
    vec![
        env(
            "registry.register",
            true,
            None,
            json!({"artifact": artifact(), "owner": "ml-team", "format": "safetensors", "risk_tier": "high"}),
        ),
        env("registry.sign", true, None, json!({"artifact": artifact(), "key_id": "sigstore:acme", "verified": true})),
        env(
            "registry.approve",
            true,
            Some("prod"),
            json!({"artifact": artifact(), "target_env": "prod", "decision": "approved",
            "exception": {"control": "leakage", "reason": "vendor eval accepted", "expires": "2026-06-01T00:00:00Z"}}),
        ),
        env(
            "registry.promote",
            true,
            Some("prod"),
            json!({"artifact": artifact(), "target_env": "prod", "from_env": "staging"}),
        ),
        env(
            "registry.rollback",
            true,
            Some("prod"),
            json!({"artifact": artifact(), "app": "support", "target_env": "prod"}),
        ),
        env(
            "registry.provider",
            true,
            None,
            json!({"provider": "openai", "model": "gpt-4o", "region": "eu", "data_classes": ["public"], "envs": ["prod"], "decision": "approved"}),
        ),
        env(
            "registry.policy",
            true,
            None,
            json!({"version": "7", "policy": {"required_gates": {"prod": ["leakage"]}, "required_approvals": {"prod": 1},
            "separation_of_duties": true, "require_signature": ["prod"], "unsafe_formats": ["pickle"], "feedback_requires_vetting": true,
            "drift": {"window": 500, "refusal_rate": 0.1, "safety_flag_rate": 0.05, "tool_call_rate": 0.2}}}),
        ),
        env(
            "pipeline.gate",
            true,
            Some("prod"),
            json!({"gate": "leakage", "category": "eval", "artifact": artifact(), "result": "pass", "target_env": "prod", "metrics": {"leak_rate": 0.0}}),
        ),
        env(
            "pipeline.deploy",
            true,
            Some("prod"),
            json!({"app": "support", "target_env": "prod", "artifacts": [artifact()], "config": {"chunks": 3}}),
        ),
        env(
            "proxy.request",
            false,
            Some("prod"),
            json!({"request_id": "r1", "app": "support", "provider": "openai", "model": "gpt-4o", "region": "eu", "data_class": "pii", "refused": false, "retrieval": {"chunks": 3}}),
        ),
        env(
            "feedback.submit",
            false,
            None,
            json!({"feedback_id": "f1", "batch": "b1", "channel": "user", "rating": 4}),
        ),
        env("feedback.vet", true, None, json!({"batch": "b1", "decision": "accepted"})),
        env("training.start", true, None, json!({"job_id": "j1", "base": artifact(), "feedback_batches": ["b1"]})),
        env("training.finish", true, None, json!({"job_id": "j1", "status": "succeeded", "output": artifact()})),
        env(
            "ledger.key",
            true,
            None,
            json!({"verifier_key": "l.example/x+01234567+AQ", "previous_key": "l.example/x+89abcdef+AQ"}),
        ),
    ]
}

#[test]
fn one_valid_event_of_every_type() {
    let v = Validator::for_ledger();
    let events = valid_events();
    assert_eq!(events.len(), EventType::ALL.len());
    for e in events {
        let ok = v.validate(e.to_string().as_bytes()).unwrap_or_else(|r| panic!("{e}: {r}"));
        assert_eq!(ok.event.event_type().as_str(), e["type"].as_str().unwrap());
    }
}

/// A producer cannot write the ledger's own record of a key rotation.
#[test]
fn the_ledgers_own_event_types_are_refused_from_producers() {
    let key = valid_events().into_iter().find(|e| e["type"] == "ledger.key").unwrap();
    let rejection = Validator::default().validate(key.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        rejection.problems().iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["/type: \"ledger.key\" is written by the ledger itself; no producer may send it"]
    );
}

/// Applies `edit` to the valid event of type `ty` and checks the exact problems reported.
fn check(ty: &str, edit: impl FnOnce(&mut Value), expected: &[&str]) {
    let mut e = valid_events().into_iter().find(|e| e["type"] == ty).unwrap();
    edit(&mut e);
    let got = match Validator::default().validate(e.to_string().as_bytes()) {
        Ok(_) => vec![],
        Err(r) => r.problems().iter().map(ToString::to_string).collect::<Vec<_>>(),
    };
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got_sorted, want, "for {ty} edited to {e}");
}

#[test]
fn bad_digest() {
    let d = "sha256:abc";
    check(
        "registry.register",
        |e| e["data"]["artifact"]["digest"] = json!(d),
        &["/data/artifact/digest: expected \"sha256:\" and 64 hex digits, found \"sha256:abc\""],
    );
}

#[test]
fn every_problem_is_reported() {
    check("pipeline.deploy", |e| {
        e.as_object_mut().unwrap().remove("actor");
        e["data"]["artifacts"][0]["kind"] = json!("weights");
        e["data"].as_object_mut().unwrap().remove("app");
        e["data"]["colour"] = json!("blue");
    }, &[
        "/actor: required field is missing",
        "/data/app: required field is missing",
        "/data/artifacts/0/kind: expected one of \"model\", \"prompt\", \"tool_schema\", \"dataset\", \"index\", \"routing\", \"guardrail\", \"config\", \"eval_suite\", found \"weights\"",
        "/data/colour: unknown field: the contract has no such field here",
    ]);
}

#[test]
fn envelope_rules() {
    check(
        "proxy.request",
        |e| {
            e.as_object_mut().unwrap().remove("env");
        },
        &["/env: required field is missing"],
    );
    check("proxy.request", |e| e["specversion"] = json!("0.3"), &["/specversion: expected \"1.0\", found \"0.3\""]);
    check("proxy.request", |e| e["id"] = json!(""), &["/id: must not be empty"]);
    check("proxy.request", |e| e["id"] = json!("x".repeat(129)), &["/id: longer than 128 characters"]);
    check("proxy.request", |e| e["time"] = json!("2026-04-03 10:15"),
        &["/time: expected an RFC 3339 date-time with offset, like \"2026-04-03T10:15:00Z\", found \"2026-04-03 10:15\""]);
    check("proxy.request", |e| e["time"] = json!("2026-04-03T10:15:00"),
        &["/time: expected an RFC 3339 date-time with offset, like \"2026-04-03T10:15:00Z\", found \"2026-04-03T10:15:00\""]);
    check("proxy.request", |e| e["type"] = json!("proxy.reqest"),
        &["/type: expected one of \"registry.register\", \"registry.sign\", \"registry.approve\", \"registry.promote\", \"registry.rollback\", \"registry.provider\", \"registry.policy\", \"pipeline.gate\", \"pipeline.deploy\", \"proxy.request\", \"feedback.submit\", \"feedback.vet\", \"training.start\", \"training.finish\", \"ledger.key\", found \"proxy.reqest\""]);
    check("proxy.request", |e| e["env"] = json!("Prod"),
        &["/env: expected an environment name (a lower-case letter, then up to 31 letters, digits, '-' or '_'), found \"Prod\""]);
    check("proxy.request", |e| e["data"] = json!([1]), &["/data: expected an object, found an array"]);
    check("proxy.request", |e| e["traceparent"] = json!("00-abc"), &[]);
    check(
        "proxy.request",
        |e| e["Trace_Parent"] = json!("x"),
        &["/Trace_Parent: unknown field: the contract has no such field here"],
    );
    check(
        "feedback.vet",
        |e| {
            e.as_object_mut().unwrap().remove("actor");
        },
        &["/actor: required field is missing"],
    );
    check("feedback.submit", |e| e["actor"] = json!("bob"), &[]);
}

#[test]
fn gate_with_target_env_needs_env_and_they_agree() {
    check(
        "pipeline.gate",
        |e| {
            e.as_object_mut().unwrap().remove("env");
        },
        &["/env: required field is missing"],
    );
    check(
        "pipeline.gate",
        |e| {
            e.as_object_mut().unwrap().remove("env");
            e["data"].as_object_mut().unwrap().remove("target_env");
        },
        &[],
    );
    check(
        "registry.promote",
        |e| e["env"] = json!("staging"),
        &["/env: \"staging\" differs from /data/target_env \"prod\": they must agree"],
    );
}

#[test]
fn optional_fields_are_omitted_not_null() {
    check(
        "registry.register",
        |e| e["data"]["publisher"] = json!(null),
        &["/data/publisher: expected a string, found null"],
    );
    check("proxy.request", |e| e["data"]["tokens_in"] = json!(-3), &["/data/tokens_in: must be at least 0, found -3"]);
    check("pipeline.deploy", |e| e["data"]["artifacts"] = json!([]), &["/data/artifacts: needs at least 1 item(s)"]);
    check(
        "registry.approve",
        |e| {
            e["data"]["exception"].as_object_mut().unwrap().remove("reason");
        },
        &["/data/exception/reason: required field is missing"],
    );
}

fn reject(raw: &[u8], limits: Limits) -> Rejection {
    Validator::new(limits).validate(raw).expect_err("must be rejected")
}

#[test]
fn malformed_input() {
    let l = Limits::default();
    assert_eq!(reject(b"{\"a\": ", l).to_string(), "event is not JSON: EOF while parsing a value at line 1, column 6");
    assert_eq!(reject(b"\xff{}", l), Rejection::NotUtf8 { offset: 0 });
    assert_eq!(reject(b"[]", l).to_string(), "(event): expected an object, found an array");
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(300_000));
    assert_eq!(reject(big.as_bytes(), l).to_string(), "event is 300011 bytes, over the limit of 262144 bytes");
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let mut e = valid_events().remove(0);
    e["data"]["license"] = serde_json::from_str(&deep).unwrap();
    let r = reject(e.to_string().as_bytes(), l);
    assert!(matches!(&r, Rejection::TooDeep { limit: 32, pointer } if pointer.starts_with("/data/license/0/0")), "{r}");
}

#[test]
fn canonical_bytes_ignore_key_order_and_whitespace() {
    let v = Validator::default();
    let a = r#"{"actor":"a","data":{"batch":"b","decision":"accepted"},"id":"x","source":"s","specversion":"1.0","time":"2026-04-03T10:15:00Z","type":"feedback.vet"}"#;
    let b = "{ \"data\": {\"decision\": \"accepted\",\n \"batch\": \"b\"}, \"actor\":\"a\", \"time\":\"2026-04-03T10:15:00Z\",\n\t\"type\":\"feedback.vet\",\"source\":\"s\",\"id\":\"x\",\"specversion\":\"1.0\"}";
    let ca = v.validate(a.as_bytes()).unwrap().canonical;
    assert_eq!(ca, v.validate(b.as_bytes()).unwrap().canonical);
    assert_eq!(ca, a.as_bytes(), "a compact, sorted event is already canonical");
}

#[test]
fn canonical_numbers_follow_rfc_8785() {
    let v = Validator::default();
    let mut e = valid_events().remove(7);
    e["data"]["metrics"] = serde_json::from_str(r#"{"a": 1.0, "b": 1e3, "c": 0.000001, "d": 1E-7}"#).unwrap();
    let c = String::from_utf8(v.validate(e.to_string().as_bytes()).unwrap().canonical).unwrap();
    assert!(c.contains(r#""metrics":{"a":1,"b":1000,"c":0.000001,"d":1e-7}"#), "{c}");
}

#[test]
fn sample_events_are_valid_and_about_500_bytes() {
    let v = Validator::default();
    let mut total = 0;
    for i in 0..2000 {
        let e = sample_event(i);
        total += e.len();
        v.validate(e.as_bytes()).unwrap_or_else(|r| panic!("sample {i}: {r}"));
    }
    let mean = total / 2000;
    assert!((400..650).contains(&mean), "mean sample size {mean}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any reordering of an event's keys and any whitespace gives the same canonical bytes.
        #[test]
        fn canonical_is_independent_of_key_order(i in 0u64..100_000, seed in any::<u64>()) {
            let v = Validator::default();
            let e: Value = serde_json::from_str(&sample_event(i)).unwrap();
            let shuffled = shuffle(&e, seed);
            prop_assert_eq!(
                v.validate(sample_event(i).as_bytes()).unwrap().canonical,
                v.validate(shuffled.as_bytes()).unwrap().canonical
            );
        }
    }

    /// Writes the value as JSON text with object keys in a seed-dependent order and with
    /// extra whitespace (written by hand, since serde_json's map sorts its keys).
    fn shuffle(v: &Value, seed: u64) -> String {
        match v {
            Value::Object(o) => {
                let mut kv: Vec<(&String, &Value)> = o.iter().collect();
                kv.sort_by_key(|(k, _)| blake3::hash(format!("{seed}{k}").as_bytes()).as_bytes()[0]);
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{} :\n {}", Value::String((*k).clone()), shuffle(v, seed)))
                    .collect();
                format!("{{ {} }}", parts.join(" ,\t"))
            }
            Value::Array(a) => format!("[ {} ]", a.iter().map(|x| shuffle(x, seed)).collect::<Vec<_>>().join(" , ")),
            other => other.to_string(),
        }
    }
}

/// The problems of a raw event text, as `pointer: message`.
fn problems_of(text: &str) -> Vec<String> {
    match Validator::default().validate(text.as_bytes()) {
        Ok(_) => vec![],
        Err(r) => r.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn integers_canonical_json_cannot_keep_are_refused_with_their_pointer() {
    // The poison event: u64::MAX tokens used to be accepted, stored as 1.8446744073709552e19
    // and then refused by every projection of the log.
    let mut e = valid_events().into_iter().find(|e| e["type"] == "proxy.request").unwrap();
    e["data"]["tokens_in"] = json!(u64::MAX);
    let got = problems_of(&e.to_string());
    assert!(!got.is_empty() && got.iter().all(|p| p.starts_with("/data/tokens_in: ")), "{got:?}");
    assert!(got.iter().any(|p| p.contains("where canonical JSON stops keeping integers exact")), "{got:?}");
    // 2^53 + 1 and 2^53 would be the same number once canonical: neither is accepted.
    for n in [9_007_199_254_740_993u64, 9_007_199_254_740_992] {
        e["data"]["tokens_in"] = json!(n);
        assert!(!problems_of(&e.to_string()).is_empty(), "{n} accepted");
    }
    e["data"]["tokens_in"] = json!(9_007_199_254_740_991u64);
    assert_eq!(problems_of(&e.to_string()), Vec::<String>::new());
    // A number outside a field's range anywhere in the event, too.
    e["data"]["latency_ms"] = json!(1e300);
    let got = problems_of(&e.to_string());
    assert!(!got.is_empty() && got.iter().all(|p| p.starts_with("/data/latency_ms: ")), "{got:?}");
    e["data"]["latency_ms"] = json!(86_400_001.0);
    assert_eq!(problems_of(&e.to_string()).len(), 1, "past a day");
}

#[test]
fn repeated_keys_are_refused_at_the_repetition() {
    let e = valid_events().into_iter().find(|e| e["type"] == "proxy.request").unwrap();
    let text = e.to_string();
    let id = format!(r#""id":{}"#, e["id"]);
    let twice = text.replacen(&id, &format!(r#"{id},"id":"dupB""#), 1);
    assert_ne!(twice, text);
    assert_eq!(problems_of(&twice), [r#"/id: the key "id" appears more than once in this object"#]);
    let nested = text.replacen(r#""app":"#, r#""app":"a","app":"#, 1);
    assert_eq!(problems_of(&nested), [r#"/data/app: the key "app" appears more than once in this object"#]);
}

/// A policy's environments must be standard or declared; turning drift off is written out.
#[test]
fn a_policy_names_only_known_envs_and_writes_out_what_it_turns_off() {
    check("registry.policy", |e| e["data"]["policy"] = json!({"required_approvals": {"prd": 1}, "require_signature": ["prod", "qa"]}), &[
        "/data/policy/required_approvals/prd: the environment \"prd\" is neither dev, staging nor prod, and the policy does not declare it in envs",
        "/data/policy/require_signature/1: the environment \"qa\" is neither dev, staging nor prod, and the policy does not declare it in envs",
    ]);
    check(
        "registry.policy",
        |e| e["data"]["policy"] = json!({"envs": ["qa"], "require_signature": ["qa"], "drift": "off"}),
        &[],
    );
    check("registry.policy", |e| e["data"]["policy"] = json!({}), &[]);
    let refused = |drift: Value| {
        let mut e = valid_events().into_iter().find(|e| e["type"] == "registry.policy").unwrap();
        e["data"]["policy"]["drift"] = drift;
        Validator::default().validate(e.to_string().as_bytes()).unwrap_err().problems()[0].pointer.clone()
    };
    let mut long = valid_events().into_iter().find(|e| e["type"] == "registry.policy").unwrap();
    long["data"]["policy"]["unsafe_formats"] = json!(["x".repeat(257)]);
    let problems = Validator::default().validate(long.to_string().as_bytes()).unwrap_err().problems();
    assert_eq!(problems[0].pointer, "/data/policy/unsafe_formats/0", "{problems:?}");
    assert_eq!(refused(json!("on")), "/data/policy/drift");
    assert_eq!(refused(json!(false)), "/data/policy/drift");
}
