//! `GET /v1/export`: an evidence bundle as a `.tar.gz` stream (see `crate::export`). The
//! export runs on a blocking thread, reading the log at the published size beside the
//! writer; the archive streams out as it is written. Unsigned entries are first covered by a
//! checkpoint the writer cuts. A scope that finds nothing is a 404 before any byte is sent.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Api, Params, Problem};
use crate::export::{self, ExportError, ExportOptions, ScopeParams, TarGzOut};
use crate::log::LogAt;
use crate::store::Storage;

pub(super) fn routes<S: Storage>() -> Router<Arc<Api<S>>> {
    Router::new().route("/v1/export", get(export_bundle::<S>))
}

/// `?since_size=N`.
#[derive(Debug, Deserialize)]
pub(super) struct SinceParams {
    since_size: Option<u64>,
}

/// What the export thread sends: the archive's bytes, or why it stopped.
enum Piece {
    Chunk(Bytes),
    Failed(ExportError),
}

/// Hands what is written to the response, a chunk at a time.
struct ToBody(mpsc::Sender<Piece>);

impl Write for ToBody {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Piece::Chunk(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn problem(e: ExportError) -> Problem {
    match e {
        ExportError::NotFound(m) => Problem::not_found(m),
        ExportError::Since(_) => Problem::parameter("since_size", e),
        ExportError::Log(e) => super::records::log_problem(e),
        e => Problem::internal(crate::error::ErrorKind::Engine, e),
    }
}

/// An evidence bundle of one scope.
#[utoipa::path(get, path = "/v1/export", tag = "audit", params(
    ScopeParams,
    ("since_size" = Option<u64>, Query, description = "The size of the checkpoint of an earlier bundle: this one carries the consistency proof from it."),
), responses(
    (status = 200, description = "The bundle as a gzip-compressed tar archive (`evidence-verify bundle` checks it).", body = Vec<u8>, content_type = "application/gzip"),
    (status = 400, description = "Not exactly one scope, or a parameter is wrong.", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "The scope's artifact or alert is not in the ledger, or there is no checkpoint of that size.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn export_bundle<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(scope): Params<ScopeParams>,
    Params(since): Params<SinceParams>,
) -> Result<Response, Problem> {
    let now = chrono::Utc::now();
    let scope = scope.scope(now).map_err(|e| Problem::bad_request(e.to_string()))?;
    let (size, latest) = covered(&api).await?;
    let since = match since.since_size {
        None => None,
        Some(n) => Some(
            LogAt::new(&*api.store, size, latest)
                .checkpoint_note(n)
                .map_err(super::records::log_problem)?
                .ok_or_else(|| Problem::not_found(format!("There is no checkpoint of {n} entries.")))?,
        ),
    };
    let options = ExportOptions { since, exported_at: now.to_rfc3339() };
    let (tx, mut rx) = mpsc::channel(16);
    let store = Arc::clone(&api.store);
    tokio::task::spawn_blocking(move || {
        let log = LogAt::new(&*store, size, latest);
        let mut out =
            TarGzOut::new(std::io::BufWriter::with_capacity(64 << 10, ToBody(tx.clone())), now.timestamp() as u64);
        let done = export::export(&*store, &log, &scope, &options, &mut out, &mut |_, _| {});
        // On failure, say so before `out` is dropped (dropping it writes what it buffered).
        let done = match done {
            Ok(_) => out.finish().and_then(|mut w| w.flush()).map_err(ExportError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            let _ = tx.blocking_send(Piece::Failed(e));
        }
    });
    let first = match rx.recv().await {
        Some(Piece::Chunk(bytes)) => bytes,
        Some(Piece::Failed(e)) => return Err(problem(e)),
        None => return Err(Problem::internal(crate::error::ErrorKind::Engine, "the export ended without a byte")),
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await? {
            Piece::Chunk(bytes) => Some((Ok(bytes), rx)),
            Piece::Failed(e) => {
                tracing::warn!(message = "An export failed while streaming; the archive is cut short.", error = %e);
                Some((Err(std::io::Error::other(e.to_string())), rx))
            }
        }
    });
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(first)]).chain(rest);
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"evidence-bundle.tar.gz\""),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The published size and a checkpoint covering it: the writer cuts one first when entries
/// are unsigned.
async fn covered<S: Storage>(api: &Api<S>) -> Result<(u64, u64), Problem> {
    let published = api.writer.published();
    if published.size == published.latest {
        return Ok((published.size, published.latest));
    }
    let busy = || Problem::unavailable("The writer is busy; ask again shortly.", 1);
    let cut = api
        .writer
        .try_run(|ledger| ledger.checkpoint_now().map(|_| (ledger.log().size(), ledger.log().latest_size())))
        .ok_or_else(busy)?;
    cut.await.map_err(|_| busy())?.map_err(super::records::log_problem)
}
