//! Legal persons (R-REG-5), mandates (R-BIND-1) and the supervisor's LoA withdrawal
//! (R-SUP-2) for the admin API. Every change is audited in the same transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::Admin;
use crate::audit::AuditEvent;
use crate::domain::ids::{MandateId, PersonIdentifier};
use crate::domain::legal::{
    check_binding, check_delegation, LegalAttributes, LegalPerson, Mandate, MandateAction, MandateError, MandateStatus,
    RegisterCheck,
};
use crate::domain::loa::{Loa, LoaCaps};
use crate::domain::operator::Role;
use crate::domain::UnixTime;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::LifecycleError;
use crate::store::StoreError;

/// `POST /admin/v1/legal-persons`: a legal person checked against an authoritative
/// register (R-REG-5).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalRegistration {
    /// `XX/YY/code` or `XX:code` (the registration code).
    pub identifier: String,
    /// Current legal name.
    pub legal_name: String,
    /// Legal form.
    pub legal_form: String,
    /// The register check (source and reference).
    #[serde(deserialize_with = "crate::domain::wire::object")]
    pub register: RegisterCheck,
    /// Optional attributes (R-DATA-2).
    #[serde(flatten)]
    pub attributes: LegalAttributes,
}

/// `POST /admin/v1/mandates`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandateRequest {
    /// The legal person's identifier.
    pub legal_person: String,
    /// The representative's person identifier.
    pub representative: String,
    /// The binding's LoA.
    pub loa: Loa,
    /// End of validity (UTC seconds); default one year.
    #[serde(default)]
    pub valid_until: Option<UnixTime>,
    /// How the binding was checked (required at substantial and high).
    #[serde(deserialize_with = "crate::domain::wire::object")]
    pub verification: RegisterCheck,
}

/// `POST /admin/v1/mandates/{id}/delegate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationRequest {
    /// The person the mandate is delegated to.
    pub to: String,
    /// At most the source's LoA.
    pub loa: Loa,
    /// At most the source's validity; default the source's.
    #[serde(default)]
    pub valid_until: Option<UnixTime>,
}

/// `POST /admin/v1/mandates/{id}/suspend|revoke|reactivate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandateChange {
    /// Why (audited).
    pub reason: String,
}

/// A mandate as operators see it.
#[derive(Serialize)]
pub struct MandateView {
    /// Id.
    pub id: MandateId,
    /// The legal person (`XX:code`).
    pub legal_person: String,
    /// The representative (`XX:code`).
    pub representative: String,
    /// LoA.
    pub loa: Loa,
    /// State now.
    pub state: MandateStatus,
    /// Validity.
    pub valid_from: UnixTime,
    /// Validity.
    pub valid_until: UnixTime,
    /// Delegated from this mandate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_from: Option<MandateId>,
    /// The delegator (`XX:code`), on record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_by: Option<String>,
}

const YEAR: i64 = 365 * 86_400;

impl From<MandateError> for LifecycleError {
    fn from(e: MandateError) -> Self {
        match e {
            MandateError::Transition(..) => LifecycleError::Conflict(e.to_string()),
            other => LifecycleError::Unprocessable(other.to_string()),
        }
    }
}

fn identifier(text: &str, what: &str) -> Result<PersonIdentifier, LifecycleError> {
    text.parse()
        .map_err(|_| LifecycleError::BadRequest(format!("{what} is not an identifier")))
}

fn bounded(text: &str, what: &str) -> Result<(), LifecycleError> {
    if text.trim().is_empty() || text.len() > 256 {
        return Err(LifecycleError::BadRequest(format!(
            "{what} must have 1 to 256 characters"
        )));
    }
    Ok(())
}

/// Records a legal person (role registration).
pub async fn register(app: &Admin, actor: &Actor, r: LegalRegistration) -> Result<LegalPerson, LifecycleError> {
    actor.operator_with(Role::Registration)?;
    bounded(&r.legal_name, "legal_name")?;
    bounded(&r.legal_form, "legal_form")?;
    if !r.register.is_complete() {
        return Err(LifecycleError::Unprocessable(
            "a legal person must be checked against an authoritative register (source, reference)".into(),
        ));
    }
    let legal = LegalPerson {
        id: crate::domain::ids::LegalPersonId::new(),
        identifier: identifier(&r.identifier, "identifier")?,
        legal_name: r.legal_name.trim().to_owned(),
        legal_form: r.legal_form.trim().to_owned(),
        attributes: r.attributes,
        register: r.register,
        checked_by: actor.audit_name(),
        created_at: app.now(),
    };
    let event = AuditEvent::new(
        crate::audit::catalogue::LEGAL_PERSON_REGISTERED,
        actor.audit_name(),
        format!("legal_person:{}", legal.id),
        json!({"register": legal.register.source, "reference": legal.register.reference}),
    );
    match app.store.insert_legal_person(&legal, event).await {
        Ok(()) => Ok(legal),
        Err(StoreError::Conflict) => Err(LifecycleError::Conflict(
            "the legal person is already registered".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A legal person and its mandates (roles registration, helpdesk, issuance).
pub async fn find(app: &Admin, actor: &Actor, text: &str) -> Result<(LegalPerson, Vec<MandateView>), LifecycleError> {
    if ![Role::Registration, Role::Helpdesk, Role::Issuance]
        .iter()
        .any(|r| actor.operator_with(*r).is_ok())
    {
        return Err(LifecycleError::Forbidden("the operator lacks the required role"));
    }
    let lookup = crate::helpdesk::lookup::Lookup {
        api: "admin",
        key_kind: "legal_person",
        key: text,
    };
    lookup.admit(&app.lifecycle, actor).await?;
    let id = match identifier(text, "identifier") {
        Ok(id) => id,
        Err(e) => {
            lookup.record(&app.lifecycle, actor, None).await?;
            return Err(e);
        }
    };
    let read = app
        .store
        .legal_person_by_identifier(&id)
        .await
        .map_err(LifecycleError::from);
    let legal = lookup
        .recorded(&app.lifecycle, actor, read, |l| format!("legal_person:{}", l.id))
        .await?;
    let mut views = Vec::new();
    for m in app.store.mandates_of_legal_person(legal.id).await? {
        views.push(view(app, &m, &legal).await?);
    }
    Ok((legal, views))
}

/// The view of a mandate.
pub async fn view(app: &Admin, m: &Mandate, legal: &LegalPerson) -> Result<MandateView, LifecycleError> {
    let who = |id| async move {
        app.store
            .person(id)
            .await
            .map(|p| p.map(|p| p.identifier.to_string()).unwrap_or_default())
    };
    let representative = who(m.person).await?;
    let delegated_by = match m.delegated_by {
        Some(d) => Some(who(d).await?),
        None => None,
    };
    Ok(MandateView {
        id: m.id,
        legal_person: legal.identifier.to_string(),
        representative,
        loa: m.loa,
        state: m.status_at(app.now()),
        valid_from: m.valid_from,
        valid_until: m.valid_until,
        delegated_from: m.delegated_from,
        delegated_by,
    })
}

/// Binds a representative to a legal person (role registration; R-BIND-1 checks).
pub async fn create(app: &Admin, actor: &Actor, r: MandateRequest) -> Result<(Mandate, LegalPerson), LifecycleError> {
    actor.operator_with(Role::Registration)?;
    let legal = app
        .store
        .legal_person_by_identifier(&identifier(&r.legal_person, "legal_person")?)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    let person = app
        .store
        .person_by_identifier(&identifier(&r.representative, "representative")?)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    if person.id == actor.person() {
        return Err(LifecycleError::Forbidden(
            "operators cannot bind themselves to a legal person",
        ));
    }
    check_binding(r.loa, person.proofing_loa, &legal, &r.verification)?;
    let now = app.now();
    let valid_until = r.valid_until.unwrap_or(now + YEAR);
    if valid_until <= now {
        return Err(MandateError::Validity.into());
    }
    let mandate = Mandate {
        id: MandateId::new(),
        legal_person: legal.id,
        person: person.id,
        loa: r.loa,
        status: MandateStatus::Applied,
        valid_from: now,
        valid_until,
        delegated_from: None,
        delegated_by: None,
        verification: r.verification,
        version: 1,
        created_at: now,
    };
    let event = AuditEvent::new(
        crate::audit::catalogue::MANDATE_CREATED,
        actor.audit_name(),
        format!("mandate:{}", mandate.id),
        json!({"legal_person": legal.id.to_string(), "representative": person.id.to_string(), "loa": mandate.loa,
               "valid_until": valid_until, "register": mandate.verification.source, "reference": mandate.verification.reference}),
    );
    app.store.insert_mandate(&mandate, event).await?;
    Ok((mandate, legal))
}

/// Delegates a mandate to another person; the delegator stays on record and the
/// delegation ends with its source (role registration; R-BIND-1).
pub async fn delegate(
    app: &Admin,
    actor: &Actor,
    source: MandateId,
    r: DelegationRequest,
) -> Result<(Mandate, LegalPerson), LifecycleError> {
    actor.operator_with(Role::Registration)?;
    let from = app.store.mandate(source).await?.ok_or(LifecycleError::NotFound)?;
    let legal = app
        .store
        .legal_person(from.legal_person)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    let to = app
        .store
        .person_by_identifier(&identifier(&r.to, "to")?)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    if to.id == actor.person() {
        return Err(LifecycleError::Forbidden(
            "operators cannot delegate a mandate to themselves",
        ));
    }
    if to.id == from.person {
        return Err(LifecycleError::Unprocessable(
            "a mandate cannot be delegated to its holder".into(),
        ));
    }
    let now = app.now();
    let valid_until = r.valid_until.unwrap_or(from.valid_until);
    check_delegation(&from, r.loa, valid_until, now)?;
    if to.proofing_loa < r.loa {
        return Err(MandateError::ProofingBelowLoa.into());
    }
    let mandate = Mandate {
        id: MandateId::new(),
        legal_person: from.legal_person,
        person: to.id,
        loa: r.loa,
        status: MandateStatus::Applied,
        valid_from: now,
        valid_until,
        delegated_from: Some(from.id),
        delegated_by: Some(from.person),
        verification: from.verification.clone(),
        version: 1,
        created_at: now,
    };
    let event = AuditEvent::new(
        crate::audit::catalogue::MANDATE_DELEGATED,
        actor.audit_name(),
        format!("mandate:{}", mandate.id),
        json!({"from": from.id.to_string(), "delegator": from.person.to_string(), "to": to.id.to_string(), "loa": r.loa}),
    );
    app.store.insert_mandate(&mandate, event).await?;
    Ok((mandate, legal))
}

/// Suspends, revokes or asks to reactivate a mandate (roles helpdesk or registration); a
/// reactivation leaves it `applied` until a second officer approves it.
pub async fn change(
    app: &Admin,
    actor: &Actor,
    id: MandateId,
    action: MandateAction,
    body: MandateChange,
) -> Result<(Mandate, LegalPerson), LifecycleError> {
    if actor.operator_with(Role::Helpdesk).is_err() {
        actor.operator_with(Role::Registration)?;
    }
    bounded(&body.reason, "reason")?;
    let m = app.store.mandate(id).await?.ok_or(LifecycleError::NotFound)?;
    let next = m.transition(action, app.now())?;
    let event = AuditEvent::new(
        match action {
            MandateAction::Suspend => crate::audit::catalogue::MANDATE_SUSPENDED,
            MandateAction::Revoke => crate::audit::catalogue::MANDATE_REVOKED,
            MandateAction::Reactivate => REACTIVATION_REQUESTED,
            MandateAction::Approve => return approve(app, actor, id).await,
        },
        actor.audit_name(),
        format!("mandate:{id}"),
        json!({"reason": body.reason, "from": m.status_at(app.now()), "to": next}),
    );
    commit_status(app, &m, next, event).await
}

/// Writes mandate `m`'s new state with its audit record; the mandate and its legal person.
async fn commit_status(
    app: &Admin,
    m: &Mandate,
    next: MandateStatus,
    event: AuditEvent,
) -> Result<(Mandate, LegalPerson), LifecycleError> {
    let updated = match app.store.set_mandate_status(m.id, m.version, next, event).await {
        Ok(u) => u,
        Err(StoreError::Conflict) => {
            return Err(LifecycleError::Conflict("the mandate changed meanwhile; retry".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let legal = app
        .store
        .legal_person(updated.legal_person)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    Ok((updated, legal))
}

/// The audit event of a request to reactivate a mandate (approved like a new one).
const REACTIVATION_REQUESTED: &str = crate::audit::catalogue::MANDATE_REACTIVATION_REQUESTED;

/// Who asked for the mandate's pending state: the operator of its latest creation,
/// delegation or reactivation request (from the audit chain; `None` if not found, which
/// refuses the approval).
async fn requester(app: &Admin, id: MandateId) -> Result<Option<String>, LifecycleError> {
    let history = app.store.audit_by_subject(&format!("mandate:{id}"), 100_000).await?;
    Ok(history
        .iter()
        .rev()
        .find(|r| {
            matches!(
                r.event.event_type.as_str(),
                crate::audit::catalogue::MANDATE_CREATED
                    | crate::audit::catalogue::MANDATE_DELEGATED
                    | REACTIVATION_REQUESTED
            )
        })
        .map(|r| r.event.actor.clone()))
}

/// `POST /admin/v1/mandates/{id}/approve`: a second registration officer makes an
/// `applied` mandate `active` (R-BIND-1, R-SEC-3): never the officer who created,
/// delegated or asked to reactivate it, never the representative, never someone who
/// represents the legal person themselves (holds a mandate of it or delegated this one).
pub async fn approve(app: &Admin, actor: &Actor, id: MandateId) -> Result<(Mandate, LegalPerson), LifecycleError> {
    let officer = actor.operator_with(Role::Registration)?;
    let m = app.store.mandate(id).await?.ok_or(LifecycleError::NotFound)?;
    let next = m.transition(MandateAction::Approve, app.now())?;
    match requester(app, id).await? {
        Some(who) if who != actor.audit_name() => {}
        Some(_) => {
            return Err(LifecycleError::Forbidden(
                "four-eyes: the officer who asked for the mandate cannot approve it",
            ))
        }
        None => {
            return Err(LifecycleError::Forbidden(
                "the mandate has no recorded requesting officer",
            ))
        }
    }
    if officer.person == m.person || Some(officer.person) == m.delegated_by {
        return Err(LifecycleError::Forbidden(
            "the representative or delegator cannot approve the mandate",
        ));
    }
    let own = app.store.mandates_of_person(officer.person).await?;
    if own
        .iter()
        .any(|o| o.legal_person == m.legal_person && o.status != MandateStatus::Revoked)
    {
        return Err(LifecycleError::Forbidden(
            "an officer who represents the legal person cannot approve its mandates",
        ));
    }
    let event = AuditEvent::new(
        crate::audit::catalogue::MANDATE_APPROVED,
        actor.audit_name(),
        format!("mandate:{id}"),
        json!({"from": m.status_at(app.now()), "to": next, "requested_by": requester(app, id).await?}),
    );
    commit_status(app, &m, next, event).await
}

/// The LoA caps: configured, withdrawn by the supervisor, in force (roles admin, security).
pub async fn caps(app: &Admin, actor: &Actor) -> Result<serde_json::Value, LifecycleError> {
    if actor.operator_with(Role::Admin).is_err() {
        actor.operator_with(Role::Security)?;
    }
    let configured = app.caps.configured();
    let withdrawn = app.caps.withdrawn().await?;
    Ok(json!({"configured": configured, "withdrawn": withdrawn, "in_force": configured.min(withdrawn)}))
}

/// `PUT /admin/v1/loa/caps` (role admin): records the supervisor's decision to lower or
/// withdraw the LoA of kinds of means (R-SUP-2); kinds not named are not restricted. In
/// SQL, so it applies to new logins on every instance at once and survives restarts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsChange {
    /// Per kind: the highest level it may still assert.
    pub caps: std::collections::BTreeMap<String, Loa>,
    /// The decision (audited), e.g. the supervisor's reference.
    pub reason: String,
}

/// Applies a [`CapsChange`].
pub async fn set_caps(app: &Admin, actor: &Actor, change: CapsChange) -> Result<serde_json::Value, LifecycleError> {
    actor.operator_with(Role::Admin)?;
    bounded(&change.reason, "reason")?;
    let mut withdrawn = LoaCaps::OPEN;
    for (kind, loa) in &change.caps {
        match kind.as_str() {
            "smartcard" => withdrawn.smartcard = *loa,
            "fido" => withdrawn.fido = *loa,
            "totp" => withdrawn.totp = *loa,
            "password" => withdrawn.password = *loa,
            other => return Err(LifecycleError::BadRequest(format!("unknown kind of means {other}"))),
        }
    }
    let text = serde_json::to_string(&withdrawn).map_err(|_| LifecycleError::Unavailable)?;
    let event = AuditEvent::new(
        crate::audit::catalogue::LOA_CAPS_CHANGED,
        actor.audit_name(),
        "loa_caps",
        json!({"withdrawn": withdrawn, "reason": change.reason}),
    );
    app.store
        .set_provider_state(crate::supervision::caps::LOA_WITHDRAWAL, &text, event)
        .await?;
    caps(app, actor).await
}
