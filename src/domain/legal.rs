//! Legal persons (R-REG-5, R-DATA-2) and mandates: the binding of a natural person to a
//! legal person, with its own lifecycle and LoA (R-BIND-1).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use super::ids::{LegalPersonId, MandateId};
use super::ids::{PersonId, PersonIdentifier};
use super::loa::Loa;
use super::UnixTime;

/// Where a legal person (or a binding) was checked: the authoritative register and the
/// reference of the check (R-REG-5, R-BIND-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterCheck {
    /// The register, e.g. `LT Register of Legal Entities`.
    pub source: String,
    /// The reference of the extract or query.
    pub reference: String,
    /// The legal person's unique identifier as the register gave it (required at high).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_person_identifier: Option<String>,
}

impl RegisterCheck {
    /// Both fields present and of sane length.
    pub fn is_complete(&self) -> bool {
        let ok = |s: &str| !s.trim().is_empty() && s.len() <= 256;
        ok(&self.source) && ok(&self.reference)
    }
}

/// Optional legal-person attributes (R-DATA-2; SIC as the eIDAS SAML profile's extra).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalAttributes {
    /// Current address (OIDC address object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_address: Option<Value>,
    /// VAT registration number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_number: Option<String>,
    /// Tax reference number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_reference: Option<String>,
    /// European Unique Identifier (Directive 2012/17/EU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub euid: Option<String>,
    /// Legal Entity Identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lei: Option<String>,
    /// Economic Operator Registration and Identification number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eori: Option<String>,
    /// System for Exchange of Excise Data identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Standard Industrial Classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sic: Option<String>,
}

/// A legal person, checked against an authoritative register (R-REG-5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalPerson {
    /// Internal id.
    pub id: LegalPersonId,
    /// Unique identifier (issuing country + registration code); the eIDAS form
    /// `XX/YY/zzzz` is derived per relying party (R-DATA-3).
    #[serde(with = "identifier_text")]
    pub identifier: PersonIdentifier,
    /// Current legal name.
    pub legal_name: String,
    /// Legal form (e.g. `UAB`, `SIA`, `GmbH`).
    pub legal_form: String,
    /// Optional attributes.
    pub attributes: LegalAttributes,
    /// The register check.
    pub register: RegisterCheck,
    /// The operator who recorded it (`operator:<person id>`).
    pub checked_by: String,
    /// When it was recorded.
    pub created_at: UnixTime,
}

mod identifier_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::ids::PersonIdentifier;

    pub fn serialize<S: Serializer>(id: &PersonIdentifier, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PersonIdentifier, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The legal claims (R-DATA-2), named as DESIGN "Claims" says.
pub const LEGAL_CLAIMS: [&str; 10] = [
    "legal_person_identifier",
    "legal_name",
    "legal_address",
    "vat_number",
    "tax_reference",
    "euid",
    "lei",
    "eori",
    "seed",
    "sic",
];

impl LegalPerson {
    /// Every legal claim with a value, `legal_person_identifier` in the eIDAS form for
    /// `destination`; empty values are never sent.
    pub fn claims(&self, destination: &str) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(v) = value {
                let empty = v.is_null() || matches!(&v, Value::String(s) if s.trim().is_empty());
                if !empty {
                    m.insert(name.to_owned(), v);
                }
            }
        };
        put(
            "legal_person_identifier",
            Some(Value::String(self.identifier.eidas_form(destination))),
        );
        put("legal_name", Some(Value::String(self.legal_name.clone())));
        let a = &self.attributes;
        put("legal_address", a.legal_address.clone());
        for (name, value) in [
            ("vat_number", &a.vat_number),
            ("tax_reference", &a.tax_reference),
            ("euid", &a.euid),
            ("lei", &a.lei),
            ("eori", &a.eori),
            ("seed", &a.seed),
            ("sic", &a.sic),
        ] {
            put(name, value.clone().map(Value::String));
        }
        m
    }
}

/// The state of a mandate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MandateStatus {
    /// Created, delegated or asked to be reactivated by one registration officer; not
    /// usable until a second officer approves it (R-BIND-1, R-SEC-3).
    Applied,
    /// The representative may act.
    Active,
    /// Temporarily not usable; may be reactivated.
    Suspended,
    /// Final.
    Revoked,
    /// Its validity ended (final).
    Expired,
}

impl MandateStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MandateStatus::Applied => "applied",
            MandateStatus::Active => "active",
            MandateStatus::Suspended => "suspended",
            MandateStatus::Revoked => "revoked",
            MandateStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for MandateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MandateStatus {
    type Err = MandateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "applied" => Ok(MandateStatus::Applied),
            "active" => Ok(MandateStatus::Active),
            "suspended" => Ok(MandateStatus::Suspended),
            "revoked" => Ok(MandateStatus::Revoked),
            "expired" => Ok(MandateStatus::Expired),
            _ => Err(MandateError::UnknownStatus),
        }
    }
}

/// A change to a mandate's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MandateAction {
    /// active → suspended.
    Suspend,
    /// active|suspended → revoked.
    Revoke,
    /// suspended → applied (a second officer's approval makes it active again).
    Reactivate,
    /// applied → active, by a second registration officer.
    Approve,
}

/// Errors of mandate rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MandateError {
    /// Not a mandate state.
    #[error("unknown mandate status")]
    UnknownStatus,
    /// The transition is not allowed from the current state.
    #[error("a {0} mandate cannot be {1}")]
    Transition(MandateStatus, &'static str),
    /// R-BIND-1: the representative's proofing LoA is below the binding's LoA.
    #[error("the representative's identity proofing is below the mandate's level of assurance")]
    ProofingBelowLoa,
    /// R-BIND-1: at substantial and high the binding must be checked against a register,
    /// at high with the legal person's unique identifier.
    #[error("{0}")]
    Verification(&'static str),
    /// A delegated mandate cannot exceed its source.
    #[error("a delegation cannot exceed the delegator's mandate")]
    DelegationExceeds,
    /// Validity interval is empty or beyond the delegator's.
    #[error("the validity period is invalid")]
    Validity,
}

/// A binding of a natural person to a legal person (R-BIND-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mandate {
    /// Id.
    pub id: MandateId,
    /// The legal person represented.
    pub legal_person: LegalPersonId,
    /// The representative.
    pub person: PersonId,
    /// The mandate's LoA: it may be used only after a login at this level or higher.
    pub loa: Loa,
    /// Stored state.
    pub status: MandateStatus,
    /// Validity start.
    pub valid_from: UnixTime,
    /// Validity end.
    pub valid_until: UnixTime,
    /// The mandate this one was delegated from; responsibility stays with its holder.
    pub delegated_from: Option<MandateId>,
    /// The delegator (kept on record).
    pub delegated_by: Option<PersonId>,
    /// The register check of the binding.
    pub verification: RegisterCheck,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Created.
    pub created_at: UnixTime,
}

impl Mandate {
    /// The state at `now`: an active mandate past its validity is expired.
    pub fn status_at(&self, now: UnixTime) -> MandateStatus {
        match self.status {
            MandateStatus::Active if now >= self.valid_until => MandateStatus::Expired,
            MandateStatus::Active if now < self.valid_from => MandateStatus::Suspended,
            MandateStatus::Applied if now >= self.valid_until => MandateStatus::Expired,
            other => other,
        }
    }

    /// Usable by a login that reached `achieved` at `now` (the delegation chain is
    /// checked by the caller, link by link).
    pub fn usable(&self, now: UnixTime, achieved: Loa) -> bool {
        self.status_at(now) == MandateStatus::Active && self.loa <= achieved
    }

    /// The state after `action`, or why not.
    pub fn transition(&self, action: MandateAction, now: UnixTime) -> Result<MandateStatus, MandateError> {
        let current = self.status_at(now);
        match (current, action) {
            (MandateStatus::Active, MandateAction::Suspend) => Ok(MandateStatus::Suspended),
            (MandateStatus::Active | MandateStatus::Suspended | MandateStatus::Applied, MandateAction::Revoke) => {
                Ok(MandateStatus::Revoked)
            }
            (MandateStatus::Suspended, MandateAction::Reactivate) if now < self.valid_until => {
                Ok(MandateStatus::Applied)
            }
            (MandateStatus::Applied, MandateAction::Approve) if now < self.valid_until => Ok(MandateStatus::Active),
            (s, a) => Err(MandateError::Transition(
                s,
                match a {
                    MandateAction::Suspend => "suspended",
                    MandateAction::Revoke => "revoked",
                    MandateAction::Reactivate => "reactivated",
                    MandateAction::Approve => "approved",
                },
            )),
        }
    }
}

/// R-BIND-1 checks of a new binding: the representative's proofing LoA covers the
/// binding's LoA; at substantial and high the binding was checked against an
/// authoritative register; at high with the legal person's unique identifier.
pub fn check_binding(
    loa: Loa,
    representative_proofing: Loa,
    legal_person: &LegalPerson,
    check: &RegisterCheck,
) -> Result<(), MandateError> {
    if representative_proofing < loa {
        return Err(MandateError::ProofingBelowLoa);
    }
    if loa >= Loa::Substantial && !check.is_complete() {
        return Err(MandateError::Verification(
            "a binding at substantial or high must be checked against an authoritative register",
        ));
    }
    if loa == Loa::High {
        let given = check
            .legal_person_identifier
            .as_deref()
            .and_then(|t| t.parse::<PersonIdentifier>().ok());
        if given.as_ref() != Some(&legal_person.identifier) {
            return Err(MandateError::Verification(
                "a binding at high must be verified with the legal person's unique identifier",
            ));
        }
    }
    Ok(())
}

/// A delegation stays within the delegator's mandate: not above its LoA, not beyond its
/// validity.
pub fn check_delegation(source: &Mandate, loa: Loa, valid_until: UnixTime, now: UnixTime) -> Result<(), MandateError> {
    if source.status_at(now) != MandateStatus::Active {
        return Err(MandateError::Transition(source.status_at(now), "delegated"));
    }
    if loa > source.loa {
        return Err(MandateError::DelegationExceeds);
    }
    if valid_until > source.valid_until || valid_until <= now {
        return Err(MandateError::Validity);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn legal() -> LegalPerson {
        LegalPerson {
            id: LegalPersonId::new(),
            identifier: "LT/LT/304123456".parse().unwrap(),
            legal_name: "UAB Pavyzdys".into(),
            legal_form: "UAB".into(),
            attributes: LegalAttributes {
                vat_number: Some("LT100001234567".into()),
                lei: Some(String::new()),
                ..Default::default()
            },
            register: RegisterCheck {
                source: "Registrų centras".into(),
                reference: "JAR-2026-1".into(),
                legal_person_identifier: None,
            },
            checked_by: "operator:x".into(),
            created_at: 0,
        }
    }

    fn mandate(loa: Loa) -> Mandate {
        Mandate {
            id: MandateId::new(),
            legal_person: LegalPersonId::new(),
            person: PersonId::new(),
            loa,
            status: MandateStatus::Active,
            valid_from: 0,
            valid_until: 1000,
            delegated_from: None,
            delegated_by: None,
            verification: legal().register,
            version: 1,
            created_at: 0,
        }
    }

    #[test]
    fn r_data_2_r_data_3_legal_claims_in_eidas_form_without_empty_values() {
        let c = legal().claims("LV");
        assert_eq!(c["legal_person_identifier"], "LT/LV/304123456");
        assert_eq!(c["legal_name"], "UAB Pavyzdys");
        assert_eq!(c["vat_number"], "LT100001234567");
        assert!(!c.contains_key("lei"));
        assert!(!c.contains_key("euid"));
    }

    #[test]
    fn r_bind_1_mandate_lifecycle_and_loa() {
        let m = mandate(Loa::Substantial);
        assert!(m.usable(10, Loa::High));
        assert!(m.usable(10, Loa::Substantial));
        assert!(!m.usable(10, Loa::Low));
        assert_eq!(m.status_at(1000), MandateStatus::Expired);
        assert!(!m.usable(1000, Loa::High));
        assert_eq!(m.transition(MandateAction::Suspend, 10), Ok(MandateStatus::Suspended));
        assert!(m.transition(MandateAction::Reactivate, 10).is_err());
        let mut s = m.clone();
        s.status = MandateStatus::Suspended;
        assert!(!s.usable(10, Loa::High));
        assert_eq!(s.transition(MandateAction::Reactivate, 10), Ok(MandateStatus::Applied));
        let mut a = m.clone();
        a.status = MandateStatus::Applied;
        assert!(!a.usable(10, Loa::High), "R-SEC-3: an applied mandate is not usable");
        assert_eq!(a.transition(MandateAction::Approve, 10), Ok(MandateStatus::Active));
        assert!(m.transition(MandateAction::Approve, 10).is_err());
        assert_eq!(s.transition(MandateAction::Revoke, 10), Ok(MandateStatus::Revoked));
        s.status = MandateStatus::Revoked;
        assert!(s.transition(MandateAction::Reactivate, 10).is_err());
    }

    #[test]
    fn r_bind_1_r_reg_5_binding_checks_by_level() {
        let lp = legal();
        let mut check = lp.register.clone();
        assert_eq!(
            check_binding(Loa::High, Loa::Substantial, &lp, &check),
            Err(MandateError::ProofingBelowLoa)
        );
        assert!(check_binding(Loa::Substantial, Loa::High, &lp, &check).is_ok());
        assert!(check_binding(Loa::High, Loa::High, &lp, &check).is_err());
        check.legal_person_identifier = Some("LT/LT/304123456".into());
        assert!(check_binding(Loa::High, Loa::High, &lp, &check).is_ok());
        let empty = RegisterCheck {
            source: " ".into(),
            reference: String::new(),
            legal_person_identifier: None,
        };
        assert!(check_binding(Loa::Substantial, Loa::High, &lp, &empty).is_err());
        assert!(check_binding(Loa::Low, Loa::Low, &lp, &empty).is_ok());
    }

    #[test]
    fn r_bind_1_delegation_stays_within_the_source() {
        let m = mandate(Loa::Substantial);
        assert!(check_delegation(&m, Loa::Substantial, 900, 10).is_ok());
        assert_eq!(
            check_delegation(&m, Loa::High, 900, 10),
            Err(MandateError::DelegationExceeds)
        );
        assert_eq!(check_delegation(&m, Loa::Low, 2000, 10), Err(MandateError::Validity));
    }
}
