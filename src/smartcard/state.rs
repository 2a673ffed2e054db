//! What the smartcard services need, built once by the composition root.

use std::sync::Arc;

use crate::authn::state::Authn;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::UnixTime;
use crate::ephemeral::Ephemeral;
use crate::lifecycle::state::Lifecycle;
use crate::store::Store;

use super::Smartcard;

/// The smartcard services' state (challenges, Web eID tokens, personalisation, CRL).
#[derive(Clone)]
pub struct Cards {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Time source.
    pub clock: Arc<SystemClock>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// Short-lived store (challenges).
    pub ephemeral: Arc<dyn Ephemeral>,
    /// The issuing CA, the trust store and the revocation checker.
    pub smartcard: Arc<Smartcard>,
    /// A card login ends like every login.
    pub authn: Authn,
    /// A card activation ends like every activation.
    pub lifecycle: Lifecycle,
}

impl Cards {
    /// Now, UTC seconds.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}
