//! `GET /audit/keys` (R-LOG-2, issue 17): the public `audit-sign` keys, active and retired,
//! as a JWKS whose `kid`s are RFC 7638 thumbprints. A supervisor pins them once and checks
//! exported bundles offline with `eidgate audit verify-bundle FILE --trust KEYS`.

use axum::extract::FromRef;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::hsm::AuditSigner as _;

/// The route.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::jobs::Jobs: FromRef<S>,
{
    Router::new().route("/audit/keys", get(get_keys))
}

async fn get_keys(State(app): State<crate::jobs::Jobs>) -> Response {
    let keys = app.hsm.as_ref().map(|h| h.audit_keys()).unwrap_or_default();
    let mut r = Json(super::trust::jwks(&keys)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r
}
