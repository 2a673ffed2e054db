//! Secret values: they never print (`Debug` is `Name([redacted])`, no `Display`), are
//! zeroised on drop, and compare in constant time (R-AUTH-3, R-SEC-2).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            /// Wraps a secret string.
            pub fn new(value: String) -> Self {
                Self(Zeroizing::new(value))
            }

            /// The secret itself: call only where it is used (hashing, comparison).
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::new)
            }
        }
    };
}

secret_type!(
    /// A human-chosen password (hashed with argon2id, never stored).
    Password
);
secret_type!(
    /// An OAuth client secret (256 bits, generated; stored as SHA-256).
    ClientSecret
);
secret_type!(
    /// A bearer token: authorization code, access token or refresh token.
    BearerToken
);

/// SHA-256 of a high-entropy secret. Generated secrets (client secrets, tokens, codes)
/// carry 256 bits of entropy, so a fast hash is enough: argon2 is for human-chosen
/// secrets only (DESIGN "Client secrets are never hashed with a KDF").
pub fn fingerprint(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The fingerprint as lowercase hex: the storage key for tokens and codes.
pub fn fingerprint_hex(secret: &str) -> String {
    hex_lower(&fingerprint(secret))
}

/// Constant-time equality of two byte strings (length leaks, content does not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sec_2_secrets_never_print() {
        let p = Password::new("correct horse".into());
        assert_eq!(format!("{p:?}"), "Password([redacted])");
        let s = ClientSecret::new("s3cr3t".into());
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn fingerprints_compare_in_constant_time() {
        let a = fingerprint("x");
        assert!(ct_eq(&a, &fingerprint("x")));
        assert!(!ct_eq(&a, &fingerprint("y")));
        assert_eq!(fingerprint_hex("abc").len(), 64);
        assert!(fingerprint_hex("abc").starts_with("ba7816bf"));
    }
}
