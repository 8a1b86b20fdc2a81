//! The feedback tools' events: `feedback.submit` and `feedback.vet`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ArtifactRef;

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
