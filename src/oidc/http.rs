//! HTTP endpoints of the OpenID Provider: form/query → typed requests, errors → OAuth
//! JSON, redirects to the client, or the 400 page (never a redirect to an untrusted URI).

use std::sync::Arc;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::authorize::{self, PAR_URN_PREFIX};
use super::client_auth::{self, Authenticated};
use super::error::{AuthorizeError, ErrorCode, OAuthError};
use super::params::Params;
use super::profile::{self, Origin};
use super::{code, dpop, introspect, token, userinfo};
use crate::audit::AuditEvent;
use crate::authn::flow::{self, BROWSER_COOKIE};
use crate::authn::session::{self, SESSION_COOKIE};
use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::domain::secret::fingerprint_hex;
use crate::monitor::phases::Phase;
use crate::web::middleware::{cookie, set_cookie};
use crate::web::oauth::{json_no_store, OAuthJson};
use crate::web::pages::message_page;

/// Routes of the OpenID Provider.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::authn::state::Authn: FromRef<S>,
    crate::admin::state::Admin: FromRef<S>,
{
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

async fn get_discovery(State(app): State<crate::authn::state::Authn>) -> Response {
    bytes_json(app.oidc.discovery.as_ref().clone())
}

async fn get_jwks(State(app): State<crate::authn::state::Authn>) -> Response {
    let mut r = bytes_json(app.oidc.signer.jwks_json().as_ref().clone());
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
    app: &crate::authn::state::Authn,
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

async fn load_client(app: &crate::authn::state::Authn, id: Option<&str>) -> Result<Option<Arc<Client>>, OAuthError> {
    match id.and_then(|i| i.parse::<ClientId>().ok()) {
        Some(id) => Ok(app.store.client(&id).await?),
        None => Ok(None),
    }
}

/// The page of an authorization request that cannot go back to the client, in the
/// visitor's language (`ui_locales` of the query counts).
fn untrusted(
    app: &crate::authn::state::Authn,
    query: Option<&str>,
    headers: &HeaderMap,
    error: &OAuthError,
) -> Response {
    error.log_cause();
    if error.code == ErrorCode::TemporarilyUnavailable {
        // A dependency is down before the request could be checked: not the RP's fault.
        tracing::warn!(error = %error, "authorization request refused: dependency down");
        return message_page(
            &app.config,
            query,
            headers,
            StatusCode::SERVICE_UNAVAILABLE,
            ("error-unavailable-title", "error-unavailable-text"),
            None,
        );
    }
    tracing::info!(error = %error, "untrusted authorization request refused");
    message_page(
        &app.config,
        query,
        headers,
        StatusCode::BAD_REQUEST,
        ("error-untrusted-title", "error-untrusted-text"),
        Some(&error.to_string()),
    )
}

fn to_client(
    app: &crate::authn::state::Authn,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> Response {
    error.log_cause();
    tracing::info!(error = %error, "authorization error returned to the client");
    Redirect::to(&code::error_redirect(redirect_uri, state, error, &app.config.issuer)).into_response()
}

async fn authorize_endpoint(
    State(app): State<crate::authn::state::Authn>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let page_query = query.clone();
    match authorize(&app, peer.ip(), &method, query, &headers, &body).await {
        Ok(r) => r,
        Err(AuthorizeError::Untrusted(e)) => untrusted(&app, page_query.as_deref(), &headers, &e),
        Err(AuthorizeError::ToClient {
            redirect_uri,
            state,
            error,
        }) => to_client(&app, &redirect_uri, state.as_deref(), &error),
    }
}

async fn authorize(
    app: &crate::authn::state::Authn,
    ip: std::net::IpAddr,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, AuthorizeError> {
    let mut params = request_params(app, method, query, headers, body).map_err(AuthorizeError::Untrusted)?;
    let mut origin = Origin::default();
    let client = load_client(app, params.get("client_id"))
        .await
        .map_err(AuthorizeError::Untrusted)?;
    if let Some(uri) = params
        .get("request_uri")
        .filter(|u| u.starts_with(PAR_URN_PREFIX))
        .map(str::to_owned)
    {
        // RFC 9126 §4: only the pushed parameters count; client_id must match.
        let (pushed, signed) = super::par::take(&app.oidc, &uri, params.get("client_id"))
            .await
            .map_err(AuthorizeError::Untrusted)?;
        params = pushed;
        origin = Origin { pushed: true, signed };
    } else if let Some(jwt) = params.get("request").map(str::to_owned) {
        // RFC 9101 §6.3: only the request object's parameters count. Until it verifies, its
        // redirect_uri is not trusted: errors are the 400 page.
        let Some(client) = &client else {
            return Err(AuthorizeError::Untrusted(OAuthError::invalid_client()));
        };
        params = super::jar::unpack(&app.oidc, client, &jwt, params.get("client_id"))
            .await
            .map_err(AuthorizeError::Untrusted)?;
        origin.signed = true;
    }
    let redirect_uri = authorize::trusted_redirect(&params, client.as_deref())?;
    let Some(client) = client else {
        return Err(AuthorizeError::Untrusted(OAuthError::invalid_client()));
    };
    profile::check(&client, &params, origin).map_err(|error| AuthorizeError::ToClient {
        redirect_uri: redirect_uri.clone(),
        state: params.get("state").map(str::to_owned),
        error,
    })?;
    let request = authorize::validate(&params, &client, redirect_uri, origin.pushed)?;

    // An SSO session that satisfies the request issues a code without interaction.
    let session_cookie = cookie(headers, SESSION_COOKIE, app.config.secure_cookies());
    let from_sso = crate::authn::sso::from_session(app, &request, &client, session_cookie).await?;
    let preset = match from_sso {
        crate::authn::sso::Sso::Code(redirect) => return Ok(Redirect::to(&redirect).into_response()),
        crate::authn::sso::Sso::Steps(_, code) if request.prompt.none => {
            return Err(request.error(OAuthError::new(code, "the holder must take a step at the provider")))
        }
        crate::authn::sso::Sso::Steps(authn, _) => Some(authn),
        crate::authn::sso::Sso::None if request.prompt.none => {
            return Err(request.error(OAuthError::new(ErrorCode::LoginRequired, "the holder must log in")))
        }
        crate::authn::sso::Sso::None => None,
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
    let mut flow = match flow::start(app, request.clone(), client_name, &browser, ip).await {
        Ok(flow) => flow,
        // Too many open login flows from this address, or in the store (issue 19).
        Err(crate::authn::AuthnError::TooManyAttempts(secs)) => {
            let mut page = message_page(
                &app.config,
                None,
                headers,
                StatusCode::TOO_MANY_REQUESTS,
                ("error-flows-title", "error-flows-text"),
                None,
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
        if let crate::authn::release::Next::Redirect(to) = crate::authn::release::proceed(app, flow.clone())
            .await
            .map_err(|_| request.error(OAuthError::unavailable()))?
        {
            return Ok(Redirect::to(&to).into_response());
        }
    }
    // The relying party's choice of language (`ui_locales`) goes to the login page.
    let mut to = format!("/login?flow={}", flow.id);
    if let Some(lang) = request.ui_locales.as_deref() {
        to.push_str("&ui_locales=");
        to.push_str(lang);
    }
    let mut response = Redirect::to(&to).into_response();
    if new_cookie {
        if let Some(c) = set_cookie(BROWSER_COOKIE, &browser, 30 * 24 * 3600, app.config.secure_cookies()) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    Ok(response)
}

/// Authenticates the calling client at a back-channel endpoint (`endpoint` = its path).
async fn authenticate_client(
    app: &crate::authn::state::Authn,
    headers: &HeaderMap,
    params: &mut Params,
    endpoint: &str,
) -> Result<Arc<Client>, OAuthError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let presented = client_auth::extract(authorization, params)?;
    let client = app
        .store
        .client(presented.client_id())
        .await?
        .ok_or_else(OAuthError::invalid_client)?;
    // The audiences an assertion may name, made only for assertions (issue 22). The
    // token endpoint URL is what OIDC Core §9 says `aud` SHOULD be, and RFC 9126 §2
    // requires PAR to accept it: it names this provider at every back-channel endpoint.
    let (endpoint_url, token_url) = match presented {
        client_auth::Presented::Assertion(..) => (
            format!("{}{endpoint}", app.config.issuer),
            format!("{}/token", app.config.issuer),
        ),
        _ => (String::new(), String::new()),
    };
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

async fn back_channel_params(
    app: &crate::authn::state::Authn,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, OAuthError> {
    require_form(headers)?;
    Params::parse(body, app.config.limits.param_chars)
}

async fn post_token(
    State(app): State<crate::authn::state::Authn>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthJson> {
    let mut params = back_channel_params(&app, &headers, &body).await?;
    let client = app
        .oidc
        .phases
        .time(
            Phase::ClientAuth,
            authenticate_client(&app, &headers, &mut params, "/token"),
        )
        .await?;
    let proof = dpop_proof(&headers)?;
    // DPoP (RFC 9449): every answer to a DPoP request carries the current server nonce (§8).
    let nonce = match proof.is_some() || profile::dpop_required(&client) {
        true => Some(dpop::current_nonce(&app.oidc).await?),
        false => None,
    };
    let answer = async {
        let jkt = dpop::token_key(&app.oidc, &client, proof.as_deref()).await?;
        let request = token::TokenRequest::parse(&params)?;
        token::exchange(&app.oidc, &client, request, jkt).await
    }
    .await;
    let mut response = match answer {
        Ok(tokens) => json_no_store(tokens, StatusCode::OK),
        Err(e) => OAuthJson(e).into_response(),
    };
    if let Some(v) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert("dpop-nonce", v);
    }
    Ok(response)
}

/// The `DPoP` header (RFC 9449 §4.1): at most one.
fn dpop_proof(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    dpop::single_header(headers.get_all("dpop").iter().map(HeaderValue::as_bytes))
}

async fn post_par(
    State(app): State<crate::authn::state::Authn>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthJson> {
    let mut params = back_channel_params(&app, &headers, &body).await?;
    let client = authenticate_client(&app, &headers, &mut params, "/par").await?;
    if params.has("request_uri") {
        return Err(OAuthError::invalid_request("request_uri is not allowed in a pushed request").into());
    }
    // A request object (RFC 9101 by value, RFC 9126 §3): only its parameters count.
    let signed = match params.take("request") {
        Some(jwt) => {
            params = super::jar::unpack(&app.oidc, &client, &jwt, Some(client.client_id.as_str())).await?;
            true
        }
        None => false,
    };
    let mut with_client = Params::from_pairs([("client_id".to_owned(), client.client_id.to_string())]);
    with_client.overlay(params);
    let origin = Origin { pushed: true, signed };
    profile::check(&client, &with_client, origin)?;
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
    let request_uri = super::par::push(&app.oidc, &with_client, signed).await?;
    Ok(json_no_store(
        json!({ "request_uri": request_uri, "expires_in": app.config.tokens.par_ttl.as_secs() }),
        StatusCode::CREATED,
    ))
}

async fn userinfo_endpoint(
    State(app): State<crate::authn::state::Authn>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthJson> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let dpop_token = authorization
        .and_then(|v| v.strip_prefix("DPoP ").or_else(|| v.strip_prefix("dpop ")))
        .map(|t| t.trim().to_owned());
    let dpop_scheme = dpop_token.is_some();
    let from_header = authorization
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned())
        .or(dpop_token);
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
    let url = format!("{}/userinfo", app.config.issuer);
    let answer = match dpop_proof(&headers) {
        Ok(proof) => {
            let presented = dpop::Presented {
                dpop_scheme,
                proof: proof.as_deref(),
                htm: method.as_str(),
                htu: &url,
            };
            userinfo::userinfo(&app.oidc, &token, presented).await
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(claims) => Ok(json_no_store(claims, StatusCode::OK)),
        Err(e) if dpop_scheme || matches!(e.code, ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce) => {
            Ok(dpop_challenge(e))
        }
        Err(e) => Err(e.into()),
    }
}

/// A refusal at a resource for a DPoP presentation (RFC 9449 §7.1): 401 with
/// `WWW-Authenticate: DPoP error=…` (503 stays 503).
fn dpop_challenge(error: OAuthError) -> Response {
    let code = error.code;
    let mut r = OAuthJson(error).into_response();
    if code != ErrorCode::TemporarilyUnavailable {
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        let algs = dpop::ALGORITHMS.join(" ");
        if let Ok(v) = HeaderValue::from_str(&format!("DPoP error=\"{}\", algs=\"{algs}\"", code.as_str())) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

async fn post_introspect(
    State(app): State<crate::authn::state::Authn>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthJson> {
    let mut params = back_channel_params(&app, &headers, &body).await?;
    let client = authenticate_client(&app, &headers, &mut params, "/introspect").await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let url = format!("{}/introspect", app.config.issuer);
    let proof = dpop_proof(&headers)?;
    let proof = proof.as_deref().map(|p| (p, url.as_str()));
    let answer = introspect::introspect(&app.oidc, &client, token, params.get("token_type_hint"), proof).await?;
    Ok(json_no_store(answer, StatusCode::OK))
}

async fn post_revoke(
    State(app): State<crate::authn::state::Authn>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthJson> {
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
    State(app): State<crate::authn::state::Authn>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match request_params(&app, &method, query, &headers, &body) {
        Ok(p) => p,
        Err(e) => {
            return message_page(
                &app.config,
                None,
                &headers,
                StatusCode::BAD_REQUEST,
                ("error-logout-title", "error-logout-text"),
                Some(&e.to_string()),
            )
        }
    };
    let ended = match cookie(&headers, SESSION_COOKIE, app.config.secure_cookies()) {
        Some(c) => session::end(&app, c).await.ok().flatten(),
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
        None => message_page(
            &app.config,
            None,
            &headers,
            StatusCode::OK,
            ("logged-out-title", "logged-out-text"),
            None,
        ),
    };
    if let Some(c) = set_cookie(SESSION_COOKIE, "", 0, app.config.secure_cookies()) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}
