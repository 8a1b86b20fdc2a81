//! Audit question 3's view: gateway requests counted by event time, so that a month of
//! traffic answers in a few thousand key reads whatever its size.
//!
//! Every request is counted in five buckets of its event time (its UTC day, quarter day,
//! hour, ten minutes and minute) under its group (env, provider, model, region, data class). A range is answered by
//! the fewest buckets that cover it: whole days in the middle, narrower buckets toward the
//! ends. Each counter also counts the group's requests that break the approved routes
//! (`routing.unapproved`), and those requests are listed in an index by event time.
//!
//! Verdicts follow re-judging: when late evidence (a route approval or revocation dated
//! before some requests) changes whether a request breaks the routes, the traffic re-judging
//! reports every request it judged again, and this view adds it to or removes it from the
//! index and moves the breach counts with it. The index is the truth the counts follow: a
//! verdict is only counted when it changes what the index holds.
//!
//! Counts are history keys: they grow with time, not with what the rules read, so they are
//! not held in memory. The projection accumulates the changes of a batch here and writes
//! them as one read-modify-write per counter when the views are saved.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};
use evidence_schemas::{Event, ProxyRequest};
use serde::{Deserialize, Serialize};

use super::codec::decode;
use super::error::ViewError;
use super::keys;
use crate::store::{Storage, WriteBatch};

/// The bucket levels, widest first: a level's byte in the key and its span in seconds (a
/// day, six hours, an hour, ten minutes, a minute). Each divides the one above, so a range
/// of whole minutes is covered by at most 9 buckets of each level at each end, and whole days
/// between: a month is at most a hundred or so buckets, however busy.
pub const LEVELS: [(u8, i64); 5] = [(b'd', 86_400), (b'q', 21_600), (b'h', 3_600), (b't', 600), (b'm', 60)];

/// What requests are counted per: the env, the route and the data class of a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    /// The env the request was made in (empty when the event named none).
    pub env: String,
    /// The provider it went to.
    pub provider: String,
    /// The provider's model.
    pub model: String,
    /// The provider's region.
    pub region: String,
    /// The request's data class.
    pub data_class: String,
}

impl Group {
    /// The group of request `d`, made in `env`.
    pub fn of(d: &ProxyRequest, env: Option<&str>) -> Group {
        Group {
            env: env.unwrap_or_default().to_string(),
            provider: d.provider.clone(),
            model: d.model.clone(),
            region: d.region.clone(),
            data_class: d.data_class.clone(),
        }
    }

    /// Its parts, in key order.
    pub fn parts(&self) -> [&str; 5] {
        [&self.env, &self.provider, &self.model, &self.region, &self.data_class]
    }
}

/// A request that breaks the approved routes, as the index holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Breach {
    /// The request's entry.
    pub seq: u64,
    /// Its event time.
    #[serde(with = "super::alert::rfc3339")]
    #[schemars(with = "String")]
    pub time: DateTime<FixedOffset>,
    /// The app that made it.
    pub app: String,
    /// The gateway's request id.
    pub request_id: String,
    /// Its env, route and data class.
    #[serde(flatten)]
    pub group: Group,
}

/// A request's verdict, as judging (first or again) found it.
#[derive(Debug)]
pub(crate) struct Verdict {
    key: Vec<u8>,
    group: Group,
    minute: i64,
    /// The request, when it breaks the approved routes.
    breach: Option<Breach>,
}

impl Verdict {
    /// Request `d` (entry `seq`, event `ev`) breaks the approved routes or not.
    pub(crate) fn of(seq: u64, ev: &Event, d: &ProxyRequest, breaks: bool) -> Verdict {
        let group = Group::of(d, ev.env.as_ref().map(|e| e.0.as_str()));
        let breach = breaks.then(|| Breach {
            seq,
            time: ev.time,
            app: d.app.clone(),
            request_id: d.request_id.clone(),
            group: group.clone(),
        });
        Verdict { key: keys::breach(ev.time.timestamp_micros(), seq), group, minute: minute(ev), breach }
    }
}

/// The start (s since the epoch) of the minute of `ev`'s event time.
fn minute(ev: &Event) -> i64 {
    ev.time.timestamp().div_euclid(60) * 60
}

/// The changes to the request counts and the breach index since the views were last saved.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Requests and breaches to add, per group and minute.
    counts: HashMap<(Group, i64), [i64; 2]>,
    /// The latest verdict on each request judged, by its index key.
    verdicts: BTreeMap<Vec<u8>, Verdict>,
}

impl Pending {
    /// Counts request `d` (event `ev`), as it arrives.
    pub(crate) fn count(&mut self, ev: &Event, d: &ProxyRequest) {
        let group = Group::of(d, ev.env.as_ref().map(|e| e.0.as_str()));
        self.counts.entry((group, minute(ev))).or_default()[0] += 1;
    }

    /// Records a verdict; a later one on the same request replaces it.
    pub(crate) fn judged(&mut self, v: Verdict) {
        self.verdicts.insert(v.key.clone(), v);
    }

    /// Puts every change into `batch`: the index as the verdicts say (reading it to know
    /// which verdicts changed), then each counter read, moved and written.
    pub(crate) fn write<S: Storage>(&mut self, store: &S, batch: &mut WriteBatch) -> Result<(), ViewError> {
        for (key, v) in std::mem::take(&mut self.verdicts) {
            let indexed = store.get(&key)?.is_some();
            match v.breach {
                Some(b) if !indexed => {
                    batch.put(key, serde_json::to_vec(&b).expect("a breach serializes"));
                    self.counts.entry((v.group, v.minute)).or_default()[1] += 1;
                }
                None if indexed => {
                    batch.delete(key);
                    self.counts.entry((v.group, v.minute)).or_default()[1] -= 1;
                }
                _ => {}
            }
        }
        let mut counters: BTreeMap<Vec<u8>, [i64; 2]> = BTreeMap::new();
        for ((group, minute), delta) in self.counts.drain() {
            for (level, span) in LEVELS {
                let c = counters.entry(keys::request_count(level, minute.div_euclid(span) * span, group.parts()));
                let c = c.or_default();
                c[0] += delta[0];
                c[1] += delta[1];
            }
        }
        for (key, delta) in counters {
            if delta == [0, 0] {
                continue;
            }
            let [requests, breaches]: [u64; 2] = match store.get(&key)? {
                Some(v) => decode(&key, v.as_ref())?,
                None => [0, 0],
            };
            let moved = [requests.saturating_add_signed(delta[0]), breaches.saturating_add_signed(delta[1])];
            batch.put(key, serde_json::to_vec(&moved).expect("counts serialize"));
        }
        Ok(())
    }
}
