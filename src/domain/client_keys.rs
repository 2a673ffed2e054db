//! The public keys a `private_key_jwt` client registers (RFC 7523, FAPI 2.0 §5.4): only
//! signature keys of a strength we accept, checked at registration and again before an
//! assertion is verified with one.
//!
//! - RSA: a modulus of at least 2048 bits, at least 3072 for a client whose
//!   `minimum_acr` is `high`; `alg`, when named, one of RS/PS 256/384/512.
//! - EC: P-256 (`alg` ES256 when named) or P-384 (ES384); no other curve.
//! - OKP: Ed25519 (`alg` EdDSA when named).
//! - Never symmetric keys (`oct`), never private key members (`d`, `p`, `q`, …), `use`
//!   when present is `sig`.

use base64::Engine as _;
use serde_json::Value;

/// Smallest RSA modulus accepted.
pub const MIN_RSA_BITS: usize = 2048;
/// Smallest RSA modulus accepted for a client that requires LoA high.
pub const MIN_RSA_BITS_HIGH: usize = 3072;

/// Why a registered key is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum KeyError {
    /// `jwks` is not `{"keys": [ … ]}` with at least one key.
    #[error("jwks must be an object with a non-empty \"keys\" array")]
    NotAKeySet,
    /// A key type other than RSA, EC or OKP.
    #[error("key {0}: kty must be RSA, EC or OKP")]
    KeyType(String),
    /// Private key material in a public key set.
    #[error("key {0}: contains private key members")]
    Private(String),
    /// RSA modulus too short.
    #[error("key {kid}: RSA modulus of {bits} bits, at least {min} required")]
    RsaTooShort {
        /// The key.
        kid: String,
        /// Its modulus length.
        bits: usize,
        /// What is required.
        min: usize,
    },
    /// An EC curve other than P-256 and P-384, or an OKP curve other than Ed25519.
    #[error("key {0}: curve not allowed (EC P-256 or P-384, OKP Ed25519)")]
    Curve(String),
    /// `alg` names an algorithm that does not fit the key (or is not a signature one).
    #[error("key {0}: alg does not fit the key")]
    Alg(String),
    /// `use` is not `sig`.
    #[error("key {0}: use must be sig")]
    Use(String),
    /// A member is missing or malformed.
    #[error("key {0}: malformed")]
    Malformed(String),
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks a registered key set.
pub fn check_key_set(jwks: &Value, high: bool) -> Result<(), KeyError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .filter(|k| !k.is_empty())
        .ok_or(KeyError::NotAKeySet)?;
    keys.iter().try_for_each(|k| check_key(k, high))
}

/// Checks one public key (a JWK).
pub fn check_key(jwk: &Value, high: bool) -> Result<(), KeyError> {
    let kid = jwk
        .get("kid")
        .and_then(Value::as_str)
        .map_or_else(|| "(no kid)".to_owned(), |k| k.chars().take(64).collect());
    let Some(members) = jwk.as_object() else {
        return Err(KeyError::Malformed(kid));
    };
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(KeyError::Private(kid));
    }
    if let Some(usage) = members.get("use") {
        if usage.as_str() != Some("sig") {
            return Err(KeyError::Use(kid));
        }
    }
    let alg = match members.get("alg") {
        None => None,
        Some(a) => Some(a.as_str().ok_or_else(|| KeyError::Alg(kid.clone()))?),
    };
    let text = |name: &str| members.get(name).and_then(Value::as_str);
    let fits = |allowed: &[&str]| alg.is_none_or(|a| allowed.contains(&a));
    match text("kty") {
        Some("RSA") => {
            let n = text("n").ok_or_else(|| KeyError::Malformed(kid.clone()))?;
            let bits = modulus_bits(n).ok_or_else(|| KeyError::Malformed(kid.clone()))?;
            let min = if high { MIN_RSA_BITS_HIGH } else { MIN_RSA_BITS };
            if bits < min {
                return Err(KeyError::RsaTooShort { kid, bits, min });
            }
            if !fits(&["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]) {
                return Err(KeyError::Alg(kid));
            }
        }
        Some("EC") => {
            let want = match text("crv") {
                Some("P-256") => "ES256",
                Some("P-384") => "ES384",
                _ => return Err(KeyError::Curve(kid)),
            };
            if !fits(&[want]) {
                return Err(KeyError::Alg(kid));
            }
        }
        Some("OKP") => {
            if text("crv") != Some("Ed25519") {
                return Err(KeyError::Curve(kid));
            }
            if !fits(&["EdDSA"]) {
                return Err(KeyError::Alg(kid));
            }
        }
        _ => return Err(KeyError::KeyType(kid)),
    }
    Ok(())
}

/// Bit length of a base64url (unpadded) big-endian modulus, leading zeros ignored.
fn modulus_bits(n: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n).ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    let top = bytes[first];
    Some((bytes.len() - first - 1) * 8 + (8 - top.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa(bits: usize) -> Value {
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0x80;
        json!({"kty": "RSA", "kid": "r", "e": "AQAB", "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n)})
    }

    #[test]
    fn rsa_sizes_by_client_level() {
        assert_eq!(modulus_bits("AQ"), Some(1));
        assert_eq!(modulus_bits("AIA"), Some(8));
        assert!(check_key(&rsa(2048), false).is_ok());
        assert!(matches!(
            check_key(&rsa(1024), false),
            Err(KeyError::RsaTooShort { bits: 1024, .. })
        ));
        assert!(matches!(
            check_key(&rsa(2048), true),
            Err(KeyError::RsaTooShort { min: 3072, .. })
        ));
        assert!(check_key(&rsa(3072), true).is_ok());
    }

    #[test]
    fn curves_algs_private_members_and_sets() {
        let ec = |crv: &str, alg: Option<&str>| {
            let mut k = json!({"kty": "EC", "crv": crv, "x": "AA", "y": "AA"});
            if let Some(a) = alg {
                k["alg"] = json!(a);
            }
            k
        };
        assert!(check_key(&ec("P-256", None), false).is_ok());
        assert!(check_key(&ec("P-384", Some("ES384")), false).is_ok());
        assert_eq!(
            check_key(&ec("P-521", None), false),
            Err(KeyError::Curve("(no kid)".into()))
        );
        assert_eq!(
            check_key(&ec("secp256k1", None), false),
            Err(KeyError::Curve("(no kid)".into()))
        );
        assert!(matches!(
            check_key(&ec("P-256", Some("ES384")), false),
            Err(KeyError::Alg(_))
        ));
        let mut with_d = ec("P-256", None);
        with_d["d"] = json!("AA");
        assert!(matches!(check_key(&with_d, false), Err(KeyError::Private(_))));
        assert!(matches!(
            check_key(&json!({"kty": "oct", "k": "AA"}), false),
            Err(KeyError::Private(_))
        ));
        assert!(matches!(
            check_key(&json!({"kty": "oct"}), false),
            Err(KeyError::KeyType(_))
        ));
        let mut enc = rsa(2048);
        enc["use"] = json!("enc");
        assert!(matches!(check_key(&enc, false), Err(KeyError::Use(_))));
        let mut hs = rsa(2048);
        hs["alg"] = json!("HS256");
        assert!(matches!(check_key(&hs, false), Err(KeyError::Alg(_))));
        assert_eq!(check_key_set(&json!({"keys": []}), false), Err(KeyError::NotAKeySet));
        assert!(check_key_set(&json!({"keys": [rsa(2048)]}), false).is_ok());
    }
}
