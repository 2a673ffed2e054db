//! A read-through cache in front of the SQL store for the two lookups on every token
//! request: the client registration and the status of a means.
//!
//! R-AUTH-1 / R-LIFE-4 say a means that stops being valid stops working at once, so the
//! cache is never the authority on a *change*: every write through this store
//! ([`MeansRepo::set_status`], [`LifecycleRepo::commit_transition`],
//! [`ClientRepo::upsert_client`]) drops the entry before it returns, and changes made by other instances arrive as [`StatusEvent`]s (published by
//! the service that made them after its commit) which drop the entry here. Entries also
//! expire after a short time, so a change made behind the server's back (a SQL console)
//! is seen within that bound. If the database cannot be read, nothing is served from a
//! stale entry beyond its lifetime: the read fails closed.
//!
//! One file per repository trait; the ones that only forward say so in their first line.
//!
//! [`MeansRepo::set_status`]: crate::store::MeansRepo::set_status
//! [`LifecycleRepo::commit_transition`]: crate::store::LifecycleRepo::commit_transition
//! [`ClientRepo::upsert_client`]: crate::store::ClientRepo::upsert_client

mod audit;
mod client;
mod fido;
mod grant;
mod incident;
mod legal;
mod lifecycle;
mod means;
mod notice;
mod operator_token;
mod person;
mod provider_state;
mod smartcard;
mod sod;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::client::Client;
use crate::domain::ids::{ClientId, MeansId};
use crate::domain::means::EidMeans;
use crate::ephemeral::StatusEvent;
use crate::store::{Backend, Store, StoreError};

/// Upper bound on entries per map; beyond it the map is cleared (simple and bounded).
const MAX_ENTRIES: usize = 100_000;

struct Entry<T> {
    value: T,
    fetched: Instant,
}

/// The change markers of a store shared between instances (Redis): the service that
/// commits a status change writes the means' marker before it answers, so an instance
/// that compares the marker with the one it saw when it cached the means never serves a
/// state older than a change that was already answered, even before the pub/sub event
/// arrives (R-LIFE-4 across instances).
struct Markers {
    ephemeral: Arc<dyn crate::ephemeral::Ephemeral>,
    key: fn(MeansId) -> String,
}

/// A cached means and the change marker seen before it was read.
type MarkedMeans = (EidMeans, Option<Vec<u8>>);

/// The caching wrapper.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    ttl: Duration,
    clients: Mutex<HashMap<ClientId, Entry<Option<Arc<Client>>>>>,
    means: Mutex<HashMap<MeansId, Entry<MarkedMeans>>>,
    markers: Option<Markers>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CachedStore {
    /// Wraps `inner`; entries live at most `ttl`.
    pub fn new(inner: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            clients: Mutex::new(HashMap::new()),
            means: Mutex::new(HashMap::new()),
            markers: None,
        }
    }

    /// Checks every cached means against its change marker in `ephemeral` (`key` names
    /// it) before serving it: for stores shared between instances. When the marker
    /// cannot be read, the means is read from SQL and not cached (SQL is the record, so
    /// the helpdesk keeps working while Redis is down).
    pub fn with_change_markers(
        mut self,
        ephemeral: Arc<dyn crate::ephemeral::Ephemeral>,
        key: fn(MeansId) -> String,
    ) -> Self {
        self.markers = Some(Markers { ephemeral, key });
        self
    }

    /// Applies a status event from any instance.
    pub fn apply(&self, event: &StatusEvent) {
        match event {
            StatusEvent::MeansChanged { means } => {
                lock(&self.means).remove(means);
            }
            StatusEvent::ClientChanged { client } => {
                lock(&self.clients).remove(client);
            }
            StatusEvent::GrantRevoked { .. } => {}
            StatusEvent::Resync => self.clear(),
        }
    }

    /// Drops everything (e.g. when the event channel was interrupted).
    pub fn clear(&self) {
        lock(&self.means).clear();
        lock(&self.clients).clear();
    }

    /// Listens to status events until the channel closes; a lagging receiver (missed
    /// events) clears the whole cache rather than guess.
    pub fn spawn_listener(self: &Arc<Self>, mut events: tokio::sync::broadcast::Receiver<StatusEvent>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let received = events.recv().await;
                let Some(cache) = weak.upgrade() else { return };
                match received {
                    Ok(event) => cache.apply(&event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.clear(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        cache.clear();
                        return;
                    }
                }
            }
        });
    }

    fn fresh<K: std::hash::Hash + Eq, T: Clone>(&self, map: &Mutex<HashMap<K, Entry<T>>>, key: &K) -> Option<T> {
        let map = lock(map);
        map.get(key)
            .filter(|e| e.fetched.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    fn remember<K: std::hash::Hash + Eq, T>(map: &Mutex<HashMap<K, Entry<T>>>, key: K, value: T, fetched: Instant) {
        let mut map = lock(map);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, Entry { value, fetched });
    }
}

#[async_trait]
impl Store for CachedStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
