//! Planned downtime (R-OPS-1): a maintenance window is announced through the admin API at
//! least one working day ahead and shown on the login page from then on. Stored as a
//! provider flag; announcing again replaces it; an empty announcement withdraws it.

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime, Weekday};

use crate::audit::AuditEvent;
use crate::store::{Store, StoreError};

/// The provider flag holding the announcement (JSON).
pub const MAINTENANCE: &str = "maintenance";

/// A maintenance window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Start, UTC seconds.
    pub starts_at: i64,
    /// End, UTC seconds.
    pub ends_at: i64,
    /// What holders are told.
    pub message: String,
}

/// Why an announcement is refused.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The window starts before the end of the next working day, ends before it starts,
    /// or has no message.
    #[error("{0}")]
    Invalid(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The earliest start a window announced at `now` may have: the same time of day one
/// working day later (Saturday and Sunday are not working days).
pub fn earliest_start(now: i64) -> i64 {
    let Ok(mut t) = OffsetDateTime::from_unix_timestamp(now) else {
        return now + 86_400;
    };
    loop {
        t += Duration::days(1);
        if !matches!(t.weekday(), Weekday::Saturday | Weekday::Sunday) {
            return t.unix_timestamp();
        }
    }
}

/// Announces a window (replacing any earlier one); audited.
pub async fn announce(store: &dyn Store, actor: &str, window: &Window, now: i64) -> Result<(), MaintenanceError> {
    if window.message.trim().is_empty() || window.message.len() > 1000 {
        return Err(MaintenanceError::Invalid("the message must be 1 to 1000 characters"));
    }
    if window.ends_at <= window.starts_at {
        return Err(MaintenanceError::Invalid("the window must end after it starts"));
    }
    if window.starts_at < earliest_start(now) {
        return Err(MaintenanceError::Invalid(
            "planned downtime must be announced at least one working day ahead",
        ));
    }
    let text = serde_json::to_string(window).map_err(|_| MaintenanceError::Invalid("unencodable window"))?;
    let audit = AuditEvent::new(
        crate::audit::catalogue::MAINTENANCE_ANNOUNCED,
        actor,
        "provider",
        json!({"starts_at": window.starts_at, "ends_at": window.ends_at}),
    );
    store.set_provider_state(MAINTENANCE, &text, audit).await?;
    Ok(())
}

/// The announced window, if it has not ended at `now`.
pub async fn current(store: &dyn Store, now: i64) -> Result<Option<Window>, StoreError> {
    let Some(text) = store.provider_state(MAINTENANCE).await? else {
        return Ok(None);
    };
    let window: Option<Window> = serde_json::from_str(&text).ok();
    Ok(window.filter(|w| w.ends_at > now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_ops_1_one_working_day_skips_the_weekend() {
        // 2026-11-27 is a Friday: the next working day is Monday 2026-11-30.
        let friday = time::macros::datetime!(2026-11-27 10:00 UTC).unix_timestamp();
        let monday = time::macros::datetime!(2026-11-30 10:00 UTC).unix_timestamp();
        assert_eq!(earliest_start(friday), monday);
        let tuesday = time::macros::datetime!(2026-11-24 10:00 UTC).unix_timestamp();
        assert_eq!(earliest_start(tuesday), tuesday + 86_400);
    }
}
