//! Termination of the provider (R-SUP-3): `start` stops new issuance at once (applications
//! and approvals answer 503 from then on), `revoke_all` revokes every means issued in the
//! provider's name with reason `provider_termination`, one audited transition per means,
//! and can be run again until nothing is left. Records and the audit chain stay readable.

use serde_json::json;

use crate::audit::AuditEvent;
use crate::domain::means::state::{self, Command};
use crate::domain::means::MeansStatus;
use crate::lifecycle::change::Changes;
use crate::store::{Store, StoreError, TransitionWrite};

/// The provider flag that marks termination (value: UTC seconds when it started).
pub const TERMINATION: &str = "termination";

/// Whether termination has started.
pub async fn started(store: &dyn Store) -> Result<bool, StoreError> {
    Ok(store.provider_state(TERMINATION).await?.is_some())
}

/// Stops new issuance (idempotent; the first start time is kept).
pub async fn start(store: &dyn Store, actor: &str, now: i64) -> Result<(), StoreError> {
    if started(store).await? {
        return Ok(());
    }
    let audit = AuditEvent::new(
        crate::audit::catalogue::PROVIDER_TERMINATION_STARTED,
        actor,
        "provider",
        json!({"at": now}),
    );
    store.set_provider_state(TERMINATION, &now.to_string(), audit).await
}

/// Revokes (or rejects, for open applications) every means not yet final. Returns how
/// many were changed. Safe to run again: it continues where it stopped.
/// Each change goes through [`Changes::commit`], so every running instance stops
/// accepting the means at once (change marker and event, R-LIFE-4).
pub async fn revoke_all(changes: Changes<'_>, actor: &str) -> Result<u64, StoreError> {
    let mut changed = 0;
    loop {
        let batch = changes.store().means_not_final(200).await?;
        if batch.is_empty() {
            return Ok(changed);
        }
        for m in batch {
            let (command, event) = match m.status {
                MeansStatus::Applied => (Command::Reject, crate::audit::catalogue::MEANS_REJECTED),
                _ => (Command::Revoke, crate::audit::catalogue::MEANS_REVOKED),
            };
            let Ok(to) = state::apply(m.status, &command) else {
                continue;
            };
            let audit = AuditEvent::new(
                event,
                actor,
                format!("means:{}", m.id),
                json!({"reason": "provider_termination", "from": m.status, "to": to}),
            );
            match changes
                .commit(&TransitionWrite::status(m.id, m.version, to), audit)
                .await
            {
                Ok(_) => changed += 1,
                // Changed meanwhile: the next batch reads it again.
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
