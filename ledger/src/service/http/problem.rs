//! RFC 9457 problem details: every error the API answers is `application/problem+json` with a
//! title, the status, one sentence of detail and, where input was wrong, the JSON pointer of
//! each problem.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ErrorKind;

/// One thing wrong with the input: where (a JSON pointer, or a parameter's name) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Invalid {
    /// The JSON pointer of the problem (within the event, or the request's body).
    pub pointer: String,
    /// What is wrong, in a sentence.
    pub detail: String,
}

/// A problem details document.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ProblemDetails")]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong here, in a sentence.
    pub detail: String,
    /// Each thing wrong with the input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Invalid>,
    /// Seconds to wait before retrying (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with `status` and `detail`; its title is the status's reason phrase.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 with a sentence.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404 with a sentence.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    /// 400 naming a query parameter that is wrong.
    pub fn parameter(name: &str, detail: impl std::fmt::Display) -> Self {
        let detail = format!("{name}: {detail}");
        Problem {
            errors: vec![Invalid { pointer: format!("?{name}"), detail: detail.clone() }],
            ..Problem::bad_request(detail)
        }
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(detail: impl Into<String>, retry_after: u64) -> Self {
        Problem { retry_after: Some(retry_after), ..Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail) }
    }

    /// With these input problems.
    pub fn with_errors(mut self, errors: Vec<Invalid>) -> Self {
        self.errors = errors;
        self
    }

    /// A failure of the ledger itself, by its kind: busy or full disk are 503s a client may
    /// retry; damage and engine failures are 500s.
    pub fn internal(kind: ErrorKind, detail: impl std::fmt::Display) -> Self {
        match kind {
            ErrorKind::Busy | ErrorKind::FullDisk => Problem::unavailable(detail.to_string(), 5),
            _ => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, detail.to_string()),
        }
    }
}

impl From<crate::query::PageError> for Problem {
    /// A page that cannot be read: a cursor that is not the list's is the client's mistake;
    /// views that cannot be read are the ledger's.
    fn from(e: crate::query::PageError) -> Self {
        match e {
            crate::query::PageError::Cursor(c) => Problem::parameter("cursor", c),
            crate::query::PageError::View(e) => Problem::internal(e.kind(), e),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("a problem serializes");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
