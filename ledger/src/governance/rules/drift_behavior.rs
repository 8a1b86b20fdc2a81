//! `drift.behavior`: a full window of `drift.window` requests of one (app, env, model) whose
//! refusal, safety-flag or tool-call rate moved past its threshold from the baseline window.
//! The rule compares the window this request completes; the projection then keeps the
//! window as the new baseline when this rule fired (or when there was none).

use evidence_schemas::{Env, ProxyRequest};

use super::Judge;
use crate::governance::alert::Rule;
use crate::governance::model::Rates;

/// Raises `drift.behavior` when request `d` completes a window that drifted from the baseline.
pub(super) fn check(c: &mut Judge<'_>, d: &ProxyRequest, env: &Env) {
    let Some(drift) = &c.policy.policy.drift else { return };
    let Some(w) = c.st.window(&d.app, &env.0, &d.model) else { return };
    let Some(baseline) = &w.baseline else { return };
    let mut current = w.current.clone();
    current.count(c.seq, d);
    if current.requests < u64::from(drift.window) {
        return;
    }
    let names = ["refusal", "safety-flag", "tool-call"];
    let limits = [drift.refusal_rate, drift.safety_flag_rate, drift.tool_call_rate];
    let (before, after) = (baseline.rates(), current.rates());
    let moved: Vec<String> = (0..3)
        .filter(|&i| (after[i] - before[i]).abs() > limits[i])
        .map(|i| {
            format!(
                "{} rate {:.1}% -> {:.1}% (limit ±{:.1} points)",
                names[i],
                before[i] * 100.0,
                after[i] * 100.0,
                limits[i] * 100.0
            )
        })
        .collect();
    if moved.is_empty() {
        return;
    }
    let text = explanation(d, env, &moved, baseline, &current);
    let entries = vec![baseline.first_seq, baseline.last_seq, current.first_seq, current.last_seq];
    let subject = format!("{}|{env}|{}", d.app, d.model);
    let alert = c.alert(Rule::DriftBehavior, &subject, entries, text);
    c.out.push(alert.about(Some(&d.app), Some(env), None));
}

fn explanation(d: &ProxyRequest, env: &Env, moved: &[String], baseline: &Rates, current: &Rates) -> String {
    format!(
        "Model {} of {} in {env}: {} between the {} requests of entries {}..={} and the {} of entries {}..={}.",
        d.model,
        d.app,
        moved.join(", "),
        baseline.requests,
        baseline.first_seq,
        baseline.last_seq,
        current.requests,
        current.first_seq,
        current.last_seq
    )
}
