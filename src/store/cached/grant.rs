//! [`GrantRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::domain::ids::{ClientId, GrantId};
use crate::domain::UnixTime;
use crate::store::{GrantRepo, RefreshOutcome, RefreshRecord, StoreError};

#[async_trait]
impl GrantRepo for CachedStore {
    async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError> {
        self.inner.insert_refresh(record).await
    }

    async fn rotate_refresh(
        &self,
        token_sha256: &str,
        client: &ClientId,
        now: UnixTime,
        replacement: &RefreshRecord,
    ) -> Result<RefreshOutcome, StoreError> {
        self.inner.rotate_refresh(token_sha256, client, now, replacement).await
    }

    async fn refresh(&self, token_sha256: &str, now: UnixTime) -> Result<Option<RefreshRecord>, StoreError> {
        self.inner.refresh(token_sha256, now).await
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<u64, StoreError> {
        self.inner.revoke_grant(grant).await
    }
}
