//! Suspension, revocation and reactivation for a verified caller (R-LIFE-1..4): the
//! caller's verification, the two-person rule, idempotent replays, the commit.

use serde_json::json;

use super::actor::Actor;
use super::state::Lifecycle;
use super::{codes, LifecycleError};
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::loa::Loa;
use crate::domain::means::proof::{IdentityReverified, Verification, VerificationMethod};
use crate::domain::means::state::{self, Command};
use crate::domain::means::EidMeans;
use crate::domain::operator::Role;
use crate::store::{IdempotentResponse, MeansRecord, StoreError, TransitionWrite};

use super::view::*;

/// Suspends, revokes or reactivates a means for a verified caller (R-LIFE-1..4).
/// Returns the answer to send; an `Idempotency-Key` repeated with the same request gets
/// the stored answer, with another request `Unprocessable`.
pub async fn change_status(
    app: &Lifecycle,
    actor: &Actor,
    id: MeansId,
    command: StatusCommand,
    reason: &str,
    verification: Option<&Verification>,
    idempotency: Option<Idempotency>,
) -> Result<Answer, LifecycleError> {
    // R-LOG-5: reasons and evidence are facts, never a document copy or a photo.
    free_text("reason", reason, 1024)?;
    if let Some(v) = verification {
        free_text("verification.evidence", &v.evidence, 8192)?;
    }
    if let Some(idem) = &idempotency {
        if let Some(stored) = app.store.idempotent_response(idem.operator, &idem.key).await? {
            return replay(stored, idem);
        }
    }
    let result = change_status_once(app, actor, id, command, reason, verification, idempotency.as_ref()).await;
    let Some(idem) = idempotency else {
        return result.map(|(answer, _)| answer);
    };
    match result {
        Ok((answer, _)) => Ok(answer),
        // Refusals are answers too: a retry must get the same one (nothing changed).
        Err(e @ (LifecycleError::Transition(_) | LifecycleError::Verification(_) | LifecycleError::Forbidden(_))) => {
            let (status, body) = (idem.refusal)(&e);
            let response = IdempotentResponse {
                operator: idem.operator,
                key: idem.key.clone(),
                request_sha256: idem.request_sha256.clone(),
                status,
                body,
                created_at: app.now(),
            };
            match app.store.store_idempotent_response(&response).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(other) => tracing::warn!(error = %other, "idempotent refusal not stored"),
            }
            Err(e)
        }
        Err(LifecycleError::Unavailable | LifecycleError::Dependency(_)) => {
            // A concurrent request with the same key may have won; give its answer.
            if let Ok(Some(stored)) = app.store.idempotent_response(idem.operator, &idem.key).await {
                return replay(stored, &idem);
            }
            Err(LifecycleError::Unavailable)
        }
        Err(e) => Err(e),
    }
}

fn replay(stored: IdempotentResponse, idem: &Idempotency) -> Result<Answer, LifecycleError> {
    if stored.request_sha256 != idem.request_sha256 {
        return Err(LifecycleError::Unprocessable(
            "Idempotency-Key was used for a different request".into(),
        ));
    }
    Ok(Answer::Replayed {
        status: stored.status,
        body: stored.body,
    })
}

#[allow(clippy::too_many_arguments)]
async fn change_status_once(
    app: &Lifecycle,
    actor: &Actor,
    id: MeansId,
    command: StatusCommand,
    reason: &str,
    verification: Option<&Verification>,
    idempotency: Option<&Idempotency>,
) -> Result<(Answer, EidMeans), LifecycleError> {
    let rec = record(app, id).await?;
    let means = &rec.means;
    // The caller: a helpdesk operator (never on their own means) or the holder.
    let method = match actor {
        Actor::Operator(op) => {
            if !op.has(Role::Helpdesk) {
                return Err(LifecycleError::Forbidden("the operator lacks the helpdesk role"));
            }
            if op.person == means.holder {
                return Err(LifecycleError::Forbidden("operators cannot act on their own means"));
            }
            let v = verification.ok_or(LifecycleError::Verification("verification is required"))?;
            verify_caller(app, actor, &rec, command, v).await?
        }
        Actor::Holder { person, loa } => {
            if *person != means.holder {
                return Err(LifecycleError::NotFound);
            }
            if command == StatusCommand::Reactivate && *loa < means.loa {
                return Err(LifecycleError::Verification(
                    "reactivation needs a login at the means' level",
                ));
            }
            (VerificationMethod::AuthenticatedHolder, *loa)
        }
    };
    if super::approvals::needs_second_person(app, &rec, command, method.0).await? {
        let evidence_ref = match verification.map(evidence_reference) {
            Some(serde_json::Value::String(s)) => s,
            _ => "[authenticated holder]".to_owned(),
        };
        let answer =
            super::approvals::request(app, actor, &rec, command, reason, method.0, evidence_ref, idempotency).await?;
        return Ok((answer, rec.means.clone()));
    }
    let reverified = match command {
        StatusCommand::Reactivate => {
            let v = verification.cloned().unwrap_or(Verification {
                method: VerificationMethod::AuthenticatedHolder,
                evidence: "holder session".into(),
            });
            Some(v)
        }
        _ => None,
    };
    let mut current = rec.means.clone();
    // Optimistic concurrency: on a version race, read again and re-apply the command to
    // the state that is now stored (the caller's verification stays valid).
    for _ in 0..16 {
        let cmd = match (&reverified, command) {
            (Some(v), _) => Command::Reactivate(IdentityReverified::check(v, method.1, current.loa).map_err(|_| {
                LifecycleError::Verification(
                    "identity must be re-verified in person or by the holder at the means' LoA",
                )
            })?),
            (None, StatusCommand::Revoke) => Command::Revoke,
            (None, _) => Command::Suspend,
        };
        let to = state::apply(current.status, &cmd)?;
        let mut write = TransitionWrite::status(id, current.version, to);
        let view = MeansView {
            state: to,
            version: current.version + 1,
            ..MeansView::from(&current)
        };
        let body = serde_json::to_string(&view).map_err(|_| LifecycleError::Unavailable)?;
        if let Some(idem) = idempotency {
            write.idempotent = Some(IdempotentResponse {
                operator: idem.operator,
                key: idem.key.clone(),
                request_sha256: idem.request_sha256.clone(),
                status: (idem.status_of)(&Answer::Changed(body.clone())),
                body: body.clone(),
                created_at: app.now(),
            });
        }
        let event = match command {
            StatusCommand::Suspend => crate::audit::catalogue::MEANS_SUSPENDED,
            StatusCommand::Revoke => crate::audit::catalogue::MEANS_REVOKED,
            StatusCommand::Reactivate => crate::audit::catalogue::MEANS_REACTIVATED,
        };
        let audit = AuditEvent::new(
            event,
            actor.audit_name(),
            format!("means:{id}"),
            json!({"reason": reason, "verification": method.0.as_str(), "from": current.status, "to": to,
                   "evidence_ref": verification.map(evidence_reference)}),
        );
        match app.changes().commit(&write, audit).await {
            Ok(updated) => return Ok((Answer::Changed(body), updated)),
            Err(StoreError::Conflict) => {
                if let Some(idem) = idempotency {
                    if app.store.idempotent_response(idem.operator, &idem.key).await?.is_some() {
                        // The same key won concurrently: the caller gets that answer.
                        return Err(LifecycleError::Unavailable);
                    }
                }
                current = record(app, id).await?.means;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(LifecycleError::Unavailable)
}

/// What is kept of the evidence in the audit log: never a secret (R-LOG-5).
fn evidence_reference(v: &Verification) -> serde_json::Value {
    match v.method {
        VerificationMethod::RevocationSecret | VerificationMethod::AuthenticatedHolder => {
            json!("[verified, not stored]")
        }
        // Document facts are personal data: the log keeps a fingerprint that proves which
        // facts were given without holding them (R-LOG-5).
        VerificationMethod::InPerson => json!(format!(
            "sha256:{}",
            crate::domain::secret::fingerprint_hex(&v.evidence)
        )),
        // The order's reference is the legal basis the record must show (R-LIFE-2).
        VerificationMethod::LawEnforcementOrder => json!(v.evidence.chars().take(256).collect::<String>()),
    }
}

/// Checks an operator's statement of how the caller was verified; returns the method and
/// the LoA it reached. Failures are audited and counted; repeated wrong revocation
/// secrets lock that method for the means.
async fn verify_caller(
    app: &Lifecycle,
    actor: &Actor,
    rec: &MeansRecord,
    command: StatusCommand,
    v: &Verification,
) -> Result<(VerificationMethod, Loa), LifecycleError> {
    let id = rec.means.id;
    let fail = |why: &'static str| async move {
        let audit = AuditEvent::new(
            crate::audit::catalogue::HELPDESK_VERIFICATION_FAILED,
            actor.audit_name(),
            format!("means:{id}"),
            json!({"method": v.method.as_str(), "command": command.as_str(), "why": why}),
        );
        if let Err(e) = app.store.append(audit).await {
            tracing::warn!(error = %e, "verification failure not audited");
        }
        LifecycleError::Verification(why)
    };
    if v.evidence.trim().is_empty() || v.evidence.len() > 8192 {
        return Err(fail("evidence is missing or too long").await);
    }
    match v.method {
        VerificationMethod::RevocationSecret => {
            if command == StatusCommand::Reactivate {
                return Err(fail("a revocation secret cannot reactivate").await);
            }
            if rec.revocation_failures >= REVOCATION_SECRET_LIMIT {
                return Err(fail("the revocation secret method is locked for this means").await);
            }
            let ok = app
                .passwords
                .verify(
                    rec.revocation_secret.clone(),
                    crate::domain::secret::Password::new(codes::normalise(&v.evidence)),
                )
                .await?;
            if !ok {
                let audit = AuditEvent::new(
                    crate::audit::catalogue::HELPDESK_REVOCATION_SECRET_WRONG,
                    actor.audit_name(),
                    format!("means:{id}"),
                    json!({"command": command.as_str()}),
                );
                app.store.count_revocation_failure(id, audit).await?;
                return Err(LifecycleError::Verification("wrong revocation secret"));
            }
            Ok((VerificationMethod::RevocationSecret, rec.means.loa))
        }
        VerificationMethod::InPerson => Ok((VerificationMethod::InPerson, Loa::High)),
        VerificationMethod::LawEnforcementOrder => {
            if command == StatusCommand::Reactivate {
                return Err(fail("a law-enforcement order cannot reactivate").await);
            }
            Ok((VerificationMethod::LawEnforcementOrder, rec.means.loa))
        }
        VerificationMethod::AuthenticatedHolder => {
            match crate::oidc::logout::verify_holder_id_token(&app.oidc, &v.evidence) {
                Some(e) if holder_evidence_holds(app, &e, rec).await? => {
                    Ok((VerificationMethod::AuthenticatedHolder, e.loa))
                }
                _ => Err(fail(
                    "the holder's ID token is missing, invalid, stale, of another client or of someone else",
                )
                .await),
            }
        }
    }
}

/// The ID token is the holder's, was issued to the operators' console (the holder logged
/// in at the helpdesk desk), and is newer than the means' last change: a token from
/// before a suspension proves nothing about who asks to undo it (R-LIFE-3).
async fn holder_evidence_holds(
    app: &Lifecycle,
    e: &crate::oidc::logout::HolderEvidence,
    rec: &MeansRecord,
) -> Result<bool, LifecycleError> {
    let Some(p) = app.store.person_by_identifier(&e.person).await? else {
        return Ok(false);
    };
    if p.id != rec.means.holder {
        return Ok(false);
    }
    let console = match e.aud.parse::<crate::domain::ids::ClientId>() {
        Ok(id) => app.store.client(&id).await?.is_some_and(|c| c.operator_console),
        Err(_) => false,
    };
    if !console {
        return Ok(false);
    }
    let history = app
        .store
        .audit_by_subject(&format!("means:{}", rec.means.id), 100_000)
        .await?;
    let last_change = history
        .iter()
        .rev()
        .find(|r| r.event.event_type.starts_with("means."))
        .map(|r| r.time)
        .unwrap_or(i64::MIN);
    Ok(e.iat > last_change)
}
