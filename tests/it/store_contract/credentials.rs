//! Store contract, means and their credentials: versions, the PHC hash stored as given,
//! TOTP last step and failure counters (R-AUTH-1, R-AUTH-3, R-AUTH-4, R-AUTH-5).

use eidgate::domain::ids::{MeansId, PersonId};
use eidgate::domain::loa::Loa;
use eidgate::domain::means::{EidMeans, MeansKind, MeansStatus};
use eidgate::store::{AuditRepo, AuthFactor, Credential, MeansRepo, PersonRepo, StoreError};
use sqlx::{AnyConnection, Connection, Row};

use super::*;

#[tokio::test]
async fn r_auth_1_means_round_trip_and_a_stale_version_conflicts() {
    for (engine, _, store) in stores().await {
        let p = person("1");
        store.insert_person(&p, event("person.created", "p")).await.unwrap();
        let first = means(p.id, MeansStatus::Issued);
        let second = EidMeans {
            kind: MeansKind::Password,
            loa: Loa::Low,
            valid_from: first.valid_from + 10,
            ..means(p.id, MeansStatus::Active)
        };
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        store
            .insert_means(&first, &Credential::None, event("means.issued", "m1"))
            .await
            .unwrap();
        store
            .insert_means(
                &second,
                &Credential::PasswordHash(phc.into()),
                event("means.issued", "m2"),
            )
            .await
            .unwrap();

        assert_eq!(store.means(first.id).await.unwrap().as_ref(), Some(&first), "{engine}");
        assert_eq!(store.means(MeansId::new()).await.unwrap(), None, "{engine}");
        assert_eq!(
            store.means_of_holder(p.id).await.unwrap(),
            vec![second.clone(), first.clone()],
            "{engine}"
        );
        assert_eq!(store.credential(first.id).await.unwrap(), Credential::None, "{engine}");
        assert_eq!(
            store.credential(second.id).await.unwrap(),
            Credential::PasswordHash(phc.into()),
            "{engine}"
        );
        assert!(matches!(
            store.credential(MeansId::new()).await,
            Err(StoreError::NotFound)
        ));

        let active = store
            .set_status(first.id, 1, MeansStatus::Active, event("means.activated", "m1"))
            .await
            .unwrap();
        assert_eq!((active.status, active.version), (MeansStatus::Active, 2), "{engine}");
        assert_eq!(store.means(first.id).await.unwrap(), Some(active), "{engine}");

        let records = store.audit_records(1, 100).await.unwrap().len();
        let stale = store
            .set_status(first.id, 1, MeansStatus::Suspended, event("means.suspended", "m1"))
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)), "{engine}: {stale:?}");
        let missing = store
            .set_status(MeansId::new(), 1, MeansStatus::Suspended, event("means.suspended", "x"))
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{engine}: {missing:?}");
        assert_eq!(store.audit_records(1, 100).await.unwrap().len(), records, "{engine}");

        let orphan = means(PersonId::new(), MeansStatus::Issued);
        let err = store
            .insert_means(&orphan, &Credential::None, event("means.issued", "orphan"))
            .await;
        assert!(
            matches!(err, Err(StoreError::Conflict)),
            "{engine}: unknown holder: {err:?}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn r_auth_3_the_credential_column_holds_only_the_phc_hash_given() {
    for (engine, url, store) in stores().await {
        let p = person("2");
        store.insert_person(&p, event("person.created", "p")).await.unwrap();
        let m = EidMeans {
            kind: MeansKind::Password,
            ..means(p.id, MeansStatus::Active)
        };
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$YWJjZGVmZ2g$0123456789abcdefghijklmnopqrstuv";
        store
            .insert_means(&m, &Credential::PasswordHash(phc.into()), event("means.issued", "m"))
            .await
            .unwrap();

        let mut raw = AnyConnection::connect(&url).await.unwrap();
        let stored: Option<String> = sqlx::query("SELECT credential FROM means WHERE id = $1")
            .bind(m.id.to_string())
            .fetch_one(&mut raw)
            .await
            .unwrap()
            .try_get("credential")
            .unwrap();
        assert_eq!(stored.as_deref(), Some(phc), "{engine}");
        raw.close().await.unwrap();
        // Redacted in logs, too.
        assert!(!format!("{:?}", store.credential(m.id).await.unwrap()).contains("argon2"));
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_5_r_auth_4_totp_credential_last_step_and_failure_counters() {
    for (engine, _, store) in stores().await {
        let p = person("38001085718");
        store.insert_person(&p, event("person.registered", "p")).await.unwrap();
        let m = means(p.id, MeansStatus::Active);
        let credential = Credential::PasswordTotp {
            password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
            sealed_seed: vec![1, 0, 0, 0, 1, 0xff, 0x00, 0x3a, 0x2f],
        };
        store
            .insert_means(&m, &credential, event("means.imported", "m"))
            .await
            .unwrap();
        assert_eq!(store.credential(m.id).await.unwrap(), credential, "{engine}");
        assert_eq!(format!("{credential:?}"), "PasswordTotp([redacted])");

        // A step is used once; only a later step moves the mark.
        assert!(store.use_totp_step(m.id, 100).await.unwrap(), "{engine}");
        assert!(!store.use_totp_step(m.id, 100).await.unwrap(), "{engine}");
        assert!(!store.use_totp_step(m.id, 99).await.unwrap(), "{engine}");
        assert!(store.use_totp_step(m.id, 101).await.unwrap(), "{engine}");
        assert!(!store.use_totp_step(MeansId::new(), 1).await.unwrap(), "{engine}");

        // Failure counters per factor, durable, cleared on success and on (re)activation.
        for n in 1..=3 {
            assert_eq!(
                store.count_auth_failure(m.id, AuthFactor::Otp).await.unwrap(),
                n,
                "{engine}"
            );
        }
        assert_eq!(
            store.count_auth_failure(m.id, AuthFactor::Password).await.unwrap(),
            1,
            "{engine}"
        );
        store.clear_auth_failures(m.id, AuthFactor::Password).await.unwrap();
        assert_eq!(
            store.count_auth_failure(m.id, AuthFactor::Password).await.unwrap(),
            1,
            "{engine}"
        );
        assert_eq!(
            store.count_auth_failure(m.id, AuthFactor::Otp).await.unwrap(),
            4,
            "{engine}"
        );
        let suspended = store
            .set_status(m.id, 1, MeansStatus::Suspended, event("means.locked", "m"))
            .await
            .unwrap();
        store
            .set_status(
                m.id,
                suspended.version,
                MeansStatus::Active,
                event("means.reactivated", "m"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.count_auth_failure(m.id, AuthFactor::Otp).await.unwrap(),
            1,
            "{engine}"
        );
        assert_eq!(
            store.count_auth_failure(m.id, AuthFactor::Password).await.unwrap(),
            1,
            "{engine}"
        );
        assert!(matches!(
            store.count_auth_failure(MeansId::new(), AuthFactor::Otp).await,
            Err(StoreError::NotFound)
        ));
    }
}
