//! Serving a built [`App`] on a listener until a shutdown future completes, then draining
//! in-flight requests (mini-redis `run` shape; tests bind port 0): the start and stop are
//! audited, and a checkpoint is signed at both (R-LOG-2).

use std::future::Future;
use std::sync::Arc;

use crate::app::{App, AppError};
use crate::config::TlsMode;

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    app: Arc<App>,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    super::tls::install_provider();
    listener.set_nonblocking(true)?;
    let mode = app.config.tls.mode;
    let tls_files = match mode {
        TlsMode::Off => None,
        TlsMode::Dev => Some(super::tls::dev_certificate(&app.config.data_dir, &app.config.issuer)?),
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
    // The periodic jobs run while the server does; they stop when its state is dropped.
    crate::jobs::spawn_all(&app.jobs);
    // A checkpoint at start covers the start and whatever a crashed run left unsigned.
    if let Err(e) = crate::jobs::audit_pass(&app.jobs, 1).await {
        tracing::warn!(error = %e, "could not sign the start checkpoint");
    }
    let router = super::router::router(app.clone());
    let acceptor = match &tls_files {
        None => {
            tracing::warn!("TLS is off: serve only behind a TLS-terminating proxy");
            None
        }
        Some((cert, key)) => Some(super::server::tls_acceptor(cert, key).map_err(|e| AppError::Setup(e.to_string()))?),
    };
    super::server::run(
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
    if let Err(e) = crate::jobs::audit_pass(&app.jobs, 1).await {
        tracing::warn!(error = %e, "could not sign the shutdown checkpoint");
    }
    Ok(())
}
