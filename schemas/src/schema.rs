//! The JSON Schema (draft 2020-12) documents of the contract, generated from the Rust types
//! of [`crate::types`].
//!
//! Files under `schemas/json/` are these documents, written out for producers:
//! `envelope.schema.json` (the CloudEvents envelope, with the per-type `actor`/`env` rules) and
//! `data/<type>.schema.json` (one per event type). The test `schema_files` fails when a
//! committed file differs from what the types generate; `UPDATE_SCHEMAS=1 cargo test -p
//! evidence-schemas` rewrites them. The validator uses the generated documents directly, so
//! the files, the types and the validation cannot drift apart.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::types::{Envelope, EventType};

/// Base URI of the schema documents' `$id`s.
pub const SCHEMA_BASE: &str = "https://evidence-ledger.example/schemas/v1/";

/// The envelope schema: every attribute of the CloudEvents envelope, `data` as an object, and
/// the rules on which types need `actor` and `env`.
pub fn envelope_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.root_schema_for::<Envelope>().to_value();
    strip_null(&mut schema);
    let obj = schema.as_object_mut().expect("a struct's schema is an object");
    obj.insert("$id".into(), json!(format!("{SCHEMA_BASE}envelope.schema.json")));
    obj.insert("title".into(), json!("Evidence Ledger event envelope (CloudEvents 1.0)"));
    // CloudEvents extension attributes: lower-case letters and digits, at most 20.
    obj.insert("patternProperties".into(), json!({ "^[a-z0-9]{1,20}$": {} }));
    obj.insert("additionalProperties".into(), json!(false));
    let names = |pred: fn(EventType) -> bool| -> Vec<&'static str> {
        EventType::ALL.iter().copied().filter(|t| pred(*t)).map(EventType::as_str).collect()
    };
    obj.insert(
        "allOf".into(),
        json!([
            {
                "if": { "properties": { "type": { "enum": names(EventType::requires_actor) } } },
                "then": { "required": ["actor"] }
            },
            {
                "if": { "properties": { "type": { "enum": names(EventType::requires_env) } } },
                "then": { "required": ["env"] }
            },
            {
                "if": {
                    "properties": {
                        "type": { "const": EventType::PipelineGate.as_str() },
                        "data": { "required": ["target_env"] }
                    }
                },
                "then": { "required": ["env"] }
            }
        ]),
    );
    schema
}

/// The schema of one event type's `data`.
pub fn data_schema(ty: EventType) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = ty.data_schema(&mut generator).to_value();
    strip_null(&mut schema);
    let obj = schema.as_object_mut().expect("a struct's schema is an object");
    obj.insert("$id".into(), json!(format!("{SCHEMA_BASE}data/{}.schema.json", ty.as_str())));
    obj.insert("title".into(), json!(format!("data of a {} event", ty.as_str())));
    schema
}

/// Every schema file, as (path relative to `schemas/json/`, document).
pub fn schema_files() -> Vec<(String, Value)> {
    let mut files = vec![("envelope.schema.json".to_string(), envelope_schema())];
    for ty in EventType::ALL {
        files.push((format!("data/{}.schema.json", ty.as_str()), data_schema(*ty)));
    }
    files
}

/// Optional fields are omitted, never `null`: removes the `null` alternative that schemars
/// adds for `Option<T>`, so that `"publisher": null` is reported rather than accepted.
fn strip_null(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(Value::Array(types)) = obj.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    obj.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any)) = obj.get("anyOf") {
                let rest: Vec<Value> = any.iter().filter(|s| **s != json!({ "type": "null" })).cloned().collect();
                if rest.len() == 1 && any.len() == 2 {
                    obj.remove("anyOf");
                    if let Value::Object(inner) = &rest[0] {
                        for (k, v) in inner {
                            obj.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            if obj.get("const") == Some(&Value::Null) {
                obj.remove("const");
            }
            for v in obj.values_mut() {
                strip_null(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// Keeps the schema's key order stable when written out.
pub fn to_pretty(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&o[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut s = serde_json::to_string_pretty(&sorted(value)).expect("a Value serializes");
    s.push('\n');
    s
}
