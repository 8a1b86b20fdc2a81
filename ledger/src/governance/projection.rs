//! The projection: [`Views`] follows the log entry by entry. For each entry it runs the rules
//! against the state as of the entry before, then applies the entry to the state and to the
//! history keys (gate runs, policy versions, the deployment timeline, alerts). Everything here
//! is derived from the log: it can be dropped and rebuilt from entry 0, and a rebuild writes
//! exactly the bytes that incremental projection wrote (values are JSON with ordered maps;
//! nothing reads the clock). The key space is in [`super::keys`].
//!
//! *State* keys are held in memory by [`State`] (the rules read them at every entry) and
//! written back when they change, so they are kept small: what grows with traffic (gate runs,
//! served requests) is a history key or a counter of its own. *History* keys are only
//! written here, and read by [`crate::query`].
//!
//! Durability: [`Views::save`] writes the changed keys and the watermark in one atomic,
//! unflushed batch after the log's own flushed commit, so views never run ahead of the log.
//! After a crash they are at most behind it, and [`crate::Ledger`] projects the missing
//! entries from the watermark on.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use evidence_schemas::{
    ArtifactKind, ArtifactRef, Env, Event, EventData, FeedbackSubmit, GateOutcome, PipelineGate, ProxyRequest,
    RegistryRegister, TrainingFinish, TrainingStart,
};

use super::alert::{Alert, Rule};
use super::error::ViewError;
use super::keys;
use super::model::{
    Approval, ArtifactView, BatchVerdict, BatchView, Cite, GateRun, GateView, JobFinish, JobStart, JobView,
    LiveArtifact, LiveSet, Move, PolicyInForce, PolicyVersion, Registration, RouteView, Served, Signature, Vet, Via,
    Window,
};
use super::policy::default_policy;
use super::rules;
use super::state::State;
use crate::store::keyspace::{prefix_end, VIEWS};
use crate::store::{Storage, WriteBatch};

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
        let watermark = match store.get(keys::WATERMARK)? {
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
        let alerts = rules::check(&self.state, seq, ev);
        self.apply(seq, ev, &alerts);
        for (n, alert) in alerts.iter().enumerate() {
            let n = u16::try_from(n).unwrap_or(u16::MAX);
            self.history(keys::alert(seq, n), alert);
            if let Some(violation) = alert.violation() {
                self.state.reported.put(keys::reported(violation.as_bytes()), seq);
            }
        }
        self.watermark = seq + 1;
        alerts
    }

    /// Skips entry `seq` (which must be the watermark), which cannot be applied because of
    /// `problem`: records an alert of its own (entry received at `time`) and moves on, so one
    /// entry never wedges the views. Returns the alert.
    pub fn skip(&mut self, seq: u64, time: DateTime<FixedOffset>, problem: &str) -> Alert {
        debug_assert_eq!(seq, self.watermark, "entries are projected in order");
        let alert = Alert::unprojectable(seq, time, self.state.policy(), problem);
        self.history(keys::alert(seq, 0), &alert);
        self.watermark = seq + 1;
        alert
    }

    /// Writes what changed since the last save, with the watermark, in one atomic batch.
    pub fn save<S: Storage>(&mut self, store: &S) -> Result<(), ViewError> {
        let mut batch = std::mem::take(&mut self.pending);
        self.state.write(&mut batch);
        batch.put(keys::WATERMARK, self.watermark.to_be_bytes().to_vec());
        store.apply(batch)?;
        Ok(())
    }

    /// Writes a history key (written once, read by queries).
    fn history(&mut self, key: Vec<u8>, value: &impl serde::Serialize) {
        self.pending.put(key, serde_json::to_vec(value).expect("view values serialize"));
    }

    /// Applies entry `seq` to the state and the history; `alerts` are the rules' on it.
    fn apply(&mut self, seq: u64, ev: &Event, alerts: &[Alert]) {
        // Requests and feedback, most of the traffic, are counted rather than cited.
        match &ev.data {
            EventData::ProxyRequest(d) => return self.count_request(seq, ev, d, alerts),
            EventData::FeedbackSubmit(d) => return self.submitted(seq, d),
            _ => {}
        }
        let cite = Cite::of(seq, ev);
        let st = &mut self.state;
        match &ev.data {
            EventData::RegistryRegister(d) => self.registered(cite, d),
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
                self.moved(&d.app, &d.target_env, std::slice::from_ref(&d.artifact), &cite, Via::Rollback)
            }
            EventData::PipelineDeploy(d) => self.moved(&d.app, &d.target_env, &d.artifacts, &cite, Via::Deploy),
            EventData::RegistryProvider(d) => {
                let route = RouteView {
                    cite,
                    decision: d.decision,
                    data_classes: d.data_classes.clone(),
                    envs: d.envs.clone(),
                };
                st.routes.put(keys::route(&d.provider, &d.model, &d.region), route);
            }
            EventData::RegistryPolicy(d) => {
                let policy = d.policy.filled(&default_policy());
                st.policy = PolicyInForce { version: d.version.clone(), seq: Some(seq), policy };
                st.policy_changed = true;
                let version = PolicyVersion { cite, version: d.version.clone() };
                self.history(keys::policy_version(seq), &version);
            }
            EventData::PipelineGate(d) => self.gated(cite, d),
            // Key rotations are read from the log by `Log` and by auditors, not from the views.
            EventData::ProxyRequest(_) | EventData::FeedbackSubmit(_) | EventData::LedgerKey(_) => {}
            EventData::FeedbackVet(d) => {
                st.batches.get_mut(keys::batch(&d.batch), BatchView::default).vets.push(Vet {
                    cite,
                    decision: d.decision,
                    reason: d.reason.clone(),
                });
            }
            EventData::TrainingStart(d) => self.training_started(cite, d),
            EventData::TrainingFinish(d) => self.training_finished(cite, d),
        }
    }

    fn registered(&mut self, cite: Cite, d: &RegistryRegister) {
        let st = &mut self.state;
        let reg =
            Registration { cite, digest: d.artifact.digest.clone(), owner: d.owner.clone(), format: d.format.clone() };
        let view = st.artifact_mut(&d.artifact);
        if view.registered.is_some() {
            view.reregistered.push(reg);
            return;
        }
        // The registered digest is the artifact's identity from now on, even if an earlier
        // event named it with another one.
        let old = std::mem::replace(&mut view.artifact.digest, d.artifact.digest.clone());
        view.registered = Some(reg);
        if old != d.artifact.digest {
            let k = keys::artifact(d.artifact.kind, &d.artifact.name, &d.artifact.version);
            st.by_digest.entry(old).or_default().remove(&k);
            st.by_digest.entry(d.artifact.digest.clone()).or_default().insert(k);
        }
    }

    fn submitted(&mut self, seq: u64, d: &FeedbackSubmit) {
        let b = self.state.batches.get_mut(keys::batch(&d.batch), BatchView::default);
        b.submitted += 1;
        b.first_seq.get_or_insert(seq);
        b.last_seq = Some(seq);
    }

    fn gated(&mut self, cite: Cite, d: &PipelineGate) {
        let seq = cite.seq;
        let run = GateRun {
            cite,
            gate: d.gate.clone(),
            result: d.result,
            artifact: d.artifact.clone(),
            target_env: d.target_env.clone(),
        };
        self.history(keys::gate_run(&d.artifact.digest, &d.gate, run.cite.at, seq), &run);
        let view = self.state.gates.get_mut(keys::gate(&d.artifact.digest, &d.gate), || GateView {
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

    fn training_started(&mut self, cite: Cite, d: &TrainingStart) {
        let st = &mut self.state;
        let batches: Vec<BatchVerdict> =
            d.feedback_batches.iter().flatten().map(|b| rules::batch_verdict(&st.policy, st.batch(b), b)).collect();
        for b in d.feedback_batches.iter().flatten() {
            st.batches.get_mut(keys::batch(b), BatchView::default).used_by.push((d.job_id.clone(), cite.seq));
        }
        st.jobs.get_mut(keys::job(&d.job_id), JobView::default).start = Some(JobStart {
            cite,
            base: d.base.clone(),
            datasets: d.datasets.clone().unwrap_or_default(),
            output: d.output.clone(),
            permit: d.permit.clone(),
            batches,
        });
    }

    fn training_finished(&mut self, cite: Cite, d: &TrainingFinish) {
        self.state.jobs.get_mut(keys::job(&d.job_id), JobView::default).finish =
            Some(JobFinish { cite, status: d.status, output: d.output.clone() });
    }

    /// A gateway request: served counters and the drift window of its (app, env, model). The
    /// drift rule has already compared a window this request fills; a window that raised an
    /// alert becomes the baseline, as does the first full one.
    fn count_request(&mut self, seq: u64, ev: &Event, d: &ProxyRequest, alerts: &[Alert]) {
        let st = &mut self.state;
        let mut served: Vec<Vec<u8>> = d.prompt.iter().map(|a| keys::served(a.kind, &a.name, &a.version)).collect();
        if let Some(digest) = &d.model_digest {
            served.extend(
                st.artifacts_with_digest(digest)
                    .map(|v| &v.artifact)
                    .filter(|a| a.kind == ArtifactKind::Model)
                    .map(|a| keys::served(a.kind, &a.name, &a.version)),
            );
        }
        for k in served {
            let s = st.served.get_mut(k, || Served { requests: 0, first_seq: seq, last_seq: seq });
            s.requests += 1;
            s.last_seq = seq;
        }
        let (Some(env), Some(drift)) = (&ev.env, st.policy.policy.drift.as_ref()) else { return };
        let window = u64::from(drift.window);
        let w = st.windows.get_mut(keys::window(&d.app, &env.0, &d.model), Window::default);
        w.current.count(seq, d);
        if w.current.requests >= window {
            let current = std::mem::take(&mut w.current);
            if w.baseline.is_none() || alerts.iter().any(|a| a.rule == Rule::DriftBehavior) {
                w.baseline = Some(current);
            }
        }
    }

    /// Puts `artifacts` live for `app` in `env`, records the moves on each artifact and the new
    /// live set on the timeline.
    fn moved(&mut self, app: &str, env: &Env, artifacts: &[ArtifactRef], cite: &Cite, via: Via) {
        for a in artifacts {
            let view = self.state.artifact_mut(a);
            let moved =
                Move { cite: cite.clone(), digest: a.digest.clone(), env: env.clone(), app: Some(app.to_string()) };
            match via {
                Via::Deploy => view.deployments.push(moved),
                Via::Rollback => view.rollbacks.push(moved),
            }
        }
        let set = self.state.live.get_mut(keys::live(app, &env.0), || LiveSet {
            app: app.to_string(),
            env: env.clone(),
            slots: BTreeMap::new(),
        });
        for a in artifacts {
            let slot = format!("{}/{}", a.kind.as_str(), a.name);
            set.slots.insert(slot, LiveArtifact { artifact: a.clone(), cite: cite.clone(), via });
        }
        let value = serde_json::to_vec(&*set).expect("view values serialize");
        self.pending.put(keys::timeline(app, &env.0, cite.at, cite.seq), value);
    }
}

impl State {
    /// The view of `a`, created on first sight.
    fn artifact_mut(&mut self, a: &ArtifactRef) -> &mut ArtifactView {
        let k = keys::artifact(a.kind, &a.name, &a.version);
        if !self.artifacts.contains(&k) {
            self.by_digest.entry(a.digest.clone()).or_default().insert(k.clone());
            self.by_name.entry((a.kind, a.name.clone())).or_default().insert(k.clone());
        }
        self.artifacts.get_mut(k, || ArtifactView::new(a))
    }
}
