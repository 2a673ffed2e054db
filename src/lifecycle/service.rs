//! Applications, four-eyes approval, rejection, helpdesk status changes and expiry.
//! Each operation: check the caller (role, not their own means), check the transition in
//! the domain, commit it with its audit record (and idempotent answer) in one
//! transaction, then publish the status event (R-LIFE-4: every instance drops cached
//! state at once; SQL is the record, so a failed publish does not undo the change).

use serde_json::json;

use super::actor::Actor;
use super::state::Lifecycle;
use super::LifecycleError;
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::state::{self, Command};
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::operator::Role;
use crate::store::{StoreError, TransitionWrite};

pub use super::status::change_status;
pub use super::view::*;

/// An application for a new means.
#[derive(Clone, Debug)]
pub struct Application {
    /// The holder.
    pub holder: PersonIdentifier,
    /// Kind.
    pub kind: MeansKind,
    /// Requested LoA.
    pub loa: Loa,
    /// For a renewal: the valid means it is based on (R-RENEW-1).
    pub renews: Option<MeansId>,
}

/// Registers an application (role `registration`) → `applied`.
pub async fn apply_for(app: &Lifecycle, actor: &Actor, application: Application) -> Result<EidMeans, LifecycleError> {
    let officer = actor.operator_with(Role::Registration)?;
    if crate::supervision::termination::started(app.store.as_ref()).await? {
        return Err(LifecycleError::IssuanceStopped);
    }
    if !ISSUABLE.contains(&application.kind) {
        return Err(LifecycleError::Unprocessable(format!(
            "{} means cannot be issued by this version",
            application.kind
        )));
    }
    let holder = app
        .store
        .person_by_identifier(&application.holder)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    if holder.id == officer.person {
        return Err(LifecycleError::Forbidden("operators cannot act on their own means"));
    }
    let cap = app.config.loa.caps.cap(application.kind);
    if application.loa > cap || application.loa > holder.proofing_loa {
        return Err(LifecycleError::Unprocessable(format!(
            "LoA {} exceeds the kind's cap ({cap}) or the holder's proofing LoA ({})",
            application.loa, holder.proofing_loa
        )));
    }
    let now = app.now();
    let mut basis = json!({"basis": "proofing", "proofing_loa": holder.proofing_loa});
    if let Some(old) = application.renews {
        // R-RENEW-1: a renewal rests on a valid means of the same or a higher LoA.
        let old = app.store.means(old).await?.ok_or(LifecycleError::NotFound)?;
        if old.holder != holder.id || old.check_usable(now).is_err() || old.loa < application.loa {
            return Err(LifecycleError::Unprocessable(
                "a renewal needs a valid means of the same holder at the same or a higher LoA".into(),
            ));
        }
        basis = json!({"basis": "valid_means", "means": old.id, "loa": old.loa});
        if application.loa == Loa::High {
            // R-RENEW-2: at high the identity data is checked again at the source.
            recheck_identity(app, actor, &holder, old.id).await?;
            basis["registry"] = json!("identity data confirmed");
        }
    }
    let means = EidMeans {
        id: MeansId::new(),
        holder: holder.id,
        kind: application.kind,
        loa: application.loa,
        status: MeansStatus::Applied,
        valid_from: now,
        valid_until: now,
        version: 1,
    };
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_APPLIED,
        actor.audit_name(),
        format!("means:{}", means.id),
        json!({"holder": holder.id, "kind": means.kind, "loa": means.loa, "renewal": basis}),
    );
    match application.renews {
        Some(old) => app.store.insert_renewal(&means, officer.person, old, audit).await?,
        None => app.store.insert_application(&means, officer.person, audit).await?,
    }
    Ok(means)
}

/// R-RENEW-2: the holder's identity data against the authoritative register; a mismatch
/// (or a person the register does not know) stops the renewal and is audited with the
/// names of the differing fields, never their values. No register: fail closed.
async fn recheck_identity(
    app: &Lifecycle,
    actor: &Actor,
    holder: &crate::domain::person::NaturalPerson,
    old: MeansId,
) -> Result<(), LifecycleError> {
    use super::registry::{differences, HttpRegistry, RegistryError};
    let checked = match HttpRegistry::from_config(&app.config.registry) {
        Ok(registry) => differences(&registry, holder).await,
        Err(e) => Err(e),
    };
    let differ = match checked {
        Ok(differ) => differ,
        Err(RegistryError::NotConfigured) => {
            return Err(LifecycleError::Unprocessable(
                "renewal at high needs the identity register ([registry] url)".into(),
            ))
        }
        Err(e @ RegistryError::Unavailable(_)) => {
            tracing::warn!(error = %e, "identity register check failed");
            return Err(LifecycleError::Unavailable);
        }
    };
    if differ.is_empty() {
        return Ok(());
    }
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_RENEWAL_REFUSED,
        actor.audit_name(),
        format!("means:{old}"),
        json!({"holder": holder.id, "why": "identity data differs from the register", "fields": differ}),
    );
    app.store.append(audit).await?;
    Err(LifecycleError::Unprocessable(
        "the identity data differs from the authoritative register: renewal stopped".into(),
    ))
}

pub use super::issue::{approve, Approved};

/// Rejects an application (role `issuance`) → `rejected`.
pub async fn reject(app: &Lifecycle, actor: &Actor, id: MeansId, reason: &str) -> Result<EidMeans, LifecycleError> {
    free_text("reason", reason, 1024)?;
    actor.operator_with(Role::Issuance)?;
    let rec = record(app, id).await?;
    let to = state::apply(rec.means.status, &Command::Reject)?;
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_REJECTED,
        actor.audit_name(),
        format!("means:{id}"),
        json!({"reason": reason}),
    );
    let means = app
        .changes()
        .commit(&TransitionWrite::status(id, rec.means.version, to), audit)
        .await
        .map_err(conflict_as_retry)?;
    Ok(means)
}

/// Expires means whose activation period or validity ended (run periodically); a
/// suspended means expires too when its validity ends.
pub async fn expire_due(app: &Lifecycle) -> Result<usize, LifecycleError> {
    let now = app.now();
    let due = app.store.due_for_expiry(now, 500).await?;
    let mut n = 0;
    for m in due {
        let Ok(to) = state::apply(m.status, &Command::Expire) else {
            continue;
        };
        let audit = AuditEvent::new(
            crate::audit::catalogue::MEANS_EXPIRED,
            "system",
            format!("means:{}", m.id),
            json!({"from": m.status}),
        );
        match app
            .changes()
            .commit(&TransitionWrite::status(m.id, m.version, to), audit)
            .await
        {
            Ok(_) => n += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}
