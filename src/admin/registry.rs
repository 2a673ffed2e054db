//! The registry of persons and operators (R-REG-1..4, R-SEC-3): registration with the
//! proofing recorded as facts (never a document copy: there is no field for one, and
//! unknown fields are refused), look-up, and operator role grants (audited, never by the
//! operator for themselves).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::Admin;
use crate::audit::AuditEvent;
use crate::domain::ids::{PersonId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::operator::{Operator, Role};
use crate::domain::person::{valid_birthdate, NaturalPerson, OptionalAttributes, Proofing, ProofingRecord};
use crate::lifecycle::actor::Actor;
use crate::lifecycle::LifecycleError;
use crate::store::StoreError;

/// A registration request (R-REG-2): the minimum data set, the proofing facts and LoA.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// `XX/YY/code` or `XX:code`.
    pub identifier: String,
    /// Current first name(s).
    pub given_name: String,
    /// Current family name(s).
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birthdate: String,
    /// The LoA the proofing reached.
    pub proofing_loa: Loa,
    /// How the identity was proofed.
    #[serde(deserialize_with = "crate::domain::wire::object")]
    pub proofing: Proofing,
    /// Optional attributes.
    #[serde(flatten)]
    pub optional: OptionalAttributes,
}

/// A person as operators see them.
#[derive(Serialize)]
pub struct PersonSummary {
    /// Internal id.
    pub id: PersonId,
    /// Stored identifier (`XX:code`).
    pub identifier: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth.
    pub birthdate: String,
    /// Proofing LoA.
    pub proofing_loa: Loa,
}

/// The summary of a person.
pub fn summary(p: &NaturalPerson) -> PersonSummary {
    PersonSummary {
        id: p.id,
        identifier: p.identifier.to_string(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        birthdate: p.birthdate.clone(),
        proofing_loa: p.proofing_loa,
    }
}

/// Registers a person (role `registration`).
pub async fn register(app: &Admin, actor: &Actor, r: Registration) -> Result<NaturalPerson, LifecycleError> {
    let officer = actor.operator_with(Role::Registration)?;
    let identifier: PersonIdentifier = r
        .identifier
        .parse()
        .map_err(|_| LifecycleError::BadRequest("identifier is not a person identifier".into()))?;
    if r.given_name.trim().is_empty()
        || r.family_name.trim().is_empty()
        || r.given_name.len() > 256
        || r.family_name.len() > 256
    {
        return Err(LifecycleError::BadRequest("names must be 1 to 256 characters".into()));
    }
    if !valid_birthdate(&r.birthdate) {
        return Err(LifecycleError::BadRequest("birthdate must be YYYY-MM-DD".into()));
    }
    match &r.proofing {
        Proofing::Document {
            document_type,
            document_number,
            issuing_state,
            valid_until,
            checked_how,
        } => {
            let fields = [document_type, document_number, issuing_state, checked_how];
            if fields.iter().any(|f| f.trim().is_empty() || f.len() > 128) || !valid_birthdate(valid_until) {
                return Err(LifecycleError::BadRequest("document facts are incomplete".into()));
            }
            // R-LOG-5: facts about the document, never a copy of it.
            for (name, value) in [
                ("document_type", document_type),
                ("document_number", document_number),
                ("issuing_state", issuing_state),
                ("checked_how", checked_how),
            ] {
                crate::lifecycle::service::free_text(name, value, 128)?;
            }
        }
        Proofing::EarlierMeans { means, loa } => {
            // R-REG-4: an earlier means of the same or a higher LoA, still valid.
            let m = app.store.means(*means).await?.ok_or(LifecycleError::NotFound)?;
            if m.check_usable(app.now()).is_err() || m.loa < r.proofing_loa || *loa != m.loa {
                return Err(LifecycleError::Unprocessable(
                    "the earlier means must be valid and at least at the proofing LoA".into(),
                ));
            }
        }
    }
    let person = NaturalPerson {
        id: PersonId::new(),
        identifier,
        given_name: r.given_name,
        family_name: r.family_name,
        birthdate: r.birthdate,
        proofing_loa: r.proofing_loa,
        attributes: r.optional,
    };
    let audit = AuditEvent::new(
        crate::audit::catalogue::PERSON_REGISTERED,
        actor.audit_name(),
        format!("person:{}", person.id),
        json!({"proofing_loa": person.proofing_loa}),
    );
    match app.store.insert_person(&person, audit).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(LifecycleError::Unprocessable(
                "a person with this identifier exists".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let method = match &r.proofing {
        Proofing::Document { .. } => "document",
        Proofing::EarlierMeans { .. } => "earlier_means",
    };
    let record = ProofingRecord {
        proofing: r.proofing,
        loa: person.proofing_loa,
        checked_by: officer.person,
        checked_at: app.now(),
    };
    let audit = AuditEvent::new(
        crate::audit::catalogue::PERSON_PROOFED,
        actor.audit_name(),
        format!("person:{}", person.id),
        json!({"method": method, "loa": record.loa}),
    );
    app.store.insert_proofing(person.id, &record, audit).await?;
    Ok(person)
}

/// Finds a person (any operator role that needs it).
pub async fn find(app: &Admin, actor: &Actor, identifier: &str) -> Result<NaturalPerson, LifecycleError> {
    let allowed = [Role::Registration, Role::Issuance, Role::Helpdesk, Role::Security];
    if !allowed.iter().any(|r| actor.operator_with(*r).is_ok()) {
        return Err(LifecycleError::Forbidden(
            "the operator lacks a role that reads the registry",
        ));
    }
    looked_up(app, actor, "identifier", identifier).await
}

/// A natural person by identifier through the admin API: rate limited per operator and
/// audited, hit or miss ([`crate::helpdesk::lookup`]); a malformed identifier is a miss.
async fn looked_up(
    app: &Admin,
    actor: &Actor,
    key_kind: &'static str,
    identifier: &str,
) -> Result<NaturalPerson, LifecycleError> {
    let lookup = crate::helpdesk::lookup::Lookup {
        api: "admin",
        key_kind,
        key: identifier,
    };
    lookup.admit(&app.lifecycle, actor).await?;
    let read = match identifier.parse::<PersonIdentifier>() {
        Ok(id) => app.store.person_by_identifier(&id).await.map_err(LifecycleError::from),
        Err(_) => Ok(None),
    };
    lookup
        .recorded(&app.lifecycle, actor, read, |p| format!("person:{}", p.id))
        .await
}

/// An operator's roles (roles `admin` or `security`).
pub async fn operator_roles(app: &Admin, actor: &Actor, identifier: &str) -> Result<Operator, LifecycleError> {
    if actor.operator_with(Role::Admin).is_err() && actor.operator_with(Role::Security).is_err() {
        return Err(LifecycleError::Forbidden(
            "the operator lacks the admin or security role",
        ));
    }
    let lookup = crate::helpdesk::lookup::Lookup {
        api: "admin",
        key_kind: "operator",
        key: identifier,
    };
    lookup.admit(&app.lifecycle, actor).await?;
    let read = match identifier.parse::<PersonIdentifier>() {
        Ok(id) => app.store.person_by_identifier(&id).await.map_err(LifecycleError::from),
        Err(_) => Ok(None),
    };
    let person = lookup
        .recorded(&app.lifecycle, actor, read, |p| format!("person:{}", p.id))
        .await?;
    Ok(app.store.operator(person.id).await?.unwrap_or(Operator {
        person: person.id,
        roles: Vec::new(),
    }))
}

/// Grants or removes roles (role `admin`; never one's own, R-SEC-3). Audited with the
/// roles before and after.
pub async fn set_roles(
    app: &Admin,
    actor: &Actor,
    identifier: &str,
    roles: &[String],
) -> Result<Operator, LifecycleError> {
    let admin = actor.operator_with(Role::Admin)?;
    let id: PersonIdentifier = identifier.parse().map_err(|_| LifecycleError::NotFound)?;
    let person = app
        .store
        .person_by_identifier(&id)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    if person.id == admin.person {
        return Err(LifecycleError::Forbidden("operators cannot change their own roles"));
    }
    let parsed =
        Operator::parse_roles(&roles.join(",")).map_err(|_| LifecycleError::BadRequest("unknown role".into()))?;
    let before = app
        .store
        .operator(person.id)
        .await?
        .map(|o| o.roles)
        .unwrap_or_default();
    let operator = Operator {
        person: person.id,
        roles: parsed,
    };
    let audit = AuditEvent::new(
        crate::audit::catalogue::OPERATOR_ROLES_CHANGED,
        actor.audit_name(),
        format!("person:{}", person.id),
        json!({"before": before, "after": operator.roles}),
    );
    app.store.set_operator(&operator, audit).await?;
    Ok(operator)
}
