//! `POST /v1/events`: events from producers over HTTP. One event
//! (`application/cloudevents+json`), an array (`application/cloudevents-batch+json`) or
//! NDJSON (`application/x-ndjson`). Every event is validated (on a validation thread), the
//! request's records go to the writer as one batch, and the answer comes after the durable
//! flush: one outcome per event, in order, with `errors` true when any was refused, as a bulk
//! API does. Rejected events are quarantined like bad input from any source, with their origin
//! `http:<token>@<peer>#<n>`. `?dry_run=true` validates and answers without storing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use evidence_ingest::{Outcome, Record, Verdict};
use serde::{Deserialize, Serialize};

use super::validation::validate_body;
use super::{Api, Authorized, Invalid, Problem};
use crate::service::writer::Submit;
use crate::store::Storage;

pub(super) fn routes<S: Storage>() -> Router<Arc<Api<S>>> {
    Router::new().route("/v1/events", post(post_events::<S>))
}

/// How the body holds its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    One,
    Array,
    Lines,
}

fn framing(headers: &HeaderMap) -> Result<Framing, Problem> {
    let given = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/cloudevents+json" => Ok(Framing::One),
        "application/cloudevents-batch+json" => Ok(Framing::Array),
        "application/x-ndjson" => Ok(Framing::Lines),
        _ => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "The content type {given:?} is not one intake reads: send application/cloudevents+json (one event), application/cloudevents-batch+json (an array) or application/x-ndjson."
            ),
        )),
    }
}

/// The raw events of a body, as slices of it (no copy; a rejected event's bytes are copied
/// when it is quarantined). NDJSON lines are found with `memchr`: splitting byte by byte and
/// copying each line took 2.6% of serve's CPU under HTTP intake (`ops/bench/http`).
fn split(body: &Bytes, framing: Framing) -> Result<Vec<Bytes>, Problem> {
    match framing {
        Framing::One => Ok(vec![body.clone()]),
        Framing::Lines => {
            let mut lines = Vec::new();
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
                let line = &body[start..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    lines.push(body.slice(start..start + line.len()));
                }
                start = end + 1;
            }
            Ok(lines)
        }
        Framing::Array => {
            let items: Vec<Box<serde_json::value::RawValue>> = serde_json::from_slice(body).map_err(|e| {
                let detail = format!(
                    "The body is not a JSON array of events: {e} (a batch is application/cloudevents-batch+json)"
                );
                Problem::bad_request(detail.clone()).with_errors(vec![Invalid { pointer: String::new(), detail }])
            })?;
            Ok(items.into_iter().map(|raw| Bytes::copy_from_slice(raw.get().as_bytes())).collect())
        }
    }
}

/// `?dry_run=true`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct IntakeParams {
    #[serde(default)]
    dry_run: bool,
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ItemOutcome {
    /// Appended as entry `seq`.
    Accepted {
        /// Its entry.
        seq: u64,
    },
    /// Already in the log as entry `seq`, with the same content.
    Duplicate {
        /// The existing entry.
        seq: u64,
    },
    /// Valid, and would be appended (a dry run).
    Valid,
    /// Refused by validation, and quarantined.
    Rejected {
        /// The rejection in a sentence.
        detail: String,
        /// Each problem with its JSON pointer.
        errors: Vec<Invalid>,
    },
    /// Valid, but its `(source, id)` is in the log with other content: quarantined.
    Conflict {
        /// Why, in a sentence.
        detail: String,
    },
}

/// The answer to a `POST /v1/events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntakeAnswer {
    /// Whether any event was refused.
    pub errors: bool,
    /// One outcome per event, in the order sent.
    pub items: Vec<ItemOutcome>,
}

/// Intake: events from producers, stored durably before the answer, one outcome per event in
/// order (`accepted` with its entry, `duplicate` with the original entry, `rejected` with every
/// problem's pointer, `conflict`), `errors` true when any was refused. Rejected events are
/// quarantined. A single event that is refused is answered 400 (rejected) or 409 (conflict).
#[utoipa::path(post, path = "/v1/events", tag = "intake", params(
    ("dry_run" = Option<bool>, Query, description = "Validate and answer without storing."),
), request_body(description = "One event, an array of events, or NDJSON.", content(
    ("application/cloudevents+json"),
    ("application/cloudevents-batch+json"),
    ("application/x-ndjson"),
)), responses(
    (status = 200, description = "One outcome per event.", body = IntakeAnswer),
    (status = 400, description = "The one event sent was rejected, or the body is not an array.", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The one event sent conflicts with an entry.", body = Problem, content_type = "application/problem+json"),
    (status = 408, description = "The request took longer than the request timeout.", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "The body is over the size limit, or holds too many events.", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not one of the content types intake reads.", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The write queue is full, or the ledger is stopping: retry after Retry-After.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn post_events<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    caller: Authorized,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<IntakeParams>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match intake(&api, &caller.name, peer, params, &headers, body).await {
        Ok(response) => response,
        Err(problem) => {
            metrics::counter!("evidence_http_intake_refused_total", "status" => problem.status.to_string())
                .increment(1);
            problem.into_response()
        }
    }
}

async fn intake<S: Storage>(
    api: &Api<S>,
    token: &str,
    peer: SocketAddr,
    params: IntakeParams,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Problem> {
    let framing = framing(headers)?;
    let body = body.map_err(|e| {
        let status = e.status();
        let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("The body is over the limit of {} bytes; send fewer events per request.", api.limits.max_body_bytes)
        } else {
            format!("The body could not be read: {e}")
        };
        Problem::new(status, detail)
    })?;
    let raw = split(&body, framing)?;
    if raw.len() > api.limits.max_events {
        let detail = format!(
            "The request holds {} events, over the limit of {} per request; split it.",
            raw.len(),
            api.limits.max_events
        );
        return Err(Problem::new(StatusCode::PAYLOAD_TOO_LARGE, detail));
    }
    if raw.is_empty() {
        return Err(Problem::bad_request("The body holds no event."));
    }
    let records = validate_body(&api.validation, raw, token.to_string(), peer.to_string())
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let items = if params.dry_run { dry_run(&records) } else { store(api, records).await? };
    let answer = IntakeAnswer { errors: items.iter().any(ItemOutcome::refused), items };
    if framing == Framing::One {
        if let Some(problem) = single_refusal(&answer.items[0]) {
            return Err(problem);
        }
    }
    Ok(Json(answer).into_response())
}

fn dry_run(records: &[Record]) -> Vec<ItemOutcome> {
    records
        .iter()
        .map(|r| match &r.verdict {
            Verdict::Valid(_) => ItemOutcome::Valid,
            Verdict::Rejected { rejection, .. } => rejected(rejection),
        })
        .collect()
}

fn rejected(rejection: &evidence_schemas::Rejection) -> ItemOutcome {
    let errors = rejection.problems().into_iter().map(|p| Invalid { pointer: p.pointer, detail: p.message }).collect();
    ItemOutcome::Rejected { detail: rejection.to_string(), errors }
}

async fn store<S: Storage>(api: &Api<S>, records: Vec<Record>) -> Result<Vec<ItemOutcome>, Problem> {
    let verdicts: Vec<Option<ItemOutcome>> = records
        .iter()
        .map(|r| match &r.verdict {
            Verdict::Rejected { rejection, .. } => Some(rejected(rejection)),
            Verdict::Valid(_) => None,
        })
        .collect();
    let reply = match api.writer.try_submit(records) {
        Submit::Queued(reply) => reply,
        Submit::Full => {
            metrics::counter!("evidence_http_intake_busy_total").increment(1);
            return Err(Problem::unavailable("The ledger's write queue is full; retry after a second.", 1));
        }
        Submit::Stopped => return Err(Problem::unavailable("The ledger is stopping; retry against it later.", 5)),
    };
    let report = match reply.await {
        Ok(Ok(report)) => report,
        Ok(Err(message)) => {
            return Err(Problem::unavailable(format!("Nothing of the request was stored: {message}"), 5));
        }
        Err(_) => return Err(Problem::unavailable("The ledger stopped before storing the request; retry.", 5)),
    };
    Ok(verdicts
        .into_iter()
        .zip(report.outcomes)
        .map(|(verdict, outcome)| match (verdict, outcome) {
            (Some(rejected), _) => rejected,
            (None, Outcome::Accepted { seq }) => ItemOutcome::Accepted { seq },
            (None, Outcome::Duplicate { seq }) => ItemOutcome::Duplicate { seq },
            (None, Outcome::Quarantined { reason }) => ItemOutcome::Conflict { detail: reason },
        })
        .collect())
}

impl ItemOutcome {
    fn refused(&self) -> bool {
        matches!(self, ItemOutcome::Rejected { .. } | ItemOutcome::Conflict { .. })
    }
}

/// A single event that was refused is the request's answer: 400 for a rejection (with its
/// pointers), 409 for a conflict.
fn single_refusal(item: &ItemOutcome) -> Option<Problem> {
    match item {
        ItemOutcome::Rejected { detail, errors } => Some(
            Problem::bad_request(format!("The event was rejected and quarantined: {detail}"))
                .with_errors(errors.clone()),
        ),
        ItemOutcome::Conflict { detail } => Some(Problem::new(
            StatusCode::CONFLICT,
            format!("The event conflicts with one in the log and was quarantined: {detail}"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of an NDJSON body as the contract reads them: CRLF or LF, blank and
    /// whitespace-only lines skipped, the last line with or without its newline.
    #[test]
    fn an_ndjson_body_splits_into_its_non_blank_lines() {
        let lines = |body: &'static [u8]| -> Vec<Vec<u8>> {
            split(&Bytes::from_static(body), Framing::Lines).unwrap().iter().map(|l| l.to_vec()).collect()
        };
        assert_eq!(lines(b"{\"a\":1}\n{\"b\":2}\n"), [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(lines(b"{\"a\":1}\r\n\r\n  \t\n{\"b\":2}"), [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(lines(b" {\"a\":1} \r"), [b" {\"a\":1} ".to_vec()]);
        assert_eq!(lines(b"\n\r\n"), Vec::<Vec<u8>>::new());
        assert_eq!(lines(b""), Vec::<Vec<u8>>::new());
        // A carriage return inside a line is part of it (the validator refuses it).
        assert_eq!(lines(b"a\rb\nc"), [b"a\rb".to_vec(), b"c".to_vec()]);
    }
}
