//! `[session]`: SSO session bounds per LoA (NIST 800-63B re-authentication).

use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;

/// SSO session bounds (NIST 800-63B re-authentication).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Longest session at low.
    #[serde(deserialize_with = "duration")]
    pub max_age_low: Duration,
    /// Longest session at substantial.
    #[serde(deserialize_with = "duration")]
    pub max_age_substantial: Duration,
    /// Longest session at high.
    #[serde(deserialize_with = "duration")]
    pub max_age_high: Duration,
    /// Idle limit at low.
    #[serde(deserialize_with = "duration")]
    pub idle_low: Duration,
    /// Idle limit at substantial (NIST 800-63B AAL2: 30 minutes).
    #[serde(deserialize_with = "duration")]
    pub idle_substantial: Duration,
    /// Idle limit at high (NIST 800-63B AAL3: 15 minutes).
    #[serde(deserialize_with = "duration")]
    pub idle_high: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_age_low: Duration::from_secs(12 * 3600),
            max_age_substantial: Duration::from_secs(12 * 3600),
            max_age_high: Duration::from_secs(12 * 3600),
            idle_low: Duration::from_secs(3600),
            idle_substantial: Duration::from_secs(30 * 60),
            idle_high: Duration::from_secs(15 * 60),
        }
    }
}
