//! The audit questions of `EVENTS.md` (1, 2, 4 and 5) and the retraining gate, answered from
//! the views in a handful of key reads. Every answer names the entries it rests on. Answers
//! serialize to JSON and display as tables for people. Reads only.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use evidence_schemas::{ApprovalDecision, ArtifactKind, ArtifactRef, Digest, Env, GateOutcome};
use serde::{Deserialize, Serialize};

use crate::rules::{batch_verdict, word, Alert, BatchVerdict};
use crate::storage::Storage;
use crate::views::{
    alerts_range, artifact_key, batch_key, decode, gate_run_key, gate_runs_of, gates_of, job_key, policies_range,
    served_key, timeline_key, Approval, ArtifactView, BatchView, Cite, GateRun, JobView, LiveSet, PolicyInForce,
    PolicyVersion, Registration, Signature, ViewError,
};

/// `KIND/NAME@VERSION`, as people and the CLI name an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactName {
    /// The kind.
    pub kind: ArtifactKind,
    /// The name.
    pub name: String,
    /// The version.
    pub version: String,
}

impl std::str::FromStr for ArtifactName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not KIND/NAME@VERSION (for example model/support-bot@1.4.0)");
        let (kind, rest) = s.split_once('/').ok_or_else(bad)?;
        let (name, version) = rest.rsplit_once('@').ok_or_else(bad)?;
        let kind: ArtifactKind = serde_json::from_value(serde_json::Value::String(kind.into()))
            .map_err(|_| format!("{}: unknown kind {kind:?}", bad()))?;
        if name.is_empty() || version.is_empty() {
            return Err(bad());
        }
        Ok(ArtifactName { kind, name: name.into(), version: version.into() })
    }
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.kind.as_str(), self.name, self.version)
    }
}

fn read<S: Storage, V: serde::de::DeserializeOwned>(store: &S, key: &[u8]) -> Result<Option<V>, ViewError> {
    store.get(key)?.map(|v| decode(key, v.as_ref())).transpose()
}

/// Every value with a key in `[from, to)`, in key order.
fn read_range<S: Storage, V: serde::de::DeserializeOwned>(
    store: &S,
    from: &[u8],
    to: &[u8],
) -> Result<Vec<V>, ViewError> {
    store
        .range(from, to)
        .map(|item| {
            let (k, v) = item?;
            decode(k.as_ref(), v.as_ref())
        })
        .collect()
}

/// Every run of every gate on `digest`, by gate, each gate's runs in event-time order.
fn gate_runs<S: Storage>(store: &S, digest: &Digest) -> Result<Vec<GateRun>, ViewError> {
    let (from, to) = gate_runs_of(digest);
    read_range(store, &from, &to)
}

/// The latest run of each gate on `digest` at event time `micros`: one key read per gate.
fn gates_at<S: Storage>(store: &S, digest: &Digest, micros: i64) -> Result<Vec<GateStatus>, ViewError> {
    let (from, to) = gates_of(digest);
    let mut out = Vec::new();
    for view in read_range::<_, crate::views::GateView>(store, &from, &to)? {
        let first = gate_run_key(digest, &view.gate, i64::MIN, 0);
        let last = gate_run_key(digest, &view.gate, micros, u64::MAX);
        if let Some((k, v)) = store.last_in(&first, &last)? {
            let run: GateRun = decode(k.as_ref(), v.as_ref())?;
            out.push(GateStatus { gate: view.gate, result: run.result, cite: run.cite });
        }
    }
    Ok(out)
}

/// Approvals standing at `at` for a digest and env: each approver's latest decision, if
/// approved.
fn standing<'v>(view: &'v ArtifactView, digest: &Digest, env: &Env, at: i64) -> Vec<&'v Approval> {
    let mut latest: BTreeMap<Option<&str>, &Approval> = BTreeMap::new();
    for x in view.approvals.iter().filter(|x| &x.env == env && &x.digest == digest && x.cite.at <= at) {
        latest.insert(x.cite.actor.as_deref(), x);
    }
    let mut out: Vec<_> = latest.into_values().filter(|x| x.decision == ApprovalDecision::Approved).collect();
    out.sort_by_key(|x| x.cite.seq);
    out
}

/// The latest run of a gate at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateStatus {
    /// The gate.
    pub gate: String,
    /// Its latest result.
    pub result: GateOutcome,
    /// The run's entry.
    #[serde(flatten)]
    pub cite: Cite,
}

/// One artifact live in an app (question 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveArtifactAnswer {
    /// The artifact as deployed.
    pub artifact: ArtifactRef,
    /// `deploy` or `rollback`.
    pub via: String,
    /// When and by whom it was deployed.
    pub deployed: Cite,
    /// Its registration.
    pub registered: Option<Registration>,
    /// Whether the deployed digest is the registered one.
    pub digest_matches_registration: Option<bool>,
    /// Approvals for this env standing at the time.
    pub approvals: Vec<Approval>,
    /// The latest run of each gate on this digest at the time.
    pub gates: Vec<GateStatus>,
    /// Its latest verified signature at the time.
    pub signature: Option<Signature>,
}

/// What was live in an app in an env at a time (question 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveAnswer {
    /// The app.
    pub app: String,
    /// The env.
    pub env: String,
    /// The time asked about.
    pub at: String,
    /// What was live.
    pub artifacts: Vec<LiveArtifactAnswer>,
    /// Every entry the answer rests on.
    pub entries: Vec<u64>,
}

/// Question 1: every artifact live in `app` in `env` at `at`, with its deployment, approvals,
/// gates and signature as they stood then. `None` when nothing had been deployed by then.
pub fn state<S: Storage>(
    store: &S,
    app: &str,
    env: &str,
    at: DateTime<FixedOffset>,
) -> Result<Option<LiveAnswer>, ViewError> {
    let micros = at.timestamp_micros();
    let from = timeline_key(app, env, i64::MIN, 0);
    let to = timeline_key(app, env, micros, u64::MAX);
    let Some((k, v)) = store.last_in(&from, &to)? else { return Ok(None) };
    let set: LiveSet = decode(k.as_ref(), v.as_ref())?;
    let mut artifacts = Vec::new();
    let mut entries = Vec::new();
    for live in set.slots.values() {
        let a = &live.artifact;
        let view: Option<ArtifactView> = read(store, &artifact_key(a.kind, &a.name, &a.version))?;
        let env = Env(env.to_string());
        let approvals: Vec<Approval> = view
            .as_ref()
            .map(|v| standing(v, &a.digest, &env, micros).into_iter().cloned().collect())
            .unwrap_or_default();
        let gates = gates_at(store, &a.digest, micros)?;
        let signature = view
            .as_ref()
            .and_then(|v| v.signatures.iter().rfind(|s| s.verified && s.digest == a.digest && s.cite.at <= micros))
            .cloned();
        let registered = view.as_ref().and_then(|v| v.registered.clone());
        entries.push(live.cite.seq);
        entries.extend(registered.iter().map(|r| r.cite.seq));
        entries.extend(approvals.iter().map(|x| x.cite.seq));
        entries.extend(gates.iter().map(|g| g.cite.seq));
        entries.extend(signature.iter().map(|s| s.cite.seq));
        artifacts.push(LiveArtifactAnswer {
            artifact: a.clone(),
            via: live.via.clone(),
            deployed: live.cite.clone(),
            digest_matches_registration: registered.as_ref().map(|r| r.digest == a.digest),
            registered,
            approvals,
            gates,
            signature,
        });
    }
    entries.sort_unstable();
    entries.dedup();
    Ok(Some(LiveAnswer { app: set.app, env: set.env.0, at: at.to_rfc3339(), artifacts, entries }))
}

/// One step in an artifact's history (question 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// registered, signed, gated, approved, promoted, deployed, rolled back.
    pub what: String,
    /// The details, in a phrase.
    pub detail: String,
}

/// The full history of one artifact (question 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactHistory {
    /// The artifact with its registered digest.
    pub artifact: ArtifactRef,
    /// Every step, in ledger order.
    pub history: Vec<Step>,
    /// Requests served with it.
    pub served: Option<crate::views::Served>,
    /// Every entry the answer rests on.
    pub entries: Vec<u64>,
}

/// Question 2: registered, signed, gated, approved, promoted, deployed, rolled back, served.
pub fn artifact<S: Storage>(store: &S, name: &ArtifactName) -> Result<Option<ArtifactHistory>, ViewError> {
    let Some(view): Option<ArtifactView> = read(store, &artifact_key(name.kind, &name.name, &name.version))? else {
        return Ok(None);
    };
    let mut steps = Vec::new();
    let mut step = |cite: &Cite, what: &str, detail: String| {
        steps.push(Step { cite: cite.clone(), what: what.to_string(), detail });
    };
    let d = |digest: &Digest| {
        if *digest == view.artifact.digest {
            String::new()
        } else {
            format!(" with OTHER digest {digest}")
        }
    };
    for r in view.registered.iter().chain(&view.reregistered) {
        step(
            &r.cite,
            "registered",
            format!(
                "owner {}, digest {}{}",
                r.owner,
                r.digest,
                r.format.as_ref().map(|f| format!(", format {f}")).unwrap_or_default()
            ),
        );
    }
    for s in &view.signatures {
        step(
            &s.cite,
            "signed",
            format!("key {}, {}{}", s.key_id, if s.verified { "verified" } else { "NOT verified" }, d(&s.digest)),
        );
    }
    let mut digests = vec![view.artifact.digest.clone()];
    for x in &view.approvals {
        let exception =
            x.exception.as_ref().map(|e| format!(", exception to {}: {}", e.control, e.reason)).unwrap_or_default();
        step(&x.cite, "approved", format!("{} for {}{exception}{}", word(&x.decision), x.env, d(&x.digest)));
        digests.push(x.digest.clone());
    }
    for m in &view.promotions {
        step(&m.cite, "promoted", format!("to {}{}", m.env, d(&m.digest)));
        digests.push(m.digest.clone());
    }
    for m in &view.deployments {
        step(&m.cite, "deployed", format!("to {} in {}{}", m.app.as_deref().unwrap_or("?"), m.env, d(&m.digest)));
        digests.push(m.digest.clone());
    }
    for m in &view.rollbacks {
        step(
            &m.cite,
            "rolled back",
            format!("{} in {} returned to it{}", m.app.as_deref().unwrap_or("?"), m.env, d(&m.digest)),
        );
    }
    digests.sort();
    digests.dedup();
    for digest in &digests {
        for r in gate_runs(store, digest)? {
            step(&r.cite, "gated", format!("{} {}{}", r.gate, word(&r.result), d(digest)));
        }
    }
    steps.sort_by_key(|s| s.cite.seq);
    let mut entries: Vec<u64> = steps.iter().map(|s| s.cite.seq).collect();
    let served: Option<crate::views::Served> = read(store, &served_key(name.kind, &name.name, &name.version))?;
    if let Some(s) = &served {
        entries.extend([s.first_seq, s.last_seq]);
    }
    entries.sort_unstable();
    entries.dedup();
    Ok(Some(ArtifactHistory { artifact: view.artifact, history: steps, served, entries }))
}

/// A feedback batch a training job used (question 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchUse {
    /// The verdict on it as the ledger stood when the job started.
    pub at_start: BatchVerdict,
    /// The batch as the ledger stands now.
    pub now: Option<BatchView>,
}

/// A training job and its feedback (question 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingAnswer {
    /// The job.
    pub job_id: String,
    /// Its start and finish.
    pub job: JobView,
    /// Its feedback batches.
    pub batches: Vec<BatchUse>,
    /// Every entry the answer rests on.
    pub entries: Vec<u64>,
}

/// Question 4: which feedback batches fed a training job, and were they vetted?
pub fn training<S: Storage>(store: &S, job_id: &str) -> Result<Option<TrainingAnswer>, ViewError> {
    let Some(job): Option<JobView> = read(store, &job_key(job_id))? else { return Ok(None) };
    let mut entries: Vec<u64> =
        job.start.iter().map(|s| s.cite.seq).chain(job.finish.iter().map(|f| f.cite.seq)).collect();
    let mut batches = Vec::new();
    for verdict in job.start.iter().flat_map(|s| &s.batches) {
        entries.extend(&verdict.entries);
        let now: Option<BatchView> = read(store, &batch_key(&verdict.batch))?;
        batches.push(BatchUse { at_start: verdict.clone(), now });
    }
    entries.sort_unstable();
    entries.dedup();
    Ok(Some(TrainingAnswer { job_id: job_id.to_string(), job, batches, entries }))
}

/// Question 5: alerts raised by entries whose event time is at or after `since`, of one rule
/// if given, in ledger order.
pub fn alerts<S: Storage>(
    store: &S,
    since: Option<DateTime<FixedOffset>>,
    rule: Option<&str>,
) -> Result<Vec<Alert>, ViewError> {
    let (from, to) = alerts_range();
    let mut out = Vec::new();
    for item in store.range(&from, &to) {
        let (k, v) = item?;
        let alert: Alert = decode(k.as_ref(), v.as_ref())?;
        if rule.is_some_and(|r| r != alert.rule) {
            continue;
        }
        if let Some(since) = since {
            if DateTime::parse_from_rfc3339(&alert.time).is_ok_and(|t| t < since) {
                continue;
            }
        }
        out.push(alert);
    }
    Ok(out)
}

/// Every published policy version, in ledger order.
pub fn policy_versions<S: Storage>(store: &S) -> Result<Vec<PolicyVersion>, ViewError> {
    let (from, to) = policies_range();
    read_range(store, &from, &to)
}

/// The retraining gate's answer: may this job train on these batches?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingDecision {
    /// The job asking.
    pub job: String,
    /// Its base artifact.
    pub base: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// Whether the base artifact is registered, in a sentence.
    pub base_reason: String,
    /// One verdict per batch.
    pub batches: Vec<BatchVerdict>,
    /// The policy version applied.
    pub policy_version: String,
    /// Every entry the answer rests on.
    pub entries: Vec<u64>,
}

/// The retraining gate: allow only a registered base and batches vetted `accepted` (when the
/// policy in force requires vetting), judged on the ledger as it stands.
pub fn training_gate<S: Storage>(
    store: &S,
    job: &str,
    base: &ArtifactName,
    batches: &[String],
) -> Result<TrainingDecision, ViewError> {
    let policy: PolicyInForce = match read(store, b"vp")? {
        Some(p) => p,
        None => PolicyInForce {
            version: crate::policy::DEFAULT_VERSION.into(),
            seq: None,
            policy: crate::policy::default_policy(),
        },
    };
    let view: Option<ArtifactView> = read(store, &artifact_key(base.kind, &base.name, &base.version))?;
    let registration = view.as_ref().and_then(|v| v.registered.as_ref());
    let base_reason = match registration {
        Some(r) => format!(
            "{base} was registered by {} at {} (entry {}) with digest {}",
            r.cite.actor.as_deref().unwrap_or("an unnamed actor"),
            r.cite.time,
            r.cite.seq,
            r.digest
        ),
        None => format!("{base} is not registered"),
    };
    let mut verdicts = Vec::new();
    for b in batches {
        let batch: Option<BatchView> = read(store, &batch_key(b))?;
        verdicts.push(batch_verdict(&policy, batch.as_ref(), b));
    }
    let allowed = registration.is_some() && verdicts.iter().all(|v| v.allowed);
    let mut entries: Vec<u64> = registration.map(|r| r.cite.seq).into_iter().chain(policy.seq).collect();
    entries.extend(verdicts.iter().flat_map(|v| v.entries.iter().copied()));
    entries.sort_unstable();
    entries.dedup();
    Ok(TrainingDecision {
        job: job.to_string(),
        base: base.to_string(),
        decision: if allowed { "allow" } else { "deny" }.into(),
        base_reason,
        batches: verdicts,
        policy_version: policy.version,
        entries,
    })
}

fn who(c: &Cite) -> &str {
    c.actor.as_deref().unwrap_or("-")
}

impl fmt::Display for LiveAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Live in {} in {} at {}:", self.app, self.env, self.at)?;
        for a in &self.artifacts {
            writeln!(f, "  {}  {}", a.artifact, a.artifact.digest)?;
            writeln!(
                f,
                "    {:<11} {} by {} (entry {}, via {})",
                "deployed",
                a.deployed.time,
                who(&a.deployed),
                a.deployed.seq,
                a.via
            )?;
            match (&a.registered, a.digest_matches_registration) {
                (Some(r), Some(true)) => {
                    writeln!(f, "    {:<11} by {} (entry {}), same digest", "registered", who(&r.cite), r.cite.seq)?
                }
                (Some(r), _) => writeln!(
                    f,
                    "    {:<11} by {} (entry {}) with ANOTHER digest {}",
                    "registered",
                    who(&r.cite),
                    r.cite.seq,
                    r.digest
                )?,
                (None, _) => writeln!(f, "    {:<11} never", "registered")?,
            }
            let approvals: Vec<String> =
                a.approvals.iter().map(|x| format!("{} (entry {})", who(&x.cite), x.cite.seq)).collect();
            writeln!(
                f,
                "    {:<11} {}",
                "approvals",
                if approvals.is_empty() { "none".into() } else { approvals.join(", ") }
            )?;
            let gates: Vec<String> =
                a.gates.iter().map(|g| format!("{} {} (entry {})", g.gate, word(&g.result), g.cite.seq)).collect();
            writeln!(f, "    {:<11} {}", "gates", if gates.is_empty() { "none".into() } else { gates.join(", ") })?;
            match &a.signature {
                Some(s) => writeln!(f, "    {:<11} verified, key {} (entry {})", "signature", s.key_id, s.cite.seq)?,
                None => writeln!(f, "    {:<11} none verified", "signature")?,
            }
        }
        writeln!(f, "  entries: {:?}", self.entries)
    }
}

impl fmt::Display for ArtifactHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}  {}", self.artifact, self.artifact.digest)?;
        writeln!(f, "  {:>7}  {:<25}  {:<12}  {:<22}  detail", "entry", "time", "what", "actor")?;
        for s in &self.history {
            writeln!(
                f,
                "  {:>7}  {:<25}  {:<12}  {:<22}  {}",
                s.cite.seq,
                s.cite.time,
                s.what,
                who(&s.cite),
                s.detail
            )?;
        }
        match &self.served {
            Some(s) => writeln!(f, "  served {} request(s), entries {}..={}", s.requests, s.first_seq, s.last_seq),
            None => writeln!(f, "  served no recorded requests"),
        }
    }
}

impl fmt::Display for TrainingAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Training job {}", self.job_id)?;
        if let Some(s) = &self.job.start {
            writeln!(f, "  started  {} by {} (entry {}), base {}", s.cite.time, who(&s.cite), s.cite.seq, s.base)?;
        }
        if let Some(e) = &self.job.finish {
            writeln!(f, "  finished {} ({}, entry {})", e.cite.time, word(&e.status), e.cite.seq)?;
        }
        writeln!(f, "  {:<24} {:>9}  vetted when the job started?", "batch", "submitted")?;
        for b in &self.batches {
            let submitted = b.now.as_ref().map_or(0, |n| n.submitted);
            let ok = if b.at_start.allowed { "yes" } else { "NO" };
            writeln!(f, "  {:<24} {:>9}  {ok}: {}", b.at_start.batch, submitted, b.at_start.reason)?;
        }
        writeln!(f, "  entries: {:?}", self.entries)
    }
}

impl fmt::Display for TrainingDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: job {} on base {} (policy {})",
            self.decision.to_uppercase(),
            self.job,
            self.base,
            self.policy_version
        )?;
        writeln!(f, "  base: {}", self.base_reason)?;
        for b in &self.batches {
            writeln!(
                f,
                "  {} {}: {} (entries {:?})",
                if b.allowed { "allow" } else { "deny " },
                b.batch,
                b.reason,
                b.entries
            )?;
        }
        writeln!(f, "  entries: {:?}", self.entries)
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {} {}: {}", word(&self.severity), self.rule, self.id, self.title)?;
        writeln!(f, "    {}", self.explanation)?;
        write!(f, "    policy {}, entries {:?}", self.policy_version, self.entries)
    }
}
