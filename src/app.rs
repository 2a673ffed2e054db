//! Composition root: builds the ports from [`Config`] (store, ephemeral store, HSM) and
//! from them the narrow per-feature state each service takes ([`Oidc`], [`Authn`],
//! [`Lifecycle`], [`Cards`], [`Admin`], [`Jobs`]), held by [`App`]. Serving, and starting
//! the jobs, is `web::serve`. Nothing below the transport names this module.

use std::sync::Arc;

use crate::admin::state::Admin;
use crate::authn::password::PasswordVerifier;
use crate::authn::state::Authn;
use crate::clock::{Clock, ClockAlarm, SystemClock};
use crate::config::{Config, TlsMode};
use crate::domain::UnixTime;
use crate::ephemeral::memory::MemoryStore;
use crate::ephemeral::Ephemeral;
use crate::hsm::{HsmError, Pkcs11Hsm, Sealer, Signer};
use crate::jobs::Jobs;
use crate::lifecycle::state::Lifecycle;
use crate::oidc::state::Oidc;
use crate::smartcard::state::Cards;
use crate::store::cached::CachedStore;
use crate::store::{SqlStore, Store, StoreError};
use crate::supervision::caps::LoaPolicy;

/// Start-up and serving errors.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The HSM could not be opened.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The ephemeral store URL is not supported or not usable.
    #[error("ephemeral store: {0}")]
    Ephemeral(String),
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] crate::web::tls::TlsError),
    /// Socket I/O.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A start-up step failed.
    #[error("start-up: {0}")]
    Setup(String),
    /// Password hashing could not start.
    #[error("password hashing: {0}")]
    Hash(#[from] crate::authn::password::HashError),
    /// A setting is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// The composition root's state: the ports, and the narrow per-feature state built from
/// them that handlers get through axum's `FromRef` (see [`crate::web::state`]). Services
/// never see this type.
pub struct App {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<SystemClock>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// Short-lived store.
    pub ephemeral: Arc<dyn Ephemeral>,
    /// Keys in the HSM.
    pub signer: Arc<dyn Signer>,
    /// AES-GCM under the HSM `data-wrap` key for stored secrets (TOTP seeds).
    pub sealer: Arc<dyn Sealer>,
    /// The HSM itself (key inventory refresh, health).
    pub hsm: Option<Arc<Pkcs11Hsm>>,
    /// argon2id pool.
    pub passwords: PasswordVerifier,
    /// Pre-serialised discovery document.
    pub discovery: Arc<Vec<u8>>,
    /// External sink and alert rules (R-LOG-4).
    pub audit: Arc<crate::audit::sink::Shipper>,
    /// An unresolved clock jump stops token issuance (R-OPS-3).
    pub alarm: Arc<ClockAlarm>,
    /// Availability per service and open incidents (R-OPS-1, R-OPS-2).
    pub availability: Arc<crate::monitor::availability::Availability>,
    /// The smartcard means: issuing CA in the HSM, trusted CAs, revocation status (issue 4).
    pub smartcard: Arc<crate::smartcard::Smartcard>,
    /// The LoA caps in force (R-SUP-2), reloadable.
    pub caps: Arc<LoaPolicy>,
    /// Prometheus series (`/metrics`).
    pub metrics: Arc<crate::monitor::metrics::Metrics>,
    /// The protocol engine's state.
    pub oidc: Oidc,
    /// The login services' state.
    pub authn: Authn,
    /// The lifecycle (and helpdesk) services' state.
    pub lifecycle: Lifecycle,
    /// The smartcard services' state.
    pub cards: Cards,
    /// The operator services' state.
    pub admin: Admin,
    /// The periodic jobs' state.
    pub jobs: Arc<Jobs>,
}

impl App {
    /// The LoA caps in force for a new login (R-SUP-2); fails closed.
    pub async fn loa_caps(&self) -> Result<crate::domain::loa::LoaCaps, crate::store::StoreError> {
        self.caps.in_force().await
    }

    /// Applies a reloaded configuration's `[loa] caps` (SIGHUP). Audited.
    pub async fn reload_loa_caps(&self, caps: crate::domain::loa::LoaCaps) -> Result<(), crate::store::StoreError> {
        self.caps.reload(caps).await
    }

    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Raises the clock alarm: token issuance stops until it is resolved.
    pub fn raise_clock_alarm(&self) {
        self.alarm.raise(self.now());
    }

    /// When the unresolved clock alarm was raised, if any.
    pub fn clock_alarm(&self) -> Option<i64> {
        self.alarm.raised()
    }

    /// Now, UTC milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Opens the HSM off the runtime (creating the embedded SoftHSM token on first start);
/// hands the config back.
pub async fn open_hsm(config: Config) -> Result<(Config, Arc<Pkcs11Hsm>), AppError> {
    let (config, hsm) = tokio::task::spawn_blocking(move || {
        let hsm = Pkcs11Hsm::open(&config.hsm, &config.data_dir);
        (config, hsm)
    })
    .await
    .map_err(|e| HsmError::Unavailable(e.to_string()))?;
    Ok((config, Arc::new(hsm?)))
}

/// Opens the durable store (and migrates it).
pub async fn open_store(config: &Config) -> Result<Arc<SqlStore>, AppError> {
    if config.database.url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    Ok(Arc::new(
        SqlStore::connect(&config.database.url, config.database.max_connections).await?,
    ))
}

/// Opens the configured ephemeral store (also for CLI commands whose changes running
/// servers must hear of at once).
pub async fn open_ephemeral(config: &Config) -> Result<Arc<dyn Ephemeral>, AppError> {
    Ok(match config.ephemeral.url.as_str() {
        "memory" => Arc::new(MemoryStore::with_caps(
            config.ephemeral.memory_flows,
            config.ephemeral.memory_entries,
        )),
        url if url.starts_with("redis") => {
            let redis =
                crate::ephemeral::redis::RedisStore::open(url, &config.ephemeral.prefix, config.ephemeral.timeout)
                    .map_err(|e| AppError::Ephemeral(e.to_string()))?;
            redis
                .check_eviction_policy(config.ephemeral.allow_eviction)
                .await
                .map_err(|e| AppError::Ephemeral(e.to_string()))?;
            Arc::new(redis)
        }
        other => return Err(AppError::Ephemeral(other.to_owned())),
    })
}

/// Builds the application from a validated config.
pub async fn build(config: Config) -> Result<Arc<App>, AppError> {
    std::fs::create_dir_all(&config.data_dir)?;
    if config.tls.mode == TlsMode::Dev {
        // Made here, not in `serve`, so the certificate exists once `build` returns.
        crate::web::tls::dev_certificate(&config.data_dir, &config.issuer)?;
    }
    let store = open_store(&config).await?;
    let ephemeral = open_ephemeral(&config).await?;
    let (config, hsm) = open_hsm(config).await?;
    crate::admin::builtin::ensure_account_client(store.as_ref(), &config.issuer)
        .await
        .map_err(|e| AppError::Setup(format!("account client: {e}")))?;
    crate::admin::builtin::ensure_helpdesk_client(store.as_ref(), &config.issuer, config.operators.minimum_acr)
        .await
        .map_err(|e| AppError::Setup(format!("helpdesk console client: {e}")))?;
    // The issuing CA key `ca-1` is generated here on first start, so it is audited below.
    let (config, smartcard) = {
        let hsm = hsm.clone();
        tokio::task::spawn_blocking(move || {
            let smartcard = crate::smartcard::Smartcard::open(&config, &hsm);
            (config, smartcard)
        })
        .await
        .map_err(|e| AppError::Setup(format!("smartcard: {e}")))?
    };
    let smartcard = Arc::new(smartcard.map_err(|e| AppError::Setup(e.to_string()))?);
    for label in hsm.take_generated() {
        // Key management is audited (R-LOG-1); a key that cannot be recorded stops the start.
        let event = crate::audit::AuditEvent::new(
            crate::audit::catalogue::KEY_GENERATED,
            "system",
            format!("key:{label}"),
            serde_json::json!({"token": hsm.token_label()}),
        );
        crate::store::AuditRepo::append(store.as_ref(), event).await?;
    }
    let metrics = Arc::new(crate::monitor::metrics::Metrics::new());
    let probed = store.clone();
    metrics.set_pool_probe(Box::new(move || {
        let s = probed.pool_stats();
        crate::monitor::metrics::PoolUsage {
            open: s.open,
            idle: s.idle,
            max: s.max,
        }
    }));
    metrics.set_hsm_sessions(hsm_sessions(&config));
    let phases = metrics.phases();
    hsm.observe_calls(phases.hsm_observer());
    let mut cached = CachedStore::new(store, config.database.cache_ttl);
    if ephemeral.shared_between_instances() {
        cached = cached.with_change_markers(ephemeral.clone(), crate::oidc::grant::means_changed_key);
    }
    let cached = Arc::new(cached);
    cached.spawn_listener(ephemeral.subscribe());
    let passwords =
        PasswordVerifier::new(config.login.hash_workers, config.login.hash_deadline)?.with_phases(phases.clone());
    let login_keys = crate::authn::device::load_or_create(cached.as_ref(), hsm.as_ref())
        .await
        .map_err(|e| AppError::Setup(format!("login secret: {e}")))?;
    let discovery = Arc::new(crate::oidc::discovery::document(&config));
    let audit = Arc::new(shipper(&config)?);
    let caps = Arc::new(LoaPolicy::new(config.loa.caps, cached.clone()));
    let webauthn = Arc::new(crate::authn::webauthn::Relying::from_config(&config).map_err(AppError::Config)?);
    let config = Arc::new(config);
    let clock = Arc::new(SystemClock::default());
    // The active signing key is chosen by the server's clock (key rollover, issue 24).
    hsm.use_clock(clock.clone());
    let alarm = Arc::new(ClockAlarm::default());
    let availability = Arc::new(crate::monitor::availability::Availability::default());
    let store: Arc<dyn Store> = cached;
    let signer: Arc<dyn Signer> = Arc::new(crate::monitor::metrics::MeteredSigner::new(
        hsm.clone(),
        metrics.clone(),
    ));
    let sealer: Arc<dyn Sealer> = hsm.clone();
    let throttle = crate::authn::throttle::Throttle {
        config: config.clone(),
        clock: clock.clone(),
        store: store.clone(),
        ephemeral: ephemeral.clone(),
    };
    let oidc = Oidc {
        config: config.clone(),
        clock: clock.clone(),
        alarm: alarm.clone(),
        store: store.clone(),
        ephemeral: ephemeral.clone(),
        signer: signer.clone(),
        discovery: discovery.clone(),
        phases,
    };
    let lifecycle = Lifecycle {
        config: config.clone(),
        clock: clock.clone(),
        store: store.clone(),
        ephemeral: ephemeral.clone(),
        sealer: sealer.clone(),
        passwords: passwords.clone(),
        webauthn: webauthn.clone(),
        throttle: throttle.clone(),
        oidc: oidc.clone(),
    };
    let authn = Authn {
        config: config.clone(),
        clock: clock.clone(),
        store: store.clone(),
        ephemeral: ephemeral.clone(),
        sealer: sealer.clone(),
        passwords: passwords.clone(),
        login_keys,
        webauthn,
        metrics: metrics.clone(),
        throttle,
        caps: caps.clone(),
        oidc: oidc.clone(),
        lifecycle: lifecycle.clone(),
    };
    let cards = Cards {
        config: config.clone(),
        clock: clock.clone(),
        store: store.clone(),
        ephemeral: ephemeral.clone(),
        smartcard: smartcard.clone(),
        authn: authn.clone(),
        lifecycle: lifecycle.clone(),
    };
    let admin = Admin {
        config: config.clone(),
        clock: clock.clone(),
        store: store.clone(),
        caps: caps.clone(),
        oidc: oidc.clone(),
        lifecycle: lifecycle.clone(),
        alarm: alarm.clone(),
        availability: availability.clone(),
    };
    let jobs = Arc::new(Jobs {
        config: config.clone(),
        clock: clock.clone(),
        store: store.clone(),
        hsm: Some(hsm.clone()),
        signer: signer.clone(),
        audit: audit.clone(),
        alarm: alarm.clone(),
        availability: availability.clone(),
        lifecycle: lifecycle.clone(),
    });
    Ok(Arc::new(App {
        config,
        clock,
        store,
        ephemeral,
        signer,
        sealer,
        hsm: Some(hsm),
        passwords,
        discovery,
        audit,
        alarm,
        availability,
        smartcard,
        caps,
        metrics,
        oidc,
        authn,
        lifecycle,
        cards,
        admin,
        jobs,
    }))
}

/// PKCS#11 sessions the signing pool may hold (as `hsm::pool` sizes it).
fn hsm_sessions(config: &Config) -> usize {
    let sessions = match config.hsm.sessions {
        0 => Config::cores(),
        n => n,
    };
    sessions.max(config.hsm.max_in_flight)
}

/// The sink tailer from `[audit]` (R-LOG-4).
pub fn shipper(config: &Config) -> Result<crate::audit::sink::Shipper, AppError> {
    let a = &config.audit;
    let webhook = match a.webhook_url.as_deref() {
        Some(u) => Some(url::Url::parse(u).map_err(|e| AppError::Config(format!("audit.webhook_url: {e}")))?),
        None => None,
    };
    let rules = crate::audit::sink::AlertRules {
        window: i64::try_from(a.alert_window.as_secs()).unwrap_or(i64::MAX),
        account_failures: a.alert_account_failures.max(1),
        ip_accounts: a.alert_ip_accounts.max(1),
        helpdesk_failures: a.alert_helpdesk_failures.max(1),
    };
    let syslog = match a.syslog_udp.as_deref() {
        Some(addr) => Some(
            addr.parse::<std::net::SocketAddr>()
                .map_err(|e| AppError::Config(format!("audit.syslog_udp: {e}")))?,
        ),
        None => None,
    };
    Ok(crate::audit::sink::Shipper::new(a.sink_file(&config.data_dir), webhook, rules).with_syslog(syslog))
}
