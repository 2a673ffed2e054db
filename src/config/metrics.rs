//! `[metrics]`: the Prometheus `/metrics` endpoint and who may read it.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::error::ConfigError;

/// `/metrics` (Prometheus/OpenMetrics text). Readable from a loopback address (when
/// `loopback`) or with `Authorization: Bearer <token>` (token from `EIDGATE_METRICS_TOKEN`
/// or `token_file`); anyone else gets 404, as if it did not exist.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Peers on a loopback address may read it without a token. Set `false` when a
    /// reverse proxy on the same host forwards public traffic.
    pub loopback: bool,
    /// File holding the bearer token (at least 32 characters).
    pub token_file: Option<PathBuf>,
    /// The token, from `EIDGATE_METRICS_TOKEN` or `token_file`.
    #[serde(skip)]
    pub token: Option<SecretString>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            loopback: true,
            token_file: None,
            token: None,
        }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("loopback", &self.loopback)
            .field("token_file", &self.token_file)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl MetricsConfig {
    /// Loads the token file (unless `EIDGATE_METRICS_TOKEN` set the token) and checks the
    /// token's length.
    pub(super) fn load_token(&mut self) -> Result<(), ConfigError> {
        if self.token.is_none() {
            if let Some(path) = &self.token_file {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                self.token = Some(SecretString::from(text.trim().to_owned()));
            }
        }
        use secrecy::ExposeSecret as _;
        if self.token.as_ref().is_some_and(|t| t.expose_secret().len() < 32) {
            return Err(ConfigError::Invalid {
                key: "metrics.token_file / EIDGATE_METRICS_TOKEN",
                why: "the metrics token must have at least 32 characters".into(),
            });
        }
        Ok(())
    }
}
