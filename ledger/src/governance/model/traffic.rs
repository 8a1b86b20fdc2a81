//! The view records of traffic and routes: requests served with an artifact, drift windows,
//! the traffic summaries that late evidence re-judges, and the registry's route decisions.

use evidence_schemas::{Env, ProviderDecision, ProxyRequest};
use serde::{Deserialize, Serialize};

use super::Cite;

/// Requests served with the artifact (as model digest or prompt).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Served {
    /// How many.
    pub requests: u64,
    /// The first one's entry.
    pub first_seq: u64,
    /// The latest one's entry.
    pub last_seq: u64,
}

/// A provider route's name, `provider/model/region`: what route traffic is summarized and
/// folded under, and what a route decision concerns.
pub fn route_name(provider: &str, model: &str, region: &str) -> String {
    format!("{provider}/{model}/{region}")
}

/// Every registry decision on one provider route, in event-time order (at one time, a
/// revocation sorts after an approval, then by data classes and envs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RouteHistory {
    /// The decisions.
    pub decisions: Vec<RouteView>,
}

impl RouteHistory {
    /// Records a decision.
    pub fn record(&mut self, d: RouteView) {
        // Ties of event time go by content, never by arrival.
        let key = |r: &RouteView| {
            (r.cite.at, r.decision == ProviderDecision::Revoked, r.data_classes.clone(), r.envs.clone(), r.cite.seq)
        };
        let i = self.decisions.partition_point(|x| key(x) <= key(&d));
        self.decisions.insert(i, d);
    }

    /// The decision in force at event time `t`.
    pub fn at(&self, t: i64) -> Option<&RouteView> {
        self.decisions[..self.decisions.partition_point(|r| r.cite.at <= t)].last()
    }

    /// The decision that would be in force at event time `t` without entry `seq`'s: what
    /// [`RouteHistory::at`] answers on a copy without it, without the copy.
    pub fn at_without(&self, t: i64, seq: u64) -> Option<&RouteView> {
        self.decisions[..self.decisions.partition_point(|r| r.cite.at <= t)].iter().rev().find(|r| r.cite.seq != seq)
    }
}

/// One registry decision on a provider route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RouteView {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// approved or revoked.
    pub decision: ProviderDecision,
    /// Data classes it may carry.
    pub data_classes: Vec<String>,
    /// Envs it may serve.
    pub envs: Vec<Env>,
}

/// Behaviour counters over consecutive requests of one (app, env, model).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rates {
    /// The first request's entry.
    pub first_seq: u64,
    /// The latest request's entry.
    pub last_seq: u64,
    /// Requests.
    pub requests: u64,
    /// Refused requests.
    pub refused: u64,
    /// Requests with safety flags.
    pub flagged: u64,
    /// Requests with tool calls.
    pub tool_calls: u64,
}

impl Rates {
    /// (refusal, safety-flag, tool-call) rates.
    pub fn rates(&self) -> [f64; 3] {
        let n = self.requests.max(1) as f64;
        [self.refused as f64 / n, self.flagged as f64 / n, self.tool_calls as f64 / n]
    }
}

/// The drift window of one (app, env, model): the baseline (the first full window, and again
/// the window after each drift alert) and the window filling now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Window {
    /// The window compared against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Rates>,
    /// The window filling now.
    pub current: Rates,
}

/// The requests of one traffic key (app, env, and the route, prompt or model they name): what
/// a re-judgement reads back from the log when late evidence changes their verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrafficSummary {
    /// Which rule's traffic: `route`, `prompt` or `model`.
    pub kind: String,
    /// The app.
    pub app: String,
    /// The env.
    pub env: String,
    /// The route (`provider/model/region`), prompt (`kind/name@version`) or model name.
    pub name: String,
    /// Requests.
    pub requests: u64,
    /// The first one's entry.
    pub first_seq: u64,
    /// The latest one's entry.
    pub last_seq: u64,
    /// The earliest event time among them (µs since the epoch).
    pub min_at: i64,
    /// The latest event time among them.
    pub max_at: i64,
    /// The distinct digests or data classes seen, the first [`TrafficSummary::VARIANTS`].
    pub variants: Vec<String>,
    /// Whether more were seen than `variants` holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
    /// Where re-judging may start: every so many requests, and thinned with age (each rung's
    /// snapshot of the folds is a row of its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rungs: Vec<Rung>,
}

/// A point in a traffic key's requests where re-judging may start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rung {
    /// The first request after it.
    pub seq: u64,
    /// The latest event time among the requests before it (µs since the epoch): evidence
    /// dated after this cannot change their verdict.
    pub before_max_at: i64,
}

impl TrafficSummary {
    /// How many distinct values it lists before it only says there are more.
    pub const VARIANTS: usize = 16;

    /// A summary of `kind` traffic of `app` in `env` on `name`, from request `seq` at `at`
    /// showing `variant` (not yet counted).
    pub fn of(kind: &str, app: &str, env: &str, name: &str, seq: u64, at: i64, variant: &str) -> Self {
        TrafficSummary {
            kind: kind.to_string(),
            app: app.to_string(),
            env: env.to_string(),
            name: name.to_string(),
            requests: 0,
            first_seq: seq,
            last_seq: seq,
            min_at: at,
            max_at: at,
            variants: vec![variant.to_string()],
            more: false,
            rungs: Vec::new(),
        }
    }

    /// Counts request `seq` at `at`, showing `variant`.
    pub fn count(&mut self, seq: u64, at: i64, variant: &str) {
        self.requests += 1;
        self.last_seq = seq;
        self.min_at = self.min_at.min(at);
        self.max_at = self.max_at.max(at);
        if !self.more && !self.variants.iter().any(|v| v == variant) {
            if self.variants.len() < Self::VARIANTS {
                self.variants.push(variant.to_string());
            } else {
                self.more = true;
            }
        }
    }

    /// Whether a request showing `variant` may be among them.
    pub fn may_show(&self, variant: &str) -> bool {
        self.more || self.variants.iter().any(|v| v == variant)
    }
}

impl Rates {
    /// Counts request `seq` into the window.
    pub fn count(&mut self, seq: u64, d: &ProxyRequest) {
        if self.requests == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.requests += 1;
        self.refused += u64::from(d.refused == Some(true));
        self.flagged += u64::from(d.safety_flags.as_ref().is_some_and(|f| !f.is_empty()));
        self.tool_calls += u64::from(d.tool_calls.as_ref().is_some_and(|t| !t.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    use evidence_schemas::ProviderDecision;

    use super::{RouteHistory, RouteView};
    use crate::governance::model::Cite;

    fn decision(seq: u64, at: i64, decision: ProviderDecision) -> RouteView {
        RouteView {
            cite: Cite { seq, time: String::new(), at, actor: None },
            decision,
            data_classes: vec!["public".into()],
            envs: Vec::new(),
        }
    }

    /// Without an entry, the decision in force is the one a copy of the history without that
    /// entry finds: at every time, for every entry, ties of event time included.
    #[test]
    fn the_decision_without_an_entry_is_the_copys() {
        let (approved, revoked) = (ProviderDecision::Approved, ProviderDecision::Revoked);
        let mut h = RouteHistory::default();
        for (seq, at, d) in
            [(4, 20, revoked), (1, 10, approved), (2, 20, approved), (3, 30, approved), (5, 30, revoked)]
        {
            h.record(decision(seq, at, d));
        }
        for seq in 0..=6 {
            let copy = RouteHistory { decisions: h.decisions.iter().filter(|r| r.cite.seq != seq).cloned().collect() };
            for t in 0..=40 {
                assert_eq!(h.at_without(t, seq), copy.at(t), "without {seq} at {t}");
            }
        }
    }
}
