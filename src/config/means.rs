//! `[means]`: lifecycle settings of means (activation codes, validity).

use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;

/// Means lifecycle settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeansConfig {
    /// Activation code validity.
    #[serde(deserialize_with = "duration")]
    pub activation_code_ttl: Duration,
    /// Activation attempts.
    pub activation_max_attempts: u32,
    /// Validity of a new means.
    #[serde(deserialize_with = "duration")]
    pub validity: Duration,
}

impl Default for MeansConfig {
    fn default() -> Self {
        Self {
            activation_code_ttl: Duration::from_secs(72 * 3600),
            activation_max_attempts: 5,
            validity: Duration::from_secs(5 * 365 * 24 * 3600),
        }
    }
}
