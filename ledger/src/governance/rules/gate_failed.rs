//! `gate.failed`: an artifact released although the latest run of a required gate on its
//! digest, at the release's time, failed.

use super::{short, Entering, Judge};
use crate::governance::alert::Rule;

/// Raises `gate.failed` for `gate` on the artifact `e` enters with.
pub(super) fn check(j: &mut Judge<'_>, e: &Entering<'_>, gate: &str) {
    let Some(view) = j.st.gate(&e.a.digest, gate) else { return };
    let Some(latest) = view.at(j.at).latest.filter(|_| view.at(j.at).failed()) else { return };
    let text = format!(
        "{} was {} {} by {} although its latest {gate} result on digest {} is fail (entry {}).",
        e.a,
        e.verb,
        e.target,
        e.actor,
        short(&e.a.digest),
        latest.seq
    );
    let mut entries = e.reg_seq.clone();
    entries.push(latest.seq);
    let alert = j.alert(Rule::GateFailed, &e.subject(gate), entries, text);
    j.out.push(e.about(alert).by([e.actor.clone()]));
}
