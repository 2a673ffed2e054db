//! The router: every feature's routes merged, then the transport limits (R-SEC-5):
//! body size, request timeout, concurrency, panics caught as 500, security headers, head
//! size and per-IP rate limit ([`super::limits`]), metrics ([`super::metrics`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::middleware::security_headers;
use super::pages;
use crate::app::App;

/// The whole application router.
pub fn router(app: Arc<App>) -> Router {
    let limits = &app.config.limits;
    let tls = app.config.issuer.starts_with("https:");
    let headers: Arc<[(HeaderName, HeaderValue)]> = security_headers(tls).into();
    let router = Router::new()
        .route("/healthz", get(get_healthz))
        .route("/readyz", get(get_readyz))
        .route("/metrics", get(super::metrics::get_metrics))
        .route("/login", get(pages::get_login))
        .route("/static/login.js", get(pages::get_login_js))
        .route("/static/webauthn.js", get(pages::get_webauthn_js))
        .route("/static/login-fido.js", get(pages::get_login_fido_js))
        .route("/static/activate-fido.js", get(pages::get_activate_fido_js))
        .route("/static/login-steps.js", get(pages::get_login_steps_js))
        .route("/static/i18n.js", get(pages::get_i18n_js))
        .route("/terms/{lang}/{file}", get(pages::get_terms))
        .route("/static/style.css", get(pages::get_style))
        .merge(crate::oidc::http::routes())
        .merge(crate::authn::http::routes())
        .merge(crate::lifecycle::http::routes())
        .merge(crate::lifecycle::http::account_routes())
        .merge(crate::admin::http::routes())
        .merge(crate::helpdesk::http::routes())
        .merge(crate::smartcard::http::routes())
        .merge(crate::audit::http::routes())
        .route("/activate", get(pages::get_activate))
        .route("/helpdesk", get(pages::get_helpdesk))
        .route("/static/activate.js", get(pages::get_activate_js))
        .route("/static/account.js", get(pages::get_account_js))
        .route("/static/helpdesk.js", get(pages::get_helpdesk_js))
        .fallback(|| async { crate::web::Problem::not_found() })
        // The transport stack, innermost first. Two stacks, not one layer per call: each
        // `Router::layer` boxes every route once more, and each box is cloned and its
        // future boxed on every request (issue 22: 18 boxes per request were 5% of the
        // exchange's CPU). The stacks split at the concurrency limit so that its permit is
        // taken when the request reaches it (after the rate limits and metrics), as before:
        // a route boundary's readiness does not wait. The limit is one semaphore for the
        // whole server (`Router::layer` makes a layer's service once per route, and a plain
        // `ConcurrencyLimitLayer` gave each route a limit of its own).
        .layer(
            ServiceBuilder::new()
                .layer(GlobalConcurrencyLimitLayer::new(limits.concurrency))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ))
                // Back to axum's body types, as a route boundary did between these two.
                .map_response(|res: Response<tower_http::limit::ResponseBody<Body>>| res.map(Body::new))
                .layer(RequestBodyLimitLayer::new(limits.body_bytes))
                .map_request(|req: Request<tower_http::body::Limited<Body>>| req.map(Body::new))
                .layer(DefaultBodyLimit::max(limits.body_bytes))
                .layer(axum::middleware::from_fn_with_state(app.clone(), around_handlers)),
        )
        .layer(
            ServiceBuilder::new()
                // The security headers on every response, ours or a layer's, unless the
                // handler set its own (R-SEC-5).
                .map_response(move |mut res: Response| {
                    res.headers_mut().reserve(headers.len());
                    for (name, value) in headers.iter() {
                        if !res.headers().contains_key(name) {
                            res.headers_mut().insert(name.clone(), value.clone());
                        }
                    }
                    res
                })
                .layer(axum::middleware::from_fn_with_state(
                    Arc::new(super::limits::Enforcement::new(app.config.clone(), app.metrics.clone())),
                    super::limits::enforce,
                ))
                .layer(TraceLayer::new_for_http()),
        );
    router.with_state(app)
}

/// The middleware next to the handlers, one box for three jobs (issue 22):
/// - refuses an ambiguous request ([`super::middleware::ambiguity`]) with 400
///   problem+json before any handler;
/// - counts the answers of the tracked services per minute (R-OPS-1): server errors
///   (including time-outs and 503 when a dependency is down) count against availability;
/// - records every refusal marked [`crate::web::problem::Denied`] (an operator acting
///   beyond their roles or on their own means) as `operator.access_denied`, with the
///   operator the bearer token names, the method and the path (R-LOG-4, R-SEC-3). The
///   alert rule `operator_exceeds_role` reads these records.
async fn around_handlers(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(why) = super::middleware::ambiguity(request.headers()) {
        tracing::warn!(path = %request.uri().path(), why, "ambiguous request refused");
        return crate::web::Problem::bad_request(why).into_response();
    }
    let service = crate::monitor::availability::service_of(request.uri().path());
    // Kept for the audit record of a refusal; shared, not copied (header values and the
    // target share the request head's buffer).
    let bearer = request.headers().get(axum::http::header::AUTHORIZATION).cloned();
    let method = request.method().clone();
    let target = request.uri().clone();
    let response = next.run(request).await;
    if let Some(service) = service {
        app.availability
            .record(service, response.status().is_server_error(), app.now());
    }
    if let Some(denied) = response.extensions().get::<crate::web::problem::Denied>() {
        let bearer = bearer
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let actor = match crate::admin::auth::authenticate(&app.admin, bearer).await {
            Ok(op) => format!("operator:{}", op.person),
            Err(_) => "unknown".to_owned(),
        };
        let event = crate::audit::AuditEvent::new(
            crate::audit::catalogue::OPERATOR_ACCESS_DENIED,
            actor,
            "operator-api",
            json!({"reason": denied.0, "method": method.as_str(), "path": target.path()}),
        );
        if let Err(e) = app.store.append(event).await {
            tracing::warn!(error = %e, "operator refusal not audited");
        }
    }
    response
}

async fn get_healthz() -> &'static str {
    "ok"
}

/// Readiness: SQL, the ephemeral store and the HSM must all answer.
async fn get_readyz(State(app): State<Arc<App>>) -> Response {
    let database = app.store.ping().await.is_ok();
    let ephemeral = app.ephemeral.ping().await.is_ok();
    let hsm = app.signer.check().await.is_ok();
    let status = if database && ephemeral && hsm {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let state = |ok: bool| if ok { "up" } else { "down" };
    (
        status,
        Json(json!({ "database": state(database), "ephemeral": state(ephemeral), "hsm": state(hsm) })),
    )
        .into_response()
}
