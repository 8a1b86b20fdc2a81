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

/// Drift checks: thresholds, or `"off"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DriftSetting {
    /// `"off"`: no drift check.
    Off(Off),
    /// Check drift with these thresholds.
    On(DriftPolicy),
}

/// The word `"off"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Off {
    /// Off.
    Off,
}

impl JsonSchema for DriftSetting {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DriftSetting".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let on = generator.subschema_for::<DriftPolicy>();
        schemars::json_schema!({
            "description": "Drift thresholds, or \"off\" to turn the drift check off.",
            "oneOf": [{ "const": "off" }, on]
        })
    }
}

/// The governance policy document, in force from its `registry.policy` entry on. Secure by
/// default: an omitted field keeps the value of the ledger's default policy (see
/// `schemas/CONTRACT.md`), so a control is turned off only by writing it out (`[]`, `{}`,
/// `false`, `"off"`). Every environment it names must be `dev`, `staging`, `prod` or one it
/// declares in `envs`. [`Policy::filled`] gives the policy in force.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Environment names beyond dev, staging and prod that this policy declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<Vec<Env>>,
    /// Gates that must pass, per environment (`{}`: none anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_gates: Option<BTreeMap<String, Vec<String>>>,
    /// Minimum approvals, per environment (`{}`: none anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<BTreeMap<String, u32>>,
    /// Whether an approval by the promoter, deployer or registrant does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separation_of_duties: Option<bool>,
    /// Environments that need a verified signature (`[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_signature: Option<Vec<Env>>,
    /// Model formats that need an approved exception (`[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(length(max = 256)))]
    pub unsafe_formats: Option<Vec<String>>,
    /// Whether training may only use feedback batches vetted `accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_requires_vetting: Option<bool>,
    /// Behaviour drift thresholds, or `"off"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftSetting>,
}

/// A policy with every control set: the one in force. [`Policy::filled`] makes it from a
/// published document and the default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EffectivePolicy {
    /// Environment names beyond dev, staging and prod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<Env>,
    /// Gates that must pass, per environment.
    pub required_gates: BTreeMap<String, Vec<String>>,
    /// Minimum approvals, per environment.
    pub required_approvals: BTreeMap<String, u32>,
    /// Whether an approval by the promoter, deployer or registrant does not count.
    pub separation_of_duties: bool,
    /// Environments that need a verified signature.
    pub require_signature: Vec<Env>,
    /// Model formats that need an approved exception.
    pub unsafe_formats: Vec<String>,
    /// Whether training may only use feedback batches vetted `accepted`.
    pub feedback_requires_vetting: bool,
    /// Behaviour drift thresholds (none: no drift check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftPolicy>,
}

impl Policy {
    /// The policy in force: every field this document sets, and `default`'s for the rest.
    pub fn filled(&self, default: &EffectivePolicy) -> EffectivePolicy {
        let d = default.clone();
        EffectivePolicy {
            envs: self.envs.clone().unwrap_or(d.envs),
            required_gates: self.required_gates.clone().unwrap_or(d.required_gates),
            required_approvals: self.required_approvals.clone().unwrap_or(d.required_approvals),
            separation_of_duties: self.separation_of_duties.unwrap_or(d.separation_of_duties),
            require_signature: self.require_signature.clone().unwrap_or(d.require_signature),
            unsafe_formats: self.unsafe_formats.clone().unwrap_or(d.unsafe_formats),
            feedback_requires_vetting: self.feedback_requires_vetting.unwrap_or(d.feedback_requires_vetting),
            drift: match &self.drift {
                None => d.drift,
                Some(DriftSetting::Off(_)) => None,
                Some(DriftSetting::On(drift)) => Some(drift.clone()),
            },
        }
    }

    /// The controls this document leaves out (they take the default's value).
    pub fn omitted(&self) -> Vec<&'static str> {
        let fields = [
            ("required_gates", self.required_gates.is_none()),
            ("required_approvals", self.required_approvals.is_none()),
            ("separation_of_duties", self.separation_of_duties.is_none()),
            ("require_signature", self.require_signature.is_none()),
            ("unsafe_formats", self.unsafe_formats.is_none()),
            ("feedback_requires_vetting", self.feedback_requires_vetting.is_none()),
            ("drift", self.drift.is_none()),
        ];
        fields.into_iter().filter(|(_, omitted)| *omitted).map(|(name, _)| name).collect()
    }

    /// Every environment the policy names (in `required_gates`, `required_approvals` and
    /// `require_signature`) with the JSON pointer (under `/policy`) where it appears, that is
    /// neither standard (`dev`, `staging`, `prod`) nor declared in `envs`.
    pub fn undeclared_envs(&self) -> Vec<(String, String)> {
        let declared: Vec<&str> = self.envs.iter().flatten().map(|e| e.0.as_str()).collect();
        let known = |env: &str| ["dev", "staging", "prod"].contains(&env) || declared.contains(&env);
        let pointer_part = |s: &str| s.replace('~', "~0").replace('/', "~1");
        let mut out = Vec::new();
        for (field, names) in [
            ("required_gates", self.required_gates.iter().flat_map(|m| m.keys()).collect::<Vec<_>>()),
            ("required_approvals", self.required_approvals.iter().flat_map(|m| m.keys()).collect()),
        ] {
            for env in names.into_iter().filter(|e| !known(e)) {
                out.push((format!("/policy/{field}/{}", pointer_part(env)), env.clone()));
            }
        }
        for (i, env) in self.require_signature.iter().flatten().enumerate() {
            if !known(&env.0) {
                out.push((format!("/policy/require_signature/{i}"), env.0.clone()));
            }
        }
        out
    }
}
