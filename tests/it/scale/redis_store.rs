//! The Redis ephemeral store across instances: single use, counters, atomic reservations,
//! resync after an outage, an evicting Redis refused (R-AUTH-4).

use std::time::Duration;

use eidgate::ephemeral::redis::RedisStore;
use eidgate::ephemeral::{Ephemeral, StatusEvent};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_auth_4_redis_store_is_single_use_and_counts_across_instances_and_resyncs_after_an_outage() {
    let mut redis = cluster::Redis::start().await;
    let open = || RedisStore::open(&redis.url(), "t:", Duration::from_millis(300)).unwrap();
    let (one, two) = (open(), open());
    let mut events = two.subscribe();
    // The first event is the resync sent when the subscription is up.
    assert_eq!(events.recv().await.unwrap(), StatusEvent::Resync);

    // Single use across instances: exactly one of many concurrent takes wins.
    one.put("code", b"grant", Duration::from_secs(60)).await.unwrap();
    let takes: Vec<_> = (0..32)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move { store.take("code").await.unwrap().is_some() })
        })
        .collect();
    let mut winners = 0;
    for t in takes {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert!(one.put_new("jti", b"1", Duration::from_secs(60)).await.unwrap());
    assert!(!two.put_new("jti", b"2", Duration::from_secs(60)).await.unwrap());
    for n in 1..=6 {
        let store = if n % 2 == 0 { &one } else { &two };
        assert_eq!(store.hit("ip", Duration::from_secs(60)).await.unwrap(), n);
    }
    let (count, left) = one.count("ip").await.unwrap();
    assert_eq!(count, 6);
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(one.count("never").await.unwrap(), (0, Duration::ZERO));

    // Status events reach the other instance.
    let changed = StatusEvent::MeansChanged {
        means: eidgate::domain::ids::MeansId::new(),
    };
    one.publish(&changed).await.unwrap();
    assert_eq!(events.recv().await.unwrap(), changed);

    // Down: commands fail closed, writes that must not be lost are queued, and the
    // subscriber tells its caches to drop everything.
    redis.stop().await;
    assert_eq!(events.recv().await.unwrap(), StatusEvent::Resync);
    assert!(one.get("jti").await.is_err());
    assert!(one.ping().await.is_err());
    assert!(one.publish(&changed).await.is_err());
    assert!(one.put_or_queue("marker", b"1", Duration::from_secs(60)).await.is_err());
    assert_eq!(one.pending(), 2);

    // Back (empty): resync again, the queue is replayed, commands work without a restart.
    redis.start_again().await;
    assert_eq!(events.recv().await.unwrap(), StatusEvent::Resync);
    let started = std::time::Instant::now();
    while one.pending() > 0 {
        assert!(started.elapsed() < RECOVERY, "queued writes not replayed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(two.get("marker").await.unwrap(), Some(b"1".to_vec()));
    two.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_auth_4_redis_reservations_are_atomic_across_instances_and_an_evicting_redis_is_refused() {
    use eidgate::ephemeral::{BackoffPolicy, Reserved};
    let redis = cluster::Redis::start().await;
    let open = || RedisStore::open(&redis.url(), "r:", Duration::from_millis(500)).unwrap();
    let (one, two) = (open(), open());
    let policy = BackoffPolicy {
        free: 3,
        base_ms: 60_000,
        max_ms: 600_000,
        hard: 100,
    };
    // Check and count in one step: of 24 parallel attempts from two instances, only the
    // free ones and the one that starts the back-off go through.
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                store
                    .reserve("who", &policy, 1_000, Duration::from_secs(600))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Reserved::Granted(_) => granted += 1,
            Reserved::Wait(ms) => assert!(ms > 59_000, "{ms}"),
            Reserved::Blocked => panic!("not at the hard limit"),
        }
    }
    assert_eq!(granted, 4);
    assert_eq!(
        one.reserve("who", &policy, 61_001, Duration::from_secs(600))
            .await
            .unwrap(),
        Reserved::Granted(5)
    );
    let hard = BackoffPolicy { hard: 5, ..policy };
    assert_eq!(
        two.reserve("who", &hard, 10_000_000, Duration::from_secs(600))
            .await
            .unwrap(),
        Reserved::Blocked
    );

    // Open-flow counters go up and down across instances and vanish at zero.
    let ttl = Duration::from_secs(60);
    assert_eq!(one.adjust("open", 1, ttl).await.unwrap(), 1);
    assert_eq!(two.adjust("open", 1, ttl).await.unwrap(), 2);
    assert_eq!(one.adjust("open", -1, ttl).await.unwrap(), 1);
    assert_eq!(two.adjust("open", -3, ttl).await.unwrap(), 0);
    assert_eq!(one.count("open").await.unwrap(), (0, Duration::ZERO));

    // The test Redis runs with the default `noeviction`: accepted.
    one.check_eviction_policy(false).await.unwrap();
    // Under an evicting policy the store refuses to start, unless told otherwise.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
    let refused = one.check_eviction_policy(false).await.unwrap_err().to_string();
    assert!(
        refused.contains("allkeys-lru") && refused.contains("noeviction"),
        "{refused}"
    );
    one.check_eviction_policy(true).await.unwrap();
}
