//! Revocation status of card certificates issued by an **external** trusted CA (issue
//! 4): the CRL named in the certificate's CRL distribution points, fetched over HTTP,
//! verified against the issuing CA's key, current (`thisUpdate <= now <= nextUpdate`),
//! and kept until its `nextUpdate`. There is no fail-open switch: a certificate without
//! a distribution point, an unreachable or stale CRL, a bad signature or a timeout is an
//! unknown status, and an unknown status is refused (DESIGN "When a dependency fails").
//!
//! Certificates of our own CA do not come here: their status is the state of their means
//! in SQL, the same record our CRL is made from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::x509::{self, TrustedCa};
use super::Rejection;
use crate::domain::UnixTime;

/// Largest CRL accepted (a bound on what a responder can make us hold).
const MAX_CRL_BYTES: usize = 4 * 1024 * 1024;
/// CRLs kept (distribution points), beyond which the cache is cleared.
const MAX_CACHED: usize = 256;

#[derive(Clone)]
struct CachedCrl {
    der: Arc<Vec<u8>>,
    next_update: UnixTime,
}

/// Checks the status of external certificates, caching fresh CRLs.
pub struct StatusChecker {
    client: Option<reqwest::Client>,
    cache: Mutex<HashMap<String, CachedCrl>>,
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
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The status of `leaf` (DER) issued by `issuer` at `now`: `Ok` only when a current,
    /// correctly signed CRL of the issuer does not list it.
    pub async fn check(&self, leaf: &[u8], issuer: &TrustedCa, now: UnixTime) -> Result<(), Rejection> {
        let (serial, urls) = {
            let cert = x509::parse(leaf)?;
            (cert.raw_serial().to_vec(), distribution_points(&cert))
        };
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
        let body = response.bytes().await.map_err(|_| Rejection::RevocationUnknown)?;
        if body.len() > MAX_CRL_BYTES {
            return Err(Rejection::RevocationUnknown);
        }
        let der = body.to_vec();
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
