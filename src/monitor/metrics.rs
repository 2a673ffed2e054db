//! Operational metrics in the Prometheus/OpenMetrics text format (`/metrics`, DESIGN
//! "Running in production"): HTTP requests by route and status with latency histograms,
//! logins by method, LoA and outcome, HSM signature latency and sessions in use, and the
//! database pool. Encoding is the `prometheus-client` crate's.
//!
//! Must not: carry personal data in a label (routes are the router's templates such as
//! `/authn/flows/{flow}/password`, never the concrete path), or make a request wait on a
//! lock held across I/O (the families are updated with atomics).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::domain::client::SigningAlg;
use crate::hsm::{HsmError, Kid, Signer};

/// Labels of the HTTP series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `GET`, `POST`, ... (`other` for any method outside RFC 9110, [`method_label`]).
    pub method: &'static str,
    /// The matched route template, or `unmatched` ([`interned`]).
    pub route: &'static str,
    /// The response status code.
    pub status: u16,
}

/// The label of a request method: the methods of RFC 9110 (and PATCH) by name, any other
/// as `other`. A client may send any token as its method, and each label value is a
/// series kept for the life of the process: made-up methods must not grow the metrics.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|known| *known == method).unwrap_or("other")
}

/// Route templates kept as label values at most; any beyond are counted as `other`.
const MAX_ROUTES: usize = 512;

/// A route template as a `&'static str` label value (issue 22): the label set is built
/// for every request to look its series up, and with a `String` that was two copies of
/// the route per request. The templates are the router's (a concrete path never reaches
/// a label, see the module), so the set is small; each is kept once for the life of the
/// process, and past 512 they are `other`.
pub fn interned(route: &str) -> &'static str {
    static ROUTES: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(RwLock::default);
    if let Some(known) = routes.read().unwrap_or_else(PoisonError::into_inner).get(route) {
        return known;
    }
    let mut routes = routes.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = routes.get(route) {
        return known;
    }
    if routes.len() >= MAX_ROUTES {
        return "other";
    }
    let kept: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(kept);
    kept
}

/// Labels of the HTTP latency histogram (no status: one histogram per route).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// `GET`, `POST`, ... (`other` for any method outside RFC 9110, [`method_label`]).
    pub method: &'static str,
    /// The matched route template, or `unmatched` ([`interned`]).
    pub route: &'static str,
}

/// Labels of the login counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// The means kind (`password`, `totp`, `smartcard`, `fido`).
    pub method: String,
    /// Achieved LoA on success, requested LoA on failure.
    pub loa: String,
    /// `success` or `failure`.
    pub outcome: String,
}

/// Labels of the HSM series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignLabels {
    /// JWS algorithm.
    pub alg: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Database pool figures, read at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolUsage {
    /// Connections open.
    pub open: u32,
    /// Of which idle.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

/// Reads [`PoolUsage`] from the store at scrape time.
pub type PoolProbe = Box<dyn Fn() -> PoolUsage + Send + Sync>;

/// Every series eidgate exports.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    http_in_flight: Gauge,
    logins: Family<LoginLabels, Counter>,
    rate_limited: Counter,
    connections_refused: Counter,
    hsm_sign_duration: Family<SignLabels, Histogram>,
    hsm_in_flight: Gauge,
    hsm_sessions: Gauge,
    db_open: Gauge,
    db_idle: Gauge,
    db_max: Gauge,
    pool_probe: std::sync::OnceLock<PoolProbe>,
    scrapes: AtomicU64,
    phases: Arc<super::phases::Phases>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

fn hsm_histogram() -> Histogram {
    // 50 µs .. ~0.8 s: SoftHSM signs in ~0.1 ms, a network HSM in milliseconds.
    Histogram::new(exponential_buckets(0.00005, 2.0, 15))
}

impl Metrics {
    /// A registry with every eidgate series registered (prefix `eidgate_`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("eidgate");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let http_in_flight = Gauge::default();
        let logins = Family::<LoginLabels, Counter>::default();
        let rate_limited = Counter::default();
        let connections_refused = Counter::default();
        let hsm_sign_duration =
            Family::<SignLabels, Histogram>::new_with_constructor(hsm_histogram as fn() -> Histogram);
        let hsm_in_flight = Gauge::default();
        let hsm_sessions = Gauge::default();
        let (db_open, db_idle, db_max) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            http_duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled now",
            http_in_flight.clone(),
        );
        registry.register(
            "logins",
            "Finished login attempts by means kind, LoA (achieved on success, requested on failure) and outcome",
            logins.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429 by the per-IP rate limit",
            rate_limited.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept because of the per-IP or total connection limit",
            connections_refused.clone(),
        );
        registry.register(
            "hsm_sign_duration_seconds",
            "Time of one HSM signature including the wait for a session, by algorithm and outcome",
            hsm_sign_duration.clone(),
        );
        registry.register(
            "hsm_sign_in_flight",
            "HSM signatures in flight (waiting for or holding a PKCS#11 session)",
            hsm_in_flight.clone(),
        );
        registry.register(
            "hsm_sessions",
            "PKCS#11 signing sessions in the pool",
            hsm_sessions.clone(),
        );
        registry.register("db_pool_connections", "Database connections open", db_open.clone());
        registry.register("db_pool_idle", "Database connections open and idle", db_idle.clone());
        registry.register("db_pool_max", "Database pool size limit", db_max.clone());
        let phases = super::phases::Phases::register(&mut registry);
        Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            logins,
            rate_limited,
            connections_refused,
            hsm_sign_duration,
            hsm_in_flight,
            hsm_sessions,
            db_open,
            db_idle,
            db_max,
            pool_probe: std::sync::OnceLock::new(),
            scrapes: AtomicU64::new(0),
            phases,
        }
    }

    /// The per-phase histograms (exported with the rest).
    pub fn phases(&self) -> Arc<super::phases::Phases> {
        Arc::clone(&self.phases)
    }

    /// Sets how the database pool is read at scrape time (once, at start-up).
    pub fn set_pool_probe(&self, probe: PoolProbe) {
        let _ = self.pool_probe.set(probe);
    }

    /// Sets the number of PKCS#11 signing sessions.
    pub fn set_hsm_sessions(&self, sessions: usize) {
        self.hsm_sessions.set(i64::try_from(sessions).unwrap_or(i64::MAX));
    }

    /// A request started: in flight until [`Metrics::request_finished`].
    pub fn request_started(&self) {
        self.http_in_flight.inc();
    }

    /// A request counted by [`Metrics::request_started`] is done (answered or
    /// abandoned).
    pub fn request_finished(&self) {
        self.http_in_flight.dec();
    }

    /// Records an answered request.
    pub fn request(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let route = interned(route);
        self.http_requests
            .get_or_create(&HttpLabels { method, route, status })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a finished login attempt.
    pub fn login(&self, method: &str, loa: &str, success: bool) {
        self.logins
            .get_or_create(&LoginLabels {
                method: method.to_owned(),
                loa: loa.to_owned(),
                outcome: if success { "success" } else { "failure" }.to_owned(),
            })
            .inc();
    }

    /// A request refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// A connection refused by a connection limit.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Records one HSM signature.
    pub fn hsm_sign(&self, alg: SigningAlg, ok: bool, elapsed: Duration) {
        self.hsm_sign_duration
            .get_or_create(&SignLabels {
                alg: alg.as_str(),
                outcome: if ok { "ok" } else { "error" },
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The exposition text (OpenMetrics 1.0, which Prometheus reads).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        if let Some(probe) = self.pool_probe.get() {
            let usage = probe();
            self.db_open.set(i64::from(usage.open));
            self.db_idle.set(i64::from(usage.idle));
            self.db_max.set(i64::from(usage.max));
        }
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Decrements the in-flight gauge when the request ends (also when it is cancelled).
#[derive(Debug)]
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A [`Signer`] that measures the signer it wraps: latency (including the wait for a
/// session) and signatures in flight.
pub struct MeteredSigner {
    inner: Arc<dyn Signer>,
    metrics: Arc<Metrics>,
}

impl MeteredSigner {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Signer>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl Signer for MeteredSigner {
    async fn sign(&self, alg: SigningAlg, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError> {
        self.metrics.hsm_in_flight.inc();
        let _done = InFlight(&self.metrics.hsm_in_flight);
        let started = Instant::now();
        let result = self.inner.sign(alg, message).await;
        self.metrics.hsm_sign(alg, result.is_ok(), started.elapsed());
        result
    }

    fn active_kid(&self, alg: SigningAlg) -> Result<Kid, HsmError> {
        self.inner.active_kid(alg)
    }

    fn jwks_json(&self) -> Arc<Vec<u8>> {
        self.inner.jwks_json()
    }

    async fn check(&self) -> Result<(), HsmError> {
        self.inner.check().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_series_and_labels() {
        let m = Metrics::new();
        m.request("GET", "/token", 200, Duration::from_millis(3));
        m.login("password", "low", true);
        m.hsm_sign(SigningAlg::ES256, true, Duration::from_micros(120));
        m.set_pool_probe(Box::new(|| PoolUsage {
            open: 3,
            idle: 1,
            max: 8,
        }));
        let text = m.encode().unwrap();
        assert!(
            text.contains("eidgate_http_requests_total{method=\"GET\",route=\"/token\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("eidgate_logins_total{method=\"password\",loa=\"low\",outcome=\"success\"} 1"));
        assert!(text.contains("eidgate_hsm_sign_duration_seconds_count{alg=\"ES256\",outcome=\"ok\"} 1"));
        assert!(text.contains("eidgate_db_pool_max 8"));
        assert!(text.ends_with("# EOF\n"));
    }
}
