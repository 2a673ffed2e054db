//! The key inventory, independent of PKCS#11 calls: label grammar (`<prefix><n>`), kinds and
//! their algorithms, public keys as read from the token, `kid` (RFC 7638 JWK thumbprint)
//! and JWK serialisation (R-AUTH-6, R-AUTH-7, R-SEC-2). Which key is active when is
//! `inventory.rs`'s job.
//!
//! Only public material is ever handled here; private keys stay in the token and are known
//! by label and `CKA_ID` only. Reading objects from the token is `pkcs11/objects.rs`'s job.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{HsmError, Kid};

/// What a key is for. Each kind has a label prefix; generation `n` of a kind is labelled
/// `<prefix><n>` (`oidc-sign-1`, `oidc-sign-rsa-2`, ...). The highest `n` is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// EC P-256 key `audit-sign-<n>` that signs audit-log checkpoints.
    AuditSign,
    /// EC P-384 key `ca-<n>` of the issuing CA for smartcard authentication certificates.
    Ca,
    /// AES-256 key `data-wrap-<n>` that encrypts stored secrets.
    DataWrap,
    /// EC P-256 key `oidc-sign-<n>`: ES256 ID tokens and JWT access tokens.
    OidcEc,
    /// RSA-3072 key `oidc-sign-rsa-<n>`: RS256 and PS256 for clients that need RSA.
    OidcRsa,
}

/// The key material a [`KeyKind`] is generated as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMaterial {
    /// AES with a 256-bit key (a secret key object).
    Aes256,
    /// An EC key pair on a named curve.
    Ec(Curve),
    /// An RSA key pair with a 3072-bit modulus and e = 65537.
    Rsa3072,
}

/// The named curves eidgate generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

impl Curve {
    /// DER of the curve's OID, as `CKA_EC_PARAMS` wants it.
    pub fn ec_params(self) -> &'static [u8] {
        match self {
            // 1.2.840.10045.3.1.7
            Curve::P256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            // 1.3.132.0.34
            Curve::P384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        }
    }

    /// The JWK `crv` name.
    pub fn jwk_name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }

    /// Bytes of one coordinate.
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

impl KeyKind {
    /// Every kind, in label-prefix order.
    pub const ALL: [KeyKind; 5] = [
        KeyKind::AuditSign,
        KeyKind::Ca,
        KeyKind::DataWrap,
        KeyKind::OidcEc,
        KeyKind::OidcRsa,
    ];

    /// The label prefix; a label is the prefix followed by a generation number.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::AuditSign => "audit-sign-",
            KeyKind::Ca => "ca-",
            KeyKind::DataWrap => "data-wrap-",
            KeyKind::OidcEc => "oidc-sign-",
            KeyKind::OidcRsa => "oidc-sign-rsa-",
        }
    }

    /// The label of generation `n`.
    pub fn label(self, generation: u32) -> String {
        format!("{}{generation}", self.prefix())
    }

    /// Parses a label into its kind and generation; `None` for labels that are not ours.
    /// `oidc-sign-rsa-1` is not an `OidcEc` label because `rsa-1` is not a number.
    pub fn parse_label(label: &str) -> Option<(KeyKind, u32)> {
        KeyKind::ALL.into_iter().find_map(|kind| {
            let rest = label.strip_prefix(kind.prefix())?;
            if rest.is_empty() || rest.starts_with('0') || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest.parse().ok().map(|n| (kind, n))
        })
    }

    /// How keys of this kind are generated.
    pub fn material(self) -> KeyMaterial {
        match self {
            KeyKind::AuditSign | KeyKind::OidcEc => KeyMaterial::Ec(Curve::P256),
            KeyKind::Ca => KeyMaterial::Ec(Curve::P384),
            KeyKind::DataWrap => KeyMaterial::Aes256,
            KeyKind::OidcRsa => KeyMaterial::Rsa3072,
        }
    }

    /// The algorithms keys of this kind serve, for listings.
    pub fn algorithm(self) -> &'static str {
        match self {
            KeyKind::AuditSign | KeyKind::OidcEc => "ES256",
            KeyKind::Ca => "ES384",
            KeyKind::DataWrap => "AES-256",
            KeyKind::OidcRsa => "RS256,PS256",
        }
    }

    /// Whether the public keys of this kind belong in the OIDC JWKS.
    pub fn in_jwks(self) -> bool {
        matches!(self, KeyKind::OidcEc | KeyKind::OidcRsa)
    }
}

impl fmt::Display for KeyKind {
    /// The prefix without its trailing dash (`oidc-sign-rsa`), as the CLI spells kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix().trim_end_matches('-'))
    }
}

/// A public key read from the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// EC point coordinates, big-endian and of the curve's full length.
    Ec {
        /// Curve.
        curve: Curve,
        /// X coordinate.
        x: Vec<u8>,
        /// Y coordinate.
        y: Vec<u8>,
    },
    /// RSA modulus and public exponent, big-endian without leading zeros.
    Rsa {
        /// `n`.
        modulus: Vec<u8>,
        /// `e`.
        exponent: Vec<u8>,
    },
}

impl PublicKey {
    /// Parses `CKA_EC_POINT`: a DER OCTET STRING around the uncompressed point
    /// `04 || x || y` (PKCS#11 §2.3.3). Some modules return the bare point; both are accepted.
    pub fn from_ec_point(curve: Curve, ec_point: &[u8]) -> Result<PublicKey, HsmError> {
        let coordinate = curve.coordinate_len();
        let point_len = 1 + 2 * coordinate;
        let point = if ec_point.len() == point_len && ec_point.first() == Some(&0x04) {
            ec_point
        } else {
            der_octet_string(ec_point)
                .ok_or_else(|| HsmError::Pkcs11("CKA_EC_POINT is not a DER OCTET STRING".into()))?
        };
        if point.len() != point_len || point.first() != Some(&0x04) {
            return Err(HsmError::Pkcs11(
                "CKA_EC_POINT is not an uncompressed point of the curve".into(),
            ));
        }
        let (x, y) = point[1..].split_at(coordinate);
        Ok(PublicKey::Ec {
            curve,
            x: x.to_vec(),
            y: y.to_vec(),
        })
    }

    /// Builds an RSA key from `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`.
    pub fn from_rsa(modulus: &[u8], exponent: &[u8]) -> Result<PublicKey, HsmError> {
        let modulus = strip_leading_zeros(modulus);
        let exponent = strip_leading_zeros(exponent);
        if modulus.is_empty() || exponent.is_empty() {
            return Err(HsmError::Pkcs11("empty RSA modulus or exponent".into()));
        }
        Ok(PublicKey::Rsa {
            modulus: modulus.to_vec(),
            exponent: exponent.to_vec(),
        })
    }

    /// `kid`: the RFC 7638 thumbprint, base64url(SHA-256 of the JWK's required members in
    /// lexicographic order, no whitespace).
    pub fn thumbprint(&self) -> Kid {
        // The members are base64url strings and fixed names, so no JSON escaping is needed.
        let canonical = match self {
            PublicKey::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.jwk_name(),
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            ),
            PublicKey::Rsa { modulus, exponent } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(exponent),
                URL_SAFE_NO_PAD.encode(modulus)
            ),
        };
        Kid(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
    }

    fn jwk<'a>(&self, kid: &'a Kid, alg: Option<&'static str>) -> Jwk<'a> {
        match self {
            PublicKey::Ec { curve, x, y } => Jwk {
                kty: "EC",
                crv: Some(curve.jwk_name()),
                x: Some(URL_SAFE_NO_PAD.encode(x)),
                y: Some(URL_SAFE_NO_PAD.encode(y)),
                n: None,
                e: None,
                kid: &kid.0,
                key_use: "sig",
                alg,
            },
            PublicKey::Rsa { modulus, exponent } => Jwk {
                kty: "RSA",
                crv: None,
                x: None,
                y: None,
                n: Some(URL_SAFE_NO_PAD.encode(modulus)),
                e: Some(URL_SAFE_NO_PAD.encode(exponent)),
                kid: &kid.0,
                key_use: "sig",
                alg,
            },
        }
    }
}

/// One JWK as published (RFC 7517); members in a stable order.
#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    kid: &'a str,
    #[serde(rename = "use")]
    key_use: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<&'static str>,
}

#[derive(Serialize)]
struct JwkSet<'a> {
    keys: Vec<Jwk<'a>>,
}

/// `{"keys":[...]}` of `(kid, public key, alg)` in the given order.
pub(crate) fn jwk_set_json<'a>(keys: impl Iterator<Item = (&'a Kid, &'a PublicKey, Option<&'static str>)>) -> Vec<u8> {
    let keys = keys.map(|(kid, public, alg)| public.jwk(kid, alg)).collect();
    // Serialising plain strings into a Vec cannot fail; an empty set is the safe answer.
    serde_json::to_vec(&JwkSet { keys }).unwrap_or_else(|_| br#"{"keys":[]}"#.to_vec())
}

/// Returns the content of a DER OCTET STRING (tag 0x04, short or long length form).
fn der_octet_string(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 2 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        (
            len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    (rest.len() == len).then_some(rest)
}

/// The content of a DER OCTET STRING (a `CKA_EC_POINT` as most modules return it).
pub fn der_octet_string_content(der: &[u8]) -> Option<&[u8]> {
    der_octet_string(der)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_back_to_their_kind() {
        for kind in KeyKind::ALL {
            assert_eq!(KeyKind::parse_label(&kind.label(7)), Some((kind, 7)));
        }
        assert_eq!(KeyKind::parse_label("oidc-sign-rsa-12"), Some((KeyKind::OidcRsa, 12)));
        assert_eq!(KeyKind::parse_label("oidc-sign-"), None);
        assert_eq!(KeyKind::parse_label("oidc-sign-01"), None);
        assert_eq!(KeyKind::parse_label("oidc-sign-1x"), None);
        assert_eq!(KeyKind::parse_label("card-auth-1"), None);
        assert_eq!(KeyKind::OidcRsa.to_string(), "oidc-sign-rsa");
    }

    #[test]
    fn r_auth_6_kid_is_the_rfc_7638_thumbprint() {
        // RFC 7638 §3.1 example key and its thumbprint.
        let n = URL_SAFE_NO_PAD
            .decode(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            )
            .unwrap();
        let key = PublicKey::from_rsa(&n, &[0x01, 0x00, 0x01]).unwrap();
        assert_eq!(key.thumbprint().0, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn ec_points_parse_with_and_without_the_octet_string() {
        let mut point = vec![0x04];
        point.extend(1..=64u8);
        let mut der = vec![0x04, 65];
        der.extend(&point);
        let a = PublicKey::from_ec_point(Curve::P256, &der).unwrap();
        let b = PublicKey::from_ec_point(Curve::P256, &point).unwrap();
        assert_eq!(a, b);
        let PublicKey::Ec { x, y, .. } = a else { panic!() };
        assert_eq!(x, (1..=32u8).collect::<Vec<_>>());
        assert_eq!(y, (33..=64u8).collect::<Vec<_>>());
        // P-384: 97-byte point, long-form length is not needed but short form is.
        let mut point = vec![0x04];
        point.extend([7u8; 96]);
        let mut der = vec![0x04, 0x81, 97];
        der.extend(&point);
        assert!(PublicKey::from_ec_point(Curve::P384, &der).is_ok());
        assert!(PublicKey::from_ec_point(Curve::P256, &der).is_err());
        assert!(PublicKey::from_ec_point(Curve::P256, &[0x04, 0x02, 0x04, 0x01]).is_err());
    }
}
