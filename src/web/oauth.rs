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
    let mut r = (status, Json(value)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
