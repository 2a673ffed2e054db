//! Store contract, the lifecycle repository: applications, four-eyes approval, activation
//! codes and their counters, idempotent answers, expiry, renewal (R-ISS-3, R-LIFE-2,
//! R-RENEW-1).

use std::sync::Arc;

use eidgate::domain::ids::{MeansId, PersonId};
use eidgate::domain::means::{EidMeans, MeansStatus};
use eidgate::store::{Acceptance, Credential, LifecycleRepo, MeansRepo, PersonRepo, StoreError, TransitionWrite};

use super::*;

#[tokio::test]
async fn r_iss_3_an_application_is_approved_activated_suspended_and_revoked_with_one_record_each() {
    for (engine, _, store) in stores().await {
        let (holder, registrar, approver) = people(&store, "20").await;
        // The stored status is `applied` whatever the caller's value says.
        let m = means(holder, MeansStatus::Active);
        let subject = means_subject(m.id);
        let mut records = record_count(&store).await;
        store
            .insert_application(&m, registrar, event("means.applied", subject.clone()))
            .await
            .unwrap();
        records += 1;
        let applied = store.means_record(m.id).await.unwrap().unwrap();
        let expected = EidMeans {
            status: MeansStatus::Applied,
            ..m.clone()
        };
        assert_eq!(applied.means, expected, "{engine}");
        assert_eq!(applied.registered_by, Some(registrar), "{engine}");
        assert_eq!(
            (
                applied.approved_by,
                applied.activation_code.as_deref(),
                applied.activation_expires_at
            ),
            (None, None, None),
            "{engine}"
        );
        assert_eq!(
            (
                applied.activation_attempts,
                applied.revocation_secret.as_deref(),
                applied.revocation_failures
            ),
            (0, None, 0),
            "{engine}"
        );
        assert_eq!(store.credential(m.id).await.unwrap(), Credential::None, "{engine}");
        assert_eq!(store.means_record(MeansId::new()).await.unwrap(), None, "{engine}");
        assert_eq!(record_count(&store).await, records, "{engine}");

        // Approval by the second officer, with the activation code and revocation secret.
        let approve = TransitionWrite {
            approved_by: Some(approver),
            activation_code: Some((CODE_PHC.into(), 1_800_000_000)),
            revocation_secret: Some(SECRET_PHC.into()),
            ..TransitionWrite::status(m.id, 1, MeansStatus::Issued)
        };
        let issued = store
            .commit_transition(&approve, event("means.approved", subject.clone()))
            .await
            .unwrap();
        records += 1;
        assert_eq!((issued.status, issued.version), (MeansStatus::Issued, 2), "{engine}");
        let record = store.means_record(m.id).await.unwrap().unwrap();
        assert_eq!(record.means, issued, "{engine}");
        assert_eq!(
            (record.registered_by, record.approved_by),
            (Some(registrar), Some(approver)),
            "{engine}"
        );
        assert_eq!(record.activation_code.as_deref(), Some(CODE_PHC), "{engine}");
        assert_eq!(record.activation_expires_at, Some(1_800_000_000), "{engine}");
        assert_eq!(record.revocation_secret.as_deref(), Some(SECRET_PHC), "{engine}");
        assert!(
            !format!("{record:?}").contains("argon2"),
            "{engine}: PHC strings in Debug"
        );
        assert_eq!(record_count(&store).await, records, "{engine}");

        // One wrong code, then the holder activates and accepts.
        let attempts = store
            .count_activation_failure(m.id, event("means.activation_failed", subject.clone()))
            .await
            .unwrap();
        assert_eq!(attempts, 1, "{engine}");
        records += 1;
        let acceptance = Acceptance {
            person: holder,
            means: m.id,
            terms_version: "terms-2024-01".into(),
            security_advice_version: "advice-3".into(),
            accepted_at: 1_750_000_000,
        };
        let activate = TransitionWrite {
            credential: Some(Credential::PasswordHash(PASSWORD_PHC.into())),
            acceptance: Some(acceptance.clone()),
            validity: Some((1_750_000_000, 1_950_000_000)),
            ..TransitionWrite::status(m.id, 2, MeansStatus::Active)
        };
        let active = store
            .commit_transition(&activate, event("means.activated", subject.clone()))
            .await
            .unwrap();
        records += 1;
        let expected = EidMeans {
            status: MeansStatus::Active,
            version: 3,
            valid_from: 1_750_000_000,
            valid_until: 1_950_000_000,
            ..m.clone()
        };
        assert_eq!(active, expected, "{engine}");
        let record = store.means_record(m.id).await.unwrap().unwrap();
        assert_eq!(record.means, active, "{engine}");
        assert_eq!(
            (record.activation_code, record.activation_expires_at),
            (None, None),
            "{engine}: the code is spent"
        );
        assert_eq!(record.activation_attempts, 1, "{engine}: the count stays as history");
        assert_eq!(record.revocation_secret.as_deref(), Some(SECRET_PHC), "{engine}");
        assert_eq!(
            store.credential(m.id).await.unwrap(),
            Credential::PasswordHash(PASSWORD_PHC.into()),
            "{engine}"
        );
        assert_eq!(store.acceptances(holder).await.unwrap(), vec![acceptance], "{engine}");
        assert_eq!(record_count(&store).await, records, "{engine}");

        // Suspension and revocation.
        let suspended = store
            .commit_transition(
                &TransitionWrite::status(m.id, 3, MeansStatus::Suspended),
                event("means.suspended", subject.clone()),
            )
            .await
            .unwrap();
        assert_eq!(
            (suspended.status, suspended.version),
            (MeansStatus::Suspended, 4),
            "{engine}"
        );
        records += 1;
        assert_eq!(record_count(&store).await, records, "{engine}");
        let revoked = store
            .commit_transition(
                &TransitionWrite::status(m.id, 4, MeansStatus::Revoked),
                event("means.revoked", subject.clone()),
            )
            .await
            .unwrap();
        assert_eq!((revoked.status, revoked.version), (MeansStatus::Revoked, 5), "{engine}");
        records += 1;
        assert_eq!(record_count(&store).await, records, "{engine}");

        // A stale version and an unknown means change nothing and record nothing.
        let stale = store
            .commit_transition(
                &TransitionWrite::status(m.id, 4, MeansStatus::Active),
                event("means.reactivated", subject.clone()),
            )
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)), "{engine}: {stale:?}");
        let unknown = store
            .commit_transition(
                &TransitionWrite::status(MeansId::new(), 1, MeansStatus::Suspended),
                event("means.suspended", "means:unknown"),
            )
            .await;
        assert!(matches!(unknown, Err(StoreError::NotFound)), "{engine}: {unknown:?}");
        assert_eq!(store.means(m.id).await.unwrap(), Some(revoked), "{engine}");
        assert_eq!(record_count(&store).await, records, "{engine}");

        let history: Vec<_> = store
            .audit_by_subject(&subject, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.event_type)
            .collect();
        assert_eq!(
            history,
            [
                "means.applied",
                "means.approved",
                "means.activation_failed",
                "means.activated",
                "means.suspended",
                "means.revoked"
            ],
            "{engine}"
        );
        verified_chain(engine, &store).await;
        store.close().await;
    }
}

#[tokio::test]
async fn r_iss_3_an_application_needs_known_holder_and_officer() {
    for (engine, _, store) in stores().await {
        let (holder, registrar, _) = people(&store, "25").await;
        let records = record_count(&store).await;
        let unknown_officer = means(holder, MeansStatus::Applied);
        let err = store
            .insert_application(&unknown_officer, PersonId::new(), event("means.applied", "m"))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        let unknown_holder = means(PersonId::new(), MeansStatus::Applied);
        let err = store
            .insert_application(&unknown_holder, registrar, event("means.applied", "m"))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(store.means(unknown_officer.id).await.unwrap(), None, "{engine}");
        assert_eq!(record_count(&store).await, records, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_life_2_an_idempotent_answer_commits_with_its_transition_and_a_reused_key_changes_nothing() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "21").await;
        let subject = means_subject(m.id);
        let operator = PersonId::new();
        let first = answer(operator, "key-1", 200, r#"{"state":"suspended"}"#);
        let suspend = TransitionWrite {
            idempotent: Some(first.clone()),
            ..TransitionWrite::status(m.id, 1, MeansStatus::Suspended)
        };
        store
            .commit_transition(&suspend, event("means.suspended", subject.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.idempotent_response(operator, "key-1").await.unwrap(),
            Some(first.clone()),
            "{engine}"
        );
        let records = record_count(&store).await;

        // The same (operator, key) on another transition: refused as a whole.
        let again = TransitionWrite {
            idempotent: Some(answer(operator, "key-1", 200, r#"{"state":"revoked"}"#)),
            ..TransitionWrite::status(m.id, 2, MeansStatus::Revoked)
        };
        let err = store
            .commit_transition(&again, event("means.revoked", subject.clone()))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        let now = store.means(m.id).await.unwrap().unwrap();
        assert_eq!((now.status, now.version), (MeansStatus::Suspended, 2), "{engine}");
        assert_eq!(
            store.idempotent_response(operator, "key-1").await.unwrap(),
            Some(first.clone()),
            "{engine}"
        );
        assert_eq!(record_count(&store).await, records, "{engine}");

        // A transition that fails stores no answer.
        let stale = TransitionWrite {
            idempotent: Some(answer(operator, "key-2", 200, "{}")),
            ..TransitionWrite::status(m.id, 1, MeansStatus::Revoked)
        };
        let err = store
            .commit_transition(&stale, event("means.revoked", subject.clone()))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(
            store.idempotent_response(operator, "key-2").await.unwrap(),
            None,
            "{engine}"
        );

        // Keys belong to their operator.
        let other = answer(PersonId::new(), "key-1", 200, r#"{"state":"revoked"}"#);
        let revoke = TransitionWrite {
            idempotent: Some(other.clone()),
            ..TransitionWrite::status(m.id, 2, MeansStatus::Revoked)
        };
        store
            .commit_transition(&revoke, event("means.revoked", subject.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.idempotent_response(other.operator, "key-1").await.unwrap(),
            Some(other),
            "{engine}"
        );

        // Answers that changed nothing (a 409) are stored on their own, once; not audited.
        let records = record_count(&store).await;
        let refused = answer(operator, "key-3", 409, r#"{"type":"about:blank","status":409}"#);
        store.store_idempotent_response(&refused).await.unwrap();
        assert_eq!(
            store.idempotent_response(operator, "key-3").await.unwrap(),
            Some(refused.clone()),
            "{engine}"
        );
        let err = store.store_idempotent_response(&refused).await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(record_count(&store).await, records, "{engine}");
        assert_eq!(
            store.idempotent_response(operator, "nope").await.unwrap(),
            None,
            "{engine}"
        );
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_iss_3_failure_counters_increment_atomically_under_concurrency() {
    for (engine, _, store) in stores().await {
        let m = holder_with_means(&store, "22").await;
        let store = Arc::new(store);
        let mut records = record_count(&store).await;
        for counter in ["activation", "revocation"] {
            let callers: Vec<_> = (0..20)
                .map(|_| {
                    let store = Arc::clone(&store);
                    let audit = event(&format!("means.{counter}_failed"), means_subject(m.id));
                    tokio::spawn(async move {
                        if counter == "activation" {
                            store.count_activation_failure(m.id, audit).await
                        } else {
                            store.count_revocation_failure(m.id, audit).await
                        }
                    })
                })
                .collect();
            let mut counts = Vec::new();
            for caller in callers {
                counts.push(caller.await.unwrap().unwrap_or_else(|e| panic!("{engine}: {e}")));
            }
            counts.sort_unstable();
            assert_eq!(
                counts,
                (1..=20).collect::<Vec<i64>>(),
                "{engine} {counter}: each count once"
            );
            records += 20;
            assert_eq!(
                verified_chain(engine, &store).await.len(),
                records,
                "{engine} {counter}"
            );
        }
        let record = store.means_record(m.id).await.unwrap().unwrap();
        assert_eq!(
            (record.activation_attempts, record.revocation_failures),
            (20, 20),
            "{engine}"
        );
        assert_eq!(record.means.version, 1, "{engine}: a count is not a transition");

        let err = store
            .count_activation_failure(MeansId::new(), event("means.activation_failed", "x"))
            .await;
        assert!(matches!(err, Err(StoreError::NotFound)), "{engine}: {err:?}");
        let err = store
            .count_revocation_failure(MeansId::new(), event("means.revocation_failed", "x"))
            .await;
        assert!(matches!(err, Err(StoreError::NotFound)), "{engine}: {err:?}");
        assert_eq!(record_count(&store).await, records, "{engine}");

        // A new code and a new secret start new budgets.
        let renew = TransitionWrite {
            activation_code: Some((CODE_PHC.into(), 1_900_000_000)),
            revocation_secret: Some(SECRET_PHC.into()),
            ..TransitionWrite::status(m.id, 1, MeansStatus::Active)
        };
        store
            .commit_transition(&renew, event("means.codes_renewed", means_subject(m.id)))
            .await
            .unwrap();
        let record = store.means_record(m.id).await.unwrap().unwrap();
        assert_eq!(
            (record.activation_attempts, record.revocation_failures),
            (0, 0),
            "{engine}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn r_iss_3_due_for_expiry_finds_expired_activation_codes_and_ended_validity() {
    for (engine, _, store) in stores().await {
        let people = people(&store, "27").await;
        let now = 1_800_000_000;
        let code_expired = issued_means(&store, people, now - 1).await;
        let code_expires_now = issued_means(&store, people, now).await;
        let code_live = issued_means(&store, people, now + 1).await;
        let mut due = vec![code_expired.id, code_expires_now.id];
        for (status, valid_until, is_due) in [
            (MeansStatus::Active, now, true),
            (MeansStatus::Active, now - 100, true),
            (MeansStatus::Active, now + 1, false),
            // A suspended means does not outlive its validity by being suspended.
            (MeansStatus::Suspended, now - 100, true),
            (MeansStatus::Suspended, now + 1, false),
            (MeansStatus::Revoked, now - 100, false),
            (MeansStatus::Expired, now - 100, false),
        ] {
            let m = EidMeans {
                valid_until,
                ..means(people.0, status)
            };
            store
                .insert_means(&m, &Credential::None, event("means.issued", "m"))
                .await
                .unwrap();
            if is_due {
                due.push(m.id);
            }
        }
        let applied = means(people.0, MeansStatus::Applied);
        store
            .insert_application(&applied, people.1, event("means.applied", "m"))
            .await
            .unwrap();

        let mut found: Vec<_> = store
            .due_for_expiry(now, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        found.sort_by_key(|id| id.to_string());
        due.sort_by_key(|id| id.to_string());
        assert_eq!(found, due, "{engine}");
        assert!(!found.contains(&code_live.id), "{engine}");
        let page = store.due_for_expiry(now, 2).await.unwrap();
        assert_eq!(page.len(), 2, "{engine}");
        assert!(page.iter().all(|m| due.contains(&m.id)), "{engine}");
        assert!(store.due_for_expiry(now, 0).await.unwrap().is_empty(), "{engine}");
        assert!(
            store.due_for_expiry(now - 101, 100).await.unwrap().is_empty(),
            "{engine}: nothing due earlier"
        );
        store.close().await;
    }
}

/// R-RENEW-1: the renewed means is retired in the transaction that activates its
/// successor, with its own audit record; a stale version of the old means rolls back
/// both changes and both records.
#[tokio::test]
async fn r_renew_1_activation_of_a_renewal_retires_the_old_means_in_the_same_transaction() {
    for (engine, _, store) in stores().await {
        let old = holder_with_means(&store, "31").await;
        let renewal = means(old.holder, MeansStatus::Applied);
        let registrar = person("31R");
        store
            .insert_person(&registrar, event("person.created", "person"))
            .await
            .unwrap();
        store
            .insert_renewal(&renewal, registrar.id, old.id, event("means.applied", "m"))
            .await
            .unwrap();
        let rec = store.means_record(renewal.id).await.unwrap().unwrap();
        assert_eq!(rec.renews, Some(old.id), "{engine}");
        let retire = |version| eidgate::store::Retire {
            id: old.id,
            expected_version: version,
            to: MeansStatus::Revoked,
            audit: event("means.revoked", means_subject(old.id)),
        };
        let records = record_count(&store).await;
        let stale = TransitionWrite {
            retire: Some(retire(7)),
            ..TransitionWrite::status(renewal.id, 1, MeansStatus::Issued)
        };
        let err = store
            .commit_transition(&stale, event("means.approved", means_subject(renewal.id)))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(record_count(&store).await, records, "{engine}");
        assert_eq!(
            store.means(renewal.id).await.unwrap().unwrap().status,
            MeansStatus::Applied,
            "{engine}"
        );
        let write = TransitionWrite {
            retire: Some(retire(old.version)),
            ..TransitionWrite::status(renewal.id, 1, MeansStatus::Issued)
        };
        store
            .commit_transition(&write, event("means.approved", means_subject(renewal.id)))
            .await
            .unwrap();
        let retired = store.means(old.id).await.unwrap().unwrap();
        assert_eq!((retired.status, retired.version), (MeansStatus::Revoked, 2), "{engine}");
        let chain = verified_chain(engine, &store).await;
        assert_eq!(chain.len(), records + 2, "{engine}");
        assert_eq!(chain[records].event.subject, means_subject(old.id), "{engine}");
        store.close().await;
    }
}
