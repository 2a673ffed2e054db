//! The annual report to the supervisor (R-SUP-1): the number of users of valid means on
//! 31 December (in total and per kind) and the number of means issued during the year (in
//! total and per kind), computed from the lifecycle history in the audit chain, so a means
//! that was valid on that date counts even if it was revoked later.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::MeansKind;
use crate::store::{Store, StoreError};

/// Counts in total and per kind.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Total.
    pub total: u64,
    /// Per kind of means.
    pub by_kind: BTreeMap<String, u64>,
}

/// The annual report (CONTRACT shape).
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct AnnualReport {
    /// The year.
    pub year: i32,
    /// Users (distinct holders) of means valid at the end of 31 December; per kind, the
    /// users holding a valid means of that kind.
    pub valid_on_31_december: Counts,
    /// Means issued (approved, or imported as issued) during the year.
    pub issued_during_year: Counts,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The year is out of range.
    #[error("year out of range")]
    Year,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Default)]
struct Timeline {
    active: bool,
}

/// Every audit event that changes the status of a means, and whether the means is valid
/// (`active`) after it. Every kind of suspension ends validity: by the helpdesk or the
/// holder, a compromise, the brute-force lock, a FIDO counter regression.
pub const STATUS_EVENTS: &[(&str, bool)] = &[
    (crate::audit::catalogue::MEANS_IMPORTED, true),
    (crate::audit::catalogue::MEANS_ACTIVATED, true),
    (crate::audit::catalogue::MEANS_REACTIVATED, true),
    (crate::audit::catalogue::MEANS_APPROVED, false),
    (crate::audit::catalogue::MEANS_REJECTED, false),
    (crate::audit::catalogue::MEANS_SUSPENDED, false),
    (crate::audit::catalogue::MEANS_REVOKED, false),
    (crate::audit::catalogue::MEANS_EXPIRED, false),
    ("means.locked", false),
    (crate::audit::catalogue::AUTHN_COUNTER_REGRESSION, false),
];

/// Whether the means is valid after `event`, or `None` when the event does not change
/// its status. A record that states the new status (`"to"`) is taken at its word, so a
/// status change under an event name not listed above still counts.
fn valid_after(event: &crate::audit::AuditEvent) -> Option<bool> {
    if let Some(to) = event.data.get("to").and_then(|v| v.as_str()) {
        return Some(to == crate::domain::means::MeansStatus::Active.as_str());
    }
    STATUS_EVENTS
        .iter()
        .find(|(name, _)| *name == event.event_type)
        .map(|(_, valid)| *valid)
}

/// Replays one audit record into the per-means state at the end of the year and the list
/// of means issued during it. Records after the year are ignored, so a means valid on 31
/// December counts even if it was revoked later.
fn observe(
    state: &mut HashMap<MeansId, Timeline>,
    issued: &mut Vec<MeansId>,
    r: &crate::audit::AuditRecord,
    year_start: i64,
    year_end: i64,
) {
    if r.time >= year_end {
        return;
    }
    let Some(id) = r
        .event
        .subject
        .strip_prefix("means:")
        .and_then(|s| s.parse::<MeansId>().ok())
    else {
        return;
    };
    let t = state.entry(id).or_default();
    if let Some(valid) = valid_after(&r.event) {
        t.active = valid;
    }
    let issuance = matches!(r.event.event_type.as_str(), "means.approved" | "means.imported");
    if issuance && r.time >= year_start {
        issued.push(id);
    }
}

/// Makes the report for `year` from the audit chain and the means registry.
pub async fn annual(store: &dyn Store, year: i32) -> Result<AnnualReport, ReportError> {
    let start = time::Date::from_calendar_date(year, time::Month::January, 1).map_err(|_| ReportError::Year)?;
    let next = time::Date::from_calendar_date(year + 1, time::Month::January, 1).map_err(|_| ReportError::Year)?;
    let year_start = start.midnight().assume_utc().unix_timestamp();
    let year_end = next.midnight().assume_utc().unix_timestamp(); // end of 31 December

    let mut state: HashMap<MeansId, Timeline> = HashMap::new();
    let mut issued: Vec<MeansId> = Vec::new();
    let mut from = 1;
    loop {
        let page = store.audit_records(from, 1000).await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        for r in &page {
            observe(&mut state, &mut issued, r, year_start, year_end);
        }
    }

    let mut kinds: HashMap<MeansId, (MeansKind, PersonId, i64, i64)> = HashMap::new();
    let lookup = |id: MeansId| async move {
        store
            .means(id)
            .await
            .map(|m| m.map(|m| (m.kind, m.holder, m.valid_from, m.valid_until)))
    };
    let mut valid_users: BTreeSet<PersonId> = BTreeSet::new();
    let mut valid_by_kind: BTreeMap<String, BTreeSet<PersonId>> = BTreeMap::new();
    for (id, t) in &state {
        if !t.active {
            continue;
        }
        let Some(info) = lookup(*id).await? else { continue };
        kinds.insert(*id, info);
        let (kind, holder, valid_from, valid_until) = info;
        if valid_from < year_end && valid_until >= year_end {
            valid_users.insert(holder);
            valid_by_kind
                .entry(kind.as_str().to_owned())
                .or_default()
                .insert(holder);
        }
    }
    let mut issued_counts = Counts::default();
    for id in issued {
        let kind = match kinds.get(&id) {
            Some((k, ..)) => *k,
            None => match lookup(id).await? {
                Some((k, ..)) => k,
                None => continue,
            },
        };
        issued_counts.total += 1;
        *issued_counts.by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
    }
    let valid = Counts {
        total: valid_users.len() as u64,
        by_kind: valid_by_kind.into_iter().map(|(k, v)| (k, v.len() as u64)).collect(),
    };
    Ok(AnnualReport {
        year,
        valid_on_31_december: valid,
        issued_during_year: issued_counts,
    })
}

/// The report as an HTML fragment (tables; every value escaped).
pub fn html_body(report: &AnnualReport) -> String {
    use crate::domain::html::escape;
    let table = |caption: &str, counts: &Counts| {
        let mut rows = String::new();
        for (kind, n) in &counts.by_kind {
            rows.push_str(&format!("<tr><th scope=\"row\">{}</th><td>{n}</td></tr>", escape(kind)));
        }
        format!(
            "<table><caption>{}</caption><thead><tr><th scope=\"col\">Kind of means</th><th scope=\"col\">Number</th></tr></thead>\
             <tbody>{rows}</tbody><tfoot><tr><th scope=\"row\">Total</th><td>{}</td></tr></tfoot></table>",
            escape(caption),
            counts.total
        )
    };
    format!(
        "{}{}",
        table(
            &format!("Users of valid means on 31 December {}", report.year),
            &report.valid_on_31_december
        ),
        table(
            &format!("Means issued during {}", report.year),
            &report.issued_during_year
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditRecord};

    fn record(seq: i64, time: i64, event: &str, means: MeansId) -> AuditRecord {
        AuditRecord {
            seq,
            time,
            event: AuditEvent::new(event, "test", format!("means:{means}"), serde_json::json!({})),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn r_sup_1_a_means_valid_on_31_december_counts_even_if_revoked_later() {
        let y2025 = time::macros::datetime!(2025-01-01 00:00 UTC).unix_timestamp();
        let y2026 = time::macros::datetime!(2026-01-01 00:00 UTC).unix_timestamp();
        let (a, b, c) = (MeansId::new(), MeansId::new(), MeansId::new());
        let log = [
            record(1, y2025 + 100, "means.approved", a),
            record(2, y2025 + 200, "means.activated", a),
            record(3, y2025 + 300, "means.imported", b),
            record(4, y2025 + 400, "means.suspended", b),
            record(5, y2025 - 10, "means.imported", c), // issued in 2024, active through 2025
            record(6, y2026 + 50, "means.revoked", a),  // after the year: does not count
        ];
        let mut state = HashMap::new();
        let mut issued = Vec::new();
        for r in &log {
            observe(&mut state, &mut issued, r, y2025, y2026);
        }
        assert!(state[&a].active, "revoked in 2026, valid on 31 December 2025");
        assert!(!state[&b].active, "suspended during 2025");
        assert!(state[&c].active);
        assert_eq!(issued, vec![a, b], "c was issued in 2024");
    }

    /// R-SUP-1: every event that changes a means' status, one means each, active before.
    #[test]
    fn r_sup_1_every_status_event_decides_validity() {
        let y2025 = time::macros::datetime!(2025-01-01 00:00 UTC).unix_timestamp();
        let y2026 = time::macros::datetime!(2026-01-01 00:00 UTC).unix_timestamp();
        for (event, valid) in STATUS_EVENTS {
            let m = MeansId::new();
            let mut state = HashMap::new();
            let mut issued = Vec::new();
            for r in [record(1, y2025, "means.imported", m), record(2, y2025 + 1, event, m)] {
                observe(&mut state, &mut issued, &r, y2025, y2026);
            }
            assert_eq!(state[&m].active, *valid, "{event}");
        }
    }
}
