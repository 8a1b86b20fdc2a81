//! `approval.missing`: an artifact released with fewer standing approvals for the env than
//! the policy requires, whoever gave them.

use super::{approvers, Entering, Judge};
use crate::governance::alert::Rule;

/// Raises `approval.missing` when the artifact `e` enters with has fewer than `min` standing
/// approvals; returns whether it did.
pub(super) fn check(j: &mut Judge<'_>, e: &Entering<'_>, min: u32) -> bool {
    let approvals = e.view.map(|v| v.approvals_at(&e.a.digest, e.env, j.at)).unwrap_or_default();
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
    let alert = j.alert(Rule::ApprovalMissing, &e.subject("approvals"), entries, text);
    j.out.push(e.about(alert).by([e.actor.clone()]));
    true
}
