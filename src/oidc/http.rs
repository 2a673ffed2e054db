//! HTTP endpoints of the OpenID Provider: form/query → typed requests, errors → OAuth
//! JSON, redirects to the client, or the 400 page (never a redirect to an untrusted URI).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::authorize::{self, AuthRequest, PAR_URN_PREFIX};
use super::client_auth::{self, Authenticated};
use super::error::{AuthorizeError, ErrorCode, OAuthError};
use super::params::Params;
use super::{code, introspect, token, userinfo};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn::flow::{self, BROWSER_COOKIE};
use crate::authn::session::{self, SESSION_COOKIE};
use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::domain::secret::fingerprint_hex;
use crate::web::middleware::{cookie, set_cookie};
use crate::web::pages::message_page;

/// Routes of the OpenID Provider.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/.well-known/openid-configuration", get(get_discovery))
        .route("/jwks.json", get(get_jwks))
        .route("/authorize", get(authorize_endpoint).post(authorize_endpoint))
        .route("/par", post(post_par))
        .route("/token", post(post_token))
        .route("/userinfo", get(userinfo_endpoint).post(userinfo_endpoint))
        .route("/introspect", post(post_introspect))
        .route("/revoke", post(post_revoke))
        .route("/logout", get(logout_endpoint).post(logout_endpoint))
}

/// An OAuth error as the JSON endpoints answer it (RFC 6749 §5.2).
pub struct OAuthJson(pub OAuthError);

impl IntoResponse for OAuthJson {
    fn into_response(self) -> Response {
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

fn json_no_store(value: impl serde::Serialize, status: StatusCode) -> Response {
    let mut r = (status, Json(value)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

async fn get_discovery(State(app): State<Arc<App>>) -> Response {
    bytes_json(app.discovery.as_ref().clone())
}

async fn get_jwks(State(app): State<Arc<App>>) -> Response {
    let mut r = bytes_json(app.signer.jwks_json().as_ref().clone());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    r
}

fn bytes_json(bytes: Vec<u8>) -> Response {
    let mut r = bytes.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r
}

/// Reads the parameters of a GET (query) or POST (form body) request.
fn request_params(
    app: &App,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, OAuthError> {
    let max = app.config.limits.param_chars;
    if *method == Method::POST {
        require_form(headers)?;
        Params::parse(body, max)
    } else {
        Params::parse(query.unwrap_or_default().as_bytes(), max)
    }
}

fn require_form(headers: &HeaderMap) -> Result<(), OAuthError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "expected application/x-www-form-urlencoded",
        ))
    }
}

async fn load_client(app: &App, id: Option<&str>) -> Result<Option<Client>, OAuthError> {
    match id.and_then(|i| i.parse::<ClientId>().ok()) {
        Some(id) => Ok(app.store.client(&id).await?),
        None => Ok(None),
    }
}

fn untrusted(error: &OAuthError) -> Response {
    if error.code == ErrorCode::TemporarilyUnavailable {
        // A dependency is down before the request could be checked: not the RP's fault.
        tracing::warn!(error = %error, "authorization request refused: dependency down");
        return message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The login service is temporarily unavailable",
            "Please try again in a few minutes.",
        );
    }
    tracing::info!(error = %error, "untrusted authorization request refused");
    message_page(
        StatusCode::BAD_REQUEST,
        "This login request cannot be processed",
        &format!(
            "The service that sent you here made an invalid request ({}). Go back and try again.",
            error
        ),
    )
}

fn to_client(app: &App, redirect_uri: &str, state: Option<&str>, error: &OAuthError) -> Response {
    tracing::info!(error = %error, "authorization error returned to the client");
    Redirect::to(&code::error_redirect(redirect_uri, state, error, &app.config.issuer)).into_response()
}

async fn authorize_endpoint(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match authorize(&app, peer.ip(), &method, query, &headers, &body).await {
        Ok(r) => r,
        Err(AuthorizeError::Untrusted(e)) => untrusted(&e),
        Err(AuthorizeError::ToClient {
            redirect_uri,
            state,
            error,
        }) => to_client(&app, &redirect_uri, state.as_deref(), &error),
    }
}

fn par_key(request_uri: &str) -> String {
    format!("par:{}", fingerprint_hex(request_uri))
}

async fn authorize(
    app: &App,
    ip: std::net::IpAddr,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, AuthorizeError> {
    let mut params = request_params(app, method, query, headers, body).map_err(AuthorizeError::Untrusted)?;
    let mut pushed = false;
    if let Some(uri) = params
        .get("request_uri")
        .filter(|u| u.starts_with(PAR_URN_PREFIX))
        .map(str::to_owned)
    {
        // RFC 9126 §4: only the pushed parameters count; client_id must match.
        let stored = app
            .ephemeral
            .take(&par_key(&uri))
            .await
            .map_err(|e| AuthorizeError::Untrusted(e.into()))?;
        let stored: Vec<(String, String)> = crate::ephemeral::decode(stored).ok_or_else(|| {
            AuthorizeError::Untrusted(OAuthError::new(
                ErrorCode::InvalidRequestUri,
                "request_uri is unknown, used or expired",
            ))
        })?;
        let pushed_params = Params::from_pairs(stored);
        if pushed_params.get("client_id") != params.get("client_id") {
            return Err(AuthorizeError::Untrusted(OAuthError::new(
                ErrorCode::InvalidRequestUri,
                "client_id does not match the pushed request",
            )));
        }
        params = pushed_params;
        pushed = true;
    }
    let client = load_client(app, params.get("client_id"))
        .await
        .map_err(AuthorizeError::Untrusted)?;
    let redirect_uri = authorize::trusted_redirect(&params, client.as_ref())?;
    let Some(client) = client else {
        return Err(AuthorizeError::Untrusted(OAuthError::invalid_client()));
    };
    let request = authorize::validate(&params, &client, redirect_uri, pushed)?;

    // An SSO session that satisfies the request issues a code without interaction.
    let session_cookie = cookie(headers, SESSION_COOKIE, app.config.secure_cookies());
    let from_sso = from_session(app, &request, &client, session_cookie).await?;
    let preset = match from_sso {
        Sso::Code(redirect) => return Ok(Redirect::to(&redirect).into_response()),
        Sso::Steps(_, code) if request.prompt.none => {
            return Err(request.error(OAuthError::new(code, "the holder must take a step at the provider")))
        }
        Sso::Steps(authn, _) => Some(authn),
        Sso::None if request.prompt.none => {
            return Err(request.error(OAuthError::new(ErrorCode::LoginRequired, "the holder must log in")))
        }
        Sso::None => None,
    };

    let (browser, new_cookie) =
        match cookie(headers, BROWSER_COOKIE, app.config.secure_cookies()).filter(|c| c.len() == 43) {
            Some(c) => (c.to_owned(), false),
            None => (crate::random::token(), true),
        };
    let client_name = if client.client_name.is_empty() {
        client.client_id.to_string()
    } else {
        client.client_name.clone()
    };
    let mut flow = match flow::start(&app.authn, request.clone(), client_name, &browser, ip).await {
        Ok(flow) => flow,
        // Too many open login flows from this address, or in the store (issue 19).
        Err(crate::authn::AuthnError::TooManyAttempts(secs)) => {
            let mut page = message_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many login attempts from your network",
                "Please wait a few minutes, then start the login again from the service you came from.",
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                page.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(page);
        }
        Err(crate::authn::AuthnError::BadRequest(why)) => {
            return Err(request.error(OAuthError::new(ErrorCode::InvalidRequest, &why)))
        }
        Err(_) => return Err(request.error(OAuthError::unavailable())),
    };
    if let Some(authn) = preset {
        // Authenticated by the SSO session; the page takes the remaining steps. The SSO
        // answer is recorded now, before any step can lead to a code.
        app.store
            .append(code::sso_event(&client, &authn))
            .await
            .map_err(|e| request.error(e.into()))?;
        flow.authenticated = Some(authn);
        if let crate::authn::release::Next::Redirect(to) = crate::authn::release::proceed(&app.authn, flow.clone())
            .await
            .map_err(|_| request.error(OAuthError::unavailable()))?
        {
            return Ok(Redirect::to(&to).into_response());
        }
    }
    let mut response = Redirect::to(&format!("/login?flow={}", flow.id)).into_response();
    if new_cookie {
        if let Some(c) = set_cookie(BROWSER_COOKIE, &browser, 30 * 24 * 3600, app.config.secure_cookies()) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    Ok(response)
}

/// What an SSO session can do for an authorization request.
enum Sso {
    /// Nothing: the holder must log in.
    None,
    /// The code, at once.
    Code(String),
    /// The authentication holds, but the holder must take a step first (consent, legal
    /// person); with the error for `prompt=none`.
    Steps(crate::oidc::grant::Authentication, ErrorCode),
}

async fn from_session(
    app: &App,
    request: &AuthRequest,
    client: &Client,
    cookie: Option<&str>,
) -> Result<Sso, AuthorizeError> {
    match session_authentication(app, request, client, cookie).await? {
        None => Ok(Sso::None),
        Some((authn, person)) => {
            let step = crate::authn::release::sso_step(&app.authn, request, client, &authn)
                .await
                .map_err(|e| request.error(e.into()))?;
            if let Some(code) = step {
                return Ok(Sso::Steps(authn, code));
            }
            let redirect = code::issue_sso_code(&app.oidc, request, client, &person, authn)
                .await
                .map_err(|e| request.error(e))?;
            Ok(Sso::Code(redirect))
        }
    }
}

/// The authentication of a live SSO session that satisfies the request (level, age,
/// means still usable, `id_token_hint`), marked used.
async fn session_authentication(
    app: &App,
    request: &AuthRequest,
    client: &Client,
    cookie: Option<&str>,
) -> Result<Option<(crate::oidc::grant::Authentication, crate::domain::person::NaturalPerson)>, AuthorizeError> {
    let Some(cookie) = cookie else { return Ok(None) };
    if request.prompt.login {
        return Ok(None);
    }
    let unavailable = |_| request.error(OAuthError::unavailable());
    let Some(s) = session::load(&app.authn, cookie).await.map_err(unavailable)? else {
        return Ok(None);
    };
    let now = app.now();
    if let Some(max_age) = request.max_age {
        // OIDC Core §3.1.2.1: "max_age=0 is equivalent to prompt=login". Times are whole
        // seconds, so an authentication within the same second must not satisfy it.
        if max_age == 0 || now - s.authn.auth_time > i64::try_from(max_age).unwrap_or(i64::MAX) {
            return Ok(None);
        }
    }
    if request.requested_loa.is_some_and(|r| r > s.authn.loa) {
        return Ok(None);
    }
    if crate::authn::usable::ensure_means_usable(app.store.as_ref(), &s.authn, now)
        .await
        .is_err()
    {
        return Ok(None);
    }
    // A cap lowered since the login (R-SUP-2) ends the session's use for SSO: the holder
    // logs in again and gets the level in force now.
    let caps = app.loa_caps().await.map_err(|e| request.error(e.into()))?;
    let kind = app
        .store
        .means(s.authn.means)
        .await
        .map_err(|e| request.error(e.into()))?
        .map(|m| m.kind);
    if kind.is_none_or(|k| caps.cap(k) < s.authn.loa) {
        return Ok(None);
    }
    let Some(person) = app
        .store
        .person(s.authn.person)
        .await
        .map_err(|e| request.error(e.into()))?
    else {
        return Ok(None);
    };
    if let Some(hint) = &request.id_token_hint {
        let expected = super::subject::subject(client, &person, &app.config.country);
        if super::logout::hint_subject(&app.oidc, hint).as_deref() != Some(expected.as_str()) {
            return Ok(None);
        }
    }
    session::touch(&app.authn, cookie, &s).await.map_err(unavailable)?;
    Ok(Some((s.authn, person)))
}

/// Authenticates the calling client at a back-channel endpoint (`endpoint` = its path).
async fn authenticate_client(
    app: &App,
    headers: &HeaderMap,
    params: &mut Params,
    endpoint: &str,
) -> Result<Client, OAuthError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let presented = client_auth::extract(authorization, params)?;
    let client = app
        .store
        .client(presented.client_id())
        .await?
        .ok_or_else(OAuthError::invalid_client)?;
    let endpoint_url = format!("{}{endpoint}", app.config.issuer);
    // The token endpoint URL is what OIDC Core §9 says `aud` SHOULD be, and RFC 9126 §2
    // requires PAR to accept it: it names this provider at every back-channel endpoint.
    let token_url = format!("{}/token", app.config.issuer);
    let now = app.now();
    let rules = client_auth::AssertionRules {
        audiences: &[app.config.issuer.as_str(), endpoint_url.as_str(), token_url.as_str()],
        now,
        skew: i64::try_from(app.config.tokens.assertion_skew.as_secs()).unwrap_or(30),
    };
    match client_auth::authenticate(&client, &presented, rules)? {
        Authenticated::Secret => {}
        Authenticated::Assertion(a) => {
            let ttl = Duration::from_secs(u64::try_from(a.exp - now + 60).unwrap_or(60).max(60));
            let key = format!("jti:{}:{}", client.client_id, fingerprint_hex(&a.jti));
            if !app.ephemeral.put_new(&key, b"1", ttl).await? {
                tracing::warn!(client = %client.client_id, "replayed client assertion jti refused");
                return Err(OAuthError::invalid_client());
            }
        }
    }
    Ok(client)
}

async fn back_channel_params(app: &App, headers: &HeaderMap, body: &Bytes) -> Result<Params, OAuthError> {
    require_form(headers)?;
    Params::parse(body, app.config.limits.param_chars)
}

async fn post_token(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthJson> {
    let mut params = back_channel_params(&app, &headers, &body).await?;
    let client = authenticate_client(&app, &headers, &mut params, "/token").await?;
    let request = token::TokenRequest::parse(&params)?;
    let response = token::exchange(&app.oidc, &client, request).await?;
    Ok(json_no_store(response, StatusCode::OK))
}

async fn post_par(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthJson> {
    let mut params = back_channel_params(&app, &headers, &body).await?;
    let client = authenticate_client(&app, &headers, &mut params, "/par").await?;
    if params.has("request_uri") {
        return Err(OAuthError::invalid_request("request_uri is not allowed in a pushed request").into());
    }
    let mut with_client = Params::from_pairs([("client_id".to_owned(), client.client_id.to_string())]);
    with_client.overlay(params);
    // Validate now so that the RP learns about errors at push time (RFC 9126 §2.3).
    let redirect = match authorize::trusted_redirect(&with_client, Some(&client)) {
        Ok(r) => r,
        Err(AuthorizeError::Untrusted(e)) | Err(AuthorizeError::ToClient { error: e, .. }) => return Err(e.into()),
    };
    if let Err(AuthorizeError::Untrusted(e) | AuthorizeError::ToClient { error: e, .. }) =
        authorize::validate(&with_client, &client, redirect, true)
    {
        return Err(e.into());
    }
    let request_uri = format!("{PAR_URN_PREFIX}{}", crate::random::token());
    let pairs: Vec<(String, String)> = with_client.pairs().map(|(k, v)| (k.clone(), v.clone())).collect();
    crate::ephemeral::put_json(
        app.ephemeral.as_ref(),
        &par_key(&request_uri),
        &pairs,
        app.config.tokens.par_ttl,
    )
    .await
    .map_err(OAuthError::from)?;
    Ok(json_no_store(
        json!({ "request_uri": request_uri, "expires_in": app.config.tokens.par_ttl.as_secs() }),
        StatusCode::CREATED,
    ))
}

async fn userinfo_endpoint(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthJson> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    let token = match from_header {
        Some(t) => t,
        None if method == Method::POST && require_form(&headers).is_ok() => {
            let params = Params::parse(&body, app.config.limits.param_chars)?;
            params
                .get("access_token")
                .map(str::to_owned)
                .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "no access token"))?
        }
        None => return Err(OAuthError::new(ErrorCode::InvalidToken, "no access token").into()),
    };
    let claims = userinfo::userinfo(&app.oidc, &token).await?;
    Ok(json_no_store(claims, StatusCode::OK))
}

async fn post_introspect(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthJson> {
    let mut params = back_channel_params(&app, &headers, &body).await?;
    let client = authenticate_client(&app, &headers, &mut params, "/introspect").await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let answer = introspect::introspect(&app.oidc, &client, token, params.get("token_type_hint")).await?;
    Ok(json_no_store(answer, StatusCode::OK))
}

async fn post_revoke(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthJson> {
    let mut params = back_channel_params(&app, &headers, &body).await?;
    let client = authenticate_client(&app, &headers, &mut params, "/revoke").await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    introspect::revoke(&app.oidc, &client, token).await?;
    // The token itself is never logged; the client and its hint are.
    let event = AuditEvent::new(
        crate::audit::catalogue::TOKEN_REVOKED,
        format!("client:{}", client.client_id),
        format!("client:{}", client.client_id),
        json!({"token_type_hint": params.get("token_type_hint")}),
    );
    app.store.append(event).await.map_err(OAuthError::from)?;
    Ok(json_no_store(json!({}), StatusCode::OK))
}

async fn logout_endpoint(
    State(app): State<Arc<App>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match request_params(&app, &method, query, &headers, &body) {
        Ok(p) => p,
        Err(e) => return message_page(StatusCode::BAD_REQUEST, "Logout request refused", &e.to_string()),
    };
    let ended = match cookie(&headers, SESSION_COOKIE, app.config.secure_cookies()) {
        Some(c) => session::end(&app.authn, c).await.ok().flatten(),
        None => None,
    };
    if let Some(s) = &ended {
        let event = AuditEvent::new(
            crate::audit::catalogue::LOGOUT,
            format!("holder:{}", s.authn.person),
            format!("means:{}", s.authn.means),
            json!({"sid": s.authn.sid}),
        );
        if let Err(e) = app.store.append(event).await {
            tracing::warn!(error = %e, "logout audit record failed");
        }
    }
    let target = super::logout::post_logout_redirect(&app.oidc, &params).await;
    let mut response = match target {
        Some(uri) => Redirect::to(&uri).into_response(),
        None => message_page(StatusCode::OK, "Logged out", "You have been logged out of eidgate."),
    };
    if let Some(c) = set_cookie(SESSION_COOKIE, "", 0, app.config.secure_cookies()) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}
