//! OCSP (RFC 6960) for card certificates of an **external** trusted CA (issue 4; R-AUTH-7;
//! DESIGN "When a dependency fails"): the request for one certificate, the responder URL
//! from the certificate's AIA, and the checks of an answer. The HTTP exchange, the cache
//! and the choice between OCSP and CRL are `status.rs`'s.
//!
//! What an answer must be to count: `successful`, a `BasicOCSPResponse` signed either by
//! the issuing CA's key or by a delegated responder certificate carried in `certs` that the
//! issuing CA signed, is valid now and has EKU `id-kp-OCSPSigning`; a `SingleResponse` for
//! exactly our `CertID`; `thisUpdate` not ahead of `now` by more than [`CLOCK_SKEW`] and not
//! older than `max_age`; `nextUpdate`, if present, not passed; our nonce echoed (only a
//! responder listed in `[smartcard] ocsp_nonce_optional` may omit it; a different one is
//! always refused); no unknown critical extension. Anything else is an [`OcspError`], which the caller turns into an unknown
//! status and refuses: this module never says "good" by default.
//!
//! ASN.1 comes from RustCrypto `x509-ocsp`/`der`; signatures are verified by `x509-parser`
//! (ring: ECDSA P-256/P-384, RSA PKCS#1 v1.5), as for certificates and CRLs in `x509.rs`.

use der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use sha1::{Digest, Sha1};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{
    CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request, ResponseData, SingleResponse,
    TbsRequest,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
use x509_parser::prelude::FromDer;

use super::x509::{self, TrustedCa};
use crate::domain::UnixTime;

/// How far `thisUpdate` may lie ahead of our clock (responder clocks drift).
pub const CLOCK_SKEW: i64 = 60;
/// Nonce length in bytes (RFC 8954 asks for at least 16, at most 32).
pub const NONCE_LEN: usize = 32;
/// Delegated responder certificates looked at in one answer.
const MAX_RESPONDER_CERTS: usize = 8;

/// `id-pkix-ocsp-basic` (RFC 6960 §4.2.1).
const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// `id-pkix-ocsp-nonce` (RFC 6960 §4.4.1).
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// `id-sha1` (the CertID hash RFC 5019 lightweight responders must support).
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");

/// Why an OCSP answer does not establish a status (logged; audited as an unknown status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// A critical extension we do not understand.
    #[error("unknown critical extension")]
    CriticalExtension,
    /// The responder's HTTP answer was not 200.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The request could not be made (our side).
    #[error("request not encodable")]
    Request,
    /// Not DER of an OCSPResponse with a BasicOCSPResponse.
    #[error("malformed response")]
    Malformed,
    /// `nextUpdate` has passed.
    #[error("nextUpdate passed")]
    NextUpdatePassed,
    /// No SingleResponse for the CertID asked about.
    #[error("no response for our CertID")]
    NoMatchingResponse,
    /// The response carries a nonce other than ours.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The response does not echo our nonce, and the responder is not one configured as
    /// never sending one (`[smartcard] ocsp_nonce_optional`).
    #[error("nonce not echoed")]
    NonceMissing,
    /// `responseStatus` was not `successful`.
    #[error("responseStatus {0}")]
    ResponseStatus(u32),
    /// Signed by neither the issuing CA nor a delegated responder it authorised.
    #[error("signature not by the CA or an authorised responder")]
    Signature,
    /// `thisUpdate` is older than the configured maximum age.
    #[error("stale (thisUpdate too old)")]
    Stale,
    /// `thisUpdate` lies in the future beyond the allowed skew.
    #[error("thisUpdate in the future")]
    ThisUpdateAhead,
    /// The body exceeded the size limit.
    #[error("response too large")]
    TooLarge,
    /// The responder could not be reached, or timed out.
    #[error("responder unreachable or timed out")]
    Transport,
    /// The responder does not know the certificate (`unknown`).
    #[error("certificate status unknown to the responder")]
    UnknownCertificate,
}

/// A status the responder vouched for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Not revoked.
    Good,
    /// Revoked (or on hold: also refused).
    Revoked,
}

/// A verified answer and how long it may be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// What the responder said.
    pub status: CertificateStatus,
    /// The last instant the answer counts as fresh: `thisUpdate + max_age`, or
    /// `nextUpdate` if sooner.
    pub fresh_until: UnixTime,
}

/// One OCSP request: the CertID of the certificate and the nonce sent with it.
#[derive(Clone, Debug)]
pub struct Query {
    cert_id: CertId,
    nonce: [u8; NONCE_LEN],
    /// Whether the answer must echo the nonce (true unless the responder is known never
    /// to send one).
    echo_required: bool,
    der: Vec<u8>,
}

impl Query {
    /// The request for the certificate with DER serial content `serial` issued by
    /// `issuer`: a SHA-1 CertID (RFC 5019) and a fresh random nonce.
    pub fn new(serial: &[u8], issuer: &TrustedCa) -> Result<Query, OcspError> {
        Query::with_nonce(serial, issuer, crate::random::bytes::<NONCE_LEN>())
    }

    fn with_nonce(serial: &[u8], issuer: &TrustedCa, nonce: [u8; NONCE_LEN]) -> Result<Query, OcspError> {
        let ca = x509::parse(&issuer.der).map_err(|_| OcspError::Request)?;
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: ID_SHA1,
                parameters: Some(der::asn1::Null.into()),
            },
            issuer_name_hash: octets(Sha1::digest(&issuer.subject).to_vec())?,
            issuer_key_hash: octets(Sha1::digest(&ca.public_key().subject_public_key.data).to_vec())?,
            serial_number: serial_number(serial)?,
        };
        let nonce_ext = Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: octets(octets(nonce.to_vec())?.to_der().map_err(|_| OcspError::Request)?)?,
        };
        let request = OcspRequest {
            tbs_request: TbsRequest {
                version: x509_ocsp::Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: cert_id.clone(),
                    single_request_extensions: None,
                }],
                request_extensions: Some(vec![nonce_ext]),
            },
            optional_signature: None,
        };
        let der = request.to_der().map_err(|_| OcspError::Request)?;
        Ok(Query {
            cert_id,
            nonce,
            echo_required: true,
            der,
        })
    }

    /// Accepts an answer without a nonce (a responder whose CA documents that it never
    /// sends one); a nonce that is present must still be ours.
    pub fn echo_optional(mut self) -> Query {
        self.echo_required = false;
        self
    }

    /// The DER `OCSPRequest` to POST as `application/ocsp-request`.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

fn octets(bytes: Vec<u8>) -> Result<OctetString, OcspError> {
    OctetString::new(bytes).map_err(|_| OcspError::Request)
}

/// The serial as the certificate encodes it (decoded, not rebuilt, so a 20-byte serial
/// with the high bit set keeps its leading zero).
fn serial_number(raw: &[u8]) -> Result<SerialNumber, OcspError> {
    let len = u8::try_from(raw.len())
        .ok()
        .filter(|l| *l < 0x80)
        .ok_or(OcspError::Request)?;
    let mut der = vec![0x02, len];
    der.extend_from_slice(raw);
    SerialNumber::from_der(&der).map_err(|_| OcspError::Request)
}

/// The http(s) OCSP responders named in the certificate's Authority Information Access.
pub fn responders(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for access in &aia.accessdescs {
                if access.access_method != OID_PKIX_ACCESS_DESCRIPTOR_OCSP {
                    continue;
                }
                if let GeneralName::URI(uri) = &access.access_location {
                    if uri.starts_with("http://") || uri.starts_with("https://") {
                        urls.push((*uri).to_owned());
                    }
                }
            }
        }
    }
    urls
}

/// A BasicOCSPResponse split into what the signature covers and the signature, keeping
/// the bytes as received (the signature is over them, not over a re-encoding).
#[derive(Sequence)]
struct SignedBasic<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AnyRef<'a>,
    signature: AnyRef<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    certs: Option<Vec<AnyRef<'a>>>,
}

/// Checks an OCSPResponse `der` answering `query` about a certificate of `issuer`, at
/// `now`, accepting `thisUpdate` up to `max_age` seconds old.
pub fn verify(der: &[u8], query: &Query, issuer: &TrustedCa, now: UnixTime, max_age: i64) -> Result<Answer, OcspError> {
    let response = OcspResponse::from_der(der).map_err(|_| OcspError::Malformed)?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(OcspError::ResponseStatus(response.response_status as u32));
    }
    let bytes = response.response_bytes.ok_or(OcspError::Malformed)?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(OcspError::Malformed);
    }
    let signed = SignedBasic::from_der(bytes.response.as_bytes()).map_err(|_| OcspError::Malformed)?;
    let tbs = signed.tbs_response_data.to_der().map_err(|_| OcspError::Malformed)?;
    let data = ResponseData::from_der(&tbs).map_err(|_| OcspError::Malformed)?;

    verify_signature(&signed, &tbs, issuer, now)?;
    if has_unknown_critical(data.response_extensions.as_deref()) {
        return Err(OcspError::CriticalExtension);
    }
    check_nonce(&data, &query.nonce, query.echo_required)?;
    let single = data
        .responses
        .iter()
        .find(|r| same_cert_id(&r.cert_id, &query.cert_id))
        .ok_or(OcspError::NoMatchingResponse)?;
    if has_unknown_critical(single.single_extensions.as_deref()) {
        return Err(OcspError::CriticalExtension);
    }
    let fresh_until = freshness(single, now, max_age)?;
    let status = match single.cert_status {
        CertStatus::Good(_) => CertificateStatus::Good,
        CertStatus::Revoked(_) => CertificateStatus::Revoked,
        CertStatus::Unknown(_) => return Err(OcspError::UnknownCertificate),
    };
    Ok(Answer { status, fresh_until })
}

/// `thisUpdate <= now + skew`, `now - thisUpdate <= max_age`, `now <= nextUpdate`;
/// returns the end of freshness.
fn freshness(single: &SingleResponse, now: UnixTime, max_age: i64) -> Result<UnixTime, OcspError> {
    let this_update = unix(&single.this_update);
    if this_update > now.saturating_add(CLOCK_SKEW) {
        return Err(OcspError::ThisUpdateAhead);
    }
    if now.saturating_sub(this_update) > max_age {
        return Err(OcspError::Stale);
    }
    let mut fresh_until = this_update.saturating_add(max_age);
    if let Some(next) = &single.next_update {
        let next = unix(next);
        if now > next {
            return Err(OcspError::NextUpdatePassed);
        }
        fresh_until = fresh_until.min(next);
    }
    Ok(fresh_until)
}

fn unix(time: &x509_ocsp::OcspGeneralizedTime) -> UnixTime {
    i64::try_from(time.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The hash algorithm, both hashes and the serial must be ours (parameters NULL or absent
/// are the same algorithm).
fn same_cert_id(theirs: &CertId, ours: &CertId) -> bool {
    theirs.hash_algorithm.oid == ours.hash_algorithm.oid
        && theirs.issuer_name_hash == ours.issuer_name_hash
        && theirs.issuer_key_hash == ours.issuer_key_hash
        && theirs.serial_number == ours.serial_number
}

/// Our nonce must be echoed, exactly: an OCTET STRING of our bytes, once. Without one
/// the answer could be a replay; only when `required` is false (a responder configured
/// as never sending nonces, RFC 5019 pre-signed answers) is its absence accepted.
fn check_nonce(data: &ResponseData, nonce: &[u8], required: bool) -> Result<(), OcspError> {
    let extensions = data.response_extensions.as_deref().unwrap_or_default();
    let mut echoed = extensions.iter().filter(|e| e.extn_id == ID_PKIX_OCSP_NONCE);
    match (echoed.next(), echoed.next()) {
        (None, _) if required => Err(OcspError::NonceMissing),
        (None, _) => Ok(()),
        (Some(ext), None) => match OctetString::from_der(ext.extn_value.as_bytes()) {
            Ok(value) if value.as_bytes() == nonce => Ok(()),
            _ => Err(OcspError::NonceMismatch),
        },
        (Some(_), Some(_)) => Err(OcspError::NonceMismatch),
    }
}

fn has_unknown_critical(extensions: Option<&[Extension]>) -> bool {
    extensions
        .unwrap_or_default()
        .iter()
        .any(|e| e.critical && e.extn_id != ID_PKIX_OCSP_NONCE)
}

/// The signature is the issuing CA's, or a delegated responder's whose certificate is in
/// the answer, issued and signed by the CA, valid at `now`, with EKU OCSPSigning.
fn verify_signature(signed: &SignedBasic<'_>, tbs: &[u8], issuer: &TrustedCa, now: UnixTime) -> Result<(), OcspError> {
    let ca = x509::parse(&issuer.der).map_err(|_| OcspError::Signature)?;
    let algorithm_der = signed.signature_algorithm.to_der().map_err(|_| OcspError::Malformed)?;
    let (_, algorithm) =
        x509_parser::x509::AlgorithmIdentifier::from_der(&algorithm_der).map_err(|_| OcspError::Malformed)?;
    let signature_der = signed.signature.to_der().map_err(|_| OcspError::Malformed)?;
    let (_, signature) =
        x509_parser::der_parser::asn1_rs::BitString::from_der(&signature_der).map_err(|_| OcspError::Malformed)?;
    let by = |key: &x509_parser::x509::SubjectPublicKeyInfo<'_>| {
        x509_parser::verify::verify_signature(key, &algorithm, &signature, tbs).is_ok()
    };
    if by(ca.public_key()) {
        return Ok(());
    }
    let certs = signed.certs.as_deref().unwrap_or_default();
    for any in certs.iter().take(MAX_RESPONDER_CERTS) {
        let Ok(der) = any.to_der() else { continue };
        let Ok(responder) = x509::parse(&der) else { continue };
        if authorised_responder(&responder, &ca, now) && by(responder.public_key()) {
            return Ok(());
        }
    }
    Err(OcspError::Signature)
}

fn authorised_responder(responder: &X509Certificate<'_>, ca: &X509Certificate<'_>, now: UnixTime) -> bool {
    let validity = responder.validity();
    responder.issuer().as_raw() == ca.subject().as_raw()
        && responder.verify_signature(Some(ca.public_key())).is_ok()
        && validity.not_before.timestamp() <= now
        && now <= validity.not_after.timestamp()
        && matches!(responder.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (TrustedCa, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "Unit CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (TrustedCa::new(cert.der().to_vec(), false).unwrap(), key)
    }

    #[test]
    fn r_auth_7_request_carries_sha1_cert_id_serial_and_nonce() {
        let (ca, _) = ca();
        // A 20-byte serial with the high bit set keeps its leading zero octet.
        let mut serial = vec![0u8];
        serial.extend([0xff; 20]);
        let query = Query::with_nonce(&serial, &ca, [7; NONCE_LEN]).unwrap();
        let request = OcspRequest::from_der(query.der()).unwrap();
        let single = &request.tbs_request.request_list[0].req_cert;
        assert_eq!(single.hash_algorithm.oid, ID_SHA1);
        assert_eq!(single.issuer_name_hash.as_bytes(), &Sha1::digest(&ca.subject)[..]);
        assert_eq!(single.serial_number.as_bytes(), &serial[..]);
        let nonce = request.tbs_request.nonce().unwrap();
        assert_eq!(nonce.0.as_bytes(), &[7; NONCE_LEN]);
        assert_ne!(
            Query::new(&serial, &ca).unwrap().nonce,
            Query::new(&serial, &ca).unwrap().nonce
        );
    }

    #[test]
    fn r_auth_7_garbage_and_error_statuses_are_errors_not_panics() {
        let (ca, _) = ca();
        let query = Query::new(&[1], &ca).unwrap();
        for body in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x0a\x01\x00",
            b"not der at all",
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(verify(body, &query, &ca, 0, 120).is_err());
        }
        // OCSPResponse { responseStatus tryLater }.
        assert_eq!(
            verify(b"\x30\x03\x0a\x01\x03", &query, &ca, 0, 120),
            Err(OcspError::ResponseStatus(3))
        );
        // successful without responseBytes.
        assert_eq!(
            verify(b"\x30\x03\x0a\x01\x00", &query, &ca, 0, 120),
            Err(OcspError::Malformed)
        );
    }

    #[test]
    fn r_auth_7_freshness_window() {
        let time = |t: u64| {
            x509_ocsp::OcspGeneralizedTime(
                der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(t)).unwrap(),
            )
        };
        let (ca, _) = ca();
        let query = Query::new(&[1], &ca).unwrap();
        let single = |this: u64, next: Option<u64>| SingleResponse {
            cert_id: query.cert_id.clone(),
            cert_status: CertStatus::good(),
            this_update: time(this),
            next_update: next.map(time),
            single_extensions: None,
        };
        let now = 1_000_000;
        assert_eq!(freshness(&single(1_000_000 - 120, None), now, 120), Ok(1_000_000));
        assert_eq!(
            freshness(&single(1_000_000 - 121, None), now, 120),
            Err(OcspError::Stale)
        );
        assert_eq!(freshness(&single(1_000_000 + 60, None), now, 120), Ok(1_000_180));
        assert_eq!(
            freshness(&single(1_000_000 + 61, None), now, 120),
            Err(OcspError::ThisUpdateAhead)
        );
        assert_eq!(
            freshness(&single(1_000_000 - 10, Some(1_000_050)), now, 120),
            Ok(1_000_050)
        );
        assert_eq!(
            freshness(&single(1_000_000 - 10, Some(999_999)), now, 120),
            Err(OcspError::NextUpdatePassed)
        );
    }
}
