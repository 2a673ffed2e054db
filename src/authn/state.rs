//! What the login ceremonies need, built once by the composition root.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::UnixTime;
use crate::ephemeral::Ephemeral;
use crate::hsm::Sealer;
use crate::lifecycle::state::Lifecycle;
use crate::monitor::metrics::Metrics;
use crate::oidc::state::Oidc;
use crate::store::Store;
use crate::supervision::caps::LoaPolicy;

use super::device::LoginKeys;
use super::password::PasswordVerifier;
use super::throttle::Throttle;
use super::webauthn::Relying;

/// The login services' state (flows, ceremonies, SSO sessions, release of the code).
#[derive(Clone)]
pub struct Authn {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<SystemClock>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// Short-lived store (flows, sessions, throttles).
    pub ephemeral: Arc<dyn Ephemeral>,
    /// AES-GCM under the HSM `data-wrap` key (TOTP seeds).
    pub sealer: Arc<dyn Sealer>,
    /// argon2id pool.
    pub passwords: PasswordVerifier,
    /// Keys of the device cookies and WebAuthn decoys.
    pub login_keys: LoginKeys,
    /// The WebAuthn relying party.
    pub webauthn: Arc<Relying>,
    /// Login series (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// Login limits.
    pub throttle: Throttle,
    /// The LoA caps in force (R-SUP-2).
    pub caps: Arc<LoaPolicy>,
    /// The protocol engine: a finished login issues its code there.
    pub oidc: Oidc,
    /// Status changes a login makes (the brute-force lock, a counter regression).
    pub lifecycle: Lifecycle,
}

impl Authn {
    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Now, UTC milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
