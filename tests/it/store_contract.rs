//! The store contract: one story per rule, run against every engine from
//! [`databases`] (SQLite always, PostgreSQL when `EIDGATE_TEST_DATABASE_URL` is set).
//! Covers R-AUTH-3 (credentials stored only as given), R-LIFE-4 (suspension kills refresh
//! tokens), R-LOG-1 (one audit record per change, none for a failed one) and R-LOG-2
//! (a gap-free, verifying chain under concurrent writers), plus refresh rotation.

use std::sync::Arc;

use eidgate::audit::{verify_run, AuditEvent, GENESIS_HASH};
use eidgate::domain::client::Client;
use eidgate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use eidgate::domain::loa::Loa;
use eidgate::domain::means::{EidMeans, MeansKind, MeansStatus};
use eidgate::domain::person::{NaturalPerson, OptionalAttributes};
use eidgate::store::{
    AuditRepo, Backend, ClientRepo, Credential, GrantRepo, MeansRepo, PersonRepo, RefreshOutcome, RefreshRecord,
    SqlStore, Store, StoreError,
};
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
