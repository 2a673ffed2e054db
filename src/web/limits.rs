//! Per-request transport limits (R-SEC-5) that the router applies before any handler:
//! the request head size (431 problem+json) and the per-IP rate limit (429 problem+json
//! with `Retry-After`). The connection limits and the header read timeout are in
//! [`super::server`]; body size and request timeout are tower-http layers in
//! [`super::router`].
//!
//! The rate limit is a token bucket per client address (an IPv6 client by its /64, which
//! one subscriber usually holds whole), kept in this instance's memory: with N instances
//! behind a balancer a client gets at most N times the rate. The login-specific limits
//! (per account, per IP, global) are shared through the ephemeral store instead.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Problem;
use crate::config::Config;
use crate::monitor::metrics::Metrics;

/// The address a limit is counted against: IPv4 as is, IPv6 by its /64 prefix (an
/// IPv4-mapped IPv6 address as the IPv4 address).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before idle ones (full again) are swept.
const SWEEP_ABOVE: usize = 50_000;

/// A token bucket per client address.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `rate` requests per second sustained, `burst` at once; `rate == 0` disables it.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip` at `now`; when none is left, how long until one is.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > SWEEP_ABOVE {
            let full_after = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < full_after);
        }
        let burst = self.burst;
        let bucket = buckets
            .entry(client_key(ip))
            .or_insert(Bucket { tokens: burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// Paths never rate limited: the orchestrator's probes and the scraper.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// What [`super::layers::Enforce`] needs: the limits, this instance's buckets and the metrics.
pub struct Enforcement {
    /// Configuration (`[limits]`).
    pub config: Arc<Config>,
    /// The per-IP buckets.
    pub limiter: RateLimiter,
    /// Counts refusals.
    pub metrics: Arc<Metrics>,
}

impl Enforcement {
    /// From `[limits]`.
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>) -> Self {
        Self {
            limiter: RateLimiter::new(config.limits.rate_per_ip, config.limits.rate_burst),
            config,
            metrics,
        }
    }
}

/// The answer to a request whose head is too large (431) or whose address is over its
/// rate (429).
pub(super) fn refusal(app: &Enforcement, request: &axum::extract::Request, now: Instant) -> Option<Response> {
    let limits = &app.config.limits;
    let head = request.method().as_str().len()
        + display_len(request.uri())
        + request
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > limits.header_bytes {
        tracing::warn!(bytes = head, "request head too large");
        return Some(
            Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "header-too-large",
                "Request header fields too large",
            )
            .detail(format!(
                "the request head may have at most {} bytes",
                limits.header_bytes
            ))
            .into_response(),
        );
    }
    if exempt(request.uri().path()) {
        return None;
    }
    let ip = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let wait = app.limiter.check(ip, now).err()?;
    app.metrics.rate_limited();
    tracing::warn!(peer = %client_key(ip), "rate limit exceeded");
    let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
        .detail("this address sent too many requests; retry later");
    problem.retry_after = Some(wait.as_secs().saturating_add(1));
    Some(problem.into_response())
}

/// The length of `value` as text, without writing the text anywhere.
fn display_len(value: &impl std::fmt::Display) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{value}"));
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sec_5_token_bucket_refills_at_the_rate() {
        let limiter = RateLimiter::new(2, 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, t0).is_ok());
        }
        let wait = limiter.check(ip, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && !wait.is_zero(), "{wait:?}");
        // Another client is not affected.
        assert!(limiter.check("192.0.2.2".parse().unwrap(), t0).is_ok());
        // Half a second later one token is back (2 per second).
        assert!(limiter.check(ip, t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.check(ip, t0 + Duration::from_millis(500)).is_err());
        // Disabled.
        assert!(RateLimiter::new(0, 1).check(ip, t0).is_ok());
    }

    #[test]
    fn the_head_counts_the_target_as_sent() {
        for target in ["/", "/token?a=b%20c", "http://id.example:8443/x?y", "*"] {
            let uri: axum::http::Uri = target.parse().unwrap();
            assert_eq!(display_len(&uri), uri.to_string().len(), "{target}");
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
