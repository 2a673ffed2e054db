//! How the OAuth JSON endpoints answer (RFC 6749 §5.1, §5.2): errors as
//! `{"error", "error_description"}` with their status and `WWW-Authenticate`, and every
//! answer uncached.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::oidc::error::{ErrorCode, OAuthError};

/// An OAuth error as the JSON endpoints answer it (RFC 6749 §5.2).
pub struct OAuthJson(pub OAuthError);

impl IntoResponse for OAuthJson {
    fn into_response(self) -> Response {
        self.0.log_cause();
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut body = json!({ "error": self.0.code.as_str() });
        if let (Some(d), Some(obj)) = (&self.0.description, body.as_object_mut()) {
            obj.insert("error_description".into(), json!(d));
        }
        let mut r = (status, Json(body)).into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self.0.code {
            ErrorCode::InvalidClient => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"eidgate\""),
                );
            }
            ErrorCode::InvalidToken => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            _ => {}
        }
        r
    }
}

impl From<OAuthError> for OAuthJson {
    fn from(e: OAuthError) -> Self {
        OAuthJson(e)
    }
}

/// A JSON answer that no cache keeps (token, introspection and revocation answers).
pub fn json_no_store(value: impl serde::Serialize, status: StatusCode) -> Response {
    // Sized once for a token response (an ID token and its tokens) and for the security
    // headers the router adds, instead of growing both step by step (issue 22).
    let mut body = Vec::with_capacity(1024);
    if let Err(e) = serde_json::to_writer(&mut body, &value) {
        tracing::error!(error = %e, "a JSON answer could not be serialised");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut r = (status, body).into_response();
    let headers = r.headers_mut();
    headers.reserve(RESPONSE_HEADERS);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Headers a JSON answer ends up with: its own three, the security headers (up to six),
/// `content-length`, and room for one more (`dpop-nonce`, `www-authenticate`).
const RESPONSE_HEADERS: usize = 12;
