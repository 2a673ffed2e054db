//! Store contract, refresh tokens: rotation, reuse and replay revoke the grant, expiry,
//! suspension revokes them (R-AUTH-1, R-AUTH-4, R-LIFE-4).

use std::sync::Arc;

use eidgate::domain::ids::GrantId;
use eidgate::domain::means::MeansStatus;
use eidgate::store::{GrantRepo, MeansRepo, RefreshOutcome};
use serde_json::json;

use super::*;

#[tokio::test]
async fn r_life_4_suspending_a_means_revokes_its_refresh_tokens() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "3").await;
        let other = holder_with_means(&store, "4").await;
        for (token, grant, means) in [
            ("a", GrantId::new(), &m),
            ("b", GrantId::new(), &m),
            ("c", GrantId::new(), &other),
        ] {
            store
                .insert_refresh(&refresh(token, grant, "rp", means, 5_000))
                .await
                .unwrap();
        }
        assert!(store.refresh(&fp("a"), 2_000).await.unwrap().is_some(), "{engine}");

        let suspended = store
            .set_status(m.id, m.version, MeansStatus::Suspended, event("means.suspended", "m"))
            .await
            .unwrap();
        assert_eq!(
            (suspended.status, suspended.version),
            (MeansStatus::Suspended, 2),
            "{engine}"
        );
        assert_eq!(store.refresh(&fp("a"), 2_000).await.unwrap(), None, "{engine}");
        assert_eq!(store.refresh(&fp("b"), 2_000).await.unwrap(), None, "{engine}");
        let replacement = refresh("a2", GrantId::new(), "rp", &m, 9_000);
        assert_eq!(
            store
                .rotate_refresh(&fp("a"), &client_id("rp"), 2_000, &replacement)
                .await
                .unwrap(),
            RefreshOutcome::Invalid,
            "{engine}"
        );
        // Another holder's means is untouched.
        assert!(store.refresh(&fp("c"), 2_000).await.unwrap().is_some(), "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_auth_4_refresh_rotates_once_and_reuse_revokes_the_whole_grant() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "5").await;
        let grant = GrantId::new();
        let rp = client_id("rp");
        let first = refresh("t1", grant, "rp", &m, 5_000);
        store.insert_refresh(&first).await.unwrap();

        // The replacement's binding comes from the consumed token, not from the caller.
        let mut second = refresh("t2", GrantId::new(), "rp", &m, 6_000);
        second.grant_data = json!({"scope": "openid"});
        let outcome = store.rotate_refresh(&fp("t1"), &rp, 2_000, &second).await.unwrap();
        assert_eq!(outcome, RefreshOutcome::Rotated(first.clone()), "{engine}");
        let live = store.refresh(&fp("t2"), 2_000).await.unwrap().unwrap();
        assert_eq!(live.grant_id, grant, "{engine}");
        assert_eq!(live.grant_data, json!({"scope": "openid"}), "{engine}");
        assert_eq!((live.created_at, live.expires_at), (1_000, 6_000), "{engine}");
        assert_eq!(
            store.refresh(&fp("t1"), 2_000).await.unwrap(),
            None,
            "{engine}: used token is not live"
        );

        // Replay of t1: reuse detected, t2 dies with it.
        let third = refresh("t3", grant, "rp", &m, 7_000);
        let outcome = store.rotate_refresh(&fp("t1"), &rp, 2_100, &third).await.unwrap();
        assert_eq!(outcome, RefreshOutcome::Reused(grant), "{engine}");
        assert_eq!(store.refresh(&fp("t2"), 2_100).await.unwrap(), None, "{engine}");
        assert_eq!(
            store.refresh(&fp("t3"), 2_100).await.unwrap(),
            None,
            "{engine}: nothing stored"
        );
        let outcome = store.rotate_refresh(&fp("t2"), &rp, 2_200, &third).await.unwrap();
        assert_eq!(outcome, RefreshOutcome::Invalid, "{engine}");
        assert_eq!(
            store.revoke_grant(grant).await.unwrap(),
            0,
            "{engine}: nothing left alive"
        );
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_a_refresh_token_replayed_concurrently_rotates_once_and_revokes_the_grant() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "10").await;
        let grant = GrantId::new();
        store
            .insert_refresh(&refresh("race", grant, "rp", &m, 5_000))
            .await
            .unwrap();
        let store = Arc::new(store);
        let racers: Vec<_> = ["race-a", "race-b"]
            .into_iter()
            .map(|next| {
                let store = Arc::clone(&store);
                let replacement = refresh(next, grant, "rp", &m, 6_000);
                tokio::spawn(async move {
                    store
                        .rotate_refresh(&fp("race"), &client_id("rp"), 2_000, &replacement)
                        .await
                })
            })
            .collect();
        let mut rotated = 0;
        for racer in racers {
            match racer.await.unwrap().unwrap() {
                RefreshOutcome::Rotated(_) => rotated += 1,
                RefreshOutcome::Reused(g) => assert_eq!(g, grant, "{engine}"),
                RefreshOutcome::Invalid => panic!("{engine}: a racer saw Invalid"),
            }
        }
        assert_eq!(rotated, 1, "{engine}: exactly one rotation");
        for token in ["race", "race-a", "race-b"] {
            assert_eq!(
                store.refresh(&fp(token), 2_000).await.unwrap(),
                None,
                "{engine}: {token}"
            );
        }
        store.close().await;
    }
}

#[tokio::test]
async fn r_auth_4_a_refresh_token_presented_by_another_client_is_invalid_and_unchanged() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "6").await;
        let grant = GrantId::new();
        store
            .insert_refresh(&refresh("mine", grant, "rp-a", &m, 5_000))
            .await
            .unwrap();

        let stolen = refresh("theirs", grant, "rp-b", &m, 6_000);
        let outcome = store
            .rotate_refresh(&fp("mine"), &client_id("rp-b"), 2_000, &stolen)
            .await
            .unwrap();
        assert_eq!(outcome, RefreshOutcome::Invalid, "{engine}");
        assert_eq!(store.refresh(&fp("theirs"), 2_000).await.unwrap(), None, "{engine}");

        let next = refresh("mine-2", grant, "rp-a", &m, 6_000);
        let outcome = store
            .rotate_refresh(&fp("mine"), &client_id("rp-a"), 2_000, &next)
            .await
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Rotated(_)), "{engine}: {outcome:?}");
        // Once used, the other client still learns nothing and revokes nothing.
        let outcome = store
            .rotate_refresh(&fp("mine"), &client_id("rp-b"), 2_100, &stolen)
            .await
            .unwrap();
        assert_eq!(outcome, RefreshOutcome::Invalid, "{engine}");
        assert!(store.refresh(&fp("mine-2"), 2_100).await.unwrap().is_some(), "{engine}");

        assert_eq!(store.revoke_grant(grant).await.unwrap(), 1, "{engine}");
        assert_eq!(store.refresh(&fp("mine-2"), 2_100).await.unwrap(), None, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_auth_1_an_expired_refresh_token_is_invalid_and_not_consumed() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "7").await;
        store
            .insert_refresh(&refresh("old", GrantId::new(), "rp", &m, 3_000))
            .await
            .unwrap();
        let next = refresh("new", GrantId::new(), "rp", &m, 9_000);
        for now in [3_000, 4_000] {
            let outcome = store
                .rotate_refresh(&fp("old"), &client_id("rp"), now, &next)
                .await
                .unwrap();
            assert_eq!(outcome, RefreshOutcome::Invalid, "{engine} at {now}");
        }
        assert_eq!(store.refresh(&fp("old"), 3_000).await.unwrap(), None, "{engine}");
        assert_eq!(store.refresh(&fp("new"), 3_000).await.unwrap(), None, "{engine}");
        let unknown = store
            .rotate_refresh(&fp("never"), &client_id("rp"), 1_500, &next)
            .await
            .unwrap();
        assert_eq!(unknown, RefreshOutcome::Invalid, "{engine}");
        // Expiry did not mark it used: within its lifetime it still rotates.
        let outcome = store
            .rotate_refresh(&fp("old"), &client_id("rp"), 2_999, &next)
            .await
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Rotated(_)), "{engine}: {outcome:?}");
        store.close().await;
    }
}
