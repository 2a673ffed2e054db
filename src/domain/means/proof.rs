//! Capability types: each can only be built by the function that checks what it stands
//! for, and the state machine cannot be driven without one (STYLE §1.5).

use serde::{Deserialize, Serialize};

use crate::domain::ids::PersonId;
use crate::domain::loa::Loa;

/// Four-eyes (R-ISS-3): the officer who approves is not the one who registered.
#[derive(Debug)]
pub struct SecondOfficerApproval {
    approver: PersonId,
}

/// The same officer tried to register and approve.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the approving officer must differ from the registering officer")]
pub struct SameOfficer;

impl SecondOfficerApproval {
    /// Checks `registrar != approver`.
    pub fn check(registrar: PersonId, approver: PersonId) -> Result<Self, SameOfficer> {
        if registrar == approver {
            return Err(SameOfficer);
        }
        Ok(Self { approver })
    }

    /// The approving officer.
    pub fn approver(&self) -> PersonId {
        self.approver
    }
}

/// The holder proved the activation code within its period and attempts, and accepted
/// the terms of use and the security advice (R-REG-1, R-ISS-2, R-ISS-3).
#[derive(Debug)]
pub struct ActivationAccepted {
    /// Terms of use version accepted.
    pub terms_version: String,
    /// Security advice version accepted.
    pub security_advice_version: String,
}

impl ActivationAccepted {
    /// Built by the activation service after it verified the code and recorded the
    /// acceptance; `code_verified` is the token of that check.
    pub fn new(_code_verified: CodeVerified, terms_version: String, security_advice_version: String) -> Self {
        Self {
            terms_version,
            security_advice_version,
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self {
            terms_version: "t".into(),
            security_advice_version: "s".into(),
        }
    }
}

/// The activation code of a means was verified (only the activation service makes one).
#[derive(Debug)]
pub struct CodeVerified(());

impl CodeVerified {
    /// Records that the code verified; call only right after an argon2id match within
    /// the code's period and attempt limit.
    pub fn after_check() -> Self {
        Self(())
    }
}

/// How a caller proved who they are (DESIGN "Helpdesk API", R-LIFE-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// The holder authenticated to us (an ID token of ours, or the holder's own session).
    AuthenticatedHolder,
    /// The operator checked an identity document in person.
    InPerson,
    /// A reasoned request of a law-enforcement authority (legal basis in the evidence).
    LawEnforcementOrder,
    /// The holder knew the revocation secret issued with the means (phone callers).
    RevocationSecret,
}

impl VerificationMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationMethod::AuthenticatedHolder => "authenticated_holder",
            VerificationMethod::InPerson => "in_person",
            VerificationMethod::LawEnforcementOrder => "law_enforcement_order",
            VerificationMethod::RevocationSecret => "revocation_secret",
        }
    }
}

/// A caller's verification as stated (before it is checked).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// The method.
    pub method: VerificationMethod,
    /// What proves it: the revocation secret, an ID token, the document facts, the
    /// order's reference. Never logged in clear when it is a secret.
    pub evidence: String,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("method", &self.method)
            .field("evidence", &"[redacted]")
            .finish()
    }
}

/// Reactivation is allowed: the holder's identity was verified again at the means' LoA
/// or higher, in person or by the holder's own authentication (R-LIFE-3).
#[derive(Debug)]
pub struct IdentityReverified {
    /// How.
    pub method: VerificationMethod,
}

/// Why a reactivation verification is not enough.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReverifyError {
    /// Only `in_person` or `authenticated_holder` re-verify identity.
    #[error("reactivation needs in_person or authenticated_holder verification")]
    Method,
    /// The verification reached a lower LoA than the means has.
    #[error("the verification's level of assurance is below the means'")]
    Level,
    /// No evidence given.
    #[error("evidence is required")]
    Evidence,
}

impl IdentityReverified {
    /// `verified_at` is the LoA the verification reached (an in-person document check
    /// reaches high; an authenticated holder the `acr` of their authentication).
    pub fn check(verification: &Verification, verified_at: Loa, means_loa: Loa) -> Result<Self, ReverifyError> {
        if !matches!(
            verification.method,
            VerificationMethod::InPerson | VerificationMethod::AuthenticatedHolder
        ) {
            return Err(ReverifyError::Method);
        }
        if verification.evidence.trim().is_empty() {
            return Err(ReverifyError::Evidence);
        }
        if verified_at < means_loa {
            return Err(ReverifyError::Level);
        }
        Ok(Self {
            method: verification.method,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_iss_3_the_same_officer_cannot_approve_own_registration() {
        let a = PersonId::new();
        assert_eq!(SecondOfficerApproval::check(a, a).unwrap_err(), SameOfficer);
        assert!(SecondOfficerApproval::check(a, PersonId::new()).is_ok());
    }

    #[test]
    fn r_life_3_reactivation_needs_in_person_or_holder_at_the_means_loa() {
        let v = |method| Verification {
            method,
            evidence: "x".into(),
        };
        assert_eq!(
            IdentityReverified::check(&v(VerificationMethod::RevocationSecret), Loa::High, Loa::Low).unwrap_err(),
            ReverifyError::Method
        );
        assert_eq!(
            IdentityReverified::check(&v(VerificationMethod::AuthenticatedHolder), Loa::Low, Loa::Substantial)
                .unwrap_err(),
            ReverifyError::Level
        );
        assert!(IdentityReverified::check(&v(VerificationMethod::InPerson), Loa::High, Loa::High).is_ok());
        let empty = Verification {
            method: VerificationMethod::InPerson,
            evidence: " ".into(),
        };
        assert_eq!(
            IdentityReverified::check(&empty, Loa::High, Loa::Low).unwrap_err(),
            ReverifyError::Evidence
        );
    }

    #[test]
    fn r_sec_2_verification_evidence_never_prints() {
        let v = Verification {
            method: VerificationMethod::RevocationSecret,
            evidence: "s3cret".into(),
        };
        assert!(!format!("{v:?}").contains("s3cret"));
    }
}
