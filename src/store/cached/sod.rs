//! [`SodRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::UnixTime;
use crate::store::{Approval, SodRepo, StoreError};

#[async_trait]
impl SodRepo for CachedStore {
    async fn insert_approval(&self, approval: &Approval, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_approval(approval, audit).await
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.inner.approval(id).await
    }

    async fn open_approvals(&self, limit: i64) -> Result<Vec<Approval>, StoreError> {
        self.inner.open_approvals(limit).await
    }

    async fn decide_approval(
        &self,
        id: &str,
        state: &str,
        by: PersonId,
        at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.decide_approval(id, state, by, at, audit).await
    }

    async fn password_history(&self, means: MeansId, limit: i64) -> Result<Vec<(String, UnixTime)>, StoreError> {
        self.inner.password_history(means, limit).await
    }

    async fn record_password(&self, means: MeansId, phc: &str, at: UnixTime) -> Result<(), StoreError> {
        self.inner.record_password(means, phc, at).await
    }
}
