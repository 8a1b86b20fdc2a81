//! The alert outbox: every change in an alert's life, numbered in the order it happened, for
//! the SIEM sinks and the live stream to deliver. An alert is opened (`Create`), updated while
//! open (`Update`: its fold counted more occurrences, or judging it again refreshed it) and
//! resolved by late evidence (`Close`). [`super::Views::save`] appends the round's changes in
//! the same atomic batch as the views and their watermark, so the outbox never runs ahead of
//! the views nor lags them. Each alert's changes are numbered in the order of its life (within
//! one save, the updates of alerts opened before come first, then the openings and closings in
//! the order they happened). An `Update` is announced when judging the alert again refreshed
//! it, or when its fold's count reaches a power of two (2, 4, 8, ...), at most once per save:
//! a storm of a million requests is some twenty updates, not a million. Each change is
//! delivered with the alert as it stands then, so a receiver's fold count is the one of the
//! last change it got, which trails the ledger's until the next power of two; statuses never
//! trail.
//!
//! | key | value |
//! | --- | --- |
//! | `a` number (u64 BE) | activity (1 create, 2 update, 3 close), where the alert is stored: seq (u64 BE), n (u16 BE), then its id (UTF-8) |
//! | `d` sink name | the sink's cursor: the next change it has to deliver (u64 BE) |
//!
//! The outbox is not a view: rebuilding the views keeps it and appends the rebuilt alerts'
//! changes after it (the same ids again, which at-least-once delivery allows). A change names
//! where its alert is stored and its id; a sink reads the alert as it stands when it delivers.
//! A change whose alert is no longer there under that id (views rebuilt by a ledger whose rules
//! judge otherwise) is skipped with a warning: the rebuild's own changes follow. The
//! cursors are written by the sinks themselves, one key each, only after their receiver
//! acknowledged.

use super::alert::Alert;
use super::codec::decode;
use super::error::ViewError;
use super::keys;
use crate::store::keyspace::{prefix_end, prefixed, ALERT_CHANGES, SINK_CURSORS};
use crate::store::{Storage, StorageError, WriteBatch};

/// What happened to an alert: OCSF's activity ids for a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    /// Opened.
    Create = 1,
    /// Updated while open.
    Update = 2,
    /// Resolved.
    Close = 3,
}

impl Activity {
    fn of(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Activity::Create),
            2 => Some(Activity::Update),
            3 => Some(Activity::Close),
            _ => None,
        }
    }

    /// `create`, `update` or `close`.
    pub fn name(self) -> &'static str {
        match self {
            Activity::Create => "create",
            Activity::Update => "update",
            Activity::Close => "close",
        }
    }
}

/// One change in the outbox, with its alert as it stands now.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Change {
    /// Its number: changes are numbered from 0 in the order they happened.
    pub number: u64,
    /// What happened.
    pub activity: Activity,
    /// The alert, as stored now. For a `create` or an `update` of an alert resolved since,
    /// shown as it was while open (no resolution): its `close` follows.
    pub alert: Alert,
}

/// The outbox key of change `number`.
fn key(number: u64) -> Vec<u8> {
    prefixed(ALERT_CHANGES, &number.to_be_bytes())
}

/// The number the next change gets: one past the last stored.
pub fn head<S: Storage>(store: &S) -> Result<u64, StorageError> {
    let last = store.last_in(&[ALERT_CHANGES], &prefix_end(ALERT_CHANGES))?;
    Ok(last.map_or(0, |(k, _)| number_of(k.as_ref()).map_or(0, |n| n + 1)))
}

fn number_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// Appends `changes` (activity, where the alert is stored, its id) to `batch`, numbered from
/// `*head` on, and moves `*head` past them.
pub(crate) fn append(batch: &mut WriteBatch, head: &mut u64, changes: &[(Activity, (u64, u16), String)]) {
    for (activity, (seq, n), id) in changes {
        let mut value = Vec::with_capacity(11 + id.len());
        value.push(*activity as u8);
        value.extend_from_slice(&seq.to_be_bytes());
        value.extend_from_slice(&n.to_be_bytes());
        value.extend_from_slice(id.as_bytes());
        batch.put(key(*head), value);
        *head += 1;
    }
}

/// The changes numbered `from` to `to` (exclusive), at most `limit` of them, each with its
/// alert as it stands now. A change whose alert is gone is left out (see the module docs).
pub fn read<S: Storage>(store: &S, from: u64, to: u64, limit: usize) -> Result<Vec<Change>, ViewError> {
    let mut out = Vec::new();
    for item in store.range(&key(from), &key(to.max(from))).take(limit) {
        let (k, v) = item?;
        let corrupt = |message: &str| ViewError::Corrupt { key: format!("{:?}", k.as_ref()), message: message.into() };
        let number = number_of(k.as_ref()).ok_or_else(|| corrupt("not a change number"))?;
        let v = v.as_ref();
        let activity = v.first().copied().and_then(Activity::of).ok_or_else(|| corrupt("no activity"))?;
        if v.len() < 11 {
            return Err(corrupt("shorter than 11 bytes"));
        }
        let at = (u64::from_be_bytes(v[1..9].try_into().expect("8 bytes")), u16::from_be_bytes([v[9], v[10]]));
        let id = std::str::from_utf8(&v[11..]).map_err(|_| corrupt("an id that is not UTF-8"))?;
        let alert_key = keys::alert(at.0, at.1);
        let alert = match store.get(&alert_key)? {
            Some(stored) => Some(decode::<Alert>(&alert_key, stored.as_ref())?).filter(|a| a.id == id),
            None => None,
        };
        let Some(mut alert) = alert else {
            tracing::warn!(
                message = "An alert change names an alert the views no longer hold; skipping it.",
                number,
                id
            );
            continue;
        };
        if activity != Activity::Close {
            alert.reopened();
        }
        out.push(Change { number, activity, alert });
    }
    Ok(out)
}

/// Where changes are known to be on disk: everything below it. Readers that hand changes
/// out (the sinks, the live stream) read only below it, flushing the store to move it, so
/// that a change handed out is never numbered again after a crash (the views, and the outbox
/// with them, are saved without a flush of their own).
#[derive(Debug, Default)]
pub struct Durable(u64);

impl Durable {
    /// Changes from `from` on that are on disk, at most `limit`: flushes the store first
    /// when `from` is past what is known to be there, then reads below the head it saw.
    pub fn read<S: Storage>(&mut self, store: &S, from: u64, limit: usize) -> Result<Vec<Change>, ViewError> {
        if self.0 <= from {
            let head = head(store)?;
            if head <= from {
                return Ok(Vec::new());
            }
            store.commit(WriteBatch::default())?;
            self.0 = head;
        }
        read(store, from, self.0, limit)
    }
}

/// The key of the cursor of the sink named `name`.
fn cursor_key(name: &str) -> Vec<u8> {
    prefixed(SINK_CURSORS, name.as_bytes())
}

/// The cursor of the sink named `name`: the next change it has to deliver (0 for a sink
/// never run).
pub fn cursor<S: Storage>(store: &S, name: &str) -> Result<u64, StorageError> {
    Ok(store.get(&cursor_key(name))?.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)).unwrap_or(0))
}

/// Every sink's cursor, by name.
pub fn cursors<S: Storage>(store: &S) -> Result<Vec<(String, u64)>, StorageError> {
    let mut out = Vec::new();
    for item in store.range(&[SINK_CURSORS], &prefix_end(SINK_CURSORS)) {
        let (k, v) = item?;
        let name = String::from_utf8_lossy(&k.as_ref()[1..]).into_owned();
        out.push((name, v.as_ref().try_into().ok().map_or(0, u64::from_be_bytes)));
    }
    Ok(out)
}

/// Moves the cursor of the sink named `name` to `next` (its receiver acknowledged every
/// change before it). One key, written on its own: it holds no reader back.
pub fn advance<S: Storage>(store: &S, name: &str, next: u64) -> Result<(), StorageError> {
    let mut batch = WriteBatch::default();
    batch.put(cursor_key(name), next.to_be_bytes().to_vec());
    store.apply_each(batch)
}
