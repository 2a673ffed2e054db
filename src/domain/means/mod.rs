//! eID means: kinds, states and the validity rule every login checks (R-AUTH-1).
//! The lifecycle transitions are in [`state`], their proofs in [`proof`].

pub mod proof;
pub mod state;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ids::{MeansId, PersonId};
use super::loa::Loa;
use super::UnixTime;

/// The kinds of means eidgate issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeansKind {
    /// FIDO2 / WebAuthn credential with user verification.
    Fido,
    /// Password only (low).
    Password,
    /// Smartcard key + certificate, Web eID challenge-response.
    Smartcard,
    /// Password + TOTP app.
    Totp,
}

impl MeansKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MeansKind::Fido => "fido",
            MeansKind::Password => "password",
            MeansKind::Smartcard => "smartcard",
            MeansKind::Totp => "totp",
        }
    }

    /// The highest LoA a kind can ever reach by its factors (R-MEANS-1..3); the
    /// configured cap may lower it further (R-SUP-2).
    pub fn ceiling(self) -> Loa {
        match self {
            MeansKind::Fido | MeansKind::Smartcard => Loa::High,
            MeansKind::Totp => Loa::Substantial,
            MeansKind::Password => Loa::Low,
        }
    }
}

impl FromStr for MeansKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fido" => Ok(MeansKind::Fido),
            "password" => Ok(MeansKind::Password),
            "smartcard" => Ok(MeansKind::Smartcard),
            "totp" => Ok(MeansKind::Totp),
            _ => Err(UnknownKind),
        }
    }
}

impl fmt::Display for MeansKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a kind of means.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown kind of means")]
pub struct UnknownKind;

/// Lifecycle state of a means (DESIGN diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeansStatus {
    /// Holder activated it; the only state that authenticates.
    Active,
    /// Applied for, waiting for a second officer's approval.
    Applied,
    /// Validity ended (or the activation code expired).
    Expired,
    /// Approved and issued; waiting for the holder's activation.
    Issued,
    /// Refused at approval.
    Rejected,
    /// Revoked: final.
    Revoked,
    /// Temporarily blocked.
    Suspended,
}

impl MeansStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MeansStatus::Active => "active",
            MeansStatus::Applied => "applied",
            MeansStatus::Expired => "expired",
            MeansStatus::Issued => "issued",
            MeansStatus::Rejected => "rejected",
            MeansStatus::Revoked => "revoked",
            MeansStatus::Suspended => "suspended",
        }
    }
}

impl FromStr for MeansStatus {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => MeansStatus::Active,
            "applied" => MeansStatus::Applied,
            "expired" => MeansStatus::Expired,
            "issued" => MeansStatus::Issued,
            "rejected" => MeansStatus::Rejected,
            "revoked" => MeansStatus::Revoked,
            "suspended" => MeansStatus::Suspended,
            _ => return Err(UnknownKind),
        })
    }
}

/// An eID means as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EidMeans {
    /// Id.
    pub id: MeansId,
    /// The holder.
    pub holder: PersonId,
    /// Kind.
    pub kind: MeansKind,
    /// Assigned LoA (never above the holder's proofing LoA nor the kind's ceiling).
    pub loa: Loa,
    /// Lifecycle state.
    pub status: MeansStatus,
    /// Start of validity.
    pub valid_from: UnixTime,
    /// End of validity.
    pub valid_until: UnixTime,
    /// Optimistic-concurrency version, bumped by each transition.
    pub version: i64,
}

/// Why a means cannot authenticate now. Deliberately coarse on the wire: the login API
/// answers `means-not-active` without saying which state (DESIGN "Login API").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotUsable {
    /// State is not `active`.
    #[error("means is {0:?}")]
    State(MeansStatus),
    /// Outside its validity period.
    #[error("means is outside its validity period")]
    OutsideValidity,
}

impl EidMeans {
    /// R-AUTH-1: the means exists (the caller found it), is `active`, and is within its
    /// validity period at `now`.
    pub fn check_usable(&self, now: UnixTime) -> Result<(), NotUsable> {
        if self.status != MeansStatus::Active {
            return Err(NotUsable::State(self.status));
        }
        if now < self.valid_from || now >= self.valid_until {
            return Err(NotUsable::OutsideValidity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn means(status: MeansStatus) -> EidMeans {
        EidMeans {
            id: MeansId::new(),
            holder: PersonId::new(),
            kind: MeansKind::Password,
            loa: Loa::Low,
            status,
            valid_from: 100,
            valid_until: 200,
            version: 1,
        }
    }

    #[test]
    fn r_auth_1_only_active_means_within_validity_authenticate() {
        assert!(means(MeansStatus::Active).check_usable(150).is_ok());
        for s in [
            MeansStatus::Applied,
            MeansStatus::Issued,
            MeansStatus::Suspended,
            MeansStatus::Revoked,
            MeansStatus::Expired,
            MeansStatus::Rejected,
        ] {
            assert_eq!(means(s).check_usable(150), Err(NotUsable::State(s)));
        }
        assert_eq!(
            means(MeansStatus::Active).check_usable(99),
            Err(NotUsable::OutsideValidity)
        );
        assert_eq!(
            means(MeansStatus::Active).check_usable(200),
            Err(NotUsable::OutsideValidity)
        );
    }

    #[test]
    fn r_means_1_r_means_2_one_factor_stays_low_and_two_factors_never_exceed_substantial() {
        assert_eq!(MeansKind::Password.ceiling(), Loa::Low);
        assert_eq!(MeansKind::Totp.ceiling(), Loa::Substantial);
        assert_eq!(MeansKind::Smartcard.ceiling(), Loa::High);
    }

    #[test]
    fn kinds_and_states_round_trip() {
        for k in [
            MeansKind::Fido,
            MeansKind::Password,
            MeansKind::Smartcard,
            MeansKind::Totp,
        ] {
            assert_eq!(k.as_str().parse::<MeansKind>().unwrap(), k);
        }
        assert_eq!("suspended".parse::<MeansStatus>().unwrap(), MeansStatus::Suspended);
        assert_eq!(MeansKind::Totp.ceiling(), Loa::Substantial);
    }
}
