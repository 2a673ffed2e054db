//! The audit keys a verifier trusts (R-LOG-2, R-SUP-3; issue 17): `eidgate audit
//! verify-bundle FILE --trust KEYS` accepts a bundle only when it and its checkpoints are
//! signed by one of these keys, never by a key the bundle carries itself.
//!
//! `KEYS` is what `GET /audit/keys` publishes (a JWKS of the `audit-sign` keys) or PEM
//! `PUBLIC KEY` blocks (SPKI, EC P-256). Every key's `kid` is its RFC 7638 thumbprint,
//! computed here from the key material; a JWKS entry whose `kid` says otherwise is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::DecodePublicKey as _;

use crate::hsm::keys::{Curve, PublicKey};
use crate::hsm::AuditPublicKey;

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// The RFC 7638 thumbprint of a P-256 key given as base64url coordinates.
pub fn thumbprint(x: &str, y: &str) -> Option<String> {
    let (x, y) = (URL_SAFE_NO_PAD.decode(x).ok()?, URL_SAFE_NO_PAD.decode(y).ok()?);
    // Refuse what is not a point on the curve.
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    p256::PublicKey::from_sec1_bytes(&sec1).ok()?;
    Some(
        PublicKey::Ec {
            curve: Curve::P256,
            x,
            y,
        }
        .thumbprint()
        .0,
    )
}

/// Does `key.kid` name its own key material?
pub fn kid_matches(key: &AuditPublicKey) -> bool {
    thumbprint(&key.x, &key.y).is_some_and(|t| t == key.kid)
}

fn from_point(key: &p256::PublicKey) -> Result<AuditPublicKey, String> {
    let point = key.to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err("the key is the point at infinity".into());
    };
    let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
    let kid = thumbprint(&x, &y).ok_or("not a P-256 key")?;
    Ok(AuditPublicKey { kid, x, y })
}

/// Parses trusted keys: a JWKS (`{"keys": [...]}`), one JWK, or PEM `PUBLIC KEY` blocks.
pub fn parse(text: &str) -> Result<Vec<AuditPublicKey>, String> {
    let trimmed = text.trim_start();
    let keys = if trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| format!("not JSON: {e}"))?;
        let jwks = match value.get("keys").and_then(|k| k.as_array()) {
            Some(keys) => keys.clone(),
            None => vec![value],
        };
        jwks.iter().map(from_jwk).collect::<Result<Vec<_>, _>>()?
    } else {
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(PEM_BEGIN) {
            let after = &rest[start..];
            let end = after.find(PEM_END).ok_or("a PEM block is not closed")? + PEM_END.len();
            let key = p256::PublicKey::from_public_key_pem(&after[..end])
                .map_err(|e| format!("not an EC P-256 public key: {e}"))?;
            keys.push(from_point(&key)?);
            rest = &after[end..];
        }
        keys
    };
    if keys.is_empty() {
        return Err("no keys found (expected a JWKS or PEM PUBLIC KEY blocks)".into());
    }
    Ok(keys)
}

fn from_jwk(jwk: &serde_json::Value) -> Result<AuditPublicKey, String> {
    let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    if field("kty") != Some("EC") || field("crv") != Some("P-256") {
        return Err("only EC P-256 keys sign audit checkpoints".into());
    }
    let (Some(x), Some(y)) = (field("x"), field("y")) else {
        return Err("a JWK without x or y".into());
    };
    let kid = thumbprint(x, y).ok_or("a JWK that is not a P-256 point")?;
    if let Some(claimed) = field("kid") {
        if claimed != kid {
            return Err(format!(
                "kid {claimed} is not the RFC 7638 thumbprint of its key ({kid})"
            ));
        }
    }
    Ok(AuditPublicKey {
        kid,
        x: x.to_owned(),
        y: y.to_owned(),
    })
}

/// The JWKS that `GET /audit/keys` publishes.
pub fn jwks(keys: &[AuditPublicKey]) -> serde_json::Value {
    serde_json::json!({
        "keys": keys.iter().map(|k| serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": k.kid, "x": k.x, "y": k.y,
        })).collect::<Vec<_>>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 A.3 example key (P-256).
    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn r_log_2_a_jwks_kid_must_be_the_thumbprint_of_its_key() {
        let kid = thumbprint(X, Y).unwrap_or_default();
        let good = jwks(&[AuditPublicKey {
            kid: kid.clone(),
            x: X.into(),
            y: Y.into(),
        }]);
        let parsed = parse(&good.to_string()).unwrap_or_default();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].kid, kid);
        let mut lying = good.clone();
        lying["keys"][0]["kid"] = "someone-else".into();
        assert!(parse(&lying.to_string()).is_err());
        let mut off_curve = good;
        off_curve["keys"][0]["y"] = X.into();
        assert!(parse(&off_curve.to_string()).is_err());
    }

    #[test]
    fn r_log_2_pem_public_keys_parse_with_their_thumbprint() {
        let sec1 = [
            vec![4u8],
            URL_SAFE_NO_PAD.decode(X).unwrap_or_default(),
            URL_SAFE_NO_PAD.decode(Y).unwrap_or_default(),
        ]
        .concat();
        let key = p256::PublicKey::from_sec1_bytes(&sec1).map_err(|e| e.to_string());
        let pem = key
            .map(|k| {
                use p256::pkcs8::EncodePublicKey as _;
                k.to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap_or_default()
            })
            .unwrap_or_default();
        let parsed = parse(&format!("{pem}\n{pem}")).unwrap_or_default();
        assert_eq!(parsed.len(), 2);
        assert_eq!(Some(parsed[0].kid.clone()), thumbprint(X, Y));
        assert!(parse("nothing here").is_err());
    }
}
