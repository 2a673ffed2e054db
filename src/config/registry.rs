//! `[registry]`: the person register renewals at high are checked against (R-RENEW-2).

use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;

/// `[registry]`: the authoritative source of identity data (R-RENEW-2), reached by the
/// HTTP JSON adapter in `lifecycle::registry`. Without `url`, renewal at high is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Base URL; the adapter asks `GET {url}/persons/{country}/{code}`.
    pub url: Option<String>,
    /// How long one query may take.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(5),
        }
    }
}
