//! The audit questions of the contract over HTTP, answered from the views exactly as the CLI
//! answers them (the same `query` functions, the same JSON), the retraining gate, and
//! publishing a policy (admin). `?proofs=true` adds an inclusion proof of every entry an answer
//! rests on.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use evidence_schemas::{ArtifactKind, RegistryPolicy};
use serde::{Deserialize, Serialize};

use super::records::page_size;
use super::{
    AlertsAnswer, Api, ArtifactAnswer, Authorized, JobAnswer, Params, Problem, RequestsAnswer, Segments, StateAnswer,
    WithProofs,
};
use crate::governance::{Rule, Severity, Status, ViewError};
use crate::ledger::PublishError;
use crate::query::{self, AlertQuery, ArtifactName, LiveAnswer, RequestQuery, TrainingDecision, ViolationPage};
use crate::store::Storage;
use crate::when::parse_time;

pub(super) fn routes<S: Storage>() -> Router<Arc<Api<S>>> {
    Router::new()
        .route("/v1/state", get(state::<S>))
        .route("/v1/artifacts/{kind}/{name}/{version}", get(artifact::<S>))
        .route("/v1/requests", get(requests::<S>))
        .route("/v1/training/{job}", get(training::<S>))
        .route("/v1/alerts", get(alerts::<S>))
        .route("/v1/gates/training", post(training_gate::<S>))
        .route("/v1/policy", post(publish::<S>))
}

fn view_problem(e: ViewError) -> Problem {
    Problem::internal(e.kind(), e)
}

fn time_param(name: &str, text: Option<&str>) -> Result<Option<chrono::DateTime<chrono::FixedOffset>>, Problem> {
    text.map(|t| parse_time(t, chrono::Utc::now()).map_err(|e| Problem::parameter(name, e))).transpose()
}

/// `?app=&env=&at=&proofs=`.
#[derive(Debug, Deserialize)]
pub(super) struct StateParams {
    app: String,
    env: String,
    at: Option<String>,
    #[serde(flatten)]
    with: WithProofs,
}

/// Audit question 1: what was live in an app and env at a time, with its deployment,
/// approvals, gates and signature as they stood then.
#[utoipa::path(get, path = "/v1/state", tag = "audit", params(
    ("app" = String, Query, description = "The app."),
    ("env" = String, Query, description = "The env."),
    ("at" = Option<String>, Query, description = "RFC 3339 with an offset, `now` (the default), or a span before now such as `24h`."),
    ("proofs" = Option<bool>, Query, description = "Add an inclusion proof of every entry the answer rests on."),
), responses(
    (status = 200, description = "What was live.", body = StateAnswer),
    (status = 400, description = "A parameter is wrong.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn state<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<StateParams>,
) -> Result<Json<StateAnswer>, Problem> {
    let at = time_param("at", p.at.as_deref())?.unwrap_or_else(|| chrono::Utc::now().fixed_offset());
    // Nothing deployed by then is an answer too: an empty list of what was live.
    let answer = query::state(&*api.store, &p.app, &p.env, at).map_err(view_problem)?;
    let answer = answer.unwrap_or_else(|| LiveAnswer::empty(&p.app, &p.env, at));
    let entries = answer.entries.clone();
    Ok(Json(api.proven(answer, &entries, &p.with)?))
}

/// Audit question 2: an artifact's history: registration, gates, approvals, signatures,
/// promotions and deployments, and its alerts.
#[utoipa::path(get, path = "/v1/artifacts/{kind}/{name}/{version}", tag = "audit", params(
    ("kind" = String, Path, description = "model, prompt, tool_schema, index, route, dataset or config."),
    ("name" = String, Path, description = "The artifact's name."),
    ("version" = String, Path, description = "Its version."),
    ("proofs" = Option<bool>, Query, description = "Add an inclusion proof of every entry the answer rests on."),
), responses(
    (status = 200, description = "The history.", body = ArtifactAnswer),
    (status = 404, description = "The ledger has no record of it.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn artifact<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Segments((kind, name, version)): Segments<(String, String, String)>,
    Params(with): Params<WithProofs>,
) -> Result<Json<ArtifactAnswer>, Problem> {
    let kind: ArtifactKind = serde_json::from_value(serde_json::Value::String(kind.clone())).map_err(|_| {
        Problem::not_found(format!(
            "{kind:?} is not an artifact kind (model, prompt, tool_schema, index, route or dataset)."
        ))
    })?;
    let name = ArtifactName { kind, name, version };
    let answer = query::artifact(&*api.store, &name).map_err(view_problem)?;
    let answer = answer.ok_or_else(|| Problem::not_found(format!("The ledger has no record of {name}.")))?;
    let entries = answer.entries.clone();
    Ok(Json(api.proven(answer, &entries, &with)?))
}

/// Audit question 4: which feedback batches fed a training job, and whether they were vetted.
#[utoipa::path(get, path = "/v1/training/{job}", tag = "audit", params(
    ("job" = String, Path, description = "The training job's id."),
    ("proofs" = Option<bool>, Query, description = "Add an inclusion proof of every entry the answer rests on."),
), responses(
    (status = 200, description = "The job's batches.", body = JobAnswer),
    (status = 404, description = "No such job.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn training<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Segments(job): Segments<String>,
    Params(with): Params<WithProofs>,
) -> Result<Json<JobAnswer>, Problem> {
    let answer = query::training(&*api.store, &job).map_err(view_problem)?;
    let answer = answer.ok_or_else(|| Problem::not_found(format!("The ledger has no training job {job}.")))?;
    let entries = answer.entries.clone();
    Ok(Json(api.proven(answer, &entries, &with)?))
}

/// `?since=&until=&rule=&severity=&status=&app=&limit=&cursor=&proofs=`.
#[derive(Debug, Deserialize)]
pub(super) struct AlertParams {
    since: Option<String>,
    until: Option<String>,
    rule: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    app: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(flatten)]
    with: WithProofs,
}

impl AlertParams {
    fn query(&self) -> Result<AlertQuery, Problem> {
        let rule =
            self.rule.as_deref().map(str::parse::<Rule>).transpose().map_err(|e| Problem::parameter("rule", e))?;
        let severity = self
            .severity
            .as_deref()
            .map(|s| {
                serde_json::from_value::<Severity>(serde_json::Value::String(s.to_string()))
                    .map_err(|_| Problem::parameter("severity", format!("{s:?} is not low, medium, high or critical")))
            })
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(str::parse::<Status>)
            .transpose()
            .map_err(|e| Problem::parameter("status", e))?;
        Ok(AlertQuery {
            since: time_param("since", self.since.as_deref())?,
            until: time_param("until", self.until.as_deref())?,
            rule,
            severity,
            status,
            app: self.app.clone(),
        })
    }
}

/// Audit question 5: alerts in the order they were opened, filtered, a page at a time.
#[utoipa::path(get, path = "/v1/alerts", tag = "audit", params(
    ("since" = Option<String>, Query, description = "About entries at or after this time (RFC 3339 with an offset, or a span such as `24h`)."),
    ("until" = Option<String>, Query, description = "About entries before this time."),
    ("rule" = Option<String>, Query, description = "One rule, by its name in the contract (gate.skipped, ...)."),
    ("severity" = Option<String>, Query, description = "low, medium, high or critical."),
    ("status" = Option<String>, Query, description = "open or resolved."),
    ("app" = Option<String>, Query, description = "One app."),
    ("limit" = Option<usize>, Query, description = "Alerts per page, 1 to 1000 (default 100)."),
    ("cursor" = Option<String>, Query, description = "The `next` of the previous page."),
    ("proofs" = Option<bool>, Query, description = "Add an inclusion proof of every entry the answer rests on."),
), responses(
    (status = 200, description = "A page of alerts.", body = AlertsAnswer),
    (status = 400, description = "A parameter is wrong.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn alerts<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<AlertParams>,
) -> Result<Json<AlertsAnswer>, Problem> {
    let query = p.query()?;
    let limit = page_size(p.limit)?;
    let page = query::alert_page(&*api.store, &query, p.cursor.as_deref(), limit)?;
    let mut entries: Vec<u64> = page.alerts.iter().flat_map(|a| a.entries.iter().copied()).collect();
    entries.sort_unstable();
    entries.dedup();
    Ok(Json(api.proven(page, &entries, &p.with)?))
}

/// `?from=&to=&env=&data_class=&provider=&violations=&limit=&cursor=&proofs=`.
#[derive(Debug, Deserialize)]
pub(super) struct RequestParams {
    from: String,
    to: Option<String>,
    env: Option<String>,
    data_class: Option<String>,
    provider: Option<String>,
    #[serde(default)]
    violations: bool,
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(flatten)]
    with: WithProofs,
}

/// Audit question 3: the gateway requests dated in a range, counted by env, provider, model,
/// region and data class, and how many broke the approved routes; with `violations=true`,
/// those requests, a page at a time.
#[utoipa::path(get, path = "/v1/requests", tag = "audit", params(
    ("from" = String, Query, description = "Requests dated at or after this (RFC 3339 with an offset, or a span before now such as `720h`); counted from the start of its minute."),
    ("to" = Option<String>, Query, description = "Requests dated before this (default: now); counted to the end of its minute."),
    ("env" = Option<String>, Query, description = "One env."),
    ("data_class" = Option<String>, Query, description = "One data class."),
    ("provider" = Option<String>, Query, description = "One provider."),
    ("violations" = Option<bool>, Query, description = "List the requests that broke the approved routes."),
    ("limit" = Option<usize>, Query, description = "Violations per page, 1 to 1000 (default 100)."),
    ("cursor" = Option<String>, Query, description = "The `next` of the previous page."),
    ("proofs" = Option<bool>, Query, description = "Add an inclusion proof of every violation listed."),
), responses(
    (status = 200, description = "The counts, and the violations when asked for.", body = RequestsAnswer),
    (status = 400, description = "A parameter is wrong.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn requests<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<RequestParams>,
) -> Result<Json<RequestsAnswer>, Problem> {
    let from = time_param("from", Some(&p.from))?.expect("given");
    let to = time_param("to", p.to.as_deref())?.unwrap_or_else(|| chrono::Utc::now().fixed_offset());
    if to < from {
        return Err(Problem::parameter("to", format!("{} is before from ({})", to.to_rfc3339(), from.to_rfc3339())));
    }
    let q = RequestQuery { from, to, env: p.env, data_class: p.data_class, provider: p.provider };
    let page = if p.violations { Some(ViolationPage { cursor: p.cursor, limit: page_size(p.limit)? }) } else { None };
    let answer = query::requests(&*api.store, &q, page.as_ref())?;
    let entries = answer.entries();
    Ok(Json(api.proven(answer, &entries, &p.with)?))
}

/// The retraining gate's question.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    /// The training job.
    pub job: String,
    /// Its base artifact, `KIND/NAME@VERSION`.
    pub base: String,
    /// The feedback batches it would train on.
    pub batches: Vec<String>,
}

/// The retraining gate: may this job train on these feedback batches from this base? The
/// same function as `evidence gate training`.
#[utoipa::path(post, path = "/v1/gates/training", tag = "gates", request_body = GateRequest, responses(
    (status = 200, description = "The decision, allow or deny, with a verdict per batch.", body = TrainingDecision),
    (status = 400, description = "The question is not well formed.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn training_gate<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    body: Result<Json<GateRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TrainingDecision>, Problem> {
    let Json(request) = body.map_err(json_problem)?;
    let base: ArtifactName = request.base.parse().map_err(|e| pointer_problem("/base", e))?;
    if request.batches.is_empty() {
        return Err(pointer_problem("/batches", "name at least one feedback batch"));
    }
    let decision = query::training_gate(&*api.store, &request.job, &base, &request.batches).map_err(view_problem)?;
    Ok(Json(decision))
}

/// A policy to publish.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// The policy document (the `data` of a `registry.policy` event).
    pub policy: RegistryPolicy,
    /// Who publishes it (default: the token's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The entry a published policy became.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicyPublished {
    /// The policy's version.
    pub version: String,
    /// Its entry: it is in force from there on.
    pub seq: u64,
}

/// Publishes a governance policy (admin): appended as a `registry.policy` event, in force from
/// its entry on.
#[utoipa::path(post, path = "/v1/policy", tag = "governance", request_body = PolicyRequest, responses(
    (status = 201, description = "Published.", body = PolicyPublished),
    (status = 400, description = "Not a valid policy.", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "That version was published before.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn publish<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    caller: Authorized,
    body: Result<Json<PolicyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<PolicyPublished>), Problem> {
    let Json(request) = body.map_err(json_problem)?;
    let actor = request.actor.unwrap_or_else(|| caller.name.clone());
    let origin = format!("http:{}", caller.name);
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let policy = request.policy;
    let version = policy.version.clone();
    let rx = api
        .writer
        .try_run(move |ledger| ledger.publish_policy(&policy, &actor, &time, &origin))
        .ok_or_else(|| Problem::unavailable("The ledger's write queue is full; retry after a second.", 1))?;
    let result = rx.await.map_err(|_| Problem::unavailable("The ledger stopped before publishing; retry.", 5))?;
    match result {
        Ok(seq) => Ok((StatusCode::CREATED, Json(PolicyPublished { version, seq }))),
        Err(e @ PublishError::AlreadyPublished { .. }) => Err(Problem::new(StatusCode::CONFLICT, e.to_string())),
        Err(e @ (PublishError::Invalid { .. } | PublishError::Quarantined(_))) => {
            Err(Problem::bad_request(e.to_string()))
        }
        Err(e) => Err(Problem::internal(e.kind(), e)),
    }
}

fn json_problem(e: axum::extract::rejection::JsonRejection) -> Problem {
    let detail = e.body_text();
    Problem::new(e.status(), detail.clone()).with_errors(vec![super::Invalid { pointer: String::new(), detail }])
}

fn pointer_problem(pointer: &str, detail: impl std::fmt::Display) -> Problem {
    let detail = format!("{pointer}: {detail}");
    Problem::bad_request(detail.clone()).with_errors(vec![super::Invalid { pointer: pointer.into(), detail }])
}
