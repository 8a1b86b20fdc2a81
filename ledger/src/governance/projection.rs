//! The projection: [`Views`] follows the log entry by entry. A request is judged by the
//! traffic rules as it arrives, counted into its folds, then applied. Any other entry is
//! applied to the state and the history keys first; then everything it may judge
//! differently is judged again, on all the evidence dated at or before it: the entry's own
//! releases, registration or training job, and the releases, registrations, jobs and traffic
//! it is late evidence for. The [`Open`] alerts are reconciled with what each judgement
//! finds (opened, refreshed, resolved). The semantics are at the top of [`super::rules`].
//!
//! Everything here is derived from the log: it can be dropped and rebuilt from entry 0, and a
//! rebuild writes exactly the bytes that incremental projection wrote (values are JSON with
//! ordered maps; nothing reads the clock). The key space is in [`super::keys`].
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

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use evidence_schemas::{Event, EventData, ProxyRequest};

use super::alert::{Alert, Fold};
use super::error::ViewError;
use super::keys;
use super::lifecycle::{violation, violation_of, Open};
use super::requests::{self, Verdict};
use super::rules::{self, History, Release, Traffic};
use super::state::State;
use super::traffic::{self, Recent};
use crate::store::keyspace::{prefix_end, VIEWS};
use crate::store::{Storage, WriteBatch};

/// The projector: the in-memory state, the open alerts, the watermark, and the writes not
/// yet saved.
#[derive(Debug)]
pub struct Views {
    state: State,
    open: Open,
    recent: Recent,
    watermark: u64,
    pending: WriteBatch,
    requests: requests::Pending,
}

impl Views {
    /// Loads the views' state and watermark from the store. Views of another format (written
    /// by an older ledger) are dropped first, so that the ledger projects the log again.
    pub fn load<S: Storage>(store: &S) -> Result<Self, ViewError> {
        let format = store.get(keys::FORMAT_KEY)?.map(|v| v.as_ref().to_vec());
        if format.as_deref() != Some(&keys::FORMAT.to_be_bytes()[..]) && store.get(keys::WATERMARK)?.is_some() {
            tracing::warn!(
                message = "The views were written by another version of the ledger; projecting the log again."
            );
            Views::clear(store)?;
        }
        let watermark = match store.get(keys::WATERMARK)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| ViewError::Corrupt { key: "vm".into(), message: "not 8 bytes".into() })?,
            ),
            None => 0,
        };
        Ok(Views {
            state: State::load(store)?,
            open: Open::load(store)?,
            recent: Recent::default(),
            watermark,
            pending: WriteBatch::default(),
            requests: requests::Pending::default(),
        })
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

    /// Projects entry `seq` (which must be the watermark), reading earlier entries back from
    /// `history` where a re-judgement needs them. Returns the alerts it opened or resolved,
    /// as they stand after it.
    /// A gateway request is kept (shared, not copied) for the rungs that re-count its key.
    pub fn project(&mut self, seq: u64, shared: &Arc<Event>, history: &dyn History) -> Vec<Alert> {
        debug_assert_eq!(seq, self.watermark, "entries are projected in order");
        let mut changed = Vec::new();
        let ev = &**shared;
        match &ev.data {
            EventData::ProxyRequest(d) => self.request(seq, shared, d, &mut changed),
            _ => {
                self.state.apply(seq, ev, &mut self.pending, false);
                self.rejudge(seq, ev, history, &mut changed);
            }
        }
        self.watermark = seq + 1;
        changed
    }

    /// Skips entry `seq` (which must be the watermark), which cannot be applied because of
    /// `problem`: records an alert of its own (entry received at `time`) and moves on, so one
    /// entry never wedges the views. Returns the alert.
    pub fn skip(&mut self, seq: u64, time: DateTime<FixedOffset>, problem: &str) -> Alert {
        debug_assert_eq!(seq, self.watermark, "entries are projected in order");
        let alert = Alert::unprojectable(seq, time, self.state.policy(), problem);
        self.open.record(alert.clone(), seq);
        self.watermark = seq + 1;
        alert
    }

    /// Writes what changed since the last save, with the watermark, in one atomic batch.
    pub fn save<S: Storage>(&mut self, store: &S) -> Result<(), ViewError> {
        let mut batch = std::mem::take(&mut self.pending);
        self.requests.write(store, &mut batch)?;
        self.state.write(&mut batch);
        self.open.write(&mut batch);
        batch.put(keys::WATERMARK, self.watermark.to_be_bytes().to_vec());
        batch.put(keys::FORMAT_KEY, keys::FORMAT.to_be_bytes().to_vec());
        store.apply(batch)?;
        Ok(())
    }

    /// A gateway request: counted into its traffic summaries (and kept in [`Recent`]), judged
    /// by the traffic rules on the evidence so far (weighed by its time), counted into its
    /// folds, and the drift rule run on its window.
    fn request(&mut self, seq: u64, shared: &Arc<Event>, d: &ProxyRequest, changed: &mut Vec<Alert>) {
        let ev = &**shared;
        self.requests.count(ev, d);
        let Some(env) = &ev.env else {
            return self.state.apply(seq, ev, &mut self.pending, false);
        };
        let at = ev.time.timestamp_micros();
        for kind in Traffic::ALL {
            let Some((name, variant)) = kind.of(d) else { continue };
            let summary = traffic::summary_key(kind, &d.app, &env.0, &name);
            // Built only when a rung is due or the request violates: most requests need neither.
            let scope = || traffic::scope(kind, &d.app, &env.0, &name);
            let open = &self.open;
            let key = (kind, d.app.as_str(), env.0.as_str(), name.as_str());
            traffic::count(&mut self.state, (seq, at), &summary, key, variant, || open.alerts_within(&scope()));
            self.recent.push(summary, seq, shared);
            let Some(hit) = rules::judge_request(&self.state, self.state.policy(), (seq, ev), d, env, kind) else {
                continue;
            };
            if kind == Traffic::Route {
                self.requests.judged(Verdict::of(seq, ev, d, true));
            }
            let v = violation_of(&scope(), hit.rule, &hit.subject);
            if !self.open.count(&v, seq, &hit.variant) {
                let mut alert = (hit.alert)();
                alert.fold = Some(Fold::of(seq, &hit.variant));
                changed.push(self.open.open(v, alert, seq));
            }
        }
        let drift = rules::drift(&self.state, seq, ev, d, env);
        if let Some(mut alert) = drift.clone() {
            let v = violation(&format!("f drift {}|{env}|{}", d.app, d.model), &alert);
            if !self.open.count(&v, seq, &d.model) {
                alert.fold = Some(Fold::of(seq, &d.model));
                changed.push(self.open.open(v, alert, seq));
            }
        }
        self.state.apply(seq, ev, &mut self.pending, drift.is_some());
    }

    /// Judges again everything entry `seq` (event `ev`, already applied) may change the
    /// verdict on, and reconciles the open alerts with what it finds.
    fn rejudge(&mut self, seq: u64, ev: &Event, history: &dyn History, changed: &mut Vec<Alert>) {
        let why = format!(
            "entry {seq} ({}, dated {}) arrived after it but is dated at or before it; on all the evidence dated at or before the violation, the violation no longer holds",
            ev.event_type(),
            ev.time.to_rfc3339()
        );
        let (st, open) = (&self.state, &mut self.open);
        for view in touched_views(st, ev) {
            let Some(view) = st.artifacts.get(&view) else { continue };
            for r in Release::all(view).filter(|r| concerns(seq, ev, r)) {
                changed.extend(open.reconcile(&r.scope(), rules::judge_release(st, &r), seq, &why));
            }
            if matches!(ev.data, EventData::RegistryRegister(_)) {
                for reg in view.registered.iter().chain(&view.reregistered) {
                    let found = rules::judge_registration(st, view, reg);
                    changed.extend(open.reconcile(&rules::registration_scope(reg), found, seq, &why));
                }
            }
        }
        let mut rungs = Vec::new();
        for key in traffic::touched(st, seq, ev) {
            let found = traffic::rejudge(st, &key, ev.time.timestamp_micros(), &self.recent, history);
            changed.extend(open.reconcile(&traffic::scope(key.0, &key.1, &key.2, &key.3), found.folds, seq, &why));
            rungs.extend(found.rungs);
            found.verdicts.into_iter().for_each(|v| self.requests.judged(v));
        }
        for (k, snapshot) in rungs {
            self.state.snapshots.put(k, snapshot);
        }
        self.rejudge_jobs(seq, ev, history, &why, changed);
    }

    /// Judges again the training jobs entry `seq` may change the verdict on: its own start,
    /// or the starts dated at or after it of jobs that use the batch it vets or feeds.
    fn rejudge_jobs(&mut self, seq: u64, ev: &Event, history: &dyn History, why: &str, changed: &mut Vec<Alert>) {
        let at = ev.time.timestamp_micros();
        let (jobs, from): (Vec<String>, i64) = match &ev.data {
            EventData::TrainingStart(d) => (vec![d.job_id.clone()], i64::MIN),
            EventData::FeedbackVet(d) => (self.jobs_using(&d.batch), at),
            EventData::FeedbackSubmit(d) => (self.jobs_using(&d.batch), at),
            _ => return,
        };
        for name in jobs {
            let key = keys::job(&name);
            let Some(job) = self.state.jobs.get(&key) else { continue };
            let starts: Vec<_> =
                job.start.iter().chain(&job.other_starts).filter(|s| s.cite.at >= from).cloned().collect();
            for start in starts {
                if matches!(ev.data, EventData::TrainingStart(_)) && start.cite.seq != seq {
                    continue;
                }
                let (found, verdicts) = rules::judge_job(&self.state, &start, &name, history);
                changed.extend(self.open.reconcile(&rules::job_scope(&start), found, seq, why));
                let job = self.state.jobs.get_mut(key.clone(), Default::default);
                let stored =
                    job.start.iter_mut().chain(job.other_starts.iter_mut()).find(|s| s.cite.seq == start.cite.seq);
                if let Some(s) = stored {
                    s.batches = verdicts;
                }
            }
        }
    }

    /// The jobs that use `batch`.
    fn jobs_using(&self, batch: &str) -> Vec<String> {
        let Some(b) = self.state.batch(batch) else { return Vec::new() };
        let mut out: Vec<String> = b.used_by.iter().map(|(job, _)| job.clone()).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The artifact views whose releases (or registrations) evidence `ev` may judge differently.
fn touched_views(st: &State, ev: &Event) -> Vec<Vec<u8>> {
    let view = |a: &evidence_schemas::ArtifactRef| keys::artifact(a.kind, &a.name, &a.version);
    let mut out = match &ev.data {
        EventData::PipelineGate(d) => st.released.get(&d.artifact.digest).into_iter().flatten().cloned().collect(),
        EventData::RegistrySign(d) => vec![view(&d.artifact)],
        EventData::RegistryApprove(d) => vec![view(&d.artifact)],
        EventData::RegistryRegister(d) => vec![view(&d.artifact)],
        EventData::RegistryPromote(d) => vec![view(&d.artifact)],
        EventData::RegistryRollback(d) => vec![view(&d.artifact)],
        EventData::PipelineDeploy(d) => d.artifacts.iter().map(view).collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// Whether evidence `ev` may change the verdict on release `r`: the release itself, or
/// evidence about its digest (and env) dated at or before it.
fn concerns(seq: u64, ev: &Event, r: &Release<'_>) -> bool {
    let at = ev.time.timestamp_micros();
    let later = r.m.cite.at >= at;
    match &ev.data {
        EventData::PipelineGate(d) => later && r.a.digest == d.artifact.digest,
        EventData::RegistrySign(d) => later && r.a.digest == d.artifact.digest,
        EventData::RegistryApprove(d) => later && r.a.digest == d.artifact.digest && r.m.env == d.target_env,
        EventData::RegistryPromote(d) => later && r.a.digest == d.artifact.digest && r.m.env == d.target_env,
        EventData::RegistryRegister(_) => later,
        EventData::PipelineDeploy(_) | EventData::RegistryRollback(_) => r.m.cite.seq == seq,
        _ => false,
    }
}
