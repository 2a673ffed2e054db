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
    /// Current address (OIDC address object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<serde_json::Value>,
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
