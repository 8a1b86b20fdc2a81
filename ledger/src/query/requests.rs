//! Audit question 3: which requests went to which providers, by data class and env, in a
//! time range, and which of them broke the approved routes. Counted from the time buckets of
//! [`crate::governance::requests`]: a range costs its whole days, plus the hours and minutes
//! at its ends, whatever the traffic in it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::alerts::{resume, PageError};
use crate::governance::keys;
use crate::governance::requests::{Breach, Group, LEVELS};
use crate::governance::{decode, ViewError};
use crate::store::Storage;
use crate::text::esc;

/// What question 3 asks: a range of event time, and each filter given narrows the counts
/// and the list.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestQuery {
    /// Requests dated at or after this (counted from the start of its minute).
    pub from: DateTime<FixedOffset>,
    /// Requests dated before this (counted to the end of its minute when it is not on one).
    pub to: DateTime<FixedOffset>,
    /// Only this env.
    pub env: Option<String>,
    /// Only this data class.
    pub data_class: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
}

impl RequestQuery {
    fn matches(&self, g: &Group) -> bool {
        self.env.as_ref().is_none_or(|e| *e == g.env)
            && self.data_class.as_ref().is_none_or(|c| *c == g.data_class)
            && self.provider.as_ref().is_none_or(|p| *p == g.provider)
    }
}

/// The requests of one group in the range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestCount {
    /// The env, route and data class.
    #[serde(flatten)]
    pub group: Group,
    /// How many requests.
    pub requests: u64,
    /// How many of them broke the approved routes.
    pub breaches: u64,
}

/// The answer to question 3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestsAnswer {
    /// The range counted: the query's, widened to whole minutes (UTC).
    #[serde(with = "crate::governance::alert::rfc3339")]
    #[schemars(with = "String")]
    pub from: DateTime<FixedOffset>,
    /// The end of the range counted (excluded).
    #[serde(with = "crate::governance::alert::rfc3339")]
    #[schemars(with = "String")]
    pub to: DateTime<FixedOffset>,
    /// Requests in the range, over every group listed.
    pub requests: u64,
    /// Of them, those that broke the approved routes.
    pub breaches: u64,
    /// The counts per env, provider, model, region and data class, in that order.
    pub groups: Vec<RequestCount>,
    /// With `violations`: the requests that broke the approved routes, by event time, a page
    /// at a time. Each names its entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<Breach>>,
    /// The cursor of the next page of violations, when there are more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl RequestsAnswer {
    /// The entries the answer names: the violations listed.
    pub fn entries(&self) -> Vec<u64> {
        self.violations.iter().flatten().map(|b| b.seq).collect()
    }
}

/// A page of the violations: from `cursor` (a `next` handed out before) on, at most `limit`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ViolationPage {
    /// Where the page starts.
    pub cursor: Option<String>,
    /// How many at most.
    pub limit: usize,
}

/// Question 3: the counts of the requests in the range by group, and, when `violations` is
/// given, a page of the requests that broke the approved routes.
pub fn requests<S: Storage>(
    store: &S,
    q: &RequestQuery,
    violations: Option<&ViolationPage>,
) -> Result<RequestsAnswer, PageError> {
    let from = q.from.timestamp().div_euclid(60) * 60;
    let on_a_minute = q.to.timestamp().rem_euclid(60) == 0 && q.to.timestamp_subsec_nanos() == 0;
    let to = (q.to.timestamp().div_euclid(60) + i64::from(!on_a_minute)) * 60;
    // Summed by the group's bytes in the key, decoded once per group at the end: a month
    // is thousands of counters of a few dozen groups.
    let mut sums: HashMap<Vec<u8>, [u64; 2]> = HashMap::new();
    for (level, start, end) in spans(from, to) {
        let (a, b) = (keys::request_bucket(level, start), keys::request_bucket(level, end));
        let tail = a.len();
        for item in store.range(&a, &b) {
            let (k, v) = item.map_err(ViewError::from)?;
            let Some(group) = k.as_ref().get(tail..) else { continue };
            let [r, x]: [u64; 2] = decode(k.as_ref(), v.as_ref())?;
            match sums.get_mut(group) {
                Some(c) => {
                    c[0] += r;
                    c[1] += x;
                }
                None => {
                    sums.insert(group.to_vec(), [r, x]);
                }
            }
        }
    }
    let mut groups: BTreeMap<Group, [u64; 2]> = BTreeMap::new();
    for (tail, c) in sums {
        let group = group_of(&tail)?;
        if q.matches(&group) {
            groups.insert(group, c);
        }
    }
    let time = |s: i64| Utc.timestamp_opt(s, 0).single().unwrap_or_default().fixed_offset();
    let mut answer = RequestsAnswer {
        from: time(from),
        to: time(to),
        requests: groups.values().map(|c| c[0]).sum(),
        breaches: groups.values().map(|c| c[1]).sum(),
        groups: groups
            .into_iter()
            .filter(|(_, c)| c[0] > 0 || c[1] > 0)
            .map(|(group, [requests, breaches])| RequestCount { group, requests, breaches })
            .collect(),
        violations: None,
        next: None,
    };
    if let Some(page) = violations {
        let (list, next) = breaches(store, q, (from, to), page)?;
        answer.violations = Some(list);
        answer.next = next;
    }
    Ok(answer)
}

/// The fewest buckets that cover `[from, to)` (whole minutes): `(level, first bucket, end)`,
/// one span per level and run, widest buckets wherever they fit.
fn spans(from: i64, to: i64) -> Vec<(u8, i64, i64)> {
    let mut out: Vec<(u8, i64, i64)> = Vec::new();
    let mut t = from;
    while t < to {
        let (level, span) = LEVELS
            .into_iter()
            .find(|&(_, span)| t.rem_euclid(span) == 0 && t + span <= to)
            .expect("minutes always fit: the range is whole minutes");
        match out.last_mut() {
            Some(last) if last.0 == level && last.2 == t => last.2 = t + span,
            _ => out.push((level, t, t + span)),
        }
        t += span;
    }
    out
}

/// The group a counter's key names after its bucket.
fn group_of(tail: &[u8]) -> Result<Group, ViewError> {
    let corrupt =
        || ViewError::Corrupt { key: tail.escape_ascii().to_string(), message: "not a request counter's group".into() };
    let parts = keys::parts_of(tail).ok_or_else(corrupt)?;
    let [env, provider, model, region, data_class] = parts[..] else { return Err(corrupt()) };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| corrupt());
    Ok(Group {
        env: text(env)?,
        provider: text(provider)?,
        model: text(model)?,
        region: text(region)?,
        data_class: text(data_class)?,
    })
}

/// A page of the requests in `[from, to)` (s) that broke the approved routes.
fn breaches<S: Storage>(
    store: &S,
    q: &RequestQuery,
    (from, to): (i64, i64),
    page: &ViolationPage,
) -> Result<(Vec<Breach>, Option<String>), PageError> {
    let mut start = keys::breach(from.saturating_mul(1_000_000), 0);
    if let Some(cursor) = &page.cursor {
        start = resume(&start, cursor, Some(16))?;
    }
    let end = keys::breach(to.saturating_mul(1_000_000), 0);
    let mut out = Vec::new();
    for item in store.range(&start, &end) {
        let (k, v) = item.map_err(ViewError::from)?;
        if out.len() == page.limit {
            return Ok((out, Some(hex::encode(&k.as_ref()[2..]))));
        }
        let b: Breach = decode(k.as_ref(), v.as_ref())?;
        if q.matches(&b.group) {
            out.push(b);
        }
    }
    Ok((out, None))
}

impl fmt::Display for RequestsAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, to) = (self.from.to_rfc3339(), self.to.to_rfc3339());
        if self.groups.is_empty() {
            writeln!(f, "No requests from {from} to {to}.")?;
        } else {
            writeln!(
                f,
                "{} requests from {from} to {to}, {} of them off the approved routes:",
                self.requests, self.breaches
            )?;
            writeln!(
                f,
                "{:<12} {:<16} {:<24} {:<14} {:<14} {:>10} {:>10}",
                "ENV", "PROVIDER", "MODEL", "REGION", "DATA CLASS", "REQUESTS", "BREACHES"
            )?;
            for c in &self.groups {
                let g = &c.group;
                let env = if g.env.is_empty() { "-" } else { &g.env };
                writeln!(
                    f,
                    "{:<12} {:<16} {:<24} {:<14} {:<14} {:>10} {:>10}",
                    esc(env),
                    esc(&g.provider),
                    esc(&g.model),
                    esc(&g.region),
                    esc(&g.data_class),
                    c.requests,
                    c.breaches
                )?;
            }
        }
        let Some(list) = &self.violations else { return Ok(()) };
        if list.is_empty() {
            return writeln!(f, "No requests broke the approved routes.");
        }
        writeln!(f, "Requests that broke the approved routes:")?;
        for b in list {
            let g = &b.group;
            writeln!(
                f,
                "  entry {} at {}: {} request {} in {} to {}/{}/{} with {} data",
                b.seq,
                b.time.to_rfc3339(),
                esc(&b.app),
                esc(&b.request_id),
                esc(&g.env),
                esc(&g.provider),
                esc(&g.model),
                esc(&g.region),
                esc(&g.data_class)
            )?;
        }
        if let Some(next) = &self.next {
            writeln!(f, "More: --cursor {next}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_range_exactly_with_the_widest_buckets() {
        let day = 86_400;
        // From 23:58 on day -1 to 01:03 on day 2: two minutes, a day's worth of hours and
        // days, then an hour and three minutes.
        let from = -120;
        let to = 2 * day + 3_600 + 180;
        let s = spans(from, to);
        assert_eq!(
            s,
            vec![(b'm', -120, 0), (b'd', 0, 2 * day), (b'h', 2 * day, 2 * day + 3_600), (b'm', 2 * day + 3_600, to)]
        );
        // Every minute of the range is in exactly one span, whatever the ends.
        for (from, to) in [(0, 60), (60, 7_260), (-7_200, 180), (3_540, day + 60), (0, 0)] {
            let s = spans(from, to);
            let covered: i64 = s.iter().map(|(_, a, b)| b - a).sum();
            assert_eq!(covered, to - from);
            assert!(s.windows(2).all(|w| w[0].2 == w[1].1), "contiguous: {s:?}");
        }
    }
}
