//! [`State`]: the view model the rules read, as of the last projected entry. Its tables are
//! held in memory (loaded from the store when the views open) and written back by the
//! projection when they change. The rules get `&State` only: they cannot change it.

use std::collections::{BTreeSet, HashMap, HashSet};

use evidence_schemas::{ArtifactKind, ArtifactRef, Digest};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::decode;
use super::error::ViewError;
use super::keys;
use super::model::{ArtifactView, BatchView, GateView, JobView, LiveSet, PolicyInForce, RouteView, Served, Window};
use crate::store::keyspace::{
    VIEW_ARTIFACTS, VIEW_BATCHES, VIEW_GATES, VIEW_JOBS, VIEW_LIVE, VIEW_REPORTED, VIEW_ROUTES, VIEW_SERVED,
    VIEW_WINDOWS,
};
use crate::store::{Storage, WriteBatch};

/// Rows of one state table, all in memory, written back when changed.
#[derive(Debug)]
pub(crate) struct Table<V> {
    rows: HashMap<Vec<u8>, V>,
    dirty: HashSet<Vec<u8>>,
}

impl<V: Serialize + DeserializeOwned> Table<V> {
    fn load<S: Storage>(store: &S, table: u8) -> Result<Self, ViewError> {
        let mut rows = HashMap::default();
        let (from, to) = keys::table(table);
        for item in store.range(&from, &to) {
            let (k, v) = item?;
            rows.insert(k.as_ref().to_vec(), decode(k.as_ref(), v.as_ref())?);
        }
        Ok(Table { rows, dirty: HashSet::default() })
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.rows.get(key)
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.rows.contains_key(key)
    }

    pub(crate) fn get_mut(&mut self, key: Vec<u8>, default: impl FnOnce() -> V) -> &mut V {
        if !self.dirty.contains(&key) {
            self.dirty.insert(key.clone());
        }
        self.rows.entry(key).or_insert_with(default)
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: V) {
        if !self.dirty.contains(&key) {
            self.dirty.insert(key.clone());
        }
        self.rows.insert(key, value);
    }

    fn write(&mut self, batch: &mut WriteBatch) {
        let mut dirty: Vec<Vec<u8>> = self.dirty.drain().collect();
        dirty.sort_unstable();
        for k in dirty {
            let v = serde_json::to_vec(&self.rows[&k]).expect("view values serialize");
            batch.put(k, v);
        }
    }
}

/// The state the rules read, as of the last projected entry.
#[derive(Debug)]
pub struct State {
    pub(crate) policy: PolicyInForce,
    pub(crate) policy_changed: bool,
    pub(crate) artifacts: Table<ArtifactView>,
    pub(crate) gates: Table<GateView>,
    pub(crate) served: Table<Served>,
    pub(crate) live: Table<LiveSet>,
    pub(crate) routes: Table<RouteView>,
    pub(crate) batches: Table<BatchView>,
    pub(crate) jobs: Table<JobView>,
    pub(crate) windows: Table<Window>,
    pub(crate) reported: Table<u64>,
    /// Artifact view keys by each view's digest: derived, rebuilt on load.
    pub(crate) by_digest: HashMap<Digest, BTreeSet<Vec<u8>>>,
    /// Artifact view keys by kind and name: derived, rebuilt on load.
    pub(crate) by_name: HashMap<(ArtifactKind, String), BTreeSet<Vec<u8>>>,
}

impl State {
    /// Loads every state table from the store.
    pub(crate) fn load<S: Storage>(store: &S) -> Result<Self, ViewError> {
        let policy = match store.get(keys::POLICY)? {
            Some(v) => decode(keys::POLICY, v.as_ref())?,
            None => PolicyInForce::default(),
        };
        let artifacts: Table<ArtifactView> = Table::load(store, VIEW_ARTIFACTS)?;
        let mut by_digest: HashMap<Digest, BTreeSet<Vec<u8>>> = HashMap::default();
        let mut by_name: HashMap<(ArtifactKind, String), BTreeSet<Vec<u8>>> = HashMap::default();
        for (k, v) in &artifacts.rows {
            by_digest.entry(v.artifact.digest.clone()).or_default().insert(k.clone());
            by_name.entry((v.artifact.kind, v.artifact.name.clone())).or_default().insert(k.clone());
        }
        Ok(State {
            policy,
            policy_changed: false,
            artifacts,
            gates: Table::load(store, VIEW_GATES)?,
            served: Table::load(store, VIEW_SERVED)?,
            live: Table::load(store, VIEW_LIVE)?,
            routes: Table::load(store, VIEW_ROUTES)?,
            batches: Table::load(store, VIEW_BATCHES)?,
            jobs: Table::load(store, VIEW_JOBS)?,
            windows: Table::load(store, VIEW_WINDOWS)?,
            reported: Table::load(store, VIEW_REPORTED)?,
            by_digest,
            by_name,
        })
    }

    /// Puts every changed row into `batch`.
    pub(crate) fn write(&mut self, batch: &mut WriteBatch) {
        if std::mem::take(&mut self.policy_changed) {
            batch.put(keys::POLICY, serde_json::to_vec(&self.policy).expect("policy serializes"));
        }
        self.artifacts.write(batch);
        self.gates.write(batch);
        self.served.write(batch);
        self.live.write(batch);
        self.routes.write(batch);
        self.batches.write(batch);
        self.jobs.write(batch);
        self.windows.write(batch);
        self.reported.write(batch);
    }

    /// The policy in force.
    pub fn policy(&self) -> &PolicyInForce {
        &self.policy
    }

    /// The view of `(kind, name, version)`.
    pub fn artifact(&self, a: &ArtifactRef) -> Option<&ArtifactView> {
        self.artifacts.get(&keys::artifact(a.kind, &a.name, &a.version))
    }

    /// The artifacts whose registered (or first seen) digest is `digest`.
    pub fn artifacts_with_digest(&self, digest: &Digest) -> impl Iterator<Item = &ArtifactView> {
        self.by_digest.get(digest).into_iter().flatten().filter_map(|k| self.artifacts.get(k))
    }

    /// The artifacts of one kind and name, any version.
    pub fn versions(&self, kind: ArtifactKind, name: &str) -> impl Iterator<Item = &ArtifactView> {
        self.by_name.get(&(kind, name.to_string())).into_iter().flatten().filter_map(|k| self.artifacts.get(k))
    }

    /// What the rules need of `gate` on `digest`.
    pub fn gate(&self, digest: &Digest, gate: &str) -> Option<&GateView> {
        self.gates.get(&keys::gate(digest, gate))
    }

    /// What serves `app` in `env`.
    pub fn live(&self, app: &str, env: &str) -> Option<&LiveSet> {
        self.live.get(&keys::live(app, env))
    }

    /// The registry's latest decision on a route.
    pub fn route(&self, provider: &str, model: &str, region: &str) -> Option<&RouteView> {
        self.routes.get(&keys::route(provider, model, region))
    }

    /// A feedback batch.
    pub fn batch(&self, batch: &str) -> Option<&BatchView> {
        self.batches.get(&keys::batch(batch))
    }

    /// The drift window of one (app, env, model).
    pub fn window(&self, app: &str, env: &str, model: &str) -> Option<&Window> {
        self.windows.get(&keys::window(app, env, model))
    }

    /// Whether a traffic alert was already raised for this violation.
    pub fn reported(&self, violation: &[u8]) -> bool {
        self.reported.contains(&keys::reported(violation))
    }
}
