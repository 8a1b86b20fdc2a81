//! The evidence API: axum routes over the live ledger. Reads go to the store directly (the
//! views and the log's keys, at the size the writer last published), so they run beside
//! appends; writes go through the one writer (`super::writer`).
//!
//! Deny by default: [`authorize`] lets through only `/healthz`, `/readyz` (and `/metrics` when
//! the operator opened it) without a bearer token; a token's role must include the route's
//! ([`needed_role`]). Every error is a problem details document (`problem`).
//!
//! Files: `intake` (`POST /v1/events`), `records` (the log: entries, proofs, checkpoints,
//! quarantine, status), `audit` (the audit questions, the training gate, policy publishing),
//! `stream` (the alert outbox as server-sent events), `server` (the accept loop: connection
//! cap, header timeout, graceful stop), `problem`.

mod audit;
mod catalog;
mod export;
mod intake;
mod openapi;
mod problem;
mod records;
mod server;
mod stream;
mod tls;
mod validation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

pub use self::audit::{GateRequest, PolicyPublished, PolicyRequest};
pub use self::intake::{IntakeAnswer, ItemOutcome};
pub use self::problem::{Invalid, Problem};
pub use self::records::{EntriesPage, EntryAnswer, IntegrityAnswer, QuarantinePage, ServiceStatus};
pub use self::server::{serve, Listening};
pub use self::tls::{acceptor, TlsError, TlsFiles};
use super::tokens::{Caller, Role, Tokens};
use super::writer::WriterHandle;
use crate::log::{InclusionProof, LogAt};
use crate::store::Storage;
pub use evidence_ingest::validation::Validation;

/// Limits on what clients may send and hold, each answered with its own status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body (413).
    pub max_body_bytes: usize,
    /// Most events in one request (413).
    pub max_events: usize,
    /// How long a client may take to send its request headers (the connection is closed).
    pub header_timeout: Duration,
    /// How long a request may take, body included (408).
    pub request_timeout: Duration,
    /// Most open connections; more are answered 503 and closed.
    pub max_connections: usize,
    /// Batches waiting for the writer before intake answers 503.
    pub queue: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 16 << 20,
            max_events: 10_000,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            queue: 64,
        }
    }
}

/// What the handlers share.
pub struct Api<S: Storage> {
    /// The one writer.
    pub writer: WriterHandle<S>,
    /// The store, for reads.
    pub store: Arc<S>,
    /// Bearer tokens.
    pub tokens: Arc<Tokens>,
    /// The threads that validate intake bodies (and the Kafka source's batches): one a core
    /// but one. More would not validate faster, and every extra runnable thread delays the
    /// answers to readers.
    pub validation: Validation,
    /// Client limits.
    pub limits: HttpLimits,
    /// The Prometheus registry.
    pub metrics: PrometheusHandle,
    /// Whether `/metrics` answers without a token.
    pub metrics_open: bool,
    /// The last self-audit.
    pub audit: super::audit::LastAudit,
    /// The SIEM sinks' health.
    pub sinks: Arc<[Arc<super::siem::Health>]>,
    /// Becomes true when the service stops (live streams end then).
    pub stopped: tokio::sync::watch::Receiver<bool>,
}

impl<S: Storage> std::fmt::Debug for Api<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl<S: Storage> Api<S> {
    /// The log as the writer last published it.
    pub(crate) fn log(&self) -> LogAt<'_, S> {
        let published = self.writer.published();
        LogAt::new(&self.store, published.size, published.latest)
    }
}

type Shared<S> = State<Arc<Api<S>>>;

/// The router of every route, with authorization, metrics and limits.
pub fn router<S: Storage>(api: Arc<Api<S>>) -> Router {
    let limits = api.limits.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics_text::<S>))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(intake::routes())
        .merge(records::routes())
        .merge(audit::routes())
        .merge(catalog::routes())
        .merge(stream::routes())
        .merge(export::routes())
        .fallback(|| async { Problem::not_found("There is no such route; GET /openapi.json lists them.") })
        .layer(middleware::from_fn_with_state(Arc::clone(&api), authorize::<S>))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(limits, bound))
        .layer(middleware::from_fn(measure))
        .with_state(api)
}

/// The role a route needs: every GET is a reader's, and so is asking the training gate (a
/// question, which changes nothing); `POST /v1/events` is a producer's; any other change an
/// admin's.
fn needed_role(method: &Method, path: &str) -> Role {
    match (method, path) {
        (&Method::GET | &Method::HEAD, _) | (&Method::POST, "/v1/gates/training") => Role::Reader,
        (&Method::POST, "/v1/events") => Role::Producer,
        _ => Role::Admin,
    }
}

async fn authorize<S: Storage>(State(api): Shared<S>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" || (path == "/metrics" && api.metrics_open) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(presented) = presented else {
        return unauthorized("This route needs a bearer token: send Authorization: Bearer <token>.");
    };
    let Some(caller) = api.tokens.check(presented) else {
        return unauthorized("The bearer token is not one this ledger issued, or it was revoked.");
    };
    let needed = needed_role(request.method(), path);
    if !caller.role.allows(needed) {
        tracing::info!(message = "Refused: the token's role does not allow the route.", token = %caller.name, role = %caller.role, %needed, path);
        let detail = format!("The token {:?} has the role {}; this route needs {needed}.", caller.name, caller.role);
        return Problem::new(StatusCode::FORBIDDEN, detail).into_response();
    }
    // A question read from the store: the writer keeps its store batches small meanwhile.
    if needed == Role::Reader && path != "/metrics" && path != "/openapi.json" {
        api.writer.reading();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

/// Bounds a request: a body declared over the size limit is refused before it is read (413),
/// and a request that takes longer than the request timeout, body included, is answered 408.
async fn bound(State(limits): State<HttpLimits>, request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&n| n > limits.max_body_bytes as u64) {
        let detail = format!(
            "The body is {length} bytes, over the limit of {} bytes; send fewer events per request.",
            limits.max_body_bytes
        );
        let mut response = Problem::new(StatusCode::PAYLOAD_TOO_LARGE, detail).into_response();
        response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return response;
    }
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let detail = format!(
                "The request took longer than {} s to arrive and be answered; send it faster or in smaller parts.",
                limits.request_timeout.as_secs()
            );
            let mut response = Problem::new(StatusCode::REQUEST_TIMEOUT, detail).into_response();
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            response
        }
    }
}

/// Counts and times every request by route and status.
async fn measure(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("evidence_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("evidence_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "Alive.", content_type = "application/json")))]
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store is open, appends work and the views have caught up with the log.
#[utoipa::path(get, path = "/readyz", tag = "service", responses(
    (status = 200, description = "Ready.", content_type = "application/json"),
    (status = 503, description = "Not ready: the views are behind, or appends fail.", content_type = "application/json"),
))]
pub(super) async fn readyz<S: Storage>(State(api): Shared<S>) -> Response {
    let published = api.writer.published();
    let body = serde_json::json!({
        "entries": published.size,
        "views_watermark": published.watermark,
        "append_failure": published.append_failure,
    });
    if published.caught_up() && published.append_failure.is_none() && published.status.damaged.is_none() {
        Json(body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// Prometheus metrics: events by outcome and source, append batch latency and size, views lag,
/// alerts by rule, HTTP requests by route and status with latency, Kafka lag per partition.
#[utoipa::path(get, path = "/metrics", tag = "service", responses(
    (status = 200, description = "The Prometheus text format.", body = String, content_type = "text/plain; version=0.0.4"),
))]
pub(super) async fn metrics_text<S: Storage>(State(api): Shared<S>) -> Response {
    let published = api.writer.published();
    metrics::gauge!("evidence_log_entries").set(published.size as f64);
    metrics::gauge!("evidence_views_lag_entries").set(published.size.saturating_sub(published.watermark) as f64);
    metrics::gauge!("evidence_checkpoint_size").set(published.latest as f64);
    let mut response = api.metrics.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// An answer with, on `?proofs=true`, an inclusion proof of each entry it rests on against
/// the latest signed checkpoint (entries after it are listed as not yet checkpointed).
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Proven_{T}")]
pub struct Proven<T> {
    /// The answer.
    #[serde(flatten)]
    pub answer: T,
    /// Inclusion proofs of its entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proofs: Option<Vec<InclusionProof>>,
    /// Entries not yet in a signed checkpoint, so without a proof yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_yet_checkpointed: Option<Vec<u64>>,
}

/// Question 1's answer, as the API sends it.
pub type StateAnswer = Proven<crate::query::LiveAnswer>;
/// Question 2's answer, as the API sends it.
pub type ArtifactAnswer = Proven<crate::query::ArtifactHistory>;
/// Question 4's answer, as the API sends it.
pub type JobAnswer = Proven<crate::query::TrainingAnswer>;
/// Question 5's answer, as the API sends it.
pub type AlertsAnswer = Proven<crate::query::AlertPage>;
/// Question 3's answer, with proofs when asked for.
pub type RequestsAnswer = Proven<crate::query::RequestsAnswer>;

/// `?proofs=true`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct WithProofs {
    #[serde(default)]
    proofs: bool,
}

impl<S: Storage> Api<S> {
    /// `answer`, with proofs of `entries` if asked for.
    pub(crate) fn proven<T>(&self, answer: T, entries: &[u64], with: &WithProofs) -> Result<Proven<T>, Problem> {
        if !with.proofs {
            return Ok(Proven { answer, proofs: None, not_yet_checkpointed: None });
        }
        let log = self.log();
        let mut proofs = Vec::new();
        let mut pending = Vec::new();
        for &seq in entries {
            match log.inclusion_proof(seq, None) {
                Ok(proof) => proofs.push(proof),
                Err(crate::log::LogError::NotYetCheckpointed { .. }) => pending.push(seq),
                Err(e) => return Err(Problem::internal(e.kind(), e)),
            }
        }
        Ok(Proven { answer, proofs: Some(proofs), not_yet_checkpointed: Some(pending) })
    }
}

/// The caller, which [`authorize`] put in the request.
pub(crate) type Authorized = Extension<Caller>;

/// Query parameters, refused as a problem document naming what is wrong.
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, St: Send + Sync> axum::extract::FromRequestParts<St> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &St) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(t)) => Ok(Params(t)),
            Err(e) => {
                let detail = e.body_text();
                Err(Problem::bad_request(detail.clone()).with_errors(vec![Invalid { pointer: "?".into(), detail }]))
            }
        }
    }
}

/// Path segments, refused as a problem document naming what is wrong.
#[derive(Debug)]
pub(crate) struct Segments<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, St: Send + Sync> axum::extract::FromRequestParts<St> for Segments<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &St) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(Segments(t)),
            Err(e) => Err(Problem::bad_request(e.body_text())),
        }
    }
}
