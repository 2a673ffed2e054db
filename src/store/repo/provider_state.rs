//! [`ProviderStateRepo`]: provider-wide flags such as termination (R-SUP-3).

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::means::EidMeans;
use crate::store::StoreError;

/// Provider-wide state (R-SUP-3).
#[async_trait]
pub trait ProviderStateRepo: Send + Sync {
    /// A provider flag, e.g. `termination`.
    async fn provider_state(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Sets a provider flag; audited.
    async fn set_provider_state(&self, name: &str, value: &str, audit: AuditEvent) -> Result<(), StoreError>;
    /// Means not yet in a final state (applied, issued, active, suspended), at most `limit`.
    async fn means_not_final(&self, limit: i64) -> Result<Vec<EidMeans>, StoreError>;
}
