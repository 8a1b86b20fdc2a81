//! Deterministic contract events for tests, benchmarks and load scripts: event `i` is always
//! the same bytes, every event is valid, and `(source, id)` is unique per `i`.
//!
//! The mix is what a busy ledger sees: mostly gateway traffic (`proxy.request`, 7 in 10), gate
//! results (1 in 10) and feedback (1 in 10), and every hundred events one registration,
//! signature, approval, promotion, deployment and vetting decision. It names 1,000 model
//! artifacts (one version each) and 50 apps. Most releases are governed; some are not (a failed
//! gate, a failed signature check, a route not yet approved), so the rules have work to do.
//! Events are about 500 bytes. No I/O.

use serde_json::json;

/// A `sha256:` digest derived from a label, stable across runs.
pub fn digest_of(label: &str) -> String {
    // Not a hash of any content: just 64 stable hex digits per label, spread out by a
    // 64-bit FNV-1a mix repeated with four seeds.
    let mut out = String::from("sha256:");
    for seed in 0u64..4 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in label.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// Model artifact `a` (of 1,000): `model-<a>` at one version, with a stable digest.
fn artifact(a: u64) -> serde_json::Value {
    let name = format!("model-{a:03}");
    let version = format!("1.{}.0", a % 7);
    json!({ "kind": "model", "name": name, "version": version, "digest": digest_of(&format!("{name}@{version}")) })
}

/// The app sample event `i` concerns: its hundred deploys to this app and serves its requests.
/// A producer keys the event by it (the Kafka message key), as `ops/README.md` asks.
pub fn sample_app(i: u64) -> String {
    format!("app-{:02}", (i / 100) % 50)
}

/// The `i`-th sample event as one line of JSON (no trailing newline).
pub fn sample_event(i: u64) -> String {
    let time =
        format!("2026-04-{:02}T{:02}:{:02}:{:02}Z", 1 + (i / 86_400) % 28, (i / 3600) % 24, (i / 60) % 60, i % 60);
    let id = format!("evt-{i:010}");
    // Events walk through the artifacts and apps a hundred at a time: each hundred registers,
    // gates, approves and deploys one artifact to one app, which then serves requests.
    let (lifecycle, owner_app) = (artifact((i / 100) % 1000), sample_app(i));
    let registry = |ty: &str, actor: &str, env: Option<&str>, data: serde_json::Value| {
        let mut e = json!({
            "specversion": "1.0", "id": id, "source": "registry/acme/mlflow", "type": ty, "time": time,
            "subject": format!("model/{}", lifecycle["name"].as_str().unwrap_or_default()), "actor": actor, "data": data,
        });
        if let Some(env) = env {
            e["env"] = json!(env);
        }
        e
    };
    let value = match (i % 100, i % 10) {
        (11, _) => registry(
            "registry.register",
            "maria@acme",
            None,
            json!({ "artifact": lifecycle, "owner": "ml-platform", "publisher": "acme", "format": "safetensors", "risk_tier": "medium", "license": "proprietary" }),
        ),
        (21, _) => registry(
            "registry.sign",
            "signer-bot@acme",
            None,
            json!({ "artifact": lifecycle, "key_id": "sigstore:acme-release", "verified": i % 7000 != 21 }),
        ),
        (31, _) => registry(
            "registry.approve",
            "sam@acme",
            Some("prod"),
            json!({ "artifact": lifecycle, "target_env": "prod", "decision": "approved", "role": "security-reviewer" }),
        ),
        (41, _) => {
            let mut e = registry(
                "pipeline.deploy",
                "deploy-bot@acme",
                Some("prod"),
                json!({ "app": owner_app, "target_env": "prod", "artifacts": [lifecycle], "deploy_id": format!("dep-{i}") }),
            );
            e["source"] = json!("ci/acme/github-actions");
            e
        }
        (51, _) => registry(
            "registry.promote",
            "maria@acme",
            Some("prod"),
            json!({ "artifact": lifecycle, "target_env": "prod", "from_env": "staging" }),
        ),
        (61, _) => {
            let mut e = registry(
                "feedback.vet",
                "qa-lead@acme",
                None,
                json!({ "batch": format!("batch-{}", i / 1000), "decision": "accepted", "reason": "spot-checked" }),
            );
            e["source"] = json!("feedback/acme/review");
            e.as_object_mut().map(|o| o.remove("subject"));
            e
        }
        (71, _) if i % 1000 == 71 => registry(
            "registry.provider",
            "platform-team@acme",
            None,
            json!({ "provider": "openai", "model": "gpt-4o-mini", "region": "eu-west-1", "data_classes": ["customer-pii", "public"], "envs": ["prod"], "decision": "approved" }),
        ),
        (_, 0) => json!({
            "specversion": "1.0",
            "id": id,
            "source": "ci/acme/evals",
            "type": "pipeline.gate",
            "time": time,
            "subject": format!("model/{}", lifecycle["name"].as_str().unwrap_or_default()),
            "actor": "ci-bot@acme",
            "data": {
                "gate": if i.is_multiple_of(20) { "prompt-injection" } else { "leakage" },
                "category": "eval",
                "artifact": lifecycle,
                "result": if i.is_multiple_of(700) { "fail" } else { "pass" },
                "suite": { "name": "red-team", "version": "2026.03" },
                "metrics": { "attack_success_rate": (i % 100) as f64 / 1000.0 },
                "run_id": format!("run-{i}"),
            }
        }),
        (_, 5) => json!({
            "specversion": "1.0",
            "id": id,
            "source": "feedback/acme/widget",
            "type": "feedback.submit",
            "time": time,
            "data": {
                "feedback_id": format!("fb-{i}"),
                "batch": format!("batch-{}", i / 1000),
                "channel": "user",
                "target": { "request_id": format!("req-{}", i - 1) },
                "rating": (i % 5) as f64,
                "label": "The answer cited the wrong refund policy and was far too long.",
            }
        }),
        _ => json!({
            "specversion": "1.0",
            "id": id,
            "source": format!("gateway/acme/{owner_app}"),
            "type": "proxy.request",
            "time": time,
            "env": "prod",
            "data": {
                "request_id": format!("req-{i}"),
                "app": owner_app,
                "provider": "openai",
                "model": "gpt-4o-mini",
                "region": "eu-west-1",
                "data_class": "customer-pii",
                "model_digest": lifecycle["digest"],
                "tokens_in": 200 + i % 300,
                "tokens_out": 50 + i % 120,
                "latency_ms": (300 + i % 900) as f64,
                "status": "ok",
                "refused": i.is_multiple_of(17),
                "safety_flags": [],
                "tool_calls": if i.is_multiple_of(3) { json!(["lookup_order"]) } else { json!([]) },
                "retrieval": { "index": "kb-support", "chunks": 3 },
            }
        }),
    };
    value.to_string()
}
