//! Tests of `memory.rs`.
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
