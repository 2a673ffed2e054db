//! The `legal_persons` and `mandates` sections of `eidgate import` (DESIGN "Admin API and
//! CLI"): legal persons with their attributes, and mandates imported `active`, the import
//! being the operator's act of record. Each item is audited as imported; an item already
//! present (same identifier; an active mandate of the same representative for the same
//! legal person) is left as it is, so an import can be run again.
//!
//! Also holds the import's error and report types, which `import` re-exports.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::AuditEvent;
use crate::domain::ids::{LegalPersonId, MandateId, PersonIdentifier};
use crate::domain::legal::{LegalAttributes, LegalPerson, Mandate, MandateStatus, RegisterCheck};
use crate::domain::loa::Loa;
use crate::domain::UnixTime;
use crate::store::{Store, StoreError};

/// Import failures; nothing is written when validation fails.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The document does not parse.
    #[error("invalid import document: {0}")]
    Parse(String),
    /// An item is invalid.
    #[error("{item}: {why}")]
    Invalid {
        /// Which item.
        item: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What was imported.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// Clients written.
    pub clients: usize,
    /// Persons written.
    pub persons: usize,
    /// Persons already present (left unchanged).
    pub persons_existing: usize,
    /// Legal persons written.
    pub legal_persons: usize,
    /// Legal persons already present (left unchanged).
    pub legal_persons_existing: usize,
    /// Mandates written (active).
    pub mandates: usize,
    /// Mandates already present and active (left unchanged).
    pub mandates_existing: usize,
    /// Operators written.
    pub operators: usize,
    /// Means written.
    pub means: usize,
    /// Ids of the imported means, in document order.
    pub means_ids: Vec<String>,
    /// Secrets generated for clients that had none (shown once).
    pub generated_client_secrets: Vec<(String, String)>,
}

/// An invalid item of the document.
pub(super) fn invalid(item: impl Into<String>, why: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        item: item.into(),
        why: why.into(),
    }
}

/// Default mandate validity when none is given: one year.
const YEAR: i64 = 365 * 86_400;

/// Who recorded imported items.
const IMPORTER: &str = "system:import";

/// `{"identifier", "legal_name", "legal_form"?, "register"?, ...optional attributes}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LegalPersonEntry {
    identifier: String,
    legal_name: String,
    #[serde(default)]
    legal_form: String,
    register: Option<RegisterCheck>,
    #[serde(flatten)]
    attributes: LegalAttributes,
}

/// `{"person", "legal_person", "loa", "valid_until"?, "verification"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MandateEntry {
    person: String,
    legal_person: String,
    loa: Loa,
    valid_until: Option<UnixTime>,
    verification: Option<RegisterCheck>,
}

/// What the import itself records as the register check when the document gives none.
fn of_record() -> RegisterCheck {
    RegisterCheck {
        source: "eidgate import".into(),
        reference: "operator's act of record".into(),
        legal_person_identifier: None,
    }
}

fn identifier(text: &str, what: &str) -> Result<PersonIdentifier, ImportError> {
    text.parse()
        .map_err(|_| invalid(text, format!("malformed {what} identifier")))
}

/// Checks the sections before anything is written.
pub(super) fn validate(
    legal: &[LegalPersonEntry],
    mandates: &[MandateEntry],
    now: UnixTime,
) -> Result<(), ImportError> {
    for l in legal {
        identifier(&l.identifier, "legal person")?;
        let bounded = |s: &str| !s.trim().is_empty() && s.len() <= 512;
        if !bounded(&l.legal_name) || l.legal_form.len() > 64 {
            return Err(invalid(&l.identifier, "legal_name must be 1 to 512 characters"));
        }
        if l.register.as_ref().is_some_and(|r| !r.is_complete()) {
            return Err(invalid(&l.identifier, "register needs source and reference"));
        }
    }
    for m in mandates {
        identifier(&m.person, "representative")?;
        identifier(&m.legal_person, "legal person")?;
        if m.valid_until.is_some_and(|t| t <= now) {
            return Err(invalid(&m.person, "the mandate's valid_until is in the past"));
        }
        if m.verification.as_ref().is_some_and(|r| !r.is_complete()) {
            return Err(invalid(&m.person, "verification needs source and reference"));
        }
    }
    Ok(())
}

/// Writes the legal persons (after the persons) and then the mandates.
pub(super) async fn write(
    store: &dyn Store,
    legal: Vec<LegalPersonEntry>,
    mandates: Vec<MandateEntry>,
    now: UnixTime,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    for l in legal {
        let id = identifier(&l.identifier, "legal person")?;
        if store.legal_person_by_identifier(&id).await?.is_some() {
            report.legal_persons_existing += 1;
            continue;
        }
        let legal = LegalPerson {
            id: LegalPersonId::new(),
            identifier: id,
            legal_name: l.legal_name,
            legal_form: l.legal_form,
            attributes: l.attributes,
            register: l.register.unwrap_or_else(of_record),
            checked_by: IMPORTER.into(),
            created_at: now,
        };
        let event = AuditEvent::new(
            crate::audit::catalogue::LEGAL_PERSON_IMPORTED,
            IMPORTER,
            format!("legal_person:{}", legal.id),
            json!({"register": legal.register.source, "reference": legal.register.reference}),
        );
        store.insert_legal_person(&legal, event).await?;
        report.legal_persons += 1;
    }
    for m in mandates {
        let legal = store
            .legal_person_by_identifier(&identifier(&m.legal_person, "legal person")?)
            .await?
            .ok_or_else(|| invalid(&m.legal_person, "unknown legal person"))?;
        let person = store
            .person_by_identifier(&identifier(&m.person, "representative")?)
            .await?
            .ok_or_else(|| invalid(&m.person, "unknown representative"))?;
        // R-BIND-1: never above the representative's identity proofing.
        if m.loa > person.proofing_loa {
            return Err(invalid(
                &m.person,
                "the mandate's LoA exceeds the representative's proofing LoA",
            ));
        }
        let existing = store.mandates_of_person(person.id).await?;
        if existing
            .iter()
            .any(|x| x.legal_person == legal.id && x.status == MandateStatus::Active && x.delegated_from.is_none())
        {
            report.mandates_existing += 1;
            continue;
        }
        let mandate = Mandate {
            id: MandateId::new(),
            legal_person: legal.id,
            person: person.id,
            loa: m.loa,
            status: MandateStatus::Active,
            valid_from: now,
            valid_until: m.valid_until.unwrap_or(now + YEAR),
            delegated_from: None,
            delegated_by: None,
            verification: m.verification.unwrap_or_else(of_record),
            version: 1,
            created_at: now,
        };
        let event = AuditEvent::new(
            crate::audit::catalogue::MANDATE_IMPORTED,
            IMPORTER,
            format!("mandate:{}", mandate.id),
            json!({"legal_person": legal.id.to_string(), "representative": person.id.to_string(),
                   "loa": mandate.loa, "status": "active", "valid_until": mandate.valid_until}),
        );
        store.insert_mandate(&mandate, event).await?;
        report.mandates += 1;
    }
    Ok(())
}
