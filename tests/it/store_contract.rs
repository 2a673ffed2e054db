//! The store contract: one story per rule, run against every engine from
//! [`databases`] (SQLite always, PostgreSQL when `EIDGATE_TEST_DATABASE_URL` is set).
//! Covers R-AUTH-3 (credentials stored only as given), R-LIFE-4 (suspension kills refresh
//! tokens), R-LOG-1 (one audit record per change, none for a failed one) and R-LOG-2
//! (a gap-free, verifying chain under concurrent writers), plus refresh rotation.
//! The lifecycle repository: R-ISS-2/3 (applications, four-eyes approval, activation
//! codes and their attempt counter, expiry), R-LIFE-1/2/4 (transitions with optimistic
//! versions, idempotent answers, 50 racing transitions on one means), R-REG-1
//! (acceptances), R-REG-3/4 (proofing facts), R-SEC-3 (operator roles).

use std::sync::Arc;

use eidgate::audit::{verify_run, AuditEvent, GENESIS_HASH};
use eidgate::domain::client::Client;
use eidgate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use eidgate::domain::loa::Loa;
use eidgate::domain::means::proof::{IdentityReverified, Verification, VerificationMethod};
use eidgate::domain::means::state::{self, Command};
use eidgate::domain::means::{EidMeans, MeansKind, MeansStatus};
use eidgate::domain::operator::{Operator, Role};
use eidgate::domain::person::{NaturalPerson, OptionalAttributes, Proofing, ProofingRecord};
use eidgate::store::cached::CachedStore;
use eidgate::store::{
    Acceptance, AuditRepo, AuthFactor, Backend, ClientRepo, Credential, GrantRepo, IdempotentResponse, LifecycleRepo,
    MeansRepo, PersonRepo, RefreshOutcome, RefreshRecord, SqlStore, Store, StoreError, TransitionWrite,
};
use rand::Rng;
use serde_json::json;
use sqlx::{AnyConnection, Connection, Row};

use crate::support::db::databases;

/// A freshly migrated store per engine, with its URL for raw checks.
async fn stores() -> Vec<(&'static str, String, SqlStore)> {
    let mut all = Vec::new();
    for (engine, url) in databases().await {
        let store = SqlStore::connect(&url, 8)
            .await
            .unwrap_or_else(|e| panic!("{engine}: connect: {e}"));
        all.push((engine, url, store));
    }
    all
}

fn event(event_type: &str, subject: impl Into<String>) -> AuditEvent {
    AuditEvent::new(event_type, "operator:test", subject, json!({"reason": "test", "n": 1}))
}

fn person(code: &str) -> NaturalPerson {
    NaturalPerson {
        id: PersonId::new(),
        identifier: PersonIdentifier::new("LT", code).unwrap(),
        given_name: "Jonas".into(),
        family_name: "Žemaitis".into(),
        birthdate: "1980-01-08".into(),
        proofing_loa: Loa::High,
        attributes: OptionalAttributes {
            gender: Some("male".into()),
            address: Some(json!({"locality": "Vilnius", "country": "LT"})),
            ..OptionalAttributes::default()
        },
    }
}

fn means(holder: PersonId, status: MeansStatus) -> EidMeans {
    EidMeans {
        id: MeansId::new(),
        holder,
        kind: MeansKind::Totp,
        loa: Loa::Substantial,
        status,
        valid_from: 1_700_000_000,
        valid_until: 1_900_000_000,
        version: 1,
    }
}

fn client(id: &str) -> Client {
    serde_json::from_value(json!({
        "client_id": id,
        "client_name": "Test RP",
        "redirect_uris": ["https://rp.example/cb"],
        "token_endpoint_auth_method": "client_secret_basic",
        "secret_sha256": "00ff",
        "allowed_claims": ["given_name", "family_name"],
        "subject_type": "pairwise",
        "minimum_acr": "substantial"
    }))
    .unwrap()
}

fn client_id(id: &str) -> ClientId {
    id.parse().unwrap()
}

fn refresh(token: &str, grant: GrantId, client: &str, m: &EidMeans, expires_at: i64) -> RefreshRecord {
    RefreshRecord {
        token_sha256: eidgate::domain::secret::fingerprint_hex(token),
        grant_id: grant,
        client_id: client_id(client),
        person_id: m.holder,
        means_id: m.id,
        grant_data: json!({"scope": "openid profile", "acr": "substantial", "amr": ["pwd", "otp", "mfa"]}),
        created_at: 1_000,
        expires_at,
    }
}

fn fp(token: &str) -> String {
    eidgate::domain::secret::fingerprint_hex(token)
}

/// Every record so far, after checking the whole chain verifies from genesis.
async fn verified_chain(engine: &str, store: &SqlStore) -> Vec<eidgate::audit::AuditRecord> {
    let records = store.audit_records(1, 1_000_000).await.unwrap();
    if let Err((seq, why)) = verify_run(GENESIS_HASH, 1, &records) {
        panic!("{engine}: chain broken at seq {seq}: {why}");
    }
    records
}

/// A holder with one active means, ready for refresh tokens.
async fn holder_with_means(store: &SqlStore, code: &str) -> EidMeans {
    let p = person(code);
    store
        .insert_person(&p, event("person.created", "person"))
        .await
        .unwrap();
    let m = means(p.id, MeansStatus::Active);
    store
        .insert_means(&m, &Credential::None, event("means.issued", "means"))
        .await
        .unwrap();
    m
}

#[tokio::test]
async fn r_reg_2_persons_round_trip_and_identifier_is_unique() {
    for (engine, _, store) in stores().await {
        let p = person("38001085718");
        store.insert_person(&p, event("person.created", "p")).await.unwrap();
        assert_eq!(store.person(p.id).await.unwrap().as_ref(), Some(&p), "{engine}");
        assert_eq!(
            store.person_by_identifier(&p.identifier).await.unwrap().as_ref(),
            Some(&p),
            "{engine}"
        );
        let unknown = PersonIdentifier::new("LV", "38001085718").unwrap();
        assert_eq!(store.person_by_identifier(&unknown).await.unwrap(), None, "{engine}");
        assert_eq!(store.person(PersonId::new()).await.unwrap(), None, "{engine}");

        let mut twin = person("38001085718");
        twin.given_name = "Other".into();
        let err = store.insert_person(&twin, event("person.created", "twin")).await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(store.person(twin.id).await.unwrap(), None, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_data_4_clients_upsert_and_read_back_their_whole_registration() {
    for (engine, _, store) in stores().await {
        let mut c = client("rp-1");
        store
            .upsert_client(&c, event("client.created", "client:rp-1"))
            .await
            .unwrap();
        let read = store.client(&c.client_id).await.unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&c).unwrap(),
            "{engine}"
        );

        c.allowed_claims.push("birthdate".into());
        c.redirect_uris.push("https://rp.example/cb2".into());
        store
            .upsert_client(&c, event("client.updated", "client:rp-1"))
            .await
            .unwrap();
        let read = store.client(&c.client_id).await.unwrap().unwrap();
        assert_eq!(read.allowed_claims, c.allowed_claims, "{engine}");
        assert_eq!(read.redirect_uris, c.redirect_uris, "{engine}");
        assert!(store.client(&client_id("nobody")).await.unwrap().is_none(), "{engine}");
        store.close().await;
    }
}

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
async fn ping_reports_the_engine_and_reconnecting_keeps_the_data() {
    for (engine, url, store) in stores().await {
        store.ping().await.unwrap();
        let expected = if engine == "postgres" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        assert_eq!(store.backend(), expected);
        store.append(event("system.started", "s")).await.unwrap();
        store.close().await;
        // Migrations are idempotent and the chain survives a restart.
        let again = SqlStore::connect(&url, 2).await.unwrap();
        assert_eq!(
            again.append(event("system.started", "s2")).await.unwrap(),
            2,
            "{engine}"
        );
        assert_eq!(verified_chain(engine, &again).await.len(), 2, "{engine}");
        again.close().await;
    }
}

#[tokio::test]
async fn connect_errors_are_unavailable_and_hide_the_password() {
    // A server that hangs up at once (a refused connection would be retried until the
    // acquire timeout, as at a database restart).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let err = SqlStore::connect(&format!("postgres://eidgate:s3cr3t-pw@127.0.0.1:{port}/none"), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cr3t-pw"));
    let err = SqlStore::connect("mysql://root:s3cr3t-pw@localhost/x", 1)
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cr3t-pw"));
}

#[tokio::test]
async fn r_log_1_migration_2_upgrades_a_version_1_database_and_keeps_its_rows() {
    sqlx::any::install_default_drivers();
    for (engine, url) in databases().await {
        // Only 0001 applied, as a database of the previous release.
        let first = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(engine)
            .join("0001_init.sql");
        std::fs::copy(&source, first.path().join("0001_init.sql")).unwrap();
        let (holder, old) = {
            let options: sqlx::any::AnyConnectOptions =
                format!("{url}{}", if engine == "sqlite" { "?mode=rwc" } else { "" })
                    .parse()
                    .unwrap();
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .unwrap();
            sqlx::migrate::Migrator::new(first.path())
                .await
                .unwrap()
                .run(&pool)
                .await
                .unwrap();
            let holder = PersonId::new();
            sqlx::query(
                "INSERT INTO persons (id, identifier_country, identifier_code, given_name, family_name, birthdate, \
                 proofing_loa, attributes, created_at) VALUES ($1, 'LT', '99', 'A', 'B', '1980-01-01', 'high', '{}', 1)",
            )
            .bind(holder.to_string())
            .execute(&pool)
            .await
            .unwrap();
            let old = means(holder, MeansStatus::Active);
            sqlx::query(
                "INSERT INTO means (id, holder_id, kind, loa, status, valid_from, valid_until, version, credential, \
                 created_at, updated_at) VALUES ($1, $2, 'totp', 'substantial', 'active', $3, $4, 1, NULL, 1, 1)",
            )
            .bind(old.id.to_string())
            .bind(holder.to_string())
            .bind(old.valid_from)
            .bind(old.valid_until)
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
            (holder, old)
        };

        let store = SqlStore::connect(&url, 2)
            .await
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        let record = store.means_record(old.id).await.unwrap().unwrap();
        assert_eq!(record.means, old, "{engine}");
        assert_eq!(
            (
                record.registered_by,
                record.approved_by,
                record.activation_code,
                record.revocation_secret
            ),
            (None, None, None, None),
            "{engine}: imported means have no lifecycle data"
        );
        assert_eq!(
            (record.activation_attempts, record.revocation_failures),
            (0, 0),
            "{engine}"
        );
        assert!(store.acceptances(holder).await.unwrap().is_empty(), "{engine}");
        store.close().await;
    }
}

#[test]
fn migrations_folders_have_identical_file_names() {
    let names = |engine: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(engine);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}

// ---------------------------------------------------------------------------------------
// The lifecycle repository

const CODE_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$Y29kZXNhbHQ$Y29kZWhhc2hjb2RlaGFzaGNvZGVoYXNoY29kZQ";
const SECRET_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHNlY3JldGhhc2hzZWNyZXQ";
const PASSWORD_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$cHdzYWx0cHdz$cGFzc3dvcmRoYXNocGFzc3dvcmRoYXNocGFz";

fn means_subject(id: MeansId) -> String {
    format!("means:{id}")
}

async fn record_count(store: &SqlStore) -> usize {
    store.audit_records(1, 1_000_000).await.unwrap().len()
}

/// A holder and two officers (registrar, approver), all persons in the registry.
async fn people(store: &SqlStore, code: &str) -> (PersonId, PersonId, PersonId) {
    let mut ids = Vec::new();
    for suffix in ["H", "R", "A"] {
        let p = person(&format!("{code}{suffix}"));
        store
            .insert_person(&p, event("person.created", "person"))
            .await
            .unwrap();
        ids.push(p.id);
    }
    (ids[0], ids[1], ids[2])
}

/// An application registered by `registrar`, approved by `approver` with an activation
/// code that expires at `code_expires_at`: status `issued`, version 2.
async fn issued_means(
    store: &SqlStore,
    (holder, registrar, approver): (PersonId, PersonId, PersonId),
    code_expires_at: i64,
) -> EidMeans {
    let m = means(holder, MeansStatus::Applied);
    store
        .insert_application(&m, registrar, event("means.applied", means_subject(m.id)))
        .await
        .unwrap();
    let approve = TransitionWrite {
        approved_by: Some(approver),
        activation_code: Some((CODE_PHC.into(), code_expires_at)),
        revocation_secret: Some(SECRET_PHC.into()),
        ..TransitionWrite::status(m.id, 1, MeansStatus::Issued)
    };
    store
        .commit_transition(&approve, event("means.approved", means_subject(m.id)))
        .await
        .unwrap()
}

fn answer(operator: PersonId, key: &str, status: u16, body: &str) -> IdempotentResponse {
    IdempotentResponse {
        operator,
        key: key.into(),
        request_sha256: eidgate::domain::secret::fingerprint_hex(&format!("POST /x {body}")),
        status,
        body: body.into(),
        created_at: 1_750_000_000,
    }
}

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
async fn r_sec_3_operator_roles_round_trip_and_empty_roles_remove_the_operator() {
    for (engine, url, store) in stores().await {
        let p = person("23");
        store.insert_person(&p, event("person.created", "p")).await.unwrap();
        assert_eq!(store.operator(p.id).await.unwrap(), None, "{engine}");
        let records = record_count(&store).await;

        let granted = Operator {
            person: p.id,
            roles: vec![Role::Registration, Role::Helpdesk, Role::Helpdesk],
        };
        store
            .set_operator(&granted, event("operator.roles_set", "operator"))
            .await
            .unwrap();
        let read = store.operator(p.id).await.unwrap().unwrap();
        assert_eq!(
            read.roles,
            [Role::Helpdesk, Role::Registration],
            "{engine}: sorted, no duplicates"
        );
        let mut raw = AnyConnection::connect(&url).await.unwrap();
        let stored: String = sqlx::query("SELECT roles FROM operators WHERE person_id = $1")
            .bind(p.id.to_string())
            .fetch_one(&mut raw)
            .await
            .unwrap()
            .try_get("roles")
            .unwrap();
        assert_eq!(stored, "helpdesk,registration", "{engine}");
        raw.close().await.unwrap();

        let changed = Operator {
            person: p.id,
            roles: vec![Role::Issuance],
        };
        store
            .set_operator(&changed, event("operator.roles_set", "operator"))
            .await
            .unwrap();
        assert_eq!(store.operator(p.id).await.unwrap(), Some(changed), "{engine}");

        let removed = Operator {
            person: p.id,
            roles: Vec::new(),
        };
        store
            .set_operator(&removed, event("operator.removed", "operator"))
            .await
            .unwrap();
        assert_eq!(store.operator(p.id).await.unwrap(), None, "{engine}");
        assert_eq!(record_count(&store).await, records + 3, "{engine}");

        let again = store
            .set_operator(&removed, event("operator.removed", "operator"))
            .await;
        assert!(matches!(again, Err(StoreError::NotFound)), "{engine}: {again:?}");
        let stranger = Operator {
            person: PersonId::new(),
            roles: vec![Role::Admin],
        };
        let err = store
            .set_operator(&stranger, event("operator.roles_set", "operator"))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(record_count(&store).await, records + 3, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_reg_3_r_reg_4_proofing_records_round_trip_as_facts_oldest_first() {
    for (engine, _, store) in stores().await {
        let (holder, officer, _) = people(&store, "24").await;
        let document = ProofingRecord {
            proofing: Proofing::Document {
                document_type: "id_card".into(),
                document_number: "LT1234567".into(),
                issuing_state: "LT".into(),
                valid_until: "2031-05-01".into(),
                checked_how: "in_person_visual_and_chip".into(),
            },
            loa: Loa::High,
            checked_by: officer,
            checked_at: 1_700_000_000,
        };
        let earlier = ProofingRecord {
            proofing: Proofing::EarlierMeans {
                means: MeansId::new(),
                loa: Loa::High,
            },
            loa: Loa::Substantial,
            checked_by: officer,
            checked_at: 1_700_000_000,
        };
        let records = record_count(&store).await;
        for (record, n) in [(&document, 1), (&earlier, 2)] {
            store
                .insert_proofing(holder, record, event("person.proofed", format!("proofing:{n}")))
                .await
                .unwrap();
        }
        assert_eq!(
            store.proofing_records(holder).await.unwrap(),
            vec![document.clone(), earlier],
            "{engine}"
        );
        assert!(store.proofing_records(officer).await.unwrap().is_empty(), "{engine}");
        let err = store
            .insert_proofing(PersonId::new(), &document, event("person.proofed", "x"))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(record_count(&store).await, records + 2, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn r_reg_1_an_acceptance_is_recorded_with_its_activation_or_not_at_all() {
    for (engine, _, store) in stores().await {
        let people = people(&store, "26").await;
        let holder = people.0;
        let first = issued_means(&store, people, 1_800_000_000).await;
        let second = issued_means(&store, people, 1_800_000_000).await;
        let records = record_count(&store).await;
        let accept = |means: MeansId, at: i64| Acceptance {
            person: holder,
            means,
            terms_version: "terms-7".into(),
            security_advice_version: "advice-2".into(),
            accepted_at: at,
        };
        let activate = |means: &EidMeans, acceptance: Acceptance| TransitionWrite {
            credential: Some(Credential::PasswordHash(PASSWORD_PHC.into())),
            acceptance: Some(acceptance),
            ..TransitionWrite::status(means.id, means.version, MeansStatus::Active)
        };

        // An acceptance that cannot be stored (unknown means) takes the activation with it.
        let broken = activate(&first, accept(MeansId::new(), 1_750_000_000));
        let err = store
            .commit_transition(&broken, event("means.activated", means_subject(first.id)))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{engine}: {err:?}");
        assert_eq!(store.means(first.id).await.unwrap(), Some(first.clone()), "{engine}");
        assert_eq!(store.credential(first.id).await.unwrap(), Credential::None, "{engine}");
        let record = store.means_record(first.id).await.unwrap().unwrap();
        assert_eq!(record.activation_code.as_deref(), Some(CODE_PHC), "{engine}");
        assert!(store.acceptances(holder).await.unwrap().is_empty(), "{engine}");
        assert_eq!(record_count(&store).await, records, "{engine}");

        let a = accept(first.id, 1_750_000_000);
        let b = accept(second.id, 1_750_000_100);
        for (means, acceptance) in [(&first, &a), (&second, &b)] {
            store
                .commit_transition(
                    &activate(means, acceptance.clone()),
                    event("means.activated", means_subject(means.id)),
                )
                .await
                .unwrap();
        }
        assert_eq!(store.acceptances(holder).await.unwrap(), vec![a, b], "{engine}");
        assert!(store.acceptances(people.1).await.unwrap().is_empty(), "{engine}");
        assert_eq!(record_count(&store).await, records + 2, "{engine}");
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
