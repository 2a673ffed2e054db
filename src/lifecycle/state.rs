//! What the lifecycle services need, built once by the composition root. The helpdesk's
//! services and the compromise notices use the same state: they read and change means.

use std::sync::Arc;

use crate::authn::password::PasswordVerifier;
use crate::authn::throttle::Throttle;
use crate::authn::webauthn::Relying;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::UnixTime;
use crate::ephemeral::Ephemeral;
use crate::hsm::Sealer;
use crate::oidc::state::Oidc;
use crate::store::Store;

use super::change::Changes;

/// The lifecycle services' state (issue, activate, suspend, revoke, reactivate, renew,
/// expire; helpdesk look-ups and approvals).
#[derive(Clone)]
pub struct Lifecycle {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<SystemClock>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// Short-lived store (activations, change markers, rate counters).
    pub ephemeral: Arc<dyn Ephemeral>,
    /// AES-GCM under the HSM `data-wrap` key (TOTP seeds).
    pub sealer: Arc<dyn Sealer>,
    /// argon2id pool (activation codes, passwords).
    pub passwords: PasswordVerifier,
    /// The WebAuthn relying party (FIDO2 activation).
    pub webauthn: Arc<Relying>,
    /// Activation attempts are limited like logins.
    pub throttle: Throttle,
    /// The protocol engine: a holder's ID token is verified as evidence.
    pub oidc: Oidc,
}

impl Lifecycle {
    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Now, UTC milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The one path of a status change (commit, marker, publish) over these stores.
    pub fn changes(&self) -> Changes<'_> {
        Changes::new(
            self.store.as_ref(),
            self.ephemeral.as_ref(),
            self.clock.as_ref(),
            self.config.tokens.access_ttl,
        )
    }
}
