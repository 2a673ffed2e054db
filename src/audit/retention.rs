//! Retention (R-LOG-6): records past `audit.retention` are destroyed, and the chain stays
//! verifiable. The job trusts only signed time (issue 17): it prunes up to the newest
//! signed checkpoint whose *signed* time is past retention, never by the records' own
//! `time` column, which anyone who can write the database can back-date. Before it signs
//! anything it verifies the chain from the previous anchor to that checkpoint (records,
//! links, hashes, every checkpoint in between). Then the HSM signs a prune anchor "pruned
//! up to seq N, hash H" (chained and witnessed like a checkpoint); the database allows
//! deleting records up to N (a trigger refuses any other delete); the deletion overwrites
//! the pages on SQLite; finally `audit.pruned` is appended.
//!
//! On any mismatch it signs nothing and deletes nothing, and raises `audit_tampering`
//! (appended to the chain, written to the sink and POSTed to the webhook at once). When
//! the records' `time` column claims expiry that no signed checkpoint confirms yet, the
//! same verification runs up to the checkpoint covering the oldest record, so back-dated
//! records raise the alert instead of being ignored silently.

use super::checkpoint::{sign_and_store, CheckpointError};
use super::sink::Shipper;
use super::verify::{signature_valid, verify_segment, FailReason};
use super::{catalogue, AuditEvent, CheckpointKind, GENESIS_HASH};
use crate::domain::UnixTime;
use crate::hsm::AuditSigner;
use crate::store::{Store, StoreError};

/// The alert rule raised when retention finds the log tampered with.
pub const TAMPERING_RULE: &str = "audit_tampering";

/// What a retention pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pruned {
    /// Nothing past retention (or the chain checked and nothing is due yet).
    Nothing,
    /// Records up to this seq were destroyed behind a new anchor.
    UpTo(i64),
    /// The chain did not verify: nothing signed, nothing deleted, alert raised.
    Tampering {
        /// The first bad seq.
        seq: i64,
        /// Why.
        reason: FailReason,
    },
}

/// Checkpoints stepped over in one pass while looking for the newest one past retention.
const MAX_STEPS: usize = 100_000;
const DAY: i64 = 86_400;

/// Destroys the records covered by the newest checkpoint signed before
/// `now - retention_seconds`, after verifying the chain up to it. Runs in batches: only
/// once the oldest record's checkpoint is a tenth of the retention (at most a day) past
/// it, so anchors come once a day, not once a minute.
pub async fn prune_expired(
    store: &dyn Store,
    signer: &dyn AuditSigner,
    witness: &Shipper,
    now: UnixTime,
    retention_seconds: i64,
) -> Result<Pruned, CheckpointError> {
    let cutoff = now.saturating_sub(retention_seconds);
    let due_before = cutoff.saturating_sub((retention_seconds / 10).clamp(0, DAY));
    let keys = signer.audit_keys();
    let anchor = store.last_checkpoint(CheckpointKind::Prune).await?;
    if let Some(a) = anchor.as_ref().filter(|a| !signature_valid(&keys, a)) {
        return tampering(store, witness, now, a.seq, FailReason::BadCheckpointSignature).await;
    }
    let from = anchor.as_ref().map_or((0, GENESIS_HASH), |a| (a.seq, a.hash));
    // A run that stopped between signing an anchor and deleting is finished first.
    if from.0 > 0 && store.audit_after(0, 1).await?.first().is_some_and(|r| r.seq <= from.0) {
        store.prune_audit(from.0).await?;
    }
    let Some(oldest) = store.audit_after(from.0, 1).await?.into_iter().next() else {
        return Ok(Pruned::Nothing);
    };
    let Some(covering) = store.checkpoint_covering(oldest.seq).await? else {
        return Ok(Pruned::Nothing);
    };
    let signed_due = covering.time <= due_before;
    // The column claims expiry: a signed checkpoint must back it before anything happens,
    // and the records up to the checkpoint covering the oldest one must still verify.
    let claimed = oldest.time < due_before;
    if !signed_due && !claimed {
        return Ok(Pruned::Nothing);
    }
    let mut target = covering;
    if signed_due {
        for _ in 0..MAX_STEPS {
            match store.checkpoint_covering(target.seq + 1).await? {
                Some(next) if next.time <= cutoff => target = next,
                _ => break,
            }
        }
    }
    let segment = store.checkpoints_in(from.0, target.seq).await?;
    if let Some(bad) = segment.iter().find(|c| !signature_valid(&keys, c)) {
        return tampering(store, witness, now, bad.seq, FailReason::BadCheckpointSignature).await;
    }
    if let Err((seq, reason)) = check_adjacent_links(&segment) {
        return tampering(store, witness, now, seq, reason).await;
    }
    if let Err((seq, reason)) = verify_segment(store, &keys, from, &target, &segment).await? {
        return tampering(store, witness, now, seq, reason).await;
    }
    if !signed_due {
        return Ok(Pruned::Nothing);
    }
    match sign_and_store(
        store,
        signer,
        witness,
        CheckpointKind::Prune,
        target.seq,
        target.hash,
        now,
    )
    .await
    {
        Ok(_) => {}
        // Another instance pruned (or signed) first; the next pass sees its anchor.
        Err(CheckpointError::Store(StoreError::Conflict)) => return Ok(Pruned::Nothing),
        Err(e) => return Err(e),
    }
    let deleted = store.prune_audit(target.seq).await?;
    store
        .append(AuditEvent::new(
            catalogue::AUDIT_PRUNED,
            "system",
            "audit",
            serde_json::json!({"up_to_seq": target.seq, "hash": hex::encode(target.hash), "records": deleted,
                               "checkpoint_time": super::rfc3339(target.time),
                               "cutoff": super::rfc3339(cutoff)}),
        ))
        .await?;
    Ok(Pruned::UpTo(target.seq))
}

/// Within a stretch of the chain: each checkpoint that directly follows another in the
/// signed chain names that one's seq and digest.
fn check_adjacent_links(segment: &[super::Checkpoint]) -> Result<(), (i64, FailReason)> {
    let mut chained: Vec<&super::Checkpoint> = segment.iter().filter(|c| c.link.is_some()).collect();
    chained.sort_by_key(|c| c.link.map_or(0, |l| l.position));
    for pair in chained.windows(2) {
        let (Some(a), Some(b)) = (pair[0].link, pair[1].link) else {
            continue;
        };
        if b.position == a.position + 1 && (b.prev_seq != pair[0].seq || b.prev != pair[0].digest()) {
            return Err((pair[0].seq, FailReason::Changed));
        }
    }
    Ok(())
}

async fn tampering(
    store: &dyn Store,
    witness: &Shipper,
    now: UnixTime,
    seq: i64,
    reason: FailReason,
) -> Result<Pruned, CheckpointError> {
    tracing::error!(seq, reason = reason.as_str(), "audit log tampered with: nothing pruned");
    witness
        .raise(
            store,
            TAMPERING_RULE,
            &format!("seq:{seq}"),
            now,
            serde_json::json!({"seq": seq, "reason": reason.as_str(), "action": "retention refused"}),
        )
        .await?;
    Ok(Pruned::Tampering { seq, reason })
}
