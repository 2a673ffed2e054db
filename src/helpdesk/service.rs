//! Helpdesk look-ups (role `helpdesk`; every look-up is rate limited per operator and
//! audited, hit or miss: [`super::lookup`]). Status changes are in
//! [`crate::lifecycle::service::change_status`].

use serde::Serialize;

use super::lookup::Lookup;
use crate::domain::ids::MeansId;
use crate::domain::operator::Role;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::service::MeansView;
use crate::lifecycle::state::Lifecycle;
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

/// `GET /helpdesk/v1/holders?identifier=…`.
/// Rate limited per operator and audited, hit or miss ([`Lookup`]).
pub async fn holder(app: &Lifecycle, actor: &Actor, identifier: &str) -> Result<HolderView, LifecycleError> {
    actor.operator_with(Role::Helpdesk)?;
    let lookup = Lookup {
        api: "helpdesk",
        key_kind: "identifier",
        key: identifier,
    };
    lookup.admit(app, actor).await?;
    // `XX/YY/code`, `XX:code` or the bare personal code (the provider's country implied).
    let Some(id) = crate::authn::throttle::canonical(identifier, &app.config.country).identifier else {
        lookup.record(app, actor, None).await?;
        return Err(LifecycleError::BadRequest(
            "identifier is not a person identifier".into(),
        ));
    };
    let read = app.store.person_by_identifier(&id).await.map_err(LifecycleError::from);
    let person = lookup
        .recorded(app, actor, read, |p| format!("person:{}", p.id))
        .await?;
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

/// `GET /helpdesk/v1/means/{id}`; rate limited per operator and audited, hit or miss
/// ([`Lookup`]).
pub async fn means(app: &Lifecycle, actor: &Actor, text: &str) -> Result<MeansDetail, LifecycleError> {
    actor.operator_with(Role::Helpdesk)?;
    let lookup = Lookup {
        api: "helpdesk",
        key_kind: "means",
        key: text,
    };
    lookup.admit(app, actor).await?;
    let read = match text.parse::<MeansId>() {
        Ok(id) => app.store.means(id).await.map_err(LifecycleError::from),
        Err(_) => Ok(None),
    };
    let m = lookup.recorded(app, actor, read, |m| format!("means:{}", m.id)).await?;
    let id = m.id;
    let holder = app.store.person(m.holder).await?.ok_or(LifecycleError::NotFound)?;
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
