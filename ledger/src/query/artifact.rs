//! Audit question 2: the full history of one artifact.

use std::fmt;

use evidence_schemas::{ArtifactRef, Digest};
use serde::{Deserialize, Serialize};

use super::alerts::alerts;
use super::live::gate_runs;
use super::{who, ArtifactName};
use crate::governance::model::{ArtifactView, Cite, Served};
use crate::governance::rules::word;
use crate::governance::{keys, read, Alert, ViewError};
use crate::store::Storage;
use crate::text::esc;

/// One step in an artifact's history (question 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactHistory {
    /// The artifact with its registered digest.
    pub artifact: ArtifactRef,
    /// Every step, in ledger order.
    pub history: Vec<Step>,
    /// Requests served with it.
    pub served: Option<Served>,
    /// The alerts about it, open and resolved, in the order they were opened.
    pub alerts: Vec<Alert>,
    /// Every entry the answer rests on.
    pub entries: Vec<u64>,
}

/// Question 2: registered, signed, gated, approved, promoted, deployed, rolled back, served.
pub fn artifact<S: Storage>(store: &S, name: &ArtifactName) -> Result<Option<ArtifactHistory>, ViewError> {
    let Some(view): Option<ArtifactView> = read(store, &keys::artifact(name.kind, &name.name, &name.version))? else {
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
    let served: Option<Served> = read(store, &keys::served(name.kind, &name.name, &name.version))?;
    if let Some(s) = &served {
        entries.extend([s.first_seq, s.last_seq]);
    }
    let about = name.to_string();
    let alerts: Vec<Alert> = alerts(store, None, None, None)?
        .into_iter()
        .filter(|a| a.artifact.as_deref() == Some(about.as_str()))
        .collect();
    entries.sort_unstable();
    entries.dedup();
    Ok(Some(ArtifactHistory { artifact: view.artifact, history: steps, served, alerts, entries }))
}

impl fmt::Display for ArtifactHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}  {}", esc(&self.artifact.to_string()), self.artifact.digest)?;
        writeln!(f, "  {:>7}  {:<25}  {:<12}  {:<22}  detail", "entry", "time", "what", "actor")?;
        for s in &self.history {
            writeln!(
                f,
                "  {:>7}  {:<25}  {:<12}  {:<22}  {}",
                s.cite.seq,
                s.cite.time,
                s.what,
                who(&s.cite),
                esc(&s.detail)
            )?;
        }
        match &self.served {
            Some(s) => writeln!(f, "  served {} request(s), entries {}..={}", s.requests, s.first_seq, s.last_seq)?,
            None => writeln!(f, "  served no recorded requests")?,
        }
        lifecycle(f, &self.alerts)
    }
}

/// The alerts of an answer, one line each: status, rule, id, and the entries that opened and
/// resolved it.
pub(super) fn lifecycle(f: &mut fmt::Formatter<'_>, alerts: &[Alert]) -> fmt::Result {
    if alerts.is_empty() {
        return writeln!(f, "  alerts: none");
    }
    writeln!(f, "  alerts:")?;
    for a in alerts {
        write!(
            f,
            "    {:<8} {:<22} {} about entry {}, opened by entry {}",
            a.status.name(),
            a.rule,
            a.id,
            a.seq,
            a.opened_by
        )?;
        if let Some(fold) = &a.fold {
            write!(f, ", {} occurrence(s)", fold.occurrences)?;
        }
        match a.resolved_by {
            Some(by) => writeln!(f, ", resolved by entry {by}")?,
            None => writeln!(f)?,
        }
    }
    Ok(())
}
