//! The Redis ephemeral store, for more than one instance (R-LIFE-4, R-OPS-1): login flows,
//! challenges, codes, access tokens, rate-limit counters and replay caches live in Redis
//! so any instance can continue what another started; status events travel over Redis
//! pub/sub so a suspension on one instance drops cached state on all of them.
//!
//! - Single use is atomic in Redis: `take` is `GETDEL`, `put_new` is `SET NX`, `hit` is a
//!   Lua script (`INCR` + `PEXPIRE` on the first hit), so two instances can never both
//!   win a code or a challenge.
//! - Every command has a deadline (`[ephemeral] timeout`): when Redis is down or hung the
//!   caller gets [`EphemeralError::Unavailable`] quickly and logins fail closed with 503.
//!   Commands go through a `ConnectionManager`, which reconnects on the next command after
//!   a failure, so the service resumes by itself when Redis returns.
//! - Events are sent to the local subscribers first (this instance's cache drops at once)
//!   and then published. A publish that fails is queued, with the markers written through
//!   [`Ephemeral::put_or_queue`], and re-sent as soon as the subscription is up again.
//!   Whenever the subscription is lost or re-established, a [`StatusEvent::Resync`] tells
//!   this instance's caches to drop everything: events may have been missed meanwhile.
//!
//! It must not hold the record of anything: SQL is the record of every status change.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::broadcast;

use super::{BackoffPolicy, Ephemeral, EphemeralError, Reserved, StatusEvent};

/// At most this many writes wait for Redis to return; beyond it the oldest are dropped
/// (caches expire on their own, and every instance resyncs on reconnect anyway).
const MAX_PENDING: usize = 10_000;

/// How often the subscriber checks that Redis still answers (a hung server sends no FIN).
const SUBSCRIBER_PING: Duration = Duration::from_secs(1);

/// `INCR` with the window set on the first hit, atomically.
const HIT_SCRIPT: &str = "local n = redis.call('INCR', KEYS[1]) \
                          if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
                          return n";

/// `INCRBY` that keeps the counter `ttl` from now and removes it at zero, atomically.
const ADJUST_SCRIPT: &str = "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) \
    if n <= 0 then redis.call('DEL', KEYS[1]) return 0 end \
    redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
    return n";

/// [`Ephemeral::reserve`] in one step: the same rule as `super::reserve_step`, on a hash
/// `n` (attempts) / `t` (earliest next attempt, ms). Answers `{0, n}` granted, `{1, ms}`
/// wait, `{2, 0}` blocked.
const RESERVE_SCRIPT: &str = "local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0') \
    local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0') \
    local now = tonumber(ARGV[1]) \
    if n >= tonumber(ARGV[5]) then return {2, 0} end \
    if t > now then return {1, t - now} end \
    n = n + 1 \
    local over = n - tonumber(ARGV[2]) \
    local wait = 0 \
    if over > 0 then wait = math.min(tonumber(ARGV[3]) * 2 ^ math.min(over - 1, 40), tonumber(ARGV[4])) end \
    if wait > 0 then t = math.floor(now + wait) end \
    redis.call('HSET', KEYS[1], 'n', n, 't', t) \
    redis.call('PEXPIRE', KEYS[1], ARGV[6]) \
    return {0, n}";

/// A write that could not reach Redis, replayed when it returns.
enum Pending {
    Publish(StatusEvent),
    Put {
        key: String,
        value: Vec<u8>,
        expires: Instant,
    },
}

struct Shared {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: String,
    channel: String,
    timeout: Duration,
    events: broadcast::Sender<StatusEvent>,
    pending: Mutex<VecDeque<Pending>>,
}

/// Handle to the Redis store; clones share the connection and the subscriber.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

fn unavailable(e: impl std::fmt::Display) -> EphemeralError {
    EphemeralError::Unavailable(format!("redis: {e}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Connects lazily to `url` (`redis://` or `redis+unix://`): the server starts even
    /// when Redis is down (the helpdesk must work; logins answer 503 until it is back).
    /// `prefix` namespaces keys and the event channel; `timeout` bounds every command.
    pub fn open(url: &str, prefix: &str, timeout: Duration) -> Result<Self, EphemeralError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        // One quick reconnection attempt per command: waiting through a long backoff would
        // hold a login for seconds instead of failing it closed at once.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(100))
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(unavailable)?;
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            client,
            manager,
            prefix: prefix.to_owned(),
            channel: format!("{prefix}status-events"),
            timeout,
            events,
            pending: Mutex::new(VecDeque::new()),
        });
        tokio::spawn(subscriber(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.shared.prefix)
    }

    /// Runs one command with the deadline; every failure is `Unavailable`. A connection
    /// found broken (Redis restarted since the last command) is retried once on the new
    /// connection the manager opens, so the first request after an outage succeeds.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, EphemeralError> {
        let manager = &self.shared.manager;
        let attempt = async {
            match cmd.query_async(&mut manager.clone()).await {
                Err(e) if broken(&e) => cmd.query_async(&mut manager.clone()).await,
                other => other,
            }
        };
        deadline(self.shared.timeout, attempt).await
    }

    /// Refuses a Redis that may evict keys under memory pressure (issue 19): a flood must
    /// never push out security state (revocation markers, replay caches, throttles).
    /// `maxmemory-policy` must be `noeviction` unless `allow_eviction` says the operator
    /// knows better (e.g. a managed Redis without `CONFIG`). A Redis that does not answer
    /// now is not refused (the server starts, logins answer 503 until it is back).
    pub async fn check_eviction_policy(&self, allow_eviction: bool) -> Result<(), EphemeralError> {
        if allow_eviction {
            return Ok(());
        }
        let answer: Result<Vec<String>, EphemeralError> =
            self.run(redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy")).await;
        match answer {
            Ok(pair) => match pair.get(1).map(String::as_str) {
                Some("noeviction") => Ok(()),
                Some(policy) => Err(EphemeralError::Unavailable(format!(
                    "redis maxmemory-policy is `{policy}`: a flood could evict security state; set it to \
                     `noeviction` or, if eviction is intended, `[ephemeral] allow_eviction = true`"
                ))),
                None => Err(EphemeralError::Unavailable(
                    "redis did not report maxmemory-policy (CONFIG GET refused?); set `noeviction` and \
                     `[ephemeral] allow_eviction = true` to start without the check"
                        .into(),
                )),
            },
            Err(e) => {
                tracing::warn!(error = %e, "redis unreachable at start: maxmemory-policy not checked");
                Ok(())
            }
        }
    }

    /// The number of writes waiting for Redis to return (for tests and logs).
    pub fn pending(&self) -> usize {
        lock(&self.shared.pending).len()
    }
}

async fn deadline<T>(timeout: Duration, f: impl Future<Output = redis::RedisResult<T>>) -> Result<T, EphemeralError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("command timed out")),
    }
}

/// The connection itself failed (not the command): worth one retry on a new connection.
fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn enqueue(shared: &Shared, item: Pending) {
    let mut q = lock(&shared.pending);
    if q.len() >= MAX_PENDING {
        q.pop_front();
    }
    q.push_back(item);
}

/// Replays the queued writes in order; stops at the first failure and keeps the rest.
async fn flush_pending(shared: &Shared) -> Result<usize, EphemeralError> {
    let mut sent = 0;
    loop {
        let Some(item) = lock(&shared.pending).pop_front() else {
            return Ok(sent);
        };
        let mut conn = shared.manager.clone();
        let result = match &item {
            Pending::Publish(event) => {
                let payload = serde_json::to_string(event).map_err(unavailable)?;
                deadline(
                    shared.timeout,
                    redis::cmd("PUBLISH")
                        .arg(&shared.channel)
                        .arg(payload)
                        .query_async::<i64>(&mut conn),
                )
                .await
                .map(|_| ())
            }
            Pending::Put { key, value, expires } => {
                let left = expires.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Ok(())
                } else {
                    deadline(
                        shared.timeout,
                        redis::cmd("SET")
                            .arg(key)
                            .arg(value.as_slice())
                            .arg("PX")
                            .arg(millis(left))
                            .query_async::<()>(&mut conn),
                    )
                    .await
                }
            }
        };
        if let Err(e) = result {
            lock(&shared.pending).push_front(item);
            return Err(e);
        }
        sent += 1;
    }
}

/// Keeps one subscription to the event channel for as long as the store lives:
/// forwards events to the local subscribers, resyncs them whenever the subscription
/// drops or comes back, and replays queued writes once Redis answers again.
async fn subscriber(weak: std::sync::Weak<Shared>) {
    let mut backoff = Duration::from_millis(50);
    let mut was_up = false;
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let (client, channel, timeout) = (shared.client.clone(), shared.channel.clone(), shared.timeout);
        drop(shared);
        let connected = tokio::time::timeout(timeout, async {
            let pubsub = client.get_async_pubsub().await?;
            let (mut sink, stream) = pubsub.split();
            sink.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        })
        .await;
        let (mut sink, mut stream) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                if was_up {
                    tracing::warn!(error = %e, "redis subscription lost");
                    was_up = false;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        was_up = true;
        tracing::info!("redis subscription up");
        {
            let Some(shared) = weak.upgrade() else { return };
            // Events may have been missed while the subscription was down.
            let _ = shared.events.send(StatusEvent::Resync);
            match flush_pending(&shared).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(replayed = n, "queued status events re-sent after redis returned"),
                Err(e) => tracing::warn!(error = %e, "queued status events not yet re-sent"),
            }
        }
        let mut ping = tokio::time::interval(SUBSCRIBER_PING);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Some(shared) = weak.upgrade() else { return };
                    match serde_json::from_slice::<StatusEvent>(message.get_payload_bytes()) {
                        Ok(event) => { let _ = shared.events.send(event); }
                        // An event we cannot read might have been a drop: drop everything.
                        Err(_) => { let _ = shared.events.send(StatusEvent::Resync); }
                    }
                }
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(timeout, sink.ping::<String>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break;
                    }
                    let Some(shared) = weak.upgrade() else { return };
                    if !lock(&shared.pending).is_empty() {
                        if let Err(e) = flush_pending(&shared).await {
                            tracing::warn!(error = %e, "queued status events not yet re-sent");
                        }
                    }
                }
            }
        }
        tracing::warn!("redis subscription lost");
        let Some(shared) = weak.upgrade() else { return };
        let _ = shared.events.send(StatusEvent::Resync);
    }
}

#[async_trait]
impl Ephemeral for RedisStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        self.run(
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("PX")
                .arg(millis(ttl)),
        )
        .await
    }

    async fn put_new(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let stored: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(stored.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        self.run(redis::cmd("GET").arg(self.key(key))).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        self.run(redis::cmd("GETDEL").arg(self.key(key))).await
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        self.run::<i64>(redis::cmd("DEL").arg(self.key(key))).await.map(|_| ())
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64, EphemeralError> {
        let n: i64 = self
            .run(
                redis::cmd("EVAL")
                    .arg(HIT_SCRIPT)
                    .arg(1)
                    .arg(self.key(key))
                    .arg(millis(window)),
            )
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn adjust(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, EphemeralError> {
        self.run(
            redis::cmd("EVAL")
                .arg(ADJUST_SCRIPT)
                .arg(1)
                .arg(self.key(key))
                .arg(delta)
                .arg(millis(ttl)),
        )
        .await
    }

    async fn count(&self, key: &str) -> Result<(u64, Duration), EphemeralError> {
        let key = self.key(key);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        let manager = &self.shared.manager;
        let attempt = async {
            match pipe.query_async(&mut manager.clone()).await {
                Err(e) if broken(&e) => pipe.query_async(&mut manager.clone()).await,
                other => other,
            }
        };
        let (value, ttl): (Option<String>, i64) = deadline(self.shared.timeout, attempt).await?;
        let n = value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let left = u64::try_from(ttl).map(Duration::from_millis).unwrap_or(Duration::ZERO);
        Ok((n, left))
    }

    async fn put_or_queue(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        let result = self.put(key, value, ttl).await;
        if result.is_err() {
            enqueue(
                &self.shared,
                Pending::Put {
                    key: self.key(key),
                    value: value.to_vec(),
                    expires: Instant::now() + ttl,
                },
            );
        }
        result
    }

    async fn publish(&self, event: &StatusEvent) -> Result<(), EphemeralError> {
        // This instance first, whatever happens to Redis.
        let _ = self.shared.events.send(event.clone());
        let payload = serde_json::to_string(event).map_err(unavailable)?;
        let published = self
            .run::<i64>(redis::cmd("PUBLISH").arg(&self.shared.channel).arg(payload))
            .await;
        if published.is_err() {
            enqueue(&self.shared, Pending::Publish(event.clone()));
        }
        published.map(|_| ())
    }

    fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.shared.events.subscribe()
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        self.run::<String>(&redis::cmd("PING")).await.map(|_| ())
    }

    fn shared_between_instances(&self) -> bool {
        true
    }

    async fn reserve(
        &self,
        key: &str,
        policy: &BackoffPolicy,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<Reserved, EphemeralError> {
        let (kind, value): (i64, i64) = self
            .run(
                redis::cmd("EVAL")
                    .arg(RESERVE_SCRIPT)
                    .arg(1)
                    .arg(self.key(key))
                    .arg(now_ms)
                    .arg(policy.free)
                    .arg(policy.base_ms)
                    .arg(policy.max_ms)
                    .arg(policy.hard.min(1 << 50))
                    .arg(millis(ttl)),
            )
            .await?;
        let value = u64::try_from(value).unwrap_or(0);
        Ok(match kind {
            0 => Reserved::Granted(value),
            1 => Reserved::Wait(value.max(1)),
            _ => Reserved::Blocked,
        })
    }
}
