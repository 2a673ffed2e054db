//! [`NoticeRepo`]: notices queued for holders (R-OPS-4).

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::UnixTime;
use crate::store::StoreError;

/// A notice to a holder (R-OPS-4).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Notice {
    /// Id.
    pub id: String,
    /// The holder.
    pub person: PersonId,
    /// The means concerned.
    pub means: MeansId,
    /// e.g. `compromised`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// Queued at.
    pub created_at: UnixTime,
    /// Sent at.
    pub sent_at: Option<UnixTime>,
}

/// Notices to holders.
#[async_trait]
pub trait NoticeRepo: Send + Sync {
    /// Queues a notice; audited.
    async fn insert_notice(&self, notice: &Notice, audit: AuditEvent) -> Result<(), StoreError>;
    /// Marks a notice sent; audited. `NotFound` if unknown or already sent.
    async fn mark_notice_sent(&self, id: &str, at: UnixTime, audit: AuditEvent) -> Result<(), StoreError>;
    /// Pending notices queued at or before `before`, oldest first.
    async fn pending_notices(&self, before: UnixTime, limit: i64) -> Result<Vec<Notice>, StoreError>;
}
