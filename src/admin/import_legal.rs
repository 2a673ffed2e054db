//! The `legal_persons` and `mandates` sections of `eidgate import` (DESIGN "Admin API and
//! CLI"): legal persons with their attributes, and mandates imported `active`, the import
//! being the operator's act of record. Each item is audited as imported.
//!
//! The same item (issue 24): a legal person by its identifier; a mandate by its legal
//! person and representative (the active, not delegated one). An item already present and
//! equal is left as it is (`unchanged`); one present but different is refused, also with
//! `--update` (legal persons and mandates change through the admin API, with their checks).
//!
//! Also holds the import's error, report and person-resolution types, which `import`
//! re-exports and `import_means` shares.

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::AuditEvent;
use crate::domain::ids::{LegalPersonId, MandateId, PersonIdentifier};
use crate::domain::legal::{LegalAttributes, LegalPerson, Mandate, MandateStatus, RegisterCheck};
use crate::domain::loa::Loa;
use crate::domain::person::NaturalPerson;
use crate::domain::UnixTime;
use crate::store::{Store, StoreError};

/// Import failures; nothing is written when validation fails.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The document does not parse.
    #[error("invalid import document: {0}")]
    Parse(String),
    /// An item is invalid, or present but different.
    #[error("{item}: {why}")]
    Invalid {
        /// Which item: its section and key (`client rp-names`).
        item: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Counts per section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SectionCounts {
    /// Clients.
    pub clients: usize,
    /// Natural persons.
    pub persons: usize,
    /// Legal persons.
    pub legal_persons: usize,
    /// Mandates.
    pub mandates: usize,
    /// Operators.
    pub operators: usize,
    /// Means.
    pub means: usize,
}

/// What was imported: per section the items created, left unchanged (present and equal)
/// and updated (present, different, `--update`). The flat counts are the created ones.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// Items created.
    pub created: SectionCounts,
    /// Items already present and equal: nothing written.
    pub unchanged: SectionCounts,
    /// Items present and different, changed with `--update`.
    pub updated: SectionCounts,
    /// Clients created.
    pub clients: usize,
    /// Persons created.
    pub persons: usize,
    /// Persons already present and equal.
    pub persons_existing: usize,
    /// Legal persons created.
    pub legal_persons: usize,
    /// Legal persons already present and equal.
    pub legal_persons_existing: usize,
    /// Mandates created (active).
    pub mandates: usize,
    /// Mandates already present, active and equal.
    pub mandates_existing: usize,
    /// Operators created.
    pub operators: usize,
    /// Means created.
    pub means: usize,
    /// Ids of the document's means (created or already present), in document order.
    pub means_ids: Vec<String>,
    /// Secrets generated for clients created without one (shown once).
    pub generated_client_secrets: Vec<(String, String)>,
}

/// What happens to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Not present: written and audited as imported.
    Create,
    /// Present and equal: nothing written.
    Unchanged,
    /// Present, different, `--update`: written and audited.
    Update,
}

impl ImportReport {
    /// Counts one item of a section.
    pub(super) fn tally(&mut self, fate: Fate, section: fn(&mut SectionCounts) -> &mut usize) {
        let counts = match fate {
            Fate::Create => &mut self.created,
            Fate::Unchanged => &mut self.unchanged,
            Fate::Update => &mut self.updated,
        };
        *section(counts) += 1;
    }

    /// Fills the flat counts from the per-section ones.
    pub(super) fn finish(&mut self) {
        self.clients = self.created.clients;
        self.persons = self.created.persons;
        self.persons_existing = self.unchanged.persons;
        self.legal_persons = self.created.legal_persons;
        self.legal_persons_existing = self.unchanged.legal_persons;
        self.mandates = self.created.mandates;
        self.mandates_existing = self.unchanged.mandates;
        self.operators = self.created.operators;
        self.means = self.created.means;
    }
}

/// An invalid item of the document.
pub(super) fn invalid(item: impl Into<String>, why: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        item: item.into(),
        why: why.into(),
    }
}

/// The fate of an item present but different from the document: an error naming it
/// unless `update` (and the section can be updated by import at all).
pub(super) fn differs(item: &str, what: &str, update: bool, updatable: bool) -> Result<Fate, ImportError> {
    match (update, updatable) {
        (true, true) => Ok(Fate::Update),
        (false, true) => Err(invalid(
            item,
            format!("already present with a different {what}; run the import with --update to change it"),
        )),
        (_, false) => Err(invalid(
            item,
            format!("already present with a different {what}; the import cannot change it"),
        )),
    }
}

/// Parses the items of one section each on its own, so that an error names the item
/// (`client rp-names: unknown field ...`): `key` is the field naming an item.
pub(super) fn items<T: DeserializeOwned>(
    section: &str,
    key: fn(&Value) -> String,
    values: Vec<Value>,
) -> Result<Vec<(String, T)>, ImportError> {
    values
        .into_iter()
        .enumerate()
        .map(|(n, value)| {
            let name = match key(&value) {
                k if k.trim().is_empty() => format!("{section} #{}", n + 1),
                k => format!("{section} {k}"),
            };
            let item = serde_json::from_value(value).map_err(|e| invalid(&name, e.to_string()))?;
            Ok((name, item))
        })
        .collect()
}

/// The string field `name` of an item, or empty.
pub(super) fn field(value: &Value, name: &str) -> String {
    value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Refuses an item whose key came earlier in its section.
pub(super) fn once(seen: &mut HashSet<String>, item: &str) -> Result<(), ImportError> {
    if seen.insert(item.to_owned()) {
        Ok(())
    } else {
        Err(invalid(item, "appears twice in the document"))
    }
}

/// The natural persons the other sections name: the document's own (as they will be
/// after the import) before the stored ones.
#[derive(Default)]
pub(super) struct Persons {
    /// By identifier: the person and whether it is stored already.
    pub(super) planned: HashMap<PersonIdentifier, (NaturalPerson, bool)>,
}

impl Persons {
    /// The person `identifier` names and whether it is stored already.
    pub(super) async fn resolve(
        &self,
        store: &dyn Store,
        identifier: &PersonIdentifier,
    ) -> Result<Option<(NaturalPerson, bool)>, ImportError> {
        if let Some(found) = self.planned.get(identifier) {
            return Ok(Some(found.clone()));
        }
        Ok(store.person_by_identifier(identifier).await?.map(|p| (p, true)))
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

/// The key naming a legal person item.
pub(super) fn legal_key(value: &Value) -> String {
    field(value, "identifier")
}

/// The key naming a mandate item: `<person> for <legal person>`.
pub(super) fn mandate_key(value: &Value) -> String {
    format!("{} for {}", field(value, "person"), field(value, "legal_person"))
}

/// What the import itself records as the register check when the document gives none.
fn of_record() -> RegisterCheck {
    RegisterCheck {
        source: "eidgate import".into(),
        reference: "operator's act of record".into(),
        legal_person_identifier: None,
    }
}

fn identifier(item: &str, text: &str, what: &str) -> Result<PersonIdentifier, ImportError> {
    text.parse()
        .map_err(|_| invalid(item, format!("malformed {what} identifier {text:?}")))
}

/// The legal persons and mandates to write, each with its fate.
#[derive(Default)]
pub(super) struct LegalPlan {
    legal: Vec<(LegalPerson, Fate)>,
    mandates: Vec<(Mandate, Fate)>,
}

/// Checks the sections against the document's persons and the store; writes nothing.
pub(super) async fn plan(
    store: &dyn Store,
    legal: Vec<(String, LegalPersonEntry)>,
    mandates: Vec<(String, MandateEntry)>,
    persons: &Persons,
    now: UnixTime,
) -> Result<LegalPlan, ImportError> {
    let mut plan = LegalPlan::default();
    let mut seen = HashSet::new();
    let mut planned: HashMap<PersonIdentifier, (LegalPerson, bool)> = HashMap::new();
    for (item, l) in legal {
        once(&mut seen, &item)?;
        let id = identifier(&item, &l.identifier, "legal person")?;
        let bounded = |s: &str| !s.trim().is_empty() && s.len() <= 512;
        if !bounded(&l.legal_name) || l.legal_form.len() > 64 {
            return Err(invalid(&item, "legal_name must be 1 to 512 characters"));
        }
        if l.register.as_ref().is_some_and(|r| !r.is_complete()) {
            return Err(invalid(&item, "register needs source and reference"));
        }
        if let Some(present) = store.legal_person_by_identifier(&id).await? {
            // An omitted register leaves the recorded check as it is.
            let same = present.legal_name == l.legal_name
                && present.legal_form == l.legal_form
                && present.attributes == l.attributes
                && l.register.as_ref().is_none_or(|r| *r == present.register);
            if !same {
                differs(&item, "legal_name, legal_form, attributes or register", false, false)?;
            }
            planned.insert(id, (present.clone(), true));
            plan.legal.push((present, Fate::Unchanged));
            continue;
        }
        let legal = LegalPerson {
            id: LegalPersonId::new(),
            identifier: id.clone(),
            legal_name: l.legal_name,
            legal_form: l.legal_form,
            attributes: l.attributes,
            register: l.register.unwrap_or_else(of_record),
            checked_by: IMPORTER.into(),
            created_at: now,
        };
        planned.insert(id, (legal.clone(), false));
        plan.legal.push((legal, Fate::Create));
    }
    let mut seen = HashSet::new();
    for (item, m) in mandates {
        once(&mut seen, &item)?;
        let person_id = identifier(&item, &m.person, "representative")?;
        let legal_id = identifier(&item, &m.legal_person, "legal person")?;
        if m.valid_until.is_some_and(|t| t <= now) {
            return Err(invalid(&item, "the mandate's valid_until is in the past"));
        }
        if m.verification.as_ref().is_some_and(|r| !r.is_complete()) {
            return Err(invalid(&item, "verification needs source and reference"));
        }
        let (legal, legal_stored) = match planned.get(&legal_id) {
            Some(found) => found.clone(),
            None => store
                .legal_person_by_identifier(&legal_id)
                .await?
                .map(|l| (l, true))
                .ok_or_else(|| invalid(&item, "unknown legal person"))?,
        };
        let (person, person_stored) = persons
            .resolve(store, &person_id)
            .await?
            .ok_or_else(|| invalid(&item, "unknown representative"))?;
        // R-BIND-1: never above the representative's identity proofing.
        if m.loa > person.proofing_loa {
            return Err(invalid(
                &item,
                "the mandate's LoA exceeds the representative's proofing LoA",
            ));
        }
        if legal_stored && person_stored {
            let existing = store.mandates_of_person(person.id).await?;
            if let Some(present) = existing
                .into_iter()
                .find(|x| x.legal_person == legal.id && x.status == MandateStatus::Active && x.delegated_from.is_none())
            {
                let same = present.loa == m.loa
                    && m.valid_until.is_none_or(|t| t == present.valid_until)
                    && m.verification.as_ref().is_none_or(|v| *v == present.verification);
                if !same {
                    differs(&item, "loa, valid_until or verification", false, false)?;
                }
                plan.mandates.push((present, Fate::Unchanged));
                continue;
            }
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
        plan.mandates.push((mandate, Fate::Create));
    }
    Ok(plan)
}

/// Writes the planned legal persons (after the persons) and then the mandates.
pub(super) async fn write(store: &dyn Store, plan: LegalPlan, report: &mut ImportReport) -> Result<(), ImportError> {
    for (legal, fate) in plan.legal {
        report.tally(fate, |c| &mut c.legal_persons);
        if fate != Fate::Create {
            continue;
        }
        let event = AuditEvent::new(
            crate::audit::catalogue::LEGAL_PERSON_IMPORTED,
            IMPORTER,
            format!("legal_person:{}", legal.id),
            json!({"register": legal.register.source, "reference": legal.register.reference}),
        );
        store.insert_legal_person(&legal, event).await?;
    }
    for (mandate, fate) in plan.mandates {
        report.tally(fate, |c| &mut c.mandates);
        if fate != Fate::Create {
            continue;
        }
        let event = AuditEvent::new(
            crate::audit::catalogue::MANDATE_IMPORTED,
            IMPORTER,
            format!("mandate:{}", mandate.id),
            json!({"legal_person": mandate.legal_person.to_string(), "representative": mandate.person.to_string(),
                   "loa": mandate.loa, "status": "active", "valid_until": mandate.valid_until}),
        );
        store.insert_mandate(&mandate, event).await?;
    }
    Ok(())
}
