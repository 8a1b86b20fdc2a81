//! Applying an entry to the [`State`] and to the history keys: what the entry adds to the
//! evidence (registrations, signatures, approvals, moves, route decisions, policies, gate
//! runs, vetting, jobs, submissions and requests counted). Evidence lists are kept in event
//! time order where the rules take "the latest" of them, so that what a rule sees never
//! depends on the order entries arrived in. No rules run here.

use evidence_schemas::{
    ArtifactKind, ArtifactRef, Env, Event, EventData, FeedbackSubmit, FeedbackVet, PipelineGate, ProxyRequest,
    RegistryRegister, TrainingFinish, TrainingStart, VetDecision,
};

use super::keys;
use super::model::{
    Approval, ArtifactView, At, BatchVerdict, BatchView, Cite, GateRun, GateView, JobFinish, JobStart, JobView,
    LiveHistory, LiveMove, Move, PolicyInForce, PolicyVersion, Registration, RouteHistory, RouteView, Served,
    Signature, Vet, Via, Window,
};
use super::policy::default_policy;
use super::state::State;
use crate::store::WriteBatch;

impl State {
    /// Applies entry `seq` (event `ev`), writing its history keys into `history`.
    /// `drifted`: the drift rule fired on this request.
    pub(crate) fn apply(&mut self, seq: u64, ev: &Event, history: &mut WriteBatch, drifted: bool) {
        let cite = Cite::of(seq, ev);
        match &ev.data {
            EventData::ProxyRequest(d) => self.count_request(seq, ev, d, drifted),
            EventData::FeedbackSubmit(d) => self.submitted(seq, ev, d),
            EventData::RegistryRegister(d) => self.registered(cite, d),
            EventData::RegistrySign(d) => self.artifact_mut(&d.artifact).signatures.push(Signature {
                cite,
                digest: d.artifact.digest.clone(),
                key_id: d.key_id.clone(),
                verified: d.verified,
            }),
            EventData::RegistryApprove(d) => self.artifact_mut(&d.artifact).approvals.push(Approval {
                cite,
                digest: d.artifact.digest.clone(),
                env: d.target_env.clone(),
                decision: d.decision,
                role: d.role.clone(),
                exception: d.exception.clone(),
            }),
            EventData::RegistryPromote(d) => {
                let m = Move { cite, digest: d.artifact.digest.clone(), env: d.target_env.clone(), app: None };
                self.released_with(&d.artifact);
                self.artifact_mut(&d.artifact).promotions.push(m);
            }
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
                self.routes.get_mut(keys::route(&d.provider, &d.model, &d.region), RouteHistory::default).record(route);
            }
            EventData::RegistryPolicy(d) => {
                let policy = d.policy.filled(&default_policy());
                let version = PolicyVersion { cite, version: d.version.clone(), policy: policy.clone() };
                history.put(keys::policy_version(seq), serde_json::to_vec(&version).expect("views serialize"));
                self.policy = PolicyInForce { version: d.version.clone(), seq: Some(seq), policy };
                self.policies.insert(seq, self.policy.clone());
                self.policy_changed = true;
            }
            EventData::PipelineGate(d) => self.gated(cite, d, history),
            // Key rotations are read from the log by `Log` and by auditors, not from the views.
            EventData::LedgerKey(_) => {}
            EventData::FeedbackVet(d) => self.vetted(cite, d),
            EventData::TrainingStart(d) => self.training_started(cite, d),
            EventData::TrainingFinish(d) => self.training_finished(cite, d),
        }
    }

    /// The view of `a`, created on first sight.
    pub(crate) fn artifact_mut(&mut self, a: &ArtifactRef) -> &mut ArtifactView {
        let k = keys::artifact(a.kind, &a.name, &a.version);
        if !self.artifacts.contains(&k) {
            self.by_digest.entry(a.digest.clone()).or_default().insert(k.clone());
            self.by_name.entry((a.kind, a.name.clone())).or_default().insert(k.clone());
        }
        self.artifacts.get_mut(k, || ArtifactView::new(a))
    }

    /// Notes that `a`'s view has a release with `a`'s digest.
    fn released_with(&mut self, a: &ArtifactRef) {
        let k = keys::artifact(a.kind, &a.name, &a.version);
        self.released.entry(a.digest.clone()).or_default().insert(k);
    }

    /// A registration: the earliest (by event time, then digest) is the artifact's identity;
    /// the others are re-registrations.
    fn registered(&mut self, cite: Cite, d: &RegistryRegister) {
        let reg =
            Registration { cite, digest: d.artifact.digest.clone(), owner: d.owner.clone(), format: d.format.clone() };
        let view = self.artifact_mut(&d.artifact);
        if !view.earlier_than_first(&reg) {
            view.reregistered.push(reg);
            return;
        }
        if let Some(first) = view.registered.take() {
            view.reregistered.push(first);
        }
        let old = std::mem::replace(&mut view.artifact.digest, d.artifact.digest.clone());
        view.registered = Some(reg);
        if old != d.artifact.digest {
            let k = keys::artifact(d.artifact.kind, &d.artifact.name, &d.artifact.version);
            self.by_digest.entry(old).or_default().remove(&k);
            self.by_digest.entry(d.artifact.digest.clone()).or_default().insert(k);
        }
    }

    fn submitted(&mut self, seq: u64, ev: &Event, d: &FeedbackSubmit) {
        let at = ev.time.timestamp_micros();
        let b = self.batches.get_mut(keys::batch(&d.batch), BatchView::default);
        b.submitted += 1;
        b.first_seq.get_or_insert(seq);
        b.last_seq = Some(seq);
        if b.earliest.as_ref().is_none_or(|e| at < e.at) {
            b.earliest = Some(At { seq, at });
        }
        if b.latest.as_ref().is_none_or(|e| at > e.at) {
            b.latest = Some(At { seq, at });
        }
    }

    /// A vetting decision, in event-time order (a rejection after an acceptance at one time).
    fn vetted(&mut self, cite: Cite, d: &FeedbackVet) {
        let vets = &mut self.batches.get_mut(keys::batch(&d.batch), BatchView::default).vets;
        let key = |v: &Vet| (v.cite.at, v.decision == VetDecision::Rejected, v.cite.seq);
        let vet = Vet { cite, decision: d.decision, reason: d.reason.clone() };
        let i = vets.partition_point(|v| key(v) <= key(&vet));
        vets.insert(i, vet);
    }

    fn gated(&mut self, cite: Cite, d: &PipelineGate, history: &mut WriteBatch) {
        let (seq, at) = (cite.seq, cite.at);
        let run = GateRun {
            cite,
            gate: d.gate.clone(),
            result: d.result,
            artifact: d.artifact.clone(),
            target_env: d.target_env.clone(),
        };
        let key = keys::gate_run(&d.artifact.digest, &d.gate, at, seq);
        history.put(key, serde_json::to_vec(&run).expect("views serialize"));
        let view = self
            .gates
            .get_mut(keys::gate(&d.artifact.digest, &d.gate), || GateView { gate: d.gate.clone(), runs: Vec::new() });
        view.record(seq, at, d.result);
    }

    /// A job's start; its batches are judged right after ([`super::rules::judge_job`]).
    fn training_started(&mut self, cite: Cite, d: &TrainingStart) {
        let batches: Vec<BatchVerdict> = d
            .feedback_batches
            .iter()
            .flatten()
            .map(|b| BatchVerdict { batch: b.clone(), allowed: false, reason: String::new(), entries: Vec::new() })
            .collect();
        for b in d.feedback_batches.iter().flatten() {
            self.batches.get_mut(keys::batch(b), BatchView::default).used_by.push((d.job_id.clone(), cite.seq));
        }
        let start = JobStart {
            cite,
            base: d.base.clone(),
            datasets: d.datasets.clone().unwrap_or_default(),
            output: d.output.clone(),
            permit: d.permit.clone(),
            batches,
        };
        let job = self.jobs.get_mut(keys::job(&d.job_id), JobView::default);
        match job.start.take() {
            Some(old) if (old.cite.at, old.cite.seq) > (start.cite.at, start.cite.seq) => {
                job.start = Some(old);
                job.other_starts.push(start);
            }
            old => {
                job.other_starts.extend(old);
                job.start = Some(start);
            }
        }
    }

    fn training_finished(&mut self, cite: Cite, d: &TrainingFinish) {
        self.jobs.get_mut(keys::job(&d.job_id), JobView::default).finish =
            Some(JobFinish { cite, status: d.status, output: d.output.clone() });
    }

    /// A gateway request: served counters and the drift window of its (app, env, model). The
    /// drift rule has already compared a window this request fills; a window that raised an
    /// alert becomes the baseline, as does the first full one.
    fn count_request(&mut self, seq: u64, ev: &Event, d: &ProxyRequest, drifted: bool) {
        let mut served: Vec<Vec<u8>> = d.prompt.iter().map(|a| keys::served(a.kind, &a.name, &a.version)).collect();
        if let Some(digest) = &d.model_digest {
            served.extend(
                self.artifacts_with_digest(digest)
                    .map(|v| &v.artifact)
                    .filter(|a| a.kind == ArtifactKind::Model)
                    .map(|a| keys::served(a.kind, &a.name, &a.version)),
            );
        }
        for k in served {
            let s = self.served.get_mut(k, || Served { requests: 0, first_seq: seq, last_seq: seq });
            s.requests += 1;
            s.last_seq = seq;
        }
        let (Some(env), Some(drift)) = (&ev.env, self.policy.policy.drift.as_ref()) else { return };
        let window = u64::from(drift.window);
        let w = self.windows.get_mut(keys::window(&d.app, &env.0, &d.model), Window::default);
        w.current.count(seq, d);
        if w.current.requests >= window {
            let current = std::mem::take(&mut w.current);
            if w.baseline.is_none() || drifted {
                w.baseline = Some(current);
            }
        }
    }

    /// Records a deploy or rollback of `artifacts` into `app` in `env`: on each artifact, and
    /// on the app's live history.
    fn moved(&mut self, app: &str, env: &Env, artifacts: &[ArtifactRef], cite: &Cite, via: Via) {
        for a in artifacts {
            self.released_with(a);
            let view = self.artifact_mut(a);
            let moved =
                Move { cite: cite.clone(), digest: a.digest.clone(), env: env.clone(), app: Some(app.to_string()) };
            match via {
                Via::Deploy => view.deployments.push(moved),
                Via::Rollback => view.rollbacks.push(moved),
            }
        }
        let history = self.live.get_mut(keys::live(app, &env.0), || LiveHistory::new(app, env));
        history.record(LiveMove { cite: cite.clone(), via, artifacts: artifacts.to_vec() });
    }
}
