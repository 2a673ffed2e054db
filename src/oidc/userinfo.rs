//! The userinfo endpoint (OIDC Core §5.3) and bearer-token validation shared with
//! introspection. A token stops working the moment its grant is revoked or its means
//! stops being active (R-AUTH-1, R-LIFE-4).

use serde_json::{Map, Value};

use super::error::{ErrorCode, OAuthError};
use super::grant::Authentication;
use super::grant::{self, AccessGrant};
use super::state::Oidc;
use crate::domain::claims;
use crate::domain::client::Client;
use crate::ephemeral;

/// Looks up and checks an access token. Any failure is `invalid_token`, except an
/// unavailable dependency (`temporarily_unavailable`: fail closed, never "valid").
pub async fn validate_access_token(app: &Oidc, token: &str) -> Result<AccessGrant, OAuthError> {
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
    let grant: AccessGrant = match ephemeral::decode(app.ephemeral.get(&grant::access_key(token)).await?) {
        Some(grant) => grant,
        // Not in the ephemeral store (e.g. Redis restarted empty): operator tokens are
        // durable in SQL, so the helpdesk is not logged out (R-LIFE-1). The checks below
        // apply as to any token.
        None => super::operator_token::durable(app, token, now)
            .await?
            .ok_or_else(invalid)?,
    };
    if grant.exp <= now {
        return Err(invalid());
    }
    if app
        .ephemeral
        .get(&grant::revoked_grant_key(grant.grant_id))
        .await?
        .is_some()
    {
        return Err(invalid());
    }
    // A status change of the means kills the tokens issued before it, even if the means
    // is active again by now (R-LIFE-4); so does a withdrawn consent at this client.
    for marker in [
        grant::means_changed_key(grant.authn.means),
        grant::consent_withdrawn_key(grant.authn.person, &grant.client_id),
    ] {
        if let Some(changed) = app.ephemeral.get(&marker).await? {
            let at: i64 = std::str::from_utf8(&changed)
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(i64::MAX);
            if grant.issued_ms <= at {
                return Err(invalid());
            }
        }
    }
    match crate::authn::usable::ensure_means_usable(app.store.as_ref(), &grant.authn, now).await {
        Ok(()) => Ok(grant),
        Err(crate::authn::AuthnError::Unavailable | crate::authn::AuthnError::Dependency(_)) => {
            Err(OAuthError::unavailable())
        }
        Err(_) => Err(invalid()),
    }
}

/// The userinfo response for a valid access token, presented as its binding requires
/// (a DPoP-bound token only with a proof by its key, [`super::dpop`]).
pub async fn userinfo(
    app: &Oidc,
    token: &str,
    presented: super::dpop::Presented<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    let grant = validate_access_token(app, token).await?;
    super::dpop::check_presentation(app, grant.jkt.as_deref(), token, presented).await?;
    let client = app
        .store
        .client(&grant.client_id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "the client of this token no longer exists"))?;
    let mut out = released_claims(app, &client, &grant.authn, &grant.scope, &grant.claims.userinfo).await?;
    if let Some(verified) = verified_claims(app, &client, &grant.authn, &grant.claims.verified_userinfo).await? {
        out.insert("verified_claims".into(), verified);
    }
    out.insert("sub".into(), Value::String(grant.sub));
    Ok(out)
}

/// The claims of the authenticated holder that were requested (by `scopes` or
/// individually) and that `client` may receive (R-AUTH-2, R-DATA-4); the legal person's
/// claims only while the mandate the holder chose is still usable (R-BIND-1).
pub async fn released_claims(
    app: &Oidc,
    client: &Client,
    authn: &Authentication,
    scopes: &[String],
    individually: &[String],
) -> Result<Map<String, Value>, OAuthError> {
    let person = app
        .store
        .person(authn.person)
        .await?
        .ok_or_else(OAuthError::invalid_grant)?;
    let country = client.country.as_deref().unwrap_or(&app.config.country);
    let mut available = claims::all_natural(&person, country);
    if let Some(mandate) = authn.mandate {
        match crate::authn::usable::usable_mandate(app.store.as_ref(), mandate, authn.person, authn.loa, app.now())
            .await
        {
            Ok(Some((_, legal))) => available.extend(legal.claims(country)),
            Ok(None) => {}
            Err(_) => return Err(OAuthError::unavailable()),
        }
    }
    let requested = claims::requested_names(scopes.iter().map(String::as_str), individually);
    let mut out = claims::release(&available, &requested, &client.allowed_claims);
    out.remove("sub");
    Ok(out)
}

/// The requested claims wrapped as OpenID Connect for Identity Assurance
/// `verified_claims` (DESIGN "Claims"): trust framework `eidas`, the achieved LoA as the
/// assurance level; the same allow list applies. `None` when nothing is released.
pub async fn verified_claims(
    app: &Oidc,
    client: &Client,
    authn: &Authentication,
    names: &[String],
) -> Result<Option<Value>, OAuthError> {
    if names.is_empty() {
        return Ok(None);
    }
    let released = released_claims(app, client, authn, &[], names).await?;
    if released.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::json!({
        "verification": {"trust_framework": "eidas", "assurance_level": authn.loa.short()},
        "claims": released,
    })))
}
