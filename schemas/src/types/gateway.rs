//! The LLM gateway's event: `proxy.request`, one request routed to a provider.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArtifactRef, Digest};

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
