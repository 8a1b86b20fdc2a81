//! The training jobs' events: `training.start` and `training.finish`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ArtifactRef;

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
