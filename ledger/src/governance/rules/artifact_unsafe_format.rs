//! `artifact.unsafe_format`: a model registered in a format the policy calls unsafe, promoted
//! or deployed without an approved exception.

use super::{Entering, Judge};
use crate::governance::alert::Rule;

/// Raises `artifact.unsafe_format` for the model `e` enters with.
pub(super) fn check(j: &mut Judge<'_>, e: &Entering<'_>) {
    let Some(format) = e.reg.and_then(|r| r.format.as_ref()) else { return };
    if !j.policy.policy.unsafe_formats.contains(format)
        || j.exception(e.view, e.a, e.env, Rule::ArtifactUnsafeFormat.name()).is_some()
    {
        return;
    }
    let text = format!(
        "{}, registered in the unsafe format {format} (entry {}), was {} {} by {} without an approved exception.",
        e.a, e.reg_seq[0], e.verb, e.target, e.actor
    );
    let alert = j.alert(Rule::ArtifactUnsafeFormat, &e.subject("format"), e.reg_seq.clone(), text);
    j.out.push(e.about(alert).by([e.actor.clone()]));
}
