//! [`OperatorTokenRepo`]: operator access tokens kept durably (R-LIFE-1, R-OPS-1).

use async_trait::async_trait;

use crate::domain::ids::GrantId;
use crate::domain::UnixTime;
use crate::store::StoreError;

/// Operator access tokens kept durably (R-LIFE-1, R-OPS-1): the helpdesk keeps working
/// while the ephemeral store is down. Keys are SHA-256 fingerprints, never tokens.
#[async_trait]
pub trait OperatorTokenRepo: Send + Sync {
    /// Records an operator's access token (its fingerprint) with the grant as JSON.
    async fn insert_operator_token(
        &self,
        token_sha256: &str,
        grant: GrantId,
        grant_data: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError>;
    /// The grant JSON of an unexpired operator token; expired rows are deleted here.
    async fn operator_token(&self, token_sha256: &str, now: UnixTime) -> Result<Option<String>, StoreError>;
    /// Deletes every operator token of `grant` (revocation).
    async fn revoke_operator_tokens(&self, grant: GrantId) -> Result<u64, StoreError>;
}
