//! The detection rules of the contract (`schemas/CONTRACT.md`) and the retraining gate's
//! verdict on a feedback batch. Pure functions of the read-only view model ([`State`]): they
//! read no clock and cannot change the state. Where the state keeps only a summary of
//! traffic (feedback submissions), a rule may read those entries back from the log through
//! [`History`], which never changes; so replaying the log raises the same alerts, with the
//! same statuses and ids.
//!
//! # Event time, late evidence, and the lifecycle of an alert
//!
//! Producers are separate systems with their own backlogs, so the ledger receives events out
//! of event-time order. A violation is judged on **all the evidence dated at or before it**
//! (by the producers' event times), whenever that evidence arrives:
//! - A *release* (a `registry.promote`, each artifact of a `pipeline.deploy`, a
//!   `registry.rollback`) is judged on the gate runs, approvals, signatures, registrations and
//!   promotions dated at or before it. Evidence is *late* when it arrives after the release
//!   but is dated at or before it. Late evidence that cures a violation (a gate pass, an
//!   approval, a verified signature, an exception, the registration a deploy matches)
//!   **resolves** the open alert, citing the late entry; late evidence that makes the release
//!   a violation (a failed gate, a withdrawn approval, the earlier registration a deploy
//!   contradicts) **opens** an alert then, citing it too. Each alert records the entry that
//!   opened it, and the entry that resolved it and why.
//! - A *request* (`proxy.request`) is judged on the route decisions, gate runs, exceptions,
//!   deploys and registrations dated at or before it; a *training job* on the vetting
//!   decisions and submissions dated at or before it; a *re-registration* on the
//!   registrations dated at or before it. Late evidence resolves and opens their alerts the
//!   same way.
//! - Ties of event time never depend on arrival: of two gate runs at one time the failing one
//!   is the latest; of two decisions of one approver, the withdrawal; of two route decisions,
//!   the revocation; of two vetting decisions, the rejection; of two registrations, the
//!   smaller digest is the first.
//! - Policy versions are the exception: a policy applies from its ledger entry on, as the
//!   ledger received it, because an auditor must see the policy the ledger applied. Each
//!   release, request and job is judged, and re-judged, under the policy in force at its own
//!   entry.
//! - A resolved alert stays resolved. If later evidence makes the same release a violation
//!   again, a new alert is opened (with a new id).
//!
//! # Folding
//!
//! Traffic rules fold: `routing.unapproved` per (app, env, provider route), `prompt.ungated`
//! per (app, env, prompt kind, name and version), `artifact.substituted` on requests per (app,
//! env, and the model artifact the requests should have been served by, or the provider's
//! model name when none was live), and `drift.behavior` per (app, env, model). One alert is
//! open per fold, counting its occurrences (requests, or drifted windows), its first and last
//! entries and a sample of the distinct digests, data classes or models seen; a repeat
//! updates it. When late evidence changes the verdict on requests already counted, the
//! requests of that fold's traffic are read back from the log and judged again, so the open
//! alert counts exactly the requests that are violations on all the evidence. Release,
//! registration and training rules keep one alert per violation.
//!
//! `drift.behavior` counts its windows in arrival order (a window is consecutive requests as
//! the ledger received them), and no evidence resolves it; it is the one rule whose result
//! may depend on arrival order.
//!
//! # Choices where the contract is silent
//!
//! - "Promoted or deployed" means a `registry.promote` or each artifact of a `pipeline.deploy`;
//!   a `registry.rollback` also enters an env, for `artifact.unsigned` and
//!   `artifact.substituted`.
//! - A gate counts for a digest when a run of it on that digest passed and its latest run did
//!   not fail; the run's own `target_env` is not required to match.
//! - Approvals count per approver: an approver's latest decision on that digest and env is the
//!   one that counts. `approval.missing` fires when the approvals fall short of the minimum
//!   whoever gave them; `approval.self` when the minimum is reached only thanks to approvals by
//!   the registrant, an earlier promoter, or the actor of the entry itself.
//! - An exception is an approved `registry.approve` of that digest and env whose
//!   `exception.control` names the gate, or the rule `artifact.unsigned` or
//!   `artifact.unsafe_format`; it holds until `expires` (a date means through that day, UTC).
//! - `drift.behavior` compares each full window of `drift.window` requests of one (app, env,
//!   model) with a baseline window (the first, and after each alert the window that raised it).
//! - A feedback batch is vetted for a job when its latest `feedback.vet` dated at or before
//!   the job is `accepted` and no feedback dated after that decision and at or before the job
//!   was submitted into it.

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
use evidence_schemas::{ArtifactKind, ArtifactRef, Env, Event, ProxyRequest};
use serde::Serialize;

pub use self::feedback_unvetted::batch_verdict;
pub(crate) use self::feedback_unvetted::{job_scope, judge_job};
use super::alert::{Alert, Rule};
use super::model::{Approval, ArtifactView, Cite, Move, PolicyInForce, Registration};
use super::state::State;

/// The log read back, for what the state keeps only as a summary. Entries never change, so
/// reading them back is as deterministic as the state.
pub trait History {
    /// Calls `each` with every entry from `from` to `to` (inclusive) that reads back as an
    /// event and whose canonical bytes contain every one of `needles` (a cheap test before
    /// parsing: a needle may let through entries `each` then ignores, never keep out one it
    /// wants); entries that do not read back are skipped (they have an alert of their own).
    fn replay(&self, from: u64, to: u64, needles: &[&[u8]], each: &mut dyn FnMut(u64, &Event));
}

/// A history with no entries, for views projected without a log.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHistory;

impl History for NoHistory {
    fn replay(&self, _: u64, _: u64, _: &[&[u8]], _: &mut dyn FnMut(u64, &Event)) {}
}

/// The needle that finds `text` in an event's canonical JSON, when `text` is written there
/// as it is (no character JSON escapes).
pub(crate) fn needle(text: &str) -> Option<&[u8]> {
    (!text.chars().any(|c| c == '"' || c == '\\' || c.is_control())).then_some(text.as_bytes())
}

/// How an artifact enters an env.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum How {
    Promote,
    Deploy,
    Rollback,
}

/// A release: one artifact entering an env, as its view recorded it.
pub(crate) struct Release<'a> {
    /// The artifact, with the digest released.
    pub a: ArtifactRef,
    pub m: &'a Move,
    pub how: How,
}

impl<'a> Release<'a> {
    /// Every release of `view`.
    pub(crate) fn all(view: &'a ArtifactView) -> impl Iterator<Item = Release<'a>> {
        let of = move |how: How| {
            move |m: &'a Move| Release { a: ArtifactRef { digest: m.digest.clone(), ..view.artifact.clone() }, m, how }
        };
        (view.promotions.iter().map(of(How::Promote)))
            .chain(view.deployments.iter().map(of(How::Deploy)))
            .chain(view.rollbacks.iter().map(of(How::Rollback)))
    }

    /// What its alerts are filed under: the release entry and the artifact with its digest.
    pub(crate) fn scope(&self) -> String {
        format!("r {:020} {} {}", self.m.cite.seq, self.a, self.a.digest)
    }
}

/// What a rule judges, and when: the violating entry and its event time, its actor, and the
/// policy in force at its entry.
pub(crate) struct Judge<'a> {
    pub st: &'a State,
    pub policy: &'a PolicyInForce,
    pub seq: u64,
    pub at: i64,
    pub time: DateTime<FixedOffset>,
    pub actor: Option<&'a str>,
    pub out: Vec<Alert>,
}

impl<'a> Judge<'a> {
    /// Judging entry `cite` on the state `st`.
    pub(crate) fn of(st: &'a State, cite: &'a Cite) -> Self {
        Judge {
            st,
            policy: st.policy_at(cite.seq),
            seq: cite.seq,
            at: cite.at,
            time: DateTime::parse_from_rfc3339(&cite.time).unwrap_or_default(),
            actor: cite.actor.as_deref(),
            out: Vec::new(),
        }
    }

    /// Judging event `ev` at entry `seq`, under the policy in force now.
    pub(crate) fn event(st: &'a State, seq: u64, ev: &'a Event) -> Self {
        Judge {
            st,
            policy: st.policy(),
            seq,
            at: ev.time.timestamp_micros(),
            time: ev.time,
            actor: ev.actor.as_deref(),
            out: Vec::new(),
        }
    }

    fn actor(&self) -> &str {
        self.actor.unwrap_or("an unnamed actor")
    }

    fn alert(&self, rule: Rule, subject: &str, entries: Vec<u64>, explanation: String) -> Alert {
        Alert::new(rule, self.policy, (self.seq, self.time), subject, entries, explanation)
    }

    /// An approved exception to `control` for this digest and env, standing at the judged
    /// time.
    fn exception<'v>(
        &self,
        view: Option<&'v ArtifactView>,
        a: &ArtifactRef,
        env: &Env,
        control: &str,
    ) -> Option<&'v Approval> {
        view?.approvals_at(&a.digest, env, self.at).into_iter().find(|x| {
            x.exception.as_ref().is_some_and(|e| {
                e.control == control && e.expires.as_deref().is_none_or(|t| expiry(t).is_some_and(|t| t > self.time))
            })
        })
    }
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

/// Judges release `r` on the evidence dated at or before it, under the policy in force at its
/// entry: its violations, in a fixed order.
pub(crate) fn judge_release(st: &State, r: &Release<'_>) -> Vec<Alert> {
    let mut j = Judge::of(st, &r.m.cite);
    let app = r.m.app.as_deref();
    if r.how != How::Promote {
        artifact_substituted::moved(&mut j, &r.a, &r.m.env, app.unwrap_or_default(), r.how);
    }
    let view = st.artifact(&r.a);
    let reg = view.and_then(|v| v.registered_at(j.at));
    let e = Entering {
        a: &r.a,
        env: &r.m.env,
        app,
        view,
        reg,
        reg_seq: reg.map(|r| r.cite.seq).into_iter().collect(),
        actor: j.actor().to_string(),
        verb: match r.how {
            How::Promote => "promoted to",
            How::Deploy => "deployed to",
            How::Rollback => "rolled back into",
        },
        target: match app {
            Some(app) => format!("{app} in {}", r.m.env),
            None => r.m.env.to_string(),
        },
    };
    let policy = &j.policy.policy;
    if governed(r.a.kind) && r.how != How::Rollback {
        for gate in policy.required_gates.get(&r.m.env.0).into_iter().flatten() {
            if j.exception(view, &r.a, &r.m.env, gate).is_none() {
                gate_failed::check(&mut j, &e, gate);
                gate_skipped::check(&mut j, &e, gate);
            }
        }
        let min = policy.required_approvals.get(&r.m.env.0).copied().unwrap_or(0);
        if min > 0 && !approval_missing::check(&mut j, &e, min) {
            approval_self::check(&mut j, &e, min);
        }
    }
    artifact_unsigned::check(&mut j, &e);
    if r.a.kind == ArtifactKind::Model && r.how != How::Rollback {
        artifact_unsafe_format::check(&mut j, &e);
    }
    j.out
}

/// Judges registration `reg` of `view` against the first registration dated at or before it.
pub(crate) fn judge_registration(st: &State, view: &ArtifactView, reg: &Registration) -> Vec<Alert> {
    let mut j = Judge::of(st, &reg.cite);
    artifact_substituted::reregistered(&mut j, view, reg);
    j.out
}

/// What its alerts are filed under: the registration's entry.
pub(crate) fn registration_scope(reg: &Registration) -> String {
    format!("g {:020}", reg.cite.seq)
}

/// One request that violates a traffic rule: what it folds into, and the alert that opens
/// the fold if none is open.
pub(crate) struct Hit<'a> {
    pub rule: Rule,
    /// The fold: what the alert is about.
    pub subject: String,
    /// The distinct value this request shows (a digest, a data class).
    pub variant: String,
    pub alert: Box<dyn FnOnce() -> Alert + 'a>,
}

/// The traffic rule a request's traffic key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Traffic {
    Route,
    Prompt,
    Model,
}

/// Judges request `d` (entry `seq`, event `ev`, in `env`) under `policy` on the evidence dated
/// at or before it, for the traffic rule `which`.
pub(crate) fn judge_request<'a>(
    st: &'a State,
    policy: &'a PolicyInForce,
    (seq, ev): (u64, &'a Event),
    d: &'a ProxyRequest,
    env: &'a Env,
    which: Traffic,
) -> Option<Hit<'a>> {
    let j = Judge { policy, ..Judge::event(st, seq, ev) };
    match which {
        Traffic::Route => routing_unapproved::check(j, d, env),
        Traffic::Prompt => prompt_ungated::check(j, d, env),
        Traffic::Model => artifact_substituted::served(j, d, env),
    }
}

/// Runs the drift rule on request `d`, against the windows as of the entry before.
pub(crate) fn drift(st: &State, seq: u64, ev: &Event, d: &ProxyRequest, env: &Env) -> Option<Alert> {
    let mut j = Judge::event(st, seq, ev);
    drift_behavior::check(&mut j, d, env);
    j.out.pop()
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

/// The approvers of `list`, by name.
fn approvers(list: &[&Approval]) -> Vec<String> {
    list.iter().map(|x| x.cite.actor.clone().unwrap_or_default()).collect()
}

/// When an exception expires: an RFC 3339 time, or a date (valid through that day, UTC).
pub(crate) fn expiry(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.succ_opt()?;
        Some(day.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
    })
}
