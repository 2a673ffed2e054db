//! [`FidoRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::store::{FidoCredentialRecord, FidoRepo, StoreError};

#[async_trait]
impl FidoRepo for CachedStore {
    async fn fido_by_credential_id(&self, credential_id: &str) -> Result<Option<FidoCredentialRecord>, StoreError> {
        self.inner.fido_by_credential_id(credential_id).await
    }

    async fn fido_of_means(&self, means: MeansId) -> Result<Option<FidoCredentialRecord>, StoreError> {
        self.inner.fido_of_means(means).await
    }

    async fn save_fido_credential(&self, record: &FidoCredentialRecord, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.save_fido_credential(record, audit).await
    }

    async fn update_fido_state(
        &self,
        means: MeansId,
        previous: &str,
        next: &str,
        used_at: crate::domain::UnixTime,
    ) -> Result<bool, StoreError> {
        self.inner.update_fido_state(means, previous, next, used_at).await
    }
}
