//! Audit question 5 (alerts since a time, of one rule) and the policy history.

use chrono::{DateTime, FixedOffset};

use crate::governance::model::PolicyVersion;
use serde::Serialize;

use crate::governance::{decode, keys, read_range, Alert, Rule, Severity, Status, ViewError};
use crate::store::Storage;

/// Which alerts question 5 asks for: each field given narrows the answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertQuery {
    /// About entries whose event time is at or after this.
    pub since: Option<DateTime<FixedOffset>>,
    /// About entries whose event time is before this.
    pub until: Option<DateTime<FixedOffset>>,
    /// Of this rule.
    pub rule: Option<Rule>,
    /// Of this severity.
    pub severity: Option<Severity>,
    /// With this status.
    pub status: Option<Status>,
    /// About this app.
    pub app: Option<String>,
}

impl AlertQuery {
    /// Whether `alert` answers the query.
    pub fn matches(&self, alert: &Alert) -> bool {
        self.rule.is_none_or(|r| r == alert.rule)
            && self.severity.is_none_or(|s| s == alert.severity)
            && self.status.is_none_or(|s| s == alert.status)
            && self.since.is_none_or(|since| alert.time >= since)
            && self.until.is_none_or(|until| alert.time < until)
            && self.app.as_ref().is_none_or(|app| alert.app.as_ref() == Some(app))
    }
}

/// One page of alerts, and where the next starts.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AlertPage {
    /// The alerts, in the order they were opened.
    pub alerts: Vec<Alert>,
    /// The cursor of the next page, when there are more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A cursor that is not one this ledger handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a cursor of this list; pass the `next` of the previous page")]
pub struct BadCursor(pub String);

/// Question 5: alerts about entries whose event time is at or after `since`, of one rule and
/// one status if given, in the order they were opened.
///
/// A stored alert that does not decode (its time not RFC 3339, say) is an error naming its
/// key, never silently kept or dropped.
pub fn alerts<S: Storage>(
    store: &S,
    since: Option<DateTime<FixedOffset>>,
    rule: Option<Rule>,
    status: Option<Status>,
) -> Result<Vec<Alert>, ViewError> {
    let query = AlertQuery { since, rule, status, ..AlertQuery::default() };
    Ok(scan(store, &query, keys::alerts().0, usize::MAX)?.alerts)
}

/// Question 5, a page at a time: at most `limit` alerts answering `query`, from `cursor` on.
pub fn alert_page<S: Storage>(
    store: &S,
    query: &AlertQuery,
    cursor: Option<&str>,
    limit: usize,
) -> Result<AlertPage, PageError> {
    let mut from = keys::alerts().0;
    if let Some(cursor) = cursor {
        from = resume(&from, cursor, Some(10))?;
    }
    Ok(scan(store, query, from, limit)?)
}

fn scan<S: Storage>(store: &S, query: &AlertQuery, from: Vec<u8>, limit: usize) -> Result<AlertPage, ViewError> {
    let to = keys::alerts().1;
    let mut alerts = Vec::new();
    for item in store.range(&from, &to) {
        let (k, v) = item?;
        if alerts.len() == limit {
            return Ok(AlertPage { alerts, next: Some(hex::encode(&k.as_ref()[2..])) });
        }
        let alert: Alert = decode(k.as_ref(), v.as_ref())?;
        if query.matches(&alert) {
            alerts.push(alert);
        }
    }
    Ok(AlertPage { alerts, next: None })
}

/// The key a cursor (the hex of a key after its table's two bytes, as pages hand them out)
/// resumes at, within the table that `start` opens; `len`, when given, is the only length
/// such a tail has.
pub(crate) fn resume(start: &[u8], cursor: &str, len: Option<usize>) -> Result<Vec<u8>, PageError> {
    let tail = hex::decode(cursor).map_err(|_| BadCursor(cursor.to_string()))?;
    if tail.is_empty() || len.is_some_and(|len| tail.len() != len) {
        return Err(BadCursor(cursor.to_string()).into());
    }
    let mut key = start[..2].to_vec();
    key.extend_from_slice(&tail);
    Ok(key)
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The cursor is not one of this list's.
    #[error(transparent)]
    Cursor(#[from] BadCursor),
    /// The views could not be read.
    #[error(transparent)]
    View(#[from] ViewError),
}

/// Every published policy version, in ledger order.
pub fn policy_versions<S: Storage>(store: &S) -> Result<Vec<PolicyVersion>, ViewError> {
    let (from, to) = keys::policies();
    read_range(store, &from, &to)
}
