//! [`LoaCaps`]: the LoA cap per kind of means (R-SUP-2): configured, lowered at run time
//! by a supervisor's withdrawal, never above what a kind's factors can prove.

use serde::{Deserialize, Serialize};

use super::Loa;
use crate::domain::means::MeansKind;

/// The LoA cap per kind of means (R-SUP-2): configuration, lowered (withdrawn) at run
/// time by a supervisor's decision without a restart.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LoaCaps {
    /// Smartcard cap.
    pub smartcard: Loa,
    /// FIDO cap.
    pub fido: Loa,
    /// Password + TOTP cap.
    pub totp: Loa,
    /// Password cap.
    pub password: Loa,
}

impl Default for LoaCaps {
    fn default() -> Self {
        Self {
            smartcard: Loa::High,
            fido: Loa::High,
            totp: Loa::Substantial,
            password: Loa::Low,
        }
    }
}

impl LoaCaps {
    /// The cap of a kind, never above what the kind's factors can prove.
    pub fn cap(&self, kind: MeansKind) -> Loa {
        let configured = match kind {
            MeansKind::Fido => self.fido,
            MeansKind::Password => self.password,
            MeansKind::Smartcard => self.smartcard,
            MeansKind::Totp => self.totp,
        };
        configured.min(kind.ceiling())
    }
}

impl LoaCaps {
    /// No restriction (every kind at its ceiling).
    pub const OPEN: LoaCaps = LoaCaps {
        smartcard: Loa::High,
        fido: Loa::High,
        totp: Loa::High,
        password: Loa::High,
    };

    /// The lower of two caps per kind (configured caps and a supervisor's withdrawal).
    pub fn min(self, other: LoaCaps) -> LoaCaps {
        LoaCaps {
            smartcard: self.smartcard.min(other.smartcard),
            fido: self.fido.min(other.fido),
            totp: self.totp.min(other.totp),
            password: self.password.min(other.password),
        }
    }

    /// The login API methods (DESIGN "Login API") that can reach `requested` under these
    /// caps, strongest first: the login page offers only these.
    pub fn methods_for(&self, requested: Loa) -> Vec<&'static str> {
        [
            ("smartcard", MeansKind::Smartcard),
            ("webauthn", MeansKind::Fido),
            ("password_totp", MeansKind::Totp),
            ("password", MeansKind::Password),
        ]
        .into_iter()
        .filter(|(_, kind)| self.cap(*kind) >= requested)
        .map(|(name, _)| name)
        .collect()
    }

    /// The most a means can achieve: its assigned LoA, the holder's proofing LoA, the
    /// kind's cap and the ceremony's ceiling, whichever is lowest.
    pub fn reachable(&self, kind: MeansKind, assigned: Loa, proofing: Loa) -> Loa {
        Loa::achieved(assigned.min(proofing), self.cap(kind), kind.ceiling())
    }
}
