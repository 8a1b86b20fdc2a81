//! Audit question 5 (alerts since a time, of one rule) and the policy history.

use chrono::{DateTime, FixedOffset};

use crate::governance::model::PolicyVersion;
use crate::governance::{decode, keys, read_range, Alert, Rule, Status, ViewError};
use crate::store::Storage;

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
    let (from, to) = keys::alerts();
    let mut out = Vec::new();
    for item in store.range(&from, &to) {
        let (k, v) = item?;
        let alert: Alert = decode(k.as_ref(), v.as_ref())?;
        if rule.is_some_and(|r| r != alert.rule)
            || status.is_some_and(|s| s != alert.status)
            || since.is_some_and(|since| alert.time < since)
        {
            continue;
        }
        out.push(alert);
    }
    Ok(out)
}

/// Every published policy version, in ledger order.
pub fn policy_versions<S: Storage>(store: &S) -> Result<Vec<PolicyVersion>, ViewError> {
    let (from, to) = keys::policies();
    read_range(store, &from, &to)
}
