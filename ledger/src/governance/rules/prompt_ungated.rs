//! `prompt.ungated`: a gateway request served with a prompt whose digest had not passed, by
//! the request's time, the gates its env requires. Folds per (app, env, prompt kind, name and
//! version), with a sample of the digests seen.

use evidence_schemas::{Env, ProxyRequest};

use super::{short, Hit, Judge};
use crate::governance::alert::Rule;

/// Judges request `d` in `env` for `prompt.ungated`.
pub(super) fn check<'a>(j: Judge<'a>, d: &'a ProxyRequest, env: &'a Env) -> Option<Hit<'a>> {
    let prompt = d.prompt.as_ref()?;
    let gates = j.policy.policy.required_gates.get(&env.0)?;
    let view = j.st.artifact(prompt);
    let missing: Vec<&str> = gates
        .iter()
        .filter(|g| {
            let passed = j.st.gate(&prompt.digest, g).is_some_and(|v| v.at(j.at).passed());
            !passed && j.exception(view, prompt, env, g).is_none()
        })
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let subject = format!("{}|{env}|{prompt}", d.app);
    let fold = subject.clone();
    Some(Hit {
        rule: Rule::PromptUngated,
        subject,
        variant: prompt.digest.0.clone(),
        alert: Box::new(move || {
            let text = format!(
                "Request {} of {} in {env} was served with {prompt} (digest {}), which had not passed the {} gate(s) {env} requires; later requests of {} in {env} with an ungated {prompt} are counted in this alert.",
                d.request_id,
                d.app,
                short(&prompt.digest),
                missing.join(", "),
                d.app
            );
            let entries = view.and_then(|v| v.registered_at(j.at)).map(|r| r.cite.seq).into_iter().collect();
            j.alert(Rule::PromptUngated, &fold, entries, text).about(Some(&d.app), Some(env), Some(prompt))
        }),
    })
}
