//! Views: event-sourced projections of the log, kept beside it under the key prefix `v`, and
//! the alerts the rules raise while projecting. Everything here is derived from the log: it
//! can be dropped and rebuilt from entry 0, and a rebuild writes exactly the bytes that
//! incremental projection wrote (values are JSON with ordered maps; nothing reads the clock).
//!
//! Key space (under `v`; a `name` is a u16 BE length and the bytes, so keys never collide):
//!
//! | key | value (JSON unless noted) | kind |
//! | --- | --- | --- |
//! | `vm` | watermark: the next sequence number to project (u64 BE) | meta |
//! | `vp` | the policy in force ([`PolicyInForce`]) | state |
//! | `va` kind name version | [`ArtifactView`]: registration, signatures, approvals, moves, traffic | state |
//! | `vg` digest gate | [`GateView`]: the latest and the first passing run of one gate on one digest | state |
//! | `vs` kind name version | [`Served`]: requests served with the artifact | state |
//! | `vl` app env | [`LiveSet`]: what serves `app` in `env` now | state |
//! | `vr` provider model region | [`RouteView`]: the latest registry decision on a route | state |
//! | `vb` batch | [`BatchView`]: a feedback batch, its submissions and vetting | state |
//! | `vj` job | [`JobView`]: a training job and the verdict on its batches when it started | state |
//! | `vw` app env model | [`Window`]: behaviour counters, baseline and current window | state |
//! | `vx` name | seq: a traffic alert already raised for this violation (one alert, not one per request) | state |
//! | `vG` digest gate time seq (u64 BE each) | [`GateRun`]: every run of a gate, by event time | history |
//! | `vP` seq (u64 BE) | [`PolicyVersion`]: history of policy versions | history |
//! | `vd` app env time seq (u64 BE each) | [`LiveSet`] after each deploy or rollback: the timeline | history |
//! | `vA` seq (u64 BE) n (u16 BE) | [`Alert`] raised by entry `seq` | history |
//!
//! *State* keys are held in memory by [`Views`] (the rules read them at every entry) and
//! written back when they change, so they are kept small: what grows with traffic (gate runs,
//! served requests) is a history key or a counter of its own. *History* keys are only
//! written, and read by queries.
//!
//! Durability: [`Views::save`] writes the changed keys and the watermark in one atomic,
//! unflushed batch after the log's own flushed commit, so views never run ahead of the log.
//! After a crash they are at most behind it, and [`crate::Ledger::open`] projects the missing
//! entries from the watermark on.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use evidence_schemas::{
    ApprovalDecision, ArtifactKind, ArtifactRef, Digest, Env, Event, EventData, Exception, GateOutcome,
    ProviderDecision, ProxyRequest, TrainingStatus, VetDecision,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::policy::{default_policy, DEFAULT_VERSION};
use crate::rules::{self, Alert, BatchVerdict};
use crate::storage::{prefix_end, Storage, StorageError, WriteBatch};

/// The prefix of every view key.
pub const VIEWS: u8 = b'v';
const WATERMARK: &[u8] = b"vm";
const POLICY: &[u8] = b"vp";
const ARTIFACTS: u8 = b'a';
const GATES: u8 = b'g';
const GATE_RUNS: u8 = b'G';
const SERVED: u8 = b's';
const LIVE: u8 = b'l';
const ROUTES: u8 = b'r';
const BATCHES: u8 = b'b';
const JOBS: u8 = b'j';
const WINDOWS: u8 = b'w';
const REPORTED: u8 = b'x';
const POLICIES: u8 = b'P';
const TIMELINE: u8 = b'd';
const ALERTS: u8 = b'A';

/// What can go wrong with the views.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] crate::LogError),
    /// A stored view value does not decode: the views must be rebuilt.
    #[error("view key {key} does not decode ({message}); run `evidence rebuild`")]
    Corrupt {
        /// The key, escaped.
        key: String,
        /// What the decoder said.
        message: String,
    },
    /// A log entry could not be read back as an event.
    #[error("entry {seq} cannot be projected: {message}")]
    Entry {
        /// The entry.
        seq: u64,
        /// Why.
        message: String,
    },
}

/// A view key: `v`, the table, then each part as a u16 BE length and its bytes.
pub(crate) fn key(table: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![VIEWS, table];
    for p in parts {
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        k.extend_from_slice(&len.to_be_bytes());
        k.extend_from_slice(&p[..usize::from(len)]);
    }
    k
}

/// The key of an artifact's view.
pub fn artifact_key(kind: ArtifactKind, name: &str, version: &str) -> Vec<u8> {
    key(ARTIFACTS, &[kind.as_str().as_bytes(), name.as_bytes(), version.as_bytes()])
}

fn gate_key(digest: &Digest, gate: &str) -> Vec<u8> {
    key(GATES, &[digest.0.as_bytes(), gate.as_bytes()])
}

/// The range of every gate run on one digest.
pub(crate) fn gate_runs_of(digest: &Digest) -> (Vec<u8>, Vec<u8>) {
    let from = key(GATE_RUNS, &[digest.0.as_bytes()]);
    let mut to = from.clone();
    to.push(0xff);
    (from, to)
}

/// The key of a gate run: by digest and gate, then event time and seq, so that the run in
/// force at time T is the last key at or before T.
pub(crate) fn gate_run_key(digest: &Digest, gate: &str, micros: i64, seq: u64) -> Vec<u8> {
    let mut k = key(GATE_RUNS, &[digest.0.as_bytes(), gate.as_bytes()]);
    k.extend_from_slice(&order_micros(micros).to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The range of the gate views of one digest (one key per gate that ran on it).
pub(crate) fn gates_of(digest: &Digest) -> (Vec<u8>, Vec<u8>) {
    let from = key(GATES, &[digest.0.as_bytes()]);
    let mut to = from.clone();
    to.push(0xff);
    (from, to)
}

/// The key of an artifact's served-requests counter.
pub fn served_key(kind: ArtifactKind, name: &str, version: &str) -> Vec<u8> {
    key(SERVED, &[kind.as_str().as_bytes(), name.as_bytes(), version.as_bytes()])
}

fn live_key(app: &str, env: &str) -> Vec<u8> {
    key(LIVE, &[app.as_bytes(), env.as_bytes()])
}

fn route_key(provider: &str, model: &str, region: &str) -> Vec<u8> {
    key(ROUTES, &[provider.as_bytes(), model.as_bytes(), region.as_bytes()])
}

pub(crate) fn batch_key(batch: &str) -> Vec<u8> {
    key(BATCHES, &[batch.as_bytes()])
}

pub(crate) fn job_key(job: &str) -> Vec<u8> {
    key(JOBS, &[job.as_bytes()])
}

/// The timeline key of a live set: the (app, env) prefix, then event time and seq, so that
/// the set live at time T is the last key at or before T.
pub(crate) fn timeline_key(app: &str, env: &str, micros: i64, seq: u64) -> Vec<u8> {
    let mut k = key(TIMELINE, &[app.as_bytes(), env.as_bytes()]);
    k.extend_from_slice(&order_micros(micros).to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Event time (µs since the epoch, signed) as a u64 that sorts the same way.
fn order_micros(micros: i64) -> u64 {
    (micros as u64) ^ (1 << 63)
}

pub(crate) fn alert_key(seq: u64, n: u16) -> Vec<u8> {
    let mut k = vec![VIEWS, ALERTS];
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The range of the policy history keys.
pub(crate) fn policies_range() -> (Vec<u8>, Vec<u8>) {
    (vec![VIEWS, POLICIES], vec![VIEWS, POLICIES + 1])
}

/// The range of all alert keys.
pub(crate) fn alerts_range() -> (Vec<u8>, Vec<u8>) {
    (vec![VIEWS, ALERTS], vec![VIEWS, ALERTS + 1])
}

/// Where and when an entry happened: every view record cites its entries this way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cite {
    /// The entry's sequence number.
    pub seq: u64,
    /// Its event time, as the producer wrote it.
    pub time: String,
    /// Its event time in µs since the epoch, for comparisons.
    pub at: i64,
    /// Who did it, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Cite {
    fn of(seq: u64, ev: &Event) -> Self {
        Cite { seq, time: ev.time.to_rfc3339(), at: ev.time.timestamp_micros(), actor: ev.actor.clone() }
    }
}

/// An artifact's registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// The registered digest.
    pub digest: Digest,
    /// The owner.
    pub owner: String,
    /// The storage format, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// A checked signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// The digest signed.
    pub digest: Digest,
    /// The signing key.
    pub key_id: String,
    /// Whether it verified.
    pub verified: bool,
}

/// An approval decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The entry (its actor is the approver).
    #[serde(flatten)]
    pub cite: Cite,
    /// The digest approved.
    pub digest: Digest,
    /// The environment.
    pub env: Env,
    /// approved, rejected or revoked.
    pub decision: ApprovalDecision,
    /// The approver's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// An accepted deviation from one control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<Exception>,
}

/// A promotion, deployment or rollback of the artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Move {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// The digest moved.
    pub digest: Digest,
    /// The environment entered.
    pub env: Env,
    /// The app, for deployments and rollbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// Requests served with the artifact (as model digest or prompt).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Served {
    /// How many.
    pub requests: u64,
    /// The first one's entry.
    pub first_seq: u64,
    /// The latest one's entry.
    pub last_seq: u64,
}

/// Everything the ledger knows about one `(kind, name, version)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactView {
    /// The artifact, with its registered digest (or the first digest seen).
    pub artifact: ArtifactRef,
    /// The first registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<Registration>,
    /// Later registrations (a different digest is a substitution).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reregistered: Vec<Registration>,
    /// Signature checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
    /// Approval decisions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// Promotions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<Move>,
    /// Deployments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<Move>,
    /// Rollbacks to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollbacks: Vec<Move>,
}

impl ArtifactView {
    fn new(artifact: &ArtifactRef) -> Self {
        ArtifactView {
            artifact: artifact.clone(),
            registered: None,
            reregistered: Vec::new(),
            signatures: Vec::new(),
            approvals: Vec::new(),
            promotions: Vec::new(),
            deployments: Vec::new(),
            rollbacks: Vec::new(),
        }
    }
}

/// One run of a gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRun {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// The gate.
    pub gate: String,
    /// pass, fail or warn.
    pub result: GateOutcome,
    /// The artifact as the gate named it.
    pub artifact: ArtifactRef,
    /// The environment the run was for, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_env: Option<Env>,
}

/// What the rules need of one gate on one digest (every run is a history key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateView {
    /// The gate.
    pub gate: String,
    /// The latest run's result.
    pub latest: GateOutcome,
    /// The latest run's entry.
    pub latest_seq: u64,
    /// The first passing run's entry, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_pass_seq: Option<u64>,
    /// How many runs.
    pub runs: u64,
}

/// An artifact serving an app, and the entry that put it there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveArtifact {
    /// The artifact.
    pub artifact: ArtifactRef,
    /// The deploy or rollback entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// `deploy` or `rollback`.
    pub via: String,
}

/// What serves one app in one env: one artifact per (kind, name), replaced by later deploys
/// and rollbacks of the same (kind, name); a deploy leaves the slots it does not name alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveSet {
    /// The app.
    pub app: String,
    /// The env.
    pub env: Env,
    /// `kind/name` → what serves it.
    pub slots: BTreeMap<String, LiveArtifact>,
}

/// The registry's latest decision on a provider route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteView {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// approved or revoked.
    pub decision: ProviderDecision,
    /// Data classes it may carry.
    pub data_classes: Vec<String>,
    /// Envs it may serve.
    pub envs: Vec<Env>,
}

/// A vetting decision on a feedback batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vet {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// accepted or rejected.
    pub decision: VetDecision,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A feedback batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchView {
    /// Submissions into it.
    pub submitted: u64,
    /// The first submission's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    /// The latest submission's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Vetting decisions, in ledger order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vets: Vec<Vet>,
    /// Training jobs that started with it: (job, start entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<(String, u64)>,
}

/// A training job's start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStart {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// The base artifact.
    pub base: ArtifactRef,
    /// Datasets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<ArtifactRef>,
    /// The output artifact, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ArtifactRef>,
    /// The gate decision it cites, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit: Option<String>,
    /// Each feedback batch, judged as the ledger stood when the job started.
    pub batches: Vec<BatchVerdict>,
}

/// A training job's end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobFinish {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// succeeded or failed.
    pub status: TrainingStatus,
    /// The output artifact, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ArtifactRef>,
}

/// A training job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// Its start, if seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<JobStart>,
    /// Its end, if seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<JobFinish>,
}

/// Behaviour counters over consecutive requests of one (app, env, model).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// The first request's entry.
    pub first_seq: u64,
    /// The latest request's entry.
    pub last_seq: u64,
    /// Requests.
    pub requests: u64,
    /// Refused requests.
    pub refused: u64,
    /// Requests with safety flags.
    pub flagged: u64,
    /// Requests with tool calls.
    pub tool_calls: u64,
}

impl Rates {
    /// (refusal, safety-flag, tool-call) rates.
    pub fn rates(&self) -> [f64; 3] {
        let n = self.requests.max(1) as f64;
        [self.refused as f64 / n, self.flagged as f64 / n, self.tool_calls as f64 / n]
    }
}

/// The drift window of one (app, env, model): the baseline (the first full window, and again
/// the window after each drift alert) and the window filling now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The window compared against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Rates>,
    /// The window filling now.
    pub current: Rates,
}

/// The policy in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyInForce {
    /// Its version name.
    pub version: String,
    /// The entry that published it (none for the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The policy.
    pub policy: evidence_schemas::Policy,
}

/// One published policy version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// Its version name.
    pub version: String,
}

/// Rows of one state table, all in memory, written back when changed.
#[derive(Debug)]
pub(crate) struct Table<V> {
    rows: HashMap<Vec<u8>, V>,
    dirty: HashSet<Vec<u8>>,
}

impl<V: Serialize + DeserializeOwned> Table<V> {
    fn load<S: Storage>(store: &S, table: u8) -> Result<Self, ViewError> {
        let mut rows = HashMap::default();
        for item in store.range(&[VIEWS, table], &[VIEWS, table + 1]) {
            let (k, v) = item?;
            rows.insert(k.as_ref().to_vec(), decode(k.as_ref(), v.as_ref())?);
        }
        Ok(Table { rows, dirty: HashSet::default() })
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.rows.get(key)
    }

    fn get_mut(&mut self, key: Vec<u8>, default: impl FnOnce() -> V) -> &mut V {
        if !self.dirty.contains(&key) {
            self.dirty.insert(key.clone());
        }
        self.rows.entry(key).or_insert_with(default)
    }

    fn put(&mut self, key: Vec<u8>, value: V) {
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

/// Decodes a stored view value; a value that does not decode is reported with its key.
pub(crate) fn decode<V: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<V, ViewError> {
    serde_json::from_slice(value)
        .map_err(|e| ViewError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), message: e.to_string() })
}

/// The state the rules read, as of the last projected entry.
#[derive(Debug)]
pub struct State {
    policy: PolicyInForce,
    pub(crate) artifacts: Table<ArtifactView>,
    gates: Table<GateView>,
    served: Table<Served>,
    live: Table<LiveSet>,
    routes: Table<RouteView>,
    batches: Table<BatchView>,
    jobs: Table<JobView>,
    windows: Table<Window>,
    reported: Table<u64>,
    /// Artifact view keys by each view's digest: derived, rebuilt on load.
    by_digest: HashMap<Digest, BTreeSet<Vec<u8>>>,
    /// Artifact view keys by kind and name: derived, rebuilt on load.
    by_name: HashMap<(ArtifactKind, String), BTreeSet<Vec<u8>>>,
    policy_changed: bool,
}

impl State {
    fn load<S: Storage>(store: &S) -> Result<Self, ViewError> {
        let policy = match store.get(POLICY)? {
            Some(v) => decode(POLICY, v.as_ref())?,
            None => PolicyInForce { version: DEFAULT_VERSION.into(), seq: None, policy: default_policy() },
        };
        let artifacts: Table<ArtifactView> = Table::load(store, ARTIFACTS)?;
        let mut by_digest: HashMap<Digest, BTreeSet<Vec<u8>>> = HashMap::default();
        let mut by_name: HashMap<(ArtifactKind, String), BTreeSet<Vec<u8>>> = HashMap::default();
        for (k, v) in &artifacts.rows {
            by_digest.entry(v.artifact.digest.clone()).or_default().insert(k.clone());
            by_name.entry((v.artifact.kind, v.artifact.name.clone())).or_default().insert(k.clone());
        }
        Ok(State {
            policy,
            artifacts,
            gates: Table::load(store, GATES)?,
            served: Table::load(store, SERVED)?,
            live: Table::load(store, LIVE)?,
            routes: Table::load(store, ROUTES)?,
            batches: Table::load(store, BATCHES)?,
            jobs: Table::load(store, JOBS)?,
            windows: Table::load(store, WINDOWS)?,
            reported: Table::load(store, REPORTED)?,
            by_digest,
            by_name,
            policy_changed: false,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &PolicyInForce {
        &self.policy
    }

    /// The view of `(kind, name, version)`.
    pub fn artifact(&self, a: &ArtifactRef) -> Option<&ArtifactView> {
        self.artifacts.get(&artifact_key(a.kind, &a.name, &a.version))
    }

    /// The artifacts whose registered (or first seen) digest is `digest`.
    pub fn artifacts_with_digest(&self, digest: &Digest) -> impl Iterator<Item = &ArtifactView> {
        self.by_digest.get(digest).into_iter().flatten().filter_map(|k| self.artifacts.get(k))
    }

    /// The artifacts of one kind and name, any version.
    pub fn versions(&self, kind: ArtifactKind, name: &str) -> impl Iterator<Item = &ArtifactView> {
        self.by_name.get(&(kind, name.to_string())).into_iter().flatten().filter_map(|k| self.artifacts.get(k))
    }

    /// Every run of `gate` on `digest`.
    pub fn gate(&self, digest: &Digest, gate: &str) -> Option<&GateView> {
        self.gates.get(&gate_key(digest, gate))
    }

    /// What serves `app` in `env`.
    pub fn live(&self, app: &str, env: &str) -> Option<&LiveSet> {
        self.live.get(&live_key(app, env))
    }

    /// The registry's latest decision on a route.
    pub fn route(&self, provider: &str, model: &str, region: &str) -> Option<&RouteView> {
        self.routes.get(&route_key(provider, model, region))
    }

    /// A feedback batch.
    pub fn batch(&self, batch: &str) -> Option<&BatchView> {
        self.batches.get(&batch_key(batch))
    }

    /// Whether a traffic alert was already raised for this violation.
    pub fn reported(&self, violation: &[u8]) -> bool {
        self.reported.get(&key(REPORTED, &[violation])).is_some()
    }

    fn artifact_mut(&mut self, a: &ArtifactRef) -> &mut ArtifactView {
        let k = artifact_key(a.kind, &a.name, &a.version);
        if !self.artifacts.rows.contains_key(&k) {
            self.by_digest.entry(a.digest.clone()).or_default().insert(k.clone());
            self.by_name.entry((a.kind, a.name.clone())).or_default().insert(k.clone());
        }
        self.artifacts.get_mut(k, || ArtifactView::new(a))
    }

    fn write(&mut self, batch: &mut WriteBatch) {
        if std::mem::take(&mut self.policy_changed) {
            batch.put(POLICY, serde_json::to_vec(&self.policy).expect("policy serializes"));
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
}

/// The projector: the in-memory state, the watermark, and the writes not yet saved.
#[derive(Debug)]
pub struct Views {
    state: State,
    watermark: u64,
    pending: WriteBatch,
}

impl Views {
    /// Loads the views' state and watermark from the store.
    pub fn load<S: Storage>(store: &S) -> Result<Self, ViewError> {
        let watermark = match store.get(WATERMARK)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| ViewError::Corrupt { key: "vm".into(), message: "not 8 bytes".into() })?,
            ),
            None => 0,
        };
        Ok(Views { state: State::load(store)?, watermark, pending: WriteBatch::default() })
    }

    /// Deletes every view key (state, history, alerts and the watermark).
    pub fn clear<S: Storage>(store: &S) -> Result<(), ViewError> {
        loop {
            let mut batch = WriteBatch::default();
            for item in store.range(&[VIEWS], &prefix_end(VIEWS)).take(10_000) {
                batch.delete(item?.0.as_ref().to_vec());
            }
            if batch.is_empty() {
                return Ok(());
            }
            store.commit(batch)?;
        }
    }

    /// The next sequence number to project.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// The state the rules read.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Projects entry `seq` (which must be the watermark): runs the rules against the state
    /// as of the entry before it, then applies the entry. Returns the alerts it raised.
    pub fn project(&mut self, seq: u64, ev: &Event) -> Vec<Alert> {
        debug_assert_eq!(seq, self.watermark, "entries are projected in order");
        let mut alerts = rules::check(&self.state, seq, ev);
        self.apply(seq, ev, &mut alerts);
        for (n, alert) in alerts.iter().enumerate() {
            let n = u16::try_from(n).unwrap_or(u16::MAX);
            self.pending.put(alert_key(seq, n), serde_json::to_vec(alert).expect("alerts serialize"));
            if let Some(violation) = &alert.violation {
                self.state.reported.put(key(REPORTED, &[violation.as_bytes()]), seq);
            }
        }
        self.watermark = seq + 1;
        alerts
    }

    /// Writes what changed since the last save, with the watermark, in one atomic batch.
    pub fn save<S: Storage>(&mut self, store: &S) -> Result<(), ViewError> {
        let mut batch = std::mem::take(&mut self.pending);
        self.state.write(&mut batch);
        batch.put(WATERMARK, self.watermark.to_be_bytes().to_vec());
        store.apply(batch)?;
        Ok(())
    }

    fn apply(&mut self, seq: u64, ev: &Event, alerts: &mut Vec<Alert>) {
        // Requests and feedback, most of the traffic, are counted rather than cited.
        match &ev.data {
            EventData::ProxyRequest(d) => return self.count_request(seq, ev, d, alerts),
            EventData::FeedbackSubmit(d) => {
                let b = self.state.batches.get_mut(batch_key(&d.batch), BatchView::default);
                b.submitted += 1;
                b.first_seq.get_or_insert(seq);
                b.last_seq = Some(seq);
                return;
            }
            _ => {}
        }
        let cite = Cite::of(seq, ev);
        let st = &mut self.state;
        match &ev.data {
            EventData::RegistryRegister(d) => {
                let reg = Registration {
                    cite,
                    digest: d.artifact.digest.clone(),
                    owner: d.owner.clone(),
                    format: d.format.clone(),
                };
                let view = st.artifact_mut(&d.artifact);
                if view.registered.is_none() {
                    // The registered digest is the artifact's identity from now on, even if
                    // an earlier event named it with another one.
                    let old = std::mem::replace(&mut view.artifact.digest, d.artifact.digest.clone());
                    view.registered = Some(reg);
                    if old != d.artifact.digest {
                        let k = artifact_key(d.artifact.kind, &d.artifact.name, &d.artifact.version);
                        st.by_digest.entry(old).or_default().remove(&k);
                        st.by_digest.entry(d.artifact.digest.clone()).or_default().insert(k);
                    }
                } else {
                    view.reregistered.push(reg);
                }
            }
            EventData::RegistrySign(d) => st.artifact_mut(&d.artifact).signatures.push(Signature {
                cite,
                digest: d.artifact.digest.clone(),
                key_id: d.key_id.clone(),
                verified: d.verified,
            }),
            EventData::RegistryApprove(d) => st.artifact_mut(&d.artifact).approvals.push(Approval {
                cite,
                digest: d.artifact.digest.clone(),
                env: d.target_env.clone(),
                decision: d.decision,
                role: d.role.clone(),
                exception: d.exception.clone(),
            }),
            EventData::RegistryPromote(d) => st.artifact_mut(&d.artifact).promotions.push(Move {
                cite,
                digest: d.artifact.digest.clone(),
                env: d.target_env.clone(),
                app: None,
            }),
            EventData::RegistryRollback(d) => {
                st.artifact_mut(&d.artifact).rollbacks.push(Move {
                    cite: cite.clone(),
                    digest: d.artifact.digest.clone(),
                    env: d.target_env.clone(),
                    app: Some(d.app.clone()),
                });
                self.go_live(&d.app, &d.target_env, std::slice::from_ref(&d.artifact), &cite, "rollback");
            }
            EventData::PipelineDeploy(d) => {
                for a in &d.artifacts {
                    st.artifact_mut(a).deployments.push(Move {
                        cite: cite.clone(),
                        digest: a.digest.clone(),
                        env: d.target_env.clone(),
                        app: Some(d.app.clone()),
                    });
                }
                self.go_live(&d.app, &d.target_env, &d.artifacts, &cite, "deploy");
            }
            EventData::RegistryProvider(d) => {
                let route = RouteView {
                    cite,
                    decision: d.decision,
                    data_classes: d.data_classes.clone(),
                    envs: d.envs.clone(),
                };
                st.routes.put(route_key(&d.provider, &d.model, &d.region), route);
            }
            EventData::RegistryPolicy(d) => {
                st.policy = PolicyInForce { version: d.version.clone(), seq: Some(seq), policy: d.policy.clone() };
                st.policy_changed = true;
                let mut k = vec![VIEWS, POLICIES];
                k.extend_from_slice(&seq.to_be_bytes());
                let version = PolicyVersion { cite, version: d.version.clone() };
                self.pending.put(k, serde_json::to_vec(&version).expect("serializes"));
            }
            EventData::PipelineGate(d) => {
                let run = GateRun {
                    cite,
                    gate: d.gate.clone(),
                    result: d.result,
                    artifact: d.artifact.clone(),
                    target_env: d.target_env.clone(),
                };
                let k = gate_run_key(&d.artifact.digest, &d.gate, run.cite.at, seq);
                self.pending.put(k, serde_json::to_vec(&run).expect("serializes"));
                let view = st.gates.get_mut(gate_key(&d.artifact.digest, &d.gate), || GateView {
                    gate: d.gate.clone(),
                    latest: d.result,
                    latest_seq: seq,
                    first_pass_seq: None,
                    runs: 0,
                });
                view.runs += 1;
                (view.latest, view.latest_seq) = (d.result, seq);
                if view.first_pass_seq.is_none() && d.result == GateOutcome::Pass {
                    view.first_pass_seq = Some(seq);
                }
            }
            EventData::ProxyRequest(_) | EventData::FeedbackSubmit(_) => {}
            EventData::FeedbackVet(d) => {
                st.batches.get_mut(batch_key(&d.batch), BatchView::default).vets.push(Vet {
                    cite,
                    decision: d.decision,
                    reason: d.reason.clone(),
                });
            }
            EventData::TrainingStart(d) => {
                let batches: Vec<BatchVerdict> = d
                    .feedback_batches
                    .iter()
                    .flatten()
                    .map(|b| rules::batch_verdict(&st.policy, st.batch(b), b))
                    .collect();
                for b in d.feedback_batches.iter().flatten() {
                    st.batches.get_mut(batch_key(b), BatchView::default).used_by.push((d.job_id.clone(), seq));
                }
                st.jobs.get_mut(job_key(&d.job_id), JobView::default).start = Some(JobStart {
                    cite,
                    base: d.base.clone(),
                    datasets: d.datasets.clone().unwrap_or_default(),
                    output: d.output.clone(),
                    permit: d.permit.clone(),
                    batches,
                });
            }
            EventData::TrainingFinish(d) => {
                st.jobs.get_mut(job_key(&d.job_id), JobView::default).finish =
                    Some(JobFinish { cite, status: d.status, output: d.output.clone() });
            }
        }
    }

    /// A gateway request: served counters and the drift window of its (app, env, model).
    fn count_request(&mut self, seq: u64, ev: &Event, d: &ProxyRequest, alerts: &mut Vec<Alert>) {
        let st = &mut self.state;
        let mut served: Vec<Vec<u8>> = d.prompt.iter().map(|a| served_key(a.kind, &a.name, &a.version)).collect();
        if let Some(digest) = &d.model_digest {
            served.extend(
                st.artifacts_with_digest(digest)
                    .map(|v| &v.artifact)
                    .filter(|a| a.kind == ArtifactKind::Model)
                    .map(|a| served_key(a.kind, &a.name, &a.version)),
            );
        }
        for k in served {
            let s = st.served.get_mut(k, || Served { requests: 0, first_seq: seq, last_seq: seq });
            s.requests += 1;
            s.last_seq = seq;
        }
        if let (Some(env), Some(drift)) = (&ev.env, st.policy.policy.drift.clone()) {
            let k = key(WINDOWS, &[d.app.as_bytes(), env.0.as_bytes(), d.model.as_bytes()]);
            let w = st.windows.get_mut(k, Window::default);
            let c = &mut w.current;
            if c.requests == 0 {
                c.first_seq = seq;
            }
            c.last_seq = seq;
            c.requests += 1;
            c.refused += u64::from(d.refused == Some(true));
            c.flagged += u64::from(d.safety_flags.as_ref().is_some_and(|f| !f.is_empty()));
            c.tool_calls += u64::from(d.tool_calls.as_ref().is_some_and(|t| !t.is_empty()));
            if c.requests >= u64::from(drift.window) {
                let current = std::mem::take(c);
                match w.baseline.take() {
                    None => w.baseline = Some(current),
                    Some(baseline) => {
                        let policy = &st.policy;
                        match rules::drift(policy, &drift, seq, ev, d, env, &baseline, &current) {
                            Some(alert) => {
                                alerts.push(alert);
                                w.baseline = Some(current);
                            }
                            None => w.baseline = Some(baseline),
                        }
                    }
                }
            }
        }
    }

    /// Puts `artifacts` live for `app` in `env` and records the new live set on the timeline.
    fn go_live(&mut self, app: &str, env: &Env, artifacts: &[ArtifactRef], cite: &Cite, via: &str) {
        let set = self.state.live.get_mut(live_key(app, &env.0), || LiveSet {
            app: app.to_string(),
            env: env.clone(),
            slots: BTreeMap::new(),
        });
        for a in artifacts {
            let slot = format!("{}/{}", a.kind.as_str(), a.name);
            set.slots.insert(slot, LiveArtifact { artifact: a.clone(), cite: cite.clone(), via: via.to_string() });
        }
        let value = serde_json::to_vec(&*set).expect("serializes");
        self.pending.put(timeline_key(app, &env.0, cite.at, cite.seq), value);
    }
}
