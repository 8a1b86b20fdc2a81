//! The view model: the records the views hold, each citing the entries it rests on. Plain
//! data with their serialized forms (stored under `v`, and part of the audit answers); no
//! storage and no rules here.

use std::collections::BTreeMap;

use evidence_schemas::{
    ApprovalDecision, ArtifactRef, Digest, Env, Event, Exception, GateOutcome, ProviderDecision, ProxyRequest,
    TrainingStatus, VetDecision,
};
use serde::{Deserialize, Serialize};

use super::policy::{default_policy, DEFAULT_VERSION};

/// How an artifact went live in an app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A `pipeline.deploy`.
    Deploy,
    /// A `registry.rollback`.
    Rollback,
}

impl Via {
    /// `deploy` or `rollback`.
    pub fn name(self) -> &'static str {
        match self {
            Via::Deploy => "deploy",
            Via::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict on one feedback batch: may training use it?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchVerdict {
    /// The batch.
    pub batch: String,
    /// Whether it may be used.
    pub allowed: bool,
    /// Why, in a sentence.
    pub reason: String,
    /// The entries behind the verdict.
    pub entries: Vec<u64>,
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
    /// Entry `seq`, event `ev`.
    pub fn of(seq: u64, ev: &Event) -> Self {
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
    /// A view of `artifact` with nothing recorded yet.
    pub fn new(artifact: &ArtifactRef) -> Self {
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
    /// How it went live.
    pub via: Via,
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
    /// The policy with every control set (the published document filled in from the
    /// default, see [`evidence_schemas::Policy::filled`]).
    pub policy: evidence_schemas::EffectivePolicy,
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

impl Default for PolicyInForce {
    /// The default policy ([`default_policy`]), in force before any `registry.policy` entry.
    fn default() -> Self {
        PolicyInForce { version: DEFAULT_VERSION.into(), seq: None, policy: default_policy() }
    }
}

impl Rates {
    /// Counts request `seq` into the window.
    pub fn count(&mut self, seq: u64, d: &ProxyRequest) {
        if self.requests == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.requests += 1;
        self.refused += u64::from(d.refused == Some(true));
        self.flagged += u64::from(d.safety_flags.as_ref().is_some_and(|f| !f.is_empty()));
        self.tool_calls += u64::from(d.tool_calls.as_ref().is_some_and(|t| !t.is_empty()));
    }
}
