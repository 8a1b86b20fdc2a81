//! Random valid event streams from the contract, and a ledger to feed them to, for the
//! property tests of the views.

use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::{CheckpointPolicy, Ledger, Log, MemStorage};
use evidence_schemas::Validator;
use evidence_verifier::SignerKey;
use serde_json::{json, Value};

/// A ledger in memory.
pub fn ledger() -> Ledger<MemStorage> {
    let signer = SignerKey::from_seed("test.example/views", [7u8; 32]).unwrap();
    let log = Log::open(MemStorage::default(), vec![signer], CheckpointPolicy::default()).unwrap();
    Ledger::open(log).unwrap()
}

/// Appends `lines` in batches of `batch` (every line must be valid).
pub fn feed(ledger: &mut Ledger<MemStorage>, validator: &Validator, lines: &[String], batch: usize) {
    for (n, chunk) in lines.chunks(batch.max(1)).enumerate() {
        let records = chunk
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let valid = validator.validate(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
                Record {
                    origin: Origin::File { path: "stream".into(), line: (n * batch + i + 1) as u64 },
                    verdict: Verdict::Valid(Box::new(valid)),
                }
            })
            .collect();
        ledger.append(&Batch { records, positions: Vec::new() }).unwrap();
    }
}

const KINDS: [&str; 4] = ["model", "prompt", "index", "config"];
const ENVS: [&str; 2] = ["staging", "prod"];
const ACTORS: [&str; 3] = ["ana@x", "bo@x", "cy@x"];
const GATES: [&str; 3] = ["prompt-injection", "leakage", "quality"];
const DECISIONS: [&str; 4] = ["approved", "approved", "rejected", "revoked"];
const RESULTS: [&str; 4] = ["pass", "pass", "fail", "warn"];

pub fn artifact(a: u8) -> Value {
    // 4 kinds x 2 names x 2 versions, each with one of two digests.
    let kind = KINDS[usize::from(a % 4)];
    let name = format!("n{}", (a / 4) % 2);
    let version = format!("{}", (a / 8) % 2);
    let digest = format!("sha256:{:064x}", u32::from(a % 32));
    json!({"kind": kind, "name": name, "version": version, "digest": digest})
}

/// Event `i` of a random stream, `choice` picking its type and fields; its time is `i`
/// minutes into the day.
pub fn event(i: usize, choice: (u8, u8, u8, u8, u8)) -> String {
    event_at(i, i, choice)
}

/// Event `i` of a random stream at `minute` minutes into the day.
pub fn event_at(i: usize, minute: usize, choice: (u8, u8, u8, u8, u8)) -> String {
    let (ty, a, b, c, d) = choice;
    let env = ENVS[usize::from(b % 2)];
    let actor = ACTORS[usize::from(c % 3)];
    let time = format!("2026-05-01T{:02}:{:02}:00Z", (minute / 60) % 24, minute % 60);
    let mut e = json!({"specversion": "1.0", "id": format!("e{i}"), "source": "prop", "time": time, "actor": actor});
    let (t, data) = match ty % 12 {
        0 => (
            "registry.register",
            json!({"artifact": artifact(a), "owner": "o", "format": if d % 5 == 0 { "pickle" } else { "safetensors" }}),
        ),
        1 => ("registry.sign", json!({"artifact": artifact(a), "key_id": "k", "verified": d % 4 != 0})),
        2 => {
            e["env"] = json!(env);
            let mut data =
                json!({"artifact": artifact(a), "target_env": env, "decision": DECISIONS[usize::from(d % 4)]});
            if d % 3 == 0 {
                data["exception"] =
                    json!({"control": GATES[usize::from(c % 3)], "reason": "r", "expires": "2026-05-01T12:00:00Z"});
            }
            ("registry.approve", data)
        }
        3 => {
            e["env"] = json!(env);
            ("registry.promote", json!({"artifact": artifact(a), "target_env": env}))
        }
        4 => {
            e["env"] = json!(env);
            (
                "pipeline.deploy",
                json!({"app": format!("app{}", d % 2), "target_env": env, "artifacts": [artifact(a), artifact(a.wrapping_add(d))]}),
            )
        }
        5 => {
            e["env"] = json!(env);
            ("registry.rollback", json!({"artifact": artifact(a), "app": format!("app{}", d % 2), "target_env": env}))
        }
        6 => (
            "pipeline.gate",
            json!({"gate": GATES[usize::from(c % 3)], "category": "eval", "artifact": artifact(a), "result": RESULTS[usize::from(d % 4)]}),
        ),
        7 => (
            "registry.provider",
            json!({"provider": "p", "model": format!("m{}", a % 2), "region": "r", "data_classes": if d % 2 == 0 { json!(["pii"]) } else { json!(["public"]) }, "envs": [env], "decision": if d % 5 == 0 { "revoked" } else { "approved" }}),
        ),
        8 => {
            e["env"] = json!(env);
            e.as_object_mut().unwrap().remove("actor");
            let mut data = json!({"request_id": format!("r{i}"), "app": format!("app{}", d % 2), "provider": "p", "model": format!("m{}", a % 2), "region": "r", "data_class": if c % 2 == 0 { "pii" } else { "public" }, "refused": d % 3 == 0, "tool_calls": if c % 4 == 0 { json!(["t"]) } else { json!([]) }, "safety_flags": if b % 5 == 0 { json!(["f"]) } else { json!([]) }});
            if a % 3 == 0 {
                data["prompt"] = artifact(a);
            }
            if a % 2 == 0 {
                data["model_digest"] = artifact(a)["digest"].clone();
            }
            ("proxy.request", data)
        }
        9 => {
            e.as_object_mut().unwrap().remove("actor");
            (
                "feedback.submit",
                json!({"feedback_id": format!("f{i}"), "batch": format!("b{}", d % 3), "channel": "user"}),
            )
        }
        10 => (
            "feedback.vet",
            json!({"batch": format!("b{}", d % 3), "decision": if c % 3 == 0 { "rejected" } else { "accepted" }}),
        ),
        _ => match d % 3 {
            0 => (
                "registry.policy",
                json!({"version": format!("v{i}"), "policy": {
                "required_gates": {"prod": ["prompt-injection", "leakage"], "staging": [GATES[usize::from(c % 3)]]},
                "required_approvals": {"prod": 1 + c % 2},
                "separation_of_duties": b % 2 == 0,
                "require_signature": ["prod"],
                "unsafe_formats": ["pickle"],
                "feedback_requires_vetting": a % 2 == 0,
                "drift": {"window": 2 + u32::from(a % 4), "refusal_rate": 0.1, "safety_flag_rate": 0.1, "tool_call_rate": 0.1}}}),
            ),
            1 => (
                "training.start",
                json!({"job_id": format!("j{}", a % 3), "base": artifact(a), "feedback_batches": [format!("b{}", b % 3), format!("b{}", c % 3)]}),
            ),
            _ => ("training.finish", json!({"job_id": format!("j{}", a % 3), "status": "succeeded"})),
        },
    };
    e["type"] = json!(t);
    e["data"] = data;
    e.to_string()
}
