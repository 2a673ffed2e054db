//! `[hsm]`: the PKCS#11 module and token holding eidgate's keys.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::durations::duration;

/// HSM through PKCS#11.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// Label of the token holding eidgate's keys.
    pub token_label: String,
    /// File with the user PIN (or env `EIDGATE_HSM_PIN`).
    pub pin_file: Option<PathBuf>,
    /// Create a SoftHSM token under the data dir when none exists (embedded default).
    pub auto_init: bool,
    /// PKCS#11 sessions kept open for signing (0 = one per core).
    pub sessions: usize,
    /// Signatures allowed in flight at once (0 = number of sessions); raise it for a
    /// network HSM whose latency is milliseconds.
    pub max_in_flight: usize,
    /// How often a running server re-reads the key inventory (picks up `hsm rotate`).
    #[serde(deserialize_with = "duration")]
    pub key_refresh: Duration,
    /// How long a rotated-out key stays published after its successor became active (at
    /// least the longest token lifetime).
    #[serde(deserialize_with = "duration")]
    pub retired_key_publish: Duration,
    /// How long `hsm rotate` publishes a new ID-token key before servers sign with it (at
    /// least the relying parties' JWKS cache time plus `key_refresh`); `hsm rotate --now`
    /// switches at once.
    #[serde(deserialize_with = "duration")]
    pub publish_ahead: Duration,
    /// PIN from the environment (`EIDGATE_HSM_PIN`); never from the file.
    #[serde(skip)]
    pub pin_env: Option<SecretString>,
}

impl Default for HsmConfig {
    fn default() -> Self {
        Self {
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            token_label: "eidgate".into(),
            pin_file: None,
            auto_init: true,
            sessions: 0,
            max_in_flight: 0,
            key_refresh: Duration::from_secs(30),
            retired_key_publish: Duration::from_secs(24 * 3600),
            publish_ahead: Duration::from_secs(3600),
            pin_env: None,
        }
    }
}

impl fmt::Debug for HsmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmConfig")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin_file", &self.pin_file)
            .field("auto_init", &self.auto_init)
            .field("sessions", &self.sessions)
            .field("max_in_flight", &self.max_in_flight)
            .field("key_refresh", &self.key_refresh)
            .field("retired_key_publish", &self.retired_key_publish)
            .field("publish_ahead", &self.publish_ahead)
            .field("pin_env", &self.pin_env.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_auth_6_issue_24_publish_ahead_defaults_to_an_hour_and_parses_like_other_durations() {
        assert_eq!(HsmConfig::default().publish_ahead, Duration::from_secs(3600));
        let config: HsmConfig = toml::from_str("publish_ahead = \"10m\"\nretired_key_publish = \"2h\"").unwrap();
        assert_eq!(config.publish_ahead, Duration::from_secs(600));
        assert_eq!(config.retired_key_publish, Duration::from_secs(7200));
        assert!(toml::from_str::<HsmConfig>("publish_ahead = \"soon\"").is_err());
    }
}
