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
//! In a published policy an omitted field is off. A ledger with no policy entry yet applies
//! [`default_policy`], version [`DEFAULT_VERSION`]: the example policy of the contract
//! (`schemas/CONTRACT.md`), above. This is the one place the default is defined.

use std::collections::BTreeMap;
use std::path::Path;

use evidence_schemas::{DriftPolicy, Env, Policy, RegistryPolicy};

/// The version name alerts cite while no policy entry is in force.
pub const DEFAULT_VERSION: &str = "default";

/// The policy in force before the first `registry.policy` entry: prod needs the
/// `prompt-injection` and `leakage` gates, one approval by someone other than the registrant,
/// promoter or deployer, and a verified signature; staging needs `prompt-injection`; pickled
/// models need an exception; training needs feedback vetted `accepted`; drift is checked over
/// windows of 500 requests (refusal ±0.10, safety flags ±0.05, tool calls ±0.20).
pub fn default_policy() -> Policy {
    let gates = |names: &[&str]| names.iter().map(|g| g.to_string()).collect::<Vec<_>>();
    Policy {
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
        assert_eq!(parsed.policy, default_policy());
        assert_eq!(parsed.version, "2026-04-01");
    }
}
