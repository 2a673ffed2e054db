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
mod tests;
