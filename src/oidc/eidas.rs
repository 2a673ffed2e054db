//! The eIDAS-Node proxy profile: an eIDAS-Node's SpecificProxyService in front of this
//! provider asks for attributes with `eidas:attribute:*` scopes
//! ([`crate::domain::eidas_scopes`]) and for its level with `acr_values` made of the eIDAS
//! LoA URIs. A client registered with `eidas_node = true` must send them; a holder whose
//! means does not reach the level ends with `unmet_authentication_requirements`, never
//! with a lower `acr` (DESIGN "OIDC"). The attributes asked for by scope travel in the ID
//! token as well as at userinfo, since a proxy service reads them from the ID token.

use super::error::OAuthError;
use super::params::Params;
use crate::domain::eidas_scopes;
use crate::domain::loa::Loa;

/// An `eidas_node` client's `acr_values`: present, and every value an eIDAS LoA URI.
pub fn check_node_acr(params: &Params) -> Result<(), OAuthError> {
    let values: Vec<&str> = params
        .get("acr_values")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    let uris = Loa::ALL.map(Loa::uri);
    if values.is_empty() || values.iter().any(|v| !uris.contains(v)) {
        return Err(OAuthError::invalid_request(
            "an eIDAS-Node client must send acr_values with eIDAS LoA URIs (http://eidas.europa.eu/LoA/low|substantial|high)",
        ));
    }
    Ok(())
}

/// The attribute scopes among `scope` (their claims also go into the ID token).
pub fn attribute_scopes(scope: &[String]) -> Vec<String> {
    scope
        .iter()
        .filter(|s| eidas_scopes::claims_of(s).is_some())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_clients_must_ask_with_eidas_loa_uris() {
        let ok = Params::from_pairs([(
            "acr_values".to_owned(),
            "http://eidas.europa.eu/LoA/substantial".to_owned(),
        )]);
        assert!(check_node_acr(&ok).is_ok());
        assert!(check_node_acr(&Params::default()).is_err());
        let short = Params::from_pairs([("acr_values".to_owned(), "substantial".to_owned())]);
        assert!(check_node_acr(&short).is_err());
        let scopes = ["openid", "eidas:attribute:first_name", "eidas:attribute:x"].map(String::from);
        assert_eq!(attribute_scopes(&scopes), vec!["eidas:attribute:first_name"]);
    }
}
