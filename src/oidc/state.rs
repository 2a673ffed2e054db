//! What the protocol engine needs, built once by the composition root: configuration,
//! the clock and its alarm, the durable and ephemeral stores, and the HSM signer.

use std::sync::Arc;

use crate::clock::{Clock, ClockAlarm, SystemClock};
use crate::config::Config;
use crate::domain::UnixTime;
use crate::ephemeral::Ephemeral;
use crate::hsm::Signer;
use crate::store::Store;

/// The OIDC services' state (codes, tokens, userinfo, introspection, logout).
#[derive(Clone)]
pub struct Oidc {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<SystemClock>,
    /// An unresolved clock jump stops token issuance (R-OPS-3).
    pub alarm: Arc<ClockAlarm>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// Short-lived store (codes, access tokens, replay caches).
    pub ephemeral: Arc<dyn Ephemeral>,
    /// Signing keys in the HSM.
    pub signer: Arc<dyn Signer>,
    /// The discovery document, serialised once.
    pub discovery: Arc<Vec<u8>>,
    /// Latency per phase of the code exchange (`/metrics`).
    pub phases: Arc<crate::monitor::phases::Phases>,
}

impl Oidc {
    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Now, UTC milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
