//! `prompt.ungated`: a gateway request served with a prompt whose digest never passed the
//! gates its env requires. One alert per (app, env, prompt digest).

use evidence_schemas::{Env, GateOutcome, ProxyRequest};

use super::{short, Check};
use crate::governance::alert::Rule;

/// Raises `prompt.ungated` for request `d` in `env`.
pub(super) fn check(c: &mut Check<'_>, d: &ProxyRequest, env: &Env) {
    let Some(prompt) = &d.prompt else { return };
    let view = c.st.artifact(prompt);
    let policy = &c.st.policy().policy;
    let missing: Vec<&str> = policy
        .required_gates
        .get(&env.0)
        .into_iter()
        .flatten()
        .filter(|g| {
            let passed =
                c.st.gate(&prompt.digest, g)
                    .is_some_and(|v| v.first_pass_seq.is_some() && v.latest != GateOutcome::Fail);
            !passed && c.exception(view, prompt, env, g).is_none()
        })
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return;
    }
    let violation = format!("prompt|{}|{env}|{}", d.app, prompt.digest);
    if c.st.reported(violation.as_bytes()) {
        return;
    }
    let text = format!(
        "Request {} of {} in {env} was served with {prompt} (digest {}), which never passed the {} gate(s) {env} requires; later requests with it are not alerted again.",
        d.request_id,
        d.app,
        short(&prompt.digest),
        missing.join(", ")
    );
    let entries = view.and_then(|v| v.registered.as_ref()).map(|r| r.cite.seq).into_iter().collect();
    let alert = c.alert(Rule::PromptUngated, &violation, entries, text);
    c.out.push(alert.about(Some(&d.app), Some(env), Some(prompt)).once(violation));
}
