//! The login API (DESIGN "Login API", CONTRACT): JSON in, JSON or problem+json out.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ceremony::{self, Completed, RequestMeta, Step};
use super::device::DEVICE_COOKIE;
use super::release::{self, Next};
use super::AuthnError;
use crate::domain::claims;
use crate::domain::secret::Password;
use crate::oidc::error::ErrorCode;
use crate::web::middleware::cookie;
use crate::web::problem::parse_json;
use crate::web::Problem;

/// Routes of the login API.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::authn::state::Authn: FromRef<S>,
    crate::admin::state::Admin: FromRef<S>,
{
    Router::new()
        .route("/authn/flows/{flow}", get(get_flow))
        .route("/authn/flows/{flow}/password", post(post_password))
        .route("/authn/flows/{flow}/totp", post(post_totp))
        .route("/authn/flows/{flow}/password_change", post(post_password_change))
        .route("/authn/flows/{flow}/cancel", post(post_cancel))
        .route("/authn/flows/{flow}/consent", post(post_consent))
        .route("/authn/flows/{flow}/legal_person", post(post_legal_person))
        .route("/authn/flows/{flow}/webauthn/start", post(post_webauthn_start))
        .route("/authn/flows/{flow}/webauthn/finish", post(post_webauthn_finish))
        .route("/helpdesk/v1/means/{id}/login-reset", post(post_login_reset))
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
            AuthnError::UnknownDeviceLocked => Problem::new(
                StatusCode::FORBIDDEN,
                "unknown-device-locked",
                "Too many wrong passwords from unknown browsers: log in from a browser you used before, or ask the helpdesk",
            ),
            AuthnError::BadRequest(why) => Problem::bad_request(why),
            AuthnError::Unavailable => Problem::unavailable(),
            AuthnError::Dependency(cause) => {
                tracing::warn!(error = %crate::domain::cause::chain(&cause), "a dependency failed during authentication");
                Problem::unavailable()
            }
        }
    }
}

async fn get_flow(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    _headers: HeaderMap,
) -> Result<Response, Problem> {
    let requested = flow.requested_loa();
    if let Some(pending) = &flow.pending {
        // The holder has authenticated; the page shows the step the flow waits for.
        let mut body = pending.data.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("next".into(), json!(pending.next));
            obj.insert("client_name".into(), json!(flow.client_name));
            obj.insert("requested_loa".into(), json!(requested.short()));
        }
        return Ok(Json(body).into_response());
    }
    // Only methods that can reach the requested level under the caps in force now.
    let methods = app
        .caps
        .in_force()
        .await
        .map_err(AuthnError::from)?
        .methods_for(requested);
    let client = app
        .store
        .client(&flow.request.client_id)
        .await
        .map_err(AuthnError::from)?
        .ok_or(AuthnError::FlowNotFound)?;
    // The claims this login would release (DESIGN "Login API", R-DATA-4): requested by
    // scope or individually, and allowed for the client. Not the scopes themselves.
    let individually = flow.request.claims.all_names();
    let claims: Vec<&str> = claims::requested_names(flow.request.scope.iter().map(String::as_str), &individually)
        .into_iter()
        .filter(|name| *name != "sub" && client.allowed_claims.iter().any(|a| a == name))
        .collect();
    Ok(Json(json!({
        "client_name": flow.client_name,
        "requested_loa": requested.short(),
        "methods": methods,
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

pub(crate) use crate::web::login::done;

async fn post_password(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<PasswordBody>,
) -> Result<Response, Problem> {
    let meta = RequestMeta { ip: peer.ip() };
    let device = cookie(&headers, DEVICE_COOKIE, app.config.secure_cookies());
    let step = ceremony::password(&app, &flow, &body.identifier, body.password, &meta, device).await?;
    Ok(step_answer(&app, step))
}

/// The answer of a ceremony step: the next step's name, or the end of the flow.
fn step_answer(app: &crate::authn::state::Authn, step: Step) -> Response {
    match step {
        Step::Done(completed) => done(&app.config, completed),
        Step::Next(next) => Json(json!({ "next": next })).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChangeBody {
    new_password: Password,
}

/// `POST /authn/flows/{flow}/password_change`: an operator's expired password is replaced
/// (R-SEC-4) and the login goes on.
async fn post_password_change(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<PasswordChangeBody>,
) -> Result<Response, Problem> {
    let meta = RequestMeta { ip: peer.ip() };
    let step = match super::operator_password::change(&app, &flow, body.new_password, &meta).await? {
        super::operator_password::PasswordChanged::Totp => Step::Next("totp"),
        super::operator_password::PasswordChanged::Complete { flow, person, means } => {
            let amr = vec![crate::domain::loa::Amr::Pwd];
            let done = ceremony::complete(&app, &flow, &person, &means, crate::domain::loa::Loa::Low, amr, &meta);
            Step::Done(done.await?)
        }
    };
    Ok(step_answer(&app, step))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpBody {
    code: Password,
}

async fn post_totp(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<TotpBody>,
) -> Result<Response, Problem> {
    let meta = RequestMeta { ip: peer.ip() };
    let device = cookie(&headers, DEVICE_COOKIE, app.config.secure_cookies());
    let completed = ceremony::totp(&app, &flow, body.code.expose(), &meta, device).await?;
    Ok(done(&app.config, completed))
}

async fn post_cancel(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    _headers: HeaderMap,
) -> Result<Response, Problem> {
    let next = release::end_with_error(&app, &flow, ErrorCode::AccessDenied, "the holder cancelled the login").await?;
    Ok(step_done(&app, next))
}

/// The answer of a step after the ceremony (the session cookie was set by the ceremony).
fn step_done(app: &crate::authn::state::Authn, next: Next) -> Response {
    done(
        &app.config,
        Completed {
            next,
            session_cookie: None,
            device_cookie: None,
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    approve: bool,
}

async fn post_consent(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<ConsentBody>,
) -> Result<Response, Problem> {
    let next = release::consent(&app, &flow, body.approve).await?;
    Ok(step_done(&app, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegalPersonBody {
    legal_person: String,
}

async fn post_legal_person(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<LegalPersonBody>,
) -> Result<Response, Problem> {
    if body.legal_person.len() > 128 {
        return Err(AuthnError::BadRequest("legal_person too long".into()).into());
    }
    let next = release::choose_legal_person(&app, &flow, &body.legal_person).await?;
    Ok(step_done(&app, next))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WebauthnStartBody {
    /// Identifier-first login; absent for a discoverable (username-less) one.
    #[serde(default)]
    identifier: Option<String>,
}

async fn post_webauthn_start(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let body: WebauthnStartBody = if body.is_empty() {
        WebauthnStartBody::default()
    } else {
        parse_json(&headers, &body)?
    };
    let meta = RequestMeta { ip: peer.ip() };
    let options = super::fido::start(&app, &flow, body.identifier.as_deref(), &meta).await?;
    Ok(Json(options).into_response())
}

async fn post_webauthn_finish(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Flow(flow): crate::web::extract::Flow,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    // The PublicKeyCredential JSON is parsed strictly by the ceremony itself.
    let _: serde_json::Value = parse_json(&headers, &body)?;
    let meta = RequestMeta { ip: peer.ip() };
    let completed = super::fido::finish(&app, &flow, &body, &meta).await?;
    Ok(done(&app.config, completed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginResetBody {
    reason: String,
}

/// `POST /helpdesk/v1/means/{id}/login-reset` (role `helpdesk`): lifts the stop of
/// password attempts from unknown browsers and the holder's back-off (issue 19), after the
/// operator has spoken with the holder. Audited; the means' status is not touched.
async fn post_login_reset(
    State(app): State<crate::authn::state::Authn>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let actor = crate::lifecycle::actor::Actor::Operator(op);
    actor.operator_with(crate::domain::operator::Role::Helpdesk)?;
    let body: LoginResetBody = parse_json(&headers, &body)?;
    if body.reason.trim().is_empty() || body.reason.len() > 1024 {
        return Err(Problem::bad_request("reason must be 1 to 1024 characters"));
    }
    let means: crate::domain::ids::MeansId = id.parse().map_err(|_| Problem::not_found())?;
    let m = app
        .store
        .means(means)
        .await
        .map_err(AuthnError::from)?
        .ok_or_else(Problem::not_found)?;
    let person = app
        .store
        .person(m.holder)
        .await
        .map_err(AuthnError::from)?
        .ok_or_else(Problem::not_found)?;
    super::throttle::reset_person(&app.throttle, &super::throttle::key_of(&person.identifier), means).await?;
    let event = crate::audit::AuditEvent::new(
        crate::audit::catalogue::MEANS_LOGIN_RESET,
        actor.audit_name(),
        format!("means:{means}"),
        json!({"reason": body.reason}),
    );
    app.store.append(event).await.map_err(AuthnError::from)?;
    Ok(Json(json!({"means": means.to_string(), "login_reset": true})).into_response())
}
