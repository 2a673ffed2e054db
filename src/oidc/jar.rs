//! Signed request objects (RFC 9101, "JAR") passed by value in `request`, at `/authorize`
//! and at PAR. A request object
//! - is a JWS signed with one of the client's registered keys (`jwks`) by ES256, PS256,
//!   RS256 or EdDSA (never `none`, never HMAC; RS256 not for a `fapi2` client), with no
//!   `crit` header and, when typed, `typ` `oauth-authz-req+jwt` (or plain `JWT`);
//! - has `iss` = the client, `aud` = this provider's issuer, an `exp` at most 60 minutes
//!   ahead, an `nbf` not in the future and at most 60 minutes old, and a `jti` used once
//!   (kept in the ephemeral store until `exp`, like other single-use values);
//! - names the same client as the `client_id` outside it (and inside it, when given).
//!
//! Only the object's members count (RFC 9101 §6.3): the parameters outside it are dropped.
//! Every refusal is `invalid_request_object`.

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::state::Oidc;
use crate::domain::client::Client;
use crate::domain::secret::fingerprint_hex;

/// Algorithms a request object may be signed with (discovery
/// `request_object_signing_alg_values_supported`).
pub const ALGORITHMS: [&str; 4] = ["ES256", "PS256", "RS256", "EdDSA"];

/// Longest accepted lifetime (`exp` − now) and age of `nbf`, seconds.
pub const MAX_LIFETIME: i64 = 3600;

/// JWT claims of the object that are not authorization parameters.
const JWT_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];

/// `typ` values accepted (lower case, `application/` prefix removed).
const TYPES: [&str; 2] = ["oauth-authz-req+jwt", "jwt"];

fn refuse(client: &Client, why: &str) -> OAuthError {
    tracing::warn!(client = %client.client_id, why, "request object refused");
    OAuthError::new(ErrorCode::InvalidRequestObject, why.to_owned())
}

/// Verifies the request object `jwt` of `client` and returns the parameters it carries
/// (with `client_id`). `outer_client_id` is the `client_id` sent beside it.
pub async fn unpack(
    app: &Oidc,
    client: &Client,
    jwt: &str,
    outer_client_id: Option<&str>,
) -> Result<Params, OAuthError> {
    if outer_client_id != Some(client.client_id.as_str()) {
        return Err(refuse(
            client,
            "client_id outside the request object must name its client",
        ));
    }
    let alg = check_header(client, jwt)?;
    let mut validation = Validation::new(alg);
    // Times are checked below against the server's clock; `aud` may be a string or an
    // array naming the issuer.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.set_issuer(&[client.client_id.as_str()]);
    validation.set_audience(&[app.config.issuer.as_str()]);
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| refuse(client, "malformed request object"))?;
    let claims: Map<String, Value> = super::client_auth::decode_with_client_keys(client, jwt, &header, &validation)
        .ok_or_else(|| {
            refuse(
                client,
                "request object not signed by a registered key of the client, or wrong iss or aud",
            )
        })?;
    let now = app.now();
    let skew = i64::try_from(app.config.tokens.assertion_skew.as_secs()).unwrap_or(30);
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = time("exp").ok_or_else(|| refuse(client, "exp is required"))?;
    let nbf = time("nbf").ok_or_else(|| refuse(client, "nbf is required"))?;
    if exp + skew <= now {
        return Err(refuse(client, "request object expired"));
    }
    if exp - now > MAX_LIFETIME {
        return Err(refuse(client, "exp more than 60 minutes ahead"));
    }
    if nbf > now + skew || now - nbf > MAX_LIFETIME {
        return Err(refuse(client, "nbf in the future or more than 60 minutes old"));
    }
    if let Some(inner) = claims.get("client_id") {
        if inner.as_str() != Some(client.client_id.as_str()) {
            return Err(refuse(client, "client_id inside the request object does not match"));
        }
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err(refuse(client, "request object carries request or request_uri"));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refuse(client, "no usable jti"))?;
    let params = parameters(client, &claims, app.config.limits.param_chars)?;
    let ttl = Duration::from_secs(u64::try_from(exp - now + skew).unwrap_or(60).max(60));
    let key = format!("jar-jti:{}:{}", client.client_id, fingerprint_hex(jti));
    if !app.ephemeral.put_new(&key, b"1", ttl).await? {
        return Err(refuse(client, "request object jti already used"));
    }
    Ok(params)
}

/// The header: an accepted asymmetric algorithm, no `crit`, an accepted `typ`.
fn check_header(client: &Client, jwt: &str) -> Result<Algorithm, OAuthError> {
    let encoded = jwt.split('.').next().unwrap_or_default();
    let header: Map<String, Value> = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| refuse(client, "malformed request object header"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return Err(refuse(client, "alg not accepted (none and HMAC never are)"));
    }
    if !super::profile::signing_alg_allowed(client, alg) {
        return Err(refuse(client, "alg not allowed by the client's profile"));
    }
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(refuse(client, "crit or b64 header"));
    }
    if let Some(typ) = header.get("typ") {
        let typ = typ.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        if !TYPES.contains(&typ) {
            return Err(refuse(client, "typ names another kind of JWT"));
        }
    }
    alg.parse::<Algorithm>().map_err(|_| refuse(client, "alg not accepted"))
}

/// The object's members as authorization parameters: strings as they are, numbers and
/// booleans as their text, objects (`claims`) as JSON text; each within `max_chars`.
fn parameters(client: &Client, claims: &Map<String, Value>, max_chars: usize) -> Result<Params, OAuthError> {
    if claims.len() > 64 {
        return Err(refuse(client, "too many members"));
    }
    let mut pairs = vec![("client_id".to_owned(), client.client_id.to_string())];
    for (name, value) in claims {
        if JWT_CLAIMS.contains(&name.as_str()) || name == "client_id" || name.len() > 64 {
            continue;
        }
        let text = match value {
            Value::Null => continue,
            Value::String(s) if s.is_empty() => continue,
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) | Value::Object(_) | Value::Array(_) => value.to_string(),
        };
        if text.chars().count() > max_chars {
            return Err(refuse(client, "a member is too long"));
        }
        pairs.push((name.clone(), text));
    }
    Ok(Params::from_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        serde_json::from_value(serde_json::json!({
            "client_id": "rp", "redirect_uris": ["https://rp.example/cb"],
            "token_endpoint_auth_method": "client_secret_basic", "secret_sha256": "00"
        }))
        .unwrap()
    }

    #[test]
    fn none_hmac_and_unknown_algorithms_are_refused_before_any_key_is_tried() {
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        for alg in ["none", "HS256", "HS512", "ES512", ""] {
            let jwt = format!("{}.e30.c2ln", b64(serde_json::json!({"alg": alg})));
            let e = check_header(&client(), &jwt).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequestObject, "{alg}");
        }
        let typed = format!(
            "{}.e30.c2ln",
            b64(serde_json::json!({"alg": "ES256", "typ": "dpop+jwt"}))
        );
        assert!(check_header(&client(), &typed).is_err());
        let good = format!(
            "{}.e30.c2ln",
            b64(serde_json::json!({"alg": "ES256", "typ": "oauth-authz-req+jwt"}))
        );
        assert_eq!(check_header(&client(), &good).unwrap(), Algorithm::ES256);
    }

    #[test]
    fn members_become_parameters_and_jwt_claims_do_not() {
        let claims = serde_json::json!({
            "iss": "rp", "aud": "x", "exp": 1, "nbf": 1, "jti": "j", "client_id": "rp",
            "scope": "openid", "max_age": 60, "claims": {"id_token": {"acr": null}}, "state": ""
        });
        let p = parameters(&client(), claims.as_object().unwrap(), 2048).unwrap();
        assert_eq!(p.get("client_id"), Some("rp"));
        assert_eq!(p.get("scope"), Some("openid"));
        assert_eq!(p.get("max_age"), Some("60"));
        assert_eq!(p.get("claims"), Some(r#"{"id_token":{"acr":null}}"#));
        for absent in ["iss", "aud", "exp", "nbf", "jti", "state"] {
            assert!(!p.has(absent), "{absent}");
        }
    }
}
