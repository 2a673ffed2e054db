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

pub mod compact;
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
    /// Adds `delta` to a counter atomically and keeps it `ttl` from now; returns the new
    /// value (never below 0; a counter at 0 is removed). Open login flows per address.
    async fn adjust(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, EphemeralError>;
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
    /// Reserves one attempt under `key` atomically (check and count in one step, so that
    /// parallel attempts cannot slip past a limit, R-AUTH-4): refused while the key backs
    /// off or once it holds `policy.hard` attempts; else the count grows by one and the
    /// next attempt waits for [`BackoffPolicy::wait_after`] the new count. The state
    /// lives `ttl` after the last reservation. `now_ms` is the caller's clock.
    async fn reserve(
        &self,
        key: &str,
        policy: &BackoffPolicy,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<Reserved, EphemeralError>;
    /// Stores a bounded value (a login flow) unless the store's own cap on such values is
    /// reached (`false`, answered 429). Never evicts anything to make room.
    async fn put_bounded(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        self.put(key, value, ttl).await.map(|()| true)
    }
    /// How many bounded values (login flows) the store holds now, when it counts them
    /// (the memory store; Redis is bounded by its `maxmemory` under `noeviction`).
    fn bounded_len(&self) -> Option<usize> {
        None
    }
}

/// The back-off of a reservation key: `free` attempts without waiting, then `base_ms`
/// doubling with every further attempt up to `max_ms`; no attempt at all after `hard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Attempts before the first wait.
    pub free: u64,
    /// The first wait (ms).
    pub base_ms: u64,
    /// The longest wait (ms).
    pub max_ms: u64,
    /// Attempts after which every reservation is refused (`u64::MAX`: never).
    pub hard: u64,
}

impl BackoffPolicy {
    /// The wait after the `attempts`-th attempt (ms).
    pub fn wait_after(&self, attempts: u64) -> u64 {
        let over = attempts.saturating_sub(self.free);
        if over == 0 {
            return 0;
        }
        let shift = u32::try_from(over - 1).unwrap_or(u32::MAX).min(40);
        self.base_ms.saturating_mul(1u64 << shift).min(self.max_ms)
    }
}

/// The answer of [`Ephemeral::reserve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// Go ahead: this is the `n`-th attempt counted under the key.
    Granted(u64),
    /// Back off for this long (ms) first.
    Wait(u64),
    /// The hard limit is reached.
    Blocked,
}

/// The reservation state as both stores keep it: attempts and the earliest next one.
pub(crate) fn reserve_step(state: Option<(u64, i64)>, policy: &BackoffPolicy, now_ms: i64) -> (Reserved, (u64, i64)) {
    let (n, next) = state.unwrap_or((0, 0));
    if n >= policy.hard {
        return (Reserved::Blocked, (n, next));
    }
    if next > now_ms {
        return (Reserved::Wait(u64::try_from(next - now_ms).unwrap_or(1)), (n, next));
    }
    let n = n + 1;
    let wait = i64::try_from(policy.wait_after(n)).unwrap_or(i64::MAX);
    // No back-off due: the earliest next attempt stays where it was. (Setting it to `now`
    // would make a concurrent request whose clock reading is a millisecond older wait.)
    let next = if wait > 0 { now_ms.saturating_add(wait) } else { next };
    (Reserved::Granted(n), (n, next))
}

/// Stores a serde value as JSON.
pub async fn put_json<T: Serialize + Sync>(
    store: &dyn Ephemeral,
    key: &str,
    value: &T,
    ttl: Duration,
) -> Result<(), EphemeralError> {
    // Room for a code's or an access token's record at once (issue 22: `to_vec` grew its
    // buffer three times for each).
    let mut bytes = Vec::with_capacity(512);
    serde_json::to_writer(&mut bytes, value).map_err(|e| EphemeralError::Unavailable(format!("encode: {e}")))?;
    store.put(key, &bytes, ttl).await
}

/// Decodes JSON read from the store; undecodable values count as absent (fail closed).
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: Option<Vec<u8>>) -> Option<T> {
    bytes.and_then(|b| serde_json::from_slice(&b).ok())
}

#[cfg(test)]
mod reserve_tests {
    use super::*;

    #[test]
    fn r_auth_4_free_attempts_out_of_clock_order_are_not_made_to_wait() {
        let policy = BackoffPolicy {
            free: 3,
            base_ms: 2000,
            max_ms: 900_000,
            hard: 100,
        };
        // Two concurrent requests read the clock at 1005 and 1003 and reach the store in
        // that order: the second is still a free attempt.
        let (r1, state) = reserve_step(None, &policy, 1005);
        assert_eq!(r1, Reserved::Granted(1));
        let (r2, state) = reserve_step(Some(state), &policy, 1003);
        assert_eq!(r2, Reserved::Granted(2));
        let (r3, state) = reserve_step(Some(state), &policy, 1004);
        assert_eq!(r3, Reserved::Granted(3));
        // The fourth is over the free attempts: the back-off starts.
        let (r4, state) = reserve_step(Some(state), &policy, 1006);
        assert_eq!(r4, Reserved::Granted(4));
        assert_eq!(state.1, 1006 + 2000);
        let (r5, _) = reserve_step(Some(state), &policy, 1007);
        assert_eq!(r5, Reserved::Wait(1999));
    }
}
