//! Four-eyes approval of an application (R-ISS-3) and the delivery of its secrets to the
//! holder (R-ISS-1, R-ISS-2): the approving officer never sees the activation code nor
//! the revocation secret; they go through the delivery port, as two messages on two
//! channels where the holder has two contact points. Delivery happens before the commit:
//! if it fails nothing changes (503) and the officer may approve again; if the commit
//! fails after it, the delivered codes were never valid.

use serde::Serialize;
use serde_json::json;

use super::actor::Actor;
use super::state::Lifecycle;
use super::view::{conflict_as_retry, record, MeansView};
use super::{codes, LifecycleError};
use crate::audit::AuditEvent;
use crate::delivery::{self, Delivered, DeliveryError};
use crate::domain::ids::MeansId;
use crate::domain::means::proof::SecondOfficerApproval;
use crate::domain::means::state::{self, Command};
use crate::domain::operator::Role;
use crate::store::TransitionWrite;

/// The answer of an approval (CONTRACT): `{"id", "state": "issued", "delivery": [{"kind",
/// "channel"}]}`, and no secret.
#[derive(Serialize)]
pub struct Approved {
    /// The issued means.
    #[serde(flatten)]
    pub means: MeansView,
    /// What was sent to the holder, and how.
    pub delivery: Vec<Delivered>,
}

impl From<DeliveryError> for LifecycleError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::NoContact => LifecycleError::Unprocessable(e.to_string()),
            other => {
                tracing::warn!(error = %other, "delivery of activation secrets failed");
                LifecycleError::Unavailable
            }
        }
    }
}

/// Approves an application (role `issuance`, a different officer than the registrar,
/// R-ISS-3) → `issued`, with a fresh activation code and revocation secret delivered to
/// the holder.
pub async fn approve(app: &Lifecycle, actor: &Actor, id: MeansId) -> Result<Approved, LifecycleError> {
    let officer = actor.operator_with(Role::Issuance)?;
    if crate::supervision::termination::started(app.store.as_ref()).await? {
        return Err(LifecycleError::IssuanceStopped);
    }
    let rec = record(app, id).await?;
    if rec.means.holder == officer.person {
        return Err(LifecycleError::Forbidden("operators cannot act on their own means"));
    }
    let registrar = rec
        .registered_by
        .ok_or(LifecycleError::Forbidden("the application has no registering officer"))?;
    let proof = SecondOfficerApproval::check(registrar, officer.person)
        .map_err(|_| LifecycleError::Forbidden("four-eyes: the approver must differ from the registering officer"))?;
    let to = state::apply(rec.means.status, &Command::Approve(proof))?;
    let holder = app
        .store
        .person(rec.means.holder)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    let activation_code = zeroize::Zeroizing::new(codes::generate(3));
    let revocation_secret = zeroize::Zeroizing::new(codes::generate(4));
    let now = app.now();
    let messages = delivery::plan(&holder, id, &activation_code, &revocation_secret, now)?;
    let expires = now + crate::domain::secs(app.config.means.activation_code_ttl);
    let mut write = TransitionWrite::status(id, rec.means.version, to);
    write.approved_by = Some(officer.person);
    write.activation_code = Some((codes::hash(&app.passwords, &activation_code).await?, expires));
    write.revocation_secret = Some(codes::hash(&app.passwords, &revocation_secret).await?);
    let mut delivered = Vec::with_capacity(messages.len());
    for message in &messages {
        delivery::send(&app.config.delivery, &app.config.data_dir, message).await?;
        delivered.push(Delivered {
            kind: message.kind,
            channel: message.channel,
        });
    }
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_APPROVED,
        actor.audit_name(),
        format!("means:{id}"),
        json!({"registered_by": registrar, "activation_code_generated": true, "activation_expires_at": expires,
               "revocation_secret_generated": true, "delivery": delivered,
               "adapter": format!("{:?}", app.config.delivery.adapter).to_lowercase()}),
    );
    let means = app.changes().commit(&write, audit).await.map_err(conflict_as_retry)?;
    for d in &delivered {
        let audit = AuditEvent::new(
            crate::audit::catalogue::DELIVERY_SENT,
            actor.audit_name(),
            format!("means:{id}"),
            json!({"kind": d.kind, "channel": d.channel}),
        );
        if let Err(e) = app.store.append(audit).await {
            tracing::warn!(error = %e, "delivery not audited (the approval record names it)");
        }
    }
    Ok(Approved {
        means: MeansView::from(&means),
        delivery: delivered,
    })
}
