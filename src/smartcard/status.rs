//! Revocation status of card certificates issued by an **external** trusted CA (issue
//! 4; R-AUTH-7). There is no fail-open switch: whatever does not establish a status is an
//! unknown status, and an unknown status is refused (DESIGN "When a dependency fails").
//!
//! Order:
//! 1. **OCSP** when there is a responder: the certificate's AIA `id-ad-ocsp` URLs, else
//!    `[smartcard] ocsp_responder`. The answer is checked by `ocsp.rs` (signature by the CA
//!    or its delegated responder, our CertID and nonce, `thisUpdate` at most
//!    `ocsp_max_age` old; the nonce echoed unless the responder is listed in
//!    `ocsp_nonce_optional`). A verified answer is cached per (issuer, serial) while fresh.
//!    If no responder gives a verified answer, the status is unknown: we do **not** fall
//!    back to the CRL, since whoever can block the responder would otherwise trade the
//!    two-minute freshness of OCSP for the days a CRL may be old.
//! 2. **CRL** when there is no OCSP responder but a CRL distribution point: the CRL
//!    fetched over HTTP, verified against the issuing CA's key, current
//!    (`thisUpdate <= now <= nextUpdate`), and kept until its `nextUpdate`.
//! 3. Neither: unknown, refused.
//!
//! Every fetch has the `status_timeout` and a bounded body. Revoked is audited as
//! `certificate_revoked`, everything else as `revocation_status_unknown`.
//!
//! Certificates of our own CA do not come here: their status is the state of their means
//! in SQL, the same record our CRL is made from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::ocsp::{self, CertificateStatus, OcspError};
use super::x509::{self, TrustedCa};
use super::Rejection;
use crate::domain::UnixTime;

/// Largest CRL accepted (a bound on what a responder can make us hold).
const MAX_CRL_BYTES: usize = 4 * 1024 * 1024;
/// Largest OCSP response accepted.
const MAX_OCSP_BYTES: usize = 64 * 1024;
/// CRLs kept (distribution points), beyond which the cache is cleared.
const MAX_CACHED: usize = 256;
/// OCSP answers kept (issuer, serial), beyond which the cache is cleared.
const MAX_CACHED_OCSP: usize = 4096;

#[derive(Clone)]
struct CachedCrl {
    der: Arc<Vec<u8>>,
    next_update: UnixTime,
}

/// A verified OCSP answer, reusable until `fresh_until`.
#[derive(Clone, Copy)]
struct CachedOcsp {
    status: CertificateStatus,
    fresh_until: UnixTime,
}

/// Checks the status of external certificates, caching fresh OCSP answers and CRLs.
pub struct StatusChecker {
    client: Option<reqwest::Client>,
    /// Responder for certificates whose AIA names none.
    ocsp_responder: Option<String>,
    /// Oldest `thisUpdate` accepted, in seconds.
    ocsp_max_age: i64,
    /// Responders that may answer without echoing the nonce.
    ocsp_nonce_optional: Vec<String>,
    cache: Mutex<HashMap<String, CachedCrl>>,
    ocsp_cache: Mutex<HashMap<String, CachedOcsp>>,
}

impl std::fmt::Debug for StatusChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusChecker")
    }
}

impl StatusChecker {
    /// A checker with the configured timeout.
    pub fn new(config: &crate::config::SmartcardConfig) -> StatusChecker {
        let client = reqwest::Client::builder()
            .timeout(config.status_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(
                |e| tracing::error!(error = %e, "no HTTP client for revocation checks: every external card is refused"),
            )
            .ok();
        StatusChecker {
            client,
            ocsp_responder: config.ocsp_responder.clone(),
            ocsp_max_age: i64::try_from(config.ocsp_max_age.as_secs()).unwrap_or(i64::MAX),
            ocsp_nonce_optional: config.ocsp_nonce_optional.clone(),
            cache: Mutex::new(HashMap::new()),
            ocsp_cache: Mutex::new(HashMap::new()),
        }
    }

    /// The status of `leaf` (DER) issued by `issuer` at `now`: `Ok` only when a fresh,
    /// verified OCSP answer says good or, without an OCSP responder, a current, correctly
    /// signed CRL of the issuer does not list it.
    pub async fn check(&self, leaf: &[u8], issuer: &TrustedCa, now: UnixTime) -> Result<(), Rejection> {
        let (serial, mut responders, urls) = {
            let cert = x509::parse(leaf)?;
            (
                cert.raw_serial().to_vec(),
                ocsp::responders(&cert),
                distribution_points(&cert),
            )
        };
        if responders.is_empty() {
            responders.extend(self.ocsp_responder.clone());
        }
        if !responders.is_empty() {
            return self.check_ocsp(&responders, &serial, issuer, now).await;
        }
        if urls.is_empty() {
            return Err(Rejection::RevocationUnknown);
        }
        let mut last = Rejection::RevocationUnknown;
        for url in urls {
            match self.crl(&url, issuer, now).await {
                Ok(der) => return listed(&der, &serial),
                Err(e) => {
                    tracing::warn!(url = %url, reason = %e, "CRL unusable");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// The first verified answer of `responders`; none: unknown.
    async fn check_ocsp(
        &self,
        responders: &[String],
        serial: &[u8],
        issuer: &TrustedCa,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        let key = format!("{}:{}", x509::sha256_hex(&issuer.der), x509::serial_hex(serial));
        let cached = self
            .ocsp_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        let status = match cached.filter(|c| now <= c.fresh_until) {
            Some(c) => c.status,
            None => {
                let mut found = None;
                for url in responders {
                    match self.ask_ocsp(url, serial, issuer, now).await {
                        Ok(answer) => {
                            found = Some(answer);
                            break;
                        }
                        Err(e) => tracing::warn!(url = %url, reason = %e, "OCSP answer unusable"),
                    }
                }
                let answer = found.ok_or(Rejection::RevocationUnknown)?;
                let mut cache = self.ocsp_cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_CACHED_OCSP {
                    cache.clear();
                }
                cache.insert(
                    key,
                    CachedOcsp {
                        status: answer.status,
                        fresh_until: answer.fresh_until,
                    },
                );
                answer.status
            }
        };
        match status {
            CertificateStatus::Good => Ok(()),
            CertificateStatus::Revoked => Err(Rejection::CertificateRevoked),
        }
    }

    /// One OCSP exchange with `url`, checked.
    async fn ask_ocsp(
        &self,
        url: &str,
        serial: &[u8],
        issuer: &TrustedCa,
        now: UnixTime,
    ) -> Result<ocsp::Answer, OcspError> {
        let client = self.client.as_ref().ok_or(OcspError::Transport)?;
        let mut query = ocsp::Query::new(serial, issuer)?;
        if self.ocsp_nonce_optional.iter().any(|u| u == url) {
            query = query.echo_optional();
        }
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
            .header(reqwest::header::ACCEPT, "application/ocsp-response")
            .body(query.der().to_vec())
            .send()
            .await
            .map_err(|_| OcspError::Transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(OcspError::HttpStatus(response.status().as_u16()));
        }
        let body = read_bounded(response, MAX_OCSP_BYTES).await.map_err(|e| match e {
            BodyError::TooLarge => OcspError::TooLarge,
            BodyError::Transport => OcspError::Transport,
        })?;
        ocsp::verify(&body, &query, issuer, now, self.ocsp_max_age)
    }

    async fn crl(&self, url: &str, issuer: &TrustedCa, now: UnixTime) -> Result<Arc<Vec<u8>>, Rejection> {
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(url).cloned();
        if let Some(c) = cached.filter(|c| now <= c.next_update) {
            return Ok(c.der);
        }
        let client = self.client.as_ref().ok_or(Rejection::RevocationUnknown)?;
        let response = client.get(url).send().await.map_err(|_| Rejection::RevocationUnknown)?;
        if !response.status().is_success() {
            return Err(Rejection::RevocationUnknown);
        }
        let der = read_bounded(response, MAX_CRL_BYTES)
            .await
            .map_err(|_| Rejection::RevocationUnknown)?;
        let next_update = verify_crl(&der, issuer, now)?;
        let der = Arc::new(der);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(
            url.to_owned(),
            CachedCrl {
                der: der.clone(),
                next_update,
            },
        );
        Ok(der)
    }
}

/// Why a body was not read.
enum BodyError {
    TooLarge,
    Transport,
}

/// The body of `response`, refused as soon as it exceeds `max` bytes (announced or read),
/// so a responder cannot make us buffer more.
async fn read_bounded(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|l| l > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| BodyError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Checks a CRL: issued and signed by `issuer`, current at `now`; returns `nextUpdate`.
pub fn verify_crl(der: &[u8], issuer: &TrustedCa, now: UnixTime) -> Result<UnixTime, Rejection> {
    let crl = match CertificateRevocationList::from_der(der) {
        Ok(([], crl)) => crl,
        _ => return Err(Rejection::RevocationUnknown),
    };
    let ca = x509::parse(&issuer.der)?;
    if crl.issuer().as_raw() != ca.subject().as_raw() || crl.verify_signature(ca.public_key()).is_err() {
        return Err(Rejection::RevocationUnknown);
    }
    let next = crl.next_update().ok_or(Rejection::RevocationUnknown)?.timestamp();
    if crl.last_update().timestamp() > now || now > next {
        return Err(Rejection::RevocationUnknown);
    }
    Ok(next)
}

fn listed(der: &[u8], serial: &[u8]) -> Result<(), Rejection> {
    let crl = match CertificateRevocationList::from_der(der) {
        Ok((_, crl)) => crl,
        Err(_) => return Err(Rejection::RevocationUnknown),
    };
    let wanted = x509::serial_hex(serial);
    if crl
        .iter_revoked_certificates()
        .any(|r| x509::serial_hex(r.raw_serial()) == wanted)
    {
        Err(Rejection::CertificateRevoked)
    } else {
        Ok(())
    }
}

/// The http(s) URIs of the certificate's CRL distribution points.
fn distribution_points(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            if uri.starts_with("http://") || uri.starts_with("https://") {
                                urls.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
        }
    }
    urls
}
