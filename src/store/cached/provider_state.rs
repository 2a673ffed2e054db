//! [`ProviderStateRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::means::EidMeans;
use crate::store::{ProviderStateRepo, StoreError};

#[async_trait]
impl ProviderStateRepo for CachedStore {
    async fn provider_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.inner.provider_state(name).await
    }

    async fn set_provider_state(&self, name: &str, value: &str, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.set_provider_state(name, value, audit).await
    }

    async fn means_not_final(&self, limit: i64) -> Result<Vec<EidMeans>, StoreError> {
        self.inner.means_not_final(limit).await
    }
}
