//! HTTP of the helpdesk API. `POST …/suspend|revoke|reactivate` need an
//! `Idempotency-Key` header; the answer is 200 only after the change is durable; a
//! repeated request gets the same answer; the same key with another request is 422.

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{console, openapi, service};
use crate::domain::ids::MeansId;
use crate::domain::means::proof::Verification;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::approvals;
use crate::lifecycle::service::{change_status, Idempotency, StatusCommand};
use crate::web::problem::parse_json;
use crate::web::Problem;

/// Routes of the helpdesk API.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::admin::state::Admin: FromRef<S>,
{
    Router::new()
        .route("/helpdesk/v1/openapi.json", get(get_openapi))
        .route("/helpdesk/v1/holders", get(get_holder))
        .route("/helpdesk/v1/means/{id}", get(get_means))
        .route("/helpdesk/v1/means/{id}/suspend", post(post_suspend))
        .route("/helpdesk/v1/means/{id}/revoke", post(post_revoke))
        .route("/helpdesk/v1/means/{id}/reactivate", post(post_reactivate))
        .route("/helpdesk/v1/approvals", get(get_approvals))
        .route("/helpdesk/v1/approvals/{id}/{decision}", post(post_decision))
        .route("/helpdesk/session", post(post_session))
        .route("/helpdesk/session/refresh", post(post_session_refresh))
        .route("/helpdesk/session/logout", post(post_session_logout))
}

/// The page's half of the console login: the code it got back and its PKCE verifier.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    code: String,
    code_verifier: String,
}

/// Session routes answer only the page itself: a browser always sends `Origin` on a
/// `fetch` POST, and it must be the issuer's (no other site can spend the cookie).
fn page_origin(app: &crate::admin::state::Admin, headers: &HeaderMap) -> Result<(), Problem> {
    match headers.get(header::ORIGIN) {
        Some(origin) if crate::web::middleware::same_origin(&app.config.issuer, origin.as_bytes()) => Ok(()),
        _ => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only the helpdesk page may do this",
        )),
    }
}

fn console_problem(e: console::ConsoleError) -> Problem {
    match e {
        console::ConsoleError::Grant(e) if e.code == crate::oidc::error::ErrorCode::TemporarilyUnavailable => {
            e.log_cause();
            Problem::unavailable()
        }
        console::ConsoleError::Grant(e) => {
            tracing::info!(error = %e, "helpdesk console login refused");
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "The login did not complete",
            )
            .detail("Log in again.")
        }
        console::ConsoleError::Operator(e) => Problem::from(e),
    }
}

/// The session answer: the access token for the page, the refresh token in the cookie.
fn session_answer(app: &crate::admin::state::Admin, session: console::ConsoleSession) -> Response {
    let mut r = no_store(serde_json::json!({
        "access_token": session.access_token,
        "expires_in": session.expires_in,
        "roles": session.roles,
    }));
    if let Some(refresh) = &session.refresh_token {
        let max_age = crate::domain::secs(app.config.tokens.refresh_max);
        if let Some(c) =
            crate::web::middleware::set_cookie(console::REFRESH_COOKIE, refresh, max_age, app.config.secure_cookies())
        {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    r
}

fn refresh_cookie<'a>(app: &crate::admin::state::Admin, headers: &'a HeaderMap) -> Option<&'a str> {
    crate::web::middleware::cookie(headers, console::REFRESH_COOKIE, app.config.secure_cookies())
        .filter(|v| !v.is_empty())
}

/// `POST /helpdesk/session` `{"code", "code_verifier"}`: opens the console session.
async fn post_session(
    State(app): State<crate::admin::state::Admin>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    page_origin(&app, &headers)?;
    let body: SessionBody = parse_json(&headers, &body)?;
    if body.code.len() > 512 || !(43..=128).contains(&body.code_verifier.len()) {
        return Err(Problem::bad_request("code or code_verifier out of bounds"));
    }
    let session = console::open(&app, body.code, body.code_verifier)
        .await
        .map_err(console_problem)?;
    Ok(session_answer(&app, session))
}

/// `POST /helpdesk/session/refresh`: a new access token for the refresh cookie (rotated).
async fn post_session_refresh(
    State(app): State<crate::admin::state::Admin>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    page_origin(&app, &headers)?;
    let Some(refresh) = refresh_cookie(&app, &headers) else {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Not logged in",
        ));
    };
    let session = console::renew(&app, refresh.to_owned())
        .await
        .map_err(console_problem)?;
    Ok(session_answer(&app, session))
}

/// `POST /helpdesk/session/logout`: revokes the console's tokens and clears the cookie.
async fn post_session_logout(
    State(app): State<crate::admin::state::Admin>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    page_origin(&app, &headers)?;
    let bearer = crate::web::extract::bearer(&headers);
    console::close(&app, refresh_cookie(&app, &headers), bearer)
        .await
        .map_err(console_problem)?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = crate::web::middleware::set_cookie(console::REFRESH_COOKIE, "", 0, app.config.secure_cookies()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(r)
}

/// `GET /helpdesk/v1/approvals`: open two-person requests (roles security or helpdesk).
async fn get_approvals(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
) -> Result<Response, Problem> {
    let open = approvals::open(&app.lifecycle, &Actor::Operator(op)).await?;
    Ok(no_store(serde_json::json!({ "approvals": open })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reason: String,
}

/// `POST /helpdesk/v1/approvals/{id}/approve|reject` (role security, not the requester).
async fn post_decision(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path((id, decision)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(Problem::not_found()),
    };
    let body: DecisionBody = if body.is_empty() {
        DecisionBody::default()
    } else {
        parse_json(&headers, &body)?
    };
    if body.reason.len() > 1024 {
        return Err(Problem::bad_request("reason must be at most 1024 characters"));
    }
    if id.len() > 64 {
        return Err(Problem::not_found());
    }
    let decided = approvals::decide(&app.lifecycle, &Actor::Operator(op), &id, approve, &body.reason).await?;
    Ok(no_store(decided))
}

async fn get_openapi() -> Response {
    let mut r = openapi::document().into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

#[derive(Deserialize)]
struct HolderQuery {
    identifier: String,
}

fn no_store(body: impl serde::Serialize) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn get_holder(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Query(q): Query<HolderQuery>,
) -> Result<Response, Problem> {
    Ok(no_store(
        service::holder(&app.lifecycle, &Actor::Operator(op), &q.identifier).await?,
    ))
}

async fn get_means(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let actor = Actor::Operator(op);
    // Role first (in the service): a caller without the helpdesk role learns nothing
    // about existence.
    Ok(no_store(service::means(&app.lifecycle, &actor, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    reason: String,
    #[serde(deserialize_with = "crate::domain::wire::object")]
    verification: Verification,
}

async fn status(
    app: crate::admin::state::Admin,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    command: StatusCommand,
) -> Result<Response, Problem> {
    let op = crate::web::extract::operator(&app, &headers).await?;
    let actor = Actor::Operator(op.clone());
    actor.operator_with(crate::domain::operator::Role::Helpdesk)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| Problem::bad_request("an Idempotency-Key header (1 to 255 characters) is required"))?
        .to_owned();
    let parsed: StatusBody = parse_json(&headers, &body)?;
    if parsed.reason.trim().is_empty() || parsed.reason.len() > 1024 {
        return Err(Problem::bad_request("reason must be 1 to 1024 characters"));
    }
    let id_parsed: MeansId = id.parse().map_err(|_| Problem::not_found())?;
    let mut hasher = Sha256::new();
    hasher.update(command.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(id.as_bytes());
    hasher.update(b"\0");
    hasher.update(&body);
    let request_sha256 = hex::encode(hasher.finalize());
    let idem = Idempotency {
        operator: op.person,
        key,
        request_sha256,
        refusal: refusal_body,
        status_of,
    };
    let answer = change_status(
        &app.lifecycle,
        &actor,
        id_parsed,
        command,
        &parsed.reason,
        Some(&parsed.verification),
        Some(idem),
    )
    .await?;
    let status = status_of(&answer);
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        answer.body().to_owned(),
    )
        .into_response();
    let content_type = if status < 300 {
        "application/json"
    } else {
        "application/problem+json"
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn post_suspend(
    State(app): State<crate::admin::state::Admin>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    status(app, id, headers, body, StatusCommand::Suspend).await
}

async fn post_revoke(
    State(app): State<crate::admin::state::Admin>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    status(app, id, headers, body, StatusCommand::Revoke).await
}

async fn post_reactivate(
    State(app): State<crate::admin::state::Admin>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    status(app, id, headers, body, StatusCommand::Reactivate).await
}

/// The problem body stored for a refusal (same shape as the live answer).
fn refusal_body(e: &crate::lifecycle::LifecycleError) -> (u16, String) {
    let (status, kind, title) = match e {
        crate::lifecycle::LifecycleError::Transition(_) => (409, "transition-not-allowed", "Transition not allowed"),
        crate::lifecycle::LifecycleError::Verification(_) => (403, "verification-failed", "Caller verification failed"),
        _ => (403, "forbidden", "Forbidden"),
    };
    let body = serde_json::json!({"type": format!("urn:eidgate:problem:{kind}"), "title": title, "status": status, "detail": e.to_string()});
    (status, body.to_string())
}

/// The status of an outcome: 200 changed, 202 waiting for a second person, a replay as
/// it was answered the first time.
fn status_of(answer: &crate::lifecycle::view::Answer) -> u16 {
    use crate::lifecycle::view::Answer;
    match answer {
        Answer::Changed(_) => 200,
        Answer::AwaitingApproval(_) => 202,
        Answer::Replayed { status, .. } => *status,
    }
}
