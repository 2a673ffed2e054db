//! Certificate checks of the smartcard ceremony (DESIGN "Smartcard login" step 4; issue
//! 4; R-AUTH-7, R-MEANS-3): parsing, validity, key usage `digitalSignature`, EKU
//! `clientAuth`, the chain to a trust anchor (our CA or a configured CA), and the token
//! signature by the certificate's key with the algorithm's hash.
//!
//! Chain rule: from the card certificate, an issuer is a trusted certificate whose
//! subject equals the issuer name and whose key verifies the signature. A trust anchor
//! ends the path. A configured intermediate continues it (at most 3), but a
//! **self-issued** intermediate (subject = issuer, not itself an anchor) is refused: a
//! name copied from a real CA proves nothing. Expired CA certificates do not count.
//!
//! X.509 signatures are verified by `x509-parser` (ECDSA P-256/P-384 with SHA-256/384,
//! RSA PKCS#1 v1.5); token signatures by RustCrypto (ECDSA P-256/P-384/P-521 over the
//! prehash, RSA PKCS#1 v1.5 and PSS), since a Web eID token names the hash explicitly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::webeid::Algorithm;
use super::Rejection;
use crate::domain::UnixTime;

/// Longest path of intermediates under an anchor.
const MAX_INTERMEDIATES: usize = 3;
/// Smallest RSA modulus accepted (R-AUTH-7).
const MIN_RSA_BITS: usize = 2048;

/// Parses one certificate; trailing bytes are refused.
pub fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Rejection> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(Rejection::MalformedCertificate),
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lower-case hex of a serial's DER integer content without leading zero bytes.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len().saturating_sub(1));
    hex::encode(&raw[start..])
}

/// One trusted CA certificate (DER kept; parsed when used).
#[derive(Clone, Debug)]
pub struct TrustedCa {
    /// DER.
    pub der: Vec<u8>,
    /// Whether it is our own issuing CA (status from our records) or external (OCSP/CRL).
    pub own: bool,
    /// Whether it ends a path (self-signed, or our own CA).
    pub anchor: bool,
    /// Raw subject Name DER.
    pub subject: Vec<u8>,
    /// Hex SHA-256 of the subject Name DER (the `issuer_sha256` of what it issues).
    pub subject_sha256: String,
    /// Certificate policy OIDs (dotted) a card certificate this CA issues directly must
    /// stay within (`[smartcard] trusted_ca_files` entry `policies`); `None`: no filter.
    pub policies: Option<Vec<String>>,
}

impl TrustedCa {
    /// Reads a CA certificate: it must be a CA (basicConstraints cA) that may sign
    /// certificates (keyCertSign when key usage is present).
    pub fn new(der: Vec<u8>, own: bool) -> Result<TrustedCa, String> {
        let (subject, anchor) = {
            let cert = parse(&der).map_err(|_| "not a DER X.509 certificate".to_owned())?;
            let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
            if !is_ca {
                return Err("not a CA certificate (basicConstraints cA is not set)".into());
            }
            if let Ok(Some(ku)) = cert.key_usage() {
                if !ku.value.key_cert_sign() {
                    return Err("the CA key usage lacks keyCertSign".into());
                }
            }
            let self_signed = cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok();
            (cert.subject().as_raw().to_vec(), own || self_signed)
        };
        Ok(TrustedCa {
            subject_sha256: sha256_hex(&subject),
            subject,
            der,
            own,
            anchor,
            policies: None,
        })
    }
}

/// The trust anchors and intermediates the server accepts.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    cas: Vec<TrustedCa>,
    paths: PathCache,
}

/// Card certificates entries the path cache holds at most, beyond which it is cleared.
const MAX_CACHED_PATHS: usize = 10_000;

/// Verified paths by the SHA-256 of the card certificate (issue 22): the signatures of a
/// path are checked once, the validity of its CA certificates at every use. Nothing about
/// the card's status is kept: our records (means state) and OCSP/CRL are asked at every
/// login after the path, so a suspension or revocation takes effect at once.
#[derive(Clone, Debug, Default)]
struct PathCache {
    paths: Arc<Mutex<HashMap<[u8; 32], CachedPath>>>,
    hits: Arc<AtomicU64>,
}

#[derive(Clone, Debug)]
struct CachedPath {
    chain: VerifiedChain,
    /// The latest notBefore and the earliest notAfter of the path's CA certificates.
    from: UnixTime,
    until: UnixTime,
}

/// A verified path: the card certificate's direct issuer and the anchor it ends at.
#[derive(Clone, Debug)]
pub struct VerifiedChain {
    /// Index of the direct issuer in the store.
    pub issuer: usize,
    /// Whether the path ends at our own CA.
    pub own: bool,
}

impl TrustStore {
    /// A store of `cas`.
    pub fn new(cas: Vec<TrustedCa>) -> TrustStore {
        TrustStore {
            cas,
            paths: PathCache::default(),
        }
    }

    /// The CA at `index`.
    pub fn ca(&self, index: usize) -> Option<&TrustedCa> {
        self.cas.get(index)
    }

    /// Every CA.
    pub fn cas(&self) -> &[TrustedCa] {
        &self.cas
    }

    /// Builds and checks the path from `leaf` (parsed from `der`, the whole certificate) to
    /// an anchor at `now`, or takes it from the path cache while every CA certificate in it
    /// is still valid at `now`.
    pub fn verify_chain(
        &self,
        der: &[u8],
        leaf: &X509Certificate<'_>,
        now: UnixTime,
    ) -> Result<VerifiedChain, Rejection> {
        let fingerprint: [u8; 32] = Sha256::digest(der).into();
        let cached = self
            .paths
            .paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&fingerprint)
            .cloned();
        if let Some(path) = cached.filter(|p| p.from <= now && now <= p.until) {
            self.paths.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(path.chain);
        }
        let path = self.build_path(leaf, now)?;
        let mut paths = self.paths.paths.lock().unwrap_or_else(PoisonError::into_inner);
        if paths.len() >= MAX_CACHED_PATHS {
            paths.clear();
        }
        paths.insert(fingerprint, path.clone());
        Ok(path.chain)
    }

    /// How many paths were taken from the cache since start (benches, tests).
    pub fn cached_path_hits(&self) -> u64 {
        self.paths.hits.load(Ordering::Relaxed)
    }

    /// Builds and checks the path from `leaf` to an anchor at `now`, every time.
    pub fn verify_chain_uncached(&self, leaf: &X509Certificate<'_>, now: UnixTime) -> Result<VerifiedChain, Rejection> {
        self.build_path(leaf, now).map(|p| p.chain)
    }

    fn build_path(&self, leaf: &X509Certificate<'_>, now: UnixTime) -> Result<CachedPath, Rejection> {
        let (mut from, mut until) = (UnixTime::MIN, UnixTime::MAX);
        let mut current_issuer = leaf.issuer().as_raw().to_vec();
        let mut current_der: Option<usize> = None;
        let mut direct_issuer = None;
        for _ in 0..=MAX_INTERMEDIATES {
            let mut found = None;
            for (index, ca) in self.cas.iter().enumerate() {
                if ca.subject != current_issuer || Some(index) == current_der {
                    continue;
                }
                let Ok(ca_cert) = parse(&ca.der) else { continue };
                let signed_ok = match current_der {
                    None => leaf.verify_signature(Some(ca_cert.public_key())).is_ok(),
                    Some(child) => {
                        let child = parse(&self.cas[child].der)?;
                        child.verify_signature(Some(ca_cert.public_key())).is_ok()
                    }
                };
                if !signed_ok || !within(&ca_cert, now) {
                    continue;
                }
                // Prefer an anchor among several candidates of the same name.
                if found.is_none() || ca.anchor {
                    let validity = ca_cert.validity();
                    found = Some((index, validity.not_before.timestamp(), validity.not_after.timestamp()));
                }
            }
            let Some((index, not_before, not_after)) = found else {
                return Err(Rejection::UntrustedIssuer);
            };
            from = from.max(not_before);
            until = until.min(not_after);
            direct_issuer.get_or_insert(index);
            let ca = &self.cas[index];
            if ca.anchor {
                let issuer = direct_issuer.unwrap_or(index);
                check_policies(leaf, self.cas[issuer].policies.as_deref())?;
                return Ok(CachedPath {
                    chain: VerifiedChain {
                        issuer: direct_issuer.unwrap_or(index),
                        own: ca.own,
                    },
                    from,
                    until,
                });
            }
            let ca_cert = parse(&ca.der)?;
            if ca_cert.subject().as_raw() == ca_cert.issuer().as_raw() {
                return Err(Rejection::SelfIssuedIntermediate);
            }
            current_issuer = ca_cert.issuer().as_raw().to_vec();
            current_der = Some(index);
        }
        Err(Rejection::UntrustedIssuer)
    }
}

/// The card certificate's policies (certificatePolicies OIDs) must all be among
/// `allowed`, and there must be at least one: a certificate of another product of the
/// same CA (say a mobile-ID certificate) does not log in as a card (`certificate_policy`).
fn check_policies(leaf: &X509Certificate<'_>, allowed: Option<&[String]>) -> Result<(), Rejection> {
    let Some(allowed) = allowed else { return Ok(()) };
    let oids = certificate_policies(leaf)?;
    if oids.is_empty() || !oids.iter().all(|oid| allowed.contains(oid)) {
        return Err(Rejection::CertificatePolicy);
    }
    Ok(())
}

/// The dotted OIDs of a certificate's certificatePolicies extension (empty without one).
pub fn certificate_policies(cert: &X509Certificate<'_>) -> Result<Vec<String>, Rejection> {
    let mut oids = Vec::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::CertificatePolicies(policies) => {
                oids.extend(policies.iter().map(|p| p.policy_id.to_id_string()));
            }
            _ if ext.oid == x509_parser::oid_registry::OID_X509_EXT_CERTIFICATE_POLICIES => {
                return Err(Rejection::CertificatePolicy);
            }
            _ => {}
        }
    }
    Ok(oids)
}

fn within(cert: &X509Certificate<'_>, now: UnixTime) -> bool {
    let validity = cert.validity();
    validity.not_before.timestamp() <= now && now <= validity.not_after.timestamp()
}

/// Validity at `now`, key usage `digitalSignature` and EKU `clientAuth` of a card
/// certificate, and that it is not a CA.
pub fn check_leaf(cert: &X509Certificate<'_>, now: UnixTime) -> Result<(), Rejection> {
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(Rejection::CertificateNotYetValid);
    }
    if now > validity.not_after.timestamp() {
        return Err(Rejection::CertificateExpired);
    }
    match cert.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => {}
        _ => return Err(Rejection::KeyUsage),
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.client_auth => {}
        _ => return Err(Rejection::ExtendedKeyUsage),
    }
    if matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca) {
        return Err(Rejection::KeyUsage);
    }
    Ok(())
}

/// The kinds of card keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// EC P-256.
    P256,
    /// EC P-384.
    P384,
    /// EC P-521.
    P521,
    /// RSA of at least 2048 bits.
    Rsa,
}

/// The key type of a public key; unknown curves, other algorithms and short RSA keys are
/// refused (R-AUTH-7).
pub fn key_type(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyType, Rejection> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or(Rejection::WeakKey)?;
        if curve == OID_EC_P256 {
            Ok(KeyType::P256)
        } else if curve == OID_NIST_EC_P384 {
            Ok(KeyType::P384)
        } else if curve == OID_NIST_EC_P521 {
            Ok(KeyType::P521)
        } else {
            Err(Rejection::WeakKey)
        }
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPublicKey::from_pkcs1_der(&spki.subject_public_key.data).map_err(|_| Rejection::WeakKey)?;
        if key.size() * 8 < MIN_RSA_BITS {
            return Err(Rejection::WeakKey);
        }
        Ok(KeyType::Rsa)
    } else {
        Err(Rejection::WeakKey)
    }
}

/// Verifies a Web eID token signature over `data` by the key of `spki` with `algorithm`.
/// The algorithm must match the key: ES256 a P-256 key, ES384 P-384, ES512 P-521, PS256
/// and RS256 an RSA key (RFC 7518 §3.4); otherwise `AlgorithmMismatch`.
pub fn verify_token_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    algorithm: Algorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<(), Rejection> {
    let key = key_type(spki)?;
    let point: &[u8] = &spki.subject_public_key.data;
    let prehash = algorithm.hash(data);
    let ok = match (algorithm, key) {
        (Algorithm::ES256, KeyType::P256) => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| Rejection::WeakKey)?;
            p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| key.verify_prehash(&prehash, &s).is_ok())
        }
        (Algorithm::ES384, KeyType::P384) => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| Rejection::WeakKey)?;
            p384::ecdsa::Signature::from_slice(signature).is_ok_and(|s| key.verify_prehash(&prehash, &s).is_ok())
        }
        (Algorithm::ES512, KeyType::P521) => {
            let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| Rejection::WeakKey)?;
            p521::ecdsa::Signature::from_slice(signature).is_ok_and(|s| key.verify_prehash(&prehash, &s).is_ok())
        }
        (Algorithm::PS256 | Algorithm::RS256, KeyType::Rsa) => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            let key = rsa::RsaPublicKey::from_pkcs1_der(point).map_err(|_| Rejection::WeakKey)?;
            if algorithm == Algorithm::PS256 {
                key.verify(rsa::Pss::new::<Sha256>(), &prehash, signature).is_ok()
            } else {
                key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &prehash, signature)
                    .is_ok()
            }
        }
        _ => return Err(Rejection::AlgorithmMismatch),
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::pkcs8::DecodePrivateKey;

    fn spki_of(cert_der: &[u8]) -> Vec<u8> {
        parse(cert_der).unwrap().public_key().raw.to_vec()
    }

    fn self_signed(alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["card".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.der().to_vec(), key)
    }

    #[test]
    fn r_auth_7_token_signatures_verify_only_with_the_matching_algorithm() {
        let (der, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let spki_der = spki_of(&der);
        let (_, spki) = SubjectPublicKeyInfo::from_der(&spki_der).unwrap();
        let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
        let data = super::super::webeid::signed_data(Algorithm::ES256, "https://o", "n");
        let prehash = Algorithm::ES256.hash(&data);
        let sig: p256::ecdsa::Signature = signing.sign_prehash(&prehash).unwrap();
        let sig = sig.to_bytes().to_vec();
        assert_eq!(verify_token_signature(&spki, Algorithm::ES256, &data, &sig), Ok(()));
        assert_eq!(
            verify_token_signature(&spki, Algorithm::ES256, b"other data", &sig),
            Err(Rejection::SignatureInvalid)
        );
        assert_eq!(
            verify_token_signature(&spki, Algorithm::ES384, &data, &sig),
            Err(Rejection::AlgorithmMismatch)
        );
        assert_eq!(
            verify_token_signature(&spki, Algorithm::RS256, &data, &sig),
            Err(Rejection::AlgorithmMismatch)
        );
        assert_eq!(
            verify_token_signature(&spki, Algorithm::ES256, &data, &sig[..63]),
            Err(Rejection::SignatureInvalid)
        );
    }

    #[test]
    fn r_auth_7_leaf_checks_key_usage_eku_and_validity() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["card".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let no_usage = params.clone().self_signed(&key).unwrap();
        let now = rcgen::date_time_ymd(2025, 6, 1).unix_timestamp();
        assert_eq!(
            check_leaf(&parse(no_usage.der()).unwrap(), now),
            Err(Rejection::KeyUsage)
        );
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let no_eku = params.clone().self_signed(&key).unwrap();
        assert_eq!(
            check_leaf(&parse(no_eku.der()).unwrap(), now),
            Err(Rejection::ExtendedKeyUsage)
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let good = params.self_signed(&key).unwrap();
        let cert = parse(good.der()).unwrap();
        assert_eq!(check_leaf(&cert, now), Ok(()));
        assert_eq!(
            check_leaf(&cert, rcgen::date_time_ymd(2031, 1, 1).unix_timestamp()),
            Err(Rejection::CertificateExpired)
        );
        assert_eq!(
            check_leaf(&cert, rcgen::date_time_ymd(2019, 1, 1).unix_timestamp()),
            Err(Rejection::CertificateNotYetValid)
        );
        assert_eq!(serial_hex(&[0, 0, 0x7f, 1]), "7f01");
    }
}
