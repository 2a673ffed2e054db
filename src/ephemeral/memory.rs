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

use super::{BackoffPolicy, Ephemeral, EphemeralError, Reserved, StatusEvent};

/// Bounded values (login flows) the store holds at most by default: with flows of at most
/// 2 KB, about 200 MB.
pub const DEFAULT_BOUNDED_CAP: usize = 100_000;

struct Entry {
    value: Vec<u8>,
    counter: u64,
    expires_at: Instant,
    bounded: bool,
}

impl Entry {
    fn new(value: &[u8], counter: u64, expires_at: Instant) -> Self {
        Self {
            value: value.to_vec(),
            counter,
            expires_at,
            bounded: false,
        }
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    expirations: BTreeSet<(Instant, String)>,
    /// Live entries stored through `put_bounded`.
    bounded: usize,
    shutdown: bool,
}

impl State {
    /// Removes `key` (whatever its expiry), keeping the bounded count right.
    fn forget(&mut self, key: &str) -> Option<Entry> {
        let e = self.entries.remove(key)?;
        self.expirations.remove(&(e.expires_at, key.to_owned()));
        if e.bounded {
            self.bounded = self.bounded.saturating_sub(1);
        }
        Some(e)
    }
}

struct Shared {
    state: Mutex<State>,
    purge: Notify,
    events: broadcast::Sender<StatusEvent>,
    bounded_cap: usize,
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
    /// Creates the store and its purge task (needs a Tokio runtime), holding at most
    /// [`DEFAULT_BOUNDED_CAP`] bounded values.
    pub fn new() -> Self {
        Self::with_bounded_cap(DEFAULT_BOUNDED_CAP)
    }

    /// Creates the store holding at most `cap` bounded values (login flows) at once.
    pub fn with_bounded_cap(cap: usize) -> Self {
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            purge: Notify::new(),
            events,
            bounded_cap: cap,
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
                state.forget(key);
                None
            }
            _ => state.entries.get_mut(key),
        }
    }

    fn insert(&self, state: &mut State, key: &str, entry: Entry) {
        let at = entry.expires_at;
        state.forget(key);
        if entry.bounded {
            state.bounded += 1;
        }
        state.entries.insert(key.to_owned(), entry);
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
        state.forget(key)
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
                if state.entries.get(&key).is_some_and(|e| e.expires_at == at) {
                    state.forget(&key);
                }
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
        let entry = Entry::new(value, 0, Instant::now() + ttl);
        self.insert(&mut state, key, entry);
        Ok(())
    }

    fn bounded_len(&self) -> Option<usize> {
        Some(lock(&self.shared).bounded)
    }

    async fn put_bounded(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        let replaces = Self::live(&mut state, key, now).is_some_and(|e| e.bounded);
        if !replaces && state.bounded >= self.shared.bounded_cap {
            return Ok(false);
        }
        let mut entry = Entry::new(value, 0, now + ttl);
        entry.bounded = true;
        self.insert(&mut state, key, entry);
        Ok(true)
    }

    async fn reserve(
        &self,
        key: &str,
        policy: &BackoffPolicy,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<Reserved, EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        let before = Self::live(&mut state, key, now).and_then(|e| {
            let next: [u8; 8] = e.value.as_slice().try_into().ok()?;
            Some((e.counter, i64::from_be_bytes(next)))
        });
        let (answer, (n, next)) = super::reserve_step(before, policy, now_ms);
        if let Reserved::Granted(_) = answer {
            self.insert(&mut state, key, Entry::new(&next.to_be_bytes(), n, now + ttl));
        }
        Ok(answer)
    }

    async fn put_new(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        if Self::live(&mut state, key, now).is_some() {
            return Ok(false);
        }
        self.insert(&mut state, key, Entry::new(value, 0, now + ttl));
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
        self.insert(&mut state, key, Entry::new(&[], 1, now + window));
        Ok(1)
    }

    async fn adjust(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, EphemeralError> {
        let now = Instant::now();
        let mut state = lock(&self.shared);
        let before = Self::live(&mut state, key, now).map_or(0, |e| i64::try_from(e.counter).unwrap_or(i64::MAX));
        let after = before.saturating_add(delta).max(0);
        if after == 0 {
            state.forget(key);
        } else {
            self.insert(&mut state, key, Entry::new(&[], after.unsigned_abs(), now + ttl));
        }
        Ok(after)
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
    async fn r_auth_4_parallel_reservations_cannot_slip_past_the_back_off() {
        let s = MemoryStore::new();
        let policy = BackoffPolicy {
            free: 3,
            base_ms: 60_000,
            max_ms: 600_000,
            hard: 100,
        };
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.reserve("who", &policy, 1_000, Duration::from_secs(600))
                    .await
                    .unwrap()
            }));
        }
        let mut granted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Reserved::Granted(_) => granted += 1,
                Reserved::Wait(ms) => assert!(ms > 59_000, "{ms}"),
                Reserved::Blocked => panic!("not at the hard limit"),
            }
        }
        // Three free attempts and the one that starts the back-off.
        assert_eq!(granted, 4);
        assert_eq!(
            s.reserve("who", &policy, 61_001, Duration::from_secs(600))
                .await
                .unwrap(),
            Reserved::Granted(5)
        );
        let hard = BackoffPolicy { hard: 5, ..policy };
        assert_eq!(
            s.reserve("who", &hard, 10_000_000, Duration::from_secs(600))
                .await
                .unwrap(),
            Reserved::Blocked
        );
    }

    #[tokio::test]
    async fn adjusted_counters_go_up_and_down_and_vanish_at_zero() {
        let s = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        assert_eq!(s.adjust("open", 1, ttl).await.unwrap(), 1);
        assert_eq!(s.adjust("open", 1, ttl).await.unwrap(), 2);
        assert_eq!(s.adjust("open", -1, ttl).await.unwrap(), 1);
        assert_eq!(s.adjust("open", -5, ttl).await.unwrap(), 0);
        assert_eq!(s.count("open").await.unwrap(), (0, Duration::ZERO));
    }

    #[tokio::test]
    async fn r_auth_4_bounded_values_are_capped_without_evicting_anything() {
        let s = MemoryStore::with_bounded_cap(2);
        s.put("revoked:x", b"1", Duration::from_secs(60)).await.unwrap();
        assert!(s.put_bounded("flow:1", b"a", Duration::from_secs(60)).await.unwrap());
        assert!(s.put_bounded("flow:2", b"b", Duration::from_secs(60)).await.unwrap());
        assert!(!s.put_bounded("flow:3", b"c", Duration::from_secs(60)).await.unwrap());
        // Replacing a held flow is not a new one.
        assert!(s.put_bounded("flow:2", b"b2", Duration::from_secs(60)).await.unwrap());
        assert_eq!(s.bounded_len(), Some(2));
        assert_eq!(s.get("revoked:x").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get("flow:1").await.unwrap(), Some(b"a".to_vec()));
        // A finished flow makes room.
        assert!(s.take("flow:1").await.unwrap().is_some());
        assert!(s.put_bounded("flow:3", b"c", Duration::from_secs(60)).await.unwrap());
        assert_eq!(s.bounded_len(), Some(2));
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
