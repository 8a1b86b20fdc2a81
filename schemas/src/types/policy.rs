//! `registry.policy`: the governance policy a ledger applies from that entry on.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Env;

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
