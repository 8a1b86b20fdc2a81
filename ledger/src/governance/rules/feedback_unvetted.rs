//! `feedback.unvetted`: a training job started on a feedback batch that was not vetted
//! `accepted` (when the policy requires vetting); and [`batch_verdict`], the verdict on one
//! batch that this rule, the views of a job's start and the retraining gate all use.

use evidence_schemas::{TrainingStart, VetDecision};

use super::Check;
use crate::governance::alert::{Alert, Rule};
use crate::governance::model::{BatchVerdict, BatchView, PolicyInForce};

/// Raises `feedback.unvetted` for each batch of `d` that may not be used.
pub(super) fn check(c: &mut Check<'_>, d: &TrainingStart) {
    let policy = c.st.policy();
    if !policy.policy.feedback_requires_vetting {
        return;
    }
    for b in d.feedback_batches.iter().flatten() {
        let v = batch_verdict(policy, c.st.batch(b), b);
        if v.allowed {
            continue;
        }
        let actor = c.actor().to_string();
        let text = format!(
            "Training job {} (base {}) was started by {actor} on feedback batch {b}, which was {}.",
            d.job_id,
            d.base,
            v.reason.trim_start_matches("vetted ")
        );
        let alert = Alert::new(Rule::FeedbackUnvetted, policy, (c.seq, c.ev), b, v.entries, text)
            .about(None, None, Some(&d.base))
            .by([actor]);
        c.out.push(alert);
    }
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
