//! Daily analysis and weekly summary of the log (R-LOG-4): logins by method and LoA,
//! failures by reason, lockouts, lifecycle changes and alerts over `[from, to)`.
//! `eidgate audit report --daily|--weekly` prints it; the server computes it after each
//! UTC day (and each week on Monday) and records it as `audit.report`, shipped to the sink.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{catalogue, AuditRecord};
use crate::domain::UnixTime;
use crate::store::{Store, StoreError};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Which period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// One UTC day.
    Daily,
    /// Seven UTC days.
    Weekly,
}

impl Period {
    /// Length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Period::Daily => DAY,
            Period::Weekly => 7 * DAY,
        }
    }

    /// The last complete period before `now`: `[from, to)` aligned on UTC midnight.
    pub fn last_complete(self, now: UnixTime) -> (UnixTime, UnixTime) {
        let to = now - now.rem_euclid(DAY);
        (to - self.seconds(), to)
    }
}

/// The counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Start (UTC seconds, inclusive).
    pub from: UnixTime,
    /// End (exclusive).
    pub to: UnixTime,
    /// Successful logins by `method/loa`.
    pub logins: BTreeMap<String, u64>,
    /// Failed logins by reason.
    pub failures: BTreeMap<String, u64>,
    /// Logins refused because the account or IP was throttled (lockouts).
    pub lockouts: u64,
    /// Lifecycle changes by event type (`means.*`, `activation.*`, `person.*`, `operator.*`).
    pub lifecycle: BTreeMap<String, u64>,
    /// Access denials.
    pub access_denied: u64,
    /// Alerts by rule.
    pub alerts: BTreeMap<String, u64>,
    /// Records in the period.
    pub records: u64,
}

impl Report {
    /// Adds one record (those outside `[from, to)` are ignored).
    pub fn add(&mut self, r: &AuditRecord) {
        if r.time < self.from || r.time >= self.to {
            return;
        }
        self.records += 1;
        let data = &r.event.data;
        let text = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or("unknown").to_owned();
        match r.event.event_type.as_str() {
            catalogue::LOGIN_SUCCESS => {
                *self
                    .logins
                    .entry(format!("{}/{}", text("method"), text("loa")))
                    .or_default() += 1;
            }
            catalogue::LOGIN_FAILURE => {
                let reason = text("reason");
                if reason == "locked" {
                    self.lockouts += 1;
                }
                *self.failures.entry(reason).or_default() += 1;
            }
            catalogue::OPERATOR_ACCESS_DENIED => self.access_denied += 1,
            catalogue::ALERT_RAISED => *self.alerts.entry(text("rule")).or_default() += 1,
            other
                if ["means.", "activation.", "person.", "operator."]
                    .iter()
                    .any(|p| other.starts_with(p)) =>
            {
                *self.lifecycle.entry(other.to_owned()).or_default() += 1;
            }
            _ => {}
        }
    }
}

/// Builds the report over `[from, to)` by reading the log.
pub async fn build(store: &dyn Store, from: UnixTime, to: UnixTime) -> Result<Report, StoreError> {
    let mut report = Report {
        from,
        to,
        ..Report::default()
    };
    let mut after = 0;
    loop {
        let page = store.audit_after(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            report.add(r);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;
    use serde_json::json;

    fn record(seq: i64, time: UnixTime, event_type: &str, data: serde_json::Value) -> AuditRecord {
        AuditRecord {
            seq,
            time,
            event: AuditEvent::new(event_type, "system", "x", data),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn r_log_4_the_daily_report_counts_logins_failures_lockouts_and_lifecycle() {
        let day = 20_000 * DAY;
        let (from, to) = Period::Daily.last_complete(day + 3600);
        assert_eq!((from, to), (day - DAY, day));
        let mut report = Report {
            from,
            to,
            ..Report::default()
        };
        let inside = from + 10;
        for r in [
            record(1, inside, "login.success", json!({"method": "password", "loa": "low"})),
            record(2, inside, "login.success", json!({"method": "password", "loa": "low"})),
            record(3, inside, "login.failure", json!({"reason": "invalid_credentials"})),
            record(4, inside, "login.failure", json!({"reason": "locked"})),
            record(5, inside, "means.suspended", json!({})),
            record(6, inside, "alert.raised", json!({"rule": "brute_force_account"})),
            record(7, inside, "operator.access_denied", json!({})),
            // Outside the period: ignored.
            record(8, to, "login.success", json!({"method": "password", "loa": "low"})),
        ] {
            report.add(&r);
        }
        assert_eq!(report.logins.get("password/low"), Some(&2));
        assert_eq!(report.failures.len(), 2);
        assert_eq!(report.lockouts, 1);
        assert_eq!(report.lifecycle.get("means.suspended"), Some(&1));
        assert_eq!(report.alerts.get("brute_force_account"), Some(&1));
        assert_eq!(report.access_denied, 1);
        assert_eq!(report.records, 7);
        assert_eq!(Period::Weekly.last_complete(day).0, day - 7 * DAY);
    }
}
