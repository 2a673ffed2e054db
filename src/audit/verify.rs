//! Whole-chain verification behind `eidgate audit verify` (R-LOG-2, R-SEC-6; DESIGN "More
//! contracts" → "Audit verify").
//!
//! Walks every record in `seq` order from the genesis hash (or from the newest signed
//! prune anchor, R-LOG-6), checks each chain link and hash, checks each checkpoint's ES256
//! signature against the published `audit-sign` keys and that the record at its `seq`
//! still has the signed hash, and finally compares the end of the records with the chain
//! head and the last checkpoint. The first failure is reported as `(seq, reason)`:
//!
//! - `changed`: a record's content or hash no longer matches (or a rewritten chain no
//!   longer matches a signed checkpoint; then the checkpoint's seq is named);
//! - `missing`: a `seq` is absent, or a record's predecessor hash is nowhere in the log;
//! - `inserted`: a record sits between two records that were chained to each other, or
//!   lies beyond the head;
//! - `reordered`: a record chained to a record that now comes at or after it;
//! - `truncated`: the log ends before the head or before a signed checkpoint;
//! - `bad-checkpoint-signature`: a checkpoint or anchor is not signed by an `audit-sign` key.
//!
//! Memory stays flat: records are read in pages; only when a link breaks is the log read
//! once more to find where the predecessor hash went.

use jsonwebtoken::{Algorithm, DecodingKey};

use super::{chain_hash, signed_message, Checkpoint, CheckpointKind, GENESIS_HASH};
use crate::hsm::AuditPublicKey;
use crate::store::{Store, StoreError};

const PAGE: i64 = 1000;

/// Why verification failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// Content or hash changed.
    Changed,
    /// A record is gone.
    Missing,
    /// A record was added.
    Inserted,
    /// Records were swapped or moved.
    Reordered,
    /// The tail was dropped.
    Truncated,
    /// A checkpoint or anchor does not verify.
    BadCheckpointSignature,
}

impl FailReason {
    /// The contract word.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Changed => "changed",
            FailReason::Missing => "missing",
            FailReason::Inserted => "inserted",
            FailReason::Reordered => "reordered",
            FailReason::Truncated => "truncated",
            FailReason::BadCheckpointSignature => "bad-checkpoint-signature",
        }
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything checks.
    Intact {
        /// Records checked.
        records: u64,
        /// Checkpoints and anchors whose signature was checked.
        checkpoints: u64,
        /// Last `seq` (0 for an empty log).
        last_seq: i64,
    },
    /// The first problem found.
    Fail {
        /// The first bad `seq`.
        seq: i64,
        /// Why.
        reason: FailReason,
    },
}

impl Verdict {
    /// `OK ...` or `FAIL seq=<n>: <reason>` (the CLI's first line).
    pub fn line(&self) -> String {
        match self {
            Verdict::Intact {
                records,
                checkpoints,
                last_seq,
            } => format!("OK records={records} checkpoints={checkpoints} last_seq={last_seq}"),
            Verdict::Fail { seq, reason } => format!("FAIL seq={seq}: {}", reason.as_str()),
        }
    }
}

/// Does `checkpoint` carry a valid ES256 signature by one of `keys` (matched by kid)?
pub fn signature_valid(keys: &[AuditPublicKey], checkpoint: &Checkpoint) -> bool {
    let Some(key) = keys.iter().find(|k| k.kid == checkpoint.kid) else {
        return false;
    };
    let Ok(decoding) = DecodingKey::from_ec_components(&key.x, &key.y) else {
        return false;
    };
    let message = signed_message(checkpoint.kind, checkpoint.seq, &checkpoint.hash, checkpoint.time);
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&checkpoint.signature)
    };
    jsonwebtoken::crypto::verify(&signature, &message, &decoding, Algorithm::ES256).unwrap_or(false)
}

/// Verifies the whole log in `store` against the `audit-sign` public keys.
pub async fn verify(store: &dyn Store, keys: &[AuditPublicKey]) -> Result<Verdict, StoreError> {
    let all = store.checkpoints().await?;
    let fail = |seq: i64, reason: FailReason| Ok(Verdict::Fail { seq, reason });
    for cp in &all {
        if !signature_valid(keys, cp) {
            // A forged or altered checkpoint comes first: nothing it asserts can be trusted.
            return fail(cp.seq, FailReason::BadCheckpointSignature);
        }
    }
    let anchor = all
        .iter()
        .filter(|c| c.kind == CheckpointKind::Prune)
        .max_by_key(|c| c.seq);
    let checkpoints: Vec<&Checkpoint> = all
        .iter()
        .filter(|c| c.kind == CheckpointKind::Checkpoint && anchor.is_none_or(|a| c.seq > a.seq))
        .collect();
    let (mut prev, mut expected) = match anchor {
        Some(a) => (a.hash, a.seq + 1),
        None => (GENESIS_HASH, 1),
    };
    // The head is read first so that records a live server appends meanwhile are not
    // taken for an insertion; they are checked like the others.
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut next_cp = 0usize;
    let mut records = 0u64;
    let mut after = expected - 1;
    loop {
        let page = store.audit_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if r.seq != expected {
                return fail(expected, FailReason::Missing);
            }
            if r.prev_hash != prev {
                return classify_break(store, r.seq, &r.prev_hash).await;
            }
            if chain_hash(&prev, r.seq, r.time, &r.event) != r.hash {
                return fail(r.seq, FailReason::Changed);
            }
            if r.seq == head_seq && r.hash != head_hash {
                return fail(r.seq, FailReason::Changed);
            }
            while let Some(cp) = checkpoints.get(next_cp).filter(|cp| cp.seq <= r.seq) {
                if cp.seq == r.seq && cp.hash != r.hash {
                    return fail(cp.seq, FailReason::Changed);
                }
                next_cp += 1;
            }
            prev = r.hash;
            expected += 1;
            records += 1;
        }
    }
    let last_seq = expected - 1;
    if checkpoints.get(next_cp).is_some() {
        return fail(last_seq + 1, FailReason::Truncated);
    }
    if head_seq > last_seq {
        return fail(last_seq + 1, FailReason::Truncated);
    }
    if head_seq < last_seq {
        // Appended while we read, or written around the writers' head?
        let (now_seq, _) = store.audit_head().await?;
        if now_seq < last_seq {
            return fail(now_seq.max(head_seq) + 1, FailReason::Inserted);
        }
    }
    Ok(Verdict::Intact {
        records,
        checkpoints: all.len() as u64,
        last_seq,
    })
}

/// The record at `seq` is not chained to its predecessor: find where the hash it points
/// at lives now.
async fn classify_break(store: &dyn Store, seq: i64, points_at: &[u8; 32]) -> Result<Verdict, StoreError> {
    let mut after = 0;
    let mut found = None;
    'scan: loop {
        let page = store.audit_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if r.hash == *points_at {
                found = Some(r.seq);
                break 'scan;
            }
        }
    }
    let (seq, reason) = match found {
        // It points at itself or at a record after it: records were swapped or moved.
        Some(at) if at >= seq => (seq, FailReason::Reordered),
        // It skips exactly one record: that one was slipped in between.
        Some(at) if at == seq - 2 => (seq - 1, FailReason::Inserted),
        // It points further back: records between were moved away.
        Some(_) => (seq, FailReason::Reordered),
        None if *points_at == GENESIS_HASH => (seq, FailReason::Inserted),
        None => (seq, FailReason::Missing),
    };
    Ok(Verdict::Fail { seq, reason })
}
