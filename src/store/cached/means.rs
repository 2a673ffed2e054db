//! [`MeansRepo`] through the cache: a means' status is cached (checked against its change
//! marker), every status change drops the entry before and after the write.

use async_trait::async_trait;
use tokio::time::Instant;

use super::lock;
use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::store::{AuthFactor, Credential, MeansRepo, StoreError};

#[async_trait]
impl MeansRepo for CachedStore {
    async fn means(&self, id: MeansId) -> Result<Option<EidMeans>, StoreError> {
        // Read before the database, so a change committed after this read shows as a
        // different marker next time.
        let marker = match &self.markers {
            None => None,
            Some(m) => match m.ephemeral.get(&(m.key)(id)).await {
                Ok(marker) => marker,
                Err(_) => return self.inner.means(id).await,
            },
        };
        if let Some((m, seen)) = self.fresh(&self.means, &id) {
            if seen == marker {
                return Ok(Some(m));
            }
        }
        // The time is taken before the read, so an entry never outlives `ttl` from the
        // moment the database was asked.
        let started = Instant::now();
        let m = self.inner.means(id).await?;
        if let Some(found) = &m {
            Self::remember(&self.means, id, (found.clone(), marker), started);
        }
        Ok(m)
    }

    async fn means_of_holder(&self, holder: PersonId) -> Result<Vec<EidMeans>, StoreError> {
        self.inner.means_of_holder(holder).await
    }

    async fn credential(&self, id: MeansId) -> Result<Credential, StoreError> {
        self.inner.credential(id).await
    }

    async fn insert_means(
        &self,
        means: &EidMeans,
        credential: &Credential,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.insert_means(means, credential, audit).await
    }

    async fn use_totp_step(&self, id: MeansId, step: i64) -> Result<bool, StoreError> {
        self.inner.use_totp_step(id, step).await
    }

    async fn count_auth_failure(&self, id: MeansId, factor: AuthFactor) -> Result<i64, StoreError> {
        self.inner.count_auth_failure(id, factor).await
    }

    async fn clear_auth_failures(&self, id: MeansId, factor: AuthFactor) -> Result<(), StoreError> {
        self.inner.clear_auth_failures(id, factor).await
    }

    async fn set_status(
        &self,
        id: MeansId,
        expected_version: i64,
        status: MeansStatus,
        audit: AuditEvent,
    ) -> Result<EidMeans, StoreError> {
        // Dropped before and after: no reader can re-insert the old state in between and
        // have it survive the write.
        lock(&self.means).remove(&id);
        let r = self.inner.set_status(id, expected_version, status, audit).await;
        lock(&self.means).remove(&id);
        r
    }
}
