//! Alerts: what a rule raises, stored beside the views and sent to the SIEM. The eleven
//! [`Rule`]s of the contract with their severities and titles, the ledger's own
//! (`ledger.unprojectable`: an entry the views could not apply), and the [`Alert`] record. Its serialized form
//! is a wire format (stored alerts, golden files, `evidence alerts --json`): fields and
//! spellings do not change.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use evidence_schemas::{ArtifactRef, Env};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
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

impl schemars::JsonSchema for Rule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rule".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Rule::ALL.iter().chain(&Rule::LEDGER).map(|r| r.name()).collect();
        schemars::json_schema!({ "type": "string", "enum": names, "description": "A rule's name in the contract." })
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
pub(crate) mod rfc3339 {
    use chrono::{DateTime, FixedOffset};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map_err(|e| serde::de::Error::custom(format!("time {text:?}: {e}")))
    }
}

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The violation stands on the evidence so far.
    Open,
    /// Evidence dated before the violation cured it (`resolved_by`, `resolution`).
    Resolved,
}

impl Status {
    /// `open` or `resolved`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Resolved => "resolved",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Status::Open),
            "resolved" => Ok(Status::Resolved),
            _ => Err(format!("unknown status {s:?} (statuses: open, resolved)")),
        }
    }
}

/// A folded traffic alert: the requests (or drift windows) that repeat one violation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fold {
    /// How many requests (windows, for drift) it stands for.
    pub occurrences: u64,
    /// The first one's entry.
    pub first: u64,
    /// The latest one's entry.
    pub last: u64,
    /// Distinct digests, data classes or models seen, the first [`Fold::SAMPLE`] of them.
    pub sample: Vec<String>,
    /// Whether more distinct ones were seen than the sample holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

impl Fold {
    /// How many distinct values the sample keeps.
    pub const SAMPLE: usize = 8;

    /// A fold of the one occurrence `seq`, showing `variant`.
    pub fn of(seq: u64, variant: &str) -> Self {
        Fold { occurrences: 1, first: seq, last: seq, sample: vec![variant.to_string()], more: false }
    }

    /// Counts occurrence `seq`, showing `variant`.
    pub fn count(&mut self, seq: u64, variant: &str) {
        self.occurrences += 1;
        self.first = self.first.min(seq);
        self.last = self.last.max(seq);
        if !self.sample.iter().any(|s| s == variant) {
            if self.sample.len() < Fold::SAMPLE {
                self.sample.push(variant.to_string());
            } else {
                self.more = true;
            }
        }
    }
}

/// A detection: derived state, stored beside the views, and what the SIEM receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Alert {
    /// Stable: derived from the rule, what it is about and the entries that proved it when it
    /// was opened.
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
    /// The entries that prove it, ascending (the policy entry applied is among them, and the
    /// entry that opened it; for a fold, its first occurrence: `fold` names its last).
    pub entries: Vec<u64>,
    /// The entry that violated: the release, the registration, the training job, or a
    /// folded alert's first request.
    pub seq: u64,
    /// That entry's event time.
    #[serde(with = "rfc3339")]
    #[schemars(with = "String")]
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
    /// The provider route (`provider/model/region`), for `routing.unapproved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The actors involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<String>,
    /// Open or resolved.
    pub status: Status,
    /// The entry whose arrival opened it: `seq` itself, or later evidence dated before `seq`
    /// that made it a violation.
    pub opened_by: u64,
    /// The entry whose arrival resolved it: evidence dated before the violation that cures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<u64>,
    /// Why it was resolved, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// For traffic rules: the occurrences folded into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<Fold>,
    /// What it is about, as its id is derived (not stored: the id carries it).
    #[serde(skip)]
    pub(crate) subject: String,
}

impl Alert {
    /// An open alert of `rule` on entry `seq` (event time `time`) under `policy`, about
    /// `subject`, proven by `entries` (with `seq` and the policy's entry added). Its id is
    /// sealed when it is opened ([`Alert::open`]).
    pub(crate) fn new(
        rule: Rule,
        policy: &PolicyInForce,
        (seq, time): (u64, DateTime<FixedOffset>),
        subject: &str,
        mut entries: Vec<u64>,
        explanation: String,
    ) -> Alert {
        entries.push(seq);
        entries.extend(policy.seq);
        entries.sort_unstable();
        entries.dedup();
        Alert {
            id: String::new(),
            rule,
            severity: rule.severity(),
            title: rule.title().to_string(),
            explanation,
            policy_version: policy.version.clone(),
            entries,
            seq,
            time,
            app: None,
            env: None,
            artifact: None,
            route: None,
            actors: Vec::new(),
            status: Status::Open,
            opened_by: seq,
            resolved_by: None,
            resolution: None,
            fold: None,
            subject: subject.to_string(),
        }
    }

    /// Opens it on the arrival of entry `by`: cites `by` (when it is not the violating entry
    /// itself) and derives the id from the rule, the subject and the entries.
    pub(crate) fn open(mut self, by: u64) -> Alert {
        self.opened_by = by;
        if !self.entries.contains(&by) {
            self.entries.push(by);
            self.entries.sort_unstable();
        }
        let mut h = blake3::Hasher::new();
        h.update(self.rule.name().as_bytes());
        h.update(&[0]);
        h.update(self.subject.as_bytes());
        for e in &self.entries {
            h.update(&e.to_be_bytes());
        }
        self.id = format!("alert-{}", &h.finalize().to_hex()[..24]);
        self
    }

    /// Resolves it: entry `by` cured it, for the reason `why`.
    pub(crate) fn resolve(&mut self, by: u64, why: String) {
        self.status = Status::Resolved;
        self.resolved_by = Some(by);
        self.resolution = Some(why);
    }

    /// As it was while open: the resolution taken off.
    pub(crate) fn reopened(&mut self) {
        self.status = Status::Open;
        self.resolved_by = None;
        self.resolution = None;
    }

    /// The alert that entry `seq` (received at `time`) could not be applied to the views
    /// because of `problem`; the views skip it and go on.
    pub(crate) fn unprojectable(seq: u64, time: DateTime<FixedOffset>, policy: &PolicyInForce, problem: &str) -> Alert {
        let rule = Rule::EntryUnprojectable;
        let mut h = blake3::Hasher::new();
        h.update(rule.name().as_bytes());
        h.update(&seq.to_be_bytes());
        let explanation = format!(
            "Entry {seq} is in the log but the views could not apply it ({problem}); every view \
             and alert that depends on it may be incomplete. Run evidence-verify, and report it."
        );
        let mut alert = Alert::new(rule, policy, (seq, time), "", vec![seq], explanation);
        alert.entries = vec![seq];
        alert.id = format!("alert-{}", &h.finalize().to_hex()[..24]);
        alert
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
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {} {} ({}): {}", self.severity.name(), self.rule, self.id, self.status.name(), self.title)?;
        writeln!(f, "    {}", esc(&self.explanation))?;
        if let Some(fold) = &self.fold {
            let more = if fold.more { ", ..." } else { "" };
            let sample: Vec<String> = fold.sample.iter().map(|s| esc(s).to_string()).collect();
            writeln!(
                f,
                "    {} occurrence(s), entries {}..={}, seen: {}{more}",
                fold.occurrences,
                fold.first,
                fold.last,
                sample.join(", ")
            )?;
        }
        if let Some(why) = &self.resolution {
            writeln!(f, "    resolved: {}", esc(why))?;
        } else if self.opened_by != self.seq {
            writeln!(f, "    opened by entry {}, which arrived late", self.opened_by)?;
        }
        write!(f, "    policy {}, entries {:?}", esc(&self.policy_version), self.entries)
    }
}
