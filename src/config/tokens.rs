//! `[tokens]`: lifetimes of codes, tokens, PAR requests and login flows.

use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;

/// Token lifetimes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Authorization code lifetime (at most 60 s).
    #[serde(deserialize_with = "duration")]
    pub code_ttl: Duration,
    /// Access token lifetime.
    #[serde(deserialize_with = "duration")]
    pub access_ttl: Duration,
    /// ID token lifetime.
    #[serde(deserialize_with = "duration")]
    pub id_token_ttl: Duration,
    /// Refresh token lifetime (each rotation starts a new one, within `refresh_max`).
    #[serde(deserialize_with = "duration")]
    pub refresh_ttl: Duration,
    /// Absolute lifetime of a refresh grant, counted from the authentication (the
    /// session maximum): rotation never extends it.
    #[serde(deserialize_with = "duration")]
    pub refresh_max: Duration,
    /// PAR `request_uri` lifetime.
    #[serde(deserialize_with = "duration")]
    pub par_ttl: Duration,
    /// Login flow lifetime.
    #[serde(deserialize_with = "duration")]
    pub flow_ttl: Duration,
    /// Clock skew allowed for client assertions (`private_key_jwt`): how far `iat` and
    /// `nbf` may lie in the future and `exp` in the past (at most 5 minutes).
    #[serde(deserialize_with = "duration")]
    pub assertion_skew: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(600),
            id_token_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(8 * 3600),
            refresh_max: Duration::from_secs(12 * 3600),
            par_ttl: Duration::from_secs(90),
            flow_ttl: Duration::from_secs(900),
            assertion_skew: Duration::from_secs(30),
        }
    }
}
