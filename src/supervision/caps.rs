//! The LoA caps in force (R-SUP-2): the configured caps, replaced when the configuration
//! is reloaded (SIGHUP), lowered by a supervisor's withdrawal recorded in SQL (shared by
//! every instance).

use std::sync::{Arc, RwLock};

use crate::audit::AuditEvent;
use crate::domain::loa::LoaCaps;
use crate::store::{Store, StoreError};

/// `provider_state` name of the supervisor's LoA withdrawal (R-SUP-2).
pub const LOA_WITHDRAWAL: &str = "loa_caps";

/// The configured caps (reloadable) and the store holding the supervisor's withdrawal.
pub struct LoaPolicy {
    configured: RwLock<LoaCaps>,
    store: Arc<dyn Store>,
}

impl LoaPolicy {
    /// Starts from the configured `caps`.
    pub fn new(caps: LoaCaps, store: Arc<dyn Store>) -> Self {
        Self {
            configured: RwLock::new(caps),
            store,
        }
    }

    /// The caps from configuration.
    pub fn configured(&self) -> LoaCaps {
        match self.configured.read() {
            Ok(c) => *c,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// The caps in force for a new login: the configured caps lowered by the supervisor's
    /// withdrawal. If the withdrawal cannot be read, this fails closed.
    pub async fn in_force(&self) -> Result<LoaCaps, StoreError> {
        let withdrawn = self.withdrawn().await?;
        Ok(self.configured().min(withdrawn))
    }

    /// The supervisor's withdrawal (`LoaCaps::OPEN` when none is recorded).
    pub async fn withdrawn(&self) -> Result<LoaCaps, StoreError> {
        match self.store.provider_state(LOA_WITHDRAWAL).await? {
            None => Ok(LoaCaps::OPEN),
            Some(text) => {
                serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("provider_state loa_caps".into()))
            }
        }
    }

    /// Applies a reloaded configuration's `[loa] caps` (SIGHUP): new logins follow at
    /// once. Audited.
    pub async fn reload(&self, caps: LoaCaps) -> Result<(), StoreError> {
        let before = match self.configured.write() {
            Ok(mut c) => std::mem::replace(&mut *c, caps),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), caps),
        };
        if before != caps {
            let event = AuditEvent::new(
                crate::audit::catalogue::CONFIG_LOA_CAPS_RELOADED,
                "system",
                "config",
                serde_json::json!({"before": before, "after": caps}),
            );
            self.store.append(event).await?;
        }
        Ok(())
    }
}
