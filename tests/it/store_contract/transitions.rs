//! Store contract, what a transition does besides the state: refresh tokens revoked, the
//! cached means dropped, fifty racing transitions on one means (R-LIFE-4).

use std::sync::Arc;

use eidgate::audit::AuditEvent;
use eidgate::domain::ids::{GrantId, MeansId};
use eidgate::domain::loa::Loa;
use eidgate::domain::means::proof::{IdentityReverified, Verification, VerificationMethod};
use eidgate::domain::means::state::{self, Command};
use eidgate::domain::means::MeansStatus;
use eidgate::store::cached::CachedStore;
use eidgate::store::{GrantRepo, LifecycleRepo, MeansRepo, SqlStore, Store, StoreError, TransitionWrite};
use rand::Rng;
use serde_json::json;

use super::*;

#[tokio::test]
async fn r_life_4_a_transition_away_from_active_revokes_the_means_refresh_tokens() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "28").await;
        let other = holder_with_means(&store, "29").await;
        for (token, means) in [("a", &m), ("b", &m), ("c", &other)] {
            store
                .insert_refresh(&refresh(token, GrantId::new(), "rp", means, 5_000))
                .await
                .unwrap();
        }
        store
            .commit_transition(
                &TransitionWrite::status(m.id, 1, MeansStatus::Suspended),
                event("means.suspended", means_subject(m.id)),
            )
            .await
            .unwrap();
        for token in ["a", "b"] {
            assert_eq!(
                store.refresh(&fp(token), 2_000).await.unwrap(),
                None,
                "{engine}: {token}"
            );
        }
        assert!(store.refresh(&fp("c"), 2_000).await.unwrap().is_some(), "{engine}");

        // Back to active: tokens issued from now on live until the next transition away.
        store
            .commit_transition(
                &TransitionWrite::status(m.id, 2, MeansStatus::Active),
                event("means.reactivated", means_subject(m.id)),
            )
            .await
            .unwrap();
        store
            .insert_refresh(&refresh("d", GrantId::new(), "rp", &m, 5_000))
            .await
            .unwrap();
        assert!(store.refresh(&fp("d"), 2_000).await.unwrap().is_some(), "{engine}");
        store
            .commit_transition(
                &TransitionWrite::status(m.id, 3, MeansStatus::Revoked),
                event("means.revoked", means_subject(m.id)),
            )
            .await
            .unwrap();
        assert_eq!(store.refresh(&fp("d"), 2_000).await.unwrap(), None, "{engine}");
        assert!(store.refresh(&fp("c"), 2_000).await.unwrap().is_some(), "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_life_4_the_cached_store_drops_a_means_when_a_transition_commits() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "31").await;
        let sql = Arc::new(store);
        let cached = CachedStore::new(
            Arc::clone(&sql) as Arc<dyn Store>,
            std::time::Duration::from_secs(3_600),
        );
        assert_eq!(cached.means(m.id).await.unwrap(), Some(m.clone()), "{engine}");
        // A change behind the cache's back is not seen: the entry is really cached.
        sql.set_status(m.id, 1, MeansStatus::Suspended, event("means.suspended", "m"))
            .await
            .unwrap();
        assert_eq!(cached.means(m.id).await.unwrap(), Some(m.clone()), "{engine}");

        let active = cached
            .commit_transition(
                &TransitionWrite::status(m.id, 2, MeansStatus::Active),
                event("means.reactivated", "m"),
            )
            .await
            .unwrap();
        assert_eq!(cached.means(m.id).await.unwrap(), Some(active.clone()), "{engine}");

        // A failed transition drops the entry too: the caller re-reads the truth.
        let suspended = sql
            .set_status(m.id, 3, MeansStatus::Suspended, event("means.suspended", "m"))
            .await
            .unwrap();
        assert_eq!(cached.means(m.id).await.unwrap(), Some(active), "{engine}: cached");
        let err = cached
            .commit_transition(
                &TransitionWrite::status(m.id, 3, MeansStatus::Revoked),
                event("means.revoked", "m"),
            )
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(cached.means(m.id).await.unwrap(), Some(suspended), "{engine}");
        sql.close().await;
    }
}

/// A helpdesk request in the race below.
#[derive(Clone, Copy, Debug)]
enum Request {
    Reactivate,
    Revoke,
    Suspend,
}

/// Sends `plan` one request after another, like a helpdesk operator: each is tried until
/// it commits or is not allowed from the state read (the API's 409); a `Conflict`
/// retries with a fresh read. Returns how many committed.
async fn race_one(store: Arc<SqlStore>, id: MeansId, plan: Vec<Request>, task: usize) -> i64 {
    let mut committed = 0;
    for request in plan {
        loop {
            let current = store.means(id).await.unwrap().unwrap();
            let command = match request {
                Request::Reactivate => Command::Reactivate(
                    IdentityReverified::check(
                        &Verification {
                            method: VerificationMethod::InPerson,
                            evidence: "id card LT1234567 checked".into(),
                        },
                        Loa::High,
                        current.loa,
                    )
                    .unwrap(),
                ),
                Request::Revoke => Command::Revoke,
                Request::Suspend => Command::Suspend,
            };
            let Ok(to) = state::apply(current.status, &command) else {
                break;
            };
            let audit = AuditEvent::new(
                &format!("means.{}", command.name()),
                "operator:test",
                means_subject(id),
                json!({"from": current.status.as_str(), "to": to.as_str(), "version": current.version + 1, "task": task}),
            );
            match store
                .commit_transition(&TransitionWrite::status(id, current.version, to), audit)
                .await
            {
                Ok(_) => {
                    committed += 1;
                    break;
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => panic!("task {task}: {e}"),
            }
        }
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_life_4_fifty_concurrent_transitions_on_one_means_end_consistent_with_a_gap_free_chain() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "30").await;
        store
            .insert_refresh(&refresh("racing", GrantId::new(), "rp", &m, i64::MAX))
            .await
            .unwrap();
        let setup = record_count(&store).await;
        let store = Arc::new(store);
        // 50 operators, each sending four random suspensions or reactivations; about one
        // in ten ends with a revocation (final), so the race runs a while before it.
        let plans: Vec<Vec<Request>> = {
            let mut rng = rand::thread_rng();
            (0..50)
                .map(|_| {
                    let mut plan: Vec<Request> = (0..4)
                        .map(|_| {
                            if rng.gen_bool(0.5) {
                                Request::Suspend
                            } else {
                                Request::Reactivate
                            }
                        })
                        .collect();
                    if rng.gen_ratio(1, 10) {
                        plan.push(Request::Revoke);
                    }
                    plan
                })
                .collect()
        };
        let tasks: Vec<_> = plans
            .into_iter()
            .enumerate()
            .map(|(task, plan)| tokio::spawn(race_one(Arc::clone(&store), m.id, plan, task)))
            .collect();
        let mut committed = 0;
        for task in tasks {
            committed += task.await.unwrap();
        }
        assert!(committed > 0, "{engine}");

        let last = store.means(m.id).await.unwrap().unwrap();
        assert_eq!(last.version, 1 + committed, "{engine}: one version per commit");
        let chain = verified_chain(engine, &store).await;
        assert_eq!(
            chain.len(),
            setup + committed as usize,
            "{engine}: one record per commit, no gaps"
        );

        // Replaying the records in chain order walks the state machine to the final state.
        let history = store.audit_by_subject(&means_subject(m.id), 10_000).await.unwrap();
        assert_eq!(history.len(), committed as usize, "{engine}");
        let (mut status, mut version) = (MeansStatus::Active, 1);
        for record in &history {
            let data = &record.event.data;
            assert_eq!(data["from"], status.as_str(), "{engine}: seq {}", record.seq);
            assert_eq!(data["version"], version + 1, "{engine}: seq {}", record.seq);
            assert_ne!(status, MeansStatus::Revoked, "{engine}: a change after revocation");
            status = data["to"].as_str().unwrap().parse().unwrap();
            version += 1;
        }
        assert_eq!((status, version), (last.status, last.version), "{engine}");
        if history.iter().any(|r| r.event.data["to"] != "active") {
            assert_eq!(
                store.refresh(&fp("racing"), 2_000).await.unwrap(),
                None,
                "{engine}: the token died with the first suspension"
            );
        }
        store.close().await;
    }
}
