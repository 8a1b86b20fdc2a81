//! `GET /v1/alerts/stream`: the alert outbox as server-sent events, for people and consoles
//! watching live (`evidence alerts --follow`). Each event is one change: its `id` the change
//! number, its `event` the activity (`create`, `update`, `close`), its `data` the change as
//! JSON with the alert as it stands. It starts at the outbox's head (only what happens from
//! now), at `?from=N`, or after the `Last-Event-ID` a reconnecting client sends; it ends when
//! the service stops. Like the sinks, it sends only changes on disk.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream};
use serde::Deserialize;

use super::{Api, Params, Problem};
use crate::governance::outbox::{self, Change};
use crate::store::Storage;

/// How often the stream looks for new changes.
const POLL: Duration = Duration::from_millis(200);

/// Changes read at once.
const READ: usize = 200;

pub(super) fn routes<S: Storage>() -> Router<Arc<Api<S>>> {
    Router::new().route("/v1/alerts/stream", get(alert_stream::<S>))
}

/// `?from=N`.
#[derive(Debug, Deserialize)]
pub(super) struct StreamParams {
    from: Option<u64>,
}

struct Follow<S: Storage> {
    api: Arc<Api<S>>,
    next: u64,
    ready: std::collections::VecDeque<Change>,
    durable: Option<outbox::Durable>,
}

/// Alert changes as they happen, as server-sent events.
#[utoipa::path(get, path = "/v1/alerts/stream", tag = "audit", params(
    ("from" = Option<u64>, Query, description = "The first change to send (0: every change since the ledger began); default: only changes from now. A `Last-Event-ID` header resumes after that change instead."),
), responses(
    (status = 200, description = "A stream of server-sent events, one per alert change: `id` the change number, `event` create, update or close, `data` the change (number, activity, alert) as JSON.", body = String, content_type = "text/event-stream"),
    (status = 400, description = "A parameter is wrong.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn alert_stream<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    headers: HeaderMap,
    Params(p): Params<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("Last-Event-ID is not a change number."))?
                + 1,
        ),
    };
    let next = match resume.or(p.from) {
        Some(n) => n,
        None => outbox::head(&*api.store).map_err(|e| Problem::internal(e.kind(), e))?,
    };
    let follow = Follow { api, next, ready: Default::default(), durable: Some(outbox::Durable::default()) };
    let events = stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(change) = f.ready.pop_front() {
                let event = Event::default()
                    .id(change.number.to_string())
                    .event(change.activity.name())
                    .json_data(&change)
                    .unwrap_or_else(|_| Event::default().comment("a change that does not serialize"));
                return Some((Ok(event), f));
            }
            if *f.api.stopped.borrow() {
                return None;
            }
            // Reading (and flushing, to hand out only changes on disk) blocks: off the runtime.
            let (store, next, mut durable) = (Arc::clone(&f.api.store), f.next, f.durable.take().unwrap_or_default());
            let read = tokio::task::spawn_blocking(move || (durable.read(&*store, next, READ), durable)).await;
            let Ok((read, durable)) = read else { return None };
            f.durable = Some(durable);
            match read {
                Ok(changes) if !changes.is_empty() => {
                    f.next = changes.last().map_or(f.next, |c| c.number + 1);
                    f.ready.extend(changes);
                }
                Ok(_) => {
                    let mut stopped = f.api.stopped.clone();
                    let _ = tokio::time::timeout(POLL, stopped.wait_for(|s| *s)).await;
                }
                Err(error) => {
                    tracing::warn!(message = "The alert stream cannot read the outbox; ending it.", %error);
                    return None;
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
