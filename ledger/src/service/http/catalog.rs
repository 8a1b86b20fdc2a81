//! Finding things over HTTP: `GET /v1/artifacts` (by kind, name prefix or digest, paged) and
//! `GET /v1/apps` (every app and env with what is live now), as `evidence query artifacts`
//! and `evidence query apps` answer them.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use evidence_schemas::ArtifactKind;
use serde::Deserialize;

use super::records::page_size;
use super::{Api, Params, Problem};
use crate::query::{self, AppList, ArtifactList, ArtifactSearch};
use crate::store::Storage;

pub(super) fn routes<S: Storage>() -> Router<Arc<Api<S>>> {
    Router::new().route("/v1/artifacts", get(artifacts::<S>)).route("/v1/apps", get(apps::<S>))
}

/// `?kind=&name=&digest=&limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ArtifactParams {
    kind: Option<String>,
    name: Option<String>,
    digest: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The artifacts the ledger knows, by kind, name prefix or digest, a page at a time.
#[utoipa::path(get, path = "/v1/artifacts", tag = "find", params(
    ("kind" = Option<String>, Query, description = "One kind: model, prompt, tool_schema, index, route, dataset or config."),
    ("name" = Option<String>, Query, description = "Names starting with this."),
    ("digest" = Option<String>, Query, description = "Versions with this digest (registered, re-registered, promoted or deployed)."),
    ("limit" = Option<usize>, Query, description = "Artifacts per page, 1 to 1000 (default 100)."),
    ("cursor" = Option<String>, Query, description = "The `next` of the previous page."),
), responses(
    (status = 200, description = "A page of artifacts.", body = ArtifactList),
    (status = 400, description = "A parameter is wrong.", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn artifacts<S: Storage>(
    State(api): State<Arc<Api<S>>>,
    Params(p): Params<ArtifactParams>,
) -> Result<Json<ArtifactList>, Problem> {
    let kind = p
        .kind
        .as_deref()
        .map(|k| {
            serde_json::from_value::<ArtifactKind>(serde_json::Value::String(k.to_string()))
                .map_err(|_| Problem::parameter("kind", format!("{k:?} is not an artifact kind")))
        })
        .transpose()?;
    let search = ArtifactSearch { kind, name: p.name, digest: p.digest };
    let list = query::artifacts(&*api.store, &search, p.cursor.as_deref(), page_size(p.limit)?)?;
    Ok(Json(list))
}

/// Every app and env the ledger saw a deploy to, with what is live in each now.
#[utoipa::path(get, path = "/v1/apps", tag = "find", responses(
    (status = 200, description = "The apps.", body = AppList),
))]
pub(super) async fn apps<S: Storage>(State(api): State<Arc<Api<S>>>) -> Result<Json<AppList>, Problem> {
    let now = chrono::Utc::now().timestamp_micros();
    Ok(Json(query::apps(&*api.store, now).map_err(|e| Problem::internal(e.kind(), e))?))
}
