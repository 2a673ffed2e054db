//! `[webauthn]`: FIDO2 / WebAuthn RP ID, challenge lifetime and attestation trust per LoA.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;
use super::error::ConfigError;

/// FIDO2 / WebAuthn settings (DESIGN "FIDO2 login"). The origin is the top-level `origin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// The RP ID (a registrable domain of the origin); default: the origin's host.
    pub rp_id: Option<String>,
    /// How long a registration or login challenge lives (single use either way).
    #[serde(deserialize_with = "duration")]
    pub challenge_ttl: Duration,
    /// Trusted attestation, per level: an attestation verified to one of `ca_files` (or,
    /// when an entry lists only AAGUIDs, to any configured CA) whose AAGUID is in
    /// `aaguids` (when given) lets the means reach `loa`. Without one the means is capped
    /// at substantial.
    pub attestation: Vec<AttestationTrustConfig>,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        Self {
            rp_id: None,
            challenge_ttl: Duration::from_secs(300),
            attestation: Vec::new(),
        }
    }
}

/// One entry of the attestation allow list (`[[webauthn.attestation]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationTrustConfig {
    /// The level a means with such an attestation may reach (`high` or `substantial`).
    pub loa: crate::domain::loa::Loa,
    /// PEM files of trusted attestation root (or intermediate) CA certificates.
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// Certified authenticator models by AAGUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
    #[serde(default)]
    pub aaguids: Vec<String>,
}

impl WebauthnConfig {
    /// Challenge lifetime within 10 minutes; every attestation entry names CA files or
    /// AAGUIDs, and at least one names a CA.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.challenge_ttl.is_zero() || self.challenge_ttl > Duration::from_secs(600) {
            return Err(ConfigError::Invalid {
                key: "webauthn.challenge_ttl",
                why: "between 1 s and 10 min".into(),
            });
        }
        if self
            .attestation
            .iter()
            .any(|a| a.ca_files.is_empty() && a.aaguids.is_empty())
            || (!self.attestation.is_empty() && self.attestation.iter().all(|a| a.ca_files.is_empty()))
        {
            return Err(ConfigError::Invalid {
                key: "webauthn.attestation",
                why: "each entry needs ca_files or aaguids, and at least one entry a CA".into(),
            });
        }
        Ok(())
    }
}
