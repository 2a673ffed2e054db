//! [`ClientRepo`]: relying-party registrations.

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::store::StoreError;

/// Relying parties.
#[async_trait]
pub trait ClientRepo: Send + Sync {
    /// A client by id.
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// Inserts or replaces a client; audited.
    async fn upsert_client(&self, client: &Client, audit: AuditEvent) -> Result<(), StoreError>;
}
