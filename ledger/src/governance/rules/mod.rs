//! The detection rules of the contract (`schemas/CONTRACT.md`) and the retraining gate's
//! verdict on a feedback batch. Pure functions of the read-only view model ([`State`]) as of
//! the entry before, the entry itself and the policy in force: they read no clock, do no I/O
//! and cannot change the state, so replaying the log raises the same alerts with the same ids.
//!
//! One file per rule, each with one function that raises it; [`check`] dispatches an entry to
//! the rules that apply to it, in a fixed order (the order of an entry's alerts is part of
//! their stored keys).
//!
//! Choices where the contract is silent:
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

mod approval_missing;
mod approval_self;
mod artifact_substituted;
mod artifact_unsafe_format;
mod artifact_unsigned;
mod drift_behavior;
mod feedback_unvetted;
mod gate_failed;
mod gate_skipped;
mod prompt_ungated;
mod routing_unapproved;

use chrono::{DateTime, FixedOffset, NaiveDate};
use evidence_schemas::{ApprovalDecision, ArtifactKind, ArtifactRef, Env, Event, EventData};
use serde::Serialize;

pub use self::feedback_unvetted::batch_verdict;
use super::alert::{Alert, Rule};
use super::model::{Approval, ArtifactView, Registration};
use super::state::State;

/// Runs every rule on entry `seq`, against the state as of the entry before.
pub(crate) fn check(st: &State, seq: u64, ev: &Event) -> Vec<Alert> {
    let mut c = Check { st, seq, ev, out: Vec::new() };
    match &ev.data {
        EventData::RegistryRegister(d) => artifact_substituted::reregistered(&mut c, &d.artifact),
        EventData::RegistryPromote(d) => c.entering(&d.artifact, &d.target_env, None, How::Promote),
        EventData::PipelineDeploy(d) => {
            for a in &d.artifacts {
                artifact_substituted::moved(&mut c, a, &d.target_env, &d.app, How::Deploy);
                c.entering(a, &d.target_env, Some(&d.app), How::Deploy);
            }
        }
        EventData::RegistryRollback(d) => {
            artifact_substituted::moved(&mut c, &d.artifact, &d.target_env, &d.app, How::Rollback);
            c.entering(&d.artifact, &d.target_env, Some(&d.app), How::Rollback);
        }
        EventData::ProxyRequest(d) => {
            if let Some(env) = &ev.env {
                routing_unapproved::check(&mut c, d, env);
                prompt_ungated::check(&mut c, d, env);
                artifact_substituted::served(&mut c, d, env);
                drift_behavior::check(&mut c, d, env);
            }
        }
        EventData::TrainingStart(d) => feedback_unvetted::check(&mut c, d),
        _ => {}
    }
    c.out
}

/// One entry being checked, and the alerts raised on it so far.
struct Check<'a> {
    st: &'a State,
    seq: u64,
    ev: &'a Event,
    out: Vec<Alert>,
}

/// How an artifact enters an env.
#[derive(Clone, Copy, PartialEq)]
enum How {
    Promote,
    Deploy,
    Rollback,
}

/// An artifact entering an env, as the release rules see it.
struct Entering<'a> {
    a: &'a ArtifactRef,
    env: &'a Env,
    app: Option<&'a str>,
    view: Option<&'a ArtifactView>,
    reg: Option<&'a Registration>,
    /// The registration's entry, if any.
    reg_seq: Vec<u64>,
    actor: String,
    /// "promoted to", "deployed to" or "rolled back into".
    verb: &'static str,
    /// "APP in ENV", or "ENV" for a promotion.
    target: String,
}

impl Entering<'_> {
    /// The subject of an alert about `what` of this artifact in this env.
    fn subject(&self, what: &str) -> String {
        format!("{}|{}|{what}", self.a, self.env)
    }

    /// The alert, about this artifact, app and env, by the entry's actor.
    fn about(&self, alert: Alert) -> Alert {
        alert.about(self.app, Some(self.env), Some(self.a))
    }
}

impl<'a> Check<'a> {
    fn actor(&self) -> &str {
        self.ev.actor.as_deref().unwrap_or("an unnamed actor")
    }

    fn alert(&self, rule: Rule, subject: &str, entries: Vec<u64>, explanation: String) -> Alert {
        Alert::new(rule, self.st.policy(), (self.seq, self.ev), subject, entries, explanation)
    }

    /// The release rules on an artifact entering an env, in their fixed order.
    fn entering(&mut self, a: &'a ArtifactRef, env: &'a Env, app: Option<&'a str>, how: How) {
        let view = self.st.artifact(a);
        let reg = view.and_then(|v| v.registered.as_ref());
        let e = Entering {
            a,
            env,
            app,
            view,
            reg,
            reg_seq: reg.map(|r| r.cite.seq).into_iter().collect(),
            actor: self.actor().to_string(),
            verb: match how {
                How::Promote => "promoted to",
                How::Deploy => "deployed to",
                How::Rollback => "rolled back into",
            },
            target: match app {
                Some(app) => format!("{app} in {env}"),
                None => env.to_string(),
            },
        };
        let policy = &self.st.policy().policy;
        if governed(a.kind) && how != How::Rollback {
            for gate in policy.required_gates.get(&env.0).into_iter().flatten() {
                if self.exception(view, a, env, gate).is_none() {
                    gate_failed::check(self, &e, gate);
                    gate_skipped::check(self, &e, gate);
                }
            }
            let min = policy.required_approvals.get(&env.0).copied().unwrap_or(0);
            if min > 0 && !approval_missing::check(self, &e, min) {
                approval_self::check(self, &e, min);
            }
        }
        artifact_unsigned::check(self, &e);
        if a.kind == ArtifactKind::Model && how != How::Rollback {
            artifact_unsafe_format::check(self, &e);
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

/// A digest shortened for a sentence.
fn short(digest: &evidence_schemas::Digest) -> &str {
    &digest.0[..digest.0.len().min(19)]
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

/// The approvers of `list`, by name.
fn approvers(list: &[&Approval]) -> Vec<String> {
    list.iter().map(|x| x.cite.actor.clone().unwrap_or_default()).collect()
}

/// When an exception expires: an RFC 3339 time, or a date (valid through that day, UTC).
fn expiry(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.succ_opt()?;
        Some(day.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
    })
}
