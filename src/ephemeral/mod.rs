//! The short-lived state port: login flows, authorization codes, access tokens, PAR
//! request URIs, `jti` replay caches, rate-limit counters and status events.
//!
//! In-process memory by default ([`memory::MemoryStore`]); Redis when more than one
//! instance runs. Single-use values are read and deleted in one step (`take`), never read
//! now and deleted later (R-AUTH-4 replay resistance).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{GrantId, MeansId};

pub mod memory;
pub mod redis;

/// Errors of the ephemeral store. `Unavailable` means logins fail closed (503).
#[derive(Debug, thiserror::Error)]
pub enum EphemeralError {
    /// The backend is unreachable.
    #[error("ephemeral store unavailable: {0}")]
    Unavailable(String),
}

/// A change every instance must act on at once (R-LIFE-4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StatusEvent {
    /// A means stopped being active: drop every cached state derived from it.
    MeansChanged {
        /// The means.
        means: MeansId,
    },
    /// A client registration changed: drop cached copies.
    ClientChanged {
        /// The client.
        client: crate::domain::ids::ClientId,
    },
    /// A grant was revoked (code replay, refresh reuse, RFC 7009 revocation).
    GrantRevoked {
        /// The grant.
        grant: GrantId,
    },
    /// Events may have been missed (the shared channel was down or came back): drop every
    /// cached state. Sent only to this instance's own subscribers.
    Resync,
}

/// Short-lived keyed storage with TTLs (narrow, object safe).
#[async_trait]
pub trait Ephemeral: Send + Sync {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError>;
    /// Stores only if `key` is absent (Redis `SET NX`); `true` when stored.
    async fn put_new(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError>;
    /// Reads without consuming.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Reads and deletes atomically (Redis `GETDEL`). Codes, challenges, ceremony state:
    /// only through here.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Deletes.
    async fn delete(&self, key: &str) -> Result<(), EphemeralError>;
    /// Increments a counter that expires `window` after its first hit; returns the count.
    async fn hit(&self, key: &str, window: Duration) -> Result<u64, EphemeralError>;
    /// Reads a counter (0 when absent) and the time until it expires.
    async fn count(&self, key: &str) -> Result<(u64, Duration), EphemeralError>;
    /// Like [`Ephemeral::put`], but a shared backend that is down keeps the write and
    /// replays it when it returns (status-change markers that must not be lost). Still
    /// answers the error, so the caller can log it.
    async fn put_or_queue(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        self.put(key, value, ttl).await
    }
    /// Whether other instances see this store (Redis): then cached state must be checked
    /// against its change markers, since another instance may have changed it.
    fn shared_between_instances(&self) -> bool {
        false
    }
    /// Publishes a status event to every instance.
    async fn publish(&self, event: &StatusEvent) -> Result<(), EphemeralError>;
    /// Subscribes to status events.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StatusEvent>;
    /// Cheap liveness check (for `/readyz`).
    async fn ping(&self) -> Result<(), EphemeralError>;
}

/// Stores a serde value as JSON.
pub async fn put_json<T: Serialize + Sync>(
    store: &dyn Ephemeral,
    key: &str,
    value: &T,
    ttl: Duration,
) -> Result<(), EphemeralError> {
    let bytes = serde_json::to_vec(value).map_err(|e| EphemeralError::Unavailable(format!("encode: {e}")))?;
    store.put(key, &bytes, ttl).await
}

/// Decodes JSON read from the store; undecodable values count as absent (fail closed).
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: Option<Vec<u8>>) -> Option<T> {
    bytes.and_then(|b| serde_json::from_slice(&b).ok())
}
