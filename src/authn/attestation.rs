//! FIDO2 attestation checks that `webauthn_rp` does not do (R-MEANS-3): the `packed`
//! attestation statement with an `x5c` certificate chain (W3C WebAuthn Level 3 §8.2),
//! and the attestation allow list of certified authenticator models per LoA (CA
//! certificates and/or AAGUIDs from `[[webauthn.attestation]]`).
//!
//! The W3C verification procedure of §8.2, as implemented by [`verify_packed_x5c`]:
//! 1. `attStmt` is CBOR `{alg, sig, x5c}`; the attestation object is parsed to get the
//!    authenticator data and its AAGUID.
//! 2. `sig` verifies over `authenticatorData || clientDataHash` with the public key of
//!    `attestnCert = x5c[0]` and the algorithm `alg`.
//! 3. `attestnCert` meets §8.2.1: X.509 v3, subject with C, O, OU = "Authenticator
//!    Attestation" and CN, Basic Constraints CA false.
//! 4. If `attestnCert` has the `id-fido-gen-ce-aaguid` extension (1.3.6.1.4.1.45724.1.1.4),
//!    its value equals the AAGUID of the authenticator data.
//! 5. Trust (§7.1 step 23/24): every certificate of `x5c` is signed by the next, each is
//!    within its validity, every one after the leaf is a CA, and the last one is a
//!    configured trust anchor or is signed by one (issuer name = anchor subject, signature
//!    verified with the anchor's key).
//!
//! This module is pure (no I/O besides reading the configured PEM files at start).

use std::path::Path;

use ciborium::Value;
use sha2::{Digest, Sha256, Sha384};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::config::AttestationTrustConfig;
use crate::domain::loa::Loa;

/// `id-fido-gen-ce-aaguid`.
const OID_FIDO_AAGUID: &str = "1.3.6.1.4.1.45724.1.1.4";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// At most this many certificates in `x5c` (a leaf and a few intermediates).
const MAX_CHAIN: usize = 5;

/// Why an attestation statement is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestationError {
    /// The attestation object or statement is not well-formed CBOR of the expected shape.
    #[error("malformed attestation: {0}")]
    Malformed(&'static str),
    /// Unsupported `alg` or certificate key.
    #[error("unsupported attestation algorithm")]
    UnsupportedAlgorithm,
    /// The attestation signature does not verify.
    #[error("attestation signature invalid")]
    BadSignature,
    /// The attestation certificate breaks §8.2.1.
    #[error("attestation certificate requirements not met: {0}")]
    BadCertificate(&'static str),
    /// The certificate's AAGUID differs from the authenticator data's.
    #[error("attestation certificate AAGUID mismatch")]
    AaguidMismatch,
}

/// A trust anchor: a configured CA certificate.
#[derive(Clone)]
struct Anchor {
    der: Vec<u8>,
    subject: Vec<(String, String)>,
}

/// One allow-list entry, loaded.
#[derive(Clone)]
struct Entry {
    loa: Loa,
    anchors: Vec<usize>,
    aaguids: Vec<[u8; 16]>,
}

/// The attestation allow list: trust anchors and certified AAGUIDs per level.
#[derive(Clone, Default)]
pub struct AttestationPolicy {
    anchors: Vec<Anchor>,
    entries: Vec<Entry>,
}

impl std::fmt::Debug for AttestationPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationPolicy")
            .field("anchors", &self.anchors.len())
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// What the attestation of a new credential showed (recorded with the means).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttestationResult {
    /// `packed`, `none`, ... as sent.
    pub format: String,
    /// The authenticator model (hyphenated hex).
    pub aaguid: String,
    /// `basic` (x5c chain), `self` (signed with the credential key) or `none`.
    pub kind: String,
    /// Subjects of the chain, leaf first, then the anchor that accepted it.
    pub trust_path: Vec<String>,
    /// The level the allow list trusts this authenticator for; `None` when not on it.
    pub trusted_loa: Option<Loa>,
}

/// The parts of an attestation object the checks need.
#[derive(Debug)]
pub struct ParsedAttestation {
    /// `fmt`.
    pub format: String,
    /// `attStmt` (CBOR map).
    pub statement: Vec<(Value, Value)>,
    /// Raw authenticator data.
    pub auth_data: Vec<u8>,
    /// AAGUID from the attested credential data.
    pub aaguid: [u8; 16],
    /// Backup eligibility flag (BE): a multi-device (synced) credential.
    pub backup_eligible: bool,
}

/// Parses a CBOR attestation object (`{fmt, attStmt, authData}`).
pub fn parse(attestation_object: &[u8]) -> Result<ParsedAttestation, AttestationError> {
    if attestation_object.len() > 16 * 1024 {
        return Err(AttestationError::Malformed("attestation object too large"));
    }
    let value: Value =
        ciborium::de::from_reader(attestation_object).map_err(|_| AttestationError::Malformed("not CBOR"))?;
    let Value::Map(map) = value else {
        return Err(AttestationError::Malformed("not a map"));
    };
    let field = |name: &str| map.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v);
    let format = field("fmt")
        .and_then(Value::as_text)
        .ok_or(AttestationError::Malformed("fmt"))?
        .to_owned();
    let statement = field("attStmt")
        .and_then(Value::as_map)
        .ok_or(AttestationError::Malformed("attStmt"))?
        .clone();
    let auth_data = field("authData")
        .and_then(Value::as_bytes)
        .ok_or(AttestationError::Malformed("authData"))?
        .clone();
    // rpIdHash(32) flags(1) signCount(4) aaguid(16) credentialIdLength(2) ...
    if auth_data.len() < 55 {
        return Err(AttestationError::Malformed("authData too short"));
    }
    let flags = auth_data[32];
    if flags & 0x40 == 0 {
        return Err(AttestationError::Malformed("no attested credential data"));
    }
    let mut aaguid = [0u8; 16];
    aaguid.copy_from_slice(&auth_data[37..53]);
    Ok(ParsedAttestation {
        format,
        statement,
        auth_data,
        aaguid,
        backup_eligible: flags & 0x08 != 0,
    })
}

/// The same attestation object with its statement removed (`fmt` "none"), in CTAP2
/// canonical CBOR, after [`verify_packed_x5c`] has checked the statement: the rest of
/// the registration (client data, RP ID hash, flags, algorithm, credential) is then
/// verified by `webauthn_rp`, which does not accept `x5c` chains itself.
pub fn without_statement(auth_data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(auth_data.len() + 32);
    out.push(0xa3); // map(3), keys in canonical order: "fmt", "attStmt", "authData"
    out.push(0x63);
    out.extend_from_slice(b"fmt");
    out.push(0x64);
    out.extend_from_slice(b"none");
    out.push(0x67);
    out.extend_from_slice(b"attStmt");
    out.push(0xa0);
    out.push(0x68);
    out.extend_from_slice(b"authData");
    let len = auth_data.len();
    if len < 24 {
        out.push(0x40 | len as u8);
    } else if len < 256 {
        out.push(0x58);
        out.push(len as u8);
    } else {
        out.push(0x59);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(auth_data);
    out
}

/// Whether a `packed` statement carries an `x5c` chain (basic / AttCA attestation).
pub fn has_x5c(parsed: &ParsedAttestation) -> bool {
    parsed.statement.iter().any(|(k, _)| k.as_text() == Some("x5c"))
}

/// Steps 1-4 of §8.2 for a `packed` statement with `x5c`; returns the DER chain.
pub fn verify_packed_x5c(
    parsed: &ParsedAttestation,
    client_data_hash: &[u8; 32],
) -> Result<Vec<Vec<u8>>, AttestationError> {
    let field = |name: &str| {
        parsed
            .statement
            .iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v)
    };
    if parsed.statement.len() != 3 {
        return Err(AttestationError::Malformed("packed attStmt must be {alg, sig, x5c}"));
    }
    let alg = field("alg")
        .and_then(Value::as_integer)
        .and_then(|i| i64::try_from(i).ok())
        .ok_or(AttestationError::Malformed("alg"))?;
    let sig = field("sig")
        .and_then(Value::as_bytes)
        .ok_or(AttestationError::Malformed("sig"))?;
    let chain: Vec<Vec<u8>> = field("x5c")
        .and_then(Value::as_array)
        .ok_or(AttestationError::Malformed("x5c"))?
        .iter()
        .map(|c| c.as_bytes().cloned().ok_or(AttestationError::Malformed("x5c entry")))
        .collect::<Result<_, _>>()?;
    if chain.is_empty() || chain.len() > MAX_CHAIN {
        return Err(AttestationError::Malformed("x5c length"));
    }
    let (_, leaf) = X509Certificate::from_der(&chain[0]).map_err(|_| AttestationError::Malformed("x5c[0] not DER"))?;
    let mut signed = parsed.auth_data.clone();
    signed.extend_from_slice(client_data_hash);
    let hash = match alg {
        -7 => HashAlg::Sha256,
        -35 => HashAlg::Sha384,
        -257 => HashAlg::Sha256Rsa,
        _ => return Err(AttestationError::UnsupportedAlgorithm),
    };
    verify_with_spki(&leaf, hash, &signed, sig)?;
    check_leaf_requirements(&leaf)?;
    for ext in leaf.extensions() {
        if ext.oid.to_id_string() == OID_FIDO_AAGUID {
            if ext.critical {
                return Err(AttestationError::BadCertificate(
                    "AAGUID extension must not be critical",
                ));
            }
            // extnValue is an OCTET STRING holding the 16 bytes.
            let value = ext.value;
            let inner = match value {
                [0x04, 0x10, rest @ ..] if rest.len() == 16 => rest,
                _ => return Err(AttestationError::BadCertificate("AAGUID extension")),
            };
            if inner != parsed.aaguid {
                return Err(AttestationError::AaguidMismatch);
            }
        }
    }
    Ok(chain)
}

fn check_leaf_requirements(leaf: &X509Certificate<'_>) -> Result<(), AttestationError> {
    // X.509 version 3 is encoded as 2.
    if leaf.version().0 != 2 {
        return Err(AttestationError::BadCertificate("not X.509 v3"));
    }
    let subject = name_parts(leaf.subject());
    let has = |oid: &str| subject.iter().any(|(o, v)| o == oid && !v.is_empty());
    // C, O, OU, CN.
    if !(has("2.5.4.6") && has("2.5.4.10") && has("2.5.4.3")) {
        return Err(AttestationError::BadCertificate("subject needs C, O and CN"));
    }
    if !subject
        .iter()
        .any(|(o, v)| o == "2.5.4.11" && v == "authenticator attestation")
    {
        return Err(AttestationError::BadCertificate(
            "subject OU must be Authenticator Attestation",
        ));
    }
    match leaf.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => Err(AttestationError::BadCertificate("attestation certificate is a CA")),
        Ok(_) => Ok(()),
        Err(_) => Err(AttestationError::BadCertificate("duplicate basic constraints")),
    }
}

#[derive(Clone, Copy)]
enum HashAlg {
    Sha256,
    Sha384,
    Sha256Rsa,
}

/// Verifies `sig` over `message` with the subject public key of `cert`.
fn verify_with_spki(
    cert: &X509Certificate<'_>,
    hash: HashAlg,
    message: &[u8],
    sig: &[u8],
) -> Result<(), AttestationError> {
    verify_spki(cert.public_key(), hash, message, sig)
}

fn verify_spki(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    hash: HashAlg,
    message: &[u8],
    sig: &[u8],
) -> Result<(), AttestationError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key_alg = spki.algorithm.algorithm.to_id_string();
    let digest: Vec<u8> = match hash {
        HashAlg::Sha256 | HashAlg::Sha256Rsa => Sha256::digest(message).to_vec(),
        HashAlg::Sha384 => Sha384::digest(message).to_vec(),
    };
    let key_bytes: &[u8] = &spki.subject_public_key.data;
    match (key_alg.as_str(), hash) {
        (OID_EC_PUBLIC_KEY, HashAlg::Sha256 | HashAlg::Sha384) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .ok_or(AttestationError::UnsupportedAlgorithm)?;
            match curve.as_str() {
                OID_P256 => {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map_err(|_| AttestationError::UnsupportedAlgorithm)?;
                    let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| AttestationError::BadSignature)?;
                    key.verify_prehash(&digest, &sig)
                        .map_err(|_| AttestationError::BadSignature)
                }
                OID_P384 => {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map_err(|_| AttestationError::UnsupportedAlgorithm)?;
                    let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| AttestationError::BadSignature)?;
                    key.verify_prehash(&digest, &sig)
                        .map_err(|_| AttestationError::BadSignature)
                }
                _ => Err(AttestationError::UnsupportedAlgorithm),
            }
        }
        (OID_RSA_ENCRYPTION, HashAlg::Sha256Rsa) => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::signature::Verifier;
            let key =
                rsa::RsaPublicKey::from_pkcs1_der(key_bytes).map_err(|_| AttestationError::UnsupportedAlgorithm)?;
            let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
            let sig = rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| AttestationError::BadSignature)?;
            key.verify(message, &sig).map_err(|_| AttestationError::BadSignature)
        }
        _ => Err(AttestationError::UnsupportedAlgorithm),
    }
}

/// Verifies the signature of `cert` with the public key of `issuer`.
fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    let hash = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        OID_ECDSA_SHA256 => HashAlg::Sha256,
        OID_ECDSA_SHA384 => HashAlg::Sha384,
        OID_RSA_SHA256 => HashAlg::Sha256Rsa,
        _ => return false,
    };
    verify_spki(
        issuer.public_key(),
        hash,
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data,
    )
    .is_ok()
}

/// RDN attributes as (OID, value in lower case, trimmed): names compare by content, not
/// by string type (PrintableString and UTF8String of the same text are equal).
fn name_parts(name: &X509Name<'_>) -> Vec<(String, String)> {
    name.iter_attributes()
        .map(|a| {
            let value = a.as_str().map(|s| s.trim().to_lowercase()).unwrap_or_default();
            (a.attr_type().to_id_string(), value)
        })
        .collect()
}

fn same_name(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// Parses an AAGUID in the hyphenated form (or 32 hex digits).
pub fn parse_aaguid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let bytes = hex::decode(hex).ok()?;
    bytes.try_into().ok()
}

/// The hyphenated form of an AAGUID.
pub fn format_aaguid(aaguid: &[u8; 16]) -> String {
    let h = hex::encode(aaguid);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Reads every certificate of a PEM file.
fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&data) {
        let pem = pem.map_err(|e| format!("{}: {e}", path.display()))?;
        if pem.label == "CERTIFICATE" {
            out.push(pem.contents);
        }
    }
    if out.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", path.display()));
    }
    Ok(out)
}

impl AttestationPolicy {
    /// Loads the allow list; a CA file that cannot be read or parsed fails the start.
    pub fn load(entries: &[AttestationTrustConfig]) -> Result<Self, String> {
        let mut policy = AttestationPolicy::default();
        for entry in entries {
            let mut anchors = Vec::new();
            for path in &entry.ca_files {
                for der in read_pem_certs(path)? {
                    let (_, cert) = X509Certificate::from_der(&der)
                        .map_err(|e| format!("{}: not an X.509 certificate: {e}", path.display()))?;
                    let subject = name_parts(cert.subject());
                    policy.anchors.push(Anchor {
                        der: der.clone(),
                        subject,
                    });
                    anchors.push(policy.anchors.len() - 1);
                }
            }
            let aaguids = entry
                .aaguids
                .iter()
                .map(|a| parse_aaguid(a).ok_or_else(|| format!("webauthn.attestation: bad AAGUID {a:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            policy.entries.push(Entry {
                loa: entry.loa,
                anchors,
                aaguids,
            });
        }
        Ok(policy)
    }

    /// Step 5: the chain verified against the anchors of each entry; the highest level
    /// whose entry accepts it (anchor and AAGUID), with the trust path.
    pub fn assess(&self, chain: &[Vec<u8>], aaguid: &[u8; 16], now: i64) -> (Option<Loa>, Vec<String>) {
        let mut certs = Vec::new();
        for der in chain {
            match X509Certificate::from_der(der) {
                Ok((_, c)) => certs.push(c),
                Err(_) => return (None, Vec::new()),
            }
        }
        let mut path: Vec<String> = certs.iter().map(|c| c.subject().to_string()).collect();
        // Validity, CA flags of intermediates, and each link of the chain.
        let within = |c: &X509Certificate<'_>| {
            c.validity().not_before.timestamp() <= now && now <= c.validity().not_after.timestamp()
        };
        if !certs.iter().all(within) {
            return (None, path);
        }
        for (i, pair) in certs.windows(2).enumerate() {
            let issuer_is_ca = matches!(pair[1].basic_constraints(), Ok(Some(bc)) if bc.value.ca);
            if !issuer_is_ca || !signed_by(&pair[0], &pair[1]) || i + 1 >= MAX_CHAIN {
                return (None, path);
            }
        }
        let Some(top) = certs.last() else {
            return (None, path);
        };
        let top_der = chain.last().map(Vec::as_slice).unwrap_or_default();
        let accepted_by = |anchor: &Anchor| -> bool {
            if anchor.der == top_der {
                return true;
            }
            let Ok((_, anchor_cert)) = X509Certificate::from_der(&anchor.der) else {
                return false;
            };
            same_name(&name_parts(top.issuer()), &anchor.subject) && signed_by(top, &anchor_cert)
        };
        let mut best: Option<(Loa, usize)> = None;
        for entry in &self.entries {
            let candidates: Vec<usize> = if entry.anchors.is_empty() {
                (0..self.anchors.len()).collect()
            } else {
                entry.anchors.clone()
            };
            let Some(anchor) = candidates.into_iter().find(|i| accepted_by(&self.anchors[*i])) else {
                continue;
            };
            if !entry.aaguids.is_empty() && !entry.aaguids.contains(aaguid) {
                continue;
            }
            if best.is_none_or(|(loa, _)| entry.loa > loa) {
                best = Some((entry.loa, anchor));
            }
        }
        match best {
            Some((loa, anchor)) => {
                if let Ok((_, a)) = X509Certificate::from_der(&self.anchors[anchor].der) {
                    path.push(format!("anchor: {}", a.subject()));
                }
                (Some(loa), path)
            }
            None => (None, path),
        }
    }

    /// Whether any entry is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_means_3_aaguid_forms() {
        let a = parse_aaguid("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap();
        assert_eq!(format_aaguid(&a), "cb69481e-8ff7-4039-93ec-0a2729a154a8");
        assert!(parse_aaguid("xyz").is_none());
        assert!(parse_aaguid("cb69481e").is_none());
    }

    #[test]
    fn r_means_3_statement_free_object_is_canonical_cbor() {
        let auth = vec![7u8; 300];
        let obj = without_statement(&auth);
        let v: Value = ciborium::de::from_reader(obj.as_slice()).unwrap();
        let map = v.as_map().unwrap();
        assert_eq!(map[0].0.as_text(), Some("fmt"));
        assert_eq!(map[0].1.as_text(), Some("none"));
        assert_eq!(map[2].1.as_bytes().unwrap(), &auth);
        let short = without_statement(&[1, 2, 3]);
        let v: Value = ciborium::de::from_reader(short.as_slice()).unwrap();
        assert_eq!(v.as_map().unwrap()[2].1.as_bytes().unwrap(), &vec![1, 2, 3]);
    }
}
