//! The lifecycle of a means as a state machine (DESIGN "eID means and lifecycle",
//! R-ISS-3, R-LIFE-1..4, R-RENEW-1).
//!
//! ```text
//!  applied --approve(2nd officer)--> issued --activate(holder, code, accept)--> active
//!  applied --reject--> rejected                  issued --code expired--> expired
//!  active --suspend--> suspended --reactivate(identity re-verified)--> active
//!  active|suspended|issued --revoke--> revoked (final)
//!  active|suspended --validity ends--> expired
//!  active --renew--> new means (old revoked, reason `renewed`, when the new one activates)
//! ```
//!
//! Commands that need a proof carry it: a [`SecondOfficerApproval`], an
//! [`ActivationAccepted`] or an [`IdentityReverified`] can only be built by the code that
//! checks them (`proof.rs`), so skipping a check does not compile. [`apply`] hoists one
//! `match` over (state, command); its fallback arm is the 409 of the helpdesk API, and a
//! table test walks every pair so that an added state cannot go unhandled unnoticed.

use super::proof::{ActivationAccepted, IdentityReverified, SecondOfficerApproval};
use super::MeansStatus;

/// A lifecycle command.
#[derive(Debug)]
pub enum Command {
    /// A second officer approves an application (four-eyes, R-ISS-3).
    Approve(SecondOfficerApproval),
    /// The application is refused.
    Reject,
    /// The holder activated with the code and accepted responsibility (R-ISS-2/3).
    Activate(ActivationAccepted),
    /// Temporary block (R-LIFE-1).
    Suspend,
    /// Back to active after the holder's identity was verified again (R-LIFE-3).
    Reactivate(IdentityReverified),
    /// Final (R-LIFE-4).
    Revoke,
    /// Validity or activation period ended.
    Expire,
}

impl Command {
    /// The command's wire name (audit and errors).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Approve(_) => "approve",
            Command::Reject => "reject",
            Command::Activate(_) => "activate",
            Command::Suspend => "suspend",
            Command::Reactivate(_) => "reactivate",
            Command::Revoke => "revoke",
            Command::Expire => "expire",
        }
    }
}

/// The transition is not allowed from this state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {command} a means that is {from}")]
pub struct TransitionError {
    /// The current state.
    pub from: &'static str,
    /// The refused command.
    pub command: &'static str,
}

/// The state after `command`, or why not.
pub fn apply(from: MeansStatus, command: &Command) -> Result<MeansStatus, TransitionError> {
    use MeansStatus as S;
    Ok(match (from, command) {
        (S::Applied, Command::Approve(_)) => S::Issued,
        (S::Applied, Command::Reject) => S::Rejected,
        (S::Issued, Command::Activate(_)) => S::Active,
        (S::Issued | S::Active | S::Suspended, Command::Expire) => S::Expired,
        (S::Active, Command::Suspend) => S::Suspended,
        (S::Suspended, Command::Reactivate(_)) => S::Active,
        (S::Issued | S::Active | S::Suspended, Command::Revoke) => S::Revoked,
        (from, command) => {
            return Err(TransitionError {
                from: from.as_str(),
                command: command.name(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::PersonId;
    use crate::domain::loa::Loa;
    use crate::domain::means::proof::{Verification, VerificationMethod};

    fn commands() -> Vec<Command> {
        let a = PersonId::new();
        let b = PersonId::new();
        vec![
            Command::Approve(SecondOfficerApproval::check(a, b).unwrap()),
            Command::Reject,
            Command::Activate(ActivationAccepted::for_tests()),
            Command::Suspend,
            Command::Reactivate(
                IdentityReverified::check(
                    &Verification {
                        method: VerificationMethod::InPerson,
                        evidence: "passport LT1234567 checked".into(),
                    },
                    Loa::High,
                    Loa::High,
                )
                .unwrap(),
            ),
            Command::Revoke,
            Command::Expire,
        ]
    }

    /// Every (state, command) pair against the DESIGN diagram.
    #[test]
    fn r_life_4_every_state_and_command_pair_follows_the_diagram() {
        use MeansStatus as S;
        let allowed: &[(S, &str, S)] = &[
            (S::Applied, "approve", S::Issued),
            (S::Applied, "reject", S::Rejected),
            (S::Issued, "activate", S::Active),
            (S::Issued, "expire", S::Expired),
            (S::Issued, "revoke", S::Revoked),
            (S::Active, "suspend", S::Suspended),
            (S::Active, "revoke", S::Revoked),
            (S::Active, "expire", S::Expired),
            (S::Suspended, "reactivate", S::Active),
            (S::Suspended, "revoke", S::Revoked),
            (S::Suspended, "expire", S::Expired),
        ];
        let states = [
            S::Applied,
            S::Issued,
            S::Active,
            S::Suspended,
            S::Revoked,
            S::Expired,
            S::Rejected,
        ];
        for from in states {
            for command in commands() {
                let expected = allowed
                    .iter()
                    .find(|(f, c, _)| *f == from && *c == command.name())
                    .map(|(_, _, to)| *to);
                match (apply(from, &command), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} {}", command.name()),
                    (Err(e), None) => assert_eq!(e.command, command.name()),
                    (got, want) => panic!("{from:?} {}: got {got:?}, want {want:?}", command.name()),
                }
            }
        }
    }

    #[test]
    fn r_life_4_revoked_is_final() {
        for command in commands() {
            assert!(apply(MeansStatus::Revoked, &command).is_err());
        }
    }
}
