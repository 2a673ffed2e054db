//! What an authorization code, an access token and a refresh token stand for, and where
//! they live: codes and access tokens in the ephemeral store (keyed by the SHA-256 of the
//! token, never the token), refresh tokens in SQL.

use serde::{Deserialize, Serialize};

use super::authorize::ClaimsRequest;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId};
use crate::domain::loa::{Amr, Loa};
use crate::domain::secret::fingerprint_hex;
use crate::domain::UnixTime;

/// The authentication that a grant rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// The holder.
    pub person: PersonId,
    /// The means that authenticated (checked again at every use, R-AUTH-1).
    pub means: MeansId,
    /// When the holder authenticated.
    pub auth_time: UnixTime,
    /// The achieved level.
    pub loa: Loa,
    /// Methods used.
    pub amr: Vec<Amr>,
    /// SSO session id (`sid`).
    pub sid: String,
    /// The mandate the holder acts under for a legal person (scope `eidas_legal`,
    /// R-BIND-1); checked again at every release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandate: Option<crate::domain::ids::MandateId>,
}

/// Everything an authorization code stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The client the code was issued to.
    pub client_id: ClientId,
    /// The redirect URI of the authorization request (must match at the token endpoint).
    pub redirect_uri: String,
    /// `sub` for this client (public or pairwise), computed when the code was issued.
    pub sub: String,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Nonce for the ID token.
    pub nonce: Option<String>,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Individually requested claims.
    pub claims: ClaimsRequest,
    /// The authentication.
    pub authn: Authentication,
    /// Expiry (at most 60 s after issue).
    pub exp: UnixTime,
}

/// Everything an access token stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGrant {
    /// The grant it belongs to.
    pub grant_id: GrantId,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// `sub` for this client.
    pub sub: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Individually requested userinfo claims.
    pub claims: ClaimsRequest,
    /// The authentication.
    pub authn: Authentication,
    /// Issued at.
    pub iat: UnixTime,
    /// Issued at, milliseconds (compared with status-change markers of the means).
    #[serde(default)]
    pub issued_ms: i64,
    /// Expiry.
    pub exp: UnixTime,
    /// The RFC 7638 thumbprint of the DPoP key the token is bound to (`cnf.jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// What a refresh token carries beside the columns of `RefreshRecord`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// `sub` for this client.
    pub sub: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Individually requested claims.
    pub claims: ClaimsRequest,
    /// The authentication.
    pub authn: Authentication,
    /// The DPoP key the refresh token is bound to (RFC 9449 §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// Ephemeral key of an authorization code.
pub fn code_key(code: &str) -> String {
    format!("code:{}", fingerprint_hex(code))
}

/// Ephemeral marker left when a code is redeemed (replay detection → revoke the grant).
pub fn code_used_key(code: &str) -> String {
    format!("code-used:{}", fingerprint_hex(code))
}

/// Ephemeral key of an access token.
pub fn access_key(token: &str) -> String {
    format!("at:{}", fingerprint_hex(token))
}

/// Ephemeral marker of a revoked grant (its access tokens stop at once).
pub fn revoked_grant_key(grant: GrantId) -> String {
    format!("grant-revoked:{grant}")
}

/// Ephemeral marker of the last status change of a means: access tokens issued at or
/// before it are dead even if the means is active again.
pub fn means_changed_key(means: MeansId) -> String {
    format!("means-changed:{means}")
}

/// Ephemeral marker of a withdrawn consent: the holder's access tokens at that client
/// issued at or before it are dead (their refresh tokens are revoked in SQL with the
/// consent).
pub fn consent_withdrawn_key(person: PersonId, client: &ClientId) -> String {
    format!("consent-withdrawn:{person}:{}", fingerprint_hex(client.as_str()))
}
