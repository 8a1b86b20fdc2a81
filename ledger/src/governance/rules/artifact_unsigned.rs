//! `artifact.unsigned`: an artifact entering an env that requires a signature, with no
//! verified signature on its digest and no approved exception.

use super::{short, Check, Entering};
use crate::governance::alert::Rule;

/// Raises `artifact.unsigned` for the artifact `e` enters with.
pub(super) fn check(c: &mut Check<'_>, e: &Entering<'_>) {
    let policy = &c.st.policy().policy;
    if !policy.require_signature.contains(e.env)
        || e.view.is_some_and(|v| v.signatures.iter().any(|s| s.verified && s.digest == e.a.digest))
        || c.exception(e.view, e.a, e.env, Rule::ArtifactUnsigned.name()).is_some()
    {
        return;
    }
    let failed: Vec<u64> =
        e.view.into_iter().flat_map(|v| &v.signatures).filter(|s| s.digest == e.a.digest).map(|s| s.cite.seq).collect();
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
    let alert = c.alert(Rule::ArtifactUnsigned, &e.subject("signature"), entries, text);
    c.out.push(e.about(alert).by([e.actor.clone()]));
}
