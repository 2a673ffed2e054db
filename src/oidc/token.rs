//! The token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3): the authorization-code and
//! refresh-token grants. Each exchange costs one HSM signature (the ID token); access
//! tokens are opaque random values, so everything else is cheap.
//!
//! Rules: codes are single use and live at most 60 s; a replayed code revokes every token
//! issued from it (RFC 6749 §4.1.2, fosite); refresh tokens rotate, are bound to their
//! client, and a reused one revokes its grant; the means is checked again at every
//! exchange and refresh (R-AUTH-1, R-LIFE-4).

use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::authorize::ClaimsRequest;
use super::error::{ErrorCode, OAuthError};
use super::grant::{self, AccessGrant, Authentication, CodeGrant, RefreshGrant};
use super::params::Params;
use super::state::Oidc;
use super::{jws, pkce};
use crate::domain::client::Client;
use crate::domain::ids::GrantId;
use crate::domain::secret::fingerprint_hex;
use crate::ephemeral::{self, StatusEvent};
use crate::monitor::phases::Phase;
use crate::store::{RefreshOutcome, RefreshRecord, StoreError};

/// How long a redeemed code is remembered to detect replays.
const CODE_REPLAY_MEMORY: Duration = Duration::from_secs(600);

/// A token request, by grant type. `Debug` redacts the code, verifier and refresh token.
#[derive(PartialEq, Eq)]
pub enum TokenRequest {
    /// `authorization_code` (RFC 6749 §4.1.3).
    AuthorizationCode {
        /// The code.
        code: String,
        /// Must equal the authorization request's.
        redirect_uri: Option<String>,
        /// PKCE verifier.
        verifier: Option<String>,
    },
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken {
        /// The refresh token.
        refresh_token: String,
        /// A narrower scope, if asked.
        scope: Option<String>,
    },
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenRequest::AuthorizationCode { redirect_uri, .. } => f
                .debug_struct("AuthorizationCode")
                .field("code", &"[redacted]")
                .field("redirect_uri", redirect_uri)
                .field("verifier", &"[redacted]")
                .finish(),
            TokenRequest::RefreshToken { scope, .. } => f
                .debug_struct("RefreshToken")
                .field("refresh_token", &"[redacted]")
                .field("scope", scope)
                .finish(),
        }
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenRequest {
    /// Parses the form (client credentials already removed).
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        match params.get("grant_type") {
            Some("authorization_code") => Ok(TokenRequest::AuthorizationCode {
                code: params
                    .get("code")
                    .ok_or_else(|| OAuthError::invalid_request("code is required"))?
                    .to_owned(),
                redirect_uri: params.get("redirect_uri").map(str::to_owned),
                verifier: params.get("code_verifier").map(str::to_owned),
            }),
            Some("refresh_token") => Ok(TokenRequest::RefreshToken {
                refresh_token: params
                    .get("refresh_token")
                    .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?
                    .to_owned(),
                scope: params.get("scope").map(str::to_owned),
            }),
            Some(_) => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "supported: authorization_code, refresh_token",
            )),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    }
}

/// A successful token response (RFC 6749 §5.1). `Debug` redacts the tokens.
#[derive(Serialize)]
pub struct TokenResponse {
    /// Opaque bearer access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for tokens bound to a DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The signed ID token.
    pub id_token: String,
    /// A rotating refresh token (scope `offline_access`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scopes.
    pub scope: String,
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::dependency(e)
    }
}

impl From<crate::ephemeral::EphemeralError> for OAuthError {
    fn from(e: crate::ephemeral::EphemeralError) -> Self {
        OAuthError::dependency(e)
    }
}

impl From<crate::hsm::HsmError> for OAuthError {
    fn from(e: crate::hsm::HsmError) -> Self {
        OAuthError::dependency(e)
    }
}

/// Runs a token request for an authenticated `client`; `jkt` is the thumbprint of the key
/// of a verified DPoP proof sent with it ([`super::dpop`]), which the tokens are bound to.
pub async fn exchange(
    app: &Oidc,
    client: &Client,
    request: TokenRequest,
    jkt: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    // R-OPS-3: after a clock jump no token carries a time we cannot vouch for.
    if app.alarm.raised().is_some() {
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "token issuance is paused until the clock is checked",
        ));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            verifier,
        } => redeem_code(app, client, &code, redirect_uri.as_deref(), verifier.as_deref(), jkt).await,
        TokenRequest::RefreshToken { refresh_token, scope } => {
            refresh(app, client, &refresh_token, scope.as_deref(), jkt).await
        }
    }
}

async fn redeem_code(
    app: &Oidc,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    jkt: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let eph = app.ephemeral.as_ref();
    let started = Instant::now();
    let (code_key, used_key) = grant::code_keys(code);
    let Some(grant) = ephemeral::decode::<CodeGrant>(eph.take(&code_key).await?) else {
        // Unknown or already redeemed. A replay revokes what the first redemption got.
        if let Some(bytes) = eph.get(&used_key).await? {
            if let Ok(grant_id) = serde_json::from_slice::<GrantId>(&bytes) {
                revoke_grant(app, grant_id, "code_replay").await?;
            }
        }
        return Err(OAuthError::invalid_grant());
    };
    let now = app.now();
    if grant.exp <= now || grant.client_id != client.client_id || redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant());
    }
    match (&grant.code_challenge, verifier) {
        (Some(challenge), Some(v)) if pkce::verify_s256(v, challenge) => {}
        (None, None) => {}
        _ => return Err(OAuthError::invalid_grant()),
    }
    let taken = started.elapsed();
    app.phases
        .time(
            Phase::MeansCheck,
            crate::authn::usable::ensure_means_usable(app.store.as_ref(), &grant.authn, now),
        )
        .await
        .map_err(|_| OAuthError::invalid_grant())?;

    let started = Instant::now();
    let grant_id = GrantId::from_random_bytes(crate::random::bytes());
    let marker = serde_json::to_vec(&grant_id).map_err(|_| OAuthError::unavailable())?;
    eph.put(&used_key, &marker, CODE_REPLAY_MEMORY).await?;
    app.phases.observe(Phase::CodeRedeem, taken + started.elapsed());

    let refresh = if grant.scope.iter().any(|s| s == "offline_access") {
        let token = crate::random::token();
        let record = refresh_record(
            app,
            client,
            grant_id,
            &token,
            &grant.sub,
            &grant.scope,
            &grant.claims,
            &grant.authn,
            jkt.clone(),
        )?;
        let started = Instant::now();
        app.store.insert_refresh(&record).await?;
        app.phases.observe(Phase::TokenStore, started.elapsed());
        Some(token)
    } else {
        None
    };
    let subject = Subject {
        sub: grant.sub,
        scope: grant.scope,
        claims: grant.claims,
        authn: grant.authn,
    };
    issue(app, client, grant_id, subject, grant.nonce.as_deref(), refresh, jkt).await
}

async fn refresh(
    app: &Oidc,
    client: &Client,
    token: &str,
    scope: Option<&str>,
    jkt: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let now = app.now();
    let presented = fingerprint_hex(token);
    let Some(current) = app.store.refresh(&presented, now).await? else {
        // Unknown, expired, revoked, or used: let the store decide and revoke on reuse.
        let dummy = RefreshRecord {
            token_sha256: String::new(),
            grant_id: GrantId::new(),
            client_id: client.client_id.clone(),
            person_id: crate::domain::ids::PersonId::new(),
            means_id: crate::domain::ids::MeansId::new(),
            grant_data: serde_json::Value::Null,
            created_at: now,
            expires_at: now,
        };
        if let RefreshOutcome::Reused(grant_id) = app
            .store
            .rotate_refresh(&presented, &client.client_id, now, &dummy)
            .await?
        {
            tracing::warn!(grant = %grant_id, client = %client.client_id, "refresh token reuse: grant revoked");
            revoke_grant(app, grant_id, "refresh_reuse").await?;
        }
        return Err(OAuthError::invalid_grant());
    };
    if current.client_id != client.client_id {
        return Err(OAuthError::invalid_grant());
    }
    let stored: RefreshGrant =
        serde_json::from_value(current.grant_data.clone()).map_err(|_| OAuthError::invalid_grant())?;
    // RFC 9449 §5: a bound refresh token needs a proof by its key; the new tokens keep it.
    let jkt = match (&stored.jkt, jkt) {
        (None, presented) => presented,
        (Some(_), None) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "this refresh token is bound to a DPoP key: a proof is required",
            ))
        }
        (Some(bound), Some(presented)) if crate::domain::secret::ct_eq(bound.as_bytes(), presented.as_bytes()) => {
            Some(presented)
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "the proof is not by the key the refresh token is bound to",
            ))
        }
    };
    crate::authn::usable::ensure_means_usable(app.store.as_ref(), &stored.authn, now)
        .await
        .map_err(|_| OAuthError::invalid_grant())?;
    let scope: Vec<String> = match scope {
        None => stored.scope.clone(),
        Some(asked) => {
            let asked: Vec<String> = asked.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if asked.iter().any(|s| !stored.scope.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "scope exceeds the original grant",
                ));
            }
            asked
        }
    };
    let new_token = crate::random::token();
    let replacement = refresh_record(
        app,
        client,
        current.grant_id,
        &new_token,
        &stored.sub,
        &stored.scope,
        &stored.claims,
        &stored.authn,
        jkt.clone(),
    )?;
    match app
        .store
        .rotate_refresh(&presented, &client.client_id, now, &replacement)
        .await?
    {
        RefreshOutcome::Rotated(_) => {}
        RefreshOutcome::Reused(grant_id) => {
            revoke_grant(app, grant_id, "refresh_reuse").await?;
            return Err(OAuthError::invalid_grant());
        }
        RefreshOutcome::Invalid => return Err(OAuthError::invalid_grant()),
    }
    let subject = Subject {
        sub: stored.sub,
        scope,
        claims: stored.claims,
        authn: stored.authn,
    };
    issue(app, client, current.grant_id, subject, None, Some(new_token), jkt).await
}

#[allow(clippy::too_many_arguments)]
fn refresh_record(
    app: &Oidc,
    client: &Client,
    grant_id: GrantId,
    token: &str,
    sub: &str,
    scope: &[String],
    claims: &ClaimsRequest,
    authn: &Authentication,
    jkt: Option<String>,
) -> Result<RefreshRecord, OAuthError> {
    let now = app.now();
    let data = RefreshGrant {
        sub: sub.to_owned(),
        scope: scope.to_vec(),
        claims: claims.clone(),
        authn: authn.clone(),
        jkt,
    };
    Ok(RefreshRecord {
        token_sha256: fingerprint_hex(token),
        grant_id,
        client_id: client.client_id.clone(),
        person_id: authn.person,
        means_id: authn.means,
        grant_data: serde_json::to_value(data).map_err(|_| OAuthError::unavailable())?,
        created_at: now,
        // Sliding within an absolute end that rotation never moves (the session maximum
        // counted from the authentication).
        expires_at: (now + secs(app.config.tokens.refresh_ttl))
            .min(authn.auth_time.saturating_add(secs(app.config.tokens.refresh_max))),
    })
}

/// Revokes a grant everywhere: refresh tokens in SQL (durable first), then the marker
/// that stops its access tokens, then the event for other instances.
pub async fn revoke_grant(app: &Oidc, grant_id: GrantId, reason: &str) -> Result<(), OAuthError> {
    app.store.revoke_grant(grant_id).await?;
    app.store.revoke_operator_tokens(grant_id).await?;
    app.ephemeral
        .put(
            &grant::revoked_grant_key(grant_id),
            reason.as_bytes(),
            app.config.tokens.access_ttl,
        )
        .await?;
    app.ephemeral
        .publish(&StatusEvent::GrantRevoked { grant: grant_id })
        .await?;
    Ok(())
}

/// Whom and what new tokens are for: moved out of the code or refresh grant they come
/// from into the access token's record, not copied (issue 22).
struct Subject {
    sub: String,
    scope: Vec<String>,
    claims: ClaimsRequest,
    authn: Authentication,
}

async fn issue(
    app: &Oidc,
    client: &Client,
    grant_id: GrantId,
    subject: Subject,
    nonce: Option<&str>,
    refresh_token: Option<String>,
    jkt: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let started = Instant::now();
    let now = app.now();
    let access_ttl = secs(app.config.tokens.access_ttl);
    let access_token = crate::random::token();
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    let access = AccessGrant {
        grant_id,
        client_id: client.client_id.clone(),
        sub: subject.sub,
        scope: subject.scope,
        claims: subject.claims,
        authn: subject.authn,
        iat: now,
        issued_ms: app.now_ms(),
        exp: now + access_ttl,
        jkt,
    };
    let AccessGrant {
        sub,
        scope,
        claims,
        authn,
        ..
    } = &access;
    ephemeral::put_json(
        app.ephemeral.as_ref(),
        &grant::access_key(&access_token),
        &access,
        app.config.tokens.access_ttl,
    )
    .await?;
    super::operator_token::remember(app, client, &access_token, &access).await?;
    app.phases.observe(Phase::TokenStore, started.elapsed());

    let mut id_claims = super::id_token::IdTokenClaims::new(
        &app.config.issuer,
        sub,
        client.client_id.as_str(),
        now + secs(app.config.tokens.id_token_ttl),
        now,
        authn,
        client.acr_value(authn.loa),
        nonce,
        half_hash(&access_token),
    );
    // Claims asked for individually for the ID token, and those of eIDAS attribute scopes
    // (an eIDAS-Node's proxy service reads them from the ID token, [`super::eidas`]).
    let attribute_scopes = super::eidas::attribute_scopes(scope);
    if !claims.id_token.is_empty() || !attribute_scopes.is_empty() {
        id_claims.release(
            crate::oidc::userinfo::released_claims(app, client, authn, &attribute_scopes, &claims.id_token).await?,
        );
    }
    if let Some(verified) =
        crate::oidc::userinfo::verified_claims(app, client, authn, &claims.verified_id_token).await?
    {
        id_claims.verified(verified);
    }
    let id_token = app
        .phases
        .time(
            Phase::TokenSign,
            jws::sign(
                app.signer.as_ref(),
                client.id_token_signed_response_alg,
                "JWT",
                &id_claims,
            ),
        )
        .await?;
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_in: u64::try_from(access_ttl).unwrap_or(0),
        id_token,
        refresh_token,
        scope: scope.join(" "),
    })
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6).
fn half_hash(token: &str) -> String {
    use base64::Engine;
    let digest = Sha256::digest(token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub use crate::domain::secs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sec_2_token_requests_never_print_their_secrets() {
        let p = Params::parse(
            b"grant_type=authorization_code&code=c0de-s3cret&code_verifier=v3rifier",
            100,
        )
        .unwrap();
        let shown = format!("{:?}", TokenRequest::parse(&p).unwrap());
        assert!(!shown.contains("c0de-s3cret") && !shown.contains("v3rifier"), "{shown}");
        let p = Params::parse(b"grant_type=refresh_token&refresh_token=r3fresh", 100).unwrap();
        assert!(!format!("{:?}", TokenRequest::parse(&p).unwrap()).contains("r3fresh"));
    }

    #[test]
    fn grant_types_parse_and_unknown_ones_are_unsupported() {
        let p = Params::parse(
            b"grant_type=authorization_code&code=c&redirect_uri=r&code_verifier=v",
            100,
        )
        .unwrap();
        assert!(matches!(
            TokenRequest::parse(&p),
            Ok(TokenRequest::AuthorizationCode { .. })
        ));
        let p = Params::parse(b"grant_type=password&username=a&password=b", 100).unwrap();
        assert_eq!(
            TokenRequest::parse(&p).unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
        let p = Params::parse(b"grant_type=authorization_code", 100).unwrap();
        assert_eq!(TokenRequest::parse(&p).unwrap_err().code, ErrorCode::InvalidRequest);
    }
}
