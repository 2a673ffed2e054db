//! What an authorization code, an access token and a refresh token stand for, and where
//! they live: codes and access tokens in the ephemeral store (keyed by the SHA-256 of the
//! token, never the token), refresh tokens in SQL.

use serde::{Deserialize, Serialize};

use super::authorize::ClaimsRequest;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId};
use crate::domain::loa::{Amr, Loa};
use crate::domain::secret::{fingerprint, fingerprint_hex};
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
pub fn code_key(code: &str) -> SecretKey {
    SecretKey::new(CODE, &fingerprint(code))
}

/// Both keys of a code from one hash: [`code_key`], and the marker left when the code is
/// redeemed (replay detection → revoke the grant).
pub fn code_keys(code: &str) -> (SecretKey, SecretKey) {
    let digest = fingerprint(code);
    (SecretKey::new(CODE, &digest), SecretKey::new(CODE_USED, &digest))
}

/// Ephemeral key of an access token.
pub fn access_key(token: &str) -> SecretKey {
    SecretKey::new(ACCESS, &fingerprint(token))
}

const CODE: &str = "code:";
const CODE_USED: &str = "code-used:";
const ACCESS: &str = "at:";

/// An ephemeral-store key: a prefix and the SHA-256 of a secret in lowercase hex (never
/// the secret), made on the stack (issue 22: an exchange makes three). Reads as `&str`.
#[derive(Clone, Copy)]
pub struct SecretKey {
    len: usize,
    bytes: [u8; SecretKey::CAPACITY],
}

impl SecretKey {
    const PREFIX_MAX: usize = 16;
    const CAPACITY: usize = Self::PREFIX_MAX + 64;

    fn new(prefix: &'static str, digest: &[u8; 32]) -> Self {
        let mut bytes = [0u8; Self::CAPACITY];
        // The prefixes are the constants above, all shorter than PREFIX_MAX (pinned by a
        // test); a longer one would be cut rather than overflow.
        let p = prefix.len().min(Self::PREFIX_MAX);
        bytes[..p].copy_from_slice(&prefix.as_bytes()[..p]);
        // 64 bytes for 32: the slice always fits, so this cannot fail.
        let written = hex::encode_to_slice(digest, &mut bytes[p..p + 64]).is_ok();
        SecretKey {
            len: if written { p + 64 } else { p },
            bytes,
        }
    }
}

impl std::ops::Deref for SecretKey {
    type Target = str;

    fn deref(&self) -> &str {
        // ASCII by construction.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Display for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_the_prefix_and_the_hex_sha256_never_the_secret() {
        let code = "c0de-s3cret";
        let hex = fingerprint_hex(code);
        let (key, used) = code_keys(code);
        assert_eq!(&*key, format!("code:{hex}"));
        assert_eq!(&*used, format!("code-used:{hex}"));
        assert_eq!(&*code_key(code), &*key);
        assert_eq!(&*access_key(code), format!("at:{hex}"));
        assert!(!format!("{key} {key:?}").contains(code));
        for prefix in [CODE, CODE_USED, ACCESS] {
            assert!(prefix.len() <= SecretKey::PREFIX_MAX, "{prefix}");
        }
    }
}
