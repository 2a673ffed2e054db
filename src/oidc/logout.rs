//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the
//! `post_logout_redirect_uri` is honoured only when it is registered for the client
//! identified by a valid `id_token_hint` of ours (or `client_id`), so the endpoint is no
//! open redirector.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::params::Params;
use super::state::Oidc;
use crate::domain::ids::ClientId;

#[derive(serde::Deserialize)]
struct HintClaims {
    sub: String,
    aud: serde_json::Value,
    #[serde(default)]
    acr: Option<String>,
    #[serde(default)]
    iat: Option<i64>,
}

/// How recent an ID token must be to serve as `authenticated_holder` evidence.
pub const HOLDER_EVIDENCE_MAX_AGE: i64 = 600;

/// What an ID token presented as `authenticated_holder` evidence proves.
#[derive(Debug)]
pub struct HolderEvidence {
    /// The holder (from a public `sub` in the eIDAS form).
    pub person: crate::domain::ids::PersonIdentifier,
    /// The level of that authentication.
    pub loa: crate::domain::loa::Loa,
    /// When the token was issued.
    pub iat: i64,
    /// The client it was issued to.
    pub aud: String,
}

/// Verifies an ID token of ours presented as evidence that the holder authenticated
/// (helpdesk `authenticated_holder`): our signature, issued at most 10 minutes ago, a
/// public `sub` in the eIDAS form, a single audience. The caller checks the audience
/// and that the token is newer than the means' last change.
pub fn verify_holder_id_token(app: &Oidc, token: &str) -> Option<HolderEvidence> {
    let claims = verify_hint(app, token)?;
    let iat = claims.iat?;
    let now = app.now();
    if now - iat > HOLDER_EVIDENCE_MAX_AGE || iat > now + 60 {
        return None;
    }
    let loa = crate::domain::loa::Loa::from_acr(claims.acr.as_deref()?)?;
    let aud = match claims.aud {
        serde_json::Value::String(s) => s,
        serde_json::Value::Array(a) if a.len() == 1 => a.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    Some(HolderEvidence {
        person: claims.sub.parse().ok()?,
        loa,
        iat,
        aud,
    })
}

fn verify_hint(app: &Oidc, hint: &str) -> Option<HintClaims> {
    let header = jsonwebtoken::decode_header(hint).ok()?;
    if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256) {
        return None;
    }
    let jwks: JwkSet = serde_json::from_slice(app.signer.jwks_json().as_ref()).ok()?;
    let jwk = jwks.find(header.kid.as_deref()?)?;
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[app.config.issuer.as_str()]);
    // An expired ID token is still a valid hint of who logged in (OIDC logout §2).
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    jsonwebtoken::decode::<HintClaims>(hint, &key, &validation)
        .ok()
        .map(|d| d.claims)
}

/// The `sub` of a valid `id_token_hint` issued by this provider.
pub fn hint_subject(app: &Oidc, hint: &str) -> Option<String> {
    verify_hint(app, hint).map(|c| c.sub)
}

/// Where to send the browser after logout, if anywhere.
pub async fn post_logout_redirect(app: &Oidc, params: &Params) -> Option<String> {
    let uri = params.get("post_logout_redirect_uri")?;
    let from_hint = params
        .get("id_token_hint")
        .and_then(|h| verify_hint(app, h))
        .and_then(|c| match c.aud {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
            _ => None,
        });
    let client_id = match (from_hint, params.get("client_id")) {
        (Some(h), Some(c)) if h != c => return None,
        (Some(h), _) => h,
        (None, Some(c)) => c.to_owned(),
        (None, None) => return None,
    };
    let client = app.store.client(&client_id.parse::<ClientId>().ok()?).await.ok()??;
    if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
        return None;
    }
    let mut url = url::Url::parse(uri).ok()?;
    if let Some(state) = params.get("state") {
        url.query_pairs_mut().append_pair("state", state);
    }
    Some(url.to_string())
}
