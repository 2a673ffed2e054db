//! In-process ephemeral store (the single-instance default), shaped like mini-redis
//! `db.rs`: one `std::sync::Mutex` around the state (critical sections are short and never
//! await, so a blocking mutex is right), a `BTreeSet` of expirations purged by a
//! background task that stops when the last handle drops, and `broadcast` for events.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;

use super::{Ephemeral, EphemeralError, StatusEvent};

struct Entry {
    value: Vec<u8>,
    counter: u64,
    expires_at: Instant,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    expirations: BTreeSet<(Instant, String)>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    purge: Notify,
    events: broadcast::Sender<StatusEvent>,
}

/// Handle to the in-memory store; clones share the same state.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    _guard: Arc<DropGuard>,
}

struct DropGuard(Arc<Shared>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        lock(&self.0).shutdown = true;
        self.0.purge.notify_one();
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding this lock leaves only plain data behind; keep serving.
    shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryStore {
    /// Creates the store and its purge task (needs a Tokio runtime).
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            purge: Notify::new(),
            events,
        });
        tokio::spawn(purge_task(shared.clone()));
        Self {
            _guard: Arc::new(DropGuard(shared.clone())),
            shared,
        }
    }

    fn live<'a>(state: &'a mut State, key: &str, now: Instant) -> Option<&'a mut Entry> {
        match state.entries.get(key) {
            Some(e) if e.expires_at <= now => {
                let at = e.expires_at;
                state.entries.remove(key);
                state.expirations.remove(&(at, key.to_owned()));
                None
            }
            _ => state.entries.get_mut(key),
        }
    }

    fn insert(&self, state: &mut State, key: &str, entry: Entry) {
        let at = entry.expires_at;
        if let Some(old) = state.entries.insert(key.to_owned(), entry) {
            state.expirations.remove(&(old.expires_at, key.to_owned()));
        }
        let notify = state
            .expirations
            .iter()
            .next()
            .map(|(first, _)| at < *first)
            .unwrap_or(true);
        state.expirations.insert((at, key.to_owned()));
        if notify {
            self.shared.purge.notify_one();
        }
    }

    fn remove(state: &mut State, key: &str) -> Option<Entry> {
        let e = state.entries.remove(key)?;
        state.expirations.remove(&(e.expires_at, key.to_owned()));
        Some(e)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

async fn purge_task(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut state = lock(&shared);
            if state.shutdown {
                return;
            }
            let now = Instant::now();
            while let Some((at, key)) = state.expirations.iter().next().cloned() {
                if at > now {
                    break;
                }
                state.expirations.remove(&(at, key.clone()));
                state.entries.remove(&key);
            }
            state.expirations.iter().next().map(|(at, _)| *at)
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = shared.purge.notified() => {}
                }
            }
            None => shared.purge.notified().await,
        }
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        let mut state = lock(&self.shared);
        let entry = Entry {
            value: value.to_vec(),
            counter: 0,
            expires_at: Instant::now() + ttl,
        };
        self.insert(&mut state, key, entry);
        Ok(())
    }

    async fn put_new(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        if Self::live(&mut state, key, now).is_some() {
            return Ok(false);
        }
        self.insert(
            &mut state,
            key,
            Entry {
                value: value.to_vec(),
                counter: 0,
                expires_at: now + ttl,
            },
        );
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut state = lock(&self.shared);
        Ok(Self::live(&mut state, key, Instant::now()).map(|e| e.value.clone()))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        Ok(Self::remove(&mut state, key)
            .filter(|e| e.expires_at > now)
            .map(|e| e.value))
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        let mut state = lock(&self.shared);
        Self::remove(&mut state, key);
        Ok(())
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64, EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        if let Some(e) = Self::live(&mut state, key, now) {
            e.counter += 1;
            return Ok(e.counter);
        }
        self.insert(
            &mut state,
            key,
            Entry {
                value: Vec::new(),
                counter: 1,
                expires_at: now + window,
            },
        );
        Ok(1)
    }

    async fn count(&self, key: &str) -> Result<(u64, Duration), EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        Ok(Self::live(&mut state, key, now)
            .map(|e| (e.counter, e.expires_at.saturating_duration_since(now)))
            .unwrap_or((0, Duration::ZERO)))
    }

    async fn publish(&self, event: &StatusEvent) -> Result<(), EphemeralError> {
        // No receiver is not an error: nothing is cached anywhere yet.
        let _ = self.shared.events.send(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.shared.events.subscribe()
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn values_expire_without_sleeping_in_real_time() {
        let s = MemoryStore::new();
        s.put("k", b"v", Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.get("k").await.unwrap(), Some(b"v".to_vec()));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(s.get("k").await.unwrap(), None);
        assert_eq!(s.take("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn r_auth_4_take_is_single_use() {
        let s = MemoryStore::new();
        s.put("code", b"grant", Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.take("code").await.unwrap(), Some(b"grant".to_vec()));
        assert_eq!(s.take("code").await.unwrap(), None);
    }

    #[tokio::test]
    async fn r_auth_4_concurrent_takes_yield_exactly_one_winner() {
        let s = MemoryStore::new();
        s.put("c", b"x", Duration::from_secs(60)).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move { s.take("c").await.unwrap().is_some() }));
        }
        let mut winners = 0;
        for t in tasks {
            if t.await.unwrap() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test]
    async fn put_new_refuses_existing_keys() {
        let s = MemoryStore::new();
        assert!(s.put_new("jti", b"1", Duration::from_secs(60)).await.unwrap());
        assert!(!s.put_new("jti", b"2", Duration::from_secs(60)).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn counters_count_within_their_window() {
        let s = MemoryStore::new();
        assert_eq!(s.hit("ip", Duration::from_secs(10)).await.unwrap(), 1);
        assert_eq!(s.hit("ip", Duration::from_secs(10)).await.unwrap(), 2);
        assert_eq!(s.count("ip").await.unwrap().0, 2);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(s.hit("ip", Duration::from_secs(10)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn events_reach_subscribers() {
        let s = MemoryStore::new();
        let mut rx = s.subscribe();
        let ev = StatusEvent::MeansChanged {
            means: crate::domain::ids::MeansId::new(),
        };
        s.publish(&ev).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), ev);
    }
}
