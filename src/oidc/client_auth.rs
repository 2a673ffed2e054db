//! Client authentication at the token, introspection, revocation and PAR endpoints
//! (OIDC Core §9): `client_secret_basic`, `client_secret_post`, `private_key_jwt`
//! (RFC 7523). Each client is registered for exactly one method; any other is refused.
//!
//! Secrets are compared by their SHA-256 fingerprints in constant time. Assertions
//! (RFC 7523 §3, FAPI 2.0 §5.3.2.1) must
//! - be signed with an asymmetric algorithm (`none` and HMAC are refused) that matches the
//!   `alg` of the client's key when the JWK names one, by a key of accepted strength
//!   ([`crate::domain::client_keys`]);
//! - carry no `crit` header (we understand no JWS extension, so any is unknown) and no
//!   `b64`; a `typ`, if present, is `JWT` or `client-authentication+jwt` (never another
//!   JWT type such as `dpop+jwt` or `at+jwt`);
//! - name the client as `iss` and `sub`, and this provider in `aud` as a single string
//!   (the issuer, or the URL of the token endpoint or of the endpoint called);
//! - have `iat` and `nbf`, when present, no later than now plus the allowed skew
//!   (`tokens.assertion_skew`, default 30 s), expire within an hour, and carry a `jti`
//!   the caller checks for replay.

use std::borrow::Cow;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::error::OAuthError;
use super::params::Params;
use crate::domain::client::{AuthMethod, Client};
use crate::domain::ids::ClientId;
use crate::domain::secret::{ct_eq, fingerprint, ClientSecret};
use crate::domain::UnixTime;

/// RFC 7523 client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion lifetime (exp - now), seconds.
pub const MAX_ASSERTION_LIFETIME: i64 = 3600;

/// Credentials as presented, before the client is looked up.
pub enum Presented {
    /// HTTP Basic.
    Basic(ClientId, ClientSecret),
    /// In the body.
    Post(ClientId, ClientSecret),
    /// A signed JWT.
    Assertion(ClientId, String),
}

impl Presented {
    /// The claimed client id.
    pub fn client_id(&self) -> &ClientId {
        match self {
            Presented::Basic(id, _) | Presented::Post(id, _) | Presented::Assertion(id, _) => id,
        }
    }

    /// The method these credentials use.
    pub fn method(&self) -> AuthMethod {
        match self {
            Presented::Basic(..) => AuthMethod::ClientSecretBasic,
            Presented::Post(..) => AuthMethod::ClientSecretPost,
            Presented::Assertion(..) => AuthMethod::PrivateKeyJwt,
        }
    }
}

/// Extracts exactly one set of credentials from the `Authorization` header and the form.
/// Removes the credential parameters from `params`.
pub fn extract(authorization: Option<&str>, params: &mut Params) -> Result<Presented, OAuthError> {
    let form_id = params.take("client_id");
    let form_secret = params.take("client_secret");
    let assertion_type = params.take("client_assertion_type");
    let assertion = params.take("client_assertion");
    let basic = authorization.and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")));

    let count = usize::from(basic.is_some()) + usize::from(form_secret.is_some()) + usize::from(assertion.is_some());
    if count > 1 {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method used",
        ));
    }
    if let Some(encoded) = basic {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| OAuthError::invalid_client())?;
        let text = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
        let (id, secret) = text.split_once(':').ok_or_else(OAuthError::invalid_client)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
        let id: ClientId = form_decode(id)?.parse().map_err(|_| OAuthError::invalid_client())?;
        let secret = form_decode(secret)?.into_owned();
        if form_id.as_deref().is_some_and(|f| f != id.as_str()) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        return Ok(Presented::Basic(id, ClientSecret::new(secret)));
    }
    if let Some(jwt) = assertion {
        if assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request("unsupported client_assertion_type"));
        }
        let claimed = match form_id {
            Some(id) => id,
            None => unverified_issuer(&jwt).ok_or_else(OAuthError::invalid_client)?,
        };
        let id: ClientId = claimed.parse().map_err(|_| OAuthError::invalid_client())?;
        return Ok(Presented::Assertion(id, jwt));
    }
    match (form_id, form_secret) {
        (Some(id), Some(secret)) => {
            let id: ClientId = id.parse().map_err(|_| OAuthError::invalid_client())?;
            Ok(Presented::Post(id, ClientSecret::new(secret)))
        }
        _ => Err(OAuthError::invalid_client()),
    }
}

fn form_decode(text: &str) -> Result<Cow<'_, str>, OAuthError> {
    // `+` is a space (HTML's form encoding, which RFC 6749 Appendix B names), then
    // `%XX`; replaced before decoding so that an encoded `%2B` stays a plus. Invalid
    // UTF-8 after decoding is refused rather than replaced. Borrowed when nothing is
    // encoded (issue 22: the exchange's client authentication allocated a dozen times).
    if !text.contains(['+', '%']) {
        return Ok(Cow::Borrowed(text));
    }
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| Cow::Owned(decoded.into_owned()))
        .map_err(|_| OAuthError::invalid_client())
}

/// `iss` of an assertion, read without verification (only to find the client).
fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

/// A verified assertion's replay-relevant claims.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The assertion's `jti`.
    pub jti: String,
    /// Its expiry.
    pub exp: UnixTime,
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    sub: String,
    jti: Option<String>,
    exp: i64,
    aud: serde_json::Value,
    iat: Option<i64>,
    nbf: Option<i64>,
}

/// What an assertion is checked against besides the client's keys.
#[derive(Clone, Copy, Debug)]
pub struct AssertionRules<'a> {
    /// The values `aud` may be (one of them, as a single string).
    pub audiences: &'a [&'a str],
    /// The time now.
    pub now: UnixTime,
    /// How far `iat`/`nbf` may lie ahead and `exp` behind (clock skew), seconds.
    pub skew: i64,
}

/// Outcome of checking presented credentials against the registered client.
pub enum Authenticated {
    /// A secret matched.
    Secret,
    /// An assertion verified; the caller must reject a seen `jti`.
    Assertion(VerifiedAssertion),
}

/// Checks `presented` against `client` (assertions by `rules`).
pub fn authenticate(
    client: &Client,
    presented: &Presented,
    rules: AssertionRules<'_>,
) -> Result<Authenticated, OAuthError> {
    if presented.method() != client.token_endpoint_auth_method {
        return Err(OAuthError::invalid_client());
    }
    match presented {
        Presented::Basic(_, secret) | Presented::Post(_, secret) => {
            let mut stored = [0u8; 32];
            client
                .secret_sha256
                .as_deref()
                .and_then(|h| hex::decode_to_slice(h, &mut stored).ok())
                .ok_or_else(OAuthError::invalid_client)?;
            if ct_eq(&fingerprint(secret.expose()), &stored) {
                Ok(Authenticated::Secret)
            } else {
                Err(OAuthError::invalid_client())
            }
        }
        Presented::Assertion(_, jwt) => verify_assertion(client, jwt, rules).map(Authenticated::Assertion),
    }
}

pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// `typ` values an assertion may carry (compared case-insensitively, `application/`
/// prefix ignored): plain JWT and the explicit type of draft-ietf-oauth-rfc7523bis.
const ASSERTION_TYPES: [&str; 2] = ["jwt", "client-authentication+jwt"];

/// The protected header as JSON, checked for what `jsonwebtoken` does not look at:
/// `crit`, `b64` and `typ`.
fn check_header(jwt: &str, client: &Client) -> Result<(), OAuthError> {
    let refuse = |why: &str| {
        tracing::warn!(client = %client.client_id, why, "client assertion refused");
        OAuthError::invalid_client()
    };
    let encoded = jwt.split('.').next().ok_or_else(OAuthError::invalid_client)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| OAuthError::invalid_client())?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| OAuthError::invalid_client())?;
    if header.contains_key("crit") {
        return Err(refuse("crit header (no extension is understood)"));
    }
    if header.contains_key("b64") {
        return Err(refuse("b64 header"));
    }
    if let Some(typ) = header.get("typ") {
        let typ = typ.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        if !ASSERTION_TYPES.contains(&typ) {
            return Err(refuse("typ names another kind of JWT"));
        }
    }
    Ok(())
}

/// The JOSE name of an algorithm (as a JWK's `alg` spells it).
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "HS",
    }
}

fn verify_assertion(client: &Client, jwt: &str, rules: AssertionRules<'_>) -> Result<VerifiedAssertion, OAuthError> {
    check_header(jwt, client)?;
    // `decode_header` refuses `alg: none` (no such Algorithm); HMAC is refused here.
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| OAuthError::invalid_client())?;
    if !ASYMMETRIC.contains(&header.alg) || !super::profile::signing_alg_allowed(client, alg_name(header.alg)) {
        return Err(OAuthError::invalid_client());
    }
    let mut validation = Validation::new(header.alg);
    // `aud` is checked below: a single string only, which jsonwebtoken does not insist on.
    validation.validate_aud = false;
    validation.set_issuer(&[client.client_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = u64::try_from(rules.skew).unwrap_or(0);
    match decode_with_client_keys::<AssertionClaims>(client, jwt, &header, &validation) {
        Some(claims) => check_claims(client, claims, rules),
        None => Err(OAuthError::invalid_client()),
    }
}

/// Verifies `jwt` with one of `client`'s registered keys (the one its `kid` names, or each
/// in turn) and decodes its claims by `validation`; `None` when no key verifies it. Keys
/// are checked for strength again, and a key whose JWK names an `alg` verifies only that
/// algorithm. Shared by client assertions and request objects ([`super::jar`]).
pub fn decode_with_client_keys<T: serde::de::DeserializeOwned>(
    client: &Client,
    jwt: &str,
    header: &jsonwebtoken::Header,
    validation: &Validation,
) -> Option<T> {
    let keys = client
        .jwks
        .as_ref()
        .and_then(|v| v.get("keys"))
        .and_then(serde_json::Value::as_array)?;
    let high = client.requires_high();
    let candidates = keys.iter().filter(|raw| {
        let kid = raw.get("kid").and_then(serde_json::Value::as_str);
        header.kid.is_none() || kid == header.kid.as_deref()
    });
    for raw in candidates {
        // A key registered before the strength rules, or edited in the database: checked
        // again here. Its `alg`, when named, must be the token's.
        if crate::domain::client_keys::check_key(raw, high).is_err() {
            tracing::warn!(client = %client.client_id, "client key of refused strength or form skipped");
            continue;
        }
        if raw
            .get("alg")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|a| a != alg_name(header.alg))
        {
            continue;
        }
        let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(raw.clone()) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        if let Ok(data) = jsonwebtoken::decode::<T>(jwt, &key, validation) {
            return Some(data.claims);
        }
    }
    None
}

/// The claims of a correctly signed assertion.
fn check_claims(
    client: &Client,
    claims: AssertionClaims,
    rules: AssertionRules<'_>,
) -> Result<VerifiedAssertion, OAuthError> {
    let refuse = |why: &str| {
        tracing::warn!(client = %client.client_id, why, "client assertion refused");
        OAuthError::invalid_client()
    };
    if claims.sub != client.client_id.as_str() {
        return Err(refuse("sub is not the client"));
    }
    if !claims.aud.as_str().is_some_and(|a| rules.audiences.contains(&a)) {
        return Err(refuse("aud is not a single string naming this provider"));
    }
    let ahead = rules.now.saturating_add(rules.skew);
    if claims.iat.is_some_and(|t| t > ahead) || claims.nbf.is_some_and(|t| t > ahead) {
        return Err(refuse("iat or nbf in the future"));
    }
    if claims.exp - rules.now > MAX_ASSERTION_LIFETIME {
        return Err(refuse("lifetime longer than an hour"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refuse("no usable jti"))?;
    Ok(VerifiedAssertion { jti, exp: claims.exp })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules<'a>(audiences: &'a [&'a str]) -> AssertionRules<'a> {
        AssertionRules {
            audiences,
            now: 0,
            skew: 30,
        }
    }

    fn secret_client() -> Client {
        serde_json::from_value(serde_json::json!({
            "client_id": "rp", "redirect_uris": ["https://rp.example/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
            "secret_sha256": hex::encode(fingerprint("s3cret"))
        }))
        .unwrap()
    }

    #[test]
    fn basic_credentials_verify_and_wrong_secrets_fail() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("rp:s3cret")
        );
        let mut p = Params::default();
        let presented = extract(Some(&header), &mut p).unwrap();
        assert!(authenticate(&secret_client(), &presented, rules(&[])).is_ok());
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("rp:wrong"));
        let presented = extract(Some(&header), &mut p).unwrap();
        assert!(authenticate(&secret_client(), &presented, rules(&[])).is_err());
    }

    #[test]
    fn basic_credentials_are_form_decoded_as_rfc_6749_says() {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64.
        assert_eq!(form_decode("a+b%2Bc%3A%25").unwrap(), "a b+c:%");
        // Nothing encoded: borrowed as sent, `=` padding of a Base64 secret included.
        assert!(matches!(
            form_decode("c2VjcmV0==").unwrap(),
            Cow::Borrowed("c2VjcmV0==")
        ));
        // Bytes that are not UTF-8 after decoding: refused, not replaced.
        assert!(form_decode("%FF%FE").is_err());
        let encoded = |pair: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
        let mut with_plus = secret_client();
        with_plus.secret_sha256 = Some(hex::encode(fingerprint("s3 cr+t")));
        let presented = extract(Some(&encoded("rp:s3+cr%2Bt")), &mut Params::default()).unwrap();
        assert!(authenticate(&with_plus, &presented, rules(&[])).is_ok());
        let presented = extract(Some(&encoded("rp:s3+cr+t")), &mut Params::default()).unwrap();
        assert!(authenticate(&with_plus, &presented, rules(&[])).is_err());
    }

    #[test]
    fn a_client_may_use_only_its_registered_method() {
        let mut p = Params::parse(b"client_id=rp&client_secret=s3cret", 100).unwrap();
        let presented = extract(None, &mut p).unwrap();
        assert!(authenticate(&secret_client(), &presented, rules(&[])).is_err());
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("rp:s3cret")
        );
        let mut p = Params::parse(b"client_id=rp&client_secret=s3cret", 100).unwrap();
        assert!(extract(Some(&header), &mut p).is_err());
    }

    #[test]
    fn alg_none_and_hmac_assertions_are_refused() {
        let mut c = secret_client();
        c.token_endpoint_auth_method = AuthMethod::PrivateKeyJwt;
        c.jwks = Some(serde_json::json!({"keys": []}));
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = b64(serde_json::json!({"iss": "rp", "sub": "rp", "aud": "https://op", "exp": 100, "jti": "1"}));
        for alg in ["none", "HS256"] {
            let jwt = format!("{}.{}.c2ln", b64(serde_json::json!({"alg": alg, "typ": "JWT"})), claims);
            let presented = Presented::Assertion("rp".parse().unwrap(), jwt);
            assert!(authenticate(&c, &presented, rules(&["https://op"])).is_err(), "{alg}");
        }
    }
}
