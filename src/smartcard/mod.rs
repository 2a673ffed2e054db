//! The smartcard means (issue 4; DESIGN "Smartcard login", CONTRACT): holders log in
//! with a card that signs a one-time challenge after the PIN, Web eID style, reaching
//! LoA high with amr `sc hwk pin mfa` (R-MEANS-3, R-MEANS-4, R-AUTH-5, R-AUTH-7).
//!
//! | file | owns |
//! | --- | --- |
//! | `webeid.rs` | the token format, parsed exactly; the signed data |
//! | `x509.rs` | certificate checks, the chain to a trusted CA, token signatures |
//! | `ca.rs` | our issuing CA (`ca-<n>`, EC P-384 in the HSM): certificates from CSRs, CRLs |
//! | `status.rs` | revocation status of certificates from external CAs (OCSP, else CRL), failing closed |
//! | `ocsp.rs` | OCSP requests and the checks of an answer (signature, CertID, freshness, nonce) |
//! | `issuance.rs` | personalisation: a certificate for an approved means from its card CSR |
//! | `ceremony.rs` | challenge and token steps of login and activation, audit of every refusal |
//! | `http.rs` | the routes |
//!
//! Every refusal answers the client with one generic error and records the precise
//! [`Rejection`] in the audit log; the challenge is consumed before anything is checked.

use std::sync::{Arc, Mutex};

use crate::domain::UnixTime;

pub mod ca;
pub mod ceremony;
pub mod http;
pub mod issuance;
pub mod ocsp;
pub mod state;
pub mod status;
pub mod webeid;
pub mod x509;

/// Why a smartcard token was refused (the audit `reason`; the client only ever sees a
/// generic error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The token names an algorithm that does not fit the certificate's key.
    #[error("algorithm_key_mismatch")]
    AlgorithmMismatch,
    /// The certificate belongs to another means than the one being activated.
    #[error("certificate_of_another_means")]
    AnotherMeans,
    /// The certificate's policies are not within those allowed for its CA.
    #[error("certificate_policy")]
    CertificatePolicy,
    /// The certificate's validity ended.
    #[error("certificate_expired")]
    CertificateExpired,
    /// The certificate is not valid yet.
    #[error("certificate_not_yet_valid")]
    CertificateNotYetValid,
    /// The external CA reports the certificate revoked.
    #[error("certificate_revoked")]
    CertificateRevoked,
    /// The certificate is trusted but not registered to any means.
    #[error("certificate_not_registered")]
    CertificateUnknown,
    /// EKU `clientAuth` is missing.
    #[error("extended_key_usage")]
    ExtendedKeyUsage,
    /// Key usage `digitalSignature` is missing (or the certificate is a CA).
    #[error("key_usage")]
    KeyUsage,
    /// base64 is not standard, padded and canonical (e.g. truncated).
    #[error("malformed_base64")]
    MalformedBase64,
    /// The certificate is not DER X.509.
    #[error("malformed_certificate")]
    MalformedCertificate,
    /// The token is not the JSON object of the contract.
    #[error("malformed_token")]
    MalformedToken,
    /// The certificate's means is not active (suspended, revoked, expired...).
    #[error("means_not_active")]
    MeansNotActive,
    /// No challenge was issued to this flow (or it was lost).
    #[error("nonce_missing")]
    NonceMissing,
    /// The challenge of this flow was issued more than `nonce_ttl` ago.
    #[error("nonce_expired")]
    NonceExpired,
    /// The challenge of this flow was used already.
    #[error("nonce_replayed")]
    NonceReplayed,
    /// The revocation status of an external certificate could not be established.
    #[error("revocation_status_unknown")]
    RevocationUnknown,
    /// A self-issued intermediate CA certificate sits in the path.
    #[error("self_issued_intermediate")]
    SelfIssuedIntermediate,
    /// The signature does not verify over this origin and this flow's challenge with the
    /// certificate's key (another key, another origin, another challenge).
    #[error("signature_invalid")]
    SignatureInvalid,
    /// The token is shorter than 100 or longer than 10,000 characters.
    #[error("token_size")]
    TokenSize,
    /// The format is not `web-eid:1` / `web-eid:1.<minor>`.
    #[error("unsupported_format")]
    UnsupportedFormat,
    /// The algorithm is not one of ES256, ES384, ES512, PS256, RS256.
    #[error("unsupported_algorithm")]
    UnsupportedAlgorithm,
    /// No trusted CA issued the certificate.
    #[error("untrusted_issuer")]
    UntrustedIssuer,
    /// The key is of an unsupported type or too short (R-AUTH-7).
    #[error("weak_key")]
    WeakKey,
}

impl Rejection {
    /// The audit reason.
    pub fn as_str(self) -> String {
        self.to_string()
    }
}

/// The smartcard services the server shares: the issuing CA, the trust store, the
/// revocation checker of external CAs and the CRL cache.
pub struct Smartcard {
    /// Our issuing CA.
    pub ca: ca::IssuingCa,
    /// Our CA and the configured external CAs.
    pub trust: x509::TrustStore,
    /// Status of external certificates.
    pub status: status::StatusChecker,
    /// The CRL last signed.
    crl: Mutex<Option<SignedCrl>>,
}

/// A CRL as signed, with what it was made from.
#[derive(Clone, Debug)]
struct SignedCrl {
    /// Fingerprint of the withdrawn set it lists.
    fingerprint: String,
    /// When it was signed.
    signed_at: UnixTime,
    /// DER.
    der: Arc<Vec<u8>>,
}

impl std::fmt::Debug for Smartcard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smartcard")
            .field("ca", &self.ca)
            .field("trusted", &self.trust.cas().len())
            .finish_non_exhaustive()
    }
}

/// Start-up errors of the smartcard services.
#[derive(Debug, thiserror::Error)]
pub enum SmartcardError {
    /// The HSM failed.
    #[error(transparent)]
    Hsm(#[from] crate::hsm::HsmError),
    /// The CA certificate could not be made or read.
    #[error("issuing CA: {0}")]
    Ca(String),
    /// A trusted CA file is unusable.
    #[error("smartcard.trusted_ca_files: {0}")]
    TrustedCa(String),
}

impl Smartcard {
    /// Opens the issuing CA (generating `ca-1` in the HSM and its self-signed certificate
    /// on first start) and reads the trusted CA files. Blocking.
    pub fn open(config: &crate::config::Config, hsm: &Arc<crate::hsm::Pkcs11Hsm>) -> Result<Smartcard, SmartcardError> {
        hsm.ensure_kind(crate::hsm::KeyKind::Ca)?;
        let key: Arc<dyn crate::hsm::CaKey> = hsm.clone();
        let ca = ca::IssuingCa::open(key, config)?;
        let mut cas = vec![x509::TrustedCa::new(ca.certificate().to_vec(), true).map_err(SmartcardError::Ca)?];
        for entry in &config.smartcard.trusted_ca_files {
            let path = entry.file();
            if entry.policies().is_none() {
                tracing::warn!(file = %path.display(), "trusted CA without a certificate policy filter: any card certificate it issues is accepted");
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| SmartcardError::TrustedCa(format!("{}: {e}", path.display())))?;
            let ders = pem_certificates(&text);
            if ders.is_empty() {
                return Err(SmartcardError::TrustedCa(format!(
                    "{}: no PEM certificate",
                    path.display()
                )));
            }
            for der in ders {
                let mut ca = x509::TrustedCa::new(der, false)
                    .map_err(|e| SmartcardError::TrustedCa(format!("{}: {e}", path.display())))?;
                ca.policies = entry.policies().map(<[String]>::to_vec);
                cas.push(ca);
            }
        }
        Ok(Smartcard {
            ca,
            trust: x509::TrustStore::new(cas),
            status: status::StatusChecker::new(&config.smartcard),
            crl: Mutex::new(None),
        })
    }
}

/// The DER of every `CERTIFICATE` block of a PEM text.
pub fn pem_certificates(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut inside: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(body) = inside.take() {
                if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
                    out.push(der);
                }
            }
        } else if let Some(body) = inside.as_mut() {
            body.push_str(line);
        }
    }
    out
}

/// PEM of a DER certificate.
pub fn certificate_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
