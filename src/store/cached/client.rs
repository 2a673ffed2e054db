//! [`ClientRepo`] through the cache: registrations are cached, an upsert drops the entry.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::lock;
use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::store::{ClientRepo, StoreError};

#[async_trait]
impl ClientRepo for CachedStore {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(c) = self.fresh(&self.clients, id) {
            return Ok(c);
        }
        let started = Instant::now();
        let c = self.inner.client(id).await?;
        Self::remember(&self.clients, id.clone(), c.clone(), started);
        Ok(c)
    }

    async fn upsert_client(&self, client: &Client, audit: AuditEvent) -> Result<(), StoreError> {
        let r = self.inner.upsert_client(client, audit).await;
        lock(&self.clients).remove(&client.client_id);
        r
    }
}
