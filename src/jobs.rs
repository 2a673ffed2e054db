//! The periodic jobs, started when the server starts serving and stopped when its state
//! is dropped: audit shipping, checkpoints, retention and reports (R-LOG-2, R-LOG-4,
//! R-LOG-6), the clock-jump watch (R-LOG-3, R-OPS-3), the HSM key inventory refresh,
//! availability (R-OPS-1, R-OPS-2), expiry of means and overdue compromise notices.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::sink::Shipper;
use crate::clock::{Clock, ClockAlarm, SystemClock};
use crate::config::Config;
use crate::domain::UnixTime;
use crate::hsm::{Pkcs11Hsm, Signer};
use crate::lifecycle::state::Lifecycle;
use crate::monitor::availability::Availability;
use crate::store::{Store, StoreError};

/// What the jobs need.
#[derive(Clone)]
pub struct Jobs {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<SystemClock>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// The HSM (checkpoints, prune anchors, key inventory); `None` without one.
    pub hsm: Option<Arc<Pkcs11Hsm>>,
    /// The signer as the token endpoint sees it (readiness probe).
    pub signer: Arc<dyn Signer>,
    /// External sink and alert rules.
    pub audit: Arc<Shipper>,
    /// Raised on a clock jump.
    pub alarm: Arc<ClockAlarm>,
    /// Availability per service.
    pub availability: Arc<Availability>,
    /// Expiry and compromise notices.
    pub lifecycle: Lifecycle,
}

impl Jobs {
    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

/// Starts every job; each stops when the last strong reference to `jobs` is dropped.
pub fn spawn_all(jobs: &Arc<Jobs>) {
    if let Some(hsm) = &jobs.hsm {
        spawn_key_refresh(jobs, hsm.clone());
    }
    spawn_expiry_sweep(jobs);
    spawn_availability(jobs);
    spawn_audit_jobs(jobs);
}

/// One pass of the audit jobs: ship to the sink and run the alert rules, sign a checkpoint
/// when `min_new` records are unsigned, and destroy records past retention behind a signed
/// anchor (R-LOG-2, R-LOG-4, R-LOG-6). Public so tests drive it without waiting for the timer.
pub async fn audit_pass(app: &Jobs, min_new: i64) -> Result<(), String> {
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
pub async fn reports_due(app: &Jobs) -> Result<(), StoreError> {
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
fn spawn_audit_jobs(app: &Arc<Jobs>) {
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
                app.alarm.raise(app.now());
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
fn spawn_key_refresh(app: &Arc<Jobs>, hsm: Arc<Pkcs11Hsm>) {
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
fn spawn_availability(app: &Arc<Jobs>) {
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
            match crate::monitor::availability::evaluate(
                &app.availability,
                app.store.as_ref(),
                &app.config.issuer,
                app.now(),
            )
            .await
            {
                Ok(closed) if !closed.is_empty() => tracing::warn!(incidents = closed.len(), "incidents recorded"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "availability evaluation failed"),
            }
        }
    });
}

/// Expires means whose activation period or validity ended, once a minute.
fn spawn_expiry_sweep(app: &Arc<Jobs>) {
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            match crate::lifecycle::service::expire_due(&app.lifecycle).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "means expired"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
            if let Err(e) = crate::supervision::compromise::alert_overdue(&app.lifecycle).await {
                tracing::warn!(error = %e, "overdue-notice check failed");
            }
        }
    });
}
