//! [`AuditRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::{AuditEvent, AuditRecord, Checkpoint, CheckpointKind};
use crate::store::{AuditRepo, StoreError};

#[async_trait]
impl AuditRepo for CachedStore {
    async fn append(&self, event: AuditEvent) -> Result<i64, StoreError> {
        self.inner.append(event).await
    }

    async fn audit_records(&self, from: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_records(from, limit).await
    }

    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_after(after, limit).await
    }

    async fn audit_head(&self) -> Result<(i64, [u8; 32]), StoreError> {
        self.inner.audit_head().await
    }

    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.inner.insert_checkpoint(checkpoint).await
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints().await
    }

    async fn last_checkpoint(&self, kind: CheckpointKind) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.last_checkpoint(kind).await
    }

    async fn chain_tip(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.chain_tip().await
    }

    async fn checkpoint_covering(&self, seq: i64) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.checkpoint_covering(seq).await
    }

    async fn checkpoints_in(&self, after: i64, up_to: i64) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints_in(after, up_to).await
    }

    async fn audit_cursor(&self, name: &str) -> Result<i64, StoreError> {
        self.inner.audit_cursor(name).await
    }

    async fn set_audit_cursor(&self, name: &str, value: i64) -> Result<(), StoreError> {
        self.inner.set_audit_cursor(name, value).await
    }

    async fn prune_audit(&self, up_to: i64) -> Result<u64, StoreError> {
        self.inner.prune_audit(up_to).await
    }
}
