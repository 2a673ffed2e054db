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

/// Introspects `token` for `client`. A token bound to a DPoP key answers with
/// `token_type` `DPoP` and `cnf.jkt` (RFC 9449 §6.2). `proof` is a DPoP proof sent with the
/// request and the endpoint's URL: it is verified (`ath` of `token`), and a token bound to
/// another key is inactive.
pub async fn introspect(
    app: &Oidc,
    client: &Client,
    token: &str,
    hint: Option<&str>,
    proof: Option<(&str, &str)>,
) -> Result<Value, OAuthError> {
    let by_key = match proof {
        Some((proof, htu)) => {
            let expected = super::dpop::Expected {
                htm: "POST",
                htu,
                access_token: Some(token),
                nonce_required: false,
            };
            Some(super::dpop::verify(app, proof, expected, Some(client)).await?)
        }
        None => None,
    };
    let mut answer = introspect_token(app, client, token, hint).await?;
    let bound = answer.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str);
    if let Some(presented) = &by_key {
        if bound != Some(presented.as_str()) {
            answer = json!({ "active": false });
        }
    }
    Ok(answer)
}

/// Adds `cnf.jkt` and the `DPoP` token type to an active answer of a bound token.
fn with_binding(mut answer: Value, jkt: Option<&str>) -> Value {
    if let (Some(jkt), Some(obj)) = (jkt, answer.as_object_mut()) {
        if obj.get("token_type") == Some(&json!("Bearer")) {
            obj.insert("token_type".into(), json!("DPoP"));
        }
        obj.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    answer
}

async fn introspect_token(app: &Oidc, client: &Client, token: &str, hint: Option<&str>) -> Result<Value, OAuthError> {
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
                    let jkt = g.jkt.clone();
                    return Ok(with_binding(
                        json!({
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
                        }),
                        jkt.as_deref(),
                    ));
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
                    Ok(()) => Ok(with_binding(
                        json!({
                            "active": true,
                            "token_type": "refresh_token",
                            "client_id": r.client_id.as_str(),
                            "sub": data.sub,
                            "scope": data.scope.join(" "),
                            "exp": r.expires_at,
                            "iat": r.created_at,
                            "iss": app.config.issuer,
                        }),
                        data.jkt.as_deref(),
                    )),
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
