//! The activation API (DESIGN "Activation API", CONTRACT).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{activation, LifecycleError};
use crate::domain::secret::Password;
use crate::web::problem::parse_json;
use crate::web::Problem;

/// Routes of the activation API.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::authn::state::Authn: FromRef<S>,
    crate::admin::state::Admin: FromRef<S>,
{
    Router::new()
        .route("/activation/start", post(post_start))
        .route("/activation/{id}/accept", post(post_accept))
        .route("/activation/{id}/password", post(post_password))
        .route("/activation/{id}/totp", axum::routing::get(get_totp))
        .route("/activation/{id}/totp/confirm", post(post_totp_confirm))
        .route("/activation/{id}/webauthn/start", post(post_webauthn_start))
        .route("/activation/{id}/webauthn/finish", post(post_webauthn_finish))
}

impl From<LifecycleError> for Problem {
    fn from(e: LifecycleError) -> Self {
        let detail = e.to_string();
        match e {
            LifecycleError::NotFound => Problem::not_found(),
            LifecycleError::Forbidden(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                .detail(detail)
                .denied(),
            LifecycleError::Verification(_) => Problem::new(
                StatusCode::FORBIDDEN,
                "verification-failed",
                "Caller verification failed",
            )
            .detail(detail),
            LifecycleError::Transition(_) => {
                Problem::new(StatusCode::CONFLICT, "transition-not-allowed", "Transition not allowed").detail(detail)
            }
            LifecycleError::Conflict(_) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict with the current state").detail(detail)
            }
            LifecycleError::Unprocessable(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Request cannot be processed",
            )
            .detail(detail),
            LifecycleError::BadRequest(d) => Problem::bad_request(d),
            LifecycleError::ActivationRefused => Problem::new(
                StatusCode::UNAUTHORIZED,
                "activation-refused",
                "The activation code is wrong, expired or used up",
            ),
            LifecycleError::TooManyAttempts => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-many-attempts", "Too many attempts");
                p.retry_after = Some(60);
                p
            }
            LifecycleError::IssuanceStopped => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "issuance-stopped",
                "Issuance of new means has stopped",
            ),
            LifecycleError::Unavailable => Problem::unavailable(),
            LifecycleError::Dependency(cause) => {
                tracing::warn!(error = %crate::domain::cause::chain(&cause), "a dependency failed in the lifecycle service");
                Problem::unavailable()
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    identifier: String,
    activation_code: Password,
}

async fn post_start(
    State(app): State<crate::authn::state::Authn>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<StartBody>,
) -> Result<Response, Problem> {
    let started = activation::start(
        &app.lifecycle,
        &body.identifier,
        body.activation_code.expose(),
        peer.ip(),
    )
    .await?;
    Ok(Json(started).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    terms_version: String,
    security_advice_version: String,
}

async fn post_accept(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<AcceptBody>,
) -> Result<Response, Problem> {
    activation::accept(&app.lifecycle, &id, &body.terms_version, &body.security_advice_version).await?;
    Ok(Json(json!({"next": "credential"})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: Password,
}

async fn post_password(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<PasswordBody>,
) -> Result<Response, Problem> {
    match activation::set_password(&app.lifecycle, &id, body.password).await? {
        activation::PasswordSet::Active(means) => Ok(Json(json!({"state": "active", "means": means})).into_response()),
        activation::PasswordSet::TotpNext => Ok(Json(json!({"next": "totp"})).into_response()),
    }
}

async fn get_totp(State(app): State<crate::authn::state::Authn>, Path(id): Path<String>) -> Result<Response, Problem> {
    let enrolment = activation::totp_enrolment(&app.lifecycle, &id).await?;
    let mut response = Json(json!({"otpauth_uri": enrolment.otpauth_uri, "qr_svg": enrolment.qr_svg})).into_response();
    // The seed is in this answer: no cache may keep it.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    code: Password,
}

async fn post_totp_confirm(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<ConfirmBody>,
) -> Result<Response, Problem> {
    let means = activation::confirm_totp(&app.lifecycle, &id, body.code.expose()).await?;
    Ok(Json(json!({"state": "active", "means": means})).into_response())
}

async fn post_webauthn_start(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let options = super::fido::start(&app.lifecycle, &id).await?;
    Ok(Json(options).into_response())
}

async fn post_webauthn_finish(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    // Well-formed JSON first; the PublicKeyCredential is then parsed by the ceremony.
    let _: serde_json::Value = parse_json(&headers, &body)?;
    let means = super::fido::finish(&app.lifecycle, &id, &body).await?;
    Ok(Json(json!({"state": "active", "means": means})).into_response())
}

/// Routes of the holder's self-service (`/account`): their means, suspend or revoke one
/// (lost card). Authenticated by the SSO session cookie; state changes need a JSON body
/// (a cross-site form cannot send one) and a same-origin `Origin` when the browser sends it.
pub fn account_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::authn::state::Authn: FromRef<S>,
    crate::admin::state::Admin: FromRef<S>,
{
    Router::new()
        .route("/account", axum::routing::get(crate::web::pages::get_account))
        .route("/account/login", axum::routing::get(get_account_login))
        .route("/account/api/means", axum::routing::get(get_account_means))
        .route("/account/api/me", axum::routing::get(get_account_me))
        .route("/account/api/means/{id}/suspend", post(post_account_suspend))
        .route("/account/api/means/{id}/revoke", post(post_account_revoke))
        .route("/account/api/means/{id}/password", post(post_account_password))
        .route("/account/api/consents", axum::routing::get(get_account_consents))
        .route(
            "/account/api/consents/{client}/revoke",
            post(post_account_consent_revoke),
        )
}

/// `GET /account/api/consents` (R-DATA-4): the clients the holder consented to and the
/// claims each may receive.
async fn get_account_consents(
    State(app): State<crate::authn::state::Authn>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let session = holder(&app, &headers).await?;
    let consents = app
        .store
        .consents_of(session.authn.person)
        .await
        .map_err(LifecycleError::from)?;
    let mut r = Json(json!({ "consents": consents })).into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `POST /account/api/consents/{client}/revoke` (R-DATA-4): the holder withdraws a
/// consent; the next login at that client asks again. Audited.
async fn post_account_consent_revoke(
    State(app): State<crate::authn::state::Authn>,
    Path(client): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let session = holder(&app, &headers).await?;
    check_origin(&app, &headers)?;
    // A JSON body, as for every state change here: a cross-site form cannot send one.
    let _: serde_json::Map<String, serde_json::Value> = parse_json(&headers, &body)?;
    let client: crate::domain::ids::ClientId = client.parse().map_err(|_| Problem::not_found())?;
    let event = crate::audit::AuditEvent::new(
        crate::audit::catalogue::CONSENT_REVOKED,
        format!("holder:{}", session.authn.person),
        format!("client:{client}"),
        json!({"refresh_tokens": "revoked", "access_tokens": "revoked"}),
    );
    // The consent and the client's refresh tokens go in one transaction; then the marker
    // that stops the access tokens issued before now (queued if Redis is down).
    let revoked = app
        .store
        .revoke_consent(session.authn.person, &client, event)
        .await
        .map_err(LifecycleError::from)?;
    if !revoked {
        return Err(Problem::not_found());
    }
    let marker = crate::oidc::grant::consent_withdrawn_key(session.authn.person, &client);
    if let Err(e) = app
        .ephemeral
        .put_or_queue(
            &marker,
            app.now_ms().to_string().as_bytes(),
            app.config.tokens.access_ttl,
        )
        .await
    {
        tracing::warn!(error = %e, "consent withdrawal marker not stored");
    }
    Ok(Json(json!({ "client_id": client, "consent": "revoked" })).into_response())
}

/// `GET /account/login`: an ordinary authorization request of the built-in account
/// client, so the holder logs in with the same ceremonies and rate limits as anywhere
/// else. The code that comes back to `/account` is never redeemed: the page only needs
/// the SSO session the login created.
async fn get_account_login(State(app): State<crate::authn::state::Authn>) -> Response {
    use base64::Engine;
    let verifier = crate::random::token();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let mut url = match url::Url::parse(&format!("{}/authorize", app.config.issuer)) {
        Ok(u) => u,
        Err(_) => return Problem::unavailable().into_response(),
    };
    url.query_pairs_mut()
        .append_pair("client_id", crate::admin::builtin::ACCOUNT_CLIENT)
        .append_pair("redirect_uri", &format!("{}/account", app.config.issuer))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", &crate::random::token())
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    axum::response::Redirect::to(url.as_str()).into_response()
}

/// The holder's SSO session, only while the means it rests on is still usable (R-AUTH-1,
/// R-LIFE-4: a suspended or revoked means ends the sessions that rely on it at once).
async fn holder(
    app: &crate::authn::state::Authn,
    headers: &HeaderMap,
) -> Result<crate::authn::session::SsoSession, Problem> {
    let log_in = || Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Log in first");
    let cookie = crate::web::middleware::cookie(
        headers,
        crate::authn::session::SESSION_COOKIE,
        app.config.secure_cookies(),
    )
    .ok_or_else(log_in)?;
    let session = crate::authn::session::load(app, cookie)
        .await
        .map_err(|_| Problem::unavailable())?
        .ok_or_else(log_in)?;
    match crate::authn::usable::ensure_means_usable(app.store.as_ref(), &session.authn, app.now()).await {
        Ok(()) => Ok(session),
        Err(crate::authn::AuthnError::Unavailable | crate::authn::AuthnError::Dependency(_)) => {
            Err(Problem::unavailable())
        }
        Err(_) => Err(log_in()),
    }
}

async fn get_account_means(
    State(app): State<crate::authn::state::Authn>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let session = holder(&app, &headers).await?;
    let means: Vec<super::service::MeansView> = app
        .store
        .means_of_holder(session.authn.person)
        .await
        .map_err(LifecycleError::from)?
        .iter()
        .map(super::service::MeansView::from)
        .collect();
    let mut r = Json(json!({"means": means})).into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// Most events shown per means on the holder's page.
const HOLDER_EVENTS_PER_MEANS: i64 = 200;

/// `GET /account/api/me` (R-SUP-4, GDPR art. 15): the personal data held about the holder,
/// their means, and the audit events of their own means (time in UTC, event, who acted as
/// a role, and the non-secret details).
async fn get_account_me(
    State(app): State<crate::authn::state::Authn>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let session = holder(&app, &headers).await?;
    let person_id = session.authn.person;
    let person = app
        .store
        .person(person_id)
        .await
        .map_err(LifecycleError::from)?
        .ok_or_else(|| Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Log in first"))?;
    let means = app
        .store
        .means_of_holder(person_id)
        .await
        .map_err(LifecycleError::from)?;
    let mut events = Vec::new();
    for m in &means {
        let records = app
            .store
            .audit_by_subject(&format!("means:{}", m.id), HOLDER_EVENTS_PER_MEANS)
            .await
            .map_err(LifecycleError::from)?;
        events.extend(records.iter().map(|r| {
            let actor_role = r.event.actor.split(':').next().unwrap_or("system");
            json!({
                "means": m.id.to_string(),
                "seq": r.seq,
                "time": crate::audit::rfc3339(r.time),
                "event": r.event.event_type,
                "by": actor_role,
                "details": r.event.data,
            })
        }));
    }
    let views: Vec<super::service::MeansView> = means.iter().map(super::service::MeansView::from).collect();
    let mut r = Json(json!({
        "person": {
            "identifier": person.identifier.to_string(),
            "given_name": person.given_name,
            "family_name": person.family_name,
            "birthdate": person.birthdate,
            "proofing_loa": person.proofing_loa,
            "attributes": person.attributes,
        },
        "means": views,
        "events": events,
    }))
    .into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountStatusBody {
    #[serde(default)]
    reason: String,
}

async fn account_status(
    app: crate::authn::state::Authn,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    command: super::service::StatusCommand,
) -> Result<Response, Problem> {
    let session = holder(&app, &headers).await?;
    check_origin(&app, &headers)?;
    let body: AccountStatusBody = parse_json(&headers, &body)?;
    let id = id.parse().map_err(|_| Problem::not_found())?;
    let actor = super::actor::Actor::Holder {
        person: session.authn.person,
        loa: session.authn.loa,
    };
    let reason = if body.reason.is_empty() {
        "holder self-service".to_owned()
    } else {
        body.reason.chars().take(1024).collect()
    };
    let answer = super::service::change_status(&app.lifecycle, &actor, id, command, &reason, None, None).await?;
    let mut r = (StatusCode::OK, answer.body().to_owned()).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Refuses a state change whose `Origin` (when the browser sends one) is not the issuer's.
fn check_origin(app: &crate::authn::state::Authn, headers: &HeaderMap) -> Result<(), Problem> {
    match headers.get(axum::http::header::ORIGIN) {
        Some(origin) if !crate::web::middleware::same_origin(&app.config.issuer, origin.as_bytes()) => Err(
            Problem::new(StatusCode::FORBIDDEN, "forbidden", "Cross-origin request refused"),
        ),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChangeBody {
    current_password: Password,
    code: Password,
    new_password: Password,
}

/// `POST /account/api/means/{id}/password`: the holder changes the password of a `totp`
/// means with the current password and a fresh one-time code.
async fn post_account_password(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let session = holder(&app, &headers).await?;
    check_origin(&app, &headers)?;
    let body: PasswordChangeBody = parse_json(&headers, &body)?;
    let means = id.parse().map_err(|_| Problem::not_found())?;
    let change = crate::authn::password_change::PasswordChange {
        current_password: body.current_password,
        code: body.code,
        new_password: body.new_password,
    };
    let meta = crate::authn::ceremony::RequestMeta { ip: peer.ip() };
    crate::authn::password_change::change_password(&app, session.authn.person, means, change, &meta).await?;
    Ok(Json(json!({"state": "active", "means": means, "password": "changed"})).into_response())
}

async fn post_account_suspend(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    account_status(app, id, headers, body, super::service::StatusCommand::Suspend).await
}

async fn post_account_revoke(
    State(app): State<crate::authn::state::Authn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    account_status(app, id, headers, body, super::service::StatusCommand::Revoke).await
}

#[cfg(test)]
mod tests {
    use crate::web::middleware::same_origin;

    #[test]
    fn r_sec_5_account_changes_need_exactly_the_issuers_origin() {
        assert!(same_origin("https://id.example.com", b"https://id.example.com"));
        assert!(same_origin("https://id.example.com/", b"https://id.example.com"));
        assert!(same_origin("http://127.0.0.1:4540", b"http://127.0.0.1:4540"));
        for other in [
            &b"https://id.example.co"[..],
            b"https://id.example.com.evil.example",
            b"http://id.example.com",
            b"https://id.example.com:8443",
            b"",
            b"null",
        ] {
            assert!(!same_origin("https://id.example.com", other), "{other:?}");
        }
        assert!(!same_origin("http://127.0.0.1:4540", b"http://127.0.0.1:454"));
    }
}
