//! Availability per service from the server's own traffic and health probes (R-OPS-1,
//! R-OPS-2). Every answer of the login, token and helpdesk endpoints is counted per
//! minute; a minute in which at least half of a service's answers were server errors, or
//! in which the readiness probe failed, is an unavailable minute for that service.
//! Consecutive unavailable minutes form an incident; when the service recovers, the
//! incident is stored with its duration and the share of requests that failed (the share
//! of users affected, as far as the server can see), classified against the
//! significant-incident thresholds, and — when significant — given its CERT draft.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::json;

use crate::audit::AuditEvent;
use crate::store::{IncidentRecord, StoreError};

/// The services whose availability is tracked.
pub const SERVICES: [&str; 3] = ["helpdesk", "login", "token"];

/// How many minutes of history are kept (two days).
const KEEP_MINUTES: i64 = 2 * 24 * 60;

/// The service a request path belongs to, if tracked.
pub fn service_of(path: &str) -> Option<&'static str> {
    if path == "/token" {
        Some("token")
    } else if path == "/authorize" || path == "/login" || path.starts_with("/authn/") {
        Some("login")
    } else if path.starts_with("/helpdesk/") {
        Some("helpdesk")
    } else {
        None
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
struct Minute {
    total: u64,
    failed: u64,
    probe_down: bool,
}

impl Minute {
    fn unavailable(&self) -> bool {
        self.probe_down || (self.total > 0 && self.failed * 2 >= self.total)
    }
}

#[derive(Clone, Copy, Debug)]
struct Open {
    start_minute: i64,
    total: u64,
    failed: u64,
}

/// Per-service minute counters and open incidents.
#[derive(Default)]
pub struct Availability {
    minutes: Mutex<HashMap<&'static str, BTreeMap<i64, Minute>>>,
    open: Mutex<HashMap<&'static str, Open>>,
    checked_up_to: Mutex<Option<i64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A service's availability over one UTC day.
#[derive(Debug, PartialEq, Serialize)]
pub struct DayAvailability {
    /// Service.
    pub service: &'static str,
    /// Minutes of the day observed so far.
    pub minutes_observed: i64,
    /// Of those, minutes the service was unavailable.
    pub minutes_unavailable: i64,
    /// Percent available (R-OPS-1 asks at least 98% of each day).
    pub percent_available: f64,
}

impl Availability {
    /// Counts one answer of `service` at `now` (UTC seconds).
    pub fn record(&self, service: &'static str, server_error: bool, now: i64) {
        let mut all = lock(&self.minutes);
        let minutes = all.entry(service).or_default();
        let m = minutes.entry(now.div_euclid(60)).or_default();
        m.total += 1;
        if server_error {
            m.failed += 1;
        }
        let oldest = now.div_euclid(60) - KEEP_MINUTES;
        while minutes.first_key_value().is_some_and(|(k, _)| *k < oldest) {
            minutes.pop_first();
        }
    }

    /// Marks every service unavailable in the minute of `now` (the readiness probe failed).
    pub fn probe_failed(&self, now: i64) {
        let mut all = lock(&self.minutes);
        for service in SERVICES {
            all.entry(service)
                .or_default()
                .entry(now.div_euclid(60))
                .or_default()
                .probe_down = true;
        }
    }

    /// `(answers, server errors)` of `service` in the minute of `now`.
    pub fn counts(&self, service: &'static str, now: i64) -> (u64, u64) {
        let m = self.minute(service, now.div_euclid(60));
        (m.total, m.failed)
    }

    fn minute(&self, service: &'static str, minute: i64) -> Minute {
        lock(&self.minutes)
            .get(service)
            .and_then(|m| m.get(&minute).copied())
            .unwrap_or_default()
    }

    /// Availability of `service` over the UTC day containing `now`, up to `now`.
    pub fn day(&self, service: &'static str, now: i64) -> DayAvailability {
        let start = now.div_euclid(86_400) * 1440;
        let end = now.div_euclid(60);
        let observed = (end - start + 1).max(1);
        let unavailable = (start..=end).filter(|m| self.minute(service, *m).unavailable()).count() as i64;
        let percent = 100.0 * (observed - unavailable) as f64 / observed as f64;
        DayAvailability {
            service,
            minutes_observed: observed,
            minutes_unavailable: unavailable,
            percent_available: (percent * 100.0).round() / 100.0,
        }
    }
}

/// Evaluates every complete minute not yet evaluated, up to the minute before `now`:
/// opens incidents on unavailable minutes and closes, stores and classifies them on
/// recovery. Returns the incidents closed.
pub async fn evaluate(
    availability: &Availability,
    store: &dyn crate::store::Store,
    issuer: &str,
    now: crate::domain::UnixTime,
) -> Result<Vec<IncidentRecord>, StoreError> {
    let last_complete = now.div_euclid(60) - 1;
    let first = {
        let mut checked = lock(&availability.checked_up_to);
        let first = checked.map(|c| c + 1).unwrap_or(last_complete);
        *checked = Some(last_complete);
        first
    };
    let mut closed = Vec::new();
    for minute in first..=last_complete {
        for service in SERVICES {
            let m = availability.minute(service, minute);
            let finished = {
                let mut open = lock(&availability.open);
                match (m.unavailable(), open.get_mut(service)) {
                    (true, Some(o)) => {
                        o.total += m.total;
                        o.failed += m.failed;
                        None
                    }
                    (true, None) => {
                        open.insert(
                            service,
                            Open {
                                start_minute: minute,
                                total: m.total,
                                failed: m.failed,
                            },
                        );
                        None
                    }
                    (false, Some(_)) => open.remove(service).map(|o| (o, minute)),
                    (false, None) => None,
                }
            };
            if let Some((o, end_minute)) = finished {
                closed.push(store_incident(store, issuer, service, o, end_minute).await?);
            }
        }
    }
    Ok(closed)
}

async fn store_incident(
    store: &dyn crate::store::Store,
    issuer: &str,
    service: &'static str,
    o: Open,
    end_minute: i64,
) -> Result<IncidentRecord, StoreError> {
    let duration_minutes = u32::try_from(end_minute - o.start_minute).unwrap_or(u32::MAX);
    // A probe outage with no traffic seen counts as everyone affected.
    let affected = if o.total == 0 {
        100.0
    } else {
        100.0 * o.failed as f64 / o.total as f64
    };
    let affected = (affected * 100.0).round() / 100.0;
    let report = crate::supervision::incident::IncidentReport {
        affected_percent: affected,
        duration_minutes,
        service: Some(service.to_owned()),
        started_at: Some(o.start_minute * 60),
        description: Some(format!(
            "{} of {} requests failed (detected by eidgate)",
            o.failed, o.total
        )),
    };
    let answer =
        crate::supervision::incident::assess(&report, issuer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let record = IncidentRecord {
        id: uuid::Uuid::new_v4().to_string(),
        service: service.to_owned(),
        started_at: o.start_minute * 60,
        ended_at: end_minute * 60,
        record: serde_json::to_value(&answer).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    };
    let event = if answer.classification.significant {
        crate::audit::catalogue::INCIDENT_SIGNIFICANT
    } else {
        crate::audit::catalogue::INCIDENT_RECORDED
    };
    let audit = AuditEvent::new(
        event,
        "system",
        format!("incident:{}", record.id),
        json!({"service": service, "duration_minutes": duration_minutes, "affected_percent": affected,
               "significant": answer.classification.significant}),
    );
    store.insert_incident(&record, audit).await?;
    if answer.classification.significant {
        tracing::error!(
            service,
            duration_minutes,
            affected,
            "significant incident: notify the national CERT (R-OPS-2)"
        );
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_ops_1_a_day_counts_unavailable_minutes() {
        let a = Availability::default();
        let day = 20_000 * 86_400;
        for i in 0..10 {
            a.record("token", i < 5, day + 30); // minute 0: half failed → unavailable
        }
        a.record("token", false, day + 90); // minute 1: fine
        a.probe_failed(day + 150); // minute 2: probe down
        let d = a.day("token", day + 179);
        assert_eq!((d.minutes_observed, d.minutes_unavailable), (3, 2));
        assert_eq!(service_of("/authn/flows/x/password"), Some("login"));
        assert_eq!(service_of("/token"), Some("token"));
        assert_eq!(service_of("/jwks.json"), None);
    }
}
