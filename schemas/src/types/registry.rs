//! The model registry's events: `registry.register`, `registry.sign`, `registry.approve`
//! (with exceptions), `registry.promote`, `registry.rollback` and `registry.provider`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArtifactRef, Digest, Env};

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
