//! Our issuing CA for smartcard authentication certificates (issue 4, R-MEANS-3,
//! R-ISS-2, R-LOG-1): the key `ca-<n>` (EC P-384) is generated in the HSM and signs only
//! through PKCS#11 (CKM_ECDSA over SHA-384); its self-signed certificate is made once and
//! kept in the token beside the key.
//!
//! - **Issuance** takes the card's CSR (key generated on the card), checks its proof of
//!   possession (the CSR signature by the key it carries) and the key (R-AUTH-7), and
//!   issues a certificate: subject with the person's identifier (ETSI EN 319 412-1
//!   `serialNumber` `PNO<country>-<code>`), key usage digitalSignature, EKU clientAuth,
//!   a random positive 128-bit serial, the configured validity, and the CRL distribution
//!   point URL.
//! - **CRL**: the certificates whose means is suspended (`certificateHold`), revoked or
//!   expired (`cessationOfOperation`), signed by the CA key, re-signed when that set
//!   changes or half its validity has passed, with a growing CRL number.
//!
//! Must not: hold or export the CA private key, or issue without a proof of possession.

use std::sync::Arc;

use rcgen::{
    CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, RemoteKeyPair, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::x509::{self, sha256_hex, KeyType};
use super::SmartcardError;
use crate::domain::means::MeansStatus;
use crate::domain::UnixTime;
use crate::hsm::CaKey;
use crate::store::WithdrawnCertificate;

/// Path of our CA certificate (DER).
pub const CA_PATH: &str = "/smartcard/ca.crt";
/// Path of our CRL (DER).
pub const CRL_PATH: &str = "/smartcard/crl";

/// Why a CSR was refused or issuance failed.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Not a DER/PEM PKCS#10 request.
    #[error("the CSR is not a PKCS#10 request")]
    MalformedCsr,
    /// The CSR is not signed by the key it carries.
    #[error("the CSR signature does not verify with its key (no proof of possession)")]
    ProofOfPossession,
    /// Unsupported or too short key.
    #[error("the card key is not EC P-256/P-384 or RSA of at least 2048 bits")]
    Key,
    /// The HSM or the encoder failed.
    #[error("certificate issuance failed: {0}")]
    Failed(String),
}

/// The CA key seen through the HSM, for the certificate encoder (which signs synchronously).
struct HsmCaKey {
    hsm: Arc<dyn CaKey>,
    label: String,
    public: Vec<u8>,
}

impl RemoteKeyPair for HsmCaKey {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let raw = self.hsm.sign_ca_blocking(&self.label, msg).map_err(|e| {
            tracing::error!(error = %e, "CA signature failed");
            rcgen::Error::RemoteKeyError
        })?;
        // X.509 wants the ECDSA signature as a DER SEQUENCE of r and s.
        let signature = p384::ecdsa::Signature::from_slice(&raw).map_err(|_| rcgen::Error::RemoteKeyError)?;
        Ok(signature.to_der().as_bytes().to_vec())
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P384_SHA384
    }
}

/// The subject facts of a card certificate.
#[derive(Clone, Debug)]
pub struct CardSubject {
    /// Country of the identifier (`LT`).
    pub country: String,
    /// National identifier code.
    pub code: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
}

/// A certificate our CA issued.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// DER.
    pub der: Vec<u8>,
    /// Serial, lower-case hex.
    pub serial: String,
    /// Hex SHA-256 of the DER.
    pub certificate_sha256: String,
    /// Validity start.
    pub not_before: UnixTime,
    /// Validity end.
    pub not_after: UnixTime,
}

/// The issuing CA.
pub struct IssuingCa {
    hsm: Arc<dyn CaKey>,
    label: String,
    public: Vec<u8>,
    certificate: Vec<u8>,
    /// The in-memory twin of the stored certificate the encoder needs as issuer (same
    /// name and key identifier; its own signature is never published).
    issuer: rcgen::Certificate,
    subject_sha256: String,
    crl_url: String,
}

impl std::fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuingCa")
            .field("label", &self.label)
            .field("subject_sha256", &self.subject_sha256)
            .finish_non_exhaustive()
    }
}

fn failed(e: impl std::fmt::Display) -> SmartcardError {
    SmartcardError::Ca(e.to_string())
}

fn at(unix: UnixTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl IssuingCa {
    /// Opens the CA of the active `ca` key: reads its certificate from the token, or
    /// makes and stores a self-signed one (20 years) on first use. Blocking.
    pub fn open(hsm: Arc<dyn CaKey>, config: &crate::config::Config) -> Result<IssuingCa, SmartcardError> {
        let (label, public) = hsm.ca_public_key()?;
        let key = || {
            KeyPair::from_remote(Box::new(HsmCaKey {
                hsm: hsm.clone(),
                label: label.clone(),
                public: public.clone(),
            }))
            .map_err(failed)
        };
        let certificate = match hsm.ca_certificate_blocking(&label)? {
            Some(der) => der,
            None => {
                let now = OffsetDateTime::now_utc();
                let mut params = CertificateParams::default();
                let mut name = DistinguishedName::new();
                name.push(DnType::CountryName, config.country.clone());
                name.push(DnType::OrganizationName, "eidgate");
                name.push(DnType::CommonName, format!("eidgate smartcard CA {label}"));
                params.distinguished_name = name;
                params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
                params.not_before = now - time::Duration::hours(1);
                params.not_after = now + time::Duration::days(20 * 365);
                let cert = params.self_signed(&key()?).map_err(failed)?;
                let der = cert.der().to_vec();
                let subject = x509::parse(&der)
                    .map_err(|_| failed("generated CA certificate does not parse"))?
                    .subject()
                    .as_raw()
                    .to_vec();
                hsm.store_ca_certificate_blocking(&label, &subject, &der)?;
                // Another process may have stored one first: use what the token holds.
                hsm.ca_certificate_blocking(&label)?.unwrap_or(der)
            }
        };
        let parsed = x509::parse(&certificate).map_err(|_| failed("the stored CA certificate does not parse"))?;
        let subject_sha256 = sha256_hex(parsed.subject().as_raw());
        let params = CertificateParams::from_ca_cert_der(&certificate.clone().into()).map_err(failed)?;
        let issuer = params.self_signed(&key()?).map_err(failed)?;
        Ok(IssuingCa {
            crl_url: format!("{}{CRL_PATH}", config.issuer.trim_end_matches('/')),
            hsm,
            label,
            public,
            certificate,
            issuer,
            subject_sha256,
        })
    }

    fn key(&self) -> Result<KeyPair, IssueError> {
        KeyPair::from_remote(Box::new(HsmCaKey {
            hsm: self.hsm.clone(),
            label: self.label.clone(),
            public: self.public.clone(),
        }))
        .map_err(|e| IssueError::Failed(e.to_string()))
    }

    /// The CA certificate (DER), as published at [`CA_PATH`].
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Hex SHA-256 of the CA's subject Name DER (the `issuer_sha256` of its certificates).
    pub fn subject_sha256(&self) -> &str {
        &self.subject_sha256
    }

    /// The label of the CA key in the HSM.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Issues a card certificate from `csr` (DER or PEM) for `subject`, valid from `now`
    /// for `validity`. Blocking (one HSM signature).
    pub fn issue(
        &self,
        csr: &[u8],
        subject: &CardSubject,
        now: UnixTime,
        validity: std::time::Duration,
    ) -> Result<IssuedCertificate, IssueError> {
        let der = csr_der(csr).ok_or(IssueError::MalformedCsr)?;
        let spki_der = {
            let request = match x509_parser::certification_request::X509CertificationRequest::from_der(&der) {
                Ok(([], request)) => request,
                _ => return Err(IssueError::MalformedCsr),
            };
            request.verify_signature().map_err(|_| IssueError::ProofOfPossession)?;
            let spki = &request.certification_request_info.subject_pki;
            match x509::key_type(spki) {
                Ok(KeyType::P256 | KeyType::P384 | KeyType::Rsa) => {}
                _ => return Err(IssueError::Key),
            }
            spki.raw.to_vec()
        };
        let public = rcgen::SubjectPublicKeyInfo::from_der(&spki_der).map_err(|_| IssueError::Key)?;
        let serial = random_serial();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CountryName, subject.country.clone());
        name.push(DnType::CustomDnType(vec![2, 5, 4, 4]), subject.family_name.clone());
        name.push(DnType::CustomDnType(vec![2, 5, 4, 42]), subject.given_name.clone());
        let pno = format!("PNO{}-{}", subject.country, subject.code);
        let pno_value = rcgen::PrintableString::try_from(pno.clone())
            .map(DnValue::PrintableString)
            .unwrap_or_else(|_| DnValue::Utf8String(pno.clone()));
        name.push(DnType::CustomDnType(vec![2, 5, 4, 5]), pno_value);
        name.push(
            DnType::CommonName,
            format!("{},{},{}", subject.family_name, subject.given_name, subject.code),
        );
        params.distinguished_name = name;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = at(now);
        let seconds = i64::try_from(validity.as_secs()).unwrap_or(i64::MAX / 2);
        params.not_after = at(now.saturating_add(seconds));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![self.crl_url.clone()],
        }];
        let cert = params
            .signed_by(&public, &self.issuer, &self.key()?)
            .map_err(|e| IssueError::Failed(e.to_string()))?;
        let der = cert.der().to_vec();
        let (not_before, not_after) = {
            let parsed =
                x509::parse(&der).map_err(|_| IssueError::Failed("issued certificate does not parse".into()))?;
            (
                parsed.validity().not_before.timestamp(),
                parsed.validity().not_after.timestamp(),
            )
        };
        Ok(IssuedCertificate {
            certificate_sha256: sha256_hex(&der),
            serial: x509::serial_hex(&serial),
            der,
            not_before,
            not_after,
        })
    }

    /// Signs a CRL listing `withdrawn`, number `number`, valid from `now` for `validity`.
    /// Blocking (one HSM signature).
    pub fn crl(
        &self,
        withdrawn: &[WithdrawnCertificate],
        number: u64,
        now: UnixTime,
        validity: std::time::Duration,
    ) -> Result<Vec<u8>, IssueError> {
        let revoked_certs = withdrawn
            .iter()
            .filter_map(|w| {
                let serial = hex::decode(&w.serial).ok()?;
                Some(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: at(w.since),
                    reason_code: match w.status {
                        MeansStatus::Suspended => Some(RevocationReason::CertificateHold),
                        MeansStatus::Expired => Some(RevocationReason::CessationOfOperation),
                        // RFC 5280 §5.3.1: omit the reason rather than say "unspecified".
                        _ => None,
                    },
                    invalidity_date: None,
                })
            })
            .collect();
        let seconds = i64::try_from(validity.as_secs()).unwrap_or(86_400).max(60);
        let params = CertificateRevocationListParams {
            this_update: at(now),
            next_update: at(now.saturating_add(seconds)),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: self.issuer.params().key_identifier_method.clone(),
        };
        let crl = params
            .signed_by(&self.issuer, &self.key()?)
            .map_err(|e| IssueError::Failed(e.to_string()))?;
        Ok(crl.der().to_vec())
    }
}

/// 16 random bytes as a positive DER integer of fixed length (top bit clear, next set):
/// 126 bits of entropy, unique in practice and enforced unique by the schema.
fn random_serial() -> [u8; 16] {
    let mut serial = crate::random::bytes::<16>();
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

/// DER of a CSR given as DER or PEM (`CERTIFICATE REQUEST`).
pub fn csr_der(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(input).ok();
    match text.map(str::trim) {
        Some(t) if t.starts_with("-----BEGIN CERTIFICATE REQUEST-----") => {
            let body: String = t.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
            base64::engine::general_purpose::STANDARD.decode(body).ok()
        }
        _ => Some(input.to_vec()),
    }
}

/// The current CRL of our CA: re-signed when the withdrawn set changed or half its
/// validity passed (R-LOG-1: revocation status generation).
pub async fn current_crl(app: &super::state::Cards) -> Result<Arc<Vec<u8>>, crate::store::StoreError> {
    let smartcard = app.smartcard.clone();
    let now = app.now();
    let withdrawn = app
        .store
        .withdrawn_card_certificates(smartcard.ca.subject_sha256(), now)
        .await?;
    let fingerprint = sha256_hex(
        withdrawn
            .iter()
            .map(|w| format!("{}:{}:{};", w.serial, w.status.as_str(), w.since))
            .collect::<String>()
            .as_bytes(),
    );
    let validity = app.config.smartcard.crl_validity;
    let half = i64::try_from(validity.as_secs() / 2).unwrap_or(i64::MAX);
    if let Some(signed) = smartcard.cached_crl() {
        if signed.fingerprint == fingerprint && now - signed.signed_at < half {
            return Ok(signed.der);
        }
    }
    let number = app.store.next_crl_number(smartcard.ca.subject_sha256()).await?;
    let withdrawn_count = withdrawn.len();
    let signer = smartcard.clone();
    let der = tokio::task::spawn_blocking(move || {
        signer
            .ca
            .crl(&withdrawn, u64::try_from(number).unwrap_or(1), now, validity)
    })
    .await
    .map_err(|e| crate::store::StoreError::Unavailable(format!("CRL task: {e}")))?
    .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))?;
    let audit = crate::audit::AuditEvent::new(
        crate::audit::catalogue::CRL_SIGNED,
        "system",
        format!("ca:{}", smartcard.ca.label()),
        serde_json::json!({"crl_number": number, "entries": withdrawn_count, "this_update": now}),
    );
    app.store.append(audit).await?;
    let der = Arc::new(der);
    smartcard.cache_crl(fingerprint, now, der.clone());
    Ok(der)
}

impl super::Smartcard {
    fn cached_crl(&self) -> Option<super::SignedCrl> {
        self.crl.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn cache_crl(&self, fingerprint: String, signed_at: UnixTime, der: Arc<Vec<u8>>) {
        *self.crl.lock().unwrap_or_else(|p| p.into_inner()) = Some(super::SignedCrl {
            fingerprint,
            signed_at,
            der,
        });
    }
}
