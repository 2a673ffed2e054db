//! Export for the supervisor (R-LOG-2, R-SUP-3): `eidgate audit export --from --to` writes
//! the records of a period with their chain hashes, the signed checkpoints among them and
//! the `audit-sign` public keys, and the HSM signs the whole bundle. `eidgate audit
//! verify-bundle FILE --trust KEYS` (or any ES256 implementation) checks it without the
//! database or the HSM: the records chain to each other, and every checkpoint and the
//! bundle signature verify with one of the trusted audit keys (the JWKS published at
//! `/audit/keys`, or PEM), never with a key merely carried in the bundle; each `kid` must
//! be the RFC 7638 thumbprint of its key. A bundle signed by another key is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::checkpoint::CheckpointError;
use super::verify::signature_valid;
use super::{chain_hash, AuditEvent, AuditRecord, Checkpoint, CheckpointKind, Link};
use crate::domain::UnixTime;
use crate::hsm::{AuditPublicKey, AuditSigner};
use crate::store::Store;

/// The bundle format name.
pub const FORMAT: &str = "eidgate-audit-bundle-1";
const SIGNING_PREFIX: &[u8] = b"eidgate-audit-bundle\n";

/// One exported record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRecord {
    /// Sequence number.
    pub seq: i64,
    /// UTC seconds.
    pub time: UnixTime,
    /// Event type.
    pub event_type: String,
    /// Actor.
    pub actor: String,
    /// Subject.
    pub subject: String,
    /// Details.
    pub data: serde_json::Value,
    /// Previous hash, hex.
    pub prev_hash: String,
    /// Chain hash, hex.
    pub hash: String,
}

/// One exported checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleCheckpoint {
    /// `checkpoint` or `prune`.
    pub kind: String,
    /// Last record covered.
    pub seq: i64,
    /// Its hash, hex.
    pub hash: String,
    /// Signing time.
    pub time: UnixTime,
    /// Signing key.
    pub kid: String,
    /// ES256 `r || s`, base64url.
    pub signature: String,
    /// Place in the signed chain (chained checkpoints only, as the fields below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// Signed record count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<i64>,
    /// Signed seq of the previous checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_seq: Option<i64>,
    /// Signed digest of the previous checkpoint, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// The bundle's own signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleSignature {
    /// Signing key.
    pub kid: String,
    /// ES256 `r || s`, base64url, over `"eidgate-audit-bundle\n" || JSON(bundle without signature)`.
    pub value: String,
}

/// A signed export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// Period start (UTC seconds, inclusive).
    pub from: UnixTime,
    /// Period end (exclusive).
    pub to: UnixTime,
    /// Records of the period, in order.
    pub records: Vec<BundleRecord>,
    /// Checkpoints within the records' range.
    pub checkpoints: Vec<BundleCheckpoint>,
    /// Every `audit-sign` public key.
    pub keys: Vec<AuditPublicKey>,
    /// Set last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<BundleSignature>,
}

fn to_bundle_record(r: &AuditRecord) -> BundleRecord {
    BundleRecord {
        seq: r.seq,
        time: r.time,
        event_type: r.event.event_type.clone(),
        actor: r.event.actor.clone(),
        subject: r.event.subject.clone(),
        data: r.event.data.clone(),
        prev_hash: hex::encode(r.prev_hash),
        hash: hex::encode(r.hash),
    }
}

fn signing_input(bundle: &Bundle) -> Vec<u8> {
    let mut unsigned = bundle.clone();
    unsigned.signature = None;
    let mut out = SIGNING_PREFIX.to_vec();
    // A struct of strings, integers and JSON values always serialises.
    out.extend(serde_json::to_vec(&unsigned).unwrap_or_default());
    out
}

/// Builds and signs the bundle of `[from, to)`.
pub async fn export(
    store: &dyn Store,
    signer: &dyn AuditSigner,
    from: UnixTime,
    to: UnixTime,
) -> Result<Bundle, CheckpointError> {
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_after(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        records.extend(
            page.iter()
                .filter(|r| r.time >= from && r.time < to)
                .map(to_bundle_record),
        );
    }
    let range = records.first().map(|r| r.seq).zip(records.last().map(|r| r.seq));
    let checkpoints = store
        .checkpoints()
        .await?
        .into_iter()
        .filter(|c| range.is_some_and(|(lo, hi)| c.seq >= lo && c.seq <= hi))
        .map(|c| BundleCheckpoint {
            kind: c.kind.as_str().to_owned(),
            seq: c.seq,
            hash: hex::encode(c.hash),
            time: c.time,
            kid: c.kid,
            signature: URL_SAFE_NO_PAD.encode(&c.signature),
            position: c.link.map(|l| l.position),
            records: c.link.map(|l| l.records),
            prev_seq: c.link.map(|l| l.prev_seq),
            prev: c.link.map(|l| hex::encode(l.prev)),
        })
        .collect();
    let mut bundle = Bundle {
        format: FORMAT.to_owned(),
        from,
        to,
        records,
        checkpoints,
        keys: signer.audit_keys(),
        signature: None,
    };
    let (kid, value) = signer.sign_audit(&signing_input(&bundle)).await?;
    bundle.signature = Some(BundleSignature {
        kid: kid.0,
        value: URL_SAFE_NO_PAD.encode(value),
    });
    Ok(bundle)
}

fn hash32(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Checks a bundle against the audit keys the verifier trusts (`--trust`, what
/// `/audit/keys` publishes): the bundle and every checkpoint in it must be signed by one of
/// them, and every key the bundle names must carry its RFC 7638 thumbprint as `kid`. The
/// keys inside the bundle are never trusted for being there. `Err` names the first problem.
pub fn verify_bundle(bundle: &Bundle, trusted: &[AuditPublicKey]) -> Result<(), String> {
    if bundle.format != FORMAT {
        return Err(format!("unknown format {:?}", bundle.format));
    }
    if let Some(k) = bundle.keys.iter().find(|k| !super::trust::kid_matches(k)) {
        return Err(format!("kid {} is not the thumbprint of its key", k.kid));
    }
    let signature = bundle.signature.as_ref().ok_or("the bundle is not signed")?;
    let key = trusted
        .iter()
        .find(|k| k.kid == signature.kid)
        .ok_or_else(|| format!("the bundle is signed by {}, not by a trusted audit key", signature.kid))?;
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(&key.x, &key.y).map_err(|e| e.to_string())?;
    let valid = jsonwebtoken::crypto::verify(
        &signature.value,
        &signing_input(bundle),
        &decoding,
        jsonwebtoken::Algorithm::ES256,
    )
    .unwrap_or(false);
    if !valid {
        return Err("bad bundle signature".into());
    }
    let mut prev: Option<[u8; 32]> = None;
    for r in &bundle.records {
        let (Some(prev_hash), Some(hash)) = (hash32(&r.prev_hash), hash32(&r.hash)) else {
            return Err(format!("seq {}: malformed hash", r.seq));
        };
        if prev.is_some_and(|p| p != prev_hash) {
            return Err(format!("seq {}: not chained to the record before", r.seq));
        }
        let event = AuditEvent::new(&r.event_type, r.actor.clone(), r.subject.clone(), r.data.clone());
        if chain_hash(&prev_hash, r.seq, r.time, &event) != hash {
            return Err(format!("seq {}: changed", r.seq));
        }
        prev = Some(hash);
    }
    for c in &bundle.checkpoints {
        let checkpoint = Checkpoint {
            kind: CheckpointKind::parse(&c.kind).ok_or_else(|| format!("checkpoint {}: kind", c.seq))?,
            seq: c.seq,
            hash: hash32(&c.hash).ok_or_else(|| format!("checkpoint {}: hash", c.seq))?,
            time: c.time,
            kid: c.kid.clone(),
            signature: URL_SAFE_NO_PAD
                .decode(&c.signature)
                .map_err(|_| format!("checkpoint {}: signature", c.seq))?,
            link: bundle_link(c)?,
        };
        if !signature_valid(trusted, &checkpoint) {
            return Err(format!("checkpoint {}: bad-checkpoint-signature", c.seq));
        }
        let covered = bundle.records.iter().find(|r| r.seq == c.seq);
        if covered.is_none_or(|r| r.hash != c.hash) {
            return Err(format!("checkpoint {}: the record it signs differs", c.seq));
        }
    }
    Ok(())
}

fn bundle_link(c: &BundleCheckpoint) -> Result<Option<Link>, String> {
    match (c.position, c.records, c.prev_seq, &c.prev) {
        (None, None, None, None) => Ok(None),
        (Some(position), Some(records), Some(prev_seq), Some(prev)) => Ok(Some(Link {
            position,
            records,
            prev_seq,
            prev: hash32(prev).ok_or_else(|| format!("checkpoint {}: prev", c.seq))?,
        })),
        _ => Err(format!("checkpoint {}: incomplete chain link", c.seq)),
    }
}
