//! The Web eID authentication token (DESIGN "Smartcard login", CONTRACT; issue 4):
//! parsing exactly as specified, and the data the card signs.
//!
//! - The token is 100 to 10,000 characters of JSON with `unverifiedCertificate`,
//!   `algorithm`, `signature`, `format` and `appVersion` (later minor versions may add
//!   members, which are ignored; a repeated member is refused).
//! - `format` is `web-eid:1` or `web-eid:1.<minor>` with a decimal minor; `web-eid:10.0`,
//!   `web-eid:1.` or `web-eid:1.0.1` are refused.
//! - base64 is the standard alphabet with canonical padding: a truncated or otherwise
//!   malformed value is refused before anything is decoded further.
//! - The signed data is `hash(origin) || hash(nonce)`, with origin and nonce as UTF-8
//!   strings and `hash` the algorithm's hash; the card then signs that data with the
//!   algorithm (which hashes it once more), ECDSA as raw `r || s` (IEEE P1363).
//!
//! Must not: decide trust (that is `x509.rs`) or look at any state.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::Rejection;

/// Shortest accepted token, in characters.
pub const MIN_TOKEN_CHARS: usize = 100;
/// Longest accepted token, in characters.
pub const MAX_TOKEN_CHARS: usize = 10_000;

/// The signature algorithms a Web eID token may name (RFC 7518 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, 32-byte salt).
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

impl Algorithm {
    /// Parses the exact name; anything else is unsupported.
    pub fn parse(name: &str) -> Option<Algorithm> {
        Some(match name {
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "ES512" => Algorithm::ES512,
            "PS256" => Algorithm::PS256,
            "RS256" => Algorithm::RS256,
            _ => return None,
        })
    }

    /// The name as in the token.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::PS256 => "PS256",
            Algorithm::RS256 => "RS256",
        }
    }

    /// The algorithm's hash of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::ES256 | Algorithm::PS256 | Algorithm::RS256 => Sha256::digest(data).to_vec(),
            Algorithm::ES384 => Sha384::digest(data).to_vec(),
            Algorithm::ES512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// The data the card signs: `hash(origin) || hash(nonce)`.
pub fn signed_data(algorithm: Algorithm, origin: &str, nonce: &str) -> Vec<u8> {
    let mut data = algorithm.hash(origin.as_bytes());
    data.extend(algorithm.hash(nonce.as_bytes()));
    data
}

/// A parsed token. The certificate is not trusted yet: `x509.rs` decides.
#[derive(Clone, Debug)]
pub struct AuthToken {
    /// DER of `unverifiedCertificate`.
    pub certificate: Vec<u8>,
    /// The named algorithm.
    pub algorithm: Algorithm,
    /// Decoded signature.
    pub signature: Vec<u8>,
    /// `format` as sent (already checked).
    pub format: String,
    /// `appVersion` as sent (logged, never trusted).
    pub app_version: String,
}

/// The token as JSON, for the card stand-in and the browser page.
#[derive(Debug, Deserialize, Serialize)]
pub struct TokenJson {
    /// base64 DER of the authentication certificate.
    #[serde(rename = "unverifiedCertificate")]
    pub unverified_certificate: String,
    /// `ES256` ...
    pub algorithm: String,
    /// base64 signature.
    pub signature: String,
    /// `web-eid:1.0` ...
    pub format: String,
    /// URL of the app that made the token.
    #[serde(rename = "appVersion")]
    pub app_version: String,
}

/// Whether `format` is `web-eid:1` or `web-eid:1.<decimal minor>`.
pub fn format_supported(format: &str) -> bool {
    let Some(version) = format.strip_prefix("web-eid:") else {
        return false;
    };
    match version.split_once('.') {
        None => version == "1",
        Some((major, minor)) => {
            major == "1" && !minor.is_empty() && minor.len() <= 9 && minor.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// Strict standard base64 with canonical padding.
fn decode_base64(text: &str) -> Result<Vec<u8>, Rejection> {
    if text.is_empty() {
        return Err(Rejection::MalformedBase64);
    }
    STANDARD.decode(text).map_err(|_| Rejection::MalformedBase64)
}

/// Parses a token body (the raw JSON text) exactly as the contract says.
pub fn parse(body: &str) -> Result<AuthToken, Rejection> {
    let chars = body.chars().count();
    if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&chars) {
        return Err(Rejection::TokenSize);
    }
    let raw: TokenJson = serde_json::from_str(body).map_err(|_| Rejection::MalformedToken)?;
    if !format_supported(&raw.format) {
        return Err(Rejection::UnsupportedFormat);
    }
    let algorithm = Algorithm::parse(&raw.algorithm).ok_or(Rejection::UnsupportedAlgorithm)?;
    let certificate = decode_base64(&raw.unverified_certificate)?;
    let signature = decode_base64(&raw.signature)?;
    if raw.app_version.len() > 512 {
        return Err(Rejection::MalformedToken);
    }
    Ok(AuthToken {
        certificate,
        algorithm,
        signature,
        format: raw.format,
        app_version: raw.app_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(format: &str, algorithm: &str, cert: &str, signature: &str) -> String {
        serde_json::json!({
            "unverifiedCertificate": cert,
            "algorithm": algorithm,
            "signature": signature,
            "format": format,
            "appVersion": "https://web-eid.eu/web-eid-app/releases/2.5.0+0",
        })
        .to_string()
    }

    #[test]
    fn r_auth_5_format_is_parsed_exactly() {
        for ok in ["web-eid:1", "web-eid:1.0", "web-eid:1.1", "web-eid:1.12"] {
            assert!(format_supported(ok), "{ok}");
        }
        for bad in [
            "web-eid:10.0",
            "web-eid:1.",
            "web-eid:1.0.1",
            "web-eid:2.0",
            "web-eid:1.x",
            "web-eid: 1.0",
            "WEB-EID:1.0",
            "web-eid:1.+1",
            "web-eid:01.0",
            "",
        ] {
            assert!(!format_supported(bad), "{bad}");
        }
    }

    #[test]
    fn r_auth_5_token_size_base64_and_algorithm_are_checked() {
        let cert = STANDARD.encode([0x30u8; 120]);
        let sig = STANDARD.encode([1u8; 64]);
        assert!(parse(&token("web-eid:1.0", "ES256", &cert, &sig)).is_ok());
        assert_eq!(parse("{}").unwrap_err(), Rejection::TokenSize);
        let huge = token("web-eid:1.0", "ES256", &STANDARD.encode(vec![0u8; 8000]), &sig);
        assert_eq!(parse(&huge).unwrap_err(), Rejection::TokenSize);
        let truncated = &cert[..cert.len() - 1];
        assert_eq!(
            parse(&token("web-eid:1.0", "ES256", truncated, &sig)).unwrap_err(),
            Rejection::MalformedBase64
        );
        let url_safe = cert.replace('+', "-").replace('/', "_") + "-_";
        assert_eq!(
            parse(&token("web-eid:1.0", "ES256", &url_safe, &sig)).unwrap_err(),
            Rejection::MalformedBase64
        );
        assert_eq!(
            parse(&token("web-eid:10.0", "ES256", &cert, &sig)).unwrap_err(),
            Rejection::UnsupportedFormat
        );
        assert_eq!(
            parse(&token("web-eid:1.0", "HS256", &cert, &sig)).unwrap_err(),
            Rejection::UnsupportedAlgorithm
        );
        let duplicate = format!(
            r#"{{"format":"web-eid:1.0","format":"web-eid:1.0","algorithm":"ES256","signature":"{sig}","unverifiedCertificate":"{cert}","appVersion":"x"}}"#
        );
        assert_eq!(parse(&duplicate).unwrap_err(), Rejection::MalformedToken);
    }

    #[test]
    fn r_auth_5_signed_data_is_hash_of_origin_then_hash_of_nonce() {
        let data = signed_data(Algorithm::ES384, "https://id.example.lt", "bm9uY2U=");
        assert_eq!(data.len(), 96);
        assert_eq!(&data[..48], &Sha384::digest(b"https://id.example.lt")[..]);
        assert_eq!(&data[48..], &Sha384::digest(b"bm9uY2U=")[..]);
        assert_eq!(signed_data(Algorithm::RS256, "a", "b").len(), 64);
        assert_eq!(signed_data(Algorithm::ES512, "a", "b").len(), 128);
    }
}
