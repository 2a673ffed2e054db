//! `[operators]`: operator assurance and password rules (R-SEC-4); applied by
//! [`crate::admin::assurance`].

use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;
use super::error::ConfigError;
use crate::domain::loa::Loa;

/// `[operators]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorsConfig {
    /// Lowest login level whose token the operator APIs accept.
    pub minimum_acr: Loa,
    /// Oldest login (`auth_time`) whose token the operator APIs accept.
    #[serde(deserialize_with = "duration")]
    pub max_auth_age: Duration,
    /// Longest an operator password is valid (R-SEC-4: at most 30 days).
    #[serde(deserialize_with = "duration")]
    pub password_max_age: Duration,
    /// How many earlier passwords an operator cannot reuse.
    pub password_history: usize,
}

impl Default for OperatorsConfig {
    fn default() -> Self {
        Self {
            minimum_acr: Loa::Substantial,
            max_auth_age: Duration::from_secs(12 * 3600),
            password_max_age: Duration::from_secs(30 * 86_400),
            password_history: 12,
        }
    }
}

impl OperatorsConfig {
    /// R-SEC-4 bounds: passwords expire within 30 days, at least 12 are remembered.
    pub fn finish(&self) -> Result<(), ConfigError> {
        let invalid = |key, why: &str| ConfigError::Invalid { key, why: why.into() };
        if self.password_max_age.is_zero() || self.password_max_age > Duration::from_secs(30 * 86_400) {
            return Err(invalid(
                "operators.password_max_age",
                "between 1 s and 30 days (R-SEC-4)",
            ));
        }
        if self.password_history < 12 || self.password_history > 100 {
            return Err(invalid("operators.password_history", "between 12 and 100"));
        }
        if self.max_auth_age.is_zero() {
            return Err(invalid("operators.max_auth_age", "must be positive"));
        }
        Ok(())
    }
}
