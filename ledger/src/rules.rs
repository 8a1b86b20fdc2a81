//! The detection rules of `EVENTS.md` and the retraining gate. Pure functions of the views'
//! [`State`] as of the entry before, the entry itself and the policy in force: they read no
//! clock and do no I/O, so replaying the log raises the same alerts with the same ids.
//!
//! Choices where `EVENTS.md` is silent:
//! - "Promoted or deployed" means a `registry.promote` or each artifact of a `pipeline.deploy`;
//!   a `registry.rollback` also enters an env, for `artifact.unsigned` and
//!   `artifact.substituted`.
//! - A gate counts for a digest when any run of it on that digest passed and its latest run did
//!   not fail; the run's own `target_env` is not required to match.
//! - Approvals count per approver: an approver's latest decision on that digest and env is the
//!   one that counts. `approval.missing` fires when the approvals fall short of the minimum
//!   whoever gave them; `approval.self` when the minimum is reached only thanks to approvals by
//!   the registrant, an earlier promoter, or the actor of the entry itself.
//! - An exception is an approved `registry.approve` of that digest and env whose
//!   `exception.control` names the gate, or the rule `artifact.unsigned` or
//!   `artifact.unsafe_format`; it holds until `expires` (a date means through that day, UTC).
//! - Traffic rules (`routing.unapproved`, `prompt.ungated`, and `artifact.substituted` on a
//!   request) raise one alert per violation, not one per request: again only once the
//!   registry entry behind it changes.
//! - `drift.behavior` compares each full window of `drift.window` requests of one (app, env,
//!   model) with a baseline window (the first, and after each alert the window that raised it).
//! - A feedback batch is vetted when its latest `feedback.vet` before the job (in ledger
//!   order) is `accepted` and no feedback was submitted into it after that decision.

use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, NaiveDate};
use evidence_schemas::{
    ApprovalDecision, ArtifactKind, ArtifactRef, DriftPolicy, Env, Event, EventData, GateOutcome, ProviderDecision,
    ProxyRequest, VetDecision,
};
use serde::{Deserialize, Serialize};

use crate::views::{Approval, ArtifactView, BatchView, PolicyInForce, State};

/// The eleven rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Rule {
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

impl Rule {
    /// Every rule.
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

    /// Its name in `EVENTS.md`.
    pub fn name(self) -> &'static str {
        match self {
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
            Rule::GateSkipped
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

impl std::str::FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Rule::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            let names: Vec<_> = Rule::ALL.iter().map(|r| r.name()).collect();
            format!("unknown rule {s:?} (rules: {})", names.join(", "))
        })
    }
}

/// A detection: derived state, stored beside the views, and what the SIEM receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable: derived from the rule, what it is about and the entries that prove it.
    pub id: String,
    /// The rule's name.
    pub rule: String,
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
    pub time: String,
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
    fn new(
        rule: Rule,
        policy: &PolicyInForce,
        seq: u64,
        ev: &Event,
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
            rule: rule.name().to_string(),
            severity: rule.severity(),
            title: rule.title().to_string(),
            explanation,
            policy_version: policy.version.clone(),
            entries,
            seq,
            time: ev.time.to_rfc3339(),
            app: None,
            env: None,
            artifact: None,
            actors: Vec::new(),
            violation: None,
        }
    }

    fn about(mut self, app: Option<&str>, env: Option<&Env>, artifact: Option<&ArtifactRef>) -> Self {
        self.app = app.map(str::to_string);
        self.env = env.map(|e| e.0.clone());
        self.artifact = artifact.map(ToString::to_string);
        self
    }

    fn by(mut self, actors: impl IntoIterator<Item = String>) -> Self {
        self.actors = actors.into_iter().collect();
        self.actors.sort();
        self.actors.dedup();
        self
    }

    fn once(mut self, violation: String) -> Self {
        self.violation = Some(violation);
        self
    }
}

/// The verdict on one feedback batch: may training use it?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchVerdict {
    /// The batch.
    pub batch: String,
    /// Whether it may be used.
    pub allowed: bool,
    /// Why, in a sentence.
    pub reason: String,
    /// The entries behind the verdict.
    pub entries: Vec<u64>,
}

/// Judges one feedback batch as the ledger stands (the retraining gate and
/// `feedback.unvetted` both use this).
pub fn batch_verdict(policy: &PolicyInForce, view: Option<&BatchView>, batch: &str) -> BatchVerdict {
    let required = policy.policy.feedback_requires_vetting;
    let verdict = |vetted: bool, reason: String, entries: Vec<u64>| {
        let reason = if !vetted && !required {
            format!("{reason}; policy {} does not require vetting", policy.version)
        } else {
            reason
        };
        BatchVerdict { batch: batch.to_string(), allowed: vetted || !required, reason, entries }
    };
    let Some(b) = view else {
        return verdict(false, "no feedback was submitted into it and it was never vetted".into(), Vec::new());
    };
    let mut entries: Vec<u64> = b.first_seq.into_iter().chain(b.last_seq).collect();
    let Some(vet) = b.vets.last() else {
        return verdict(false, format!("never vetted ({} submissions)", b.submitted), entries);
    };
    entries.push(vet.cite.seq);
    entries.sort_unstable();
    entries.dedup();
    let who = vet.cite.actor.as_deref().unwrap_or("an unnamed actor");
    match vet.decision {
        VetDecision::Rejected => {
            let why = vet.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            verdict(false, format!("rejected by {who} at {} (entry {}){why}", vet.cite.time, vet.cite.seq), entries)
        }
        VetDecision::Accepted => match b.last_seq {
            Some(last) if last > vet.cite.seq => verdict(
                false,
                format!(
                    "accepted by {who} at entry {}, but feedback was submitted after that (latest at entry {last})",
                    vet.cite.seq
                ),
                entries,
            ),
            _ => verdict(
                true,
                format!("vetted accepted by {who} at {} (entry {})", vet.cite.time, vet.cite.seq),
                entries,
            ),
        },
    }
}

/// An enum value as the contract spells it (`pass`, `approved`, `high`).
pub(crate) fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// Kinds whose gates and approvals the policy governs.
fn governed(kind: ArtifactKind) -> bool {
    matches!(
        kind,
        ArtifactKind::Model
            | ArtifactKind::Prompt
            | ArtifactKind::ToolSchema
            | ArtifactKind::Index
            | ArtifactKind::Routing
            | ArtifactKind::Config
    )
}

fn short(digest: &evidence_schemas::Digest) -> &str {
    &digest.0[..digest.0.len().min(19)]
}

/// How an artifact enters an env.
#[derive(Clone, Copy, PartialEq)]
enum Entering {
    Promote,
    Deploy,
    Rollback,
}

struct Check<'a> {
    st: &'a State,
    seq: u64,
    ev: &'a Event,
    out: Vec<Alert>,
}

/// Runs every rule on entry `seq`, against the state as of the entry before.
pub(crate) fn check(st: &State, seq: u64, ev: &Event) -> Vec<Alert> {
    let mut c = Check { st, seq, ev, out: Vec::new() };
    match &ev.data {
        EventData::RegistryRegister(d) => c.reregistered(&d.artifact),
        EventData::RegistryPromote(d) => c.entering(&d.artifact, &d.target_env, None, Entering::Promote),
        EventData::PipelineDeploy(d) => {
            for a in &d.artifacts {
                c.substituted(a, &d.target_env, &d.app, Entering::Deploy);
                c.entering(a, &d.target_env, Some(&d.app), Entering::Deploy);
            }
        }
        EventData::RegistryRollback(d) => {
            c.substituted(&d.artifact, &d.target_env, &d.app, Entering::Rollback);
            c.entering(&d.artifact, &d.target_env, Some(&d.app), Entering::Rollback);
        }
        EventData::ProxyRequest(d) => {
            if let Some(env) = &ev.env {
                c.route(d, env);
                c.prompt(d, env);
                c.served_model(d, env);
            }
        }
        EventData::TrainingStart(d) => {
            let policy = st.policy();
            if policy.policy.feedback_requires_vetting {
                for b in d.feedback_batches.iter().flatten() {
                    let v = batch_verdict(policy, st.batch(b), b);
                    if !v.allowed {
                        let actor = c.actor();
                        let text = format!(
                            "Training job {} (base {}) was started by {actor} on feedback batch {b}, which was {}.",
                            d.job_id,
                            d.base,
                            v.reason.trim_start_matches("vetted ")
                        );
                        let alert = Alert::new(Rule::FeedbackUnvetted, policy, seq, ev, b, v.entries, text)
                            .about(None, None, Some(&d.base))
                            .by([actor.to_string()]);
                        c.out.push(alert);
                    }
                }
            }
        }
        _ => {}
    }
    c.out
}

impl Check<'_> {
    fn actor(&self) -> &str {
        self.ev.actor.as_deref().unwrap_or("an unnamed actor")
    }

    fn alert(&self, rule: Rule, subject: &str, entries: Vec<u64>, explanation: String) -> Alert {
        Alert::new(rule, self.st.policy(), self.seq, self.ev, subject, entries, explanation)
    }

    /// A re-registration with another digest.
    fn reregistered(&mut self, a: &ArtifactRef) {
        let Some(reg) = self.st.artifact(a).and_then(|v| v.registered.as_ref()) else { return };
        if reg.digest != a.digest {
            let text = format!(
                "{a} was registered again by {} with digest {}, but it was registered at entry {} with digest {}.",
                self.actor(),
                short(&a.digest),
                reg.cite.seq,
                short(&reg.digest)
            );
            let actors = [Some(self.actor().to_string()), reg.cite.actor.clone()].into_iter().flatten();
            let alert = self.alert(Rule::ArtifactSubstituted, &a.to_string(), vec![reg.cite.seq], text);
            self.out.push(alert.about(None, None, Some(a)).by(actors));
        }
    }

    /// A deployed or rolled-back artifact whose digest is not the registered one.
    fn substituted(&mut self, a: &ArtifactRef, env: &Env, app: &str, how: Entering) {
        let Some(reg) = self.st.artifact(a).and_then(|v| v.registered.as_ref()) else { return };
        if reg.digest != a.digest {
            let verb = if how == Entering::Rollback { "rolled back to" } else { "deployed" };
            let text = format!(
                "{a} was {verb} in {app} in {env} by {} with digest {}, but it was registered at entry {} with digest {}.",
                self.actor(),
                short(&a.digest),
                reg.cite.seq,
                short(&reg.digest)
            );
            let alert = self.alert(Rule::ArtifactSubstituted, &a.to_string(), vec![reg.cite.seq], text);
            self.out.push(alert.about(Some(app), Some(env), Some(a)).by([self.actor().to_string()]));
        }
    }

    /// The rules on an artifact entering an env.
    fn entering(&mut self, a: &ArtifactRef, env: &Env, app: Option<&str>, how: Entering) {
        let policy = &self.st.policy().policy;
        let view = self.st.artifact(a);
        let reg = view.and_then(|v| v.registered.as_ref());
        let reg_seq: Vec<u64> = reg.map(|r| r.cite.seq).into_iter().collect();
        let actor = self.actor().to_string();
        let verb = match how {
            Entering::Promote => "promoted to",
            Entering::Deploy => "deployed to",
            Entering::Rollback => "rolled back into",
        };
        let target = match app {
            Some(app) => format!("{app} in {env}"),
            None => env.to_string(),
        };
        let subject = |what: &str| format!("{a}|{env}|{what}");
        let about = |alert: Alert| alert.about(app, Some(env), Some(a));

        if governed(a.kind) && how != Entering::Rollback {
            for gate in policy.required_gates.get(&env.0).into_iter().flatten() {
                if self.exception(view, a, env, gate).is_some() {
                    continue;
                }
                let view = self.st.gate(&a.digest, gate);
                match view {
                    Some(latest) if latest.latest == GateOutcome::Fail => {
                        let text = format!(
                            "{a} was {verb} {target} by {actor} although its latest {gate} result on digest {} is fail (entry {}).",
                            short(&a.digest),
                            latest.latest_seq
                        );
                        let mut entries = reg_seq.clone();
                        entries.push(latest.latest_seq);
                        let alert = self.alert(Rule::GateFailed, &subject(gate), entries, text);
                        self.out.push(about(alert).by([actor.clone()]));
                    }
                    _ if view.is_some_and(|g| g.first_pass_seq.is_some()) => {}
                    latest => {
                        let mut text = format!(
                            "{a} was {verb} {target} by {actor} with no passing {gate} gate on digest {}",
                            short(&a.digest)
                        );
                        match latest {
                            Some(r) => {
                                let _ = write!(text, " (latest run: {} at entry {}).", word(&r.latest), r.latest_seq);
                            }
                            None => text.push_str(" (it never ran)."),
                        }
                        let mut entries = reg_seq.clone();
                        entries.extend(latest.map(|r| r.latest_seq));
                        let alert = self.alert(Rule::GateSkipped, &subject(gate), entries, text);
                        self.out.push(about(alert).by([actor.clone()]));
                    }
                }
            }
            let min = policy.required_approvals.get(&env.0).copied().unwrap_or(0);
            if min > 0 {
                let approvals = effective_approvals(view, a, env);
                let mut insiders: Vec<&str> = vec![actor.as_str()];
                insiders.extend(reg.and_then(|r| r.cite.actor.as_deref()));
                insiders.extend(
                    view.into_iter()
                        .flat_map(|v| &v.promotions)
                        .filter(|p| &p.env == env && p.digest == a.digest)
                        .filter_map(|p| p.cite.actor.as_deref()),
                );
                let is_insider = |x: &Approval| x.cite.actor.as_deref().is_some_and(|who| insiders.contains(&who));
                let independent = approvals.iter().filter(|x| !is_insider(x)).count();
                let all = approvals.len();
                let approvers = |list: &[&Approval]| {
                    list.iter().map(|x| x.cite.actor.clone().unwrap_or_default()).collect::<Vec<_>>()
                };
                if all < usize::try_from(min).unwrap_or(usize::MAX) {
                    let text = format!(
                        "{a} was {verb} {target} by {actor} with {all} approval(s) for {env}, fewer than the {min} required{}.",
                        if all > 0 { format!(" (approved by {})", approvers(&approvals).join(", ")) } else { String::new() }
                    );
                    let mut entries = reg_seq.clone();
                    entries.extend(approvals.iter().map(|x| x.cite.seq));
                    let alert = self.alert(Rule::ApprovalMissing, &subject("approvals"), entries, text);
                    self.out.push(about(alert).by([actor.clone()]));
                } else if policy.separation_of_duties && independent < usize::try_from(min).unwrap_or(usize::MAX) {
                    let own: Vec<&Approval> = approvals.iter().copied().filter(|x| is_insider(x)).collect();
                    let names = approvers(&own);
                    let text = format!(
                        "{a} was {verb} {target} by {actor}; {} of its {all} approval(s) for {env} came from {} who also registered, promoted or deployed it, leaving {independent} of the {min} required.",
                        own.len(),
                        names.join(", ")
                    );
                    let mut entries = reg_seq.clone();
                    entries.extend(own.iter().map(|x| x.cite.seq));
                    let alert = self.alert(Rule::ApprovalSelf, &subject("approvals"), entries, text);
                    self.out.push(about(alert).by(names.into_iter().chain([actor.clone()])));
                }
            }
        }

        if policy.require_signature.contains(env)
            && !view.is_some_and(|v| v.signatures.iter().any(|s| s.verified && s.digest == a.digest))
            && self.exception(view, a, env, Rule::ArtifactUnsigned.name()).is_none()
        {
            let failed: Vec<u64> = view
                .into_iter()
                .flat_map(|v| &v.signatures)
                .filter(|s| s.digest == a.digest)
                .map(|s| s.cite.seq)
                .collect();
            let text = format!(
                "{a} was {verb} {target} by {actor} without a verified signature on digest {}{}.",
                short(&a.digest),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(" (signature checks failed at entries {failed:?})")
                }
            );
            let mut entries = reg_seq.clone();
            entries.extend(failed);
            let alert = self.alert(Rule::ArtifactUnsigned, &subject("signature"), entries, text);
            self.out.push(about(alert).by([actor.clone()]));
        }

        if a.kind == ArtifactKind::Model && how != Entering::Rollback {
            if let Some(format) = reg.and_then(|r| r.format.as_ref()) {
                if policy.unsafe_formats.contains(format)
                    && self.exception(view, a, env, Rule::ArtifactUnsafeFormat.name()).is_none()
                {
                    let text = format!(
                        "{a}, registered in the unsafe format {format} (entry {}), was {verb} {target} by {actor} without an approved exception.",
                        reg_seq[0]
                    );
                    let alert = self.alert(Rule::ArtifactUnsafeFormat, &subject("format"), reg_seq.clone(), text);
                    self.out.push(about(alert).by([actor]));
                }
            }
        }
    }

    /// An approved exception to `control` for this digest and env, valid at the entry's time.
    fn exception<'v>(
        &self,
        view: Option<&'v ArtifactView>,
        a: &ArtifactRef,
        env: &Env,
        control: &str,
    ) -> Option<&'v Approval> {
        effective_approvals(view, a, env).into_iter().find(|x| {
            x.exception.as_ref().is_some_and(|e| {
                e.control == control && e.expires.as_deref().is_none_or(|t| expiry(t).is_some_and(|t| t > self.ev.time))
            })
        })
    }

    fn route(&mut self, d: &ProxyRequest, env: &Env) {
        let route = self.st.route(&d.provider, &d.model, &d.region);
        let approved = route.is_some_and(|r| {
            r.decision == ProviderDecision::Approved && r.data_classes.contains(&d.data_class) && r.envs.contains(env)
        });
        if approved {
            return;
        }
        let route_seq = route.map(|r| r.cite.seq);
        let violation = format!(
            "routing|{}|{env}|{}|{}|{}|{}|{}",
            d.app,
            d.provider,
            d.model,
            d.region,
            d.data_class,
            route_seq.map(|s| s.to_string()).unwrap_or_default()
        );
        if self.st.reported(violation.as_bytes()) {
            return;
        }
        let why = match route {
            None => "a route the provider registry never approved".to_string(),
            Some(r) if r.decision == ProviderDecision::Revoked => {
                format!(
                    "a route revoked by {} at entry {}",
                    r.cite.actor.as_deref().unwrap_or("the registry"),
                    r.cite.seq
                )
            }
            Some(r) => format!(
                "a route approved at entry {} only for data classes [{}] in envs [{}]",
                r.cite.seq,
                r.data_classes.join(", "),
                r.envs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>().join(", ")
            ),
        };
        let text = format!(
            "Request {} of {} in {env} sent {} data to {}/{} in {}, {why}; later requests on this route are not alerted again until its registry entry changes.",
            d.request_id, d.app, d.data_class, d.provider, d.model, d.region
        );
        let alert = self.alert(Rule::RoutingUnapproved, &violation, route_seq.into_iter().collect(), text);
        self.out.push(alert.about(Some(&d.app), Some(env), None).once(violation));
    }

    fn prompt(&mut self, d: &ProxyRequest, env: &Env) {
        let Some(prompt) = &d.prompt else { return };
        let view = self.st.artifact(prompt);
        let policy = &self.st.policy().policy;
        let missing: Vec<&str> = policy
            .required_gates
            .get(&env.0)
            .into_iter()
            .flatten()
            .filter(|g| {
                let passed = self
                    .st
                    .gate(&prompt.digest, g)
                    .is_some_and(|v| v.first_pass_seq.is_some() && v.latest != GateOutcome::Fail);
                !passed && self.exception(view, prompt, env, g).is_none()
            })
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return;
        }
        let violation = format!("prompt|{}|{env}|{}", d.app, prompt.digest);
        if self.st.reported(violation.as_bytes()) {
            return;
        }
        let text = format!(
            "Request {} of {} in {env} was served with {prompt} (digest {}), which never passed the {} gate(s) {env} requires; later requests with it are not alerted again.",
            d.request_id,
            d.app,
            short(&prompt.digest),
            missing.join(", ")
        );
        let entries = view.and_then(|v| v.registered.as_ref()).map(|r| r.cite.seq).into_iter().collect();
        let alert = self.alert(Rule::PromptUngated, &violation, entries, text);
        self.out.push(alert.about(Some(&d.app), Some(env), Some(prompt)).once(violation));
    }

    /// A request whose model digest is not the model live for its app (or, with none live,
    /// not any registered version of its model).
    fn served_model(&mut self, d: &ProxyRequest, env: &Env) {
        let Some(digest) = &d.model_digest else { return };
        let live: Vec<_> = self
            .st
            .live(&d.app, &env.0)
            .map(|l| l.slots.values().filter(|s| s.artifact.kind == ArtifactKind::Model).collect())
            .unwrap_or_default();
        let expected =
            live.iter().find(|s| s.artifact.name == d.model).or(if live.len() == 1 { live.first() } else { None });
        let (entries, expected_text, artifact) = match expected {
            Some(s) if s.artifact.digest != *digest => (
                vec![s.cite.seq],
                format!(
                    "the model live there is {} with digest {} (entry {})",
                    s.artifact,
                    short(&s.artifact.digest),
                    s.cite.seq
                ),
                Some(s.artifact.clone()),
            ),
            Some(_) => return,
            None => {
                let mut versions: Vec<&ArtifactView> =
                    self.st.versions(ArtifactKind::Model, &d.model).filter(|v| v.registered.is_some()).collect();
                versions.sort_by_key(|v| v.registered.as_ref().map(|r| r.cite.seq));
                if versions.is_empty() || versions.iter().any(|v| v.artifact.digest == *digest) {
                    return;
                }
                let listed: Vec<String> =
                    versions.iter().map(|v| format!("{} {}", v.artifact.version, short(&v.artifact.digest))).collect();
                (
                    versions.iter().filter_map(|v| v.registered.as_ref()).map(|r| r.cite.seq).collect(),
                    format!(
                        "no registered version of model {} has that digest (registered: {})",
                        d.model,
                        listed.join(", ")
                    ),
                    None,
                )
            }
        };
        let violation = format!("model|{}|{env}|{digest}", d.app);
        if self.st.reported(violation.as_bytes()) {
            return;
        }
        let text = format!(
            "Request {} of {} in {env} was served by {} with model digest {}, but {expected_text}; later requests with it are not alerted again.",
            d.request_id,
            d.app,
            d.provider,
            short(digest)
        );
        let alert = self.alert(Rule::ArtifactSubstituted, &violation, entries, text);
        self.out.push(alert.about(Some(&d.app), Some(env), artifact.as_ref()).once(violation));
    }
}

/// The approvals of this digest for this env that stand: each approver's latest decision,
/// where it is `approved`, in ledger order.
fn effective_approvals<'v>(view: Option<&'v ArtifactView>, a: &ArtifactRef, env: &Env) -> Vec<&'v Approval> {
    let Some(view) = view else { return Vec::new() };
    let relevant: Vec<&Approval> = view.approvals.iter().filter(|x| &x.env == env && x.digest == a.digest).collect();
    relevant
        .iter()
        .enumerate()
        .filter(|(i, x)| {
            x.decision == ApprovalDecision::Approved
                && !relevant[i + 1..].iter().any(|later| later.cite.actor == x.cite.actor)
        })
        .map(|(_, x)| *x)
        .collect()
}

/// When an exception expires: an RFC 3339 time, or a date (valid through that day, UTC).
fn expiry(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.succ_opt()?;
        Some(day.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
    })
}

/// Compares a full window with the baseline; an alert when a rate moved past its threshold.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drift(
    policy: &PolicyInForce,
    drift: &DriftPolicy,
    seq: u64,
    ev: &Event,
    d: &ProxyRequest,
    env: &Env,
    baseline: &crate::views::Rates,
    current: &crate::views::Rates,
) -> Option<Alert> {
    let names = ["refusal", "safety-flag", "tool-call"];
    let limits = [drift.refusal_rate, drift.safety_flag_rate, drift.tool_call_rate];
    let (before, after) = (baseline.rates(), current.rates());
    let moved: Vec<String> = (0..3)
        .filter(|&i| (after[i] - before[i]).abs() > limits[i])
        .map(|i| {
            format!(
                "{} rate {:.1}% -> {:.1}% (limit ±{:.1} points)",
                names[i],
                before[i] * 100.0,
                after[i] * 100.0,
                limits[i] * 100.0
            )
        })
        .collect();
    if moved.is_empty() {
        return None;
    }
    let text = format!(
        "Model {} of {} in {env}: {} between the {} requests of entries {}..={} and the {} of entries {}..={}.",
        d.model,
        d.app,
        moved.join(", "),
        baseline.requests,
        baseline.first_seq,
        baseline.last_seq,
        current.requests,
        current.first_seq,
        current.last_seq
    );
    let entries = vec![baseline.first_seq, baseline.last_seq, current.first_seq, current.last_seq];
    let subject = format!("{}|{env}|{}", d.app, d.model);
    Some(Alert::new(Rule::DriftBehavior, policy, seq, ev, &subject, entries, text).about(Some(&d.app), Some(env), None))
}
