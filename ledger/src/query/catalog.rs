//! Finding things to ask about: the artifacts the ledger knows (by kind, name prefix or
//! digest, a page at a time) and every app and env with what is live in it now. What `GET
//! /v1/artifacts`, `GET /v1/apps`, `evidence query artifacts` and `evidence query apps`
//! answer. Both scan their view table: catalogs are thousands of keys, not millions.

use std::fmt;

use evidence_schemas::{ArtifactKind, ArtifactRef};
use serde::{Deserialize, Serialize};

use super::alerts::{resume, PageError};
use crate::governance::model::{ArtifactView, Cite, LiveHistory};
use crate::governance::{decode, keys, ViewError};
use crate::store::keyspace::{VIEW_ARTIFACTS, VIEW_LIVE};
use crate::store::Storage;
use crate::text::esc;

/// One artifact version the ledger knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactSummary {
    /// The artifact, with its registered digest (or the first digest seen).
    pub artifact: ArtifactRef,
    /// Its registration, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<Cite>,
    /// Approval decisions recorded for it.
    pub approvals: usize,
    /// Promotions, deployments and rollbacks recorded for it.
    pub moves: usize,
}

/// A page of artifacts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactList {
    /// The artifacts, by kind, name and version.
    pub artifacts: Vec<ArtifactSummary>,
    /// The cursor of the next page, when there are more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Which artifacts: each field given narrows the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactSearch {
    /// Of this kind.
    pub kind: Option<ArtifactKind>,
    /// Whose name starts with this.
    pub name: Option<String>,
    /// With this digest (registered, re-registered or seen).
    pub digest: Option<String>,
}

impl ArtifactSearch {
    fn matches(&self, view: &ArtifactView) -> bool {
        let a = &view.artifact;
        self.kind.is_none_or(|k| k == a.kind)
            && self.name.as_ref().is_none_or(|n| a.name.starts_with(n.as_str()))
            && self.digest.as_ref().is_none_or(|d| {
                a.digest.0 == *d
                    || view.registered.iter().chain(&view.reregistered).any(|r| r.digest.0 == *d)
                    || view.deployments.iter().chain(&view.promotions).any(|m| m.digest.0 == *d)
            })
    }
}

/// The artifacts answering `search`, at most `limit` from `cursor` on.
pub fn artifacts<S: Storage>(
    store: &S,
    search: &ArtifactSearch,
    cursor: Option<&str>,
    limit: usize,
) -> Result<ArtifactList, PageError> {
    let (mut from, to) = keys::table(VIEW_ARTIFACTS);
    if let Some(c) = cursor {
        from = resume(&from, c, None)?;
    }
    let mut artifacts = Vec::new();
    for item in store.range(&from, &to) {
        let (k, v) = item.map_err(ViewError::from)?;
        if artifacts.len() == limit {
            return Ok(ArtifactList { artifacts, next: Some(hex::encode(&k.as_ref()[2..])) });
        }
        let view: ArtifactView = decode(k.as_ref(), v.as_ref())?;
        if search.matches(&view) {
            artifacts.push(ArtifactSummary {
                registered: view.registered.as_ref().map(|r| r.cite.clone()),
                approvals: view.approvals.len(),
                moves: view.deployments.len() + view.promotions.len() + view.rollbacks.len(),
                artifact: view.artifact,
            });
        }
    }
    Ok(ArtifactList { artifacts, next: None })
}

/// An app in an env, with what is live there now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppSummary {
    /// The app.
    pub app: String,
    /// The env.
    pub env: String,
    /// What is live now, one artifact per kind and name, with the move that made it live.
    pub live: Vec<LiveNow>,
}

/// One artifact live now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveNow {
    /// The artifact.
    pub artifact: ArtifactRef,
    /// The deploy or rollback that made it live.
    pub since: Cite,
}

/// Every app and env the ledger saw a deploy to, with what is live in each now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppList {
    /// The apps, by name and env.
    pub apps: Vec<AppSummary>,
}

/// Every app and env, with what is live at `now` (microseconds since the epoch).
pub fn apps<S: Storage>(store: &S, now: i64) -> Result<AppList, ViewError> {
    let (from, to) = keys::table(VIEW_LIVE);
    let mut apps = Vec::new();
    for item in store.range(&from, &to) {
        let (k, v) = item?;
        let history: LiveHistory = decode(k.as_ref(), v.as_ref())?;
        let live =
            history.slots_at(now).into_values().map(|l| LiveNow { artifact: l.artifact, since: l.cite }).collect();
        apps.push(AppSummary { app: history.app, env: history.env.0, live });
    }
    Ok(AppList { apps })
}

impl fmt::Display for ArtifactList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.artifacts.is_empty() {
            return writeln!(f, "No artifacts.");
        }
        for a in &self.artifacts {
            let registered =
                a.registered.as_ref().map_or("not registered".to_string(), |c| format!("registered (entry {})", c.seq));
            writeln!(f, "{}  {}  {registered}", esc(&a.artifact.to_string()), a.artifact.digest)?;
        }
        Ok(())
    }
}

impl fmt::Display for AppList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.apps.is_empty() {
            return writeln!(f, "No apps.");
        }
        for app in &self.apps {
            writeln!(f, "{} in {}:", esc(&app.app), esc(&app.env))?;
            for l in &app.live {
                writeln!(f, "  {}  (entry {})", esc(&l.artifact.to_string()), l.since.seq)?;
            }
        }
        Ok(())
    }
}
