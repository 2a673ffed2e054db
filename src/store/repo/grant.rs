//! [`GrantRepo`]: refresh-token grants, stored as fingerprints, rotated with reuse detection.

use async_trait::async_trait;

use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId};
use crate::domain::UnixTime;
use crate::store::StoreError;

/// A refresh token as stored: only its SHA-256 fingerprint, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Hex SHA-256 of the token.
    pub token_sha256: String,
    /// The grant (one authorization code) it belongs to; revoked together.
    pub grant_id: GrantId,
    /// The client it is bound to.
    pub client_id: ClientId,
    /// The holder.
    pub person_id: PersonId,
    /// The means that authenticated; checked at every refresh (R-AUTH-1).
    pub means_id: MeansId,
    /// Everything else the token endpoint needs to issue tokens again (scope, acr, amr,
    /// auth_time, sid, claims request), as JSON.
    pub grant_data: serde_json::Value,
    /// Issued at.
    pub created_at: UnixTime,
    /// Expires at.
    pub expires_at: UnixTime,
}

/// Result of consuming a refresh token for rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live: it is now used and `new` is stored in its place.
    Rotated(RefreshRecord),
    /// The token had been used already: the whole grant is now revoked (reuse detection).
    Reused(GrantId),
    /// Unknown, expired or revoked.
    Invalid,
}

/// Refresh-token grants (durable; access tokens and codes are ephemeral).
#[async_trait]
pub trait GrantRepo: Send + Sync {
    /// Stores a new refresh token.
    async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError>;
    /// Atomically consumes `token_sha256` (if live, unused, unexpired at `now` and bound
    /// to `client`) and stores `replacement` in the same grant. A used token revokes the
    /// whole grant. A token of another client is `Invalid` and changes nothing.
    async fn rotate_refresh(
        &self,
        token_sha256: &str,
        client: &ClientId,
        now: UnixTime,
        replacement: &RefreshRecord,
    ) -> Result<RefreshOutcome, StoreError>;
    /// A live refresh token by fingerprint (for introspection).
    async fn refresh(&self, token_sha256: &str, now: UnixTime) -> Result<Option<RefreshRecord>, StoreError>;
    /// Revokes every refresh token of a grant. Returns how many were live.
    async fn revoke_grant(&self, grant: GrantId) -> Result<u64, StoreError>;
}
