//! Operator assurance (R-SEC-4; DESIGN "Contracts added in the second round"): the admin
//! and helpdesk APIs take an operator's token only when its login reached
//! `[operators] minimum_acr` (default substantial) and is not older than
//! `[operators] max_auth_age` (default 12 h). A password-only operator login has no
//! powers. Operator passwords expire after `password_max_age` (default 30 days) and the
//! last `password_history` (12) are never reused (see [`crate::authn::operator_password`]).

use serde_json::json;

use super::state::Admin;
use crate::audit::AuditEvent;
pub use crate::config::OperatorsConfig;
use crate::oidc::grant::AccessGrant;

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
