//! Identifier newtypes. Each parses rather than validates (`FromStr`) and prints with
//! `Display`; none of them is a secret.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random id (UUID v4 from the OS CSPRNG).
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// An id made of 16 random bytes a caller drew from a CSPRNG (a UUID v4: the
            /// version and variant bits are set). Hot paths draw them from
            /// `crate::random`'s generator, sparing a syscall per id (issue 22).
            pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError::Malformed(stringify!($name)))
            }
        }
    };
}

uuid_id!(
    /// A natural or legal person in the registry.
    PersonId
);
uuid_id!(
    /// One eID means (a card, an authenticator, a password+TOTP pair, a password).
    MeansId
);
uuid_id!(
    /// One grant: the tokens issued from one authorization code, revoked together.
    GrantId
);
uuid_id!(
    /// A legal person in the registry (R-REG-5).
    LegalPersonId
);
uuid_id!(
    /// A mandate: a natural person acting for a legal person (R-BIND-1).
    MandateId
);

/// Errors of identifier parsing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The text is not an identifier of this kind.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// An OAuth client identifier (RFC 6749 §2.2): printable ASCII, at most 255 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(IdError::Malformed("ClientId"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stable national part of a person's identifier: issuing country and the national
/// code (e.g. `LT` + `38001085718`). The eIDAS form `XX/YY/zzzz` is derived per relying
/// party from its country YY and never stored as the key (DESIGN "Claims", R-DATA-3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonIdentifier {
    country: String,
    code: String,
}

impl PersonIdentifier {
    /// Builds an identifier from a two-letter country code and a national code.
    pub fn new(country: &str, code: &str) -> Result<Self, IdError> {
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        let code_ok = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !country_ok || !code_ok {
            return Err(IdError::Malformed("PersonIdentifier"));
        }
        Ok(Self {
            country: country.to_owned(),
            code: code.to_owned(),
        })
    }

    /// The issuing country (XX).
    pub fn country(&self) -> &str {
        &self.country
    }

    /// The national code (zzzz).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The eIDAS form `XX/YY/zzzz` for a relying party in country `destination` (R-DATA-3).
    pub fn eidas_form(&self, destination: &str) -> String {
        format!("{}/{}/{}", self.country, destination, self.code)
    }
}

/// Accepts both the eIDAS form `XX/YY/zzzz` (the destination part is ignored: it is not
/// part of the person's identity) and the stored form `XX:zzzz`.
impl FromStr for PersonIdentifier {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [country, destination, code] => {
                if destination.len() != 2 || !destination.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(IdError::Malformed("PersonIdentifier"));
                }
                Self::new(country, code)
            }
            [single] => match single.split_once(':') {
                Some((country, code)) => Self::new(country, code),
                None => Err(IdError::Malformed("PersonIdentifier")),
            },
            _ => Err(IdError::Malformed("PersonIdentifier")),
        }
    }
}

/// The stored form `XX:zzzz`.
impl fmt::Display for PersonIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.country, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_data_3_identifier_parses_eidas_form_and_derives_per_destination() {
        let id: PersonIdentifier = "LT/LT/38001085718".parse().unwrap();
        assert_eq!(id.country(), "LT");
        assert_eq!(id.code(), "38001085718");
        assert_eq!(id.eidas_form("LV"), "LT/LV/38001085718");
        assert_eq!(id.to_string(), "LT:38001085718");
        assert_eq!("LT:38001085718".parse::<PersonIdentifier>().unwrap(), id);
    }

    #[test]
    fn r_auth_5_new_ids_are_random_version_4_uuids() {
        let a = GrantId::from_random_bytes([0xff; 16]);
        let b = GrantId::from_random_bytes([0; 16]);
        assert_ne!(a, b);
        for id in [a.0, b.0] {
            assert_eq!(id.get_version(), Some(uuid::Version::Random));
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
    }

    #[test]
    fn malformed_identifiers_are_refused() {
        for bad in [
            "",
            "LT",
            "lt/LT/1",
            "LT/LT/",
            "LT/LT/a b",
            "LTU/LT/1",
            "LT/LT/1/2",
            "LT/xx/1",
        ] {
            assert!(bad.parse::<PersonIdentifier>().is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids_are_printable_ascii() {
        assert!("rp-1".parse::<ClientId>().is_ok());
        assert!("".parse::<ClientId>().is_err());
        assert!("a b".parse::<ClientId>().is_err());
        assert!("x".repeat(256).parse::<ClientId>().is_err());
    }
}
