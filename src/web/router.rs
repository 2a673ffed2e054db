//! The router: every feature's routes merged, inside the transport stack (R-SEC-5):
//! security headers, head size and per-IP rate limit ([`super::limits`]), concurrency and
//! metrics ([`super::layers`], [`super::metrics`]), panics caught as 500, request timeout,
//! body size, and the checks next to the handlers ([`super::layers::AroundHandlers`]).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::layers::{AroundHandlersLayer, EnforceLayer, RouteLabelLayer};
use super::middleware::security_headers;
use super::pages;
use crate::app::App;

/// The whole application: the routes inside the transport stack.
pub fn router(
    app: Arc<App>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + 'static {
    let limits = &app.config.limits;
    let tls = app.config.issuer.starts_with("https:");
    let headers: Arc<[(HeaderName, HeaderValue)]> = security_headers(tls).into();
    let routes = Router::new()
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
        // The only layer inside the router: the route template is known only there.
        .layer(RouteLabelLayer)
        .with_state(app.clone());
    // The transport stack around the router, outermost first (issue 22): plain tower
    // services, so nothing is boxed per request (each `Router::layer` boxed every route
    // once more, cloned and boxed again on every request, and each `from_fn` another box).
    ServiceBuilder::new()
        // The security headers on every response, ours or a layer's, unless the handler
        // set its own (R-SEC-5).
        .map_response(move |mut res: Response| {
            res.headers_mut().reserve(headers.len());
            for (name, value) in headers.iter() {
                if !res.headers().contains_key(name) {
                    res.headers_mut().insert(name.clone(), value.clone());
                }
            }
            res
        })
        .map_response(into_body)
        .layer(TraceLayer::new_for_http())
        // Head size, rate limit, the server-wide concurrency limit, metrics.
        .layer(EnforceLayer::new(
            Arc::new(super::limits::Enforcement::new(app.config.clone(), app.metrics.clone())),
            limits.concurrency,
        ))
        .map_response(into_body)
        .layer(CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .map_response(into_body)
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .map_request(|req: Request<tower_http::body::Limited<Body>>| req.map(Body::new))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(AroundHandlersLayer::new(app))
        .service(routes)
}

/// Back to axum's body type after a layer that wrapped it (no new box when it is one).
fn into_body<B>(response: Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    response.map(Body::new)
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
