//! Operator assurance (R-SEC-4; DESIGN "Contracts added in the second round"): the admin
//! and helpdesk APIs take an operator's token only when its login reached
//! `[operators] minimum_acr` (default substantial) and is not older than
//! `[operators] max_auth_age` (default 12 h). A password-only operator login has no
//! powers. Operator passwords expire after `password_max_age` (default 30 days) and the
//! last `password_history` (12) are never reused (see [`crate::authn::operator_password`]).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::state::Admin;
use crate::audit::AuditEvent;
use crate::domain::loa::Loa;
use crate::oidc::grant::AccessGrant;

/// `[operators]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorsConfig {
    /// Lowest login level whose token the operator APIs accept.
    pub minimum_acr: Loa,
    /// Oldest login (`auth_time`) whose token the operator APIs accept.
    #[serde(deserialize_with = "crate::config::duration")]
    pub max_auth_age: Duration,
    /// Longest an operator password is valid (R-SEC-4: at most 30 days).
    #[serde(deserialize_with = "crate::config::duration")]
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
    pub fn finish(&self) -> Result<(), crate::config::ConfigError> {
        let invalid = |key, why: &str| crate::config::ConfigError::Invalid { key, why: why.into() };
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

/// Why a grant is too weak for the operator APIs (`None`: strong enough).
pub fn shortfall(config: &OperatorsConfig, grant: &AccessGrant, now: i64) -> Option<&'static str> {
    if grant.authn.loa < config.minimum_acr {
        return Some("acr_below_minimum");
    }
    let max_age = i64::try_from(config.max_auth_age.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(grant.authn.auth_time) > max_age {
        return Some("auth_time_too_old");
    }
    None
}

/// Audits a refusal for insufficient assurance (an attempt to exceed granted rights).
pub async fn audit_refusal(app: &Admin, grant: &AccessGrant, why: &str) {
    let audit = AuditEvent::new(
        crate::audit::catalogue::OPERATOR_ACCESS_DENIED,
        format!("holder:{}", grant.authn.person),
        "operator-api",
        json!({"client_id": grant.client_id.as_str(), "reason": why, "acr": grant.authn.loa,
               "auth_time": grant.authn.auth_time, "minimum_acr": app.config.operators.minimum_acr}),
    );
    if let Err(e) = app.store.append(audit).await {
        tracing::warn!(error = %e, "operator assurance refusal not audited");
    }
}
