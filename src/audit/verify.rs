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
//! Beyond the records (issue 17): the checkpoints form a signed chain (each signs the
//! previous one's seq and digest and the record count), so a checkpoint taken out of the
//! middle is `missing` and a replaced one `changed`; the checkpoints the external sink
//! witnessed must be in the database as witnessed (a witnessed one that is gone is
//! `missing`, one whose record was rewritten `changed`, one beyond a cut log `truncated`);
//! and with [`Coverage`] a record that waited longer for its checkpoint than the
//! configuration allows, or an uncovered head past its time, is `missing`.
//!
//! Memory stays flat: records are read in pages; only when a link breaks is the log read
//! once more to find where the predecessor hash went.

use jsonwebtoken::{Algorithm, DecodingKey};

use super::{catalogue, chain_hash, AuditRecord, Checkpoint, CheckpointKind, GENESIS_HASH};
use crate::domain::UnixTime;
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
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&checkpoint.signature)
    };
    jsonwebtoken::crypto::verify(&signature, &checkpoint.message(), &decoding, Algorithm::ES256).unwrap_or(false)
}

/// How late a checkpoint may come under the configuration (`audit.checkpoint_every`,
/// `audit.checkpoint_interval`, and the job's tick `audit.sink_interval`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Seconds a record may wait for the checkpoint that covers it.
    pub interval_lag: i64,
    /// `checkpoint_every`: once this many records wait, a checkpoint is due ...
    pub every: i64,
    /// ... within this many seconds of the last of them.
    pub every_lag: i64,
    /// The verifier's clock (UTC seconds): records after the newest checkpoint must be
    /// younger than `interval_lag` (the head is covered, or will be in time).
    pub now: UnixTime,
}

/// Slack on top of the configured intervals for the signing itself and whole seconds.
pub const COVERAGE_MARGIN: i64 = 30;

impl Coverage {
    /// The bounds the server's audit job keeps with these settings.
    pub fn from_config(every: u64, interval_seconds: u64, tick_seconds: u64, now: UnixTime) -> Self {
        let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX / 4);
        Self {
            interval_lag: secs(interval_seconds)
                .saturating_add(secs(tick_seconds))
                .saturating_add(COVERAGE_MARGIN),
            every: secs(every).max(1),
            every_lag: secs(tick_seconds).saturating_add(COVERAGE_MARGIN),
            now,
        }
    }
}

/// What `verify_with` checks beyond the database.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Checkpoints and anchors read from the external sink: each must be in the database
    /// exactly, and the records must still match it.
    pub witness: Option<&'a [Checkpoint]>,
    /// Checkpoints must come as often as the configuration says.
    pub coverage: Option<Coverage>,
}

/// Verifies the whole log in `store` against the `audit-sign` public keys.
pub async fn verify(store: &dyn Store, keys: &[AuditPublicKey]) -> Result<Verdict, StoreError> {
    verify_with(store, keys, Options::default()).await
}

/// Checks the signed chain of checkpoints: positions without gaps, each linked to the
/// digest and seq of the one before, record counts consistent with the anchors.
pub fn check_chain(all: &[Checkpoint]) -> Result<(), (i64, FailReason)> {
    let mut chained: Vec<&Checkpoint> = all.iter().filter(|c| c.link.is_some()).collect();
    chained.sort_by_key(|c| c.link.map_or(0, |l| l.position));
    // Anchors signed before the chain set the starting point of the record counts.
    let mut anchor = all
        .iter()
        .filter(|c| c.link.is_none() && c.kind == CheckpointKind::Prune)
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    let mut prev: Option<&Checkpoint> = None;
    for (i, cp) in chained.iter().enumerate() {
        let Some(link) = cp.link else { continue };
        let position = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if link.position != position {
            // The one it follows was taken out of the chain.
            return Err((link.prev_seq.max(1), FailReason::Missing));
        }
        let (prev_seq, prev_digest) = prev.map_or((0, GENESIS_HASH), |p| (p.seq, p.digest()));
        if link.prev_seq != prev_seq || link.prev != prev_digest {
            return Err((prev.map_or(cp.seq, |p| p.seq), FailReason::Changed));
        }
        if link.records != cp.seq - anchor {
            return Err((cp.seq, FailReason::Changed));
        }
        if cp.kind == CheckpointKind::Prune {
            anchor = cp.seq;
        }
        prev = Some(cp);
    }
    Ok(())
}

/// Each witnessed checkpoint must be in the database as witnessed. Returns those that are
/// not there at all (checked against the records later); a differing one fails at once.
fn compare_witness<'a>(
    keys: &[AuditPublicKey],
    db: &[Checkpoint],
    witness: &'a [Checkpoint],
) -> Result<Vec<&'a Checkpoint>, (i64, FailReason)> {
    let by_seq: std::collections::HashMap<(&str, i64), &Checkpoint> =
        db.iter().map(|c| ((c.kind.as_str(), c.seq), c)).collect();
    let mut absent = Vec::new();
    for w in witness {
        if !signature_valid(keys, w) {
            return Err((w.seq, FailReason::BadCheckpointSignature));
        }
        match by_seq.get(&(w.kind.as_str(), w.seq)).copied() {
            Some(c) if c == w => {}
            Some(_) => return Err((w.seq, FailReason::Changed)),
            None => absent.push(w),
        }
    }
    Ok(absent)
}

/// Tracks how long the records wait for a checkpoint (see [`Coverage`]).
struct Waiting {
    policy: Coverage,
    /// Checkpoints (kind `checkpoint`) in seq order.
    signed: Vec<(i64, UnixTime)>,
    next: usize,
    /// The oldest record not yet covered, and the deadline the waiting records set.
    oldest: Option<(i64, UnixTime)>,
    deadline: UnixTime,
    count: i64,
}

impl Waiting {
    fn new(policy: Coverage, checkpoints: &[&Checkpoint]) -> Self {
        let mut signed: Vec<(i64, UnixTime)> = checkpoints
            .iter()
            .filter(|c| c.kind == CheckpointKind::Checkpoint)
            .map(|c| (c.seq, c.time))
            .collect();
        signed.sort_unstable();
        Self {
            policy,
            signed,
            next: 0,
            oldest: None,
            deadline: UnixTime::MAX,
            count: 0,
        }
    }

    fn record(&mut self, r: &AuditRecord) -> Result<(), (i64, FailReason)> {
        if self.oldest.is_none() || r.event.event_type == catalogue::SYSTEM_START {
            // A start after a crash: the tail of the last run is signed by the start's
            // checkpoint, late; the clock runs again from the start.
            self.oldest = Some((r.seq, r.time));
            self.deadline = r.time.saturating_add(self.policy.interval_lag);
            self.count = 0;
        }
        self.count += 1;
        if self.count == self.policy.every {
            self.deadline = self.deadline.min(r.time.saturating_add(self.policy.every_lag));
        }
        while let Some(&(seq, time)) = self.signed.get(self.next).filter(|(seq, _)| *seq <= r.seq) {
            self.next += 1;
            if seq < r.seq {
                continue;
            }
            if let Some((oldest, _)) = self.oldest.take() {
                if time > self.deadline {
                    return Err((oldest, FailReason::Missing));
                }
            }
            self.deadline = UnixTime::MAX;
            self.count = 0;
        }
        Ok(())
    }

    /// The records after the newest checkpoint must still be within their time.
    fn finish(&self, head_time: UnixTime) -> Result<(), (i64, FailReason)> {
        match self.oldest {
            Some((oldest, _)) if self.policy.now.max(head_time) > self.deadline => Err((oldest, FailReason::Missing)),
            _ => Ok(()),
        }
    }
}

/// Verifies the whole log in `store` against the `audit-sign` public keys, the external
/// witness and the checkpoint schedule when `options` name them.
pub async fn verify_with(
    store: &dyn Store,
    keys: &[AuditPublicKey],
    options: Options<'_>,
) -> Result<Verdict, StoreError> {
    let all = store.checkpoints().await?;
    let fail = |(seq, reason): (i64, FailReason)| Ok(Verdict::Fail { seq, reason });
    for cp in &all {
        if !signature_valid(keys, cp) {
            // A forged or altered checkpoint comes first: nothing it asserts can be trusted.
            return fail((cp.seq, FailReason::BadCheckpointSignature));
        }
    }
    if let Err(e) = check_chain(&all) {
        return fail(e);
    }
    let absent = match options.witness.map(|w| compare_witness(keys, &all, w)).transpose() {
        Ok(absent) => absent.unwrap_or_default(),
        Err(e) => return fail(e),
    };
    let anchor = all
        .iter()
        .filter(|c| c.kind == CheckpointKind::Prune)
        .max_by_key(|c| c.seq);
    let after_anchor = |c: &&Checkpoint| anchor.is_none_or(|a| c.seq > a.seq);
    let mut checkpoints: Vec<&Checkpoint> = all
        .iter()
        .filter(|c| c.kind == CheckpointKind::Checkpoint)
        .chain(absent.iter().copied())
        .filter(after_anchor)
        .collect();
    checkpoints.sort_by_key(|c| c.seq);
    let mut waiting = options.coverage.map(|policy| {
        let db: Vec<&Checkpoint> = all.iter().filter(after_anchor).collect();
        Waiting::new(policy, &db)
    });
    let (mut prev, mut expected) = match anchor {
        Some(a) => (a.hash, a.seq + 1),
        None => (GENESIS_HASH, 1),
    };
    // The head is read first so that records a live server appends meanwhile are not
    // taken for an insertion; they are checked like the others.
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut next_cp = 0usize;
    let mut records = 0u64;
    let mut last_time = 0;
    let mut after = expected - 1;
    loop {
        let page = store.audit_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if r.seq != expected {
                return fail((expected, FailReason::Missing));
            }
            if r.prev_hash != prev {
                return classify_break(store, r.seq, &r.prev_hash).await;
            }
            if chain_hash(&prev, r.seq, r.time, &r.event) != r.hash {
                return fail((r.seq, FailReason::Changed));
            }
            if r.seq == head_seq && r.hash != head_hash {
                return fail((r.seq, FailReason::Changed));
            }
            while let Some(cp) = checkpoints.get(next_cp).filter(|cp| cp.seq <= r.seq) {
                if cp.seq == r.seq && cp.hash != r.hash {
                    return fail((cp.seq, FailReason::Changed));
                }
                next_cp += 1;
            }
            if let Some(w) = waiting.as_mut() {
                if let Err(e) = w.record(r) {
                    return fail(e);
                }
            }
            prev = r.hash;
            last_time = r.time;
            expected += 1;
            records += 1;
        }
    }
    let last_seq = expected - 1;
    if checkpoints.get(next_cp).is_some() {
        return fail((last_seq + 1, FailReason::Truncated));
    }
    if head_seq > last_seq {
        return fail((last_seq + 1, FailReason::Truncated));
    }
    if head_seq < last_seq {
        // Appended while we read, or written around the writers' head?
        let (now_seq, _) = store.audit_head().await?;
        if now_seq < last_seq {
            return fail((now_seq.max(head_seq) + 1, FailReason::Inserted));
        }
    }
    // Witnessed, the records still match it, yet the row is gone.
    if let Some(w) = absent.first() {
        return fail((w.seq, FailReason::Missing));
    }
    if let Some(Err(e)) = waiting.as_ref().map(|w| w.finish(last_time)) {
        return fail(e);
    }
    Ok(Verdict::Intact {
        records,
        checkpoints: all.len() as u64,
        last_seq,
    })
}

/// Checks the records after `from` (`seq`, chain hash) up to `to`, and every checkpoint in
/// `db` within that range, before retention destroys them. `Err` names the first bad seq.
pub async fn verify_segment(
    store: &dyn Store,
    keys: &[AuditPublicKey],
    from: (i64, [u8; 32]),
    to: &Checkpoint,
    db: &[Checkpoint],
) -> Result<Result<(), (i64, FailReason)>, StoreError> {
    if !signature_valid(keys, to) {
        return Ok(Err((to.seq, FailReason::BadCheckpointSignature)));
    }
    let signed: std::collections::BTreeMap<i64, [u8; 32]> = db
        .iter()
        .chain(std::iter::once(to))
        .filter(|c| c.seq > from.0 && c.seq <= to.seq)
        .map(|c| (c.seq, c.hash))
        .collect();
    let (mut prev, mut expected) = (from.1, from.0 + 1);
    let mut after = from.0;
    while expected <= to.seq {
        let page = store.audit_after(after, PAGE.min(to.seq - after)).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if r.seq != expected {
                return Ok(Err((expected, FailReason::Missing)));
            }
            if r.prev_hash != prev {
                return Ok(Err((r.seq, FailReason::Inserted)));
            }
            if chain_hash(&prev, r.seq, r.time, &r.event) != r.hash {
                return Ok(Err((r.seq, FailReason::Changed)));
            }
            if signed.get(&r.seq).is_some_and(|h| *h != r.hash) {
                return Ok(Err((r.seq, FailReason::Changed)));
            }
            prev = r.hash;
            expected += 1;
        }
    }
    if expected <= to.seq {
        return Ok(Err((expected, FailReason::Truncated)));
    }
    Ok(Ok(()))
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
