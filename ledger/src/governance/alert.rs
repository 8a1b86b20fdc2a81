//! Alerts: what a rule raises, stored beside the views and sent to the SIEM. The eleven
//! [`Rule`]s of the contract with their severities and titles, the ledger's own
//! (`ledger.unprojectable`: an entry the views could not apply), and the [`Alert`] record. Its serialized form
//! is a wire format (stored alerts, golden files, `evidence alerts --json`): fields and
//! spellings do not change.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use evidence_schemas::{ArtifactRef, Env, Event};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::PolicyInForce;
use crate::text::esc;

/// The eleven rules of the contract, and the ledger's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Rule {
    /// The ledger's own: an entry the views could not apply (they skip it and go on).
    EntryUnprojectable,
    GateSkipped,
    GateFailed,
    ApprovalMissing,
    ApprovalSelf,
    ArtifactSubstituted,
    ArtifactUnsigned,
    ArtifactUnsafeFormat,
    RoutingUnapproved,
    PromptUngated,
    FeedbackUnvetted,
    DriftBehavior,
}

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Its name: `low`, `medium`, `high` or `critical`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl Rule {
    /// The ledger's own rules, beside the contract's.
    pub const LEDGER: [Rule; 1] = [Rule::EntryUnprojectable];

    /// Every rule of the contract.
    pub const ALL: [Rule; 11] = [
        Rule::GateSkipped,
        Rule::GateFailed,
        Rule::ApprovalMissing,
        Rule::ApprovalSelf,
        Rule::ArtifactSubstituted,
        Rule::ArtifactUnsigned,
        Rule::ArtifactUnsafeFormat,
        Rule::RoutingUnapproved,
        Rule::PromptUngated,
        Rule::FeedbackUnvetted,
        Rule::DriftBehavior,
    ];

    /// Its name in the contract (`schemas/CONTRACT.md`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::EntryUnprojectable => "ledger.unprojectable",
            Rule::GateSkipped => "gate.skipped",
            Rule::GateFailed => "gate.failed",
            Rule::ApprovalMissing => "approval.missing",
            Rule::ApprovalSelf => "approval.self",
            Rule::ArtifactSubstituted => "artifact.substituted",
            Rule::ArtifactUnsigned => "artifact.unsigned",
            Rule::ArtifactUnsafeFormat => "artifact.unsafe_format",
            Rule::RoutingUnapproved => "routing.unapproved",
            Rule::PromptUngated => "prompt.ungated",
            Rule::FeedbackUnvetted => "feedback.unvetted",
            Rule::DriftBehavior => "drift.behavior",
        }
    }

    /// How urgent its alerts are.
    pub fn severity(self) -> Severity {
        match self {
            Rule::ArtifactSubstituted => Severity::Critical,
            Rule::EntryUnprojectable
            | Rule::GateSkipped
            | Rule::GateFailed
            | Rule::ApprovalSelf
            | Rule::ArtifactUnsafeFormat
            | Rule::RoutingUnapproved
            | Rule::PromptUngated
            | Rule::FeedbackUnvetted => Severity::High,
            Rule::ApprovalMissing | Rule::ArtifactUnsigned | Rule::DriftBehavior => Severity::Medium,
        }
    }

    /// Its alerts' title.
    pub fn title(self) -> &'static str {
        match self {
            Rule::EntryUnprojectable => "An entry the views could not apply",
            Rule::GateSkipped => "Required gate skipped",
            Rule::GateFailed => "Released despite a failed gate",
            Rule::ApprovalMissing => "Released without the required approvals",
            Rule::ApprovalSelf => "Approval by the same actor who released it",
            Rule::ArtifactSubstituted => "Artifact digest differs from the registered one",
            Rule::ArtifactUnsigned => "Artifact without a verified signature",
            Rule::ArtifactUnsafeFormat => "Model in an unsafe format",
            Rule::RoutingUnapproved => "Request sent over an unapproved provider route",
            Rule::PromptUngated => "Request served with an ungated prompt",
            Rule::FeedbackUnvetted => "Training on unvetted feedback",
            Rule::DriftBehavior => "Behaviour drift",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule name that is not one of the eleven, nor the ledger's own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule {name:?} (rules: {}, {})", Rule::ALL.map(Rule::name).join(", "), Rule::LEDGER.map(Rule::name).join(", "))]
pub struct UnknownRule {
    /// The name given.
    pub name: String,
}

impl std::str::FromStr for Rule {
    type Err = UnknownRule;
    fn from_str(s: &str) -> Result<Self, UnknownRule> {
        Rule::ALL
            .into_iter()
            .chain(Rule::LEDGER)
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownRule { name: s.to_string() })
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Event times on the wire: RFC 3339 as the event's offset gives it (`+00:00` for UTC).
mod rfc3339 {
    use chrono::{DateTime, FixedOffset};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map_err(|e| serde::de::Error::custom(format!("time {text:?}: {e}")))
    }
}

/// A detection: derived state, stored beside the views, and what the SIEM receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable: derived from the rule, what it is about and the entries that prove it.
    pub id: String,
    /// The rule.
    pub rule: Rule,
    /// How urgent.
    pub severity: Severity,
    /// The rule's title.
    pub title: String,
    /// One sentence naming the artifact, env and actors involved.
    pub explanation: String,
    /// The policy version applied.
    pub policy_version: String,
    /// The entries that prove it, ascending (the policy entry applied is among them).
    pub entries: Vec<u64>,
    /// The entry that raised it.
    pub seq: u64,
    /// That entry's event time.
    #[serde(with = "rfc3339")]
    pub time: DateTime<FixedOffset>,
    /// The app, where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The env, where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The artifact (`kind/name@version`), where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The actors involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<String>,
    /// For traffic rules: the violation this alert stands for, so that later requests with
    /// the same violation do not raise it again.
    #[serde(skip)]
    pub(crate) violation: Option<String>,
}

impl Alert {
    /// An alert of `rule` raised by entry `seq` (event `ev`) under `policy`, about `subject`,
    /// proven by `entries` (with `seq` and the policy's entry added).
    pub(crate) fn new(
        rule: Rule,
        policy: &PolicyInForce,
        (seq, ev): (u64, &Event),
        subject: &str,
        mut entries: Vec<u64>,
        explanation: String,
    ) -> Alert {
        entries.push(seq);
        entries.extend(policy.seq);
        entries.sort_unstable();
        entries.dedup();
        let mut h = blake3::Hasher::new();
        h.update(rule.name().as_bytes());
        h.update(&[0]);
        h.update(subject.as_bytes());
        for e in &entries {
            h.update(&e.to_be_bytes());
        }
        Alert {
            id: format!("alert-{}", &h.finalize().to_hex()[..24]),
            rule,
            severity: rule.severity(),
            title: rule.title().to_string(),
            explanation,
            policy_version: policy.version.clone(),
            entries,
            seq,
            time: ev.time,
            app: None,
            env: None,
            artifact: None,
            actors: Vec::new(),
            violation: None,
        }
    }

    /// The alert that entry `seq` (received at `time`) could not be applied to the views
    /// because of `problem`; the views skip it and go on.
    pub(crate) fn unprojectable(seq: u64, time: DateTime<FixedOffset>, policy: &PolicyInForce, problem: &str) -> Alert {
        let rule = Rule::EntryUnprojectable;
        let mut h = blake3::Hasher::new();
        h.update(rule.name().as_bytes());
        h.update(&seq.to_be_bytes());
        Alert {
            id: format!("alert-{}", &h.finalize().to_hex()[..24]),
            rule,
            severity: rule.severity(),
            title: rule.title().to_string(),
            explanation: format!(
                "Entry {seq} is in the log but the views could not apply it ({problem}); every view \
                 and alert that depends on it may be incomplete. Run evidence-verify, and report it."
            ),
            policy_version: policy.version.clone(),
            entries: vec![seq],
            seq,
            time,
            app: None,
            env: None,
            artifact: None,
            actors: Vec::new(),
            violation: None,
        }
    }

    /// Names the app, env and artifact it is about.
    pub(crate) fn about(mut self, app: Option<&str>, env: Option<&Env>, artifact: Option<&ArtifactRef>) -> Self {
        self.app = app.map(str::to_string);
        self.env = env.map(|e| e.0.clone());
        self.artifact = artifact.map(ToString::to_string);
        self
    }

    /// Names the actors involved (sorted, once each).
    pub(crate) fn by(mut self, actors: impl IntoIterator<Item = String>) -> Self {
        self.actors = actors.into_iter().collect();
        self.actors.sort();
        self.actors.dedup();
        self
    }

    /// Marks a traffic alert as standing for `violation`, raised once.
    pub(crate) fn once(mut self, violation: String) -> Self {
        self.violation = Some(violation);
        self
    }

    /// The violation a traffic alert stands for.
    pub fn violation(&self) -> Option<&str> {
        self.violation.as_deref()
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {} {}: {}", self.severity.name(), self.rule, self.id, self.title)?;
        writeln!(f, "    {}", esc(&self.explanation))?;
        write!(f, "    policy {}, entries {:?}", esc(&self.policy_version), self.entries)
    }
}
