//! `gate.skipped`: an artifact released with no passing run of a required gate on its digest
//! dated at or before the release (a gate whose latest run failed is `gate.failed` instead).

use std::fmt::Write as _;

use super::{short, word, Entering, Judge};
use crate::governance::alert::Rule;

/// Raises `gate.skipped` for `gate` on the artifact `e` enters with.
pub(super) fn check(j: &mut Judge<'_>, e: &Entering<'_>, gate: &str) {
    let at = j.st.gate(&e.a.digest, gate).map(|g| g.at(j.at)).unwrap_or_default();
    if at.failed() || at.first_pass.is_some() {
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
    match at.latest {
        Some(r) => {
            let _ = write!(text, " (latest run: {} at entry {}).", word(&r.result), r.seq);
        }
        None => text.push_str(" (it never ran)."),
    }
    let mut entries = e.reg_seq.clone();
    entries.extend(at.latest.map(|r| r.seq));
    let alert = j.alert(Rule::GateSkipped, &e.subject(gate), entries, text);
    j.out.push(e.about(alert).by([e.actor.clone()]));
}
