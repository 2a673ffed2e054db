//! Store contract, the audit chain: one record per change, none for a failed one, a
//! gap-free verifying chain under concurrent writers, append-only (R-LOG-1, R-LOG-2).

use std::sync::Arc;

use eidgate::domain::ids::PersonId;
use eidgate::domain::means::MeansStatus;
use eidgate::store::{AuditRepo, ClientRepo, Credential, LifecycleRepo, MeansRepo, PersonRepo, StoreError};
use sqlx::{AnyConnection, Connection};

use super::*;

#[tokio::test]
async fn r_log_1_every_audited_write_appends_exactly_one_record() {
    for (engine, _, store) in stores().await {
        assert!(store.audit_records(1, 10).await.unwrap().is_empty(), "{engine}");
        let p = person("8");
        store.insert_person(&p, event("person.created", "p:1")).await.unwrap();
        let m = means(p.id, MeansStatus::Issued);
        store
            .insert_means(&m, &Credential::None, event("means.issued", "m:2"))
            .await
            .unwrap();
        store
            .set_status(m.id, 1, MeansStatus::Active, event("means.activated", "m:3"))
            .await
            .unwrap();
        store
            .upsert_client(&client("rp"), event("client.created", "c:4"))
            .await
            .unwrap();
        assert_eq!(
            store.append(event("system.started", "s:5")).await.unwrap(),
            5,
            "{engine}"
        );

        let records = verified_chain(engine, &store).await;
        let subjects: Vec<_> = records.iter().map(|r| (r.seq, r.event.subject.as_str())).collect();
        assert_eq!(
            subjects,
            [(1, "p:1"), (2, "m:2"), (3, "m:3"), (4, "c:4"), (5, "s:5")],
            "{engine}"
        );
        assert_eq!(
            records[0].event,
            event("person.created", "p:1"),
            "{engine}: stored as given"
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            records.iter().all(|r| (now - 60..=now).contains(&r.time)),
            "{engine}: UTC seconds"
        );
        assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "{engine}");
        // Paging: `[from, from + limit)`.
        let page: Vec<_> = store.audit_records(2, 2).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(page, [2, 3], "{engine}");
        assert!(store.audit_records(1, 0).await.unwrap().is_empty(), "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_log_1_a_failed_change_appends_no_record() {
    for (engine, _, store) in stores().await {
        let p = person("9");
        store.insert_person(&p, event("person.created", "p")).await.unwrap();
        let err = store.insert_person(&person("9"), event("person.created", "dup")).await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        let err = store
            .insert_means(
                &means(PersonId::new(), MeansStatus::Issued),
                &Credential::None,
                event("x", "fk"),
            )
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        // The chain continues right after the last successful write.
        assert_eq!(store.append(event("system.started", "s")).await.unwrap(), 2, "{engine}");
        let subjects: Vec<_> = verified_chain(engine, &store)
            .await
            .into_iter()
            .map(|r| r.event.subject)
            .collect();
        assert_eq!(subjects, ["p", "s"], "{engine}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_log_2_concurrent_audited_writes_keep_a_gap_free_verifying_chain() {
    for (engine, _, store) in stores().await {
        let store = Arc::new(store);
        let writers: Vec<_> = (0..50)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        store
                            .append(event("test.concurrent", format!("n:{i}")))
                            .await
                            .map(|_| ())
                    } else {
                        store
                            .insert_person(&person(&format!("C{i}")), event("person.created", format!("n:{i}")))
                            .await
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap_or_else(|e| panic!("{engine}: {e}"));
        }
        let records = verified_chain(engine, &store).await;
        assert_eq!(records.len(), 50, "{engine}");
        assert_eq!(records.last().map(|r| r.seq), Some(50), "{engine}");
        let mut subjects: Vec<_> = records.iter().map(|r| r.event.subject.clone()).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), 50, "{engine}: every write recorded once");
        store.close().await;
    }
}

#[tokio::test]
async fn r_log_2_the_audit_log_refuses_updates_and_deletes() {
    for (engine, url, store) in stores().await {
        store.append(event("system.started", "s")).await.unwrap();
        let mut raw = AnyConnection::connect(&url).await.unwrap();
        let update = sqlx::query("UPDATE audit_log SET subject = 'x' WHERE seq = 1")
            .execute(&mut raw)
            .await;
        assert!(update.is_err(), "{engine}: update allowed");
        let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 1")
            .execute(&mut raw)
            .await;
        assert!(delete.is_err(), "{engine}: delete allowed");
        raw.close().await.unwrap();
        assert_eq!(verified_chain(engine, &store).await.len(), 1, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_log_1_audit_by_subject_lists_one_subjects_records_in_chain_order() {
    for (engine, _, store) in stores().await {
        for subject in ["a", "b", "a", "c", "a", "b"] {
            store.append(event("test.event", subject)).await.unwrap();
        }
        let all = verified_chain(engine, &store).await;
        let of_a = store.audit_by_subject("a", 10).await.unwrap();
        assert_eq!(of_a.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3, 5], "{engine}");
        assert_eq!(of_a[1], all[2], "{engine}: records as stored, hashes included");
        let first_two: Vec<_> = store
            .audit_by_subject("a", 2)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(first_two, [1, 3], "{engine}");
        assert!(store.audit_by_subject("none", 10).await.unwrap().is_empty(), "{engine}");
        assert!(store.audit_by_subject("a", 0).await.unwrap().is_empty(), "{engine}");
        store.close().await;
    }
}
