//! `[limits]`: transport limits (R-SEC-5): body, headers, timeouts, connections, rates.

use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;
use super::error::ConfigError;

/// Transport limits (R-SEC-5).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Maximum request body in bytes.
    pub body_bytes: usize,
    /// Maximum length of one request parameter.
    pub param_chars: usize,
    /// Whole-request timeout.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Requests handled at once (excess waits, then 503).
    pub concurrency: usize,
    /// Largest request head (request line and headers together) in bytes; a larger one
    /// gets 431 (R-SEC-5). The HTTP parser's hard cap is twice this (at least 8 KiB).
    pub header_bytes: usize,
    /// Most header fields in one request (431 beyond).
    pub header_count: usize,
    /// A client must deliver a complete request head (and finish the TLS handshake)
    /// within this time, or the connection is closed (slowloris protection).
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Open connections at once from one IP address (more are closed at once).
    pub connections_per_ip: usize,
    /// Open connections at once in total.
    pub max_connections: usize,
    /// Requests per second one IP address may sustain (token bucket; 0 = no limit).
    pub rate_per_ip: u32,
    /// Requests one IP address may send in a burst above the sustained rate.
    pub rate_burst: u32,
    /// Networks of reverse proxies whose `X-Forwarded-For` names the client (CIDR, e.g.
    /// `["10.0.0.0/8"]`). Empty (the default): the TCP peer is the client and the
    /// header is ignored. Per-IP rate limits, login limits, audit records and the
    /// `/metrics` loopback check then use the forwarded address; connection limits stay
    /// on the TCP peer.
    pub trusted_proxies: Vec<super::network::Network>,
    /// Look-ups of personal data (helpdesk and admin) one operator may make per minute
    /// (429 beyond; every look-up is audited, hit or miss).
    pub operator_lookups_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            param_chars: 2048,
            request_timeout: Duration::from_secs(30),
            concurrency: 1024,
            header_bytes: 16 * 1024,
            header_count: 100,
            header_read_timeout: Duration::from_secs(10),
            connections_per_ip: 256,
            max_connections: 10_000,
            rate_per_ip: 100,
            rate_burst: 1000,
            trusted_proxies: Vec::new(),
            operator_lookups_per_minute: 60,
        }
    }
}

impl LimitsConfig {
    /// Validates the limits beyond positivity (R-SEC-5).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let l = self;
        if l.header_bytes < 1024 || l.header_count == 0 || l.connections_per_ip == 0 || l.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "limits",
                why: "header_bytes at least 1024; header_count, connections_per_ip, max_connections positive".into(),
            });
        }
        if l.header_read_timeout.is_zero() || l.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "limits.header_read_timeout / limits.request_timeout",
                why: "must be positive".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn r_sec_5_transport_limits_parse_and_are_validated() {
        let mut c = Config::from_toml(
            "[limits]\nheader_read_timeout = \"300ms\"\nrate_per_ip = 0\nconnections_per_ip = 4\n[metrics]\nloopback = false",
        )
        .unwrap();
        c.finish().unwrap();
        assert_eq!(c.limits.header_read_timeout, Duration::from_millis(300));
        assert_eq!((c.limits.rate_per_ip, c.limits.connections_per_ip), (0, 4));
        assert!(!c.metrics.loopback);
        for bad in [
            "[limits]\nheader_bytes = 10",
            "[limits]\nconnections_per_ip = 0",
            "[limits]\nheader_read_timeout = \"0s\"",
        ] {
            let mut c = Config::from_toml(bad).unwrap();
            assert!(c.finish().is_err(), "{bad}");
        }
        let mut c = Config::default();
        c.apply_env(|k| (k == "EIDGATE_METRICS_TOKEN").then(|| "short".to_owned()));
        assert!(c.finish().is_err(), "a short metrics token is refused");
        assert!(!format!("{:?}", c.metrics).contains("short"));
    }
}
