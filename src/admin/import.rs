//! `eidgate import FILE`: loads clients, persons, legal persons, mandates, operators and
//! active means with their credentials (and revocation secrets) from one JSON document, so a test environment can be provisioned from one file. The
//! whole document is parsed and validated before anything is written; every imported
//! item is audited as imported (R-LOG-1). Passwords are hashed with argon2id and client
//! secrets stored as SHA-256 fingerprints; neither is ever written in clear.

use serde::Deserialize;
use serde_json::json;

use crate::audit::AuditEvent;
use crate::authn::password;
use crate::authn::totp::TotpSeed;
use crate::config::Config;
use crate::domain::client::{AuthMethod, Client};
use crate::domain::ids::{MeansId, PersonId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::operator::Operator;
use crate::domain::person::{valid_birthdate, NaturalPerson, OptionalAttributes};
use crate::domain::secret::{fingerprint_hex, ClientSecret, Password};
use crate::hsm::Sealer;
use crate::store::{Credential, Store};

use super::import_legal::invalid;
pub use super::import_legal::{ImportError, ImportReport};

/// The import document (CONTRACT).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    clients: Vec<ClientEntry>,
    #[serde(default)]
    persons: Vec<PersonEntry>,
    #[serde(default)]
    legal_persons: Vec<super::import_legal::LegalPersonEntry>,
    #[serde(default)]
    mandates: Vec<super::import_legal::MandateEntry>,
    #[serde(default)]
    operators: Vec<OperatorEntry>,
    #[serde(default)]
    means: Vec<MeansEntry>,
}

#[derive(Deserialize)]
struct ClientEntry {
    client_secret: Option<ClientSecret>,
    #[serde(flatten)]
    client: serde_json::Value,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeansEntry {
    holder: String,
    kind: MeansKind,
    loa: Loa,
    password: Option<Password>,
    totp_secret: Option<Password>,
    certificate_pem: Option<String>,
    revocation_secret: Option<Password>,
}

/// Imports `text` into `store`; `totp` means are refused (no HSM to seal their seeds).
pub async fn import(store: &dyn Store, text: &str, config: &Config) -> Result<ImportReport, ImportError> {
    import_sealed(store, None, text, config).await
}

/// Whether `text` has `totp` means, whose seeds [`import_sealed`] seals in the HSM (the
/// CLI opens the HSM only then).
pub fn needs_sealer(text: &str) -> bool {
    serde_json::from_str::<Document>(text).is_ok_and(|doc| doc.means.iter().any(|m| m.kind == MeansKind::Totp))
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
    let doc: Document = serde_json::from_str(text).map_err(|e| ImportError::Parse(e.to_string()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    super::import_legal::validate(&doc.legal_persons, &doc.mandates, now)?;
    let mut report = ImportReport::default();

    // Validate everything first.
    let mut clients = Vec::new();
    for entry in doc.clients {
        let mut client: Client = serde_json::from_value(entry.client).map_err(|e| invalid("client", e.to_string()))?;
        let uses_secret = matches!(
            client.token_endpoint_auth_method,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        );
        if uses_secret {
            let secret = match entry.client_secret {
                Some(s) if s.expose().len() >= 32 => s.expose().to_owned(),
                Some(_) => {
                    return Err(invalid(
                        client.client_id.to_string(),
                        "client_secret must have at least 32 characters",
                    ))
                }
                None => {
                    let generated = crate::random::token();
                    report
                        .generated_client_secrets
                        .push((client.client_id.to_string(), generated.clone()));
                    generated
                }
            };
            client.secret_sha256 = Some(fingerprint_hex(&secret));
        }
        client
            .validate()
            .map_err(|e| invalid(client.client_id.to_string(), e.to_string()))?;
        clients.push(client);
    }
    let mut persons = Vec::new();
    for p in doc.persons {
        let identifier: PersonIdentifier = p
            .identifier
            .parse()
            .map_err(|_| invalid(&p.identifier, "malformed identifier"))?;
        if p.given_name.trim().is_empty() || p.family_name.trim().is_empty() || !valid_birthdate(&p.birthdate) {
            return Err(invalid(
                &p.identifier,
                "names must not be empty and birthdate must be YYYY-MM-DD",
            ));
        }
        persons.push(NaturalPerson {
            id: PersonId::new(),
            identifier,
            given_name: p.given_name,
            family_name: p.family_name,
            birthdate: p.birthdate,
            proofing_loa: p.proofing_loa,
            attributes: p.optional,
        });
    }
    let mut operators = Vec::new();
    for o in &doc.operators {
        let identifier: PersonIdentifier = o
            .person
            .parse()
            .map_err(|_| invalid(&o.person, "malformed operator identifier"))?;
        let roles = Operator::parse_roles(&o.roles.join(",")).map_err(|_| invalid(&o.person, "unknown role"))?;
        if roles.is_empty() {
            return Err(invalid(&o.person, "an operator needs at least one role"));
        }
        operators.push((identifier, roles));
    }
    for m in &doc.means {
        // The holder's secret for telling the helpdesk to suspend or revoke (R-LIFE-2):
        // compared as typed on the phone, so it must keep enough of itself normalised.
        if m.revocation_secret.as_ref().is_some_and(|s| {
            let n = crate::lifecycle::codes::normalise(s.expose());
            n.chars().count() < 8 || n.len() > 256
        }) {
            return Err(invalid(
                &m.holder,
                "revocation_secret must have 8 to 256 characters besides spaces and dashes",
            ));
        }
        if m.kind == MeansKind::Smartcard {
            // A card with its certificate (`certificate_pem`): no password, no seed.
            if m.password.is_some() || m.totp_secret.is_some() {
                return Err(invalid(
                    &m.holder,
                    "a smartcard means takes only certificate_pem (and revocation_secret)",
                ));
            }
            let pem = m
                .certificate_pem
                .as_deref()
                .ok_or_else(|| invalid(&m.holder, "a smartcard means needs certificate_pem"))?;
            crate::smartcard::issuance::imported_certificate(pem, MeansId::new())
                .map_err(|why| invalid(&m.holder, why))?;
            if m.loa > m.kind.ceiling() {
                return Err(invalid(&m.holder, format!("a {} means cannot be {}", m.kind, m.loa)));
            }
            continue;
        }
        let totp = m.kind == MeansKind::Totp;
        if !(m.kind == MeansKind::Password || (totp && sealer.is_some())) {
            return Err(invalid(
                &m.holder,
                format!("import of {} means is not supported here", m.kind),
            ));
        }
        if m.totp_secret.is_some() != totp || m.certificate_pem.is_some() {
            return Err(invalid(&m.holder, "credential fields do not match the kind"));
        }
        if let Some(secret) = &m.totp_secret {
            TotpSeed::from_base32(secret.expose())
                .map_err(|_| invalid(&m.holder, "totp_secret must be base32 of at least 128 bits"))?;
        }
        if m.loa > m.kind.ceiling() {
            return Err(invalid(&m.holder, format!("a {} means cannot be {}", m.kind, m.loa)));
        }
        match &m.password {
            Some(p) if p.expose().chars().count() >= 8 => {}
            _ => return Err(invalid(&m.holder, "a password of at least 8 characters is required")),
        }
    }

    // Then write, each item audited as imported.
    for client in clients {
        let event = AuditEvent::new(
            crate::audit::catalogue::CLIENT_IMPORTED,
            "system:import",
            format!("client:{}", client.client_id),
            json!({}),
        );
        store.upsert_client(&client, event).await?;
        report.clients += 1;
    }
    for person in persons {
        if store.person_by_identifier(&person.identifier).await?.is_some() {
            report.persons_existing += 1;
            continue;
        }
        let event = AuditEvent::new(
            crate::audit::catalogue::PERSON_IMPORTED,
            "system:import",
            format!("person:{}", person.id),
            json!({"proofing_loa": person.proofing_loa}),
        );
        store.insert_person(&person, event).await?;
        report.persons += 1;
    }
    for (identifier, roles) in operators {
        let person = store
            .person_by_identifier(&identifier)
            .await?
            .ok_or_else(|| invalid(identifier.to_string(), "operator is not a registered person"))?;
        let operator = Operator {
            person: person.id,
            roles,
        };
        let event = AuditEvent::new(
            crate::audit::catalogue::OPERATOR_IMPORTED,
            "system:import",
            format!("person:{}", person.id),
            json!({"roles": operator.roles}),
        );
        store.set_operator(&operator, event).await?;
        report.operators += 1;
    }
    super::import_legal::write(store, doc.legal_persons, doc.mandates, now, &mut report).await?;
    let validity = crate::domain::secs(config.means.validity);
    for m in doc.means {
        let identifier: PersonIdentifier = m
            .holder
            .parse()
            .map_err(|_| invalid(&m.holder, "malformed holder identifier"))?;
        let holder = store
            .person_by_identifier(&identifier)
            .await?
            .ok_or_else(|| invalid(&m.holder, "unknown holder"))?;
        if m.loa > holder.proofing_loa {
            return Err(invalid(&m.holder, "the means' LoA exceeds the holder's proofing LoA"));
        }
        // Stored as argon2id of the normalised secret, as for issued means.
        let revocation = m
            .revocation_secret
            .as_ref()
            .map(|s| {
                let normalised = crate::lifecycle::codes::normalise(s.expose());
                password::hash(&crate::domain::secret::Password::new(normalised))
            })
            .transpose()
            .map_err(|e| invalid(&m.holder, e.to_string()))?;
        if let (MeansKind::Smartcard, Some(pem)) = (m.kind, m.certificate_pem.as_deref()) {
            let means = EidMeans {
                id: MeansId::new(),
                holder: holder.id,
                kind: m.kind,
                loa: m.loa,
                status: MeansStatus::Active,
                valid_from: now,
                valid_until: now + validity,
                version: 1,
            };
            let certificate = crate::smartcard::issuance::imported_certificate(pem, means.id)
                .map_err(|why| invalid(&m.holder, why))?;
            let event = AuditEvent::new(
                crate::audit::catalogue::MEANS_IMPORTED,
                "system:import",
                format!("means:{}", means.id),
                json!({"holder": holder.id, "kind": means.kind, "loa": means.loa, "status": "active",
                       "revocation_secret": revocation.is_some()}),
            );
            store
                .insert_imported_means(&means, &Credential::None, revocation.as_deref(), event)
                .await?;
            let event = AuditEvent::new(
                crate::audit::catalogue::CERTIFICATE_IMPORTED,
                "system:import",
                format!("means:{}", means.id),
                json!({"serial": certificate.serial, "issuer_sha256": certificate.issuer_sha256,
                       "certificate_sha256": certificate.certificate_sha256}),
            );
            store.insert_card_certificate(&certificate, event).await?;
            report.means += 1;
            report.means_ids.push(means.id.to_string());
            continue;
        }
        let phc = match &m.password {
            Some(p) => password::hash(p).map_err(|e| invalid(&m.holder, e.to_string()))?,
            None => return Err(invalid(&m.holder, "password required")),
        };
        let id = MeansId::new();
        let credential = match (&m.totp_secret, sealer) {
            (Some(secret), Some(sealer)) => {
                let seed = TotpSeed::from_base32(secret.expose())
                    .map_err(|_| invalid(&m.holder, "totp_secret must be base32 of at least 128 bits"))?;
                let sealed_seed = sealer
                    .seal(seed.expose(), id.to_string().as_bytes())
                    .await
                    .map_err(|e| invalid(&m.holder, format!("cannot seal the TOTP seed: {e}")))?;
                Credential::PasswordTotp {
                    password_phc: phc,
                    sealed_seed,
                }
            }
            _ => Credential::PasswordHash(phc),
        };
        let means = EidMeans {
            id,
            holder: holder.id,
            kind: m.kind,
            loa: m.loa,
            status: MeansStatus::Active,
            valid_from: now,
            valid_until: now + validity,
            version: 1,
        };
        let event = AuditEvent::new(
            crate::audit::catalogue::MEANS_IMPORTED,
            "system:import",
            format!("means:{}", means.id),
            json!({"holder": holder.id, "kind": means.kind, "loa": means.loa, "status": "active",
                       "revocation_secret": revocation.is_some()}),
        );
        store
            .insert_imported_means(&means, &credential, revocation.as_deref(), event)
            .await?;
        report.means += 1;
        report.means_ids.push(means.id.to_string());
    }
    Ok(report)
}
