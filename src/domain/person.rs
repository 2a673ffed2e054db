//! Natural persons with the eIDAS minimum data set (R-DATA-1, R-REG-2).

use serde::{Deserialize, Serialize};

use super::ids::{PersonId, PersonIdentifier};
use super::loa::Loa;

/// A natural person in the registry. Names keep their original script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NaturalPerson {
    /// Internal id.
    pub id: PersonId,
    /// Stable national identifier (country + code).
    pub identifier: PersonIdentifier,
    /// Current first name(s).
    pub given_name: String,
    /// Current family name(s).
    pub family_name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birthdate: String,
    /// The LoA at which the person's identity was proofed; no means may exceed it.
    pub proofing_loa: Loa,
    /// Optional eIDAS attributes (birth names, place of birth, address, gender, ...).
    pub attributes: OptionalAttributes,
}

/// The optional attributes of the natural person minimum data set (R-DATA-1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionalAttributes {
    /// First name(s) at birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_given_name: Option<String>,
    /// Family name(s) at birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_family_name: Option<String>,
    /// Place of birth as `{country, region, locality}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_birth: Option<serde_json::Value>,
    /// Current address (OIDC address object); also the postal contact point for
    /// delivery (R-ISS-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<serde_json::Value>,
    /// Registered e-mail address (a delivery contact point, never a claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Registered phone number for SMS (a delivery contact point, never a claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Latin transliteration of the given name when the original script differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name_latin: Option<String>,
    /// Latin transliteration of the family name when the original script differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name_latin: Option<String>,
}

/// How an identity was proofed (R-REG-3, R-REG-4): recorded as facts, never as a copy
/// of a document (there is no field that could hold one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Proofing {
    /// An identity document was checked.
    Document {
        /// e.g. `passport`, `id_card`, `residence_permit`.
        document_type: String,
        /// The document number.
        document_number: String,
        /// Issuing state (ISO 3166-1 alpha-2).
        issuing_state: String,
        /// Last day of validity, `YYYY-MM-DD`.
        valid_until: String,
        /// How it was checked, e.g. `in_person_visual_and_chip`.
        checked_how: String,
    },
    /// An earlier means of the same or a higher LoA was used instead (R-REG-4).
    EarlierMeans {
        /// That means.
        means: super::ids::MeansId,
        /// Its LoA.
        loa: Loa,
    },
}

/// A proofing record: the facts, the LoA they support, who checked them and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofingRecord {
    /// The facts.
    pub proofing: Proofing,
    /// The LoA the proofing reached.
    pub loa: Loa,
    /// The operator who checked.
    pub checked_by: PersonId,
    /// When (UTC seconds).
    pub checked_at: i64,
}

/// Checks a `YYYY-MM-DD` date of birth.
pub fn valid_birthdate(value: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_reg_2_birthdate_is_a_calendar_date() {
        assert!(valid_birthdate("1980-01-08"));
        assert!(!valid_birthdate("1980-02-30"));
        assert!(!valid_birthdate("08.01.1980"));
    }
}
