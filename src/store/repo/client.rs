//! [`ClientRepo`]: relying-party registrations.

use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::store::StoreError;

/// Relying parties.
#[async_trait]
pub trait ClientRepo: Send + Sync {
    /// A client by id; shared, as the cache holds it (issue 22: a registration copied
    /// field by field at every token request).
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError>;
    /// Inserts or replaces a client; audited.
    async fn upsert_client(&self, client: &Client, audit: AuditEvent) -> Result<(), StoreError>;
}
