//! Helpdesk look-ups (role `helpdesk`; every look-up is audited). Status changes are in
//! [`crate::lifecycle::service::change_status`].

use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonIdentifier};
use crate::domain::operator::Role;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::service::MeansView;
use crate::lifecycle::LifecycleError;

/// A holder and their means.
#[derive(Serialize)]
pub struct HolderView {
    /// The person.
    pub holder: crate::admin::registry::PersonSummary,
    /// Their means, newest first.
    pub means: Vec<MeansView>,
}

/// One history entry of a means (from the audit chain).
#[derive(Serialize)]
pub struct HistoryEntry {
    /// Audit sequence number.
    pub seq: i64,
    /// UTC seconds.
    pub time: i64,
    /// Event type.
    pub event: String,
    /// Who.
    pub actor: String,
    /// Details.
    pub data: serde_json::Value,
}

/// A means with its holder and history.
#[derive(Serialize)]
pub struct MeansDetail {
    /// The means.
    #[serde(flatten)]
    pub means: MeansView,
    /// The holder's identifier (`XX:code`).
    pub holder: String,
    /// Lifecycle history, oldest first.
    pub history: Vec<HistoryEntry>,
}

async fn audit_lookup(app: &App, actor: &Actor, subject: String) -> Result<(), LifecycleError> {
    app.store
        .append(AuditEvent::new(
            crate::audit::catalogue::HELPDESK_LOOKUP,
            actor.audit_name(),
            subject,
            json!({}),
        ))
        .await?;
    Ok(())
}

/// `GET /helpdesk/v1/holders?identifier=…`.
pub async fn holder(app: &App, actor: &Actor, identifier: &str) -> Result<HolderView, LifecycleError> {
    actor.operator_with(Role::Helpdesk)?;
    let id: PersonIdentifier = identifier
        .parse()
        .map_err(|_| LifecycleError::BadRequest("identifier is not a person identifier".into()))?;
    let person = app
        .store
        .person_by_identifier(&id)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    audit_lookup(app, actor, format!("person:{}", person.id)).await?;
    let means = app
        .store
        .means_of_holder(person.id)
        .await?
        .iter()
        .map(MeansView::from)
        .collect();
    Ok(HolderView {
        holder: crate::admin::registry::summary(&person),
        means,
    })
}

/// `GET /helpdesk/v1/means/{id}`.
pub async fn means(app: &App, actor: &Actor, id: MeansId) -> Result<MeansDetail, LifecycleError> {
    actor.operator_with(Role::Helpdesk)?;
    let m = app.store.means(id).await?.ok_or(LifecycleError::NotFound)?;
    let holder = app.store.person(m.holder).await?.ok_or(LifecycleError::NotFound)?;
    audit_lookup(app, actor, format!("means:{id}")).await?;
    let history = app
        .store
        .audit_by_subject(&format!("means:{id}"), 500)
        .await?
        .into_iter()
        .map(|r| HistoryEntry {
            seq: r.seq,
            time: r.time,
            event: r.event.event_type,
            actor: r.event.actor,
            data: r.event.data,
        })
        .collect();
    Ok(MeansDetail {
        means: MeansView::from(&m),
        holder: holder.identifier.to_string(),
        history,
    })
}
