//! The governance policy: the default a ledger applies before any `registry.policy` entry, and
//! the policy files `evidence policy publish` turns into that event. No storage here.
//!
//! A policy file is TOML or JSON (by extension) with the shape of the event's data:
//!
//! ```toml
//! version = "2026-04-01"
//! [policy]
//! required_gates = { prod = ["prompt-injection", "leakage"], staging = ["prompt-injection"] }
//! required_approvals = { prod = 1 }
//! separation_of_duties = true
//! require_signature = ["prod"]
//! unsafe_formats = ["pickle"]
//! feedback_requires_vetting = true
//! drift = { window = 500, refusal_rate = 0.10, safety_flag_rate = 0.05, tool_call_rate = 0.20 }
//! ```
//!
//! A ledger with no policy entry yet applies [`default_policy`], version [`DEFAULT_VERSION`]:
//! the example policy of the contract (`schemas/CONTRACT.md`), above. In a published policy an
//! omitted field keeps the default's value (secure by default); turning a control off is
//! written out: `required_gates = {}`, `separation_of_duties = false`, `drift = "off"`, ...
//! This is the one place the default is defined. [`check`] explains a policy file before it
//! is published: what it leaves to the default, and how it differs from the policy in force.

use std::collections::BTreeMap;
use std::path::Path;

use evidence_schemas::{DriftPolicy, EffectivePolicy, Env, Problem, RegistryPolicy, Validator};
use serde::Serialize;

use crate::text::esc;

/// The version name alerts cite while no policy entry is in force.
pub const DEFAULT_VERSION: &str = "default";

/// The policy in force before the first `registry.policy` entry: prod needs the
/// `prompt-injection` and `leakage` gates, one approval by someone other than the registrant,
/// promoter or deployer, and a verified signature; staging needs `prompt-injection`; pickled
/// models need an exception; training needs feedback vetted `accepted`; drift is checked over
/// windows of 500 requests (refusal ±0.10, safety flags ±0.05, tool calls ±0.20).
pub fn default_policy() -> EffectivePolicy {
    let gates = |names: &[&str]| names.iter().map(|g| g.to_string()).collect::<Vec<_>>();
    EffectivePolicy {
        envs: Vec::new(),
        required_gates: BTreeMap::from([
            ("prod".to_string(), gates(&["prompt-injection", "leakage"])),
            ("staging".to_string(), gates(&["prompt-injection"])),
        ]),
        required_approvals: BTreeMap::from([("prod".to_string(), 1)]),
        separation_of_duties: true,
        require_signature: vec![Env("prod".into())],
        unsafe_formats: vec!["pickle".into()],
        feedback_requires_vetting: true,
        drift: Some(DriftPolicy { window: 500, refusal_rate: 0.10, safety_flag_rate: 0.05, tool_call_rate: 0.20 }),
    }
}

/// The `registry.policy` event the ledger publishes for `data`, by `actor` at `time` (RFC 3339).
pub fn event(data: &RegistryPolicy, actor: &str, time: &str) -> serde_json::Value {
    serde_json::json!({
        "specversion": "1.0",
        "id": format!("policy-{}", data.version),
        "source": "evidence/cli/policy",
        "type": "registry.policy",
        "time": time,
        "actor": actor,
        "data": data,
    })
}

/// One control a policy would change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// The control (a field of the policy).
    pub field: String,
    /// Its value in force now.
    pub in_force: serde_json::Value,
    /// Its value once the checked policy is published.
    pub checked: serde_json::Value,
}

/// What `evidence policy check` found: a valid policy, what it leaves to the default, the
/// policy that would be in force, and how that differs from the one in force now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyCheck {
    /// The checked policy's version.
    pub version: String,
    /// Controls it leaves out, which keep the default's value.
    pub defaulted: Vec<&'static str>,
    /// The policy in force once it is published.
    pub effective: EffectivePolicy,
    /// The version in force now it is compared with.
    pub compared_with: String,
    /// The controls that would change.
    pub changes: Vec<Change>,
}

/// Checks a policy document without publishing it: every problem the validator would report
/// on publishing (with its JSON pointer), or what publishing it would change against
/// `in_force`, the policy of version `version` in force now.
pub fn check(data: &RegistryPolicy, in_force: &EffectivePolicy, version: &str) -> Result<PolicyCheck, Vec<Problem>> {
    let event = event(data, "policy-check", "2026-01-01T00:00:00Z");
    Validator::default().validate(event.to_string().as_bytes()).map_err(|rejection| rejection.problems())?;
    let effective = data.policy.filled(&default_policy());
    let (now, then) = (serde_json::to_value(in_force), serde_json::to_value(&effective));
    let (Ok(serde_json::Value::Object(now)), Ok(serde_json::Value::Object(then))) = (now, then) else {
        unreachable!("policies serialize to objects")
    };
    let fields: std::collections::BTreeSet<&String> = now.keys().chain(then.keys()).collect();
    let changes = fields
        .into_iter()
        .filter(|f| now.get(*f) != then.get(*f))
        .map(|f| Change {
            field: f.clone(),
            in_force: now.get(f).cloned().unwrap_or(serde_json::Value::Null),
            checked: then.get(f).cloned().unwrap_or(serde_json::Value::Null),
        })
        .collect();
    let compared_with = version.to_string();
    Ok(PolicyCheck {
        version: data.version.clone(),
        defaulted: data.policy.omitted(),
        effective,
        compared_with,
        changes,
    })
}

impl std::fmt::Display for PolicyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Policy {} is valid.", esc(&self.version))?;
        if self.defaulted.is_empty() {
            writeln!(f, "It sets every control.")?;
        } else {
            writeln!(f, "It leaves these controls to the default: {}.", self.defaulted.join(", "))?;
        }
        let effective = serde_json::to_string_pretty(&self.effective).map_err(|_| std::fmt::Error)?;
        writeln!(f, "In force once published:\n{effective}")?;
        if self.changes.is_empty() {
            return writeln!(f, "No control differs from policy {} in force now.", esc(&self.compared_with));
        }
        writeln!(f, "Changes from policy {} in force now:", esc(&self.compared_with))?;
        for c in &self.changes {
            writeln!(f, "  {}: {} -> {}", c.field, c.in_force, c.checked)?;
        }
        Ok(())
    }
}

/// What can be wrong with a policy file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not TOML or JSON of the expected shape.
    #[error("{path} is not a policy file: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
}

/// Reads a policy file (`.toml`, otherwise JSON) into the data of a `registry.policy` event.
pub fn read_file(path: &Path) -> Result<RegistryPolicy, PolicyFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read { path: shown.clone(), source })?;
    let parsed = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str::<RegistryPolicy>(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str::<RegistryPolicy>(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| PolicyFileError::Parse { path: shown, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_toml_reads_as_the_default_policy() {
        let doc = include_str!("policy.rs");
        let toml: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        let parsed: RegistryPolicy = toml::from_str(&toml).expect("the documented example parses");
        assert_eq!(parsed.policy.filled(&default_policy()), default_policy());
        assert!(
            parsed.policy.omitted().is_empty(),
            "the example writes out every control but envs: {:?}",
            parsed.policy.omitted()
        );
        assert_eq!(parsed.version, "2026-04-01");
    }
}
