//! `gate.failed`: an artifact released although the latest run of a required gate on its
//! digest failed.

use evidence_schemas::GateOutcome;

use super::{short, Check, Entering};
use crate::governance::alert::Rule;

/// Raises `gate.failed` for `gate` on the artifact `e` enters with.
pub(super) fn check(c: &mut Check<'_>, e: &Entering<'_>, gate: &str) {
    let Some(latest) = c.st.gate(&e.a.digest, gate).filter(|g| g.latest == GateOutcome::Fail) else { return };
    let text = format!(
        "{} was {} {} by {} although its latest {gate} result on digest {} is fail (entry {}).",
        e.a,
        e.verb,
        e.target,
        e.actor,
        short(&e.a.digest),
        latest.latest_seq
    );
    let mut entries = e.reg_seq.clone();
    entries.push(latest.latest_seq);
    let alert = c.alert(Rule::GateFailed, &e.subject(gate), entries, text);
    c.out.push(e.about(alert).by([e.actor.clone()]));
}
