//! The transport services on their own, with a handler the test controls.

use axum::body::Body;
use tokio::sync::oneshot;

use super::*;
use crate::config::Config;
use crate::monitor::metrics::Metrics;

fn request(path: &str) -> Request {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

fn in_flight(metrics: &Metrics) -> String {
    let text = metrics.encode().unwrap();
    text.lines()
        .find(|l| l.starts_with("eidgate_http_requests_in_flight"))
        .unwrap_or_default()
        .to_owned()
}

/// A handler that answers each request when the test says so (a `oneshot` per request).
fn held_handler(
    gates: std::sync::Arc<std::sync::Mutex<Vec<oneshot::Receiver<()>>>>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + 'static {
    tower::service_fn(move |_req: Request| {
        let gate = gates.lock().unwrap().pop();
        async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Ok::<_, Infallible>(axum::http::StatusCode::NO_CONTENT.into_response())
        }
    })
}

/// Polls `future` once (no timer: whether it can finish now).
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

#[tokio::test]
async fn r_sec_5_over_the_concurrency_limit_a_request_waits_and_an_abandoned_one_frees_its_slot() {
    let metrics = Arc::new(Metrics::new());
    let mut config = Config::default();
    config.limits.rate_per_ip = 0;
    let state = Arc::new(Enforcement::new(Arc::new(config), metrics.clone()));
    let (hold_first, first_gate) = oneshot::channel::<()>();
    let gates = Arc::new(std::sync::Mutex::new(vec![first_gate]));
    let mut service = EnforceLayer::new(state, 1).layer(held_handler(gates));

    // The first request takes the only slot (at `call`) and stays in the handler.
    let mut first = Box::pin(service.ready().await.unwrap().call(request("/a")));
    assert!(poll_once(&mut first).await.is_pending());
    // The second waits for it: polled, it is still waiting for the slot.
    let mut second = Box::pin(service.ready().await.unwrap().call(request("/b")));
    assert!(
        poll_once(&mut second).await.is_pending(),
        "a second request ran beside the only slot"
    );
    assert!(in_flight(&metrics).ends_with(" 2"), "{}", in_flight(&metrics));
    // The first client goes away: its future is dropped, which frees the slot and its
    // place in flight; the waiting request then runs.
    drop(first);
    drop(hold_first);
    let answered = second.await.unwrap();
    assert_eq!(answered.status(), 204);
    assert!(in_flight(&metrics).ends_with(" 0"), "{}", in_flight(&metrics));
}

#[tokio::test]
async fn r_ops_1_answers_are_counted_under_their_route_template_never_the_path() {
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(Enforcement::new(Arc::new(Config::default()), metrics.clone()));
    let routes = axum::Router::new()
        .route(
            "/means/{id}",
            axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .layer(RouteLabelLayer);
    let mut service = EnforceLayer::new(state, 4).layer(routes);
    for path in ["/means/secret-1", "/means/secret-2", "/nowhere"] {
        service.ready().await.unwrap().call(request(path)).await.unwrap();
    }
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("eidgate_http_requests_total{method=\"GET\",route=\"/means/{id}\",status=\"204\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("eidgate_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}
