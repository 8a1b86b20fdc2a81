//! Rust types for the event contract of `schemas/CONTRACT.md`: the CloudEvents envelope, artifact
//! references, the data of every event type and the governance policy.
//!
//! These types are the single source of the JSON Schema files under `schemas/json/` (see
//! [`crate::schema`]); a test keeps the committed files equal to what they generate. Field
//! docs become schema descriptions, so they are written for producers. This module does no
//! validation of its own beyond what serde does: [`crate::validate`] runs the schemas first.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
            /// Reads `data` as the object of event type `ty`.
            pub fn from_value(ty: EventType, data: &Value) -> Result<Self, serde_json::Error> {
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
}

impl EventType {
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

/// `low`, `medium` or `high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum RiskTier {
    Low,
    Medium,
    High,
}

/// `registry.register`: an artifact enters the inventory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryRegister {
    /// The artifact registered.
    pub artifact: ArtifactRef,
    /// The accountable owner (person or team).
    #[schemars(length(min = 1, max = 256))]
    pub owner: String,
    /// Who published it (vendor, upstream project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub publisher: Option<String>,
    /// Where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub source_uri: Option<String>,
    /// Its licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub license: Option<String>,
    /// Serialization format: safetensors, pickle, gguf, onnx, text, json, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._+-]{0,31}$"))]
    pub format: Option<String>,
    /// Risk tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_tier: Option<RiskTier>,
}

/// `registry.sign`: a signature over the artifact was checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrySign {
    /// The artifact signed.
    pub artifact: ArtifactRef,
    /// The signing key's identity.
    #[schemars(length(min = 1, max = 256))]
    pub key_id: String,
    /// Whether the signature verified.
    pub verified: bool,
    /// Digest of the signature bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_digest: Option<Digest>,
}

/// `approved`, `rejected` or `revoked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ApprovalDecision {
    Approved,
    Rejected,
    Revoked,
}

/// An accepted deviation from one named control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The control deviated from: a gate name, or a rule name such as `artifact.unsafe_format`.
    #[schemars(length(min = 1, max = 256))]
    pub control: String,
    /// Why the deviation is accepted.
    #[schemars(length(min = 1, max = 4096))]
    pub reason: String,
    /// When the exception lapses (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires: Option<String>,
}

/// `registry.approve`: a person approves (or withdraws) use in an environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryApprove {
    /// The artifact approved.
    pub artifact: ArtifactRef,
    /// The environment the approval is for.
    pub target_env: Env,
    /// The decision.
    pub decision: ApprovalDecision,
    /// The approver's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub role: Option<String>,
    /// A documented deviation from one control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<Exception>,
}

/// `registry.promote`: the decision to move an artifact into an environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryPromote {
    /// The artifact promoted.
    pub artifact: ArtifactRef,
    /// Where it goes.
    pub target_env: Env,
    /// Where it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_env: Option<Env>,
}

/// `registry.rollback`: an environment returns to an earlier artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryRollback {
    /// The version rolled back *to*.
    pub artifact: ArtifactRef,
    /// The application.
    #[schemars(length(min = 1, max = 256))]
    pub app: String,
    /// The environment.
    pub target_env: Env,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub reason: Option<String>,
}

/// `approved` or `revoked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ProviderDecision {
    Approved,
    Revoked,
}

/// `registry.provider`: a provider route enters or leaves the approved registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryProvider {
    /// The provider.
    #[schemars(length(min = 1, max = 256))]
    pub provider: String,
    /// The provider's model.
    #[schemars(length(min = 1, max = 256))]
    pub model: String,
    /// The region served from.
    #[schemars(length(min = 1, max = 256))]
    pub region: String,
    /// Data classes the route is approved for.
    #[schemars(inner(length(max = 256)))]
    pub data_classes: Vec<String>,
    /// Environments the route is approved for.
    pub envs: Vec<Env>,
    /// The decision.
    pub decision: ProviderDecision,
}

/// `registry.policy`: the governance policy in force from this entry on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryPolicy {
    /// The policy's version.
    #[schemars(length(min = 1, max = 256))]
    pub version: String,
    /// The policy document.
    pub policy: Policy,
}

/// Drift thresholds: absolute changes of a rate between a baseline window and the latest
/// window of the same (app, env, model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftPolicy {
    /// Requests per window.
    #[schemars(range(min = 1))]
    pub window: u32,
    /// Allowed absolute change of the refusal rate.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub refusal_rate: f64,
    /// Allowed absolute change of the safety-flag rate.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub safety_flag_rate: f64,
    /// Allowed absolute change of the tool-call rate.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub tool_call_rate: f64,
}

/// The governance policy document, in force from its `registry.policy` entry on. An omitted
/// field is off (no gates, no approvals, no drift check); a ledger with no policy event yet
/// applies the ledger's documented default policy instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Environment names beyond dev, staging and prod that this policy declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<Env>,
    /// Gates that must pass, per environment.
    #[serde(default)]
    pub required_gates: BTreeMap<String, Vec<String>>,
    /// Minimum approvals, per environment.
    #[serde(default)]
    pub required_approvals: BTreeMap<String, u32>,
    /// Whether an approval by the promoter, deployer or registrant does not count.
    #[serde(default)]
    pub separation_of_duties: bool,
    /// Environments that need a verified signature.
    #[serde(default)]
    pub require_signature: Vec<Env>,
    /// Model formats that need an approved exception.
    #[serde(default)]
    #[schemars(inner(length(max = 256)))]
    pub unsafe_formats: Vec<String>,
    /// Whether training may only use feedback batches vetted `accepted`.
    #[serde(default)]
    pub feedback_requires_vetting: bool,
    /// Behaviour drift thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftPolicy>,
}

/// `eval`, `scan`, `test` or `review`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum GateCategory {
    Eval,
    Scan,
    Test,
    Review,
}

/// `pass`, `fail` or `warn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum GateOutcome {
    Pass,
    Fail,
    Warn,
}

/// The evaluation suite a gate ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Suite name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub name: Option<String>,
    /// Suite version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub version: Option<String>,
}

/// `pipeline.gate`: an evaluation, scan or test ran against exactly this artifact digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineGate {
    /// The gate's name, as the policy's `required_gates` names it.
    #[schemars(length(min = 1, max = 256))]
    pub gate: String,
    /// What kind of gate.
    pub category: GateCategory,
    /// The artifact tested.
    pub artifact: ArtifactRef,
    /// The result.
    pub result: GateOutcome,
    /// The suite run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<Suite>,
    /// The environment the gate was run for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_env: Option<Env>,
    /// Metric name to value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<String, f64>>,
    /// CI run identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub run_id: Option<String>,
    /// Link to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub url: Option<String>,
}

/// `pipeline.deploy`: a release went live; these artifacts now serve `app` in `target_env`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineDeploy {
    /// The application.
    #[schemars(length(min = 1, max = 256))]
    pub app: String,
    /// The environment.
    pub target_env: Env,
    /// The artifacts now live.
    #[schemars(length(min = 1))]
    pub artifacts: Vec<ArtifactRef>,
    /// Deployment identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub deploy_id: Option<String>,
    /// Deployment configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, Value>>,
}

/// `ok` or `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum RequestStatus {
    Ok,
    Error,
}

/// What retrieval a request used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retrieval {
    /// The index queried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub index: Option<String>,
    /// Chunks retrieved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u32>,
}

/// `proxy.request`: one request through the LLM gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyRequest {
    /// The gateway's request id.
    #[schemars(length(min = 1, max = 256))]
    pub request_id: String,
    /// The calling application.
    #[schemars(length(min = 1, max = 256))]
    pub app: String,
    /// The provider routed to.
    #[schemars(length(min = 1, max = 256))]
    pub provider: String,
    /// The provider's model.
    #[schemars(length(min = 1, max = 256))]
    pub model: String,
    /// The region served from.
    #[schemars(length(min = 1, max = 256))]
    pub region: String,
    /// The request's data class.
    #[schemars(length(min = 1, max = 256))]
    pub data_class: String,
    /// Digest of the model that answered, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_digest: Option<Digest>,
    /// The prompt served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<ArtifactRef>,
    /// The routing rules applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<ArtifactRef>,
    /// Input tokens (at most 2^53 - 1, which canonical JSON keeps exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 9_007_199_254_740_991u64))]
    pub tokens_in: Option<u64>,
    /// Output tokens (at most 2^53 - 1, which canonical JSON keeps exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 9_007_199_254_740_991u64))]
    pub tokens_out: Option<u64>,
    /// Latency in milliseconds, at most a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 86_400_000.0))]
    pub latency_ms: Option<f64>,
    /// Outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RequestStatus>,
    /// Whether the model refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<bool>,
    /// Safety flags raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(length(max = 256)))]
    pub safety_flags: Option<Vec<String>>,
    /// Names of tools called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(length(max = 256)))]
    pub tool_calls: Option<Vec<String>>,
    /// Retrieval used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Retrieval>,
}

/// `user`, `automated` or `label`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum FeedbackChannel {
    User,
    Automated,
    Label,
}

/// What a piece of feedback is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackTarget {
    /// The request it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub request_id: Option<String>,
    /// The artifact it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactRef>,
}

/// `feedback.submit`: feedback arrives into a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackSubmit {
    /// The feedback's id.
    #[schemars(length(min = 1, max = 256))]
    pub feedback_id: String,
    /// The batch it joins.
    #[schemars(length(min = 1, max = 256))]
    pub batch: String,
    /// Where it came from.
    pub channel: FeedbackChannel,
    /// What it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<FeedbackTarget>,
    /// A rating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<f64>,
    /// A label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub label: Option<String>,
}

/// `accepted` or `rejected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum VetDecision {
    Accepted,
    Rejected,
}

/// `feedback.vet`: a person or vetted process reviews a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackVet {
    /// The batch reviewed.
    #[schemars(length(min = 1, max = 256))]
    pub batch: String,
    /// The decision.
    pub decision: VetDecision,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub reason: Option<String>,
}

/// `training.start`: a training or fine-tuning job starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingStart {
    /// The job's id.
    #[schemars(length(min = 1, max = 256))]
    pub job_id: String,
    /// The base model.
    pub base: ArtifactRef,
    /// Data sets used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<Vec<ArtifactRef>>,
    /// Feedback batches used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(length(max = 256)))]
    pub feedback_batches: Option<Vec<String>>,
    /// The artifact the job will produce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ArtifactRef>,
    /// Id of the retraining-gate decision that allowed the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub permit: Option<String>,
}

/// `succeeded` or `failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum TrainingStatus {
    Succeeded,
    Failed,
}

/// `training.finish`: a training job ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingFinish {
    /// The job's id.
    #[schemars(length(min = 1, max = 256))]
    pub job_id: String,
    /// How it ended.
    pub status: TrainingStatus,
    /// The artifact produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ArtifactRef>,
}
