//! [`IncidentRepo`]: incident records (R-OPS-2).

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::UnixTime;
use crate::store::StoreError;

/// A stored incident record (R-OPS-2); `record` is the classification and its draft.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IncidentRecord {
    /// Id.
    pub id: String,
    /// The affected service.
    pub service: String,
    /// Start, UTC seconds.
    pub started_at: UnixTime,
    /// End, UTC seconds.
    pub ended_at: UnixTime,
    /// Classification, share affected and notification draft (JSON).
    pub record: serde_json::Value,
}

/// Incident records.
#[async_trait]
pub trait IncidentRepo: Send + Sync {
    /// Stores an incident record; audited.
    async fn insert_incident(&self, incident: &IncidentRecord, audit: AuditEvent) -> Result<(), StoreError>;
    /// The newest incident records, at most `limit`.
    async fn incidents(&self, limit: i64) -> Result<Vec<IncidentRecord>, StoreError>;
}
