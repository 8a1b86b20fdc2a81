//! The audit questions of the contract (1 to 5) and the retraining gate, answered from
//! the views in a handful of key reads. Every answer names the entries it rests on. Answers
//! serialize to JSON and display as tables for people. Reads only: this is the only code
//! outside `governance` that reads view keys, and it never writes.

mod alerts;
mod artifact;
mod catalog;
mod live;
mod requests;
mod training;

use std::fmt;

use evidence_schemas::ArtifactKind;

pub use self::alerts::{alert_page, alerts, policy_versions, AlertPage, AlertQuery, BadCursor, PageError};
pub use self::artifact::{artifact, ArtifactHistory, Step};
pub use self::catalog::{apps, artifacts, AppList, AppSummary, ArtifactList, ArtifactSearch, ArtifactSummary, LiveNow};
pub use self::live::{state, GateStatus, LiveAnswer, LiveArtifactAnswer};
pub use self::requests::{requests, RequestCount, RequestQuery, RequestsAnswer, ViolationPage};
pub use self::training::{training, training_gate, BatchUse, Decision, TrainingAnswer, TrainingDecision};
use crate::governance::model::Cite;
use crate::text::{esc, Escaped};

/// `KIND/NAME@VERSION`, as people and the CLI name an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactName {
    /// The kind.
    pub kind: ArtifactKind,
    /// The name.
    pub name: String,
    /// The version.
    pub version: String,
}

/// Text that is not `KIND/NAME@VERSION`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not KIND/NAME@VERSION (for example model/support-bot@1.4.0){}", kind.as_ref().map(|k| format!(": unknown kind {k:?}")).unwrap_or_default())]
pub struct BadArtifactName {
    /// The text given.
    pub text: String,
    /// The kind it named, when that is what is wrong.
    pub kind: Option<String>,
}

impl std::str::FromStr for ArtifactName {
    type Err = BadArtifactName;
    fn from_str(s: &str) -> Result<Self, BadArtifactName> {
        let bad = |kind: Option<&str>| BadArtifactName { text: s.to_string(), kind: kind.map(str::to_string) };
        let (kind, rest) = s.split_once('/').ok_or_else(|| bad(None))?;
        let (name, version) = rest.rsplit_once('@').ok_or_else(|| bad(None))?;
        let kind: ArtifactKind =
            serde_json::from_value(serde_json::Value::String(kind.into())).map_err(|_| bad(Some(kind)))?;
        if name.is_empty() || version.is_empty() {
            return Err(bad(None));
        }
        Ok(ArtifactName { kind, name: name.into(), version: version.into() })
    }
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.kind.as_str(), self.name, self.version)
    }
}

/// Who an entry names, or `-`, escaped for a terminal.
fn who(c: &Cite) -> Escaped<'_> {
    esc(c.actor.as_deref().unwrap_or("-"))
}
