//! `artifact.unsigned`: an artifact entering an env that requires a signature, with no
//! verified signature on its digest dated at or before the release and no approved
//! exception.

use super::{short, Entering, Judge};
use crate::governance::alert::Rule;

/// Raises `artifact.unsigned` for the artifact `e` enters with.
pub(super) fn check(j: &mut Judge<'_>, e: &Entering<'_>) {
    if !j.policy.policy.require_signature.contains(e.env)
        || e.view.is_some_and(|v| v.signed_at(&e.a.digest, j.at).is_some())
        || j.exception(e.view, e.a, e.env, Rule::ArtifactUnsigned.name()).is_some()
    {
        return;
    }
    let failed: Vec<u64> = e
        .view
        .map(|v| v.failed_signatures_at(&e.a.digest, j.at).iter().map(|s| s.cite.seq).collect())
        .unwrap_or_default();
    let text = format!(
        "{} was {} {} by {} without a verified signature on digest {}{}.",
        e.a,
        e.verb,
        e.target,
        e.actor,
        short(&e.a.digest),
        if failed.is_empty() { String::new() } else { format!(" (signature checks failed at entries {failed:?})") }
    );
    let mut entries = e.reg_seq.clone();
    entries.extend(failed);
    let alert = j.alert(Rule::ArtifactUnsigned, &e.subject("signature"), entries, text);
    j.out.push(e.about(alert).by([e.actor.clone()]));
}
