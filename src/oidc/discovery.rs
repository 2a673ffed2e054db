//! OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414), serialised once at start.

use serde_json::json;

use super::authorize::SUPPORTED_SCOPES;
use crate::config::Config;
use crate::domain::claims::EIDAS_NATURAL;
use crate::domain::loa::Loa;

/// The metadata document as bytes.
pub fn document(config: &Config) -> Vec<u8> {
    let i = &config.issuer;
    let mut claims: Vec<&str> = vec![
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "sid",
        "azp",
    ];
    claims.extend(EIDAS_NATURAL);
    claims.extend(crate::domain::legal::LEGAL_CLAIMS);
    let acr: Vec<&str> = Loa::ALL
        .iter()
        .rev()
        .map(|l| l.uri())
        .chain(Loa::ALL.iter().rev().map(|l| l.short()))
        .collect();
    let doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "pushed_authorization_request_endpoint": format!("{i}/par"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks.json"),
        "introspection_endpoint": format!("{i}/introspect"),
        "revocation_endpoint": format!("{i}/revoke"),
        "end_session_endpoint": format!("{i}/logout"),
        "scopes_supported": SUPPORTED_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(crate::domain::eidas_scopes::all())
            .collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"],
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "claims_parameter_supported": true,
        "verified_claims_supported": true,
        "trust_frameworks_supported": ["eidas"],
        "claims_in_verified_claims_supported": crate::domain::claims::EIDAS_NATURAL
            .iter()
            .chain(crate::domain::legal::LEGAL_CLAIMS.iter())
            .filter(|c| **c != "sub")
            .collect::<Vec<_>>(),
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": super::jar::ALGORITHMS,
        "dpop_signing_alg_values_supported": super::dpop::ALGORITHMS,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "require_pushed_authorization_requests": false,
        "acr_values_supported": acr,
        "authorization_response_iss_parameter_supported": true,
        // Only what has an effect: `select_account` changes nothing (one holder per
        // browser session), so it is not advertised (OIDC Discovery: list what the OP
        // supports). The pages speak the languages of `ui_locales_supported`.
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": crate::config::ui::LANGUAGES,
        "claim_types_supported": ["normal"],
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}
