//! Per-client rules on how an authorization request must arrive, beyond what every client
//! is held to ([`super::authorize::validate`]):
//! - `require_signed_request_object`: only as a signed request object (RFC 9101), by
//!   value or pushed;
//! - `profile = "fapi2"` (FAPI 2.0 Security Profile §5.3.2): only through PAR, with PKCE
//!   S256, `private_key_jwt` as the only client authentication (refused at registration
//!   otherwise, [`crate::domain::client::Client::validate`]), and no RS256 signatures from
//!   the client (FAPI 2.0 §5.4.1: PS256, ES256, EdDSA), and only sender-constrained
//!   tokens (§5.3.2.1: DPoP, [`super::dpop`]);
//! - `eidas_node`: an eIDAS-Node's SpecificProxyService asks for its level with
//!   `acr_values` made of the eIDAS LoA URIs ([`super::eidas`]).

use super::error::OAuthError;
use super::params::Params;
use crate::domain::client::Client;

/// How an authorization request arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Through PAR.
    pub pushed: bool,
    /// As a signed request object (by value or pushed).
    pub signed: bool,
}

/// Checks the client's rules on an authorization request that `origin` describes.
pub fn check(client: &Client, params: &Params, origin: Origin) -> Result<(), OAuthError> {
    if client.require_signed_request_object && !origin.signed {
        return Err(OAuthError::invalid_request(
            "this client must send a signed request object (request)",
        ));
    }
    if client.is_fapi2() {
        if !origin.pushed {
            return Err(OAuthError::invalid_request(
                "FAPI 2.0: authorization requests only through PAR",
            ));
        }
        if params.get("code_challenge").is_none() || params.get("code_challenge_method") != Some("S256") {
            return Err(OAuthError::invalid_request("FAPI 2.0: PKCE with S256 is required"));
        }
    }
    if client.eidas_node {
        super::eidas::check_node_acr(params)?;
    }
    Ok(())
}

/// Whether `client` may sign (client assertions, request objects, DPoP proofs) with `alg`:
/// a `fapi2` client not with RS256 (nor any RSASSA-PKCS1-v1_5).
pub fn signing_alg_allowed(client: &Client, alg: &str) -> bool {
    !(client.is_fapi2() && alg.starts_with("RS"))
}

/// Whether `client` gets only DPoP-bound tokens: `require_dpop`, or the `fapi2` profile
/// (FAPI 2.0 §5.3.2.1: only sender-constrained access tokens).
pub fn dpop_required(client: &Client) -> bool {
    client.require_dpop || client.is_fapi2()
}

/// FAPI 2.0 §5.3.2.1: authorization codes of a `fapi2` client live at most 60 s, whatever
/// `tokens.code_ttl` says.
pub fn code_ttl(client: &Client, configured: std::time::Duration) -> std::time::Duration {
    match client.is_fapi2() {
        true => configured.min(FAPI2_MAX_CODE_TTL),
        false => configured,
    }
}

/// The longest life of a `fapi2` client's authorization code.
pub const FAPI2_MAX_CODE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    fn client(extra: serde_json::Value) -> Client {
        let mut v = serde_json::json!({
            "client_id": "rp", "redirect_uris": ["https://rp.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}
        });
        if let (Some(o), serde_json::Value::Object(more)) = (v.as_object_mut(), extra) {
            o.extend(more);
        }
        serde_json::from_value(v).unwrap()
    }

    const PKCE: &[u8] = b"code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

    #[test]
    fn fapi2_requires_par_and_pkce_s256_and_refuses_rs256() {
        let c = client(serde_json::json!({"profile": "fapi2"}));
        let with_pkce = Params::parse(PKCE, 100).unwrap();
        let pushed = Origin {
            pushed: true,
            signed: false,
        };
        assert!(check(&c, &with_pkce, Origin::default()).is_err(), "front channel");
        assert!(check(&c, &with_pkce, pushed).is_ok());
        assert!(check(&c, &Params::default(), pushed).is_err(), "no PKCE");
        assert!(!signing_alg_allowed(&c, "RS256"));
        assert!(signing_alg_allowed(&c, "PS256") && signing_alg_allowed(&c, "ES256"));
        assert!(signing_alg_allowed(&client(serde_json::json!({})), "RS256"));
        assert!(dpop_required(&c) && !dpop_required(&client(serde_json::json!({}))));
    }

    #[test]
    fn fapi2_codes_live_at_most_60_seconds_whatever_the_configuration() {
        let long = std::time::Duration::from_secs(300);
        assert_eq!(
            code_ttl(&client(serde_json::json!({"profile": "fapi2"})), long),
            FAPI2_MAX_CODE_TTL
        );
        assert_eq!(code_ttl(&client(serde_json::json!({})), long), long);
        let short = std::time::Duration::from_secs(30);
        assert_eq!(code_ttl(&client(serde_json::json!({"profile": "fapi2"})), short), short);
    }

    #[test]
    fn signed_request_objects_when_required() {
        let c = client(serde_json::json!({"require_signed_request_object": true}));
        assert!(check(&c, &Params::default(), Origin::default()).is_err());
        let signed = Origin {
            pushed: false,
            signed: true,
        };
        assert!(check(&c, &Params::default(), signed).is_ok());
    }
}
