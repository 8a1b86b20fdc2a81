//! The log over HTTP: entries (canonical event, digest, chain hash, receive time, origin),
//! inclusion and consistency proofs, the signed checkpoint note (byte for byte what
//! `evidence checkpoint` prints), the quarantine and the status. Lists are pages: `limit`
//! (default 100, at most 1000) and the opaque `cursor` of the previous page's `next`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_verifier::entry::EntryRef;
use serde::{Deserialize, Serialize};

use super::{Api, Params, Problem, Segments};
use crate::governance::outbox;
use crate::log::{ConsistencyProof, Extension, InclusionProof, LogError, QuarantineRecord, Status};
use crate::service::audit::SelfAudit;
use crate::service::siem::SinkStatus;
use crate::store::Storage;

pub(super) fn routes<S: Storage>() -> Router<Arc<Api<S>>> {
    Router::new()
        .route("/v1/status", get(status::<S>))
        .route("/v1/checkpoint", get(checkpoint::<S>))
        .route("/v1/entries", get(entries::<S>))
        .route("/v1/entries/{seq}", get(entry::<S>))
        .route("/v1/proofs/inclusion", get(inclusion::<S>))
        .route("/v1/proofs/consistency", get(consistency::<S>))
        .route("/v1/quarantine", get(quarantine::<S>))
        .route("/v1/integrity", get(integrity::<S>))
}

/// A page size: `limit`, default 100, at most 1000.
pub(super) fn page_size(limit: Option<usize>) -> Result<usize, Problem> {
    match limit.unwrap_or(100) {
        0 => Err(Problem::parameter("limit", "must be at least 1")),
        n if n > 1000 => Err(Problem::parameter("limit", format!("{n} is over the most a page holds, 1000"))),
        n => Ok(n),
    }
}

/// A numeric cursor (the next position of a list).
pub(super) fn numeric_cursor(cursor: Option<&str>) -> Result<Option<u64>, Problem> {
    cursor
        .map(|c| c.parse().map_err(|_| Problem::parameter("cursor", format!("{c:?} is not a cursor of this list"))))
        .transpose()
}

/// A log failure as an answer: what the caller asked for that does not exist is 404.
pub(super) fn log_problem(e: LogError) -> Problem {
    match e.kind() {
        crate::error::ErrorKind::Caller => Problem::not_found(e.to_string()),
        kind => Problem::internal(kind, e),
    }
}

/// The service's status: the log's, and how far the views and appends are.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ServiceStatus {
    /// The log's summary.
    #[serde(flatten)]
    pub log: Status,
    /// Entries the views have projected.
    pub views_watermark: u64,
    /// Why the last append failed, while none succeeded since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append_failure: Option<String>,
    /// Changes in the alert outbox (the number the next one gets).
    pub alert_changes: u64,
    /// Each SIEM sink's delivery: its cursor, lag, last delivery and last error.
    pub sinks: Vec<SinkStatus>,
}

/// The log's status: entries, duplicates, quarantine, checkpoint, keys, source positions, and
/// how far the views are.
#[utoipa::path(get, path = "/v1/status", tag = "log", responses(
    (status = 200, description = "The status.", body = ServiceStatus),
))]
pub(super) async fn status<S: Storage>(State(api): State<Arc<Api<S>>>) -> Json<ServiceStatus> {
    let p = api.writer.published();
    let head = outbox::head(&*api.store).unwrap_or(0);
    let sinks = api.sinks.iter().map(|h| h.status(head)).collect();
    Json(ServiceStatus {
        log: p.status,
        views_watermark: p.watermark,
        append_failure: p.append_failure,
        alert_changes: head,
        sinks,
    })
}

/// The latest signed checkpoint note, byte for byte what `evidence checkpoint` prints.
#[utoipa::path(get, path = "/v1/checkpoint", tag = "log", responses(
    (status = 200, description = "The signed note (C2SP tlog-checkpoint).", body = String, content_type = "text/plain"),
    (status = 404, description = "No checkpoint yet.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn checkpoint<S: Storage>(State(api): State<Arc<Api<S>>>) -> Result<Response, Problem> {
    let note = api.log().latest_note().map_err(log_problem)?;
    let note = note.ok_or_else(|| Problem::not_found("The log has no checkpoint yet."))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// An entry as stored.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EntryAnswer {
    /// Its sequence number.
    pub seq: u64,
    /// The event, its canonical JSON.
    #[schemars(with = "serde_json::Value")]
    pub event: Box<serde_json::value::RawValue>,
    /// blake3 of the canonical event (base64).
    pub digest: String,
    /// The entry's chain hash (base64).
    pub chain: String,
    /// When the ledger received it (RFC 3339, UTC).
    pub received: String,
    /// Where it came from.
    pub origin: String,
}

fn entry_answer(seq: u64, record: &[u8]) -> Result<EntryAnswer, Problem> {
    let damaged = |m: String| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, format!("entry {seq}: {m}"));
    let entry = EntryRef::decode(record).map_err(|e| damaged(e.to_string()))?;
    let text = std::str::from_utf8(entry.event).map_err(|e| damaged(e.to_string()))?;
    let event = serde_json::value::RawValue::from_string(text.to_string()).map_err(|e| damaged(e.to_string()))?;
    let received = chrono::DateTime::from_timestamp_micros(entry.received_micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default();
    Ok(EntryAnswer {
        seq,
        event,
        digest: B64.encode(entry.digest),
        chain: B64.encode(entry.chain),
        received,
        origin: entry.origin.to_string(),
    })
}

/// One entry: the canonical event, its digest, chain hash, receive time and origin.
#[utoipa::path(get, path = "/v1/entries/{seq}", tag = "log", params(("seq" = u64, Path, description = "The entry's sequence number.")), responses(
    (status = 200, description = "The entry.", body = EntryAnswer),
    (status = 404, description = "No such entry.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn entry<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Segments(seq): Segments<u64>,
) -> Result<Json<EntryAnswer>, Problem> {
    let log = api.log();
    let record = log.entry(seq).map_err(log_problem)?;
    let record =
        record.ok_or_else(|| Problem::not_found(format!("There is no entry {seq}; the log holds {}.", log.size())))?;
    Ok(Json(entry_answer(seq, &record)?))
}

/// `?from=&limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EntriesParams {
    from: Option<u64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of entries.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EntriesPage {
    /// The entries, in order.
    pub entries: Vec<EntryAnswer>,
    /// The cursor of the next page, when there are more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Entries in order, a page at a time.
#[utoipa::path(get, path = "/v1/entries", tag = "log", params(
    ("from" = Option<u64>, Query, description = "The first entry (default 0)."),
    ("limit" = Option<usize>, Query, description = "Entries per page, 1 to 1000 (default 100)."),
    ("cursor" = Option<String>, Query, description = "The `next` of the previous page."),
), responses(
    (status = 200, description = "A page of entries.", body = EntriesPage),
    (status = 400, description = "A parameter is wrong.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn entries<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<EntriesParams>,
) -> Result<Json<EntriesPage>, Problem> {
    let limit = page_size(p.limit)?;
    let from = numeric_cursor(p.cursor.as_deref())?.or(p.from).unwrap_or(0);
    let log = api.log();
    let mut entries = Vec::new();
    for item in log.entries(from).take(limit) {
        let (seq, record) = item.map_err(log_problem)?;
        entries.push(entry_answer(seq, &record)?);
    }
    let reached = entries.last().map_or(from, |e| e.seq + 1);
    let next = (entries.len() == limit && reached < log.size()).then(|| reached.to_string());
    Ok(Json(EntriesPage { entries, next }))
}

/// `?seq=&size=`.
#[derive(Debug, Deserialize)]
pub(super) struct InclusionParams {
    seq: u64,
    size: Option<u64>,
}

/// The inclusion proof of an entry in a signed checkpoint (RFC 9162), with the note.
#[utoipa::path(get, path = "/v1/proofs/inclusion", tag = "log", params(
    ("seq" = u64, Query, description = "The entry."),
    ("size" = Option<u64>, Query, description = "The checkpoint's tree size (default: the latest)."),
), responses(
    (status = 200, description = "The proof.", body = InclusionProof),
    (status = 404, description = "No checkpoint of that size, or the entry is not yet in one.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn inclusion<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<InclusionParams>,
) -> Result<Response, Problem> {
    Ok(Json(api.log().inclusion_proof(p.seq, p.size).map_err(log_problem)?).into_response())
}

/// `?from=&to=`.
#[derive(Debug, Deserialize)]
pub(super) struct ConsistencyParams {
    from: u64,
    to: Option<u64>,
}

/// The consistency proof between two signed checkpoints (RFC 9162), with both notes.
#[utoipa::path(get, path = "/v1/proofs/consistency", tag = "log", params(
    ("from" = u64, Query, description = "The earlier checkpoint's tree size."),
    ("to" = Option<u64>, Query, description = "The later one's (default: the latest)."),
), responses(
    (status = 200, description = "The proof.", body = ConsistencyProof),
    (status = 404, description = "No checkpoint of that size.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn consistency<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<ConsistencyParams>,
) -> Result<Response, Problem> {
    Ok(Json(api.log().consistency(p.from, p.to).map_err(log_problem)?).into_response())
}

/// `?limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct PageParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of quarantine records.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct QuarantinePage {
    /// The records, in arrival order.
    pub records: Vec<QuarantineRecord>,
    /// The cursor of the next page, when there are more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Quarantined records, in arrival order, with every problem and the bytes as received.
#[utoipa::path(get, path = "/v1/quarantine", tag = "log", params(
    ("limit" = Option<usize>, Query, description = "Records per page, 1 to 1000 (default 100)."),
    ("cursor" = Option<String>, Query, description = "The `next` of the previous page."),
), responses(
    (status = 200, description = "A page of records.", body = QuarantinePage),
))]
pub(super) async fn quarantine<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<PageParams>,
) -> Result<Json<QuarantinePage>, Problem> {
    let limit = page_size(p.limit)?;
    let from = numeric_cursor(p.cursor.as_deref())?.unwrap_or(0);
    let records = api.log().quarantine(from, limit + 1).map_err(log_problem)?;
    let next = records.get(limit).map(|r| r.number.to_string());
    Ok(Json(QuarantinePage { records: records.into_iter().take(limit).collect(), next }))
}

/// `?checkpoint=`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct IntegrityParams {
    checkpoint: Option<String>,
}

/// Audit question 6: can the log be trusted, and does it extend what an auditor saw?
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntegrityAnswer {
    /// Entries in the log.
    pub entries: u64,
    /// The tree size of the latest signed checkpoint.
    pub checkpoint_size: u64,
    /// The latest signed checkpoint note (none before the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The last self-audit: every entry and checkpoint checked as `evidence-verify` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_audit: Option<SelfAudit>,
    /// Given an auditor's saved checkpoint: whether the log extends it, with the proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
}

/// Audit question 6: the latest checkpoint and the last self-audit's result and time; given a
/// checkpoint an auditor saved, the consistency proof from it to now, or a plain answer that
/// the log does not extend it.
#[utoipa::path(get, path = "/v1/integrity", tag = "audit", params(
    ("checkpoint" = Option<String>, Query, description = "A signed checkpoint note saved earlier (its text, URL-encoded)."),
), responses(
    (status = 200, description = "The integrity answer.", body = IntegrityAnswer),
))]
pub(super) async fn integrity<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<IntegrityParams>,
) -> Result<Json<IntegrityAnswer>, Problem> {
    let log = api.log();
    let checkpoint = log.latest_note().map_err(log_problem)?;
    let extension = match p.checkpoint.as_deref() {
        Some(note) => Some(log.extends(note).map_err(log_problem)?),
        None => None,
    };
    let self_audit = api.audit.read().expect("audit lock").clone();
    let published = api.writer.published();
    Ok(Json(IntegrityAnswer {
        entries: published.size,
        checkpoint_size: published.latest,
        checkpoint,
        self_audit,
        extension,
    }))
}
