//! Operator authentication for `/admin/v1` and `/helpdesk/v1` (R-SEC-3, R-SEC-4): an
//! access token of this provider, issued to a client registered as the operators'
//! console, whose holder has an operator record. Roles come from that record, never from
//! the client or the token. Every refusal is audited.

use serde_json::json;

use super::state::Admin;
use crate::audit::AuditEvent;
use crate::domain::operator::Operator;

/// Why an operator request is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperatorAuthError {
    /// No, malformed, expired or revoked token (401).
    #[error("a valid operator access token is required")]
    Unauthenticated,
    /// A valid token, but not from the console or not of an operator (403).
    #[error("the caller is not an operator")]
    NotAnOperator,
    /// An operator's token from a login below `[operators] minimum_acr` or older than
    /// `[operators] max_auth_age` (403 `operator-assurance`, R-SEC-4).
    #[error("the operator login is too weak or too old")]
    Assurance(&'static str),
    /// A dependency is down (503).
    #[error("temporarily unavailable")]
    Unavailable,
}

/// Resolves a bearer token to an operator.
pub async fn authenticate(app: &Admin, bearer: Option<&str>) -> Result<Operator, OperatorAuthError> {
    let token = bearer.ok_or(OperatorAuthError::Unauthenticated)?;
    let grant = match crate::oidc::userinfo::validate_access_token(&app.oidc, token).await {
        Ok(g) => g,
        Err(e) if e.code == crate::oidc::error::ErrorCode::TemporarilyUnavailable => {
            // The ephemeral store may be down: the helpdesk must still work (R-LIFE-1).
            e.log_cause();
            match crate::oidc::operator_token::validate_durable(&app.oidc, token).await {
                Ok(g) => g,
                Err(e) if e.code == crate::oidc::error::ErrorCode::TemporarilyUnavailable => {
                    e.log_cause();
                    return Err(OperatorAuthError::Unavailable);
                }
                Err(_) => return Err(OperatorAuthError::Unauthenticated),
            }
        }
        Err(_) => return Err(OperatorAuthError::Unauthenticated),
    };
    let console = app
        .store
        .client(&grant.client_id)
        .await
        .map_err(|_| OperatorAuthError::Unavailable)?
        .is_some_and(|c| c.operator_console);
    let operator = if console {
        app.store
            .operator(grant.authn.person)
            .await
            .map_err(|_| OperatorAuthError::Unavailable)?
    } else {
        None
    };
    match operator {
        Some(op) if !op.roles.is_empty() => {
            if let Some(why) = super::assurance::shortfall(&app.config.operators, &grant, app.now()) {
                super::assurance::audit_refusal(app, &grant, why).await;
                return Err(OperatorAuthError::Assurance(why));
            }
            Ok(op)
        }
        _ => {
            let audit = AuditEvent::new(
                crate::audit::catalogue::OPERATOR_ACCESS_DENIED,
                format!("holder:{}", grant.authn.person),
                "operator-api",
                json!({"client_id": grant.client_id.as_str(), "reason": if console { "not_an_operator" } else { "not_console_client" }}),
            );
            if let Err(e) = app.store.append(audit).await {
                tracing::warn!(error = %e, "operator refusal not audited");
            }
            Err(OperatorAuthError::NotAnOperator)
        }
    }
}
