//! The CI/CD pipeline's events: `pipeline.gate` (evals, scans, tests, reviews) and
//! `pipeline.deploy`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ArtifactRef, Env};

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
