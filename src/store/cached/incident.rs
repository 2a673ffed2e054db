//! [`IncidentRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::store::{IncidentRecord, IncidentRepo, StoreError};

#[async_trait]
impl IncidentRepo for CachedStore {
    async fn insert_incident(&self, incident: &IncidentRecord, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_incident(incident, audit).await
    }

    async fn incidents(&self, limit: i64) -> Result<Vec<IncidentRecord>, StoreError> {
        self.inner.incidents(limit).await
    }
}
