//! [`State`]: the view model the rules read, as of the last projected entry. Its tables are
//! held in memory (loaded from the store when the views open) and written back by the
//! projection when they change. The rules get `&State` only: they cannot change it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use evidence_schemas::{ArtifactKind, ArtifactRef, Digest};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::alert::Alert;
use super::codec::decode;
use super::error::ViewError;
use super::keys;
use super::model::{
    ArtifactView, BatchView, GateView, JobView, LiveHistory, PolicyInForce, PolicyVersion, RouteHistory, Served,
    TrafficSummary, Window,
};
use crate::store::keyspace::{
    VIEW_ARTIFACTS, VIEW_BATCHES, VIEW_GATES, VIEW_JOBS, VIEW_LIVE, VIEW_ROUTES, VIEW_RUNGS, VIEW_SERVED, VIEW_TRAFFIC,
    VIEW_WINDOWS,
};
use crate::store::{Storage, WriteBatch};

/// Rows of one state table, all in memory, written back when changed.
#[derive(Debug)]
pub(crate) struct Table<V> {
    rows: HashMap<Vec<u8>, V>,
    dirty: HashSet<Vec<u8>>,
    removed: HashSet<Vec<u8>>,
}

impl<V: Serialize + DeserializeOwned> Table<V> {
    fn load<S: Storage>(store: &S, table: u8) -> Result<Self, ViewError> {
        let mut rows = HashMap::default();
        let (from, to) = keys::table(table);
        for item in store.range(&from, &to) {
            let (k, v) = item?;
            rows.insert(k.as_ref().to_vec(), decode(k.as_ref(), v.as_ref())?);
        }
        Ok(Table { rows, dirty: HashSet::default(), removed: HashSet::default() })
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.rows.get(key)
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.rows.contains_key(key)
    }

    /// Every row.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &V)> {
        self.rows.iter()
    }

    pub(crate) fn get_mut(&mut self, key: Vec<u8>, default: impl FnOnce() -> V) -> &mut V {
        if !self.dirty.contains(&key) {
            self.dirty.insert(key.clone());
        }
        self.rows.entry(key).or_insert_with(default)
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: V) {
        self.removed.remove(&key);
        self.dirty.insert(key.clone());
        self.rows.insert(key, value);
    }

    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.rows.remove(&key);
        self.dirty.remove(&key);
        self.removed.insert(key);
    }

    fn write(&mut self, batch: &mut WriteBatch) {
        let mut removed: Vec<Vec<u8>> = self.removed.drain().collect();
        removed.sort_unstable();
        for k in removed {
            batch.delete(k);
        }
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
    /// Every published policy, by the entry that published it (the default has none).
    pub(crate) policies: BTreeMap<u64, PolicyInForce>,
    pub(crate) default_policy: PolicyInForce,
    pub(crate) artifacts: Table<ArtifactView>,
    pub(crate) gates: Table<GateView>,
    pub(crate) served: Table<Served>,
    pub(crate) live: Table<LiveHistory>,
    pub(crate) routes: Table<RouteHistory>,
    pub(crate) batches: Table<BatchView>,
    pub(crate) jobs: Table<JobView>,
    pub(crate) windows: Table<Window>,
    pub(crate) traffic: Table<TrafficSummary>,
    /// Rung snapshots: a traffic key's folds over its requests before the rung.
    pub(crate) snapshots: Table<Vec<(String, Alert)>>,
    /// Artifact view keys by each view's digest: derived, rebuilt on load.
    pub(crate) by_digest: HashMap<Digest, BTreeSet<Vec<u8>>>,
    /// Artifact view keys by each digest they were released with: derived, rebuilt on load.
    pub(crate) released: HashMap<Digest, BTreeSet<Vec<u8>>>,
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
        let mut released: HashMap<Digest, BTreeSet<Vec<u8>>> = HashMap::default();
        for (k, v) in &artifacts.rows {
            by_digest.entry(v.artifact.digest.clone()).or_default().insert(k.clone());
            by_name.entry((v.artifact.kind, v.artifact.name.clone())).or_default().insert(k.clone());
            for m in v.promotions.iter().chain(&v.deployments).chain(&v.rollbacks) {
                released.entry(m.digest.clone()).or_default().insert(k.clone());
            }
        }
        let mut policies = BTreeMap::new();
        let (from, to) = keys::policies();
        for item in store.range(&from, &to) {
            let (k, v) = item?;
            let p: PolicyVersion = decode(k.as_ref(), v.as_ref())?;
            policies.insert(p.cite.seq, PolicyInForce { version: p.version, seq: Some(p.cite.seq), policy: p.policy });
        }
        Ok(State {
            policy,
            policy_changed: false,
            policies,
            default_policy: PolicyInForce::default(),
            artifacts,
            gates: Table::load(store, VIEW_GATES)?,
            served: Table::load(store, VIEW_SERVED)?,
            live: Table::load(store, VIEW_LIVE)?,
            routes: Table::load(store, VIEW_ROUTES)?,
            batches: Table::load(store, VIEW_BATCHES)?,
            jobs: Table::load(store, VIEW_JOBS)?,
            windows: Table::load(store, VIEW_WINDOWS)?,
            traffic: Table::load(store, VIEW_TRAFFIC)?,
            snapshots: Table::load(store, VIEW_RUNGS)?,
            by_digest,
            released,
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
        self.traffic.write(batch);
        self.snapshots.write(batch);
    }

    /// The policy in force.
    pub fn policy(&self) -> &PolicyInForce {
        &self.policy
    }

    /// The policy in force at entry `seq`: the last one published by an entry before it.
    pub fn policy_at(&self, seq: u64) -> &PolicyInForce {
        self.policies.range(..seq).next_back().map_or(&self.default_policy, |(_, p)| p)
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

    /// Every deploy and rollback of `app` in `env`.
    pub fn live(&self, app: &str, env: &str) -> Option<&LiveHistory> {
        self.live.get(&keys::live(app, env))
    }

    /// The registry's decisions on a route.
    pub fn route(&self, provider: &str, model: &str, region: &str) -> Option<&RouteHistory> {
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
}
