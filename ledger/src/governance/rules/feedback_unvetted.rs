//! `feedback.unvetted`: a training job started on a feedback batch that was not vetted
//! `accepted` by the job's time (when the policy requires vetting); and [`batch_verdict`],
//! the verdict on one batch that this rule, the views of a job's start and the retraining
//! gate all use.

use evidence_schemas::{EventData, VetDecision};

use super::{History, Judge};
use crate::governance::alert::{Alert, Rule};
use crate::governance::model::{BatchVerdict, BatchView, JobStart, PolicyInForce, Vet};
use crate::governance::state::State;

/// Judges training job `job` on the vetting and submissions dated at or before it: its
/// `feedback.unvetted` alerts, and the verdict on each batch.
pub(crate) fn judge_job(
    st: &State,
    job: &JobStart,
    job_id: &str,
    history: &dyn History,
) -> (Vec<Alert>, Vec<BatchVerdict>) {
    let j = Judge::of(st, &job.cite);
    let mut alerts = Vec::new();
    let mut verdicts = Vec::new();
    for b in job.batches.iter().map(|v| v.batch.as_str()) {
        let v = batch_verdict(j.policy, st.batch(b), b, Some(j.at), history);
        if !v.allowed && j.policy.policy.feedback_requires_vetting {
            let actor = j.actor().to_string();
            let text = format!(
                "Training job {job_id} (base {}) was started by {actor} on feedback batch {b}, which was {}.",
                job.base,
                v.reason.trim_start_matches("vetted ")
            );
            let alert = j.alert(Rule::FeedbackUnvetted, b, v.entries.clone(), text);
            alerts.push(alert.about(None, None, Some(&job.base)).by([actor]));
        }
        verdicts.push(v);
    }
    (alerts, verdicts)
}

/// What a job's alerts are filed under: its start entry.
pub(crate) fn job_scope(job: &JobStart) -> String {
    format!("j {:020}", job.cite.seq)
}

/// Judges one feedback batch on the vetting and submissions dated at or before `at` (all of
/// them when `None`: the retraining gate asks before the job exists). The retraining gate,
/// the views of a job's start and `feedback.unvetted` all use this.
pub fn batch_verdict(
    policy: &PolicyInForce,
    view: Option<&BatchView>,
    batch: &str,
    at: Option<i64>,
    history: &dyn History,
) -> BatchVerdict {
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
    let until = at.unwrap_or(i64::MAX);
    let mut entries: Vec<u64> = b.first_seq.into_iter().chain(b.last_seq).collect();
    let Some(vet) = b.vets.iter().rev().find(|v| v.cite.at <= until) else {
        return verdict(false, format!("never vetted ({} submissions)", b.submitted), entries);
    };
    entries.push(vet.cite.seq);
    let who = vet.cite.actor.as_deref().unwrap_or("an unnamed actor");
    let result = match vet.decision {
        VetDecision::Rejected => {
            let why = vet.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            (false, format!("rejected by {who} at {} (entry {}){why}", vet.cite.time, vet.cite.seq))
        }
        VetDecision::Accepted => match submitted_after(b, batch, vet, until, history) {
            Some(after) => {
                entries.push(after);
                let text = format!(
                    "accepted by {who} at {} (entry {}), but feedback dated after that was submitted into it (entry {after})",
                    vet.cite.time, vet.cite.seq
                );
                (false, text)
            }
            None => (true, format!("vetted accepted by {who} at {} (entry {})", vet.cite.time, vet.cite.seq)),
        },
    };
    entries.sort_unstable();
    entries.dedup();
    verdict(result.0, result.1, entries)
}

/// A submission into `batch` dated after `vet` and at or before `until`: its entry. The
/// batch's earliest and latest submission times settle most cases; otherwise its
/// submissions are read back from the log.
fn submitted_after(b: &BatchView, batch: &str, vet: &Vet, until: i64, history: &dyn History) -> Option<u64> {
    let (earliest, latest) = (b.earliest.as_ref()?, b.latest.as_ref()?);
    let inside = |at: i64| at > vet.cite.at && at <= until;
    if inside(latest.at) {
        return Some(latest.seq);
    }
    if inside(earliest.at) {
        return Some(earliest.seq);
    }
    if latest.at <= vet.cite.at || earliest.at > until {
        return None;
    }
    let (Some(first), Some(last)) = (b.first_seq, b.last_seq) else { return None };
    let mut found = None;
    let needles: Vec<&[u8]> =
        [Some(&br#""type":"feedback.submit""#[..]), super::needle(batch)].into_iter().flatten().collect();
    history.replay(first, last, &needles, &mut |seq, ev| {
        if let EventData::FeedbackSubmit(d) = &ev.data {
            if found.is_none() && d.batch == batch && inside(ev.time.timestamp_micros()) {
                found = Some(seq);
            }
        }
    });
    found
}
