//! Token introspection (RFC 7662) and revocation (RFC 7009) for authenticated clients.
//! A client sees only its own tokens: another client's token introspects as
//! `{"active": false}`, exactly like an unknown one.

use serde_json::{json, Value};

use super::error::OAuthError;
use super::grant;
use super::state::Oidc;
use super::token::revoke_grant;
use super::userinfo::validate_access_token;
use crate::domain::client::Client;
use crate::domain::secret::fingerprint_hex;
use crate::oidc::grant::RefreshGrant;

/// Introspects `token` for `client`.
pub async fn introspect(app: &Oidc, client: &Client, token: &str, hint: Option<&str>) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    let refresh_first = hint == Some("refresh_token");
    for kind in if refresh_first {
        ["refresh", "access"]
    } else {
        ["access", "refresh"]
    } {
        if kind == "access" {
            match validate_access_token(app, token).await {
                Ok(g) if g.client_id == client.client_id => {
                    return Ok(json!({
                        "active": true,
                        "token_type": "Bearer",
                        "client_id": g.client_id.as_str(),
                        "sub": g.sub,
                        "scope": g.scope.join(" "),
                        "exp": g.exp,
                        "iat": g.iat,
                        "iss": app.config.issuer,
                        "aud": g.client_id.as_str(),
                        "auth_time": g.authn.auth_time,
                        "acr": client.acr_value(g.authn.loa),
                    }))
                }
                Ok(_) => return Ok(inactive),
                Err(e) if e.code == super::error::ErrorCode::TemporarilyUnavailable => return Err(e),
                Err(_) => {}
            }
        } else {
            let now = app.now();
            if let Some(r) = app.store.refresh(&fingerprint_hex(token), now).await? {
                if r.client_id != client.client_id {
                    return Ok(inactive);
                }
                let Ok(data) = serde_json::from_value::<RefreshGrant>(r.grant_data.clone()) else {
                    return Ok(inactive);
                };
                return match crate::authn::usable::ensure_means_usable(app.store.as_ref(), &data.authn, now).await {
                    Ok(()) => Ok(json!({
                        "active": true,
                        "token_type": "refresh_token",
                        "client_id": r.client_id.as_str(),
                        "sub": data.sub,
                        "scope": data.scope.join(" "),
                        "exp": r.expires_at,
                        "iat": r.created_at,
                        "iss": app.config.issuer,
                    })),
                    Err(crate::authn::AuthnError::Unavailable | crate::authn::AuthnError::Dependency(_)) => {
                        Err(OAuthError::unavailable())
                    }
                    Err(_) => Ok(inactive),
                };
            }
        }
    }
    Ok(inactive)
}

/// Revokes `token` if it belongs to `client` (RFC 7009 §2.1: a refresh token revokes its
/// whole grant). Unknown tokens are not an error.
pub async fn revoke(app: &Oidc, client: &Client, token: &str) -> Result<(), OAuthError> {
    let key = grant::access_key(token);
    if let Some(g) = crate::ephemeral::decode::<grant::AccessGrant>(app.ephemeral.get(&key).await?) {
        if g.client_id == client.client_id {
            if client.operator_console {
                // Its durable copy too (oidc::operator_token), first.
                app.store.revoke_operator_tokens(g.grant_id).await?;
            }
            app.ephemeral.delete(&key).await?;
        }
        return Ok(());
    }
    if let Some(r) = app.store.refresh(&fingerprint_hex(token), app.now()).await? {
        if r.client_id == client.client_id {
            revoke_grant(app, r.grant_id, "rfc7009").await?;
        }
    }
    Ok(())
}
