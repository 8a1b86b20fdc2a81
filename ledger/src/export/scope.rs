//! What a bundle is about, and gathering it: the answers to the audit questions for the
//! scope, its alerts, and (for a time range) the entries dated in it.

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset};
use serde_json::{json, Value};

use super::ExportError;
use crate::governance::Alert;
use crate::log::LogAt;
use crate::query::{self, ArtifactName};
use crate::store::Storage;

/// A bundle's scope.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// Entries whose event time is in `[from, to)`, and the alerts about them.
    Range {
        /// From (inclusive).
        from: DateTime<FixedOffset>,
        /// To (exclusive).
        to: DateTime<FixedOffset>,
    },
    /// One artifact's history (question 2) and its alerts.
    Artifact(ArtifactName),
    /// What was live in an app's env at a time (question 1), and the alerts about the app
    /// in that env.
    App {
        /// The app.
        app: String,
        /// The env.
        env: String,
        /// When.
        at: DateTime<FixedOffset>,
    },
    /// One alert and its evidence.
    Alert(String),
}

/// A scope as the command line and `GET /v1/export` give it: exactly one of `from` and
/// `to` together, `artifact`, `app` and `env` (with `at`, default now), or `alert`. Times
/// as people write them (RFC 3339, `now`, `24h`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScopeParams {
    /// Entries dated at or after this time (with `to`).
    pub from: Option<String>,
    /// Entries dated before this time (with `from`).
    pub to: Option<String>,
    /// One artifact, `KIND/NAME@VERSION`.
    pub artifact: Option<String>,
    /// One app (with `env`).
    pub app: Option<String>,
    /// The app's env (with `app`).
    pub env: Option<String>,
    /// With `app` and `env`: when (default now).
    pub at: Option<String>,
    /// One alert, by id.
    pub alert: Option<String>,
}

/// A scope that is not exactly one of the four kinds, or a value that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadScope(pub String);

impl ScopeParams {
    /// The scope these name, with times relative to `now`.
    pub fn scope(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Scope, BadScope> {
        let time = |t: &str| crate::when::parse_time(t, now).map_err(|e| BadScope(e.to_string()));
        let kinds = [
            self.from.is_some() || self.to.is_some(),
            self.artifact.is_some(),
            self.app.is_some() || self.env.is_some() || self.at.is_some(),
            self.alert.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(BadScope(
                "name exactly one scope: from and to, artifact, app and env (with at), or alert".into(),
            ));
        }
        Ok(match self {
            ScopeParams { from: Some(from), to: Some(to), .. } => {
                let (from, to) = (time(from)?, time(to)?);
                if from >= to {
                    return Err(BadScope(format!("from ({from}) is not before to ({to})")));
                }
                Scope::Range { from, to }
            }
            ScopeParams { from: Some(_), .. } | ScopeParams { to: Some(_), .. } => {
                return Err(BadScope("a time range needs both from and to".into()))
            }
            ScopeParams { artifact: Some(a), .. } => {
                Scope::Artifact(a.parse().map_err(|e: crate::query::BadArtifactName| BadScope(e.to_string()))?)
            }
            ScopeParams { app: Some(app), env: Some(env), at, .. } => Scope::App {
                app: app.clone(),
                env: env.clone(),
                at: at.as_deref().map_or(Ok(now.fixed_offset()), time)?,
            },
            ScopeParams { alert: Some(id), .. } => Scope::Alert(id.clone()),
            _ => return Err(BadScope("an app scope needs both app and env".into())),
        })
    }
}

/// A scope's answers.
pub(super) struct Gathered {
    /// Entries in scope beside those the answers cite.
    pub(super) in_scope: BTreeSet<u64>,
    /// Each answer with its question.
    pub(super) answers: Vec<(String, Value)>,
    /// The alerts.
    pub(super) alerts: Vec<Value>,
    /// Entry records read (and checked) already while gathering, so as not to read them twice.
    pub(super) records: Records,
}

/// Entry records by sequence number.
pub(super) type Records = std::collections::BTreeMap<u64, Vec<u8>>;

/// At most this many records are kept from gathering (about 100 MB); the rest are read again.
const KEEP_RECORDS: usize = 150_000;

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("answers serialize")
}

impl Scope {
    /// The scope as `answers.json` and the report name it.
    pub fn describe(&self) -> Value {
        match self {
            Scope::Range { from, to } => json!({ "kind": "range", "from": from.to_rfc3339(), "to": to.to_rfc3339() }),
            Scope::Artifact(a) => json!({ "kind": "artifact", "artifact": a.to_string() }),
            Scope::App { app, env, at } => json!({ "kind": "app", "app": app, "env": env, "at": at.to_rfc3339() }),
            Scope::Alert(id) => json!({ "kind": "alert", "alert": id }),
        }
    }

    pub(super) fn gather<S: Storage>(&self, store: &S, log: &LogAt<'_, S>, size: u64) -> Result<Gathered, ExportError> {
        let mut in_scope = BTreeSet::new();
        let mut records = std::collections::BTreeMap::new();
        let mut answers = Vec::new();
        let all = || query::alerts(store, None, None, None);
        let alerts: Vec<Alert> = match self {
            Scope::Range { from, to } => {
                (in_scope, records) = dated_in(log, size, from, to)?;
                let alerts: Vec<Alert> = all()?.into_iter().filter(|a| a.time >= *from && a.time < *to).collect();
                answers.push(("5: the alerts about entries dated in the range".to_string(), to_value(&alerts)));
                alerts
            }
            Scope::Artifact(name) => {
                let history = query::artifact(store, name)?
                    .ok_or_else(|| ExportError::NotFound(format!("no artifact {name} in the ledger")))?;
                answers.push((format!("2: the history of {name}"), to_value(&history)));
                history.alerts
            }
            Scope::App { app, env, at } => {
                let live =
                    query::state(store, app, env, *at)?.unwrap_or_else(|| query::LiveAnswer::empty(app, env, *at));
                answers.push((format!("1: what was live in {app} in {env} at {}", at.to_rfc3339()), to_value(&live)));
                all()?
                    .into_iter()
                    .filter(|a| a.app.as_deref() == Some(app) && a.env.as_deref().is_none_or(|e| e == env))
                    .collect()
            }
            Scope::Alert(id) => {
                let alert = all()?
                    .into_iter()
                    .find(|a| &a.id == id)
                    .ok_or_else(|| ExportError::NotFound(format!("no alert {id} in the ledger")))?;
                answers.push((format!("5: alert {id}"), to_value(&[&alert])));
                vec![alert]
            }
        };
        Ok(Gathered { in_scope, answers, alerts: alerts.iter().map(to_value).collect(), records })
    }
}

/// The entries below `size` whose event time is in `[from, to)`, and the records of the first
/// [`KEEP_RECORDS`] of them.
fn dated_in<S: Storage>(
    log: &LogAt<'_, S>,
    size: u64,
    from: &DateTime<FixedOffset>,
    to: &DateTime<FixedOffset>,
) -> Result<(BTreeSet<u64>, Records), ExportError> {
    #[derive(serde::Deserialize)]
    struct Dated<'a> {
        #[serde(borrow)]
        time: std::borrow::Cow<'a, str>,
    }
    let mut seqs = BTreeSet::new();
    let mut records = std::collections::BTreeMap::new();
    for item in log.entries(0) {
        let (seq, record) = item?;
        if seq >= size {
            break;
        }
        let entry = evidence_verifier::entry::EntryRef::decode(&record)
            .map_err(|e| crate::log::LogError::BadEntry { seq, problem: e.to_string() })?;
        let time = serde_json::from_slice::<Dated<'_>>(entry.event)
            .ok()
            .and_then(|d| DateTime::parse_from_rfc3339(&d.time).ok());
        if time.is_some_and(|t| t >= *from && t < *to) {
            seqs.insert(seq);
            if records.len() < KEEP_RECORDS {
                records.insert(seq, record);
            }
        }
    }
    Ok((seqs, records))
}
