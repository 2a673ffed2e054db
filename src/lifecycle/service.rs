//! Applications, four-eyes approval, rejection, helpdesk status changes and expiry.
//! Each operation: check the caller (role, not their own means), check the transition in
//! the domain, commit it with its audit record (and idempotent answer) in one
//! transaction, then publish the status event (R-LIFE-4: every instance drops cached
//! state at once; SQL is the record, so a failed publish does not undo the change).

use serde::Serialize;
use serde_json::json;

use super::actor::Actor;
use super::state::Lifecycle;
use super::{codes, LifecycleError};
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::proof::{IdentityReverified, Verification, VerificationMethod};
use crate::domain::means::state::{self, Command};
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::operator::Role;
use crate::domain::UnixTime;
use crate::store::{IdempotentResponse, MeansRecord, StoreError, TransitionWrite};

/// Kinds whose activation this version implements; applications for others are refused.
pub const ISSUABLE: [MeansKind; 4] = [
    MeansKind::Fido,
    MeansKind::Password,
    MeansKind::Smartcard,
    MeansKind::Totp,
];

/// Wrong revocation secrets before the method is locked for a means.
pub const REVOCATION_SECRET_LIMIT: i64 = 5;

/// A means as the APIs show it.
#[derive(Clone, Debug, Serialize)]
pub struct MeansView {
    /// Id.
    pub id: MeansId,
    /// State.
    pub state: MeansStatus,
    /// Kind.
    pub kind: MeansKind,
    /// Assigned LoA.
    pub loa: Loa,
    /// Validity start (UTC seconds).
    pub valid_from: UnixTime,
    /// Validity end (UTC seconds).
    pub valid_until: UnixTime,
    /// Version (optimistic concurrency).
    pub version: i64,
}

impl From<&EidMeans> for MeansView {
    fn from(m: &EidMeans) -> Self {
        Self {
            id: m.id,
            state: m.status,
            kind: m.kind,
            loa: m.loa,
            valid_from: m.valid_from,
            valid_until: m.valid_until,
            version: m.version,
        }
    }
}

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

/// After a committed status change: marks the means' older access tokens dead and tells
/// every instance to drop cached state (see [`super::change`]; for changes committed
/// elsewhere, e.g. the login lock).
pub(crate) async fn publish(app: &Lifecycle, means: MeansId) {
    app.changes().published(means).await;
}

pub(crate) async fn record(app: &Lifecycle, id: MeansId) -> Result<MeansRecord, LifecycleError> {
    app.store.means_record(id).await?.ok_or(LifecycleError::NotFound)
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

/// R-LOG-5: a free-text field an operator or caller fills holds facts (a reason, a
/// reference to a document), never a document copy, a photo or a biometric template.
pub(crate) fn free_text(field: &str, value: &str, max_chars: usize) -> Result<(), LifecycleError> {
    crate::domain::record_text::check_free_text(value, max_chars)
        .map_err(|e| LifecycleError::BadRequest(format!("{field}: {e}")))
}

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

pub(crate) fn conflict_as_retry(e: StoreError) -> LifecycleError {
    match e {
        StoreError::Conflict => LifecycleError::Unprocessable("the means changed concurrently; read it again".into()),
        other => other.into(),
    }
}

/// A helpdesk or self-service status command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusCommand {
    /// Reactivate a suspended means (R-LIFE-3).
    Reactivate,
    /// Revoke (final).
    Revoke,
    /// Suspend.
    Suspend,
}

impl StatusCommand {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCommand::Reactivate => "reactivate",
            StatusCommand::Revoke => "revoke",
            StatusCommand::Suspend => "suspend",
        }
    }
}

/// The idempotency of an operator request: key and request fingerprint.
#[derive(Clone, Debug)]
pub struct Idempotency {
    /// The operator.
    pub operator: crate::domain::ids::PersonId,
    /// The `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_sha256: String,
}

/// The answer of a status change: the HTTP status and JSON body to send (also what is
/// stored for a repeated `Idempotency-Key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

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
            let (status, body) = refusal_body(&e);
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
        Err(LifecycleError::Unavailable) => {
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
    Ok(Answer {
        status: stored.status,
        body: stored.body,
    })
}

/// The problem body stored for a refusal (same shape as the live answer).
pub fn refusal_body(e: &LifecycleError) -> (u16, String) {
    let (status, kind, title) = match e {
        LifecycleError::Transition(_) => (409, "transition-not-allowed", "Transition not allowed"),
        LifecycleError::Verification(_) => (403, "verification-failed", "Caller verification failed"),
        _ => (403, "forbidden", "Forbidden"),
    };
    let body = json!({"type": format!("urn:eidgate:problem:{kind}"), "title": title, "status": status, "detail": e.to_string()});
    (status, body.to_string())
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
                status: 200,
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
            Ok(updated) => return Ok((Answer { status: 200, body }, updated)),
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
