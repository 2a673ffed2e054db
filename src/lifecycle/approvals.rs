//! Two-person actions (R-SEC-3; DESIGN "Contracts added in the second round"): one
//! helpdesk operator cannot alone
//! - reactivate a means whose suspension was a security event (marked compromised, a FIDO
//!   counter regression, the brute-force lock, a law-enforcement order), nor
//! - revoke a means on a law-enforcement order (irreversible).
//!
//! Such a request answers `202 {"approval": ID, "state": <unchanged>}` and waits; a second
//! operator with role `security` (never the requester, never the holder) approves it at
//! `POST /helpdesk/v1/approvals/{ID}/approve`, which carries the change out, or rejects it.
//! Both steps are audited. A suspension the holder asked for is still reactivated by one
//! helpdesk operator after re-verification.

use serde::Serialize;
use serde_json::json;

use super::actor::Actor;
use super::state::Lifecycle;
use super::view::{record, Answer, Idempotency, MeansView, StatusCommand};
use super::LifecycleError;
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::loa::Loa;
use crate::domain::means::proof::{IdentityReverified, Verification, VerificationMethod};
use crate::domain::means::state::{self, Command};
use crate::domain::means::MeansStatus;
use crate::domain::operator::Role;
use crate::store::{Approval, IdempotentResponse, MeansRecord, StoreError, TransitionWrite};

/// Why a means is suspended, as its audit trail tells. Suspensions whose cause cannot be
/// established count as security suspensions (fail closed).
pub async fn security_suspension(app: &Lifecycle, means: MeansId) -> Result<bool, LifecycleError> {
    let history = app.store.audit_by_subject(&format!("means:{means}"), 100_000).await?;
    // The newest record that changed the means' status: its event type, or a stated `to`.
    let last = history.iter().rev().find(|r| {
        r.event.data.get("to").is_some()
            || matches!(
                r.event.event_type.as_str(),
                "means.suspended"
                    | "means.locked"
                    | "authn.counter_regression"
                    | "means.reactivated"
                    | "means.activated"
                    | "means.imported"
            )
    });
    let Some(last) = last else { return Ok(true) };
    let data = &last.event.data;
    Ok(match last.event.event_type.as_str() {
        "means.locked" | "authn.counter_regression" => true,
        "means.suspended" => {
            let verification = data["verification"].as_str().unwrap_or_default();
            let reason = data["reason"].as_str().unwrap_or_default();
            !matches!(verification, "authenticated_holder" | "revocation_secret" | "in_person")
                || reason.starts_with("compromised")
        }
        // The newest change left the means active (or revoked): the caller's view of a
        // suspended means is stale, and the version check will refuse the change (409).
        _ if data["to"]
            .as_str()
            .is_some_and(|to| to != MeansStatus::Suspended.as_str()) =>
        {
            false
        }
        "means.reactivated" | "means.activated" | "means.imported" => false,
        // Suspended under any other event: treat as a security event (fail closed).
        _ => true,
    })
}

/// Whether `command` on `rec` with the caller verified by `method` needs a second person.
pub async fn needs_second_person(
    app: &Lifecycle,
    rec: &MeansRecord,
    command: StatusCommand,
    method: VerificationMethod,
) -> Result<bool, LifecycleError> {
    Ok(match command {
        StatusCommand::Revoke => method == VerificationMethod::LawEnforcementOrder,
        StatusCommand::Reactivate => {
            rec.means.status == MeansStatus::Suspended && security_suspension(app, rec.means.id).await?
        }
        StatusCommand::Suspend => false,
    })
}

/// Records the request of a two-person action: `202 {"approval", "state"}` (the state
/// unchanged). A repeated `Idempotency-Key` gets the same answer.
#[allow(clippy::too_many_arguments)]
pub async fn request(
    app: &Lifecycle,
    actor: &Actor,
    rec: &MeansRecord,
    command: StatusCommand,
    reason: &str,
    method: VerificationMethod,
    evidence_ref: String,
    idempotency: Option<&Idempotency>,
) -> Result<Answer, LifecycleError> {
    let Actor::Operator(op) = actor else {
        return Err(LifecycleError::Forbidden(
            "a security suspension is lifted only by the helpdesk with a security officer's approval",
        ));
    };
    let now = app.now();
    let approval = Approval {
        id: uuid::Uuid::new_v4().to_string(),
        means: rec.means.id,
        command: command.as_str().to_owned(),
        reason: reason.to_owned(),
        method: method.as_str().to_owned(),
        evidence_ref,
        requested_by: op.person,
        requested_at: now,
        state: "open".into(),
        decided_by: None,
        decided_at: None,
    };
    let audit = AuditEvent::new(
        crate::audit::catalogue::APPROVAL_REQUESTED,
        actor.audit_name(),
        format!("means:{}", rec.means.id),
        json!({"approval": approval.id, "command": approval.command, "reason": reason, "verification": approval.method,
               "evidence_ref": approval.evidence_ref, "state": rec.means.status}),
    );
    app.store.insert_approval(&approval, audit).await?;
    let body = json!({"approval": approval.id, "state": rec.means.status}).to_string();
    if let Some(idem) = idempotency {
        let stored = IdempotentResponse {
            operator: idem.operator,
            key: idem.key.clone(),
            request_sha256: idem.request_sha256.clone(),
            status: (idem.status_of)(&Answer::AwaitingApproval(body.clone())),
            body: body.clone(),
            created_at: now,
        };
        match app.store.store_idempotent_response(&stored).await {
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(e) => tracing::warn!(error = %e, "idempotent approval answer not stored"),
        }
    }
    Ok(Answer::AwaitingApproval(body))
}

/// Open approvals, oldest first (roles `security` or `helpdesk`).
pub async fn open(app: &Lifecycle, actor: &Actor) -> Result<Vec<Approval>, LifecycleError> {
    if actor.operator_with(Role::Security).is_err() {
        actor.operator_with(Role::Helpdesk)?;
    }
    Ok(app.store.open_approvals(1000).await?)
}

/// The decision's answer.
#[derive(Debug, Serialize)]
pub struct Decision {
    /// The approval.
    pub approval: String,
    /// `approved` or `rejected`.
    pub decision: &'static str,
    /// The means after the decision.
    pub means: MeansView,
}

/// Approves (and carries out) or rejects an open approval: role `security`, not the
/// requester, not the holder of the means.
pub async fn decide(
    app: &Lifecycle,
    actor: &Actor,
    id: &str,
    approve: bool,
    note: &str,
) -> Result<Decision, LifecycleError> {
    let officer = actor.operator_with(Role::Security)?;
    let approval = app.store.approval(id).await?.ok_or(LifecycleError::NotFound)?;
    if approval.requested_by == officer.person {
        return Err(LifecycleError::Forbidden(
            "two-person rule: the requester cannot decide their own request",
        ));
    }
    let rec = record(app, approval.means).await?;
    if rec.means.holder == officer.person {
        return Err(LifecycleError::Forbidden("operators cannot act on their own means"));
    }
    if approval.state != "open" {
        return Err(LifecycleError::Conflict(format!("the approval is {}", approval.state)));
    }
    let (state, event) = if approve {
        ("approved", crate::audit::catalogue::APPROVAL_APPROVED)
    } else {
        ("rejected", crate::audit::catalogue::APPROVAL_REJECTED)
    };
    let audit = AuditEvent::new(
        event,
        actor.audit_name(),
        format!("means:{}", approval.means),
        json!({"approval": approval.id, "command": approval.command, "requested_by": approval.requested_by,
               "note": note}),
    );
    match app
        .store
        .decide_approval(&approval.id, state, officer.person, app.now(), audit)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(LifecycleError::Conflict("the approval was decided meanwhile".into())),
        Err(e) => return Err(e.into()),
    }
    let means = if approve {
        carry_out(app, actor, &approval, rec).await?
    } else {
        MeansView::from(&rec.means)
    };
    Ok(Decision {
        approval: approval.id,
        decision: state,
        means,
    })
}

/// The approved change, as one transition with its audit record naming both operators.
async fn carry_out(
    app: &Lifecycle,
    actor: &Actor,
    a: &Approval,
    rec: MeansRecord,
) -> Result<MeansView, LifecycleError> {
    let method: VerificationMethod = serde_json::from_value(json!(a.method))
        .map_err(|_| LifecycleError::Conflict("the approval's verification method is unknown".into()))?;
    let cmd = if a.command == StatusCommand::Reactivate.as_str() {
        let v = Verification {
            method,
            evidence: a.evidence_ref.clone(),
        };
        // Checked at the request at the means' level; an in-person check reaches high.
        let at = if method == VerificationMethod::InPerson {
            Loa::High
        } else {
            rec.means.loa
        };
        Command::Reactivate(
            IdentityReverified::check(&v, at, rec.means.loa)
                .map_err(|_| LifecycleError::Verification("the request's verification cannot reactivate"))?,
        )
    } else {
        Command::Revoke
    };
    let to = state::apply(rec.means.status, &cmd)?;
    let event = if a.command == StatusCommand::Reactivate.as_str() {
        crate::audit::catalogue::MEANS_REACTIVATED
    } else {
        crate::audit::catalogue::MEANS_REVOKED
    };
    let audit = AuditEvent::new(
        event,
        actor.audit_name(),
        format!("means:{}", a.means),
        json!({"reason": a.reason, "verification": a.method, "from": rec.means.status, "to": to,
               "evidence_ref": a.evidence_ref, "approval": a.id, "requested_by": a.requested_by}),
    );
    // The one change path: commit with the audit record, marker, status event.
    let updated = app
        .changes()
        .commit(&TransitionWrite::status(a.means, rec.means.version, to), audit)
        .await
        .map_err(super::view::conflict_as_retry)?;
    Ok(MeansView::from(&updated))
}
