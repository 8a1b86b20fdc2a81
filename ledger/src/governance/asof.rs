//! Evidence as it stood at an event time: what the rules weigh. Every lookup here takes the
//! evidence dated at or before a time, whatever order it arrived in, and breaks ties of event
//! time without looking at arrival order (the worse outcome wins), so a verdict is a function
//! of the events, not of the order the ledger received them in.

use evidence_schemas::{ApprovalDecision, Digest, Env};

use super::model::{Approval, ArtifactView, Move, Registration, Signature};

/// How a decision ranks against another by the same approver at the same time: a withdrawal
/// wins.
fn decision_rank(d: ApprovalDecision) -> u8 {
    match d {
        ApprovalDecision::Approved => 0,
        ApprovalDecision::Rejected => 1,
        ApprovalDecision::Revoked => 2,
    }
}

impl ArtifactView {
    /// The registration in force at `t`: the earliest (by event time, then digest), if it is
    /// dated at or before `t`.
    pub fn registered_at(&self, t: i64) -> Option<&Registration> {
        self.registered.as_ref().filter(|r| r.cite.at <= t)
    }

    /// Whether `reg` should replace the first registration: it is earlier (by event time, then
    /// digest, format and owner, never by arrival).
    pub(crate) fn earlier_than_first(&self, reg: &Registration) -> bool {
        let key = |r: &'_ Registration| (r.cite.at, r.digest.clone(), r.format.clone(), r.owner.clone());
        self.registered.as_ref().is_none_or(|r| key(reg) < key(r))
    }

    /// The approvals of `digest` for `env` standing at `t`: each approver's latest decision
    /// at or before `t`, where it is `approved`; in event-time order. Of one approver's
    /// decisions at one time, a withdrawal counts over an approval, then one with an exception
    /// over one without.
    pub fn approvals_at(&self, digest: &Digest, env: &Env, t: i64) -> Vec<&Approval> {
        let mut relevant: Vec<&Approval> =
            self.approvals.iter().filter(|x| &x.env == env && &x.digest == digest && x.cite.at <= t).collect();
        let exception = |x: &Approval| x.exception.as_ref().map(|e| (e.control.clone(), e.expires.clone()));
        relevant.sort_by_key(|x| (x.cite.at, decision_rank(x.decision), exception(x), x.cite.seq));
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

    /// A verified signature on `digest` dated at or before `t` (the earliest).
    pub fn signed_at(&self, digest: &Digest, t: i64) -> Option<&Signature> {
        self.signatures
            .iter()
            .filter(|s| s.verified && &s.digest == digest && s.cite.at <= t)
            .min_by_key(|s| (s.cite.at, s.cite.seq))
    }

    /// Signature checks on `digest` dated at or before `t` that did not verify.
    pub fn failed_signatures_at(&self, digest: &Digest, t: i64) -> Vec<&Signature> {
        let mut out: Vec<&Signature> =
            self.signatures.iter().filter(|s| !s.verified && &s.digest == digest && s.cite.at <= t).collect();
        out.sort_by_key(|s| s.cite.seq);
        out
    }

    /// Promotions of `digest` into `env` dated at or before `t`.
    pub fn promotions_at<'v>(&'v self, digest: &'v Digest, env: &'v Env, t: i64) -> impl Iterator<Item = &'v Move> {
        self.promotions.iter().filter(move |p| &p.env == env && &p.digest == digest && p.cite.at <= t)
    }
}
