//! `gate.skipped`: an artifact released with no passing run of a required gate on its digest
//! (a gate whose latest run failed is `gate.failed` instead).

use std::fmt::Write as _;

use evidence_schemas::GateOutcome;

use super::{short, word, Check, Entering};
use crate::governance::alert::Rule;

/// Raises `gate.skipped` for `gate` on the artifact `e` enters with.
pub(super) fn check(c: &mut Check<'_>, e: &Entering<'_>, gate: &str) {
    let latest = c.st.gate(&e.a.digest, gate);
    if latest.is_some_and(|g| g.latest == GateOutcome::Fail || g.first_pass_seq.is_some()) {
        return;
    }
    let mut text = format!(
        "{} was {} {} by {} with no passing {gate} gate on digest {}",
        e.a,
        e.verb,
        e.target,
        e.actor,
        short(&e.a.digest)
    );
    match latest {
        Some(r) => {
            let _ = write!(text, " (latest run: {} at entry {}).", word(&r.latest), r.latest_seq);
        }
        None => text.push_str(" (it never ran)."),
    }
    let mut entries = e.reg_seq.clone();
    entries.extend(latest.map(|r| r.latest_seq));
    let alert = c.alert(Rule::GateSkipped, &e.subject(gate), entries, text);
    c.out.push(e.about(alert).by([e.actor.clone()]));
}
