//! One typed configuration: a TOML file (`--config FILE` or `EIDGATE_CONFIG`) with
//! `EIDGATE_*` environment overrides, validated once at start. With no file at all the
//! embedded defaults run a complete server: data dir `./data`, SQLite, memory ephemeral
//! store, a SoftHSM token created on first start, TLS with a generated certificate.
//!
//! Secrets (HSM PIN, database URL with password) never print: `Debug` redacts them.
//!
//! One file per section: `[tls]` in `tls.rs`, `[database]` in `database.rs`, and so on;
//! `[delivery]` lives with its adapters in [`crate::delivery`].

mod audit;
mod database;
pub mod delivery;
mod durations;
mod ephemeral;
mod error;
mod hsm;
mod limits;
mod loa;
mod login;
mod means;
mod metrics;
pub mod network;
mod operators;
mod registry;
mod scale_out;
mod session;
mod smartcard;
pub mod terms;
mod tls;
mod tokens;
pub mod ui;
mod webauthn;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use audit::AuditConfig;
pub use database::{redact_url, DatabaseConfig};
pub(crate) use durations::duration;
pub use durations::parse_duration;
pub use ephemeral::EphemeralConfig;
pub use error::ConfigError;
pub use hsm::HsmConfig;
pub use limits::LimitsConfig;
pub use loa::{LoaCaps, LoaConfig};
pub use login::LoginConfig;
pub use means::MeansConfig;
pub use metrics::MetricsConfig;
pub use operators::OperatorsConfig;
pub use registry::RegistryConfig;
pub use session::SessionConfig;
pub use smartcard::{SmartcardConfig, TrustedCaFile};
pub use terms::TermsConfig;
pub use tls::{TlsConfig, TlsMode};
pub use tokens::TokenConfig;
pub use ui::UiConfig;
pub use webauthn::{AttestationTrustConfig, WebauthnConfig};

use scale_out::check_scale_out;

/// The source of every section's struct, for the compliance report's check that each key
/// it names is a configuration field.
#[cfg(test)]
pub(crate) const SOURCE: &str = concat!(
    include_str!("mod.rs"),
    include_str!("audit.rs"),
    include_str!("database.rs"),
    include_str!("delivery.rs"),
    include_str!("ephemeral.rs"),
    include_str!("hsm.rs"),
    include_str!("limits.rs"),
    include_str!("loa.rs"),
    include_str!("login.rs"),
    include_str!("means.rs"),
    include_str!("metrics.rs"),
    include_str!("operators.rs"),
    include_str!("registry.rs"),
    include_str!("session.rs"),
    include_str!("smartcard.rs"),
    include_str!("terms.rs"),
    include_str!("tls.rs"),
    include_str!("tokens.rs"),
    include_str!("ui.rs"),
    include_str!("webauthn.rs"),
);

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Public base URL, used in discovery and tokens.
    pub issuer: String,
    /// Socket address to listen on.
    pub listen: SocketAddr,
    /// Directory for SQLite, the SoftHSM token, the dev certificate and PIN files.
    pub data_dir: PathBuf,
    /// WebAuthn RP origin and Web eID origin (default: issuer).
    pub origin: Option<String>,
    /// The provider's own country (YY default for clients).
    pub country: String,
    /// TLS.
    pub tls: TlsConfig,
    /// Durable store.
    pub database: DatabaseConfig,
    /// Short-lived store.
    pub ephemeral: EphemeralConfig,
    /// HSM through PKCS#11.
    pub hsm: HsmConfig,
    /// Token lifetimes.
    pub tokens: TokenConfig,
    /// Login limits.
    pub login: LoginConfig,
    /// Transport limits (R-SEC-5).
    pub limits: LimitsConfig,
    /// Means lifecycle settings.
    pub means: MeansConfig,
    /// LoA caps per kind (R-SUP-2).
    pub loa: LoaConfig,
    /// Smartcard settings.
    pub smartcard: SmartcardConfig,
    /// Audit settings.
    pub audit: AuditConfig,
    /// SSO session bounds.
    pub session: SessionConfig,
    /// Published terms of use and security advice (R-REG-1).
    pub terms: TermsConfig,
    /// How many instances serve this deployment (declared): more than one needs a shared
    /// ephemeral store (Redis) and a shared database (PostgreSQL).
    pub instances: u32,
    /// The Prometheus `/metrics` endpoint and who may read it.
    pub metrics: MetricsConfig,
    /// FIDO2 / WebAuthn: RP ID, challenge lifetime, attestation trust per LoA.
    pub webauthn: WebauthnConfig,
    /// The authoritative person register renewals at high are checked against (R-RENEW-2).
    pub registry: RegistryConfig,
    /// `[delivery]`: how activation codes and revocation secrets reach holders.
    pub delivery: delivery::DeliveryConfig,
    /// `[operators]`: operator assurance and password rules (R-SEC-4).
    pub operators: OperatorsConfig,
    /// `[ui]`: the service name and default language of the pages.
    pub ui: UiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "https://localhost:8443".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("./data"),
            origin: None,
            country: "LT".into(),
            tls: TlsConfig::default(),
            database: DatabaseConfig::default(),
            ephemeral: EphemeralConfig::default(),
            hsm: HsmConfig::default(),
            tokens: TokenConfig::default(),
            login: LoginConfig::default(),
            limits: LimitsConfig::default(),
            means: MeansConfig::default(),
            loa: LoaConfig::default(),
            smartcard: SmartcardConfig::default(),
            audit: AuditConfig::default(),
            session: SessionConfig::default(),
            terms: TermsConfig::default(),
            metrics: MetricsConfig::default(),
            instances: 1,
            webauthn: WebauthnConfig::default(),
            registry: RegistryConfig::default(),
            delivery: Default::default(),
            operators: Default::default(),
            ui: UiConfig::default(),
        }
    }
}

impl Config {
    /// The issuer name an authenticator app shows next to a TOTP code: the issuer's host.
    pub fn totp_issuer(&self) -> String {
        url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "eidgate".to_owned())
    }

    /// Loads the file (if any), applies `EIDGATE_*` overrides and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Self::from_toml(&text)?
            }
            None => Self::default(),
        };
        config.apply_env(|k| std::env::var(k).ok());
        config.finish()?;
        Ok(config)
    }

    /// Parses TOML text (no env, no validation).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Applies the `EIDGATE_*` overrides through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(v) = get("EIDGATE_ISSUER") {
            self.issuer = v;
        }
        if let Some(v) = get("EIDGATE_LISTEN").and_then(|v| v.parse().ok()) {
            self.listen = v;
        }
        if let Some(v) = get("EIDGATE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("EIDGATE_DATABASE_URL") {
            self.database.url = v;
        }
        if let Some(v) = get("EIDGATE_EPHEMERAL_URL") {
            self.ephemeral.url = v;
        }
        if let Some(v) = get("EIDGATE_INSTANCES").and_then(|v| v.parse().ok()) {
            self.instances = v;
        }
        if let Some(v) = get("EIDGATE_HSM_MODULE") {
            self.hsm.module = PathBuf::from(v);
        }
        if let Some(v) = get("EIDGATE_HSM_TOKEN_LABEL") {
            self.hsm.token_label = v;
        }
        if let Some(v) = get("EIDGATE_HSM_PIN") {
            self.hsm.pin_env = Some(SecretString::from(v));
        }
        if let Some(v) = get("EIDGATE_METRICS_TOKEN") {
            self.metrics.token = Some(SecretString::from(v));
        }
        if let Some(v) = get("EIDGATE_TLS_MODE") {
            match v.as_str() {
                "dev" => self.tls.mode = TlsMode::Dev,
                "files" => self.tls.mode = TlsMode::Files,
                "off" => self.tls.mode = TlsMode::Off,
                _ => {}
            }
        }
    }

    /// Fills derived defaults and validates.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.issuer).map_err(|e| ConfigError::Invalid {
            key: "issuer",
            why: e.to_string(),
        })?;
        if issuer.query().is_some() || issuer.fragment().is_some() || !matches!(issuer.scheme(), "https" | "http") {
            return Err(ConfigError::Invalid {
                key: "issuer",
                why: "must be an http(s) URL without query or fragment".into(),
            });
        }
        self.issuer = self.issuer.trim_end_matches('/').to_owned();
        if self.database.url.is_empty() {
            self.database.url = format!("sqlite://{}/eidgate.db", self.data_dir.display());
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres")) {
            return Err(ConfigError::Invalid {
                key: "database.url",
                why: "sqlite:// or postgres:// expected".into(),
            });
        }
        check_scale_out(&self.ephemeral, &self.database, self.instances)?;
        if let Some(url) = &self.registry.url {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                || self.registry.timeout.is_zero()
            {
                return Err(ConfigError::Invalid {
                    key: "registry",
                    why: "url must be an http(s) URL and timeout positive".into(),
                });
            }
        }
        if self.tokens.refresh_max.is_zero() {
            return Err(ConfigError::Invalid {
                key: "tokens.refresh_max",
                why: "must be positive".into(),
            });
        }
        self.delivery.finish()?;
        self.operators.finish()?;
        if self.tokens.code_ttl > Duration::from_secs(60) || self.tokens.code_ttl.is_zero() {
            return Err(ConfigError::Invalid {
                key: "tokens.code_ttl",
                why: "between 1 s and 60 s".into(),
            });
        }
        if self.tokens.assertion_skew > Duration::from_secs(300) {
            return Err(ConfigError::Invalid {
                key: "tokens.assertion_skew",
                why: "at most 5 minutes".into(),
            });
        }
        if self.tls.mode == TlsMode::Files && (self.tls.cert.is_none() || self.tls.key.is_none()) {
            return Err(ConfigError::Invalid {
                key: "tls",
                why: "mode files needs cert and key".into(),
            });
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError::Invalid {
                key: "country",
                why: "two upper-case letters".into(),
            });
        }
        if self.hsm.pin_file.is_none() {
            self.hsm.pin_file = Some(self.data_dir.join("hsm-user.pin"));
        }
        if self.limits.body_bytes == 0 || self.limits.param_chars == 0 {
            return Err(ConfigError::Invalid {
                key: "limits",
                why: "limits must be positive".into(),
            });
        }
        self.smartcard.validate_status_checks()?;
        self.limits.validate()?;
        self.metrics.load_token()?;
        self.login.validate_locks()?;
        self.webauthn.validate()?;
        self.ui.validate()?;
        self.terms.validate()?;
        self.login.validate_backoff()?;
        let login = &self.login;
        if login.flows_per_address == 0
            || self.ephemeral.memory_flows == 0
            || self.ephemeral.memory_entries == 0
            || login.device_ttl.is_zero()
        {
            return Err(ConfigError::Invalid {
                key: "login.flows_per_address / ephemeral.memory_flows / ephemeral.memory_entries / login.device_ttl",
                why: "must be positive".into(),
            });
        }
        Ok(())
    }

    /// WebAuthn/Web eID origin.
    pub fn origin(&self) -> &str {
        self.origin.as_deref().unwrap_or(&self.issuer)
    }

    /// Whether cookies are `Secure` with `__Host-` names: the provider is served over
    /// https (its issuer says so). Over plain http (tests, local development) browsers
    /// would drop them, so the plain names are used there.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https:")
    }

    /// Number of CPU cores (for pool sizes).
    pub fn cores() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_derive_the_database() {
        let mut c = Config::default();
        c.finish().unwrap();
        assert_eq!(c.database.url, "sqlite://./data/eidgate.db");
        assert_eq!(c.origin(), "https://localhost:8443");
    }

    #[test]
    fn unknown_keys_and_long_codes_are_refused() {
        assert!(Config::from_toml("nonsense = 1").is_err());
        let mut c = Config::from_toml("[tokens]\ncode_ttl = \"5m\"").unwrap();
        assert!(c.finish().is_err());
    }

    #[test]
    fn r_sec_2_debug_output_redacts_secrets() {
        let mut c = Config::default();
        c.database.url = "postgres://eid:hunter2@db/eid".into();
        c.hsm.pin_env = Some(SecretString::from("123456".to_string()));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("123456"));
    }
}
