//! Store contract, the registry: persons, clients, operator roles, proofing facts,
//! acceptances (R-REG-1/2/3/4, R-DATA-4, R-SEC-3).

use eidgate::domain::ids::{MeansId, PersonId, PersonIdentifier};
use eidgate::domain::loa::Loa;
use eidgate::domain::means::{EidMeans, MeansStatus};
use eidgate::domain::operator::{Operator, Role};
use eidgate::domain::person::{Proofing, ProofingRecord};
use eidgate::store::{
    Acceptance, ClientRepo, Credential, LifecycleRepo, MeansRepo, PersonRepo, StoreError, TransitionWrite,
};
use sqlx::{AnyConnection, Connection, Row};

use super::*;

#[tokio::test]
async fn r_reg_2_an_updated_person_keeps_id_and_identifier_and_is_audited() {
    for (engine, _, store) in stores().await {
        let p = person("38001085720");
        store.insert_person(&p, event("person.created", "p")).await.unwrap();
        let before = record_count(&store).await;
        let mut changed = p.clone();
        changed.given_name = "Jonas Petras".into();
        changed.proofing_loa = Loa::Substantial;
        changed.attributes.gender = None;
        store
            .update_person(&changed, event("person.imported", "p"))
            .await
            .unwrap();
        assert_eq!(store.person(p.id).await.unwrap().as_ref(), Some(&changed), "{engine}");
        assert_eq!(
            store.person_by_identifier(&p.identifier).await.unwrap().as_ref(),
            Some(&changed),
            "{engine}"
        );
        assert_eq!(record_count(&store).await, before + 1, "{engine}");
        store.close().await;
    }
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
