//! One typed configuration: a TOML file (`--config FILE` or `EIDGATE_CONFIG`) with
//! `EIDGATE_*` environment overrides, validated once at start. With no file at all the
//! embedded defaults run a complete server: data dir `./data`, SQLite, memory ephemeral
//! store, a SoftHSM token created on first start, TLS with a generated certificate.
//!
//! Secrets (HSM PIN, database URL with password) never print: `Debug` redacts them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// Configuration errors: the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// File could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// TOML does not parse or has unknown keys.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("invalid config value {key}: {why}")]
    Invalid {
        /// Key.
        key: &'static str,
        /// Why.
        why: String,
    },
}

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
    pub delivery: crate::delivery::DeliveryConfig,
    /// `[operators]`: operator assurance and password rules (R-SEC-4).
    pub operators: crate::admin::assurance::OperatorsConfig,
}

/// `[registry]`: the authoritative source of identity data (R-RENEW-2), reached by the
/// HTTP JSON adapter in `lifecycle::registry`. Without `url`, renewal at high is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Base URL; the adapter asks `GET {url}/persons/{country}/{code}`.
    pub url: Option<String>,
    /// How long one query may take.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `/metrics` (Prometheus/OpenMetrics text). Readable from a loopback address (when
/// `loopback`) or with `Authorization: Bearer <token>` (token from `EIDGATE_METRICS_TOKEN`
/// or `token_file`); anyone else gets 404, as if it did not exist.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Peers on a loopback address may read it without a token. Set `false` when a
    /// reverse proxy on the same host forwards public traffic.
    pub loopback: bool,
    /// File holding the bearer token (at least 32 characters).
    pub token_file: Option<PathBuf>,
    /// The token, from `EIDGATE_METRICS_TOKEN` or `token_file`.
    #[serde(skip)]
    pub token: Option<SecretString>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            loopback: true,
            token_file: None,
            token: None,
        }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("loopback", &self.loopback)
            .field("token_file", &self.token_file)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

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

/// The versions of the terms of use and the security advice in force; a holder accepts
/// exactly these at activation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TermsConfig {
    /// Terms of use version.
    pub terms_version: String,
    /// Security advice version.
    pub security_advice_version: String,
}

impl Default for TermsConfig {
    fn default() -> Self {
        Self {
            terms_version: "2026-11".into(),
            security_advice_version: "2026-11".into(),
        }
    }
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
        }
    }
}

/// TLS mode.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `dev`, `files` or `off`.
    pub mode: TlsMode,
    /// PEM certificate chain (mode `files`).
    pub cert: Option<PathBuf>,
    /// PEM private key (mode `files`).
    pub key: Option<PathBuf>,
}

/// How the listener does TLS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// A certificate generated on first start under the data dir.
    #[default]
    Dev,
    /// Certificate and key files.
    Files,
    /// Plain HTTP behind a TLS-terminating proxy (logs a warning).
    Off,
}

/// Durable store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://{data_dir}/eidgate.db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long a cached client registration or means status may be served without
    /// asking the database again (changes made through eidgate invalidate at once).
    #[serde(deserialize_with = "duration")]
    pub cache_ttl: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            cache_ttl: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

/// Removes the password of a URL for display.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable url)".into(),
    }
}

/// Short-lived store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EphemeralConfig {
    /// `memory` or `redis://...` (also `redis+unix://`).
    pub url: String,
    /// Prefix of every Redis key and of the event channel (several deployments may
    /// share one Redis).
    pub prefix: String,
    /// Deadline of one Redis command; past it the request fails closed (503).
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Start even though Redis' `maxmemory-policy` is not `noeviction` (or cannot be read).
    /// Off by default: under memory pressure Redis would evict security state.
    pub allow_eviction: bool,
    /// Login flows the in-memory store holds at once (all addresses together); beyond it
    /// `/authorize` answers 429. Nothing else is ever evicted to make room.
    pub memory_flows: usize,
}

impl Default for EphemeralConfig {
    fn default() -> Self {
        Self {
            url: "memory".into(),
            prefix: "eidgate:".into(),
            timeout: Duration::from_millis(500),
            allow_eviction: false,
            memory_flows: crate::ephemeral::memory::DEFAULT_BOUNDED_CAP,
        }
    }
}

impl fmt::Debug for EphemeralConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = if self.url == "memory" {
            self.url.clone()
        } else {
            redact_url(&self.url)
        };
        f.debug_struct("EphemeralConfig")
            .field("url", &url)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("allow_eviction", &self.allow_eviction)
            .field("memory_flows", &self.memory_flows)
            .finish()
    }
}

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
    /// How long a rotated-out key stays published (at least the longest token lifetime).
    #[serde(deserialize_with = "duration")]
    pub retired_key_publish: Duration,
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
            .field("pin_env", &self.pin_env.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Token lifetimes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Authorization code lifetime (at most 60 s).
    #[serde(deserialize_with = "duration")]
    pub code_ttl: Duration,
    /// Access token lifetime.
    #[serde(deserialize_with = "duration")]
    pub access_ttl: Duration,
    /// ID token lifetime.
    #[serde(deserialize_with = "duration")]
    pub id_token_ttl: Duration,
    /// Refresh token lifetime (each rotation starts a new one, within `refresh_max`).
    #[serde(deserialize_with = "duration")]
    pub refresh_ttl: Duration,
    /// Absolute lifetime of a refresh grant, counted from the authentication (the
    /// session maximum): rotation never extends it.
    #[serde(deserialize_with = "duration")]
    pub refresh_max: Duration,
    /// PAR `request_uri` lifetime.
    #[serde(deserialize_with = "duration")]
    pub par_ttl: Duration,
    /// Login flow lifetime.
    #[serde(deserialize_with = "duration")]
    pub flow_ttl: Duration,
    /// Clock skew allowed for client assertions (`private_key_jwt`): how far `iat` and
    /// `nbf` may lie in the future and `exp` in the past (at most 5 minutes).
    #[serde(deserialize_with = "duration")]
    pub assertion_skew: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(600),
            id_token_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(8 * 3600),
            refresh_max: Duration::from_secs(12 * 3600),
            par_ttl: Duration::from_secs(90),
            flow_ttl: Duration::from_secs(900),
            assertion_skew: Duration::from_secs(30),
        }
    }
}

/// Login limits (R-AUTH-4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Ignored since device trust (issue 19): the per-person back-off
    /// (`backoff_free`, `backoff_base`, `backoff_max`) replaced it. Kept so that existing
    /// configuration files still load.
    pub account_failures: u64,
    /// Attempts per IP per window before 429.
    pub ip_attempts: u64,
    /// The rate-limit window.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
    /// argon2id workers (0 = number of cores).
    pub hash_workers: usize,
    /// Queue deadline for an argon2id verification.
    #[serde(deserialize_with = "duration")]
    pub hash_deadline: Duration,
    /// Login attempts per window from all clients together before 429 (a flood guard).
    pub global_attempts: u64,
    /// Consecutive wrong TOTP codes that lock a means until helpdesk reactivation
    /// (R-AUTH-4, NIST 800-63B 5.2.2).
    pub totp_lock_after: u64,
    /// Consecutive wrong passwords from browsers without a device cookie after which such
    /// browsers may no longer try a password for that person, until a success from a
    /// known browser or a helpdesk reset (NIST 800-63B 5.2.2: at most 100). The means is
    /// never suspended for it.
    pub password_lock_after: u64,
    /// Failures of one factor tolerated before the back-off starts.
    pub backoff_free: u64,
    /// The first back-off; it doubles with every further failure.
    #[serde(deserialize_with = "duration")]
    pub backoff_base: Duration,
    /// The longest back-off.
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
    /// Distinct means one IP may fail on within the window before an alert is raised.
    pub ip_spread_alert: u64,
    /// Login flows one address (IPv6: its /64) may have open at once; more get 429.
    pub flows_per_address: u64,
    /// How long a browser's device cookie is trusted after its last successful login.
    #[serde(deserialize_with = "duration")]
    pub device_ttl: Duration,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            account_failures: 5,
            ip_attempts: 100,
            window: Duration::from_secs(300),
            hash_workers: 0,
            hash_deadline: Duration::from_secs(5),
            global_attempts: 20_000,
            totp_lock_after: 10,
            password_lock_after: 100,
            backoff_free: 3,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(900),
            ip_spread_alert: 5,
            flows_per_address: 50,
            device_ttl: Duration::from_secs(180 * 24 * 3600),
        }
    }
}

/// Transport limits (R-SEC-5).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Maximum request body in bytes.
    pub body_bytes: usize,
    /// Maximum length of one request parameter.
    pub param_chars: usize,
    /// Whole-request timeout.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Requests handled at once (excess waits, then 503).
    pub concurrency: usize,
    /// Largest request head (request line and headers together) in bytes; a larger one
    /// gets 431 (R-SEC-5). The HTTP parser's hard cap is twice this (at least 8 KiB).
    pub header_bytes: usize,
    /// Most header fields in one request (431 beyond).
    pub header_count: usize,
    /// A client must deliver a complete request head (and finish the TLS handshake)
    /// within this time, or the connection is closed (slowloris protection).
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Open connections at once from one IP address (more are closed at once).
    pub connections_per_ip: usize,
    /// Open connections at once in total.
    pub max_connections: usize,
    /// Requests per second one IP address may sustain (token bucket; 0 = no limit).
    pub rate_per_ip: u32,
    /// Requests one IP address may send in a burst above the sustained rate.
    pub rate_burst: u32,
    /// Networks of reverse proxies whose `X-Forwarded-For` names the client (CIDR, e.g.
    /// `["10.0.0.0/8"]`). Empty (the default): the TCP peer is the client and the
    /// header is ignored. Per-IP rate limits, login limits, audit records and the
    /// `/metrics` loopback check then use the forwarded address; connection limits stay
    /// on the TCP peer.
    pub trusted_proxies: Vec<crate::web::proxy::Network>,
    /// Look-ups of personal data (helpdesk and admin) one operator may make per minute
    /// (429 beyond; every look-up is audited, hit or miss).
    pub operator_lookups_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            param_chars: 2048,
            request_timeout: Duration::from_secs(30),
            concurrency: 1024,
            header_bytes: 16 * 1024,
            header_count: 100,
            header_read_timeout: Duration::from_secs(10),
            connections_per_ip: 256,
            max_connections: 10_000,
            rate_per_ip: 100,
            rate_burst: 1000,
            trusted_proxies: Vec::new(),
            operator_lookups_per_minute: 60,
        }
    }
}

/// Means lifecycle settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeansConfig {
    /// Activation code validity.
    #[serde(deserialize_with = "duration")]
    pub activation_code_ttl: Duration,
    /// Activation attempts.
    pub activation_max_attempts: u32,
    /// Validity of a new means.
    #[serde(deserialize_with = "duration")]
    pub validity: Duration,
}

impl Default for MeansConfig {
    fn default() -> Self {
        Self {
            activation_code_ttl: Duration::from_secs(72 * 3600),
            activation_max_attempts: 5,
            validity: Duration::from_secs(5 * 365 * 24 * 3600),
        }
    }
}

/// LoA caps per kind (R-SUP-2).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoaConfig {
    /// `{ smartcard = "high", fido = "high", totp = "substantial", password = "low" }`.
    pub caps: LoaCaps,
}

pub use crate::domain::loa::LoaCaps;

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

/// Audit settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// External sink (JSON lines) for failures and alerts; empty = `{data_dir}/audit-sink.jsonl`.
    pub sink_path: Option<PathBuf>,
    /// Sign a checkpoint every N records.
    pub checkpoint_every: u64,
    /// Retention period.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// Sign a checkpoint at least this often when records were appended (R-LOG-2).
    #[serde(deserialize_with = "duration")]
    pub checkpoint_interval: Duration,
    /// How often the server ships new records to the sink and runs the alert rules.
    #[serde(deserialize_with = "duration")]
    pub sink_interval: Duration,
    /// Alerts are POSTed here as JSON (http://; R-LOG-4). None: sink only.
    pub webhook_url: Option<String>,
    /// Also send every sink line to this syslog collector (`host:port`, RFC 5424 over UDP).
    pub syslog_udp: Option<String>,
    /// Sliding window of the alert rules.
    #[serde(deserialize_with = "duration")]
    pub alert_window: Duration,
    /// Failed logins on one account within the window that raise an alert.
    pub alert_account_failures: usize,
    /// Distinct accounts failing from one IP within the window that raise an alert.
    pub alert_ip_accounts: usize,
    /// Failed helpdesk verifications by one operator within the window that raise an alert.
    pub alert_helpdesk_failures: usize,
}

impl AuditConfig {
    /// The sink file: `sink_path`, else `{data_dir}/audit-sink.jsonl`.
    pub fn sink_file(&self, data_dir: &Path) -> PathBuf {
        self.sink_path
            .clone()
            .unwrap_or_else(|| data_dir.join("audit-sink.jsonl"))
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sink_path: None,
            checkpoint_every: 1000,
            retention: Duration::from_secs(10 * 365 * 24 * 3600),
            checkpoint_interval: Duration::from_secs(60),
            sink_interval: Duration::from_secs(2),
            webhook_url: None,
            syslog_udp: None,
            alert_window: Duration::from_secs(15 * 60),
            alert_account_failures: 5,
            alert_ip_accounts: 5,
            alert_helpdesk_failures: 3,
        }
    }
}

/// SSO session bounds (NIST 800-63B re-authentication).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Longest session at low.
    #[serde(deserialize_with = "duration")]
    pub max_age_low: Duration,
    /// Longest session at substantial.
    #[serde(deserialize_with = "duration")]
    pub max_age_substantial: Duration,
    /// Longest session at high.
    #[serde(deserialize_with = "duration")]
    pub max_age_high: Duration,
    /// Idle limit at low.
    #[serde(deserialize_with = "duration")]
    pub idle_low: Duration,
    /// Idle limit at substantial (NIST 800-63B AAL2: 30 minutes).
    #[serde(deserialize_with = "duration")]
    pub idle_substantial: Duration,
    /// Idle limit at high (NIST 800-63B AAL3: 15 minutes).
    #[serde(deserialize_with = "duration")]
    pub idle_high: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_age_low: Duration::from_secs(12 * 3600),
            max_age_substantial: Duration::from_secs(12 * 3600),
            max_age_high: Duration::from_secs(12 * 3600),
            idle_low: Duration::from_secs(3600),
            idle_substantial: Duration::from_secs(30 * 60),
            idle_high: Duration::from_secs(15 * 60),
        }
    }
}

/// Parses `"90s"`, `"5m"`, `"72h"`, `"30d"` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(u64),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).ok_or_else(|| serde::de::Error::custom(format!("bad duration {t:?}"))),
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

    /// Scale-out rules: the ephemeral store is `memory` or Redis; several instances share
    /// Redis (a memory store would split flows, codes, counters and status events per
    /// process) and a database server (not one SQLite file per instance).
    fn check_scale_out(&self) -> Result<(), ConfigError> {
        let url = self.ephemeral.url.as_str();
        let redis = url.starts_with("redis://") || url.starts_with("redis+unix://");
        if url != "memory" && !redis {
            return Err(ConfigError::Invalid {
                key: "ephemeral.url",
                why: "\"memory\", redis:// or redis+unix:// expected".into(),
            });
        }
        if self.ephemeral.timeout.is_zero() || self.ephemeral.timeout > Duration::from_secs(30) {
            return Err(ConfigError::Invalid {
                key: "ephemeral.timeout",
                why: "between 1 ms and 30 s".into(),
            });
        }
        if self.instances == 0 {
            return Err(ConfigError::Invalid {
                key: "instances",
                why: "at least 1".into(),
            });
        }
        if self.instances > 1 && !redis {
            return Err(ConfigError::Invalid {
                key: "ephemeral.url",
                why: format!(
                    "{} instances are declared: a shared Redis is required, \"memory\" is per process",
                    self.instances
                ),
            });
        }
        if self.instances > 1 && self.database.url.starts_with("sqlite:") {
            return Err(ConfigError::Invalid {
                key: "database.url",
                why: format!(
                    "{} instances are declared: a shared PostgreSQL is required",
                    self.instances
                ),
            });
        }
        Ok(())
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
        self.check_scale_out()?;
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
        self.validate_status_checks()?;
        self.finish_limits_and_metrics()?;
        // NIST 800-63B 5.2.2: at most 100 consecutive failed attempts on one account.
        let login = &self.login;
        if !(1..=100).contains(&login.totp_lock_after) || !(1..=100).contains(&login.password_lock_after) {
            return Err(ConfigError::Invalid {
                key: "login.totp_lock_after / login.password_lock_after",
                why: "between 1 and 100 (NIST 800-63B 5.2.2)".into(),
            });
        }
        if self.webauthn.challenge_ttl.is_zero() || self.webauthn.challenge_ttl > Duration::from_secs(600) {
            return Err(ConfigError::Invalid {
                key: "webauthn.challenge_ttl",
                why: "between 1 s and 10 min".into(),
            });
        }
        if self
            .webauthn
            .attestation
            .iter()
            .any(|a| a.ca_files.is_empty() && a.aaguids.is_empty())
            || (!self.webauthn.attestation.is_empty()
                && self.webauthn.attestation.iter().all(|a| a.ca_files.is_empty()))
        {
            return Err(ConfigError::Invalid {
                key: "webauthn.attestation",
                why: "each entry needs ca_files or aaguids, and at least one entry a CA".into(),
            });
        }
        if login.backoff_base.is_zero() || login.backoff_max < login.backoff_base {
            return Err(ConfigError::Invalid {
                key: "login.backoff_base / login.backoff_max",
                why: "a positive base no longer than the maximum".into(),
            });
        }
        if login.flows_per_address == 0 || self.ephemeral.memory_flows == 0 || login.device_ttl.is_zero() {
            return Err(ConfigError::Invalid {
                key: "login.flows_per_address / ephemeral.memory_flows / login.device_ttl",
                why: "must be positive".into(),
            });
        }
        Ok(())
    }

    /// Validates the revocation-status keys of `[smartcard]` (issue 4): an http(s)
    /// responder URL, a positive OCSP age of at most a day, a positive timeout.
    fn validate_status_checks(&self) -> Result<(), ConfigError> {
        let sc = &self.smartcard;
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

    /// Validates `[limits]` beyond positivity and loads the metrics token file.
    fn finish_limits_and_metrics(&mut self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.header_bytes < 1024 || l.header_count == 0 || l.connections_per_ip == 0 || l.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "limits",
                why: "header_bytes at least 1024; header_count, connections_per_ip, max_connections positive".into(),
            });
        }
        if l.header_read_timeout.is_zero() || l.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "limits.header_read_timeout / limits.request_timeout",
                why: "must be positive".into(),
            });
        }
        if self.metrics.token.is_none() {
            if let Some(path) = &self.metrics.token_file {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                self.metrics.token = Some(SecretString::from(text.trim().to_owned()));
            }
        }
        use secrecy::ExposeSecret as _;
        if self
            .metrics
            .token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < 32)
        {
            return Err(ConfigError::Invalid {
                key: "metrics.token_file / EIDGATE_METRICS_TOKEN",
                why: "the metrics token must have at least 32 characters".into(),
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
    use crate::domain::loa::Loa;
    use crate::domain::means::MeansKind;

    #[test]
    fn scale_out_refuses_memory_or_sqlite_with_several_instances() {
        let mut c = Config::from_toml("instances = 2").unwrap();
        let e = c.finish().unwrap_err().to_string();
        assert!(e.contains("ephemeral.url") && e.contains("Redis"), "{e}");
        let mut c = Config::from_toml("instances = 2\n[ephemeral]\nurl = \"redis://127.0.0.1:6379\"").unwrap();
        assert!(c.finish().unwrap_err().to_string().contains("database.url"));
        let mut c = Config::from_toml(
            "instances = 3\n[database]\nurl = \"postgres://db/eid\"\n[ephemeral]\nurl = \"redis://127.0.0.1:6379\"\ntimeout = \"250ms\"",
        )
        .unwrap();
        c.finish().unwrap();
        assert_eq!(c.ephemeral.timeout, Duration::from_millis(250));
        let mut c = Config::from_toml("[ephemeral]\nurl = \"memcached://x\"").unwrap();
        assert!(c.finish().is_err());
        let mut c = Config::default();
        c.apply_env(|k| (k == "EIDGATE_INSTANCES").then(|| "2".to_owned()));
        assert!(c.finish().is_err(), "memory with two instances from the environment");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("72h"), Some(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1y"), None);
    }

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
    fn r_auth_4_lock_limits_stay_within_nist_and_parse_from_toml() {
        let mut c = Config::from_toml("[login]\ntotp_lock_after = 5\nbackoff_max = \"1m\"").unwrap();
        c.finish().unwrap();
        assert_eq!(c.login.totp_lock_after, 5);
        assert_eq!(c.login.password_lock_after, 100);
        assert_eq!(c.login.backoff_max, Duration::from_secs(60));
        for bad in [
            "[login]\ntotp_lock_after = 0",
            "[login]\npassword_lock_after = 101",
            "[login]\nbackoff_base = \"0s\"",
            "[login]\nbackoff_base = \"2m\"\nbackoff_max = \"1m\"",
        ] {
            let mut c = Config::from_toml(bad).unwrap();
            assert!(c.finish().is_err(), "{bad}");
        }
    }

    #[test]
    fn r_sup_2_caps_never_exceed_the_kind_ceiling() {
        let caps: LoaCaps = toml::from_str("password = \"high\"\ntotp = \"low\"").unwrap();
        assert_eq!(caps.cap(MeansKind::Password), Loa::Low);
        assert_eq!(caps.cap(MeansKind::Totp), Loa::Low);
        assert_eq!(caps.cap(MeansKind::Smartcard), Loa::High);
    }

    #[test]
    fn r_sec_5_transport_limits_parse_and_are_validated() {
        let mut c = Config::from_toml(
            "[limits]\nheader_read_timeout = \"300ms\"\nrate_per_ip = 0\nconnections_per_ip = 4\n[metrics]\nloopback = false",
        )
        .unwrap();
        c.finish().unwrap();
        assert_eq!(c.limits.header_read_timeout, Duration::from_millis(300));
        assert_eq!((c.limits.rate_per_ip, c.limits.connections_per_ip), (0, 4));
        assert!(!c.metrics.loopback);
        for bad in [
            "[limits]\nheader_bytes = 10",
            "[limits]\nconnections_per_ip = 0",
            "[limits]\nheader_read_timeout = \"0s\"",
        ] {
            let mut c = Config::from_toml(bad).unwrap();
            assert!(c.finish().is_err(), "{bad}");
        }
        let mut c = Config::default();
        c.apply_env(|k| (k == "EIDGATE_METRICS_TOKEN").then(|| "short".to_owned()));
        assert!(c.finish().is_err(), "a short metrics token is refused");
        assert!(!format!("{:?}", c.metrics).contains("short"));
    }

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
