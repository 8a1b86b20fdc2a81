//! `approval.self`: the required number of approvals is reached only thanks to approvals by
//! the registrant, an earlier promoter, or the actor of the entry itself (separation of
//! duties).

use super::{approvers, Entering, Judge};
use crate::governance::alert::Rule;
use crate::governance::model::Approval;

/// Raises `approval.self` when separation of duties is required and fewer than `min` of the
/// standing approvals are independent.
pub(super) fn check(j: &mut Judge<'_>, e: &Entering<'_>, min: u32) {
    if !j.policy.policy.separation_of_duties {
        return;
    }
    let approvals = e.view.map(|v| v.approvals_at(&e.a.digest, e.env, j.at)).unwrap_or_default();
    let mut insiders: Vec<&str> = vec![e.actor.as_str()];
    insiders.extend(e.reg.and_then(|r| r.cite.actor.as_deref()));
    insiders.extend(
        e.view
            .into_iter()
            .flat_map(|v| v.promotions_at(&e.a.digest, e.env, j.at))
            .filter_map(|p| p.cite.actor.as_deref()),
    );
    let is_insider = |x: &Approval| x.cite.actor.as_deref().is_some_and(|who| insiders.contains(&who));
    let independent = approvals.iter().filter(|x| !is_insider(x)).count();
    if independent >= usize::try_from(min).unwrap_or(usize::MAX) {
        return;
    }
    let own: Vec<&Approval> = approvals.iter().copied().filter(|x| is_insider(x)).collect();
    let names = approvers(&own);
    let text = format!(
        "{} was {} {} by {}; {} of its {} approval(s) for {} came from {} who also registered, promoted or deployed it, leaving {independent} of the {min} required.",
        e.a,
        e.verb,
        e.target,
        e.actor,
        own.len(),
        approvals.len(),
        e.env,
        names.join(", ")
    );
    let mut entries = e.reg_seq.clone();
    entries.extend(own.iter().map(|x| x.cite.seq));
    let alert = j.alert(Rule::ApprovalSelf, &e.subject("approvals"), entries, text);
    j.out.push(e.about(alert).by(names.into_iter().chain([e.actor.clone()])));
}
