//! Signed checkpoints (R-LOG-2): the HSM `audit-sign` key signs `(seq, hash)` of the chain
//! head every `audit.checkpoint_every` records or `audit.checkpoint_interval`, whichever
//! comes first, and once more at shutdown, so `audit verify` can tell a rewritten chain
//! and a dropped tail from an intact log.

use super::{signed_message, Checkpoint, CheckpointKind};
use crate::hsm::{AuditSigner, HsmError};
use crate::store::{Store, StoreError};

/// Errors of checkpointing.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HSM could not sign.
    #[error(transparent)]
    Hsm(#[from] HsmError),
}

/// The newest checkpoint's seq (0 when none).
pub async fn last_checkpoint_seq(store: &dyn Store) -> Result<i64, StoreError> {
    Ok(store
        .last_checkpoint(CheckpointKind::Checkpoint)
        .await?
        .map_or(0, |c| c.seq))
}

/// Signs `kind` over `(seq, hash)` at `now` and stores it.
pub async fn sign_and_store(
    store: &dyn Store,
    signer: &dyn AuditSigner,
    kind: CheckpointKind,
    seq: i64,
    hash: [u8; 32],
    now: crate::domain::UnixTime,
) -> Result<Checkpoint, CheckpointError> {
    let (kid, signature) = signer.sign_audit(&signed_message(kind, seq, &hash, now)).await?;
    let checkpoint = Checkpoint {
        kind,
        seq,
        hash,
        time: now,
        kid: kid.0,
        signature,
    };
    store.insert_checkpoint(&checkpoint).await?;
    Ok(checkpoint)
}

/// Signs a checkpoint at the current head if at least `min_new` records were appended
/// since the last one (`min_new = 1`: whenever anything is new). Returns it, or `None`.
pub async fn checkpoint_if_due(
    store: &dyn Store,
    signer: &dyn AuditSigner,
    min_new: i64,
    now: crate::domain::UnixTime,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let (seq, hash) = store.audit_head().await?;
    let last = last_checkpoint_seq(store).await?;
    if seq == 0 || seq - last < min_new.max(1) {
        return Ok(None);
    }
    match sign_and_store(store, signer, CheckpointKind::Checkpoint, seq, hash, now).await {
        Ok(cp) => Ok(Some(cp)),
        // Another instance signed this very head first: nothing to add.
        Err(CheckpointError::Store(StoreError::Conflict)) => Ok(None),
        Err(e) => Err(e),
    }
}
