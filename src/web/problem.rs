//! RFC 9457 problem details (`application/problem+json`) for the JSON APIs. The `type`
//! is a stable URN (`urn:eidgate:problem:<name>`); 5xx details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem response.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// Stable type URN.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Human-readable detail (never internals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Seconds to wait before retrying (also sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// An operator tried to exceed their rights: the router's audit layer records it as
    /// `operator.access_denied` (R-LOG-4, R-SEC-3).
    #[serde(skip)]
    pub denied: bool,
}

/// Response extension of a [`Problem`] marked `denied`: the reason, for the audit layer.
#[derive(Clone, Debug)]
pub struct Denied(pub String);

impl Problem {
    /// A problem of type `name` with `status` and `title`.
    pub fn new(status: StatusCode, name: &str, title: &str) -> Self {
        Self {
            kind: format!("urn:eidgate:problem:{name}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            retry_after: None,
            denied: false,
        }
    }

    /// Marks an attempt to exceed granted rights (audited by the router).
    pub fn denied(mut self) -> Self {
        self.denied = true;
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400 bad request.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").detail(detail)
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
    }

    /// 503: a dependency is down, the request failed closed.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service temporarily unavailable",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        if self.denied {
            let reason = self.detail.clone().unwrap_or_else(|| self.title.clone());
            response.extensions_mut().insert(Denied(reason));
        }
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Parses a JSON request body: `application/json` required (415 otherwise), a JSON object
/// at the top ([`crate::domain::wire::object`]; an array of the fields in order is
/// refused), malformed or unexpected fields are 400 with the category of the error
/// (never the input echoed).
pub fn parse_json<T: for<'de> serde::Deserialize<'de>>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<T, Problem> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Expected application/json",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    crate::domain::wire::object(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e: serde_json::Error| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "io",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected or missing fields",
                serde_json::error::Category::Eof => "truncated",
            };
            Problem::bad_request(format!("malformed JSON body: {what}"))
        })
}
