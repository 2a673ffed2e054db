//! Incident classification and the notification draft for the national CERT (R-OPS-2).

use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::incident::{classify, Classification, IncidentError};

/// An incident as reported by an operator or the monitor.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentReport {
    /// Share of users affected, percent.
    pub affected_percent: f64,
    /// Duration in minutes.
    pub duration_minutes: u32,
    /// The affected service (`login`, `token`, `helpdesk`, ...).
    #[serde(default)]
    pub service: Option<String>,
    /// Start, UTC seconds.
    #[serde(default)]
    pub started_at: Option<i64>,
    /// What happened.
    #[serde(default)]
    pub description: Option<String>,
}

/// The classification and, when significant, the notification draft.
#[derive(Debug, Serialize)]
pub struct IncidentAnswer {
    /// The classification (CONTRACT: `significant`, `threshold.min_percent|min_hours`).
    #[serde(flatten)]
    pub classification: Classification,
    /// The draft for the national CERT, when significant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<Value>,
    /// The same draft as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_text: Option<String>,
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Classifies `report` and drafts the notification of provider `issuer`.
pub fn assess(report: &IncidentReport, issuer: &str) -> Result<IncidentAnswer, IncidentError> {
    let classification = classify(report.affected_percent, report.duration_minutes)?;
    if !classification.significant {
        return Ok(IncidentAnswer {
            classification,
            notification: None,
            notification_text: None,
        });
    }
    let service = report.service.clone().unwrap_or_else(|| "eID authentication".into());
    let started = report.started_at.map(rfc3339);
    let hours = f64::from(report.duration_minutes) / 60.0;
    let threshold = classification
        .threshold
        .map(|t| json!({"min_percent": t.min_percent, "max_percent": t.max_percent, "min_hours": t.min_hours}));
    let draft = json!({
        "to": "national CERT",
        "subject": "Significant incident of an electronic identification service",
        "provider": issuer,
        "service": service,
        "started_at": started,
        "duration_hours": (hours * 100.0).round() / 100.0,
        "affected_users_percent": report.affected_percent,
        "threshold_met": threshold,
        "description": report.description,
        "status": "draft: complete the impact, cause and measures before sending",
    });
    let text = format!(
        "To: national CERT\nSubject: Significant incident of an electronic identification service\n\n\
         Provider: {issuer}\nService: {service}\nStarted: {}\nDuration: {:.2} h\nUsers affected: {}%\n\
         Classified significant under the threshold {}% for at least {} h.\n\nDescription: {}\n\n\
         Impact, cause and measures taken: (to be completed)\n",
        started.as_deref().unwrap_or("(to be completed)"),
        hours,
        report.affected_percent,
        classification.threshold.map(|t| t.min_percent).unwrap_or_default(),
        classification.threshold.map(|t| t.min_hours).unwrap_or_default(),
        report.description.as_deref().unwrap_or("(to be completed)"),
    );
    Ok(IncidentAnswer {
        classification,
        notification: Some(draft),
        notification_text: Some(text),
    })
}
