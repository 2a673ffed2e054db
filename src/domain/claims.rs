//! The eIDAS minimum data set as OIDC claims (R-AUTH-2, R-DATA-1, R-DATA-3, R-DATA-4).
//! Claim names are a CONTRACT (DESIGN "Claims"). A claim is released only when it was
//! requested (by scope or the `claims` parameter) **and** is on the client's allow list;
//! empty values are never sent.

use serde_json::{Map, Value};

use super::person::NaturalPerson;

/// Natural-person claims released by scope `eidas` (mandatory + optional attributes).
pub const EIDAS_NATURAL: [&str; 12] = [
    "person_identifier",
    "family_name",
    "given_name",
    "birthdate",
    "birth_family_name",
    "birth_given_name",
    "place_of_birth",
    "address",
    "gender",
    "given_name_latin",
    "family_name_latin",
    "sub",
];

/// Claims of scope `profile` (OIDC Core §5.4) that eidgate can fill.
pub const PROFILE: [&str; 6] = [
    "family_name",
    "given_name",
    "birthdate",
    "gender",
    "given_name_latin",
    "family_name_latin",
];

/// Every natural-person claim eidgate knows.
pub fn all_natural(person: &NaturalPerson, destination_country: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            let empty = matches!(&v, Value::String(s) if s.is_empty()) || v.is_null();
            if !empty {
                m.insert(name.to_owned(), v);
            }
        }
    };
    put(
        "person_identifier",
        Some(Value::String(person.identifier.eidas_form(destination_country))),
    );
    put("family_name", Some(Value::String(person.family_name.clone())));
    put("given_name", Some(Value::String(person.given_name.clone())));
    put("birthdate", Some(Value::String(person.birthdate.clone())));
    let a = &person.attributes;
    put("birth_family_name", a.birth_family_name.clone().map(Value::String));
    put("birth_given_name", a.birth_given_name.clone().map(Value::String));
    put("place_of_birth", a.place_of_birth.clone());
    put("address", a.address.clone());
    put("gender", a.gender.clone().map(Value::String));
    put("given_name_latin", a.given_name_latin.clone().map(Value::String));
    put("family_name_latin", a.family_name_latin.clone().map(Value::String));
    m
}

/// The claim names requested by `scopes` plus `individually` requested names.
pub fn requested_names<'a>(scopes: impl Iterator<Item = &'a str>, individually: &'a [String]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for scope in scopes {
        match scope {
            "eidas" => names.extend(EIDAS_NATURAL),
            "eidas_legal" => names.extend(super::legal::LEGAL_CLAIMS),
            "profile" => names.extend(PROFILE),
            other => names.extend(super::eidas_scopes::claims_of(other).unwrap_or_default()),
        }
    }
    names.extend(individually.iter().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    names
}

/// Releases the requested claims that the client is allowed to receive (R-DATA-4).
pub fn release(available: &Map<String, Value>, requested: &[&str], allowed: &[String]) -> Map<String, Value> {
    requested
        .iter()
        .filter(|name| allowed.iter().any(|a| a == *name))
        .filter_map(|name| available.get(*name).map(|v| ((*name).to_owned(), v.clone())))
        .collect()
}

/// The claim names a login would release to `client` (requested and allowed, `sub`
/// aside); legal claims only when the holder acts for a legal person. The consent page
/// lists exactly these (R-DATA-4).
pub fn to_release<'a>(requested: &[&'a str], allowed: &[String], with_legal: bool) -> Vec<&'a str> {
    requested
        .iter()
        .copied()
        .filter(|name| *name != "sub" && allowed.iter().any(|a| a == name))
        .filter(|name| with_legal || !super::legal::LEGAL_CLAIMS.contains(name))
        .collect()
}

/// Whether the holder must be asked before `names` go to the client: never for a
/// first-party client, at every login for `always`, otherwise when `prompt=consent` was
/// asked or the stored consent does not cover every name (first time per client and
/// attribute set). Nothing to release needs no consent.
pub fn needs_consent(
    mode: super::client::ConsentMode,
    prompt_consent: bool,
    stored: Option<&[String]>,
    names: &[&str],
) -> bool {
    use super::client::ConsentMode;
    if names.is_empty() {
        return false;
    }
    match mode {
        ConsentMode::Never => false,
        ConsentMode::Always => true,
        ConsentMode::Once => {
            prompt_consent || !stored.is_some_and(|given| names.iter().all(|n| given.iter().any(|g| g == n)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::PersonId;
    use crate::domain::loa::Loa;
    use crate::domain::person::OptionalAttributes;

    fn person() -> NaturalPerson {
        NaturalPerson {
            id: PersonId::new(),
            identifier: "LT/LT/38001085718".parse().unwrap(),
            given_name: "Jonas".into(),
            family_name: "Jonaitis".into(),
            birthdate: "1980-01-08".into(),
            proofing_loa: Loa::High,
            attributes: OptionalAttributes {
                gender: Some(String::new()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn r_auth_2_r_data_4_only_requested_and_allowed_claims_are_released() {
        let all = all_natural(&person(), "LV");
        let requested = requested_names(["openid", "eidas"].into_iter(), &[]);
        let allowed = vec!["given_name".to_owned(), "family_name".to_owned()];
        let out = release(&all, &requested, &allowed);
        assert_eq!(out.len(), 2);
        assert!(!out.contains_key("birthdate"));
    }

    #[test]
    fn r_data_4_consent_first_time_per_attribute_set_or_always() {
        use crate::domain::client::ConsentMode;
        let given = vec!["family_name".to_owned(), "given_name".to_owned()];
        assert!(needs_consent(ConsentMode::Once, false, None, &["given_name"]));
        assert!(!needs_consent(ConsentMode::Once, false, Some(&given), &["given_name"]));
        assert!(needs_consent(
            ConsentMode::Once,
            false,
            Some(&given),
            &["given_name", "birthdate"]
        ));
        assert!(needs_consent(ConsentMode::Once, true, Some(&given), &["given_name"]));
        assert!(needs_consent(ConsentMode::Always, false, Some(&given), &["given_name"]));
        assert!(!needs_consent(ConsentMode::Never, true, None, &["given_name"]));
        assert!(!needs_consent(ConsentMode::Always, false, None, &[]));
    }

    #[test]
    fn r_data_4_release_list_excludes_sub_unallowed_and_legal_without_mandate() {
        let requested = requested_names(["openid", "eidas", "eidas_legal"].into_iter(), &[]);
        let allowed = vec!["given_name".to_owned(), "legal_name".to_owned(), "sub".to_owned()];
        assert_eq!(to_release(&requested, &allowed, false), vec!["given_name"]);
        assert_eq!(to_release(&requested, &allowed, true), vec!["given_name", "legal_name"]);
    }

    #[test]
    fn r_data_1_r_data_3_mandatory_attributes_identifier_per_destination_and_no_empty_values() {
        let all = all_natural(&person(), "LV");
        assert_eq!(all["person_identifier"], "LT/LV/38001085718");
        assert_eq!(all["family_name"], "Jonaitis");
        assert_eq!(all["given_name"], "Jonas");
        assert_eq!(all["birthdate"], "1980-01-08");
        assert!(!all.contains_key("gender"));
    }
}
