//! The view model: the records the views hold, each citing the entries it rests on. Plain
//! data with their serialized forms (stored under `v`, and part of the audit answers); no
//! storage and no rules here. The records of traffic (requests served, drift windows, traffic
//! summaries) and of provider routes are in `traffic.rs`.

mod live;
mod traffic;

use evidence_schemas::{
    ApprovalDecision, ArtifactRef, Digest, Env, Event, Exception, GateOutcome, TrainingStatus, VetDecision,
};
use serde::{Deserialize, Serialize};

pub use self::live::{LiveArtifact, LiveHistory, LiveMove};
pub use self::traffic::{route_name, Rates, RouteHistory, RouteView, Rung, Served, TrafficSummary, Window};
use super::policy::{default_policy, DEFAULT_VERSION};

/// How an artifact went live in an app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Everything the ledger knows about one `(kind, name, version)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// One run of a gate, as the rules weigh it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunAt {
    /// The run's entry.
    pub seq: u64,
    /// Its event time (µs since the epoch).
    pub at: i64,
    /// pass, fail or warn.
    pub result: GateOutcome,
}

/// Every run of one gate on one digest, in event-time order (a failing run sorts after a
/// passing one at the same time, so a tie never depends on arrival order). Every run is also
/// a history key, with its whole record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateView {
    /// The gate.
    pub gate: String,
    /// Its runs.
    pub runs: Vec<RunAt>,
}

/// A gate as it stood at a time: its latest run then, and its first passing run by then.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GateAt<'a> {
    /// The latest run at or before the time.
    pub latest: Option<&'a RunAt>,
    /// The first passing run at or before the time.
    pub first_pass: Option<&'a RunAt>,
}

impl GateAt<'_> {
    /// The gate counts: a run passed and the latest did not fail.
    pub fn passed(&self) -> bool {
        self.first_pass.is_some() && self.latest.is_some_and(|r| r.result != GateOutcome::Fail)
    }

    /// Its latest run failed.
    pub fn failed(&self) -> bool {
        self.latest.is_some_and(|r| r.result == GateOutcome::Fail)
    }
}

impl GateView {
    /// Records run `seq` at `at`.
    pub fn record(&mut self, seq: u64, at: i64, result: GateOutcome) {
        let run = RunAt { seq, at, result };
        let key = |r: &RunAt| (r.at, outcome_rank(r.result), r.seq);
        let i = self.runs.partition_point(|r| key(r) <= key(&run));
        self.runs.insert(i, run);
    }

    /// The gate as it stood at event time `t`.
    pub fn at(&self, t: i64) -> GateAt<'_> {
        let until = self.runs.partition_point(|r| r.at <= t);
        let runs = &self.runs[..until];
        GateAt { latest: runs.last(), first_pass: runs.iter().find(|r| r.result == GateOutcome::Pass) }
    }
}

/// How a result ranks against another at the same event time: the worse one counts.
fn outcome_rank(result: GateOutcome) -> u8 {
    match result {
        GateOutcome::Pass => 0,
        GateOutcome::Warn => 1,
        GateOutcome::Fail => 2,
    }
}

/// A vetting decision on a feedback batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// An entry and its event time (µs since the epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct At {
    /// The entry.
    pub seq: u64,
    /// Its event time.
    pub at: i64,
}

/// A feedback batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchView {
    /// Submissions into it.
    pub submitted: u64,
    /// The first submission's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    /// The latest submission's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// The submission with the earliest event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest: Option<At>,
    /// The submission with the latest event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<At>,
    /// Vetting decisions, in event-time order (a rejection sorts after an acceptance at the
    /// same time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vets: Vec<Vet>,
    /// Training jobs that started with it: (job, start entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<(String, u64)>,
}

/// A training job's start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobView {
    /// Its start, if seen: the latest by event time, if it started more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<JobStart>,
    /// Its other starts under the same id, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_starts: Vec<JobStart>,
    /// Its end, if seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<JobFinish>,
}

/// The policy in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicyVersion {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// Its version name.
    pub version: String,
    /// The policy it put in force, every control set.
    pub policy: evidence_schemas::EffectivePolicy,
}

impl Default for PolicyInForce {
    /// The default policy ([`default_policy`]), in force before any `registry.policy` entry.
    fn default() -> Self {
        PolicyInForce { version: DEFAULT_VERSION.into(), seq: None, policy: default_policy() }
    }
}
