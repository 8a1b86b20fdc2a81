//! Validation of raw event bytes against the contract, with every problem reported.
//!
//! Order of checks, each stopping the next when it fails: size limit, UTF-8, JSON syntax,
//! nesting depth, then repeated keys and numbers beyond 2^53 − 1
//! ([`crate::json`]) together with the JSON Schemas (envelope, and the type's data schema when the type
//! is known), then the rules a schema cannot say (`time` parses as RFC 3339 with offset;
//! `env` agrees with `data.target_env`). Every schema problem is reported, each with the JSON
//! pointer of the offending value and a sentence. A valid event comes back typed and with its
//! canonical bytes (RFC 8785). No I/O.

use std::fmt;
use std::sync::Arc;

use chrono::DateTime;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;
use crate::schema::{data_schema, envelope_schema};
use crate::types::{Env, Event, EventData, EventType, DIGEST_PATTERN, ENV_PATTERN};

/// Size and shape limits applied before schema validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted event, in bytes of its raw encoding (default 256 KiB).
    pub max_event_bytes: usize,
    /// Deepest accepted nesting of arrays and objects (default 32).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_event_bytes: 256 * 1024, max_depth: 32 }
    }
}

/// One problem with an event: where (a JSON pointer; empty for the whole event) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "EventProblem")]
pub struct Problem {
    /// JSON pointer (RFC 6901) of the offending value; `""` is the whole event.
    pub pointer: String,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "(event): {}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// Why an event was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// Larger than [`Limits::max_event_bytes`].
    #[error("event is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The event's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not valid UTF-8.
    #[error("event is not UTF-8: invalid byte at offset {offset}")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Not JSON.
    #[error("event is not JSON: {message} at line {line}, column {column}")]
    NotJson {
        /// What the parser found.
        message: String,
        /// 1-based line within the event.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// Nested deeper than [`Limits::max_depth`].
    #[error("{pointer}: nested more than {limit} levels deep")]
    TooDeep {
        /// Pointer to the first value past the limit.
        pointer: String,
        /// The limit.
        limit: usize,
    },
    /// Well-formed JSON that breaks the contract; every problem found.
    #[error("{}", join(problems))]
    Invalid {
        /// Each problem, in document order.
        problems: Vec<Problem>,
    },
}

fn join(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ")
}

impl Rejection {
    /// The rejection as a list of problems with pointers, for APIs that report them uniformly.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Rejection::Invalid { problems } => problems.clone(),
            Rejection::TooDeep { pointer, limit } => {
                vec![Problem { pointer: pointer.clone(), message: format!("nested more than {limit} levels deep") }]
            }
            other => vec![Problem { pointer: String::new(), message: other.to_string() }],
        }
    }
}

/// An event that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidEvent {
    /// The typed event, shared: the views keep recent gateway requests without a copy.
    pub event: Arc<Event>,
    /// Its RFC 8785 canonical JSON bytes: what the ledger stores and hashes.
    pub canonical: Vec<u8>,
    /// `blake3(canonical)`: the event digest a ledger entry records
    /// (`evidence_verifier::entry::event_digest`). It is computed here, with the canonical
    /// bytes, so that it is hashed on the threads that validate rather than by the log's
    /// single writer.
    pub digest: [u8; 32],
}

/// Checks raw events against the contract. Build once; validation is `&self` and thread-safe.
pub struct Validator {
    limits: Limits,
    envelope: jsonschema::Validator,
    /// Indexed like [`EventType::ALL`].
    data: Vec<jsonschema::Validator>,
    /// Whether the ledger's own event types ([`EventType::reserved`]) pass.
    reserved: bool,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Default for Validator {
    fn default() -> Self {
        Validator::new(Limits::default())
    }
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .expect("the generated schemas compile (tested)")
}

impl Validator {
    /// A validator with the given limits.
    pub fn new(limits: Limits) -> Self {
        Validator {
            limits,
            envelope: compile(&envelope_schema()),
            data: EventType::ALL.iter().map(|t| compile(&data_schema(*t))).collect(),
            reserved: false,
        }
    }

    /// The validator the ledger uses for the events it writes itself: like the default one,
    /// and it also passes the reserved `ledger.*` types, which intake refuses from producers.
    pub fn for_ledger() -> Self {
        Validator { reserved: true, ..Validator::default() }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Validates one raw event (one NDJSON line, one Kafka message value, one HTTP body).
    pub fn validate(&self, raw: &[u8]) -> Result<ValidEvent, Rejection> {
        if raw.len() > self.limits.max_event_bytes {
            return Err(Rejection::TooLarge { size: raw.len(), limit: self.limits.max_event_bytes });
        }
        let text = std::str::from_utf8(raw).map_err(|e| Rejection::NotUtf8 { offset: e.valid_up_to() })?;
        if text.starts_with('\u{feff}') {
            let message = "the event starts with a byte-order mark (U+FEFF), which JSON text must not".to_string();
            return Err(Rejection::NotJson { message, line: 1, column: 1 });
        }
        let mut problems = Vec::new();
        let value: Value = json::parse(text, &mut problems).map_err(|e| {
            let full = e.to_string();
            let message = match full.rfind(" at line ") {
                Some(i) => full[..i].to_string(),
                None => full,
            };
            Rejection::NotJson { message, line: e.line(), column: e.column() }
        })?;
        check_depth(&value, self.limits.max_depth)?;
        // Repeated keys and numbers beyond 2^53 - 1 are reported with the schema's problems.
        collect(&self.envelope, &value, "", &mut problems);
        let ty = value.get("type").and_then(Value::as_str).and_then(|t| t.parse::<EventType>().ok());
        let data = value.get("data").filter(|d| d.is_object());
        if let Some(ty) = ty.filter(|t| t.reserved() && !self.reserved) {
            let message = format!("\"{ty}\" is written by the ledger itself; no producer may send it");
            problems.push(Problem { pointer: "/type".into(), message });
        }
        if let (Some(ty), Some(data)) = (ty, data) {
            let index = EventType::ALL.iter().position(|t| *t == ty).expect("ALL lists every type");
            collect(&self.data[index], data, "/data", &mut problems);
        }
        if !problems.is_empty() {
            return Err(Rejection::Invalid { problems });
        }
        // The canonical bytes first: the typed event then takes the value's strings over.
        let canonical = crate::canonical::to_vec(&value).map_err(|e| invalid("", &e))?;
        let event = Arc::new(typed(value)?);
        let digest = *blake3::hash(&canonical).as_bytes();
        Ok(ValidEvent { event, canonical, digest })
    }
}

/// The typed event of bytes this crate validated before (the canonical bytes a log stores):
/// the JSON and the cross-field checks, without the schema pass, which those bytes already
/// passed. Bytes that were never validated should go through [`Validator::validate`].
pub fn parse_validated(canonical: &[u8]) -> Result<Event, Rejection> {
    let value: Value = serde_json::from_slice(canonical).map_err(|e| Rejection::NotJson {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    typed(value)
}

fn invalid(pointer: &str, message: &dyn fmt::Display) -> Rejection {
    Rejection::Invalid { problems: vec![Problem { pointer: pointer.to_string(), message: message.to_string() }] }
}

/// The schema-valid document as a typed [`Event`], with the checks no schema can make. The
/// value is taken over: its strings move into the event without a copy.
///
/// The envelope's members are taken out of the object by hand: [`crate::types::Envelope`]'s derived
/// deserializer buffers the whole event first, for its flattened extensions, which an event
/// does not need; that was a third of validating a gateway request.
fn typed(value: Value) -> Result<Event, Rejection> {
    let Value::Object(mut members) = value else { return Err(invalid("", &"expected a JSON object")) };
    let mut text = |name: &str, required: bool| match members.remove(name) {
        Some(Value::String(s)) => Ok(Some(s)),
        None | Some(Value::Null) if !required => Ok(None),
        None => Err(invalid("", &format!("missing field `{name}`"))),
        Some(other) => Err(invalid(&format!("/{name}"), &format!("expected a string, found {other}"))),
    };
    let (id, source, ty) = (text("id", true)?, text("source", true)?, text("type", true)?);
    let (time, subject, actor, env) =
        (text("time", true)?, text("subject", false)?, text("actor", false)?, text("env", false)?);
    let (id, source, time) = (id.unwrap_or_default(), source.unwrap_or_default(), time.unwrap_or_default());
    let ty: EventType = ty.unwrap_or_default().parse().map_err(|e| invalid("/type", &e))?;
    let Some(Value::Object(data)) = members.remove("data") else { return Err(invalid("/data", &"expected an object")) };
    let env = env.map(Env);
    let data = EventData::from_value(ty, Value::Object(data)).map_err(|e| invalid("/data", &e))?;
    let time = DateTime::parse_from_rfc3339(&time)
        .map_err(|e| invalid("/time", &format!("expected an RFC 3339 date-time with offset ({e})")))?;
    if let EventData::RegistryPolicy(policy) = &data {
        let problems: Vec<Problem> = policy
            .policy
            .undeclared_envs()
            .into_iter()
            .map(|(pointer, env)| Problem {
                pointer: format!("/data{pointer}"),
                message: format!(
                    "the environment {env:?} is neither dev, staging nor prod, and the policy does not declare it in envs"
                ),
            })
            .collect();
        if !problems.is_empty() {
            return Err(Rejection::Invalid { problems });
        }
    }
    if let (Some(env), Some(target)) = (&env, target_env(&data)) {
        if env != target {
            return Err(invalid(
                "/env",
                &format!("\"{env}\" differs from /data/target_env \"{target}\": they must agree"),
            ));
        }
    }
    Ok(Event { id, source, time, subject, actor, env, data })
}

fn target_env(data: &EventData) -> Option<&crate::types::Env> {
    match data {
        EventData::RegistryApprove(d) => Some(&d.target_env),
        EventData::RegistryPromote(d) => Some(&d.target_env),
        EventData::RegistryRollback(d) => Some(&d.target_env),
        EventData::PipelineDeploy(d) => Some(&d.target_env),
        EventData::PipelineGate(d) => d.target_env.as_ref(),
        _ => None,
    }
}

fn check_depth(value: &Value, limit: usize) -> Result<(), Rejection> {
    // Iterative, so that the check itself cannot overflow the stack. Most events are well
    // within the limit: a first pass makes no pointers, and only a value too deep is walked
    // again to name where.
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: &mut dyn Iterator<Item = &Value> = match v {
            Value::Array(items) => &mut items.iter(),
            Value::Object(obj) => &mut obj.values(),
            _ => continue,
        };
        if depth + 1 > limit {
            return too_deep(value, limit);
        }
        stack.extend(children.filter(|c| c.is_array() || c.is_object()).map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// The rejection of `value`, deeper than `limit`, naming the first place too deep.
fn too_deep(value: &Value, limit: usize) -> Result<(), Rejection> {
    let mut stack: Vec<(&Value, usize, String)> = vec![(value, 0, String::new())];
    while let Some((v, depth, pointer)) = stack.pop() {
        let children: Vec<(&Value, String)> = match v {
            Value::Array(items) => items.iter().enumerate().map(|(i, c)| (c, format!("{pointer}/{i}"))).collect(),
            Value::Object(obj) => {
                obj.iter().map(|(k, c)| (c, format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")))).collect()
            }
            _ => continue,
        };
        if depth + 1 > limit {
            return Err(Rejection::TooDeep { pointer, limit });
        }
        for (c, p) in children {
            if c.is_array() || c.is_object() {
                stack.push((c, depth + 1, p));
            }
        }
    }
    Ok(())
}

fn collect(validator: &jsonschema::Validator, value: &Value, prefix: &str, out: &mut Vec<Problem>) {
    for error in validator.iter_errors(value) {
        let at = format!("{prefix}{}", error.instance_path());
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(Problem { pointer: format!("{at}/{name}"), message: "required field is missing".into() });
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    out.push(Problem {
                        pointer: format!("{at}/{name}"),
                        message: "unknown field: the contract has no such field here".into(),
                    });
                }
            }
            kind => out.push(Problem { pointer: at, message: describe(kind, error.instance()) }),
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(kind: &ValidationErrorKind, instance: &Value) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(&t.to_string()),
                TypeKind::Multiple(ts) => {
                    ts.iter().map(|t| article(&t.to_string())).collect::<Vec<_>>().join(" or ")
                }
            };
            format!("expected {expected}, found {}", json_type(instance))
        }
        ValidationErrorKind::Pattern { pattern } if pattern == DIGEST_PATTERN => {
            format!("expected \"sha256:\" and 64 hex digits, found {instance}")
        }
        ValidationErrorKind::Pattern { pattern } if pattern == ENV_PATTERN => format!(
            "expected an environment name (a lower-case letter, then up to 31 letters, digits, '-' or '_'), found {instance}"
        ),
        ValidationErrorKind::Pattern { pattern } => format!("{instance} does not match {pattern}"),
        ValidationErrorKind::Enum { options } => {
            format!("expected one of {}, found {instance}", list(options))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("expected {expected_value}, found {instance}")
        }
        ValidationErrorKind::MinLength { limit: 1 } => "must not be empty".into(),
        ValidationErrorKind::MinLength { limit } => format!("shorter than {limit} characters"),
        ValidationErrorKind::MaxLength { limit } => format!("longer than {limit} characters"),
        ValidationErrorKind::MinItems { limit } => format!("needs at least {limit} item(s)"),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}, found {instance}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}, found {instance}"),
        ValidationErrorKind::Format { format } if format == "date-time" => format!(
            "expected an RFC 3339 date-time with offset, like \"2026-04-03T10:15:00Z\", found {instance}"
        ),
        ValidationErrorKind::Format { format } if format == "uri-reference" => {
            format!("expected a URI reference, found {instance}")
        }
        ValidationErrorKind::FalseSchema => "not allowed here".into(),
        _ => format!("{instance} is invalid ({kind:?})"),
    }
}

fn article(ty: &str) -> String {
    match ty {
        "object" | "array" | "integer" => format!("an {ty}"),
        "null" => "null".into(),
        other => format!("a {other}"),
    }
}

fn list(options: &Value) -> String {
    match options {
        Value::Array(items) => items.iter().map(Value::to_string).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
