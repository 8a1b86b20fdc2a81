//! `routing.unapproved`: a gateway request sent over a provider route the registry never
//! approved, revoked, or approved only for other data classes or envs. One alert per
//! violation, again only once the route's registry entry changes.

use evidence_schemas::{Env, ProviderDecision, ProxyRequest};

use super::Check;
use crate::governance::alert::Rule;

/// Raises `routing.unapproved` for request `d` in `env`.
pub(super) fn check(c: &mut Check<'_>, d: &ProxyRequest, env: &Env) {
    let route = c.st.route(&d.provider, &d.model, &d.region);
    let approved = route.is_some_and(|r| {
        r.decision == ProviderDecision::Approved && r.data_classes.contains(&d.data_class) && r.envs.contains(env)
    });
    if approved {
        return;
    }
    let route_seq = route.map(|r| r.cite.seq);
    let violation = format!(
        "routing|{}|{env}|{}|{}|{}|{}|{}",
        d.app,
        d.provider,
        d.model,
        d.region,
        d.data_class,
        route_seq.map(|s| s.to_string()).unwrap_or_default()
    );
    if c.st.reported(violation.as_bytes()) {
        return;
    }
    let why = match route {
        None => "a route the provider registry never approved".to_string(),
        Some(r) if r.decision == ProviderDecision::Revoked => {
            format!("a route revoked by {} at entry {}", r.cite.actor.as_deref().unwrap_or("the registry"), r.cite.seq)
        }
        Some(r) => format!(
            "a route approved at entry {} only for data classes [{}] in envs [{}]",
            r.cite.seq,
            r.data_classes.join(", "),
            r.envs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    let text = format!(
        "Request {} of {} in {env} sent {} data to {}/{} in {}, {why}; later requests on this route are not alerted again until its registry entry changes.",
        d.request_id, d.app, d.data_class, d.provider, d.model, d.region
    );
    let alert = c.alert(Rule::RoutingUnapproved, &violation, route_seq.into_iter().collect(), text);
    c.out.push(alert.about(Some(&d.app), Some(env), None).once(violation));
}
