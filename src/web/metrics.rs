//! `/metrics` (see [`crate::monitor::metrics`]; every request is measured by
//! [`super::layers::Enforce`]). Who may read it: a peer on a loopback address when
//! `metrics.loopback` (the default; a scraper on the same host or a sidecar), or anyone
//! presenting `Authorization: Bearer <metrics token>` (compared in constant time). Anyone
//! else gets the same 404 as an unknown path.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use subtle::ConstantTimeEq as _;

use super::Problem;
use crate::app::App;

/// `GET /metrics`: the exposition text, for allowed readers only.
pub async fn get_metrics(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !allowed(&app, peer, &headers) {
        tracing::warn!(peer = %peer.ip(), "metrics read refused");
        return Problem::not_found().into_response();
    }
    match app.metrics.encode() {
        Ok(text) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics encoding failed");
            Problem::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            )
            .into_response()
        }
    }
}

fn allowed(app: &App, peer: SocketAddr, headers: &HeaderMap) -> bool {
    let config = &app.config.metrics;
    if !config.enabled {
        return false;
    }
    if config.loopback && peer.ip().is_loopback() {
        return true;
    }
    let Some(token) = &config.token else {
        return false;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(presented.as_bytes().ct_eq(token.expose_secret().as_bytes()))
}
