//! Composition root: builds the ports from [`Config`] (store, ephemeral store, HSM),
//! the services' shared state [`App`], and serves the router on a given listener until
//! a shutdown future completes (mini-redis `run` shape; tests bind port 0).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::authn::password::PasswordVerifier;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, TlsMode};
use crate::domain::UnixTime;
use crate::ephemeral::memory::MemoryStore;
use crate::ephemeral::Ephemeral;
use crate::hsm::{HsmError, Pkcs11Hsm, Sealer, Signer};
use crate::store::cached::CachedStore;
use crate::store::{SqlStore, Store, StoreError};

/// The built-in first-party client behind `/account/login`.
pub const ACCOUNT_CLIENT: &str = "eidgate-account";

/// Registers (or updates) the built-in account client: redirect back to `/account`, no
/// consent, a secret nobody knows (its codes are never redeemed).
async fn ensure_account_client(store: &dyn Store, issuer: &str) -> Result<(), AppError> {
    let account = format!("{issuer}/account");
    let id: crate::domain::ids::ClientId = ACCOUNT_CLIENT
        .parse()
        .map_err(|_| AppError::Setup("account client id".into()))?;
    if let Some(existing) = store.client(&id).await? {
        if existing.redirect_uris == [account.clone()] {
            return Ok(());
        }
    }
    let client: crate::domain::client::Client = serde_json::from_value(serde_json::json!({
        "client_id": ACCOUNT_CLIENT,
        "client_name": "Your eID account",
        "secret_sha256": crate::domain::secret::fingerprint_hex(&crate::random::token()),
        "redirect_uris": [account],
        "post_logout_redirect_uris": [account],
        "allowed_claims": [],
        "token_endpoint_auth_method": "client_secret_basic",
        "consent": "never"
    }))
    .map_err(|e| AppError::Setup(format!("account client: {e}")))?;
    let audit = crate::audit::AuditEvent::new(
        crate::audit::catalogue::CLIENT_BUILTIN_REGISTERED,
        "system",
        format!("client:{ACCOUNT_CLIENT}"),
        serde_json::json!({"redirect_uri": client.redirect_uris}),
    );
    store.upsert_client(&client, audit).await?;
    Ok(())
}

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

/// Everything request handlers share.
pub struct App {
    /// Validated configuration.
    pub config: Config,
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
    /// Keys of the device cookies and WebAuthn decoys (issue 19).
    pub login_keys: crate::authn::device::LoginKeys,
    /// Pre-serialised discovery document.
    pub discovery: Arc<Vec<u8>>,
    /// External sink and alert rules (R-LOG-4).
    pub audit: Arc<crate::audit::sink::Shipper>,
    /// When a clock jump was detected and not yet resolved by a security officer (UTC
    /// seconds; 0 = none). While set, no token is issued (R-OPS-3, DESIGN "When a
    /// dependency fails": clock jump).
    pub clock_alarm: std::sync::atomic::AtomicI64,
    /// Availability per service and open incidents (R-OPS-1, R-OPS-2).
    pub availability: crate::monitor::availability::Availability,
    /// The smartcard means: issuing CA in the HSM, trusted CAs, revocation status (issue 4).
    pub smartcard: Arc<crate::smartcard::Smartcard>,
    /// The LoA caps from configuration, replaced when the configuration is reloaded
    /// (SIGHUP) without a restart (R-SUP-2); see [`App::loa_caps`].
    pub configured_caps: std::sync::RwLock<crate::domain::loa::LoaCaps>,
    /// Prometheus series (`/metrics`).
    pub metrics: Arc<crate::monitor::metrics::Metrics>,
    /// The per-IP request rate limit (R-SEC-5).
    pub rate_limiter: crate::web::limits::RateLimiter,
    /// The WebAuthn relying party (RP ID, origin, attestation allow list).
    pub webauthn: Arc<crate::authn::webauthn::Relying>,
}

impl App {
    /// The LoA caps in force for a new login (R-SUP-2): the configured caps (reloadable)
    /// lowered by a supervisor's withdrawal recorded in SQL (shared by every instance).
    /// If the withdrawal cannot be read, this fails closed.
    pub async fn loa_caps(&self) -> Result<crate::domain::loa::LoaCaps, crate::store::StoreError> {
        let configured = match self.configured_caps.read() {
            Ok(c) => *c,
            Err(poisoned) => *poisoned.into_inner(),
        };
        let withdrawn = self.withdrawn_caps().await?;
        Ok(configured.min(withdrawn))
    }

    /// The supervisor's withdrawal (`LoaCaps::OPEN` when none is recorded).
    pub async fn withdrawn_caps(&self) -> Result<crate::domain::loa::LoaCaps, crate::store::StoreError> {
        match self.store.provider_state(LOA_WITHDRAWAL).await? {
            None => Ok(crate::domain::loa::LoaCaps::OPEN),
            Some(text) => serde_json::from_str(&text)
                .map_err(|_| crate::store::StoreError::Corrupt("provider_state loa_caps".into())),
        }
    }

    /// Applies a reloaded configuration's `[loa] caps` (SIGHUP): new logins follow at
    /// once. Audited.
    pub async fn reload_loa_caps(&self, caps: crate::domain::loa::LoaCaps) -> Result<(), crate::store::StoreError> {
        let before = match self.configured_caps.write() {
            Ok(mut c) => std::mem::replace(&mut *c, caps),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), caps),
        };
        if before != caps {
            let event = crate::audit::AuditEvent::new(
                crate::audit::catalogue::CONFIG_LOA_CAPS_RELOADED,
                "system",
                "config",
                serde_json::json!({"before": before, "after": caps}),
            );
            self.store.append(event).await?;
        }
        Ok(())
    }

    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Raises the clock alarm: token issuance stops until [`App::resolve_clock_alarm`].
    pub fn raise_clock_alarm(&self) {
        let _ = self.clock_alarm.compare_exchange(
            0,
            self.now().max(1),
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// When the unresolved clock alarm was raised, if any.
    pub fn clock_alarm(&self) -> Option<i64> {
        let at = self.clock_alarm.load(std::sync::atomic::Ordering::SeqCst);
        (at != 0).then_some(at)
    }

    /// Clears the clock alarm (a security officer checked the time source).
    pub fn resolve_clock_alarm(&self) -> Option<i64> {
        let at = self.clock_alarm.swap(0, std::sync::atomic::Ordering::SeqCst);
        (at != 0).then_some(at)
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
        "memory" => Arc::new(MemoryStore::with_bounded_cap(config.ephemeral.memory_flows)),
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
    ensure_account_client(store.as_ref(), &config.issuer).await?;
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
    let mut cached = CachedStore::new(store, config.database.cache_ttl);
    if ephemeral.shared_between_instances() {
        cached = cached.with_change_markers(ephemeral.clone(), crate::oidc::grant::means_changed_key);
    }
    let cached = Arc::new(cached);
    cached.spawn_listener(ephemeral.subscribe());
    let passwords = PasswordVerifier::new(config.login.hash_workers, config.login.hash_deadline)?;
    let login_keys = crate::authn::device::load_or_create(cached.as_ref(), hsm.as_ref())
        .await
        .map_err(|e| AppError::Setup(format!("login secret: {e}")))?;
    let discovery = Arc::new(crate::oidc::discovery::document(&config));
    let audit = Arc::new(shipper(&config)?);
    let caps = config.loa.caps;
    let (rate_per_ip, rate_burst) = (config.limits.rate_per_ip, config.limits.rate_burst);
    let webauthn = Arc::new(crate::authn::webauthn::Relying::from_config(&config).map_err(AppError::Config)?);
    let app = Arc::new(App {
        config,
        clock: Arc::new(SystemClock::default()),
        store: cached,
        ephemeral,
        signer: Arc::new(crate::monitor::metrics::MeteredSigner::new(
            hsm.clone(),
            metrics.clone(),
        )),
        sealer: hsm.clone(),
        hsm: Some(hsm.clone()),
        passwords,
        login_keys,
        discovery,
        audit,
        clock_alarm: std::sync::atomic::AtomicI64::new(0),
        configured_caps: std::sync::RwLock::new(caps),
        availability: crate::monitor::availability::Availability::default(),
        rate_limiter: crate::web::limits::RateLimiter::new(rate_per_ip, rate_burst),
        metrics,
        smartcard,
        webauthn,
    });
    spawn_key_refresh(&app, hsm);
    spawn_expiry_sweep(&app);
    spawn_availability(&app);
    spawn_audit_jobs(&app);
    Ok(app)
}

/// PKCS#11 sessions the signing pool may hold (as `hsm::pool` sizes it).
fn hsm_sessions(config: &Config) -> usize {
    let sessions = match config.hsm.sessions {
        0 => Config::cores(),
        n => n,
    };
    sessions.max(config.hsm.max_in_flight)
}

/// `provider_state` name of the supervisor's LoA withdrawal (R-SUP-2).
pub const LOA_WITHDRAWAL: &str = "loa_caps";

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

/// One pass of the audit jobs: ship to the sink and run the alert rules, sign a checkpoint
/// when `min_new` records are unsigned, and destroy records past retention behind a signed
/// anchor (R-LOG-2, R-LOG-4, R-LOG-6). Public so tests drive it without waiting for the timer.
pub async fn audit_pass(app: &App, min_new: i64) -> Result<(), String> {
    let store = app.store.as_ref();
    app.audit.ship_pending(store).await.map_err(|e| e.to_string())?;
    if let Some(hsm) = &app.hsm {
        crate::audit::checkpoint::checkpoint_if_due(store, hsm.as_ref(), &app.audit, min_new, app.now())
            .await
            .map_err(|e| e.to_string())?;
        let retention = i64::try_from(app.config.audit.retention.as_secs()).unwrap_or(i64::MAX);
        crate::audit::retention::prune_expired(store, hsm.as_ref(), &app.audit, app.now(), retention)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes the daily report (and on Mondays the weekly one) for the last complete period
/// if not written yet (R-LOG-4). Public so tests drive it without waiting for the timer.
pub async fn reports_due(app: &App) -> Result<(), StoreError> {
    use crate::audit::report::{self, Period, DAY};
    let now = app.now();
    for period in [Period::Daily, Period::Weekly] {
        let (from, to) = period.last_complete(now);
        if period == Period::Weekly && (to / DAY + 3).rem_euclid(7) != 0 {
            continue;
        }
        let cursor = format!("report.{}", period_name(period));
        if app.store.audit_cursor(&cursor).await? >= to {
            continue;
        }
        let built = report::build(app.store.as_ref(), from, to).await?;
        let data = serde_json::to_value(&built).unwrap_or_default();
        app.store
            .append(crate::audit::AuditEvent::new(
                crate::audit::catalogue::AUDIT_REPORT,
                "system",
                format!("report:{}", period_name(period)),
                serde_json::json!({"period": period, "report": data}),
            ))
            .await?;
        app.store.set_audit_cursor(&cursor, to).await?;
    }
    Ok(())
}

fn period_name(p: crate::audit::report::Period) -> &'static str {
    match p {
        crate::audit::report::Period::Daily => "daily",
        crate::audit::report::Period::Weekly => "weekly",
    }
}

/// Largest disagreement between the wall clock and the monotonic clock over one tick
/// that is still taken as scheduling jitter (R-LOG-3).
const CLOCK_JUMP_TOLERANCE: i64 = 2;

/// Ships to the sink every `audit.sink_interval`, signs checkpoints every
/// `checkpoint_every` records or `checkpoint_interval`, writes due reports, and records a
/// wall-clock jump against the monotonic clock as `system.clock_jump` (R-LOG-3) and
/// raises the clock alarm that stops token issuance until it is resolved (R-OPS-3).
fn spawn_audit_jobs(app: &Arc<App>) {
    let weak = Arc::downgrade(app);
    let every = app.config.audit.sink_interval.max(Duration::from_millis(100));
    let checkpoint_every = i64::try_from(app.config.audit.checkpoint_every).unwrap_or(i64::MAX);
    let checkpoint_interval = app.config.audit.checkpoint_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut last_checkpoint = tokio::time::Instant::now();
        let mut mono = std::time::Instant::now();
        let mut wall = time::OffsetDateTime::now_utc().unix_timestamp();
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            let (mono_now, wall_now) = (
                std::time::Instant::now(),
                time::OffsetDateTime::now_utc().unix_timestamp(),
            );
            let mono_delta = i64::try_from(mono_now.duration_since(mono).as_secs()).unwrap_or(i64::MAX);
            let wall_delta = wall_now - wall;
            (mono, wall) = (mono_now, wall_now);
            if crate::audit::clock_jumped(wall_delta, mono_delta, CLOCK_JUMP_TOLERANCE) {
                let event = crate::audit::AuditEvent::new(
                    crate::audit::catalogue::SYSTEM_CLOCK_JUMP,
                    "system",
                    "clock",
                    serde_json::json!({"wall_delta_seconds": wall_delta, "monotonic_delta_seconds": mono_delta}),
                );
                app.raise_clock_alarm();
                if let Err(e) = app.store.append(event).await {
                    tracing::warn!(error = %e, "could not record a clock jump");
                }
            }
            let min_new = if last_checkpoint.elapsed() >= checkpoint_interval {
                last_checkpoint = tokio::time::Instant::now();
                1
            } else {
                checkpoint_every
            };
            if let Err(e) = audit_pass(&app, min_new).await {
                tracing::warn!(error = %e, "audit jobs failed");
            }
            if let Err(e) = reports_due(&app).await {
                tracing::warn!(error = %e, "audit report failed");
            }
        }
    });
}

/// Re-reads the HSM key inventory periodically so that `eidgate hsm rotate` reaches a
/// running server. Stops when the app is dropped.
fn spawn_key_refresh(app: &Arc<App>, hsm: Arc<Pkcs11Hsm>) {
    let every = app.config.hsm.key_refresh;
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if weak.upgrade().is_none() {
                return;
            }
            if let Err(e) = hsm.refresh_keys().await {
                tracing::warn!(error = %e, "HSM key inventory refresh failed");
            }
        }
    });
}

/// Probes readiness and evaluates availability every 30 s (R-OPS-1, R-OPS-2).
fn spawn_availability(app: &Arc<App>) {
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            let ready = app.store.ping().await.is_ok() && app.signer.check().await.is_ok();
            if !ready {
                app.availability.probe_failed(app.now());
            }
            match crate::monitor::availability::evaluate(&app).await {
                Ok(closed) if !closed.is_empty() => tracing::warn!(incidents = closed.len(), "incidents recorded"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "availability evaluation failed"),
            }
        }
    });
}

/// Expires means whose activation period or validity ended, once a minute.
fn spawn_expiry_sweep(app: &Arc<App>) {
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            match crate::lifecycle::service::expire_due(&app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "means expired"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
            if let Err(e) = crate::supervision::compromise::alert_overdue(&app).await {
                tracing::warn!(error = %e, "overdue-notice check failed");
            }
        }
    });
}

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    app: Arc<App>,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    crate::web::tls::install_provider();
    listener.set_nonblocking(true)?;
    let mode = app.config.tls.mode;
    let tls_files = match mode {
        TlsMode::Off => None,
        TlsMode::Dev => Some(crate::web::tls::dev_certificate(
            &app.config.data_dir,
            &app.config.issuer,
        )?),
        TlsMode::Files => match (&app.config.tls.cert, &app.config.tls.key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => None,
        },
    };
    let audit_start = crate::audit::AuditEvent::new(
        crate::audit::catalogue::SYSTEM_START,
        "system",
        "eidgate",
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "tls": format!("{mode:?}").to_lowercase(),
            // Logging parameters in force from this start on (R-LOG-1).
            "audit": {
                "checkpoint_every": app.config.audit.checkpoint_every,
                "checkpoint_interval_seconds": app.config.audit.checkpoint_interval.as_secs(),
                "retention_seconds": app.config.audit.retention.as_secs(),
                "webhook": app.config.audit.webhook_url.is_some(),
            },
        }),
    );
    app.store.append(audit_start).await?;
    // A checkpoint at start covers the start and whatever a crashed run left unsigned.
    if let Err(e) = audit_pass(&app, 1).await {
        tracing::warn!(error = %e, "could not sign the start checkpoint");
    }
    let router = crate::web::router::router(app.clone());
    let acceptor = match &tls_files {
        None => {
            tracing::warn!("TLS is off: serve only behind a TLS-terminating proxy");
            None
        }
        Some((cert, key)) => {
            Some(crate::web::server::tls_acceptor(cert, key).map_err(|e| AppError::Setup(e.to_string()))?)
        }
    };
    crate::web::server::run(
        router,
        listener,
        acceptor,
        (&app.config.limits).into(),
        app.metrics.clone(),
        shutdown,
    )
    .await
    .map_err(|e| AppError::Setup(e.to_string()))?;
    let audit_stop = crate::audit::AuditEvent::new(
        crate::audit::catalogue::SYSTEM_STOP,
        "system",
        "eidgate",
        serde_json::json!({}),
    );
    if let Err(e) = app.store.append(audit_stop).await {
        tracing::warn!(error = %e, "could not record system stop");
    }
    // The final checkpoint covers everything up to the stop (R-LOG-2).
    if let Err(e) = audit_pass(&app, 1).await {
        tracing::warn!(error = %e, "could not sign the shutdown checkpoint");
    }
    Ok(())
}
