//! `eidgate import FILE`: loads clients, persons, legal persons, mandates, operators and
//! active means with their credentials (and revocation secrets) from one JSON document, so
//! a test environment can be provisioned from one file. Passwords are hashed with argon2id
//! and client secrets stored as SHA-256 fingerprints; neither is ever written in clear.
//!
//! Idempotent (issue 24): the whole document is parsed, validated and compared with what
//! is stored before anything is written. Each item is `created` (audited as imported),
//! `unchanged` (present and equal: nothing written, nothing audited) or, present but
//! different, refused naming the item unless `--update` (then written and audited; clients,
//! persons and operators only). Unknown fields are refused in every section, each error
//! naming its item (`client rp-names: unknown field ...`). The same item: a client by
//! `client_id`, a person by `identifier`, an operator by `person`; legal persons, mandates
//! and means in `import_legal` and `import_means`.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::AuditEvent;
use crate::config::Config;
use crate::domain::client::{AuthMethod, Client};
use crate::domain::ids::{PersonId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::MeansKind;
use crate::domain::operator::Operator;
use crate::domain::person::{valid_birthdate, NaturalPerson, OptionalAttributes};
use crate::domain::secret::{fingerprint_hex, ClientSecret};
use crate::hsm::Sealer;
use crate::store::Store;

use super::import_legal::{differs, field, invalid, items, once, Fate, Persons};
pub use super::import_legal::{ImportError, ImportReport, SectionCounts};

/// The import document (CONTRACT); each section's items are parsed one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    clients: Vec<Value>,
    #[serde(default)]
    persons: Vec<Value>,
    #[serde(default)]
    legal_persons: Vec<Value>,
    #[serde(default)]
    mandates: Vec<Value>,
    #[serde(default)]
    operators: Vec<Value>,
    #[serde(default)]
    means: Vec<Value>,
}

/// A client: the registration ([`Client`], its fields only) and its secret in clear.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    client_secret: Option<ClientSecret>,
    #[serde(flatten)]
    client: Client,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonEntry {
    identifier: String,
    given_name: String,
    family_name: String,
    birthdate: String,
    proofing_loa: Loa,
    #[serde(flatten)]
    optional: OptionalAttributes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorEntry {
    person: String,
    roles: Vec<String>,
}

/// How an import treats items present but different.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    /// Change them (clients, persons, operators) instead of refusing the document.
    pub update: bool,
}

/// Imports `text` into `store`; `totp` means are refused (no HSM to seal their seeds).
pub async fn import(store: &dyn Store, text: &str, config: &Config) -> Result<ImportReport, ImportError> {
    import_with(store, None, text, config, ImportOptions::default()).await
}

/// Whether `text` has `totp` means, whose seeds [`import_sealed`] seals in the HSM (the
/// CLI opens the HSM only then).
pub fn needs_sealer(text: &str) -> bool {
    serde_json::from_str::<Document>(text).is_ok_and(|doc| {
        doc.means
            .iter()
            .any(|m| m.get("kind").and_then(Value::as_str) == Some(MeansKind::Totp.as_str()))
    })
}

/// Imports `text` into `store`. A `totp` means (`{"kind": "totp", "password",
/// "totp_secret": base32}`) gets its seed sealed by `sealer` under the HSM `data-wrap`
/// key with the new means id as AAD (R-AUTH-3, R-AUTH-6); without a sealer it is refused.
pub async fn import_sealed(
    store: &dyn Store,
    sealer: Option<&dyn Sealer>,
    text: &str,
    config: &Config,
) -> Result<ImportReport, ImportError> {
    import_with(store, sealer, text, config, ImportOptions::default()).await
}

/// [`import_sealed`] with `options` (`eidgate import --update`).
pub async fn import_with(
    store: &dyn Store,
    sealer: Option<&dyn Sealer>,
    text: &str,
    config: &Config,
    options: ImportOptions,
) -> Result<ImportReport, ImportError> {
    let doc: Document = serde_json::from_str(text).map_err(|e| ImportError::Parse(e.to_string()))?;
    let clients = items("client", |v| field(v, "client_id"), doc.clients)?;
    let persons = items("person", |v| field(v, "identifier"), doc.persons)?;
    let legal = items("legal person", super::import_legal::legal_key, doc.legal_persons)?;
    let mandates = items("mandate", super::import_legal::mandate_key, doc.mandates)?;
    let operators = items("operator", |v| field(v, "person"), doc.operators)?;
    let means = items("means", super::import_means::key, doc.means)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let update = options.update;
    let mut report = ImportReport::default();

    // Plan everything first: nothing is written when an item is refused.
    let clients = plan_clients(store, clients, update, &mut report).await?;
    let (persons, known) = plan_persons(store, persons, update).await?;
    let operators = plan_operators(store, operators, &known, update).await?;
    let legal = super::import_legal::plan(store, legal, mandates, &known, now).await?;
    let validity = crate::domain::secs(config.means.validity);
    let means = super::import_means::plan(store, sealer, means, &known, now, validity).await?;

    // Then write, each created or updated item audited.
    for (client, fate) in clients {
        report.tally(fate, |c| &mut c.clients);
        if fate != Fate::Unchanged {
            let event = AuditEvent::new(
                crate::audit::catalogue::CLIENT_IMPORTED,
                "system:import",
                format!("client:{}", client.client_id),
                json!({"updated": fate == Fate::Update}),
            );
            store.upsert_client(&client, event).await?;
        }
    }
    for (person, fate) in persons {
        report.tally(fate, |c| &mut c.persons);
        let event = AuditEvent::new(
            crate::audit::catalogue::PERSON_IMPORTED,
            "system:import",
            format!("person:{}", person.id),
            json!({"proofing_loa": person.proofing_loa, "updated": fate == Fate::Update}),
        );
        match fate {
            Fate::Create => store.insert_person(&person, event).await?,
            Fate::Update => store.update_person(&person, event).await?,
            Fate::Unchanged => {}
        }
    }
    for (operator, fate) in operators {
        report.tally(fate, |c| &mut c.operators);
        if fate != Fate::Unchanged {
            let event = AuditEvent::new(
                crate::audit::catalogue::OPERATOR_IMPORTED,
                "system:import",
                format!("person:{}", operator.person),
                json!({"roles": operator.roles, "updated": fate == Fate::Update}),
            );
            store.set_operator(&operator, event).await?;
        }
    }
    super::import_legal::write(store, legal, &mut report).await?;
    super::import_means::write(store, means, &mut report).await?;
    report.finish();
    Ok(report)
}

/// Clients by `client_id`. A client present keeps its secret when the item gives none; a
/// secret is generated only for a client created without one.
async fn plan_clients(
    store: &dyn Store,
    entries: Vec<(String, ClientEntry)>,
    update: bool,
    report: &mut ImportReport,
) -> Result<Vec<(Client, Fate)>, ImportError> {
    let mut planned = Vec::new();
    let mut seen = HashSet::new();
    let mut generated = Vec::new();
    for (item, entry) in entries {
        once(&mut seen, &item)?;
        let mut client = entry.client;
        if client.secret_sha256.is_some() {
            // The stored fingerprint is not an import field: the secret is given in clear.
            return Err(invalid(&item, "unknown field `secret_sha256` (give client_secret)"));
        }
        let present = store.client(&client.client_id).await?;
        let uses_secret = matches!(
            client.token_endpoint_auth_method,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        );
        client.secret_sha256 = match (uses_secret, entry.client_secret, &present) {
            (false, _, _) => None,
            (true, Some(s), _) if s.expose().len() >= 32 => Some(fingerprint_hex(s.expose())),
            (true, Some(_), _) => return Err(invalid(&item, "client_secret must have at least 32 characters")),
            (true, None, Some(p)) if p.secret_sha256.is_some() => p.secret_sha256.clone(),
            (true, None, _) => {
                let secret = crate::random::token();
                let sha = fingerprint_hex(&secret);
                generated.push((client.client_id.to_string(), secret));
                Some(sha)
            }
        };
        client.validate().map_err(|e| invalid(&item, e.to_string()))?;
        let fate = match present {
            None => Fate::Create,
            Some(p) if serde_json::to_value(&p).ok() == serde_json::to_value(&client).ok() => Fate::Unchanged,
            Some(_) => differs(&item, "registration", update, true)?,
        };
        planned.push((client, fate));
    }
    report.generated_client_secrets = generated;
    Ok(planned)
}

/// Persons by `identifier`.
async fn plan_persons(
    store: &dyn Store,
    entries: Vec<(String, PersonEntry)>,
    update: bool,
) -> Result<(Vec<(NaturalPerson, Fate)>, Persons), ImportError> {
    let mut planned = Vec::new();
    let mut known = Persons::default();
    for (item, p) in entries {
        let identifier: PersonIdentifier = p
            .identifier
            .parse()
            .map_err(|_| invalid(&item, "malformed identifier"))?;
        if known.planned.contains_key(&identifier) {
            return Err(invalid(&item, "appears twice in the document"));
        }
        if p.given_name.trim().is_empty() || p.family_name.trim().is_empty() || !valid_birthdate(&p.birthdate) {
            return Err(invalid(
                &item,
                "names must not be empty and birthdate must be YYYY-MM-DD",
            ));
        }
        let present = store.person_by_identifier(&identifier).await?;
        let person = NaturalPerson {
            id: present.as_ref().map_or_else(PersonId::new, |x| x.id),
            identifier: identifier.clone(),
            given_name: p.given_name,
            family_name: p.family_name,
            birthdate: p.birthdate,
            proofing_loa: p.proofing_loa,
            attributes: p.optional,
        };
        let fate = match &present {
            None => Fate::Create,
            Some(x) if *x == person => Fate::Unchanged,
            Some(_) => differs(
                &item,
                "given_name, family_name, birthdate, proofing_loa or attributes",
                update,
                true,
            )?,
        };
        known.planned.insert(identifier, (person.clone(), present.is_some()));
        planned.push((person, fate));
    }
    Ok((planned, known))
}

/// Operators by `person` (a person of the document or a stored one).
async fn plan_operators(
    store: &dyn Store,
    entries: Vec<(String, OperatorEntry)>,
    known: &Persons,
    update: bool,
) -> Result<Vec<(Operator, Fate)>, ImportError> {
    let mut planned = Vec::new();
    let mut seen = HashSet::new();
    for (item, o) in entries {
        once(&mut seen, &item)?;
        let identifier: PersonIdentifier = o
            .person
            .parse()
            .map_err(|_| invalid(&item, "malformed operator identifier"))?;
        let roles = Operator::parse_roles(&o.roles.join(",")).map_err(|_| invalid(&item, "unknown role"))?;
        if roles.is_empty() {
            return Err(invalid(&item, "an operator needs at least one role"));
        }
        let (person, stored) = known
            .resolve(store, &identifier)
            .await?
            .ok_or_else(|| invalid(&item, "operator is not a registered person"))?;
        let present = if stored { store.operator(person.id).await? } else { None };
        let operator = Operator {
            person: person.id,
            roles,
        };
        let fate = match present {
            None => Fate::Create,
            Some(x) if x.roles == operator.roles => Fate::Unchanged,
            Some(_) => differs(&item, "set of roles", update, true)?,
        };
        planned.push((operator, fate));
    }
    Ok(planned)
}
