//! Traffic: the requests of each (app, env, route), (app, env, prompt version) and (app, env,
//! model name), summarized so that late evidence can find the requests whose verdict it may
//! change, and those requests judged again.
//!
//! A request is judged once when it arrives, on the evidence so far, and counted into its
//! fold. Evidence that arrives later but is dated at or before some of a traffic key's
//! requests (a route decision, a gate run or approval on a digest the key served, a deploy
//! or rollback of its app, a registration of its model) may change their verdict: those
//! requests are judged again and the folds of that key set to what they find. Evidence dated
//! after every request of a key changes nothing there.
//!
//! Judging again never starts from the key's first request: every [`RUNG_SPACING`] requests
//! (or [`RUNG_DISTANCE`] entries of the log, for a key with little traffic) the key gets a
//! *rung*, a snapshot of its folds over the requests before it, with the
//! latest event time among them. Evidence dated after a rung's latest time cannot change
//! the requests before it, so re-judging starts at the last such rung, from its snapshot,
//! and refreshes the snapshots of the rungs it passes. The requests since are read from
//! [`Recent`], an in-memory cache of the latest requests, or from the log when the cache does
//! not reach back that far (after a restart, or for evidence later than the cache holds).
//! Older rungs are thinned, so a key keeps at most [`RUNGS`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use evidence_schemas::{ArtifactKind, Digest, Event, EventData, ProviderDecision, ProxyRequest};

use super::alert::{Alert, Fold};
use super::keys;
use super::model::{route_name, GateView, LiveHistory, RouteView, Rung, TrafficSummary};
use super::requests::Verdict;
use super::rules::{self, History, Traffic};
use super::state::State;

/// How many requests of a key between two rungs, at most.
pub(crate) const RUNG_SPACING: u64 = 256;
/// How many entries of the log between two rungs of a key, at most (for keys with little
/// traffic).
pub(crate) const RUNG_DISTANCE: u64 = 4096;
/// How many rungs a key keeps (older ones are thinned).
pub(crate) const RUNGS: usize = 16;
/// How many requests [`Recent`] keeps, over all keys (a request counts once per key it
/// belongs to): the latest ones, so that evidence as late as a partition's whole backlog
/// (the ~50,000 entries of the Kafka tests) still re-judges from memory. About 0.5 to 1 KB
/// each.
const RECENT: usize = 1 << 17;

/// The latest requests of the traffic keys, in memory: re-judging reads them instead of the
/// log. Not stored; empty after a restart (the log is read instead, with the same result).
/// It keeps the latest [`RECENT`] of all keys together, so a key keeps as many as its share
/// of the traffic.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    ids: HashMap<Vec<u8>, usize>,
    by_id: Vec<VecDeque<(u64, Arc<Event>)>>,
    /// Which key each kept request belongs to, oldest first.
    order: VecDeque<usize>,
}

impl Recent {
    /// Keeps request `seq` of the key stored at `summary`, forgetting the oldest kept one
    /// when full.
    pub(crate) fn push(&mut self, summary: Vec<u8>, seq: u64, ev: &Arc<Event>) {
        let next = self.by_id.len();
        let id = *self.ids.entry(summary).or_insert(next);
        if id == next {
            self.by_id.push(VecDeque::new());
        }
        self.by_id[id].push_back((seq, Arc::clone(ev)));
        self.order.push_back(id);
        if self.order.len() > RECENT {
            if let Some(old) = self.order.pop_front() {
                self.by_id[old].pop_front();
            }
        }
    }

    /// The key's requests from `seq` on, if the cache reaches back that far.
    fn from(&self, summary: &[u8], seq: u64) -> Option<impl Iterator<Item = &(u64, Arc<Event>)>> {
        let q = &self.by_id[*self.ids.get(summary)?];
        if q.front()?.0 > seq {
            return None;
        }
        Some(q.iter().skip_while(move |(s, _)| *s < seq))
    }
}

/// A rung's snapshot: a traffic key's folds over its requests before the rung, each with the
/// subject it is about.
pub(crate) type Snapshot = Vec<(String, Alert)>;

/// A traffic key: the rule, app, env and the route, prompt version or model name.
pub(crate) type Key = (Traffic, String, String, String);

impl Traffic {
    /// Every traffic rule, in the order a request is judged.
    pub(crate) const ALL: [Traffic; 3] = [Traffic::Route, Traffic::Prompt, Traffic::Model];

    fn name(self) -> &'static str {
        match self {
            Traffic::Route => "route",
            Traffic::Prompt => "prompt",
            Traffic::Model => "model",
        }
    }

    /// The route, prompt version or model request `d` names for this rule, and the value it
    /// shows (data class, prompt digest, model digest); `None` when it names none.
    pub(crate) fn of(self, d: &ProxyRequest) -> Option<(String, &str)> {
        match self {
            Traffic::Route => Some((route_name(&d.provider, &d.model, &d.region), d.data_class.as_str())),
            Traffic::Prompt => d.prompt.as_ref().map(|p| (p.to_string(), p.digest.0.as_str())),
            Traffic::Model => d.model_digest.as_ref().map(|m| (d.model.clone(), m.0.as_str())),
        }
    }
}

/// What a traffic key's folds are filed under.
pub(crate) fn scope(kind: Traffic, app: &str, env: &str, name: &str) -> String {
    format!("f {} {app}|{env}|{name}", kind.name())
}

/// The key of a traffic summary.
pub(crate) fn summary_key(kind: Traffic, app: &str, env: &str, name: &str) -> Vec<u8> {
    keys::traffic(kind.name().as_bytes()[0], app, env, name)
}

/// Counts request `seq` (event time `at`, of traffic key `key`, showing `variant`) into its
/// summary. Every [`RUNG_SPACING`] requests it first adds a rung at `seq` with `folds`, the
/// key's open folds over the requests before it (each with its subject), thinning old rungs.
pub(crate) fn count(
    st: &mut State,
    (seq, at): (u64, i64),
    summary: &[u8],
    (kind, app, env, name): (Traffic, &str, &str, &str),
    variant: &str,
    folds: impl FnOnce() -> Snapshot,
) {
    let s = st.traffic.get_mut(summary.to_vec(), || TrafficSummary::of(kind.name(), app, env, name, seq, at, variant));
    let since = s.rungs.last().map_or(s.first_seq, |r| r.seq);
    if s.requests > 0 && (s.requests.is_multiple_of(RUNG_SPACING) || seq - since >= RUNG_DISTANCE) {
        s.rungs.push(Rung { seq, before_max_at: s.max_at });
        let thinned = thin(&mut s.rungs);
        s.count(seq, at, variant);
        st.snapshots.put(keys::rung(summary, seq), folds());
        for r in thinned {
            st.snapshots.remove(keys::rung(summary, r));
        }
    } else {
        s.count(seq, at, variant);
    }
}

/// Keeps at most [`RUNGS`] rungs: past that, every other one of the older half goes. Returns
/// the sequence numbers of the rungs removed.
fn thin(rungs: &mut Vec<Rung>) -> Vec<u64> {
    if rungs.len() <= RUNGS {
        return Vec::new();
    }
    let older = rungs.len() / 2;
    let mut removed = Vec::new();
    let mut i = 0;
    rungs.retain(|r| {
        let keep = i >= older || i % 2 == 0;
        if !keep {
            removed.push(r.seq);
        }
        i += 1;
        keep
    });
    removed
}

/// The traffic keys whose requests evidence `ev` (entry `seq`, already applied) judges
/// differently: those it concerns with a request dated at or after it, where it changes the
/// verdict (a repeated route decision or a re-deploy of the same digest changes nothing).
pub(crate) fn touched(st: &State, seq: u64, ev: &Event) -> Vec<Key> {
    let at = ev.time.timestamp_micros();
    let route = match &ev.data {
        EventData::RegistryProvider(d) => route_name(&d.provider, &d.model, &d.region),
        _ => String::new(),
    };
    // Whether a gate run or a move changes a verdict does not depend on the summary: asked
    // once, for the first summary it concerns.
    let once = std::cell::OnceCell::new();
    let concerns = |s: &TrafficSummary| -> bool {
        match &ev.data {
            EventData::RegistryProvider(_) => s.kind == "route" && s.name == route,
            EventData::PipelineGate(d) => s.kind == "prompt" && s.may_show(&d.artifact.digest.0),
            EventData::RegistryApprove(d) => {
                s.kind == "prompt" && s.env == d.target_env.0 && s.may_show(&d.artifact.digest.0)
            }
            EventData::PipelineDeploy(d) => s.kind == "model" && s.app == d.app && s.env == d.target_env.0,
            EventData::RegistryRollback(d) => s.kind == "model" && s.app == d.app && s.env == d.target_env.0,
            EventData::RegistryRegister(d) => {
                d.artifact.kind == ArtifactKind::Model && s.kind == "model" && s.name == d.artifact.name
            }
            _ => false,
        }
    };
    let mut out: Vec<_> = st
        .traffic
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.max_at >= at && concerns(s) && changes(st, seq, ev, s, &once))
        .filter_map(|s| {
            let kind = Traffic::ALL.into_iter().find(|k| k.name() == s.kind)?;
            Some((kind, s.app.clone(), s.env.clone(), s.name.clone()))
        })
        .collect();
    out.sort();
    out
}

/// Whether evidence `ev` (entry `seq`, applied) changes the verdict on some request of `s`
/// dated at or after it: the verdict with and without it, at its time (and, for a gate run,
/// at each later run of that gate, since a pass counts from then on). Decisions it cannot
/// weigh this way (approvals, registrations) count as changes. What does not depend on `s`
/// (a gate run, a move) is found once an event, in `once`: late evidence is weighed against
/// every summary it concerns, and a history compared run by run is not cheap.
fn changes(st: &State, seq: u64, ev: &Event, s: &TrafficSummary, once: &std::cell::OnceCell<bool>) -> bool {
    let at = ev.time.timestamp_micros();
    match &ev.data {
        EventData::RegistryProvider(d) => {
            let Some(h) = st.route(&d.provider, &d.model, &d.region) else { return true };
            let approves = |r: Option<&RouteView>, class: &str| {
                r.is_some_and(|r| {
                    r.decision == ProviderDecision::Approved
                        && r.data_classes.iter().any(|c| c == class)
                        && r.envs.iter().any(|e| e.0 == s.env)
                })
            };
            let (with, without) = (h.at(at), h.at_without(at, seq));
            s.more || s.variants.iter().any(|class| approves(with, class) != approves(without, class))
        }
        EventData::PipelineGate(d) => *once.get_or_init(|| {
            let Some(g) = st.gate(&d.artifact.digest, &d.gate) else { return true };
            let without =
                GateView { gate: g.gate.clone(), runs: g.runs.iter().filter(|r| r.seq != seq).cloned().collect() };
            g.runs.iter().filter(|r| r.at >= at).any(|r| g.at(r.at).passed() != without.at(r.at).passed())
        }),
        EventData::PipelineDeploy(d) => *once.get_or_init(|| moved(st, seq, at, &d.app, &d.target_env.0)),
        EventData::RegistryRollback(d) => *once.get_or_init(|| moved(st, seq, at, &d.app, &d.target_env.0)),
        _ => true,
    }
}

/// Whether move `seq` (at `at`) changes what served `app` in `env` at its time.
fn moved(st: &State, seq: u64, at: i64, app: &str, env: &str) -> bool {
    let Some(h) = st.live(app, env) else { return true };
    let without = h.without(seq);
    let digests = |h: &LiveHistory| -> Vec<(String, Digest)> {
        h.slots_at(at).into_iter().map(|(slot, l)| (slot, l.artifact.digest)).collect()
    };
    digests(h) != digests(&without)
}

/// What judging a traffic key again found: its folds, each with its count, ends and sample,
/// as alerts (not yet opened), the snapshots of the rungs it passed, and (for a route) the
/// verdict on each request it judged.
pub(crate) struct Rejudged {
    pub folds: Vec<Alert>,
    pub rungs: Vec<(Vec<u8>, Snapshot)>,
    pub verdicts: Vec<Verdict>,
}

/// Judges again the requests of traffic key `key` that evidence dated `at` may change: from
/// the last rung whose requests are all dated before `at`, seeded with its snapshot.
pub(crate) fn rejudge(st: &State, key: &Key, at: i64, recent: &Recent, history: &dyn History) -> Rejudged {
    let (kind, app, env, name) = key;
    let summary = summary_key(*kind, app, env, name);
    let mut out = Rejudged { folds: Vec::new(), rungs: Vec::new(), verdicts: Vec::new() };
    let Some(s) = st.traffic.get(&summary) else { return out };
    let start = s.rungs.iter().rposition(|r| r.before_max_at < at);
    let (from, seed) = match start {
        Some(i) => {
            let r = &s.rungs[i];
            (r.seq, st.snapshots.get(&keys::rung(&summary, r.seq)).cloned().unwrap_or_default())
        }
        None => (s.first_seq, Vec::new()),
    };
    // The subject is not stored with an alert: it is the snapshot's key.
    let mut folds: BTreeMap<String, Alert> = seed
        .into_iter()
        .map(|(subject, mut alert)| {
            alert.subject.clone_from(&subject);
            (subject, alert)
        })
        .collect();
    let later: Vec<u64> = s.rungs.iter().map(|r| r.seq).filter(|&r| r > from).collect();
    let mut each = |seq: u64, ev: &Event| {
        let EventData::ProxyRequest(d) = &ev.data else { return };
        let Some(e) = ev.env.as_ref().filter(|e| e.0 == *env && d.app == *app) else { return };
        if kind.of(d).is_none_or(|(n, _)| n != *name) {
            return;
        }
        if later.binary_search(&seq).is_ok() {
            let snapshot = folds.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            out.rungs.push((keys::rung(&summary, seq), snapshot));
        }
        let hit = rules::judge_request(st, st.policy_at(seq), (seq, ev), d, e, *kind);
        if *kind == Traffic::Route {
            out.verdicts.push(Verdict::of(seq, ev, d, hit.is_some()));
        }
        let Some(hit) = hit else { return };
        match folds.get_mut(&hit.subject) {
            Some(alert) => alert.fold.get_or_insert_with(|| Fold::of(seq, &hit.variant)).count(seq, &hit.variant),
            None => {
                let mut alert = (hit.alert)();
                alert.fold = Some(Fold::of(seq, &hit.variant));
                folds.insert(hit.subject, alert);
            }
        }
    };
    match recent.from(&summary, from) {
        Some(requests) => requests.for_each(|(seq, ev)| each(*seq, ev)),
        None => {
            // The type and the app appear in a request's bytes as they are; a route or prompt
            // name does not (its parts are separate fields).
            let needles: Vec<&[u8]> =
                [Some(&br#""type":"proxy.request""#[..]), rules::needle(app)].into_iter().flatten().collect();
            history.replay(from, s.last_seq, &needles, &mut each)
        }
    }
    out.folds = folds.into_values().collect();
    out
}
