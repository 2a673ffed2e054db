//! Levels of assurance (eIDAS 2015/1502), factors, and RFC 8176 `amr` values.
//!
//! Achieved LoA = min(means' assigned LoA, kind cap from config, what the ceremony
//! proved) (DESIGN "Authentication and LoA", R-SUP-2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod caps;

pub use caps::LoaCaps;

/// An eIDAS level of assurance. Ordered: `Low < Substantial < High`; a higher level
/// includes every requirement of the lower ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loa {
    /// `http://eidas.europa.eu/LoA/low`
    Low,
    /// `http://eidas.europa.eu/LoA/substantial`
    Substantial,
    /// `http://eidas.europa.eu/LoA/high`
    High,
}

/// Prefix of the eIDAS LoA URIs used as OIDC `acr` values.
pub const EIDAS_ACR_PREFIX: &str = "http://eidas.europa.eu/LoA/";

impl Loa {
    /// Every level, lowest first.
    pub const ALL: [Loa; 3] = [Loa::Low, Loa::Substantial, Loa::High];

    /// The short name (`low`, `substantial`, `high`).
    pub fn short(self) -> &'static str {
        match self {
            Loa::Low => "low",
            Loa::Substantial => "substantial",
            Loa::High => "high",
        }
    }

    /// The eIDAS URI, the default `acr` form.
    pub fn uri(self) -> &'static str {
        match self {
            Loa::Low => "http://eidas.europa.eu/LoA/low",
            Loa::Substantial => "http://eidas.europa.eu/LoA/substantial",
            Loa::High => "http://eidas.europa.eu/LoA/high",
        }
    }

    /// Parses an `acr` value: the eIDAS URI or the short name (accepted on input, as
    /// Estonia's TARA uses). Unknown values are `None`, never "assume the highest".
    pub fn from_acr(value: &str) -> Option<Loa> {
        let short = value.strip_prefix(EIDAS_ACR_PREFIX).unwrap_or(value);
        match short {
            "low" => Some(Loa::Low),
            "substantial" => Some(Loa::Substantial),
            "high" => Some(Loa::High),
            _ => None,
        }
    }

    /// The achieved level: the lowest of what was assigned, what the kind is capped at,
    /// and what the ceremony proved.
    pub fn achieved(assigned: Loa, cap: Loa, ceremony: Loa) -> Loa {
        assigned.min(cap).min(ceremony)
    }
}

impl fmt::Display for Loa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

impl FromStr for Loa {
    type Err = UnknownLoa;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Loa::from_acr(s).ok_or(UnknownLoa)
    }
}

/// The text is not a level of assurance.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown level of assurance")]
pub struct UnknownLoa;

/// Authentication Method Reference values (RFC 8176) that eidgate emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amr {
    /// Proof-of-possession of a hardware-secured key.
    Hwk,
    /// Multiple-factor authentication.
    Mfa,
    /// One-time password.
    Otp,
    /// Personal identification number.
    Pin,
    /// Proof-of-possession of a key (software or unattested).
    Pop,
    /// Password-based authentication.
    Pwd,
    /// Smart card.
    Sc,
    /// User presence/verification test.
    User,
}

impl Amr {
    /// The RFC 8176 string.
    pub fn as_str(self) -> &'static str {
        match self {
            Amr::Hwk => "hwk",
            Amr::Mfa => "mfa",
            Amr::Otp => "otp",
            Amr::Pin => "pin",
            Amr::Pop => "pop",
            Amr::Pwd => "pwd",
            Amr::Sc => "sc",
            Amr::User => "user",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sup_2_achieved_loa_is_the_minimum_of_assigned_cap_and_ceremony() {
        assert_eq!(Loa::achieved(Loa::High, Loa::High, Loa::High), Loa::High);
        assert_eq!(Loa::achieved(Loa::High, Loa::Substantial, Loa::High), Loa::Substantial);
        assert_eq!(Loa::achieved(Loa::Low, Loa::High, Loa::High), Loa::Low);
        assert_eq!(Loa::achieved(Loa::High, Loa::High, Loa::Low), Loa::Low);
    }

    #[test]
    fn acr_values_parse_uri_and_short_forms_and_refuse_unknown() {
        assert_eq!(Loa::from_acr("http://eidas.europa.eu/LoA/high"), Some(Loa::High));
        assert_eq!(Loa::from_acr("substantial"), Some(Loa::Substantial));
        assert_eq!(Loa::from_acr("http://eidas.europa.eu/LoA/extreme"), None);
        assert_eq!(Loa::from_acr("urn:mace:incommon:iap:silver"), None);
        assert!(Loa::Low < Loa::Substantial && Loa::Substantial < Loa::High);
    }
}
