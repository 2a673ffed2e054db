//! Signed checkpoints (R-LOG-2): the HSM `audit-sign` key signs the chain head every
//! `audit.checkpoint_every` records or `audit.checkpoint_interval`, whichever comes first,
//! at start and at shutdown, so `audit verify` can tell a rewritten chain and a dropped
//! tail from an intact log.
//!
//! Checkpoints and prune anchors form a signed chain of their own (issue 17): each signs
//! the record count and the previous one's seq and digest ([`super::chained_message`]), so
//! none can be taken out of the middle unnoticed; and each is written to the external sink
//! the moment it is stored ([`super::witness`]), so none can be taken off the end either.

use super::sink::{Shipper, SinkError};
use super::{chained_message, Checkpoint, CheckpointKind, Link, GENESIS_HASH};
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
    /// The signed value is stored but could not be witnessed in the sink.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// The newest checkpoint's seq (0 when none).
pub async fn last_checkpoint_seq(store: &dyn Store) -> Result<i64, StoreError> {
    Ok(store
        .last_checkpoint(CheckpointKind::Checkpoint)
        .await?
        .map_or(0, |c| c.seq))
}

/// Signs `kind` over `(seq, hash)` at `now`, chained to the newest checkpoint or anchor,
/// stores it and writes it to the sink. `StoreError::Conflict` when another instance
/// extended the chain first (nothing was stored).
pub async fn sign_and_store(
    store: &dyn Store,
    signer: &dyn AuditSigner,
    witness: &Shipper,
    kind: CheckpointKind,
    seq: i64,
    hash: [u8; 32],
    now: crate::domain::UnixTime,
) -> Result<Checkpoint, CheckpointError> {
    let tip = store.chain_tip().await?;
    let anchor = store.last_checkpoint(CheckpointKind::Prune).await?.map_or(0, |c| c.seq);
    let link = Link {
        position: tip.as_ref().and_then(|t| t.link).map_or(1, |l| l.position + 1),
        records: seq - anchor,
        prev_seq: tip.as_ref().map_or(0, |t| t.seq),
        prev: tip.as_ref().map_or(GENESIS_HASH, Checkpoint::digest),
    };
    let (kid, signature) = signer
        .sign_audit(&chained_message(kind, seq, &hash, now, &link))
        .await?;
    let checkpoint = Checkpoint {
        kind,
        seq,
        hash,
        time: now,
        kid: kid.0,
        signature,
        link: Some(link),
    };
    store.insert_checkpoint(&checkpoint).await?;
    witness.witness(&checkpoint).await?;
    Ok(checkpoint)
}

/// Signs a checkpoint at the current head if at least `min_new` records were appended
/// since the last one (`min_new = 1`: whenever anything is new). Returns it, or `None`.
pub async fn checkpoint_if_due(
    store: &dyn Store,
    signer: &dyn AuditSigner,
    witness: &Shipper,
    min_new: i64,
    now: crate::domain::UnixTime,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let (seq, hash) = store.audit_head().await?;
    let last = last_checkpoint_seq(store).await?;
    if seq == 0 || seq - last < min_new.max(1) {
        return Ok(None);
    }
    match sign_and_store(store, signer, witness, CheckpointKind::Checkpoint, seq, hash, now).await {
        Ok(cp) => Ok(Some(cp)),
        // Another instance signed this very head or extended the chain first: its
        // checkpoint stands, the next pass signs what is still new.
        Err(CheckpointError::Store(StoreError::Conflict)) => Ok(None),
        Err(e) => Err(e),
    }
}
