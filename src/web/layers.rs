//! The transport's own middleware as plain tower services (issue 22), wrapped around the
//! router rather than layered into it: each `Router::layer` boxes every route once more,
//! and each box is cloned and its future boxed on every request; each
//! `middleware::from_fn` clones its inner service into a boxed `Next` and boxes its
//! future. These services have named futures and allocate nothing on the common path.
//!
//! - [`RouteLabel`], the only one inside the router (the route template is known only
//!   there): hands the matched template ([`MatchedPath`]) to the layers outside on the
//!   response's extensions.
//! - [`Enforce`], outside: the head size check and the per-IP rate limit (R-SEC-5,
//!   [`super::limits`]), then the server-wide concurrency limit (one semaphore for the whole
//!   server; a request over it waits for a permit, as with `GlobalConcurrencyLimitLayer`,
//!   and its permit is held until its response is ready), and the request's metrics
//!   (method, route template, status, latency).
//! - [`AroundHandlers`], next to the router: refuses ambiguous requests, counts answers
//!   for availability (R-OPS-1), and records operator refusals (R-LOG-4, R-SEC-3).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tower::{Layer, Service, ServiceExt};

use super::limits::Enforcement;
use crate::app::App;

/// A response on its way out, in the rare cases that need a box (a request waiting for a
/// concurrency permit, an operator refusal being audited).
type Boxed = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Inside the router: copies the matched route template onto the response.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteLabelLayer;

impl<S> Layer<S> for RouteLabelLayer {
    type Service = RouteLabel<S>;

    fn layer(&self, inner: S) -> RouteLabel<S> {
        RouteLabel { inner }
    }
}

/// See [`RouteLabelLayer`].
#[derive(Clone, Debug)]
pub struct RouteLabel<S> {
    inner: S,
}

impl<S> Service<Request> for RouteLabel<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Labelled<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        Labelled {
            inner: self.inner.call(request),
            route,
        }
    }
}

pin_project! {
    /// The future of [`RouteLabel`].
    pub struct Labelled<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for Labelled<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(route) = this.route.take() {
            response.extensions_mut().insert(route);
        }
        Poll::Ready(Ok(response))
    }
}

/// Outside the router: limits and metrics (see the module).
#[derive(Clone)]
pub struct EnforceLayer {
    state: Arc<Enforcement>,
    permits: Arc<Semaphore>,
}

impl EnforceLayer {
    /// With `concurrency` requests at most in the handlers at once.
    pub fn new(state: Arc<Enforcement>, concurrency: usize) -> Self {
        Self {
            state,
            permits: Arc::new(Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }
}

impl<S> Layer<S> for EnforceLayer {
    type Service = Enforce<S>;

    fn layer(&self, inner: S) -> Enforce<S> {
        Enforce {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`EnforceLayer`].
#[derive(Clone)]
pub struct Enforce<S> {
    inner: S,
    layer: EnforceLayer,
}

/// Measures one request from its arrival; counts it in flight until dropped.
struct Measure {
    state: Arc<Enforcement>,
    method: &'static str,
    started: Instant,
}

impl Measure {
    /// Counts `request` in flight from now.
    fn start(state: &Arc<Enforcement>, request: &Request) -> Self {
        state.metrics.request_started();
        Measure {
            state: state.clone(),
            method: crate::monitor::metrics::method_label(request.method().as_str()),
            started: Instant::now(),
        }
    }

    fn record(&self, response: &Response) {
        let route = response.extensions().get::<MatchedPath>();
        let route = route.map_or("unmatched", MatchedPath::as_str);
        self.state
            .metrics
            .request(self.method, route, response.status().as_u16(), self.started.elapsed());
    }
}

impl Drop for Measure {
    fn drop(&mut self) {
        self.state.metrics.request_finished();
    }
}

impl<S> Service<Request> for Enforce<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Enforced<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The services inside are always ready; the permit is taken per request in `call`,
        // after the refusals, so that a refused request never waits for one.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let measure = Measure::start(&self.layer.state, &request);
        if let Some(refused) = super::limits::refusal(&measure.state, &request, measure.started) {
            return Enforced::Ready {
                response: Some(refused),
                measure,
            };
        }
        match self.layer.permits.clone().try_acquire_owned() {
            Ok(permit) => Enforced::Running {
                inner: self.inner.call(request),
                permit: Some(permit),
                measure,
            },
            Err(TryAcquireError::NoPermits) => {
                let permits = self.layer.permits.clone();
                let inner = self.inner.clone();
                Enforced::Waiting {
                    wait: Box::pin(async move {
                        let Ok(_permit) = permits.acquire_owned().await else {
                            return Ok(crate::web::Problem::unavailable().into_response());
                        };
                        inner.oneshot(request).await
                    }),
                    measure,
                }
            }
            Err(TryAcquireError::Closed) => Enforced::Ready {
                response: Some(crate::web::Problem::unavailable().into_response()),
                measure,
            },
        }
    }
}

pin_project! {
    /// The future of [`Enforce`].
    #[project = EnforcedProj]
    pub enum Enforced<F> {
        /// Refused before any handler.
        Ready { response: Option<Response>, measure: Measure },
        /// In the handlers, holding a permit.
        Running { #[pin] inner: F, permit: Option<OwnedSemaphorePermit>, measure: Measure },
        /// Waiting for a permit (the server is at its concurrency limit).
        Waiting { wait: Boxed, measure: Measure },
    }
}

impl<F> Future for Enforced<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (response, measure) = match self.project() {
            EnforcedProj::Ready { response, measure } => match response.take() {
                Some(r) => (r, measure),
                None => return Poll::Pending,
            },
            EnforcedProj::Running { inner, permit, measure } => {
                let Ok(response) = ready!(inner.poll(cx));
                // The permit is the handlers' (as the tower limit's was), not the body's.
                permit.take();
                (response, measure)
            }
            EnforcedProj::Waiting { wait, measure } => {
                let Ok(response) = ready!(wait.as_mut().poll(cx));
                (response, measure)
            }
        };
        measure.record(&response);
        Poll::Ready(Ok(response))
    }
}

/// Next to the router: ambiguity, availability, operator refusals (see the module).
#[derive(Clone)]
pub struct AroundHandlersLayer {
    app: Arc<App>,
}

impl AroundHandlersLayer {
    /// For `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

impl<S> Layer<S> for AroundHandlersLayer {
    type Service = AroundHandlers<S>;

    fn layer(&self, inner: S) -> AroundHandlers<S> {
        AroundHandlers {
            inner,
            app: self.app.clone(),
        }
    }
}

/// See [`AroundHandlersLayer`].
#[derive(Clone)]
pub struct AroundHandlers<S> {
    inner: S,
    app: Arc<App>,
}

/// What a refusal's audit record needs of the request: shared, not copied (header values
/// and the target share the request head's buffer).
struct Asked {
    bearer: Option<HeaderValue>,
    method: Method,
    target: Uri,
}

impl<S> Service<Request> for AroundHandlers<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Around<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(why) = super::middleware::ambiguity(request.headers()) {
            tracing::warn!(path = %request.uri().path(), why, "ambiguous request refused");
            return Around::Ready {
                response: Some(crate::web::Problem::bad_request(why).into_response()),
            };
        }
        let service = crate::monitor::availability::service_of(request.uri().path());
        let asked = Asked {
            bearer: request.headers().get(axum::http::header::AUTHORIZATION).cloned(),
            method: request.method().clone(),
            target: request.uri().clone(),
        };
        Around::Running {
            inner: self.inner.call(request),
            done: Some((self.app.clone(), service, asked)),
        }
    }
}

type Done = (Arc<App>, Option<&'static str>, Asked);

pin_project! {
    /// The future of [`AroundHandlers`].
    #[project = AroundProj]
    pub enum Around<F> {
        /// Refused as ambiguous.
        Ready { response: Option<Response> },
        /// In the handler.
        Running { #[pin] inner: F, done: Option<Done> },
        /// An operator refusal being recorded before it is answered.
        Auditing { audit: Boxed },
    }
}

impl<F> Future for Around<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (response, (app, service, asked)) = match self.as_mut().project() {
            AroundProj::Ready { response } => return response.take().map_or(Poll::Pending, |r| Poll::Ready(Ok(r))),
            AroundProj::Auditing { audit } => return audit.as_mut().poll(cx),
            AroundProj::Running { inner, done } => {
                let Ok(response) = ready!(inner.poll(cx));
                match done.take() {
                    Some(done) => (response, done),
                    None => return Poll::Ready(Ok(response)),
                }
            }
        };
        if let Some(service) = service {
            app.availability
                .record(service, response.status().is_server_error(), app.now());
        }
        let Some(denied) = response.extensions().get::<crate::web::problem::Denied>() else {
            return Poll::Ready(Ok(response));
        };
        let reason = denied.0.clone();
        let mut audit: Boxed = Box::pin(async move {
            audit_refusal(&app, reason, asked).await;
            Ok(response)
        });
        let polled = audit.as_mut().poll(cx);
        self.set(Around::Auditing { audit });
        polled
    }
}

/// Records a refusal marked [`crate::web::problem::Denied`] (an operator acting beyond
/// their roles or on their own means) as `operator.access_denied`, with the operator the
/// bearer token names, the method and the path (R-LOG-4, R-SEC-3). The alert rule
/// `operator_exceeds_role` reads these records.
async fn audit_refusal(app: &App, reason: String, asked: Asked) {
    let bearer = asked
        .bearer
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
        serde_json::json!({"reason": reason, "method": asked.method.as_str(), "path": asked.target.path()}),
    );
    if let Err(e) = app.store.append(event).await {
        tracing::warn!(error = %e, "operator refusal not audited");
    }
}

#[cfg(test)]
#[path = "layers_tests.rs"]
mod tests;
