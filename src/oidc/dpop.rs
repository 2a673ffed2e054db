//! DPoP (RFC 9449): sender-constrained access and refresh tokens.
//!
//! A proof is a JWS of `typ` `dpop+jwt` signed by the key in its own `jwk` header (an
//! asymmetric algorithm of [`ALGORITHMS`], a public key of the strength
//! [`crate::domain::client_keys`] accepts, no private members). Its claims name the HTTP
//! method (`htm`) and URL without query and fragment (`htu`) of the request it comes with,
//! an `iat` within [`MAX_AGE`] seconds before now (or the allowed skew after), a `jti` used
//! once (kept in the ephemeral store, per key), the hash of the access token (`ath`) at a
//! resource, and, at the token endpoint, a nonce of this server (§8): `use_dpop_nonce`
//! with a `DPoP-Nonce` header otherwise. The nonce rotates every [`NONCE_PERIOD`] seconds
//! (the current and the previous one are accepted), kept in the ephemeral store so every
//! instance agrees.
//!
//! A token issued with a proof is bound to the key's RFC 7638 thumbprint (`cnf.jkt`):
//! at userinfo it works only as `Authorization: DPoP` with a proof by that key; a refresh
//! token bound to a key refreshes only with a proof by the same key.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::{ErrorCode, OAuthError};
use super::state::Oidc;
use crate::domain::client::Client;
use crate::domain::secret::{ct_eq, fingerprint_hex};
use crate::hsm::keys::{Curve, PublicKey};

/// Algorithms a proof may be signed with (discovery `dpop_signing_alg_values_supported`).
pub const ALGORITHMS: [&str; 5] = ["ES256", "ES384", "PS256", "RS256", "EdDSA"];

/// How old a proof's `iat` may be, seconds.
pub const MAX_AGE: i64 = 300;

/// How long a server nonce is current, seconds.
pub const NONCE_PERIOD: i64 = 300;

fn invalid(why: &str) -> OAuthError {
    tracing::info!(why, "DPoP proof refused");
    OAuthError::new(ErrorCode::InvalidDpopProof, why.to_owned())
}

/// What a proof must match: the request it came with.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The HTTP method.
    pub htm: &'a str,
    /// The endpoint's URL (no query, no fragment).
    pub htu: &'a str,
    /// The access token presented with it (at a resource): `ath` must be its hash.
    pub access_token: Option<&'a str>,
    /// Whether the proof must carry a current server nonce (the token endpoint).
    pub nonce_required: bool,
}

/// Verifies `proof` for a request described by `expected` (by `client`, when known:
/// its profile may forbid an algorithm). Returns the thumbprint of the proof's key.
pub async fn verify(
    app: &Oidc,
    proof: &str,
    expected: Expected<'_>,
    client: Option<&Client>,
) -> Result<String, OAuthError> {
    let header: Map<String, Value> = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("malformed proof"))?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("typ must be dpop+jwt"));
    }
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !ALGORITHMS.contains(&alg_name) || client.is_some_and(|c| !super::profile::signing_alg_allowed(c, alg_name)) {
        return Err(invalid("alg not accepted"));
    }
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(invalid("crit or b64 header"));
    }
    let alg: Algorithm = alg_name.parse().map_err(|_| invalid("alg not accepted"))?;
    let jwk_value = header.get("jwk").ok_or_else(|| invalid("no jwk header"))?;
    crate::domain::client_keys::check_key(jwk_value, false).map_err(|_| invalid("jwk refused"))?;
    let jkt = thumbprint(jwk_value).ok_or_else(|| invalid("jwk malformed"))?;
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk_value.clone()).map_err(|_| invalid("jwk malformed"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("jwk malformed"))?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(proof, &key, &validation)
        .map_err(|_| invalid("signature does not verify with the jwk"))?
        .claims;
    check_claims(app, &claims, expected).await?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| invalid("no usable jti"))?;
    let skew = skew(app);
    let ttl = Duration::from_secs(u64::try_from(MAX_AGE + 2 * skew).unwrap_or(600));
    let key = format!("dpop-jti:{}:{}", fingerprint_hex(&jkt), fingerprint_hex(jti));
    if !app.ephemeral.put_new(&key, b"1", ttl).await? {
        return Err(invalid("jti already used"));
    }
    Ok(jkt)
}

fn skew(app: &Oidc) -> i64 {
    i64::try_from(app.config.tokens.assertion_skew.as_secs()).unwrap_or(30)
}

async fn check_claims(app: &Oidc, claims: &Map<String, Value>, expected: Expected<'_>) -> Result<(), OAuthError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("htm") != Some(expected.htm) {
        return Err(invalid("htm does not match the request"));
    }
    let htu = text("htu").ok_or_else(|| invalid("no htu"))?;
    if normalise(htu).is_none() || normalise(htu) != normalise(expected.htu) {
        return Err(invalid("htu does not match the request"));
    }
    let now = app.now();
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("no iat"))?;
    if iat > now + skew(app) || now - iat > MAX_AGE {
        return Err(invalid("iat outside the accepted window"));
    }
    if let Some(token) = expected.access_token {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if !text("ath").is_some_and(|a| ct_eq(a.as_bytes(), ath.as_bytes())) {
            return Err(invalid("ath does not match the access token"));
        }
    }
    match text("nonce") {
        Some(nonce) if nonce_is_current(app, nonce).await? => Ok(()),
        None if !expected.nonce_required => Ok(()),
        _ => Err(OAuthError::new(
            ErrorCode::UseDpopNonce,
            "the proof must carry the nonce of the DPoP-Nonce header",
        )),
    }
}

/// A URL without query and fragment, scheme and host in lower case (RFC 9449 §4.3).
fn normalise(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.to_string())
}

/// RFC 7638 thumbprint of a public JWK: for EC and RSA keys the one the HSM port computes
/// for its own keys; for Ed25519 `{"crv","kty","x"}`.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| member(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    let key = match member("kty")? {
        "EC" => PublicKey::Ec {
            curve: match member("crv")? {
                "P-256" => Curve::P256,
                "P-384" => Curve::P384,
                _ => return None,
            },
            x: bytes("x")?,
            y: bytes("y")?,
        },
        "RSA" => PublicKey::Rsa {
            modulus: bytes("n")?,
            exponent: bytes("e")?,
        },
        "OKP" if member("crv")? == "Ed25519" => {
            let x = URL_SAFE_NO_PAD.encode(bytes("x")?);
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
            return Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())));
        }
        _ => return None,
    };
    Some(key.thumbprint().0)
}

/// The server nonce now current (made on first use in its period).
pub async fn current_nonce(app: &Oidc) -> Result<String, OAuthError> {
    let key = nonce_key(app.now().div_euclid(NONCE_PERIOD));
    if let Some(v) = app.ephemeral.get(&key).await? {
        return String::from_utf8(v).map_err(|_| OAuthError::unavailable());
    }
    let fresh = crate::random::token();
    let ttl = Duration::from_secs(u64::try_from(3 * NONCE_PERIOD).unwrap_or(900));
    if app.ephemeral.put_new(&key, fresh.as_bytes(), ttl).await? {
        return Ok(fresh);
    }
    // Another request (or instance) made it first.
    let v = app.ephemeral.get(&key).await?.ok_or_else(OAuthError::unavailable)?;
    String::from_utf8(v).map_err(|_| OAuthError::unavailable())
}

async fn nonce_is_current(app: &Oidc, nonce: &str) -> Result<bool, OAuthError> {
    let period = app.now().div_euclid(NONCE_PERIOD);
    for p in [period, period - 1] {
        if let Some(v) = app.ephemeral.get(&nonce_key(p)).await? {
            if ct_eq(&v, nonce.as_bytes()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn nonce_key(period: i64) -> String {
    format!("dpop-nonce:{period}")
}

/// The one `DPoP` header of a request, if any (RFC 9449 §4.1: at most one, text).
pub fn single_header<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Result<Option<String>, OAuthError> {
    let first = values.next();
    if values.next().is_some() {
        return Err(invalid("more than one DPoP header"));
    }
    first
        .map(|v| std::str::from_utf8(v).map(str::to_owned))
        .transpose()
        .map_err(|_| invalid("malformed DPoP header"))
}

/// At the token endpoint: the key the new tokens are bound to, from the `proof` sent
/// (which must carry the server nonce); a client with `require_dpop` (or the `fapi2`
/// profile, [`super::profile::dpop_required`]) must send one.
pub async fn token_key(app: &Oidc, client: &Client, proof: Option<&str>) -> Result<Option<String>, OAuthError> {
    let Some(proof) = proof else {
        return match super::profile::dpop_required(client) {
            true => Err(invalid("this client must send a DPoP proof")),
            false => Ok(None),
        };
    };
    let url = format!("{}/token", app.config.issuer);
    let expected = Expected {
        htm: "POST",
        htu: &url,
        access_token: None,
        nonce_required: true,
    };
    verify(app, proof, expected, Some(client)).await.map(Some)
}

/// How an access token was presented at a resource (userinfo).
#[derive(Clone, Copy, Debug)]
pub struct Presented<'a> {
    /// `Authorization: DPoP` rather than `Bearer`.
    pub dpop_scheme: bool,
    /// The `DPoP` header.
    pub proof: Option<&'a str>,
    /// The request's method.
    pub htm: &'a str,
    /// The resource's URL.
    pub htu: &'a str,
}

/// Checks the presentation of `token` against its binding `jkt`: a bound token needs the
/// DPoP scheme and a proof by its key; an unbound one is a bearer token.
pub async fn check_presentation(
    app: &Oidc,
    jkt: Option<&str>,
    token: &str,
    presented: Presented<'_>,
) -> Result<(), OAuthError> {
    match (jkt, presented.dpop_scheme) {
        (None, false) => Ok(()),
        (None, true) => Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is not bound to a DPoP key",
        )),
        (Some(_), false) => Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is bound to a DPoP key: use Authorization: DPoP with a proof",
        )),
        (Some(bound), true) => {
            let proof = presented.proof.ok_or_else(|| invalid("no DPoP proof"))?;
            let expected = Expected {
                htm: presented.htm,
                htu: presented.htu,
                access_token: Some(token),
                nonce_required: false,
            };
            let jkt = verify(app, proof, expected, None).await?;
            if !ct_eq(jkt.as_bytes(), bound.as_bytes()) {
                return Err(invalid("the proof is not by the key the token is bound to"));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_example_and_ed25519() {
        // RFC 7638 §3.1.
        let rsa = serde_json::json!({"kty": "RSA", "e": "AQAB", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            thumbprint(&rsa).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        // RFC 8037 Appendix A.3.
        let okp =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert_eq!(
            thumbprint(&okp).as_deref(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
        assert_eq!(thumbprint(&serde_json::json!({"kty": "oct", "k": "AA"})), None);
    }

    #[test]
    fn htu_ignores_query_and_fragment_only() {
        assert_eq!(
            normalise("https://OP.example/token?x=1#f"),
            normalise("https://op.example/token")
        );
        assert_ne!(
            normalise("https://op.example/userinfo"),
            normalise("https://op.example/token")
        );
        assert_eq!(normalise("not a url"), None);
    }
}
