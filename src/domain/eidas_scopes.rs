//! Scopes of the eIDAS-Node OpenID Connect proxy profile: one scope per eIDAS attribute,
//! `eidas:attribute:<name>`, each standing for the claims of the minimum data set that
//! carry it (DESIGN "Claims"). What a scope asks for is still released only within the
//! client's allow list (R-DATA-4).

/// Prefix of the attribute scopes.
pub const PREFIX: &str = "eidas:attribute:";

/// `eidas:attribute:<attribute>` → the claims it releases (natural person).
pub const NATURAL: [(&str, &[&str]); 8] = [
    ("first_name", &["given_name"]),
    ("family_name", &["family_name"]),
    ("date_of_birth", &["birthdate"]),
    ("person_identifier", &["person_identifier"]),
    ("birth_name", &["birth_family_name", "birth_given_name"]),
    ("place_of_birth", &["place_of_birth"]),
    ("current_address", &["address"]),
    ("gender", &["gender"]),
];

/// `eidas:attribute:<attribute>` → the claims it releases (legal person, when the holder
/// acts under a mandate).
pub const LEGAL: [(&str, &[&str]); 10] = [
    ("legal_person_identifier", &["legal_person_identifier"]),
    ("legal_name", &["legal_name"]),
    ("legal_address", &["legal_address"]),
    ("vat_registration", &["vat_number"]),
    ("tax_reference", &["tax_reference"]),
    ("eu_identifier", &["euid"]),
    ("lei", &["lei"]),
    ("eori", &["eori"]),
    ("seed", &["seed"]),
    ("sic", &["sic"]),
];

/// The claims an attribute scope stands for; `None` for any other scope.
pub fn claims_of(scope: &str) -> Option<&'static [&'static str]> {
    let name = scope.strip_prefix(PREFIX)?;
    NATURAL
        .iter()
        .chain(LEGAL.iter())
        .find(|(attribute, _)| *attribute == name)
        .map(|(_, claims)| *claims)
}

/// Whether `scope` is a legal-person attribute scope (the holder must act for one).
pub fn is_legal(scope: &str) -> bool {
    scope
        .strip_prefix(PREFIX)
        .is_some_and(|name| LEGAL.iter().any(|(attribute, _)| *attribute == name))
}

/// Every attribute scope (discovery `scopes_supported`).
pub fn all() -> impl Iterator<Item = String> {
    NATURAL
        .iter()
        .chain(LEGAL.iter())
        .map(|(attribute, _)| format!("{PREFIX}{attribute}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_data_4_attribute_scopes_map_onto_the_minimum_data_set() {
        assert_eq!(claims_of("eidas:attribute:first_name"), Some(&["given_name"][..]));
        assert_eq!(claims_of("eidas:attribute:date_of_birth"), Some(&["birthdate"][..]));
        assert_eq!(claims_of("eidas:attribute:legal_name"), Some(&["legal_name"][..]));
        assert_eq!(claims_of("eidas:attribute:nonsense"), None);
        assert_eq!(claims_of("first_name"), None);
        assert!(is_legal("eidas:attribute:legal_person_identifier"));
        assert!(!is_legal("eidas:attribute:person_identifier"));
        for (_, claims) in NATURAL {
            assert!(
                claims.iter().all(|c| super::super::claims::EIDAS_NATURAL.contains(c)),
                "{claims:?}"
            );
        }
        for (_, claims) in LEGAL {
            assert!(
                claims.iter().all(|c| super::super::legal::LEGAL_CLAIMS.contains(c)),
                "{claims:?}"
            );
        }
        assert_eq!(all().count(), 18);
    }
}
