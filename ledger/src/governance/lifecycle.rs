//! The lifecycle of alerts: which are open, by the violation they stand for, and how a
//! judgement turns into opened, updated and resolved alerts.
//!
//! A *violation* is what an alert is about, spelled `scope \0 rule \0 subject`: the scope is
//! the judged thing (a release entry and artifact, a registration, a training job, or a
//! fold's traffic key), so that judging it again finds every alert it has open. An alert is
//! stored once at `vA opened_by n`, rewritten while it is open, and, while open, indexed at
//! `vo violation`. Everything here is rebuilt by replaying the log: which entry opens, counts
//! and resolves each alert depends only on the log.

use std::collections::{BTreeMap, BTreeSet};

use super::alert::{Alert, Rule};
use super::codec::decode;
use super::error::ViewError;
use super::keys;
use super::outbox::{self, Activity};
use crate::store::keyspace::VIEW_OPEN;
use crate::store::{Storage, WriteBatch};

/// An open alert and where it is stored.
#[derive(Debug)]
struct Row {
    at: (u64, u16),
    alert: Alert,
}

/// The open alerts, by violation, with the changes not yet saved.
#[derive(Debug, Default)]
pub(crate) struct Open {
    rows: BTreeMap<String, Row>,
    /// Violations whose alert changed (or was opened).
    dirty: BTreeSet<String>,
    /// Alerts closed since the last save: their final record, and their violation to unindex.
    closed: Vec<(String, (u64, u16), Alert)>,
    /// The entry opening alerts now, and how many it has opened.
    opener: (u64, u16),
    /// Alerts opened and closed since the last save, in order, for the outbox (an update is a
    /// dirty row that was not opened since).
    changes: Vec<(Activity, (u64, u16), String)>,
    /// Where the alerts opened since the last save are stored.
    fresh: BTreeSet<(u64, u16)>,
    /// Open alerts whose update goes to the outbox at the next save: a refresh, or a fold whose
    /// count reached a power of two (so that a storm of a million requests is twenty updates,
    /// not a million; each update carries the count as it stands when delivered).
    announce: BTreeSet<String>,
    /// The outbox's next change number.
    head: u64,
}

/// The violation an alert stands for, within `scope`.
pub(crate) fn violation(scope: &str, alert: &Alert) -> String {
    violation_of(scope, alert.rule, &alert.subject)
}

/// The violation of `rule` about `subject`, within `scope`.
pub(crate) fn violation_of(scope: &str, rule: Rule, subject: &str) -> String {
    format!("{scope}\0{}\0{subject}", rule.name())
}

impl Open {
    /// Loads the open alerts.
    pub(crate) fn load<S: Storage>(store: &S) -> Result<Self, ViewError> {
        let mut open = Open { head: outbox::head(store)?, ..Open::default() };
        let (from, to) = keys::table(VIEW_OPEN);
        for item in store.range(&from, &to) {
            let (k, v) = item?;
            let corrupt =
                |message: &str| ViewError::Corrupt { key: format!("{:?}", k.as_ref()), message: message.into() };
            let v = v.as_ref();
            if v.len() != 10 {
                return Err(corrupt("not 10 bytes"));
            }
            let at = (u64::from_be_bytes(v[..8].try_into().expect("8 bytes")), u16::from_be_bytes([v[8], v[9]]));
            let key = keys::alert(at.0, at.1);
            let stored = store.get(&key)?.ok_or_else(|| corrupt("its alert is missing"))?;
            let mut alert: Alert = decode(&key, stored.as_ref())?;
            let k = k.as_ref();
            let part = if k.get(2..4) == Some(&[0xff, 0xff][..]) { 8 } else { 4 };
            let violation =
                String::from_utf8(k.get(part..).unwrap_or_default().to_vec()).map_err(|_| corrupt("not UTF-8"))?;
            // The subject is not stored with the alert: it is the violation's last part.
            alert.subject = violation.splitn(3, '\0').nth(2).ok_or_else(|| corrupt("not a violation"))?.to_string();
            open.rows.insert(violation, Row { at, alert });
        }
        Ok(open)
    }

    /// Puts every change into `batch`, and appends them to the outbox: the updates announced
    /// of alerts opened before, then the openings and closings in the order they happened.
    pub(crate) fn write(&mut self, batch: &mut WriteBatch) {
        let mut changes: Vec<(Activity, (u64, u16), String)> = std::mem::take(&mut self.announce)
            .iter()
            .filter_map(|v| self.rows.get(v))
            .filter(|row| !self.fresh.contains(&row.at))
            .map(|row| (Activity::Update, row.at, row.alert.id.clone()))
            .collect();
        changes.append(&mut self.changes);
        self.fresh.clear();
        outbox::append(batch, &mut self.head, &changes);
        for (violation, at, alert) in self.closed.drain(..) {
            batch.put(keys::alert(at.0, at.1), serde_json::to_vec(&alert).expect("alerts serialize"));
            if !self.rows.contains_key(&violation) {
                batch.delete(keys::open(&violation));
            }
        }
        for violation in std::mem::take(&mut self.dirty) {
            let Some(row) = self.rows.get(&violation) else { continue };
            batch.put(keys::alert(row.at.0, row.at.1), serde_json::to_vec(&row.alert).expect("alerts serialize"));
            let mut at = row.at.0.to_be_bytes().to_vec();
            at.extend_from_slice(&row.at.1.to_be_bytes());
            batch.put(keys::open(&violation), at);
        }
    }

    /// Opens `alert` for `violation` on the arrival of entry `by`. Returns it.
    pub(crate) fn open(&mut self, violation: String, alert: Alert, by: u64) -> Alert {
        let at = self.next_at(by);
        let alert = alert.open(by);
        self.changes.push((Activity::Create, at, alert.id.clone()));
        self.fresh.insert(at);
        self.rows.insert(violation.clone(), Row { at, alert: alert.clone() });
        self.dirty.insert(violation);
        alert
    }

    /// Records an alert that is never open (an entry the views could not apply) as opened by
    /// `by`.
    pub(crate) fn record(&mut self, alert: Alert, by: u64) {
        let at = self.next_at(by);
        self.changes.push((Activity::Create, at, alert.id.clone()));
        self.closed.push((String::new(), at, alert));
    }

    /// Where the next alert opened by entry `by` is stored: `vA by n`, `n` counting from 0.
    fn next_at(&mut self, by: u64) -> (u64, u16) {
        if self.opener.0 != by {
            self.opener = (by, 0);
        }
        let at = self.opener;
        self.opener.1 = self.opener.1.saturating_add(1);
        at
    }

    /// Counts occurrence `seq` (showing `variant`) into the open fold of `violation`; false
    /// when none is open.
    pub(crate) fn count(&mut self, violation: &str, seq: u64, variant: &str) -> bool {
        let Some(row) = self.rows.get_mut(violation) else { return false };
        if let Some(fold) = row.alert.fold.as_mut() {
            fold.count(seq, variant);
            if fold.occurrences.is_power_of_two() {
                self.announce.insert(violation.to_string());
            }
        }
        if !self.dirty.contains(violation) {
            self.dirty.insert(violation.to_string());
        }
        true
    }

    /// The open alerts within `scope`, each with the subject it is about.
    pub(crate) fn alerts_within(&self, scope: &str) -> Vec<(String, Alert)> {
        self.rows_within(scope).map(|(_, r)| (r.alert.subject.clone(), r.alert.clone())).collect()
    }

    /// Resolves the open alert of `violation`: entry `by` cured it, for the reason `why`.
    /// Returns it.
    pub(crate) fn resolve(&mut self, violation: &str, by: u64, why: String) -> Option<Alert> {
        let mut row = self.rows.remove(violation)?;
        row.alert.resolve(by, why);
        self.dirty.remove(violation);
        self.changes.push((Activity::Close, row.at, row.alert.id.clone()));
        self.closed.push((violation.to_string(), row.at, row.alert.clone()));
        Some(row.alert)
    }

    /// The open violations within `scope`.
    fn within(&self, scope: &str) -> Vec<String> {
        self.rows_within(scope).map(|(k, _)| k.clone()).collect()
    }

    /// The open rows within `scope`: their violations start with `scope` and a NUL.
    fn rows_within(&self, scope: &str) -> impl Iterator<Item = (&String, &Row)> {
        self.rows.range(format!("{scope}\0")..format!("{scope}\u{1}"))
    }

    /// Sets what judging the scope again found for an open alert: for a fold, its new count,
    /// ends, sample and first occurrence.
    pub(crate) fn refresh(&mut self, violation: &str, found: &Alert) {
        let Some(row) = self.rows.get_mut(violation) else { return };
        if row.alert.fold.is_none() || row.alert.fold == found.fold {
            return;
        }
        row.alert.fold = found.fold.clone();
        (row.alert.seq, row.alert.time) = (found.seq, found.time);
        let opener = row.alert.opened_by;
        row.alert.entries = found.entries.clone();
        row.alert.entries.push(opener);
        row.alert.entries.sort_unstable();
        row.alert.entries.dedup();
        self.dirty.insert(violation.to_string());
        self.announce.insert(violation.to_string());
    }

    /// Judging `scope` again on the arrival of entry `by` found `found`: opens what is new,
    /// refreshes what stays open, resolves what no longer holds (`why`). Returns the alerts
    /// opened and resolved.
    pub(crate) fn reconcile(&mut self, scope: &str, found: Vec<Alert>, by: u64, why: &str) -> Vec<Alert> {
        let mut changed = Vec::new();
        let mut still = BTreeSet::new();
        for alert in found {
            let v = violation(scope, &alert);
            if self.rows.contains_key(&v) {
                self.refresh(&v, &alert);
            } else {
                changed.push(self.open(v.clone(), alert, by));
            }
            still.insert(v);
        }
        for v in self.within(scope) {
            if !still.contains(&v) {
                changed.extend(self.resolve(&v, by, why.to_string()));
            }
        }
        changed
    }
}
