//! The one path of every status change of a means, whoever makes it (helpdesk and admin
//! API, the holder, the CLI, periodic jobs): commit the transition with its audit record
//! in one transaction, then write the change marker that kills the means' older access
//! tokens, then publish the event that makes every instance drop cached state (R-LIFE-4).
//!
//! SQL is the record: a marker or event that cannot be sent does not undo the change (the
//! marker is queued until the shared store returns; instances that missed the event
//! expire their cache entry).

use std::time::Duration;

use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::domain::ids::MeansId;
use crate::domain::means::EidMeans;
use crate::ephemeral::{Ephemeral, StatusEvent};
use crate::store::{Store, StoreError, TransitionWrite};

/// What a status change needs: the durable store, the shared ephemeral store, a clock
/// and how long a change marker must outlive the access tokens it stops.
#[derive(Clone, Copy)]
pub struct Changes<'a> {
    store: &'a dyn Store,
    ephemeral: &'a dyn Ephemeral,
    clock: &'a dyn Clock,
    marker_ttl: Duration,
}

impl<'a> Changes<'a> {
    /// Over the stores the servers use (a server's [`super::state::Lifecycle::changes`], the CLI).
    pub fn new(store: &'a dyn Store, ephemeral: &'a dyn Ephemeral, clock: &'a dyn Clock, marker_ttl: Duration) -> Self {
        Self {
            store,
            ephemeral,
            clock,
            marker_ttl,
        }
    }

    /// The durable store the changes are committed to.
    pub fn store(&self) -> &'a dyn Store {
        self.store
    }

    /// Commits `write` with `audit` (one transaction), then marks and publishes the means
    /// and the one it retires, if any.
    pub async fn commit(&self, write: &TransitionWrite, audit: AuditEvent) -> Result<EidMeans, StoreError> {
        let means = self.store.commit_transition(write, audit).await?;
        self.published(write.id).await;
        if let Some(retired) = &write.retire {
            self.published(retired.id).await;
        }
        Ok(means)
    }

    /// After a committed change of `means`: marks its older access tokens dead and tells
    /// every instance to drop cached state.
    pub async fn published(&self, means: MeansId) {
        // Access tokens issued before this moment stop working even if the means becomes
        // active again (they are opaque and not indexed by means).
        let marker = self.clock.now_ms().to_string();
        // Queued when Redis is down and written when it returns (R-LIFE-4).
        if let Err(e) = self
            .ephemeral
            .put_or_queue(
                &crate::oidc::grant::means_changed_key(means),
                marker.as_bytes(),
                self.marker_ttl,
            )
            .await
        {
            tracing::warn!(error = %e, %means, "means change marker not stored");
        }
        if let Err(e) = self.ephemeral.publish(&StatusEvent::MeansChanged { means }).await {
            // The change is durable in SQL; instances that missed it expire their cache entry.
            tracing::warn!(error = %e, %means, "status event not published");
        }
    }
}
