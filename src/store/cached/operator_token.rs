//! [`OperatorTokenRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::domain::ids::GrantId;
use crate::domain::UnixTime;
use crate::store::{OperatorTokenRepo, StoreError};

#[async_trait]
impl OperatorTokenRepo for CachedStore {
    async fn insert_operator_token(
        &self,
        token_sha256: &str,
        grant: GrantId,
        grant_data: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.inner
            .insert_operator_token(token_sha256, grant, grant_data, expires_at)
            .await
    }

    async fn operator_token(&self, token_sha256: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.inner.operator_token(token_sha256, now).await
    }

    async fn revoke_operator_tokens(&self, grant: GrantId) -> Result<u64, StoreError> {
        self.inner.revoke_operator_tokens(grant).await
    }
}
