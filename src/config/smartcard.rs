//! `[smartcard]`: trusted CAs, challenge and certificate lifetimes, revocation status checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;
use super::error::ConfigError;

/// Smartcard settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartcardConfig {
    /// Extra trusted CAs beside our own issuing CA: PEM files; self-signed certificates
    /// are trust anchors, the others intermediates that must chain to one. An entry is a
    /// path, or `{ file = "…", policies = ["1.2.3…"] }`: then a card certificate issued
    /// directly by a CA of that file must carry certificate policies, all of them in
    /// `policies` (refused as `certificate_policy` otherwise).
    pub trusted_ca_files: Vec<TrustedCaFile>,
    /// Challenge lifetime.
    #[serde(deserialize_with = "duration")]
    pub nonce_ttl: Duration,
    /// Validity of a certificate our CA issues to a card.
    #[serde(deserialize_with = "duration")]
    pub certificate_validity: Duration,
    /// How long a CRL of our CA is valid (`nextUpdate - thisUpdate`).
    #[serde(deserialize_with = "duration")]
    pub crl_validity: Duration,
    /// OCSP responder for external CAs whose certificates name none (AIA).
    pub ocsp_responder: Option<String>,
    /// Oldest OCSP response accepted (`thisUpdate` age).
    #[serde(deserialize_with = "duration")]
    pub ocsp_max_age: Duration,
    /// Timeout of one OCSP or CRL fetch; a timeout is an unknown status (refused).
    #[serde(deserialize_with = "duration")]
    pub status_timeout: Duration,
    /// OCSP responder URLs (exact) that may answer without echoing the request's nonce:
    /// only those whose CA documents that it never sends one (RFC 5019 pre-signed
    /// answers). Every other responder must echo it (refused otherwise); a nonce that
    /// is present must match everywhere.
    pub ocsp_nonce_optional: Vec<String>,
}

/// One `[smartcard] trusted_ca_files` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TrustedCaFile {
    /// A PEM file, without a certificate policy filter.
    Path(PathBuf),
    /// A PEM file and the certificate policy OIDs its CAs' card certificates must keep to.
    Entry {
        /// The PEM file.
        file: PathBuf,
        /// Allowed certificate policy OIDs (dotted).
        policies: Vec<String>,
    },
}

impl TrustedCaFile {
    /// The PEM file.
    pub fn file(&self) -> &Path {
        match self {
            TrustedCaFile::Path(p) | TrustedCaFile::Entry { file: p, .. } => p,
        }
    }

    /// The policy filter, if any.
    pub fn policies(&self) -> Option<&[String]> {
        match self {
            TrustedCaFile::Path(_) => None,
            TrustedCaFile::Entry { policies, .. } => Some(policies),
        }
    }
}

impl From<PathBuf> for TrustedCaFile {
    fn from(p: PathBuf) -> Self {
        TrustedCaFile::Path(p)
    }
}

impl Default for SmartcardConfig {
    fn default() -> Self {
        Self {
            trusted_ca_files: Vec::new(),
            nonce_ttl: Duration::from_secs(300),
            certificate_validity: Duration::from_secs(5 * 365 * 86_400),
            crl_validity: Duration::from_secs(86_400),
            ocsp_responder: None,
            ocsp_max_age: Duration::from_secs(120),
            status_timeout: Duration::from_secs(5),
            ocsp_nonce_optional: Vec::new(),
        }
    }
}

impl SmartcardConfig {
    /// Validates the revocation-status keys of `[smartcard]` (issue 4): an http(s)
    /// responder URL, a positive OCSP age of at most a day, a positive timeout.
    pub(super) fn validate_status_checks(&self) -> Result<(), ConfigError> {
        let sc = self;
        if let Some(responder) = &sc.ocsp_responder {
            let ok = url::Url::parse(responder).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "smartcard.ocsp_responder",
                    why: "an http or https URL".into(),
                });
            }
        }
        if sc.ocsp_max_age.is_zero() || sc.ocsp_max_age > Duration::from_secs(86_400) {
            return Err(ConfigError::Invalid {
                key: "smartcard.ocsp_max_age",
                why: "between 1 s and 1 day".into(),
            });
        }
        if sc.status_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "smartcard.status_timeout",
                why: "must be positive".into(),
            });
        }
        let dotted = |oid: &str| {
            let arcs: Vec<&str> = oid.split('.').collect();
            arcs.len() >= 2
                && arcs
                    .iter()
                    .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
        };
        if sc
            .trusted_ca_files
            .iter()
            .filter_map(TrustedCaFile::policies)
            .any(|p| p.is_empty() || !p.iter().all(|oid| dotted(oid)))
        {
            return Err(ConfigError::Invalid {
                key: "smartcard.trusted_ca_files",
                why: "policies must be a non-empty list of dotted OIDs".into(),
            });
        }
        if sc.ocsp_nonce_optional.iter().any(|u| url::Url::parse(u).is_err()) {
            return Err(ConfigError::Invalid {
                key: "smartcard.ocsp_nonce_optional",
                why: "responder URLs".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn r_auth_7_status_check_keys_are_validated() {
        let mut c =
            Config::from_toml("[smartcard]\nocsp_responder = \"http://ocsp.example/\"\nocsp_max_age = \"5m\"").unwrap();
        c.finish().unwrap();
        assert_eq!(c.smartcard.ocsp_max_age, Duration::from_secs(300));
        assert_eq!(Config::default().smartcard.ocsp_max_age, Duration::from_secs(120));
        for bad in [
            "[smartcard]\nocsp_responder = \"ldap://ocsp.example\"",
            "[smartcard]\nocsp_responder = \"not a url\"",
            "[smartcard]\nocsp_max_age = \"0s\"",
            "[smartcard]\nocsp_max_age = \"2d\"",
            "[smartcard]\nstatus_timeout = \"0s\"",
        ] {
            let mut c = Config::from_toml(bad).unwrap();
            assert!(c.finish().is_err(), "{bad}");
        }
    }
}
