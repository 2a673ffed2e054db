//! Retention (R-LOG-6): records older than `audit.retention` are destroyed, and the chain
//! stays verifiable. First the HSM signs a prune anchor "pruned up to seq N, hash H"; the
//! database then allows deleting records up to N (a trigger refuses any other delete);
//! the deletion overwrites the pages on SQLite; finally `audit.pruned` is appended.
//! `audit verify` starts from the newest anchor instead of the genesis hash.

use super::checkpoint::{sign_and_store, CheckpointError};
use super::{catalogue, AuditEvent, CheckpointKind};
use crate::domain::UnixTime;
use crate::hsm::AuditSigner;
use crate::store::Store;

/// Destroys the records older than `now - retention_seconds`. Returns the new anchor's seq,
/// or `None` when nothing was due.
pub async fn prune_expired(
    store: &dyn Store,
    signer: &dyn AuditSigner,
    now: UnixTime,
    retention_seconds: i64,
) -> Result<Option<i64>, CheckpointError> {
    let cutoff = now.saturating_sub(retention_seconds);
    let anchor = store.last_checkpoint(CheckpointKind::Prune).await?.map_or(0, |c| c.seq);
    // A run that stopped between signing an anchor and deleting is finished first.
    if anchor > 0 && store.audit_after(0, 1).await?.first().is_some_and(|r| r.seq <= anchor) {
        store.prune_audit(anchor).await?;
    }
    // Record times never go backwards along the chain, so the expired ones are a prefix.
    let mut last_expired = None;
    let mut after = anchor;
    'scan: loop {
        let page = store.audit_after(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if r.time >= cutoff {
                break 'scan;
            }
            last_expired = Some((r.seq, r.hash));
        }
    }
    let Some((seq, hash)) = last_expired else {
        return Ok(None);
    };
    sign_and_store(store, signer, CheckpointKind::Prune, seq, hash, now).await?;
    let deleted = store.prune_audit(seq).await?;
    store
        .append(AuditEvent::new(
            catalogue::AUDIT_PRUNED,
            "system",
            "audit",
            serde_json::json!({"up_to_seq": seq, "hash": hex::encode(hash), "records": deleted,
                               "cutoff": super::rfc3339(cutoff)}),
        ))
        .await?;
    Ok(Some(seq))
}
