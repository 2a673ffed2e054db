//! The store contract: one story per rule, run against every engine from
//! [`databases`] (SQLite always, PostgreSQL when `EIDGATE_TEST_DATABASE_URL` is set).
//! Covers R-AUTH-3 (credentials stored only as given), R-LIFE-4 (suspension kills refresh
//! tokens), R-LOG-1 (one audit record per change, none for a failed one) and R-LOG-2
//! (a gap-free, verifying chain under concurrent writers), plus refresh rotation.
//! The lifecycle repository: R-ISS-2/3 (applications, four-eyes approval, activation
//! codes and their attempt counter, expiry), R-LIFE-1/2/4 (transitions with optimistic
//! versions, idempotent answers, 50 racing transitions on one means), R-REG-1
//! (acceptances), R-REG-3/4 (proofing facts), R-SEC-3 (operator roles).

mod audit;
mod credentials;
mod engine;
mod lifecycle;
mod refresh;
mod registry;
mod transitions;

use eidgate::audit::{verify_run, AuditEvent, GENESIS_HASH};
use eidgate::domain::client::Client;
use eidgate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use eidgate::domain::loa::Loa;
use eidgate::domain::means::{EidMeans, MeansKind, MeansStatus};
use eidgate::domain::person::{NaturalPerson, OptionalAttributes};
use eidgate::store::{
    AuditRepo, Credential, IdempotentResponse, LifecycleRepo, MeansRepo, PersonRepo, RefreshRecord, SqlStore,
    TransitionWrite,
};
use serde_json::json;

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
