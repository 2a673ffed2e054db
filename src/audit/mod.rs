//! Audit events and the hash chain (R-LOG-1, R-LOG-2, R-LOG-3).
//!
//! Each record: `seq`, UTC time, event type, actor, subject, data (no secrets, no raw
//! biometrics, no document copies: R-LOG-5), and
//! `hash = SHA-256(prev_hash || canonical(record))`. The store appends a record in the
//! same transaction as the change it records; if the record cannot be written, the
//! change fails.

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
        Self {
            event_type: event_type.to_owned(),
            actor: actor.into(),
            subject: subject.into(),
            data,
        }
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

#[cfg(test)]
mod tests {
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
