//! Rust types for the event contract of `schemas/CONTRACT.md`: the CloudEvents envelope, artifact
//! references, the data of every event type and the governance policy.
//!
//! These types are the single source of the JSON Schema files under `schemas/json/` (see
//! [`crate::schema`]); a test keeps the committed files equal to what they generate. Field
//! docs become schema descriptions, so they are written for producers. This module does no
//! validation of its own beyond what serde does: [`crate::validate`] runs the schemas first.
//!
//! Here: the shared pieces (digests, envs, artifact references), the envelope, the event
//! types and [`Event`]. Each producer's data types have a file of their own: `registry`,
//! `policy`, `pipeline`, `gateway`, `feedback`, `training`, and the ledger's own (`ledger`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod feedback;
mod gateway;
mod ledger;
mod pipeline;
mod policy;
mod registry;
mod training;

pub use self::feedback::*;
pub use self::gateway::*;
pub use self::ledger::*;
pub use self::pipeline::*;
pub use self::policy::*;
pub use self::registry::*;
pub use self::training::*;

/// The pattern of an artifact digest: `sha256:` and 64 lower-case hex digits.
pub const DIGEST_PATTERN: &str = "^sha256:[0-9a-f]{64}$";
/// The pattern of an environment name (`dev`, `staging`, `prod`, or one the policy declares).
pub const ENV_PATTERN: &str = "^[a-z][a-z0-9_-]{0,31}$";

/// Content identity of an artifact: `sha256:<64 lower-case hex digits>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(pub String);

impl JsonSchema for Digest {
    fn schema_name() -> Cow<'static, str> {
        "Digest".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DIGEST_PATTERN,
            "description": "Content identity: \"sha256:\" and 64 lower-case hex digits."
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An environment name: `dev`, `staging`, `prod`, or another name the policy declares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Env(pub String);

impl JsonSchema for Env {
    fn schema_name() -> Cow<'static, str> {
        "Env".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": ENV_PATTERN,
            "description": "Environment name: dev, staging, prod, or another name the policy declares."
        })
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of behaviour-changing thing an artifact is: `model` (weights), `prompt`,
/// `tool_schema` (a function-calling schema), `dataset`, `index` (a retrieval index or retrieval
/// settings), `routing` (provider routing rules), `guardrail`, `config` (inference parameters,
/// feature flags) or `eval_suite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ArtifactKind {
    Model,
    Prompt,
    ToolSchema,
    Dataset,
    Index,
    Routing,
    Guardrail,
    Config,
    EvalSuite,
}

impl ArtifactKind {
    /// The name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Prompt => "prompt",
            Self::ToolSchema => "tool_schema",
            Self::Dataset => "dataset",
            Self::Index => "index",
            Self::Routing => "routing",
            Self::Guardrail => "guardrail",
            Self::Config => "config",
            Self::EvalSuite => "eval_suite",
        }
    }
}

/// `{"kind", "name", "version", "digest"}`: `(kind, name, version)` names an artifact, `digest`
/// is its content identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// What kind of artifact this is.
    pub kind: ArtifactKind,
    /// Its name, unique within its kind.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Its version.
    #[schemars(length(min = 1, max = 128))]
    pub version: String,
    /// Its content identity.
    pub digest: Digest,
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.kind.as_str(), self.name, self.version)
    }
}

/// The CloudEvents 1.0 envelope (structured JSON mode) as it arrives, `data` still untyped.
/// Extension attributes (lower-case letters and digits, at most 20) are kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Always `"1.0"`.
    #[schemars(extend("const" = "1.0"))]
    pub specversion: String,
    /// Unique per source: `(source, id)` identifies the event.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// URI-reference naming the producing system.
    #[schemars(length(min = 1, max = 512), extend("format" = "uri-reference"))]
    pub source: String,
    /// The event type.
    #[serde(rename = "type")]
    pub ty: EventType,
    /// When it happened, as the producer saw it: RFC 3339 with offset.
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub subject: Option<String>,
    /// Who did it: a person or service identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub actor: Option<String>,
    /// The environment the event concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    /// `application/json` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("const" = "application/json"))]
    pub datacontenttype: Option<String>,
    /// The type's object.
    pub data: serde_json::Map<String, Value>,
    /// CloudEvents extension attributes.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: BTreeMap<String, Value>,
}

macro_rules! event_types {
    ($($variant:ident => $name:literal, $data:ident;)*) => {
        /// The event types of the contract.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        pub enum EventType {
            $(
                #[allow(missing_docs)]
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl EventType {
            /// Every event type, in contract order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The type's name, as in the `type` attribute.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            /// The JSON Schema of this type's `data`, generated from its Rust type.
            pub(crate) fn data_schema(self, generator: &mut SchemaGenerator) -> Schema {
                match self {
                    $(EventType::$variant => generator.root_schema_for::<$data>(),)*
                }
            }
        }

        /// The data of an event, typed by its event type.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum EventData {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant($data),
            )*
        }

        impl EventData {
            /// Reads `data` as the object of event type `ty`, moving its strings rather than
            /// copying them.
            pub fn from_value(ty: EventType, data: Value) -> Result<Self, serde_json::Error> {
                Ok(match ty {
                    $(EventType::$variant => EventData::$variant($data::deserialize(data)?),)*
                })
            }

            /// The event type this data belongs to.
            pub fn event_type(&self) -> EventType {
                match self {
                    $(EventData::$variant(_) => EventType::$variant,)*
                }
            }
        }
    };
}

event_types! {
    RegistryRegister => "registry.register", RegistryRegister;
    RegistrySign => "registry.sign", RegistrySign;
    RegistryApprove => "registry.approve", RegistryApprove;
    RegistryPromote => "registry.promote", RegistryPromote;
    RegistryRollback => "registry.rollback", RegistryRollback;
    RegistryProvider => "registry.provider", RegistryProvider;
    RegistryPolicy => "registry.policy", RegistryPolicy;
    PipelineGate => "pipeline.gate", PipelineGate;
    PipelineDeploy => "pipeline.deploy", PipelineDeploy;
    ProxyRequest => "proxy.request", ProxyRequest;
    FeedbackSubmit => "feedback.submit", FeedbackSubmit;
    FeedbackVet => "feedback.vet", FeedbackVet;
    TrainingStart => "training.start", TrainingStart;
    TrainingFinish => "training.finish", TrainingFinish;
    LedgerKey => "ledger.key", LedgerKey;
}

impl EventType {
    /// Whether only the ledger itself writes events of this type (`ledger.*`): intake refuses
    /// them from producers.
    pub fn reserved(self) -> bool {
        matches!(self, EventType::LedgerKey)
    }

    /// Whether the envelope must name an `actor` (every `registry.*`, `pipeline.*`,
    /// `feedback.vet`, `training.*`).
    pub fn requires_actor(self) -> bool {
        !matches!(self, EventType::ProxyRequest | EventType::FeedbackSubmit)
    }

    /// Whether the envelope must name an `env` whatever the data says: the data names a
    /// target environment or traffic. (`pipeline.gate` needs one only when its data has a
    /// `target_env`.)
    pub fn requires_env(self) -> bool {
        matches!(
            self,
            EventType::RegistryApprove
                | EventType::RegistryPromote
                | EventType::RegistryRollback
                | EventType::PipelineDeploy
                | EventType::ProxyRequest
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown event type {s:?}"))
    }
}

/// A validated event: the envelope with its time parsed and its data typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique per source.
    pub id: String,
    /// The producing system.
    pub source: String,
    /// When it happened, as the producer saw it.
    pub time: DateTime<FixedOffset>,
    /// Free text for people.
    pub subject: Option<String>,
    /// Who did it.
    pub actor: Option<String>,
    /// The environment the event concerns.
    pub env: Option<Env>,
    /// The typed data; its variant is the event type.
    pub data: EventData,
}

impl Event {
    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }
}
