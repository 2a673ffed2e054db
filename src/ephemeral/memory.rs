//! In-process ephemeral store (the single-instance default), shaped like mini-redis
//! `db.rs`: one `std::sync::Mutex` around the state (critical sections are short and never
//! await, so a blocking mutex is right), a `BTreeSet` of expirations purged by a
//! background task that stops when the last handle drops, and `broadcast` for events.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;

use super::compact::{Key, Names, BOUNDED};
use super::{BackoffPolicy, Ephemeral, EphemeralError, Reserved, StatusEvent};

/// Bounded values (login flows) the store holds at most by default: with flows of at most
/// 512 bytes each in memory (compact records, see [`super::compact`]), about 50 MB.
pub const DEFAULT_BOUNDED_CAP: usize = 100_000;

/// Entries of every kind the store holds at most by default (about 500 MB at the most;
/// codes and flows take at most 512 bytes each): beyond it a new entry is refused, the
/// request fails closed (503) and the refusal is logged. Status-change markers
/// ([`Ephemeral::put_or_queue`]) are stored even then.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// One value: its compact form (whose first byte also tells a bounded value), a counter,
/// and its expiry in milliseconds after the store's start.
struct Entry {
    value: Box<[u8]>,
    counter: u64,
    expires_at: u64,
}

impl Entry {
    fn new(value: Box<[u8]>, counter: u64, expires_at: u64) -> Self {
        Self {
            value,
            counter,
            expires_at,
        }
    }

    fn bounded(&self) -> bool {
        self.value.first().is_some_and(|b| b & BOUNDED != 0)
    }
}

struct State {
    entries: HashMap<Key, Entry>,
    expirations: BTreeSet<(u64, Key)>,
    /// Live entries stored through `put_bounded`.
    bounded: usize,
    shutdown: bool,
    names: Arc<Names>,
}

impl State {
    /// Takes `key` out (whatever its expiry), keeping the bounded count right. The caller
    /// reads it if it wants, then gives its shared strings back ([`Names::release`]).
    fn take_out(&mut self, key: &Key) -> Option<Entry> {
        let e = self.entries.remove(key)?;
        self.expirations.remove(&(e.expires_at, *key));
        if e.bounded() {
            self.bounded = self.bounded.saturating_sub(1);
        }
        Some(e)
    }

    /// Removes `key` (whatever its expiry); `true` when it was there.
    fn forget(&mut self, key: &Key) -> bool {
        match self.take_out(key) {
            Some(e) => {
                self.names.release(&e.value);
                true
            }
            None => false,
        }
    }

    fn live(&mut self, key: &Key, now: u64) -> Option<&mut Entry> {
        match self.entries.get(key) {
            Some(e) if e.expires_at <= now => {
                self.forget(key);
                None
            }
            _ => self.entries.get_mut(key),
        }
    }
}

struct Shared {
    state: Mutex<State>,
    purge: Notify,
    events: broadcast::Sender<StatusEvent>,
    bounded_cap: usize,
    max_entries: usize,
    names: Arc<Names>,
    /// Time 0 of the expiries.
    base: Instant,
    /// When a refusal was last logged (ms after `base`), so that a full store logs once a
    /// second, not once a request.
    refusal_logged: AtomicU64,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(Instant::now().saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// `ttl` from now, rounded up to the millisecond (never expires early).
    fn deadline(&self, ttl: Duration) -> u64 {
        let at = (Instant::now() + ttl).saturating_duration_since(self.base);
        let ms = at.as_millis() + u128::from(at.subsec_nanos() % 1_000_000 != 0);
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    fn instant(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }
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

/// Whether an insert may go past the store's cap on entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cap {
    /// Refused when the store is full.
    Enforced,
    /// A status-change marker: stored even when full (refusing it would keep revoked
    /// tokens alive).
    Exempt,
}

impl MemoryStore {
    /// Creates the store and its purge task (needs a Tokio runtime), holding at most
    /// [`DEFAULT_BOUNDED_CAP`] bounded values.
    pub fn new() -> Self {
        Self::with_bounded_cap(DEFAULT_BOUNDED_CAP)
    }

    /// Creates the store holding at most `cap` bounded values (login flows) at once.
    pub fn with_bounded_cap(cap: usize) -> Self {
        Self::with_caps(cap, DEFAULT_MAX_ENTRIES)
    }

    /// Creates the store holding at most `flows` bounded values (login flows) and at most
    /// `entries` entries of every kind at once.
    pub fn with_caps(flows: usize, entries: usize) -> Self {
        let (events, _) = broadcast::channel(1024);
        let names = Arc::new(Names::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                entries: HashMap::new(),
                expirations: BTreeSet::new(),
                bounded: 0,
                shutdown: false,
                names: names.clone(),
            }),
            purge: Notify::new(),
            events,
            bounded_cap: flows,
            max_entries: entries,
            names,
            base: Instant::now(),
            refusal_logged: AtomicU64::new(0),
        });
        tokio::spawn(purge_task(shared.clone()));
        Self {
            _guard: Arc::new(DropGuard(shared.clone())),
            shared,
        }
    }

    /// How many entries of every kind the store holds now (expired ones not purged yet
    /// included).
    pub fn len(&self) -> usize {
        lock(&self.shared).entries.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key(&self, key: &str) -> Key {
        super::compact::key(key)
    }

    fn insert(&self, state: &mut State, key: Key, entry: Entry, cap: Cap) -> Result<(), EphemeralError> {
        let at = entry.expires_at;
        let replaced = state.forget(&key);
        if !replaced && cap == Cap::Enforced && state.entries.len() >= self.shared.max_entries {
            self.shared.names.release(&entry.value);
            self.refuse();
            return Err(EphemeralError::Unavailable(
                "the memory store is full (ephemeral.memory_entries)".into(),
            ));
        }
        if entry.bounded() {
            state.bounded += 1;
        }
        state.entries.insert(key, entry);
        let notify = state.expirations.first().map(|(first, _)| at < *first).unwrap_or(true);
        state.expirations.insert((at, key));
        if notify {
            self.shared.purge.notify_one();
        }
        Ok(())
    }

    fn refuse(&self) {
        let now = self.shared.now();
        let last = self.shared.refusal_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .shared
                .refusal_logged
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_entries = self.shared.max_entries,
                "alert: the memory ephemeral store is full; new codes, flows and tokens are refused (503)"
            );
        }
    }

    /// Drops an entry that was never stored.
    fn discard(&self, entry: Entry) {
        self.shared.names.release(&entry.value);
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
            let now = shared.now();
            while let Some(&(at, key)) = state.expirations.first() {
                if at > now {
                    break;
                }
                state.expirations.pop_first();
                if state.entries.get(&key).is_some_and(|e| e.expires_at == at) {
                    state.forget(&key);
                }
            }
            state.expirations.first().map(|(at, _)| *at)
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(shared.instant(at)) => {}
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
        let (key, value) = (self.key(key), self.shared.names.encode(value));
        let entry = Entry::new(value, 0, self.shared.deadline(ttl));
        self.insert(&mut lock(&self.shared), key, entry, Cap::Enforced)
    }

    async fn put_or_queue(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        let (key, value) = (self.key(key), self.shared.names.encode(value));
        let entry = Entry::new(value, 0, self.shared.deadline(ttl));
        self.insert(&mut lock(&self.shared), key, entry, Cap::Exempt)
    }

    fn bounded_len(&self) -> Option<usize> {
        Some(lock(&self.shared).bounded)
    }

    async fn put_bounded(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let (key, mut value) = (self.key(key), self.shared.names.encode(value));
        if let Some(head) = value.first_mut() {
            *head |= BOUNDED;
        }
        let entry = Entry::new(value, 0, self.shared.deadline(ttl));
        let now = self.shared.now();
        let mut state = lock(&self.shared);
        let replaces = state.live(&key, now).is_some_and(|e| e.bounded());
        if !replaces && state.bounded >= self.shared.bounded_cap {
            drop(state);
            self.discard(entry);
            return Ok(false);
        }
        self.insert(&mut state, key, entry, Cap::Enforced)?;
        Ok(true)
    }

    async fn reserve(
        &self,
        key: &str,
        policy: &BackoffPolicy,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<Reserved, EphemeralError> {
        let key = self.key(key);
        let (now, deadline) = (self.shared.now(), self.shared.deadline(ttl));
        let mut state = lock(&self.shared);
        let names = &self.shared.names;
        let before = state.live(&key, now).and_then(|e| {
            let next: [u8; 8] = names.decode(&e.value)?.as_slice().try_into().ok()?;
            Some((e.counter, i64::from_be_bytes(next)))
        });
        let (answer, (n, next)) = super::reserve_step(before, policy, now_ms);
        if let Reserved::Granted(_) = answer {
            let entry = Entry::new(names.encode(&next.to_be_bytes()), n, deadline);
            self.insert(&mut state, key, entry, Cap::Enforced)?;
        }
        Ok(answer)
    }

    async fn put_new(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let (key, value) = (self.key(key), self.shared.names.encode(value));
        let entry = Entry::new(value, 0, self.shared.deadline(ttl));
        let now = self.shared.now();
        let mut state = lock(&self.shared);
        if state.live(&key, now).is_some() {
            drop(state);
            self.discard(entry);
            return Ok(false);
        }
        self.insert(&mut state, key, entry, Cap::Enforced)?;
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let (key, now) = (self.key(key), self.shared.now());
        let mut state = lock(&self.shared);
        Ok(state.live(&key, now).and_then(|e| self.shared.names.decode(&e.value)))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let (key, now) = (self.key(key), self.shared.now());
        let Some(taken) = lock(&self.shared).take_out(&key) else {
            return Ok(None);
        };
        let value = (taken.expires_at > now)
            .then(|| self.shared.names.decode(&taken.value))
            .flatten();
        self.discard(taken);
        Ok(value)
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        let key = self.key(key);
        lock(&self.shared).forget(&key);
        Ok(())
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64, EphemeralError> {
        let key = self.key(key);
        let (now, deadline) = (self.shared.now(), self.shared.deadline(window));
        let mut state = lock(&self.shared);
        if let Some(e) = state.live(&key, now) {
            e.counter += 1;
            return Ok(e.counter);
        }
        self.insert(
            &mut state,
            key,
            Entry::new(Box::new([super::compact::RAW]), 1, deadline),
            Cap::Enforced,
        )?;
        Ok(1)
    }

    async fn adjust(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, EphemeralError> {
        let key = self.key(key);
        let (now, deadline) = (self.shared.now(), self.shared.deadline(ttl));
        let mut state = lock(&self.shared);
        let before = state
            .live(&key, now)
            .map_or(0, |e| i64::try_from(e.counter).unwrap_or(i64::MAX));
        let after = before.saturating_add(delta).max(0);
        if after == 0 {
            state.forget(&key);
        } else {
            let entry = Entry::new(Box::new([super::compact::RAW]), after.unsigned_abs(), deadline);
            // Giving a flow back (delta < 0) must never fail for want of room.
            let cap = if delta < 0 { Cap::Exempt } else { Cap::Enforced };
            self.insert(&mut state, key, entry, cap)?;
        }
        Ok(after)
    }

    async fn count(&self, key: &str) -> Result<(u64, Duration), EphemeralError> {
        let (key, now) = (self.key(key), self.shared.now());
        let mut state = lock(&self.shared);
        Ok(state
            .live(&key, now)
            .map(|e| (e.counter, Duration::from_millis(e.expires_at.saturating_sub(now))))
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
    async fn a_full_store_refuses_new_entries_but_keeps_status_markers() {
        let s = MemoryStore::with_caps(10, 3);
        let ttl = Duration::from_secs(60);
        s.put("code:a", b"1", ttl).await.unwrap();
        assert_eq!(s.hit("ip", ttl).await.unwrap(), 1);
        assert_eq!(s.adjust("open", 1, ttl).await.unwrap(), 1);
        // Full: new entries of every kind are refused, replacing and counting are not.
        assert!(matches!(
            s.put("code:b", b"2", ttl).await,
            Err(EphemeralError::Unavailable(_))
        ));
        assert!(s.put_bounded("flow:1", b"f", ttl).await.is_err());
        assert!(s.put_new("jti", b"1", ttl).await.is_err());
        assert!(s.hit("ip2", ttl).await.is_err());
        s.put("code:a", b"3", ttl).await.unwrap();
        assert_eq!(s.hit("ip", ttl).await.unwrap(), 2);
        assert_eq!(s.adjust("open", 1, ttl).await.unwrap(), 2);
        // A revocation marker is never refused.
        s.put_or_queue("grant-revoked:g", b"1", ttl).await.unwrap();
        assert_eq!(s.get("grant-revoked:g").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.len(), 4);
        // A code taken makes room.
        assert_eq!(s.take("code:a").await.unwrap(), Some(b"3".to_vec()));
        assert!(s.take("grant-revoked:g").await.unwrap().is_some());
        s.put("code:b", b"2", ttl).await.unwrap();
    }

    #[tokio::test]
    async fn r_auth_4_fingerprint_keys_and_json_records_round_trip_and_stay_single_use() {
        let s = MemoryStore::new();
        let key = format!("code:{}", "a1".repeat(32));
        let value = br#"{"client_id":"c","sub":"0b6f1c9e-3f43-4a8e-9d52-1b7c2d4e5f60","scope":["openid"],"exp":17}"#;
        s.put(&key, value, Duration::from_secs(60)).await.unwrap();
        let read = s.get(&key).await.unwrap().unwrap();
        let as_json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
        assert_eq!(as_json(&read), as_json(value));
        assert!(s.get(&format!("code:{}", "a2".repeat(32))).await.unwrap().is_none());
        assert!(s.take(&key).await.unwrap().is_some());
        assert!(s.take(&key).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn shared_strings_leave_with_the_last_entry_that_holds_them() {
        let s = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        let value = |n: u32| format!(r#"{{"client_id":"portal","redirect_uri":"https://rp.example/cb","n":{n}}}"#);
        for n in 0..4 {
            s.put(&format!("code:{n}"), value(n).as_bytes(), ttl).await.unwrap();
        }
        assert_eq!(s.shared.names.shared_strings(), 2);
        // Taken, deleted, replaced, expired: each gives its strings back.
        let taken: serde_json::Value = serde_json::from_slice(&s.take("code:0").await.unwrap().unwrap()).unwrap();
        assert_eq!(taken["redirect_uri"], "https://rp.example/cb");
        s.delete("code:1").await.unwrap();
        s.put("code:2", b"{}", ttl).await.unwrap();
        assert_eq!(s.shared.names.shared_strings(), 2);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(s.get("code:3").await.unwrap().is_none());
        assert_eq!(s.shared.names.shared_strings(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn counters_tell_the_time_left() {
        let s = MemoryStore::new();
        s.hit("ip", Duration::from_secs(10)).await.unwrap();
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(s.count("ip").await.unwrap(), (1, Duration::from_secs(6)));
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
