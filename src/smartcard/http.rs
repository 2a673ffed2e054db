//! The smartcard routes (DESIGN "Smartcard login" and "Activation API", CONTRACT):
//! challenge and token steps of login and activation, personalisation by an issuing
//! officer, and the CA certificate and CRL (R-LOG-1) for relying software.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ca::{CA_PATH, CRL_PATH};
use super::ceremony::{self, ActivationFailure, Scope};
use crate::authn::ceremony::RequestMeta;
use crate::authn::flow::{self, BROWSER_COOKIE};
use crate::authn::AuthnError;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::LifecycleError;
use crate::web::middleware::cookie;
use crate::web::Problem;

/// Routes of the smartcard means.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::smartcard::state::Cards: FromRef<S>,
    crate::admin::state::Admin: FromRef<S>,
{
    Router::new()
        .route("/authn/flows/{flow}/smartcard/challenge", post(post_login_challenge))
        .route("/authn/flows/{flow}/smartcard/token", post(post_login_token))
        .route("/activation/{id}/smartcard/challenge", post(post_activation_challenge))
        .route("/activation/{id}/smartcard/token", post(post_activation_token))
        .route("/admin/v1/means/{id}/certificate", post(post_certificate))
        .route(CA_PATH, get(get_ca))
        .route(CRL_PATH, get(get_crl))
        .route("/static/login-smartcard.js", get(get_login_js))
}

/// The smartcard part of the login page.
async fn get_login_js() -> Response {
    let mut r = include_str!("../../static/login-smartcard.js").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r
}

fn no_store(body: serde_json::Value) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn post_login_challenge(
    State(app): State<crate::smartcard::state::Cards>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let flow = flow::load(
        &app.authn,
        &id,
        cookie(&headers, BROWSER_COOKIE, app.config.secure_cookies()),
    )
    .await?;
    let nonce = ceremony::challenge(&app, Scope::Flow(&flow.id))
        .await
        .map_err(AuthnError::from)?;
    Ok(no_store(json!({ "nonce": nonce })))
}

/// The token as text: what is not UTF-8 counts as empty (refused for its size).
fn body_text(body: &Bytes) -> &str {
    std::str::from_utf8(body).unwrap_or("")
}

async fn post_login_token(
    State(app): State<crate::smartcard::state::Cards>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let flow = flow::load(
        &app.authn,
        &id,
        cookie(&headers, BROWSER_COOKIE, app.config.secure_cookies()),
    )
    .await?;
    let meta = RequestMeta { ip: peer.ip() };
    let completed = ceremony::login(&app, &flow, body_text(&body), &meta).await?;
    Ok(crate::web::login::done(&app.config, completed))
}

impl From<ActivationFailure> for Problem {
    fn from(e: ActivationFailure) -> Self {
        match e {
            ActivationFailure::Lifecycle(e) => e.into(),
            ActivationFailure::Refused => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "The card could not be verified",
            ),
        }
    }
}

async fn post_activation_challenge(
    State(app): State<crate::smartcard::state::Cards>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let nonce = ceremony::activation_challenge(&app, &id).await?;
    Ok(no_store(json!({ "nonce": nonce })))
}

async fn post_activation_token(
    State(app): State<crate::smartcard::state::Cards>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let means = ceremony::activation_token(&app, &id, body_text(&body)).await?;
    Ok(Json(json!({"state": "active", "means": means})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateBody {
    /// PEM (`CERTIFICATE REQUEST`) or base64 DER.
    csr: String,
}

async fn post_certificate(
    State(app): State<crate::smartcard::state::Cards>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<CertificateBody>,
) -> Result<Response, Problem> {
    let id = id.parse().map_err(|_| Problem::not_found())?;
    let csr = if body.csr.trim_start().starts_with("-----BEGIN") {
        body.csr.into_bytes()
    } else {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(body.csr.trim())
            .map_err(|_| LifecycleError::BadRequest("csr must be PEM or base64 DER".into()))?
    };
    let issued = super::issuance::personalise(&app, &Actor::Operator(op), id, &csr).await?;
    let mut r = (StatusCode::CREATED, Json(issued)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn get_ca(State(app): State<crate::smartcard::state::Cards>) -> Response {
    let mut r = app.smartcard.ca.certificate().to_vec().into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pkix-cert"));
    r
}

async fn get_crl(State(app): State<crate::smartcard::state::Cards>) -> Result<Response, Problem> {
    let der = match super::ca::current_crl(&app).await {
        Ok(der) => der,
        Err(e) => {
            tracing::error!(error = %e, "CRL unavailable");
            return Err(Problem::unavailable());
        }
    };
    let mut r = der.as_ref().clone().into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pkix-crl"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    Ok(r)
}
