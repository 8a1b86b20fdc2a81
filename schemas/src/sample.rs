//! Deterministic contract events for tests, benchmarks and load scripts: event `i` is always
//! the same bytes, every event is valid, and `(source, id)` is unique per `i`.
//!
//! The mix is what a busy ledger sees: mostly gateway traffic (`proxy.request`), with gate
//! results, registrations and feedback in between. Events are about 500 bytes. No I/O.

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

/// The `i`-th sample event as one line of JSON (no trailing newline).
pub fn sample_event(i: u64) -> String {
    let app = format!("app-{:02}", i % 50);
    let model = format!("model-{:03}", i % 1000);
    let time =
        format!("2026-04-{:02}T{:02}:{:02}:{:02}Z", 1 + (i / 86_400) % 28, (i / 3600) % 24, (i / 60) % 60, i % 60);
    let artifact = json!({
        "kind": "model",
        "name": model,
        "version": format!("1.{}.0", i % 7),
        "digest": digest_of(&format!("{model}@1.{}", i % 7)),
    });
    let value = match i % 10 {
        0 => json!({
            "specversion": "1.0",
            "id": format!("evt-{i:010}"),
            "source": "ci/acme/evals",
            "type": "pipeline.gate",
            "time": time,
            "subject": format!("model/{model}"),
            "actor": "ci-bot@acme",
            "data": {
                "gate": if i % 20 == 0 { "prompt-injection" } else { "leakage" },
                "category": "eval",
                "artifact": artifact,
                "result": if i % 30 == 0 { "fail" } else { "pass" },
                "suite": { "name": "red-team", "version": "2026.03" },
                "metrics": { "attack_success_rate": (i % 100) as f64 / 1000.0 },
                "run_id": format!("run-{i}"),
            }
        }),
        5 => json!({
            "specversion": "1.0",
            "id": format!("evt-{i:010}"),
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
            "id": format!("evt-{i:010}"),
            "source": format!("gateway/acme/{app}"),
            "type": "proxy.request",
            "time": time,
            "env": "prod",
            "data": {
                "request_id": format!("req-{i}"),
                "app": app,
                "provider": "openai",
                "model": "gpt-4o-mini",
                "region": "eu-west-1",
                "data_class": "customer-pii",
                "model_digest": artifact["digest"],
                "tokens_in": 200 + i % 300,
                "tokens_out": 50 + i % 120,
                "latency_ms": (300 + i % 900) as f64,
                "status": "ok",
                "refused": i % 17 == 0,
                "safety_flags": [],
                "tool_calls": if i % 3 == 0 { json!(["lookup_order"]) } else { json!([]) },
                "retrieval": { "index": "kb-support", "chunks": 3 },
            }
        }),
    };
    value.to_string()
}
