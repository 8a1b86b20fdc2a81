//! Audit question 1: what was live in an app in an env at a time.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use evidence_schemas::{ArtifactRef, Digest, Env, GateOutcome};
use serde::{Deserialize, Serialize};

use super::who;
use crate::governance::model::{
    Approval, ArtifactView, Cite, GateRun, GateView, LiveHistory, Registration, Signature, Via,
};
use crate::governance::rules::word;
use crate::governance::{decode, keys, read, read_range, ViewError};
use crate::store::Storage;
use crate::text::esc;

/// Every run of every gate on `digest`, by gate, each gate's runs in event-time order.
pub(super) fn gate_runs<S: Storage>(store: &S, digest: &Digest) -> Result<Vec<GateRun>, ViewError> {
    let (from, to) = keys::gate_runs_of(digest);
    read_range(store, &from, &to)
}

/// The latest run of each gate on `digest` at event time `micros`: one key read per gate.
fn gates_at<S: Storage>(store: &S, digest: &Digest, micros: i64) -> Result<Vec<GateStatus>, ViewError> {
    let (from, to) = keys::gates_of(digest);
    let mut out = Vec::new();
    for view in read_range::<_, GateView>(store, &from, &to)? {
        let first = keys::gate_run(digest, &view.gate, i64::MIN, 0);
        let last = keys::gate_run(digest, &view.gate, micros, u64::MAX);
        if let Some((k, v)) = store.last_in(&first, &last)? {
            let run: GateRun = decode(k.as_ref(), v.as_ref())?;
            out.push(GateStatus { gate: view.gate, result: run.result, cite: run.cite });
        }
    }
    Ok(out)
}

/// The latest run of a gate at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveArtifactAnswer {
    /// The artifact as deployed.
    pub artifact: ArtifactRef,
    /// How it went live.
    pub via: Via,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    let Some(history): Option<LiveHistory> = read(store, &keys::live(app, env))? else { return Ok(None) };
    let slots = history.slots_at(micros);
    if slots.is_empty() {
        return Ok(None);
    }
    let mut artifacts = Vec::new();
    let mut entries = Vec::new();
    for live in slots.values() {
        let a = &live.artifact;
        let view: Option<ArtifactView> = read(store, &keys::artifact(a.kind, &a.name, &a.version))?;
        let env = Env(env.to_string());
        let approvals: Vec<Approval> = view
            .as_ref()
            .map(|v| v.approvals_at(&a.digest, &env, micros).into_iter().cloned().collect())
            .unwrap_or_default();
        let gates = gates_at(store, &a.digest, micros)?;
        let signature = view
            .as_ref()
            .and_then(|v| v.signatures.iter().rfind(|s| s.verified && s.digest == a.digest && s.cite.at <= micros))
            .cloned();
        let registered = view.as_ref().and_then(|v| v.registered_at(micros).cloned());
        entries.push(live.cite.seq);
        entries.extend(registered.iter().map(|r| r.cite.seq));
        entries.extend(approvals.iter().map(|x| x.cite.seq));
        entries.extend(gates.iter().map(|g| g.cite.seq));
        entries.extend(signature.iter().map(|s| s.cite.seq));
        artifacts.push(LiveArtifactAnswer {
            artifact: a.clone(),
            via: live.via,
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
    Ok(Some(LiveAnswer { app: history.app, env: history.env.0, at: at.to_rfc3339(), artifacts, entries }))
}

impl LiveAnswer {
    /// The answer when nothing had been deployed to `app` in `env` by `at`.
    pub fn empty(app: &str, env: &str, at: DateTime<FixedOffset>) -> Self {
        LiveAnswer { app: app.into(), env: env.into(), at: at.to_rfc3339(), artifacts: Vec::new(), entries: Vec::new() }
    }
}

impl fmt::Display for LiveAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Live in {} in {} at {}:", esc(&self.app), esc(&self.env), self.at)?;
        for a in &self.artifacts {
            writeln!(f, "  {}  {}", esc(&a.artifact.to_string()), a.artifact.digest)?;
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
            let gates: Vec<String> = a
                .gates
                .iter()
                .map(|g| format!("{} {} (entry {})", esc(&g.gate), word(&g.result), g.cite.seq))
                .collect();
            writeln!(f, "    {:<11} {}", "gates", if gates.is_empty() { "none".into() } else { gates.join(", ") })?;
            match &a.signature {
                Some(s) => {
                    writeln!(f, "    {:<11} verified, key {} (entry {})", "signature", esc(&s.key_id), s.cite.seq)?
                }
                None => writeln!(f, "    {:<11} none verified", "signature")?,
            }
        }
        writeln!(f, "  entries: {:?}", self.entries)
    }
}
