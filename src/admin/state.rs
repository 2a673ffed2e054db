//! What the operator services need (operator authentication and assurance, registration
//! of natural and legal persons, mandates), built once by the composition root.

use std::sync::Arc;

use crate::clock::{Clock, ClockAlarm, SystemClock};
use crate::config::Config;
use crate::domain::UnixTime;
use crate::lifecycle::state::Lifecycle;
use crate::monitor::availability::Availability;
use crate::oidc::state::Oidc;
use crate::store::Store;
use crate::supervision::caps::LoaPolicy;

/// The operator services' state.
#[derive(Clone)]
pub struct Admin {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<SystemClock>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// The LoA caps in force and the supervisor's withdrawal (R-SUP-2).
    pub caps: Arc<LoaPolicy>,
    /// Operator tokens are the protocol engine's access tokens.
    pub oidc: Oidc,
    /// Look-ups are rate limited and audited like the helpdesk's.
    pub lifecycle: Lifecycle,
    /// The clock alarm a security officer resolves (R-OPS-3).
    pub alarm: Arc<ClockAlarm>,
    /// Availability per service (R-OPS-1).
    pub availability: Arc<Availability>,
}

impl Admin {
    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}
