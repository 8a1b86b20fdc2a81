//! `approval.missing`: an artifact released with fewer standing approvals for the env than
//! the policy requires, whoever gave them.

use super::{approvers, effective_approvals, Check, Entering};
use crate::governance::alert::Rule;

/// Raises `approval.missing` when the artifact `e` enters with has fewer than `min` standing
/// approvals; returns whether it did.
pub(super) fn check(c: &mut Check<'_>, e: &Entering<'_>, min: u32) -> bool {
    let approvals = effective_approvals(e.view, e.a, e.env);
    let all = approvals.len();
    if all >= usize::try_from(min).unwrap_or(usize::MAX) {
        return false;
    }
    let text = format!(
        "{} was {} {} by {} with {all} approval(s) for {}, fewer than the {min} required{}.",
        e.a,
        e.verb,
        e.target,
        e.actor,
        e.env,
        if all > 0 { format!(" (approved by {})", approvers(&approvals).join(", ")) } else { String::new() }
    );
    let mut entries = e.reg_seq.clone();
    entries.extend(approvals.iter().map(|x| x.cite.seq));
    let alert = c.alert(Rule::ApprovalMissing, &e.subject("approvals"), entries, text);
    c.out.push(e.about(alert).by([e.actor.clone()]));
    true
}
