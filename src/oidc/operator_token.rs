//! Operators' access tokens that survive an ephemeral-store outage (R-LIFE-1, R-OPS-1).
//!
//! Access tokens live in the ephemeral store (Redis with several instances). The
//! helpdesk must still suspend and revoke when Redis is down, so a token issued to the
//! operators' console is also recorded in SQL (its SHA-256, never the token) and
//! validated from there when the ephemeral store is unavailable, or answers without it
//! (Redis restarted without persistence: then every other check still runs against
//! Redis, see `userinfo::validate_access_token`). While Redis is down, the checks that do
//! not need it still apply: expiry, the grant not revoked (revocation deletes the rows
//! first), the operator's own means active in SQL. Tokens of other clients are never
//! accepted this way: logins and relying parties fail closed while Redis is down.

use super::error::{ErrorCode, OAuthError};
use super::grant::AccessGrant;
use super::state::Oidc;
use crate::domain::client::Client;
use crate::domain::secret::fingerprint_hex;

/// Records `token` of `client` durably when `client` is the operators' console.
pub async fn remember(app: &Oidc, client: &Client, token: &str, access: &AccessGrant) -> Result<(), OAuthError> {
    if !client.operator_console {
        return Ok(());
    }
    let data = serde_json::to_string(access).map_err(|_| OAuthError::unavailable())?;
    app.store
        .insert_operator_token(&fingerprint_hex(token), access.grant_id, &data, access.exp)
        .await?;
    Ok(())
}

/// Validates an operator token from SQL (only while the ephemeral store is down).
pub async fn validate_durable(app: &Oidc, token: &str) -> Result<AccessGrant, OAuthError> {
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        )
    };
    if token.is_empty() || token.len() > 512 {
        return Err(invalid());
    }
    let now = app.now();
    let grant = durable(app, token, now).await?.ok_or_else(invalid)?;
    if grant.exp <= now {
        return Err(invalid());
    }
    match crate::authn::usable::ensure_means_usable(app.store.as_ref(), &grant.authn, now).await {
        Ok(()) => Ok(grant),
        Err(crate::authn::AuthnError::Unavailable | crate::authn::AuthnError::Dependency(_)) => {
            Err(OAuthError::unavailable())
        }
        Err(_) => Err(invalid()),
    }
}

/// The operator token recorded in SQL for `token`, if it is one and unexpired at `now`
/// (nothing else is checked here).
pub async fn durable(app: &Oidc, token: &str, now: crate::domain::UnixTime) -> Result<Option<AccessGrant>, OAuthError> {
    let Some(data) = app.store.operator_token(&fingerprint_hex(token), now).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&data).ok())
}
