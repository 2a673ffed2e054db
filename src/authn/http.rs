//! The login API (DESIGN "Login API", CONTRACT): JSON in, JSON or problem+json out.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ceremony::{self, Completed, RequestMeta, Step};
use super::flow::{self, LoginFlow, BROWSER_COOKIE};
use super::session::SESSION_COOKIE;
use super::AuthnError;
use crate::app::App;
use crate::domain::claims;
use crate::domain::loa::Loa;
use crate::domain::secret::Password;
use crate::oidc::code;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::web::middleware::{cookie, set_cookie};
use crate::web::problem::parse_json;
use crate::web::Problem;

/// Routes of the login API.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/authn/flows/{flow}", get(get_flow))
        .route("/authn/flows/{flow}/password", post(post_password))
        .route("/authn/flows/{flow}/totp", post(post_totp))
        .route("/authn/flows/{flow}/cancel", post(post_cancel))
}

impl From<AuthnError> for Problem {
    fn from(e: AuthnError) -> Self {
        match e {
            AuthnError::FlowNotFound => Problem::new(
                StatusCode::NOT_FOUND,
                "flow-not-found",
                "Login flow not found or expired",
            ),
            AuthnError::InvalidCredentials => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid-credentials", "Invalid credentials")
            }
            AuthnError::MeansNotActive => Problem::new(
                StatusCode::FORBIDDEN,
                "means-not-active",
                "This means cannot be used to log in",
            ),
            AuthnError::TooManyAttempts(secs) => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-many-attempts", "Too many attempts");
                p.retry_after = Some(secs);
                p
            }
            AuthnError::BadRequest(why) => Problem::bad_request(why),
            AuthnError::Unavailable => Problem::unavailable(),
        }
    }
}

async fn load(app: &App, id: &str, headers: &HeaderMap) -> Result<LoginFlow, Problem> {
    Ok(flow::load(app, id, cookie(headers, BROWSER_COOKIE)).await?)
}

fn methods_for(loa: Loa) -> Vec<&'static str> {
    // Only methods that can reach the requested level are offered.
    let mut methods = Vec::new();
    if loa <= Loa::Substantial {
        methods.push("password_totp");
    }
    if loa <= Loa::Low {
        methods.push("password");
    }
    methods
}

async fn get_flow(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let flow = load(&app, &id, &headers).await?;
    let requested = flow.requested_loa();
    let client = app
        .store
        .client(&flow.request.client_id)
        .await
        .map_err(AuthnError::from)?
        .ok_or(AuthnError::FlowNotFound)?;
    // The claims this login would release (DESIGN "Login API", R-DATA-4): requested by
    // scope or individually, and allowed for the client. Not the scopes themselves.
    let mut individually = flow.request.claims.userinfo.clone();
    individually.extend(flow.request.claims.id_token.iter().cloned());
    let claims: Vec<&str> = claims::requested_names(flow.request.scope.iter().map(String::as_str), &individually)
        .into_iter()
        .filter(|name| *name != "sub" && client.allowed_claims.iter().any(|a| a == name))
        .collect();
    Ok(Json(json!({
        "client_name": flow.client_name,
        "requested_loa": requested.short(),
        "methods": methods_for(requested),
        "claims": claims,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    identifier: String,
    password: Password,
}

fn done(app: &App, completed: Completed) -> Response {
    let mut response = Json(json!({ "next": "done", "redirect_to": completed.redirect_to })).into_response();
    if let Some(value) = completed.session_cookie {
        let max_age = crate::oidc::token::secs(app.config.session.max_age_low.max(app.config.session.max_age_high));
        if let Some(c) = set_cookie(SESSION_COOKIE, &value, max_age, app.config.issuer.starts_with("https:")) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    response
}

async fn post_password(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let flow = load(&app, &id, &headers).await?;
    let body: PasswordBody = parse_json(&headers, &body)?;
    let meta = RequestMeta { ip: peer.ip() };
    match ceremony::password(&app, &flow, &body.identifier, body.password, &meta).await? {
        Step::Done(completed) => Ok(done(&app, completed)),
        Step::Next(next) => Ok(Json(json!({ "next": next })).into_response()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpBody {
    code: Password,
}

async fn post_totp(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let flow = load(&app, &id, &headers).await?;
    let body: TotpBody = parse_json(&headers, &body)?;
    let meta = RequestMeta { ip: peer.ip() };
    let completed = ceremony::totp(&app, &flow, body.code.expose(), &meta).await?;
    Ok(done(&app, completed))
}

async fn post_cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let flow = load(&app, &id, &headers).await?;
    if !flow::finish(&app, &flow).await? {
        return Err(AuthnError::FlowNotFound.into());
    }
    let error = OAuthError::new(ErrorCode::AccessDenied, "the holder cancelled the login");
    let to = code::error_redirect(
        &flow.request.redirect_uri,
        flow.request.state.as_deref(),
        &error,
        &app.config.issuer,
    );
    Ok(done(
        &app,
        Completed {
            redirect_to: to,
            session_cookie: None,
        },
    ))
}
