//! [`AuditRepo`]: the audit chain, its checkpoints, prune anchors and job cursors.

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditRecord, Checkpoint, CheckpointKind};
use crate::store::StoreError;

/// The audit chain.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Appends an event on its own (for events not tied to another change).
    async fn append(&self, event: AuditEvent) -> Result<i64, StoreError>;
    /// Records with `seq` in `[from, from + limit)`, in order.
    async fn audit_records(&self, from: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
    /// Up to `limit` records with `seq > after`, in `seq` order (keyset paging that
    /// steps over gaps, for verification and the sink).
    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
    /// The chain head `(seq, hash)` as the writers left it (`(0, GENESIS)` when empty).
    async fn audit_head(&self) -> Result<(i64, [u8; 32]), StoreError>;
    /// Stores a signed checkpoint or prune anchor (R-LOG-2, R-LOG-6). Not itself a
    /// chained record: it signs the chain. `Conflict` if one of that kind and seq, or one at
    /// that chain position, exists (another instance signed first).
    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// Every checkpoint and anchor, ordered by `seq` (anchors before checkpoints at a tie).
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// The newest checkpoint or anchor of `kind` (one indexed row, for the periodic jobs).
    async fn last_checkpoint(&self, kind: CheckpointKind) -> Result<Option<Checkpoint>, StoreError>;
    /// The newest checkpoint or anchor of the signed chain (highest `chain_pos`).
    async fn chain_tip(&self) -> Result<Option<Checkpoint>, StoreError>;
    /// The first checkpoint (kind `checkpoint`) at or after `seq`: the one covering it.
    async fn checkpoint_covering(&self, seq: i64) -> Result<Option<Checkpoint>, StoreError>;
    /// Checkpoints and anchors with `after < seq <= up_to`, ordered like [`Self::checkpoints`].
    async fn checkpoints_in(&self, after: i64, up_to: i64) -> Result<Vec<Checkpoint>, StoreError>;
    /// A job's cursor (last `seq` it processed), 0 when never set.
    async fn audit_cursor(&self, name: &str) -> Result<i64, StoreError>;
    /// Moves a job's cursor.
    async fn set_audit_cursor(&self, name: &str, value: i64) -> Result<(), StoreError>;
    /// Destroys the records with `seq <= up_to` (R-LOG-6). The database refuses unless a
    /// prune anchor at `up_to` or later is stored; on SQLite the pages are overwritten
    /// (`secure_delete`). Returns how many records were deleted.
    async fn prune_audit(&self, up_to: i64) -> Result<u64, StoreError>;
}
