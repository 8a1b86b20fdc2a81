//! Audit question 4 (which feedback fed a training job, and was it vetted) and the retraining
//! gate (may this job train on these batches).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::alerts::alerts;
use super::artifact::lifecycle;
use super::{who, ArtifactName};
use crate::governance::model::{ArtifactView, BatchVerdict, BatchView, JobView, PolicyInForce};
use crate::governance::rules::{batch_verdict, word};
use crate::governance::{keys, read, Alert, NoHistory, Rule, ViewError};
use crate::store::Storage;
use crate::text::esc;

/// The retraining gate's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The job may train.
    Allow,
    /// The job may not train.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// A feedback batch a training job used (question 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchUse {
    /// The verdict on it on the evidence dated at or before the job's start (however late it
    /// arrived).
    pub at_start: BatchVerdict,
    /// The batch as the ledger stands now.
    pub now: Option<BatchView>,
}

/// A training job and its feedback (question 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainingAnswer {
    /// The job.
    pub job_id: String,
    /// Its start and finish.
    pub job: JobView,
    /// Its feedback batches.
    pub batches: Vec<BatchUse>,
    /// Its `feedback.unvetted` alerts, open and resolved (late vetting resolves them).
    pub alerts: Vec<Alert>,
    /// Every entry the answer rests on.
    pub entries: Vec<u64>,
}

/// Question 4: which feedback batches fed a training job, and were they vetted?
pub fn training<S: Storage>(store: &S, job_id: &str) -> Result<Option<TrainingAnswer>, ViewError> {
    let Some(job): Option<JobView> = read(store, &keys::job(job_id))? else { return Ok(None) };
    let mut entries: Vec<u64> =
        job.start.iter().map(|s| s.cite.seq).chain(job.finish.iter().map(|f| f.cite.seq)).collect();
    let mut batches = Vec::new();
    for verdict in job.start.iter().flat_map(|s| &s.batches) {
        entries.extend(&verdict.entries);
        let now: Option<BatchView> = read(store, &keys::batch(&verdict.batch))?;
        batches.push(BatchUse { at_start: verdict.clone(), now });
    }
    let starts: Vec<u64> = job.start.iter().chain(&job.other_starts).map(|s| s.cite.seq).collect();
    let alerts: Vec<Alert> = alerts(store, None, Some(Rule::FeedbackUnvetted), None)?
        .into_iter()
        .filter(|a| starts.contains(&a.seq))
        .collect();
    entries.sort_unstable();
    entries.dedup();
    Ok(Some(TrainingAnswer { job_id: job_id.to_string(), job, batches, alerts, entries }))
}

/// The retraining gate's answer: may this job train on these batches?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainingDecision {
    /// The job asking.
    pub job: String,
    /// Its base artifact.
    pub base: String,
    /// Allow or deny.
    pub decision: Decision,
    /// Whether the base artifact is registered, in a sentence.
    pub base_reason: String,
    /// One verdict per batch.
    pub batches: Vec<BatchVerdict>,
    /// The policy version applied.
    pub policy_version: String,
    /// Every entry the answer rests on.
    pub entries: Vec<u64>,
}

/// The retraining gate: allow only a registered base and batches vetted `accepted` (when the
/// policy in force requires vetting), judged on all the evidence in the ledger by event time:
/// a batch's latest vetting decision by event time counts, and feedback dated after it (however
/// early it arrived) means the batch changed since it was vetted.
pub fn training_gate<S: Storage>(
    store: &S,
    job: &str,
    base: &ArtifactName,
    batches: &[String],
) -> Result<TrainingDecision, ViewError> {
    let policy: PolicyInForce = read(store, keys::POLICY)?.unwrap_or_default();
    let view: Option<ArtifactView> = read(store, &keys::artifact(base.kind, &base.name, &base.version))?;
    let registration = view.as_ref().and_then(|v| v.registered.as_ref());
    let base_reason = match registration {
        Some(r) => format!(
            "{base} was registered by {} at {} (entry {}) with digest {}",
            r.cite.actor.as_deref().unwrap_or("an unnamed actor"),
            r.cite.time,
            r.cite.seq,
            r.digest
        ),
        None => format!("{base} is not registered"),
    };
    let mut verdicts = Vec::new();
    for b in batches {
        let batch: Option<BatchView> = read(store, &keys::batch(b))?;
        verdicts.push(batch_verdict(&policy, batch.as_ref(), b, None, &NoHistory));
    }
    let allowed = registration.is_some() && verdicts.iter().all(|v| v.allowed);
    let mut entries: Vec<u64> = registration.map(|r| r.cite.seq).into_iter().chain(policy.seq).collect();
    entries.extend(verdicts.iter().flat_map(|v| v.entries.iter().copied()));
    entries.sort_unstable();
    entries.dedup();
    Ok(TrainingDecision {
        job: job.to_string(),
        base: base.to_string(),
        decision: if allowed { Decision::Allow } else { Decision::Deny },
        base_reason,
        batches: verdicts,
        policy_version: policy.version,
        entries,
    })
}

impl fmt::Display for TrainingAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Training job {}", esc(&self.job_id))?;
        if let Some(s) = &self.job.start {
            writeln!(
                f,
                "  started  {} by {} (entry {}), base {}",
                s.cite.time,
                who(&s.cite),
                s.cite.seq,
                esc(&s.base.to_string())
            )?;
        }
        if let Some(e) = &self.job.finish {
            writeln!(f, "  finished {} ({}, entry {})", e.cite.time, word(&e.status), e.cite.seq)?;
        }
        writeln!(f, "  {:<24} {:>9}  vetted by the job's start?", "batch", "submitted")?;
        for b in &self.batches {
            let submitted = b.now.as_ref().map_or(0, |n| n.submitted);
            let ok = if b.at_start.allowed { "yes" } else { "NO" };
            writeln!(f, "  {:<24} {:>9}  {ok}: {}", esc(&b.at_start.batch), submitted, esc(&b.at_start.reason))?;
        }
        lifecycle(f, &self.alerts)?;
        writeln!(f, "  entries: {:?}", self.entries)
    }
}

impl fmt::Display for TrainingDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: job {} on base {} (policy {})",
            self.decision.name().to_uppercase(),
            esc(&self.job),
            esc(&self.base),
            esc(&self.policy_version)
        )?;
        writeln!(f, "  base: {}", esc(&self.base_reason))?;
        for b in &self.batches {
            writeln!(
                f,
                "  {} {}: {} (entries {:?})",
                if b.allowed { "allow" } else { "deny " },
                esc(&b.batch),
                esc(&b.reason),
                b.entries
            )?;
        }
        writeln!(f, "  entries: {:?}", self.entries)
    }
}
