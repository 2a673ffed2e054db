//! Audit events and the hash chain (R-LOG-1, R-LOG-2, R-LOG-3).
//!
//! Each record: `seq`, UTC time, event type, actor, subject, data (no secrets, no raw
//! biometrics, no document copies: R-LOG-5), and
//! `hash = SHA-256(prev_hash || canonical(record))`. The store appends a record in the
//! same transaction as the change it records; if the record cannot be written, the
//! change fails.
//!
//! - [`verify`]: the whole-chain check behind `eidgate audit verify` (R-LOG-2, R-SEC-6).
//! - [`checkpoint`]: checkpoints signed by the HSM `audit-sign` key every N records or
//!   T seconds and at shutdown (R-LOG-2).
//! - [`sink`]: the external JSON-lines sink, alert rules and the webhook (R-LOG-4).
//! - [`report`]: the daily analysis and weekly summary (R-LOG-4).
//! - [`catalogue`]: every event type and the R-LOG-1 item it covers.
//! - [`witness`]: every checkpoint and anchor in the external sink, read back by verify.
//! - [`retention`]: destruction past retention behind a signed anchor (R-LOG-6).
//! - [`export`], [`trust`]: signed bundles for the supervisor, checked against pinned keys.
//! - [`http`]: `GET /audit/keys`, the published `audit-sign` keys.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::UnixTime;

/// The hash that precedes the first record.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// An event to be appended (the store assigns `seq` and the chain hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// Event type from the catalogue, e.g. `login.success`, `person.created`.
    pub event_type: String,
    /// Who acted: `operator:<id>`, `holder:<id>`, `client:<id>`, `system`, `ip:<addr>`.
    pub actor: String,
    /// What it concerned: `means:<id>`, `person:<id>`, `client:<id>`, ...
    pub subject: String,
    /// Details as JSON (minimal personal data).
    pub data: serde_json::Value,
}

impl AuditEvent {
    /// Builds an event.
    pub fn new(
        event_type: &str,
        actor: impl Into<String>,
        subject: impl Into<String>,
        data: serde_json::Value,
    ) -> Self {
        let mut data = data;
        withhold_content(&mut data);
        Self {
            event_type: event_type.to_owned(),
            actor: actor.into(),
            subject: subject.into(),
            data,
        }
    }
}

/// R-LOG-5: a record never holds a document copy, a photo or a biometric template, whatever
/// a caller put in its details: such strings (and any string too long to be a fact) are
/// kept only as a reference, their SHA-256.
fn withhold_content(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(reference) = crate::domain::record_text::reference_if_not_plain(s) {
                *s = reference;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(withhold_content),
        serde_json::Value::Object(map) => map.values_mut().for_each(withhold_content),
        _ => {}
    }
}

/// A stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Gap-free sequence number, from 1.
    pub seq: i64,
    /// UTC seconds.
    pub time: UnixTime,
    /// The event.
    pub event: AuditEvent,
    /// Hash of the previous record (GENESIS for seq 1).
    pub prev_hash: [u8; 32],
    /// This record's chain hash.
    pub hash: [u8; 32],
}

/// A UTC time as RFC 3339 with seconds (R-LOG-3); the raw seconds if out of range.
pub fn rfc3339(time: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(time)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| time.to_string())
}

/// A stable pseudonym of a login identifier for failure records (R-LOG-5: the alert rules
/// need to group failures by account without logging what was typed).
pub fn pseudonym(value: &str) -> String {
    let digest = Sha256::digest(format!("eidgate-account:{value}").as_bytes());
    hex::encode(&digest[..12])
}

/// Did the wall clock move differently from the monotonic clock over one interval by more
/// than `tolerance` seconds (a clock step or a resynchronisation: R-LOG-3)?
pub fn clock_jumped(wall_delta: i64, monotonic_delta: i64, tolerance: i64) -> bool {
    wall_delta.saturating_sub(monotonic_delta).saturating_abs() > tolerance
}

/// What a signed chain value asserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// The chain up to `seq` ends in `hash`.
    Checkpoint,
    /// Records up to `seq` were destroyed after retention (R-LOG-6); the chain continues
    /// from `hash`.
    Prune,
}

impl CheckpointKind {
    /// Stored and signed name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Checkpoint => "checkpoint",
            CheckpointKind::Prune => "prune",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "checkpoint" => Some(CheckpointKind::Checkpoint),
            "prune" => Some(CheckpointKind::Prune),
            _ => None,
        }
    }
}

/// A chain value signed by the HSM `audit-sign` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Checkpoint or prune anchor.
    pub kind: CheckpointKind,
    /// The last record covered.
    pub seq: i64,
    /// That record's chain hash.
    pub hash: [u8; 32],
    /// When it was signed (UTC seconds).
    pub time: UnixTime,
    /// `kid` (JWK thumbprint) of the signing key.
    pub kid: String,
    /// ES256 signature, `r || s`, over [`Checkpoint::message`].
    pub signature: Vec<u8>,
    /// Its place in the signed chain of checkpoints; `None` for a checkpoint signed before
    /// checkpoints were chained (format 1, [`signed_message`]).
    pub link: Option<Link>,
}

/// What chains a checkpoint or anchor to the one signed before it (format 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// 1 for the first chained checkpoint, then +1 for each (storage order; not signed,
    /// the `prev` digest is what binds the order).
    pub position: i64,
    /// Records in the log from the prune anchor in force (exclusive) up to `seq`; for an
    /// anchor, the records it destroys.
    pub records: i64,
    /// `seq` of the previous checkpoint or anchor (0 for the first).
    pub prev_seq: i64,
    /// [`Checkpoint::digest`] of the previous checkpoint or anchor (zeros for the first).
    pub prev: [u8; 32],
}

impl Checkpoint {
    /// The bytes the HSM signed.
    pub fn message(&self) -> Vec<u8> {
        match &self.link {
            Some(link) => chained_message(self.kind, self.seq, &self.hash, self.time, link),
            None => signed_message(self.kind, self.seq, &self.hash, self.time),
        }
    }

    /// SHA-256 of [`Checkpoint::message`]: what the next checkpoint signs as `prev`.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.message()).into()
    }
}

/// The bytes the HSM signed for a checkpoint or anchor of format 1 (unchained; kept so that
/// checkpoints signed before the chain still verify): a fixed, line-based text so that an
/// auditor can rebuild it by hand.
pub fn signed_message(kind: CheckpointKind, seq: i64, hash: &[u8; 32], time: UnixTime) -> Vec<u8> {
    format!(
        "eidgate-audit-{}\nseq={seq}\nhash={}\ntime={time}\n",
        kind.as_str(),
        hex::encode(hash)
    )
    .into_bytes()
}

/// The bytes the HSM signs for a chained checkpoint or anchor (format 2): format 1 plus the
/// record count and the previous checkpoint's seq and digest.
pub fn chained_message(kind: CheckpointKind, seq: i64, hash: &[u8; 32], time: UnixTime, link: &Link) -> Vec<u8> {
    format!(
        "eidgate-audit-{}-2\nseq={seq}\nhash={}\ntime={time}\nrecords={}\nprev_seq={}\nprev={}\n",
        kind.as_str(),
        hex::encode(hash),
        link.records,
        link.prev_seq,
        hex::encode(link.prev)
    )
    .into_bytes()
}

#[derive(Serialize)]
struct Canonical<'a> {
    actor: &'a str,
    data: &'a serde_json::Value,
    event_type: &'a str,
    seq: i64,
    subject: &'a str,
    time: UnixTime,
}

/// `SHA-256(prev_hash || canonical(record))`. The canonical form is JSON with keys in
/// a fixed (alphabetical) order; `serde_json` keeps object keys of `data` sorted
/// (no `preserve_order` feature), so re-serialising a stored record is stable.
pub fn chain_hash(prev_hash: &[u8; 32], seq: i64, time: UnixTime, event: &AuditEvent) -> [u8; 32] {
    let canonical = Canonical {
        actor: &event.actor,
        data: &event.data,
        event_type: &event.event_type,
        seq,
        subject: &event.subject,
        time,
    };
    // Serialising plain strings, integers and a Value cannot fail.
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(&bytes);
    hasher.finalize().into()
}

/// Verifies a run of records starting after `prev_hash`; returns the first bad `seq`.
pub fn verify_run(
    mut prev_hash: [u8; 32],
    mut expected_seq: i64,
    records: &[AuditRecord],
) -> Result<[u8; 32], (i64, &'static str)> {
    for r in records {
        if r.seq != expected_seq {
            return Err((expected_seq, if r.seq > expected_seq { "missing" } else { "reordered" }));
        }
        if r.prev_hash != prev_hash {
            return Err((r.seq, "inserted"));
        }
        if chain_hash(&prev_hash, r.seq, r.time, &r.event) != r.hash {
            return Err((r.seq, "changed"));
        }
        prev_hash = r.hash;
        expected_seq += 1;
    }
    Ok(prev_hash)
}

pub mod catalogue;
pub mod checkpoint;
pub mod export;
pub mod http;
pub mod report;
pub mod retention;
pub mod sink;
pub mod trust;
pub mod verify;
pub mod witness;

#[cfg(test)]
mod tests {
    #[test]
    fn r_log_5_audit_details_keep_a_reference_instead_of_a_document_copy() {
        let scan = format!("data:image/jpeg;base64,/9j/4AAQSkZJRg{}", "QUFB".repeat(300));
        let event = super::AuditEvent::new(
            "means.suspended",
            "operator:x",
            "means:y",
            serde_json::json!({"reason": "lost", "evidence": [scan.clone()], "nested": {"photo": scan}}),
        );
        let text = event.data.to_string();
        assert!(!text.contains("base64"), "{text}");
        assert!(!text.contains("/9j/"), "{text}");
        assert!(event.data["evidence"][0].as_str().unwrap().starts_with("sha256:"));
        assert!(event.data["nested"]["photo"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(event.data["reason"], "lost");
    }

    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let event = AuditEvent::new(
                    "test",
                    "system",
                    format!("x:{seq}"),
                    serde_json::json!({"b": 1, "a": seq}),
                );
                let hash = chain_hash(&prev, seq, 1_700_000_000 + seq, &event);
                let r = AuditRecord {
                    seq,
                    time: 1_700_000_000 + seq,
                    event,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn r_log_3_a_wall_clock_step_against_the_monotonic_clock_is_a_jump() {
        assert!(!clock_jumped(60, 60, 2));
        assert!(!clock_jumped(61, 60, 2));
        assert!(clock_jumped(3660, 60, 2), "set forward an hour");
        assert!(clock_jumped(-3540, 60, 2), "set back an hour");
    }

    #[test]
    fn r_log_2_the_signed_checkpoint_text_names_kind_seq_hash_and_time() {
        let text = signed_message(CheckpointKind::Prune, 7, &[0xab; 32], 1_700_000_000);
        let text = String::from_utf8(text).unwrap_or_default();
        assert_eq!(
            text,
            format!(
                "eidgate-audit-prune\nseq=7\nhash={}\ntime=1700000000\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn r_log_2_a_chained_checkpoint_signs_count_and_previous_seq_and_digest() {
        let link = Link {
            position: 2,
            records: 7,
            prev_seq: 3,
            prev: [0xcd; 32],
        };
        let text = chained_message(CheckpointKind::Checkpoint, 7, &[0xab; 32], 1_700_000_000, &link);
        assert_eq!(
            String::from_utf8(text).unwrap_or_default(),
            format!(
                "eidgate-audit-checkpoint-2\nseq=7\nhash={}\ntime=1700000000\nrecords=7\nprev_seq=3\nprev={}\n",
                "ab".repeat(32),
                "cd".repeat(32)
            )
        );
        let cp = Checkpoint {
            kind: CheckpointKind::Checkpoint,
            seq: 7,
            hash: [0xab; 32],
            time: 1_700_000_000,
            kid: "k".into(),
            signature: vec![],
            link: Some(link),
        };
        let mut other = cp.clone();
        other.link = Some(Link { prev_seq: 2, ..link });
        assert_ne!(cp.digest(), other.digest(), "the link is signed");
    }

    #[test]
    fn r_log_2_intact_chain_verifies() {
        assert!(verify_run(GENESIS_HASH, 1, &chain(5)).is_ok());
    }

    #[test]
    fn r_log_2_changed_missing_and_reordered_records_are_found() {
        let mut c = chain(5);
        c[2].event.subject = "tampered".into();
        assert_eq!(verify_run(GENESIS_HASH, 1, &c), Err((3, "changed")));
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify_run(GENESIS_HASH, 1, &c), Err((2, "missing")));
        let mut c = chain(5);
        c.swap(1, 2);
        assert_eq!(verify_run(GENESIS_HASH, 1, &c), Err((2, "missing")));
    }
}
