//! `routing.unapproved`: a gateway request sent over a provider route that, at the request's
//! time, the registry had never approved, had revoked, or had approved only for other data
//! classes or envs. Folds per (app, env, route).

use evidence_schemas::{Env, ProviderDecision, ProxyRequest};

use super::{Hit, Judge};
use crate::governance::alert::Rule;
use crate::governance::model::route_name;

/// Judges request `d` in `env` for `routing.unapproved`.
pub(super) fn check<'a>(j: Judge<'a>, d: &'a ProxyRequest, env: &'a Env) -> Option<Hit<'a>> {
    let route = j.st.route(&d.provider, &d.model, &d.region).and_then(|h| h.at(j.at));
    let approved = route.is_some_and(|r| {
        r.decision == ProviderDecision::Approved && r.data_classes.contains(&d.data_class) && r.envs.contains(env)
    });
    if approved {
        return None;
    }
    let name = route_name(&d.provider, &d.model, &d.region);
    let subject = format!("{}|{env}|{name}", d.app);
    let fold = subject.clone();
    Some(Hit {
        rule: Rule::RoutingUnapproved,
        subject,
        variant: d.data_class.clone(),
        alert: Box::new(move || {
            let why = match route {
                None => "a route the provider registry had not approved".to_string(),
                Some(r) if r.decision == ProviderDecision::Revoked => format!(
                    "a route revoked by {} at entry {}",
                    r.cite.actor.as_deref().unwrap_or("the registry"),
                    r.cite.seq
                ),
                Some(r) => format!(
                    "a route approved at entry {} only for data classes [{}] in envs [{}]",
                    r.cite.seq,
                    r.data_classes.join(", "),
                    r.envs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>().join(", ")
                ),
            };
            let text = format!(
                "Request {} of {} in {env} sent {} data to {name}, {why}; later requests of {} in {env} on this route that break it are counted in this alert.",
                d.request_id, d.app, d.data_class, d.app
            );
            let mut alert =
                j.alert(Rule::RoutingUnapproved, &fold, route.map(|r| r.cite.seq).into_iter().collect(), text);
            alert.route = Some(name);
            alert.about(Some(&d.app), Some(env), None)
        }),
    })
}
