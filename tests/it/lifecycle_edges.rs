//! Every change reaches everything that depends on it (issue 20): consent withdrawal and
//! tokens, renewal and the old means, expiry of suspended means, the annual report over
//! every status event, the whole import format, the absolute end of refresh tokens, and
//! `mark_compromised`. The two-instance points (termination from the CLI, operator tokens
//! after Redis loses its data) are in `scale.rs`; discovery in `loa_claims.rs`.

use std::sync::{Arc, Mutex};

use eidgate::audit::AuditEvent;
use eidgate::domain::loa::Loa;
use eidgate::domain::means::{EidMeans, MeansKind, MeansStatus};
use serde_json::{json, Value};

use crate::support::operators::{
    activate, approve, audit_events, count_events, get, helpdesk, helpdesk_in_person, operator_token, person_id, post,
    provision_staff, state_of, status_body, ADMIN, HELPDESK, ISSUER, REGISTRAR,
};
use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, exchange, password_step, pkce, query, refresh_with, start_login,
    tokens_for, userinfo_status, Answer, TestServer, HOLDER, PASSWORD,
};

/// The activation code of an approved means: from the approval's answer, or from the
/// delivery outbox where the approval no longer shows it (DESIGN "Delivery port").
fn activation_code(server: &TestServer, approved: &Answer, means: &str) -> String {
    if let Some(code) = approved.body["activation_code"].as_str() {
        return code.to_owned();
    }
    let outbox = server.app.config.data_dir.join("outbox");
    for entry in std::fs::read_dir(&outbox).unwrap() {
        let message: Value = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        if message["means"] == means && message["kind"] == "activation_code" {
            return message["secret"].as_str().unwrap().to_owned();
        }
    }
    panic!("no activation code for {means}");
}

/// Applies for `kind` at `loa` renewing `renews` (as the registrar): the answer.
async fn apply_renewal(
    server: &TestServer,
    registrar: &str,
    holder: &str,
    kind: &str,
    loa: &str,
    renews: &str,
) -> Answer {
    let body = json!({"holder": holder, "kind": kind, "loa": loa, "renews": renews});
    post(server, "/admin/v1/means", registrar, &body).await
}

// ---- 1. consent withdrawal ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_data_4_withdrawn_consent_revokes_the_clients_refresh_and_access_tokens() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({"clients": [client_entry("ask", json!({"consent": "once"}))]}))
        .await;
    let browser = browser();
    let (verifier, challenge) = pkce();
    let flow = start_login(&browser, &authorize_url(&server, &auth_params("ask", &challenge))).await;
    let (_, body) = password_step(&server, &browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(body["next"], "consent", "{body}");
    let done: Value = browser
        .post(server.at(&format!("/authn/flows/{flow}/consent")))
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let back = url::Url::parse(done["redirect_to"].as_str().unwrap()).unwrap();
    let tokens = exchange(&server, "ask", &query(&back, "code").unwrap(), &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    // The grant works and rotates before the withdrawal.
    let rotated = refresh_with(&server, "ask", tokens.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let access = rotated.body["access_token"].as_str().unwrap();
    let refresh = rotated.body["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, access).await, 200);
    // The fixture RP's grant of the same holder is not touched.
    let other = tokens_for(&server, "rp").await;

    let r = browser
        .post(server.at("/account/api/consents/ask/revoke"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count_events(&server, "client:ask", "consent.revoked").await, 1);

    let refused = refresh_with(&server, "ask", refresh).await;
    assert_eq!(
        (refused.status, refused.error()),
        (400, "invalid_grant"),
        "{}",
        refused.body
    );
    assert_eq!(userinfo_status(&server, access).await, 401);
    assert_eq!(
        userinfo_status(&server, other["access_token"].as_str().unwrap()).await,
        200
    );
    let still = refresh_with(&server, "rp", other["refresh_token"].as_str().unwrap()).await;
    assert_eq!(still.status, 200, "{}", still.body);
}

// ---- 4. renewal ------------------------------------------------------------------------------

/// An applicant registered at `high` with an active low password means issued through
/// the admin API: (server, registrar token, issuer token, means id).
async fn renewable() -> (TestServer, String, String, String) {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    crate::support::operators::register(&server, &registrar, APPLICANT, "high").await;
    let applied = crate::support::operators::apply(&server, &registrar, APPLICANT, "password", "low").await;
    let id = applied.body["id"].as_str().unwrap().to_owned();
    let approved = approve(&server, &issuer, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    activate(
        &server,
        APPLICANT,
        &activation_code(&server, &approved, &id),
        "my own long pass phrase",
    )
    .await;
    (server, registrar, issuer, id)
}

const APPLICANT: &str = "LT/LT/48505050505";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_renew_1_the_activated_renewal_revokes_the_old_means_as_renewed() {
    let (server, registrar, issuer, old) = renewable().await;
    let r = apply_renewal(&server, &registrar, APPLICANT, "password", "low", &old).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let new = r.body["id"].as_str().unwrap().to_owned();
    let approved = approve(&server, &issuer, &new).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    // Issued but not activated: the old means still serves.
    assert_eq!(state_of(&server, &old).await, "active");
    activate(
        &server,
        APPLICANT,
        &activation_code(&server, &approved, &new),
        "a new long pass phrase",
    )
    .await;
    assert_eq!(state_of(&server, &new).await, "active");
    assert_eq!(state_of(&server, &old).await, "revoked");
    let history = audit_events(&server, &format!("means:{old}")).await;
    let last = &history.last().unwrap().event;
    assert_eq!(last.event_type, "means.revoked");
    assert_eq!(last.data["reason"], "renewed");
    assert_eq!(last.data["renewed_by"], new.as_str());
    // One transaction: the revocation sits right before the activation in the chain.
    let activated = audit_events(&server, &format!("means:{new}"))
        .await
        .into_iter()
        .find(|r| r.event.event_type == "means.activated")
        .unwrap();
    assert_eq!(history.last().unwrap().seq + 1, activated.seq);
    assert_eq!(activated.time, history.last().unwrap().time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_renew_1_a_renewal_rests_on_the_same_or_a_higher_loa_never_a_lower_one() {
    let (server, registrar, _issuer, low) = renewable().await;
    // A substantial means of the same holder (imported: a TOTP seed is sealed by the HSM).
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let report = server
        .import(
            json!({"means": [{"holder": APPLICANT, "kind": "totp", "loa": "substantial",
                                   "password": "a totp pass phrase", "totp_secret": seed}]}),
        )
        .await;
    let substantial = report.means_ids[0].clone();
    // Same level: low on low.
    let r = apply_renewal(&server, &registrar, APPLICANT, "password", "low", &low).await;
    assert_eq!(r.status, 201, "same LoA: {}", r.body);
    // Higher basis: low on substantial.
    let r = apply_renewal(&server, &registrar, APPLICANT, "password", "low", &substantial).await;
    assert_eq!(r.status, 201, "higher LoA: {}", r.body);
    // Same level: substantial on substantial.
    let r = apply_renewal(&server, &registrar, APPLICANT, "totp", "substantial", &substantial).await;
    assert_eq!(r.status, 201, "same LoA: {}", r.body);
    // Lower basis: substantial on low is refused.
    let r = apply_renewal(&server, &registrar, APPLICANT, "totp", "substantial", &low).await;
    assert_eq!(r.status, 422, "lower LoA: {}", r.body);
}

/// The stand-in register's records: (personal code, answer).
type Records = Arc<Mutex<Vec<(String, Value)>>>;

/// A person register stand-in: `GET /persons/{country}/{code}` answers the record set
/// for that code, 404 otherwise.
async fn registry_stub(records: Records) -> String {
    use axum::extract::{Path, State};
    async fn person(
        State(records): State<Records>,
        Path((_country, code)): Path<(String, String)>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let found = records
            .lock()
            .unwrap()
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.clone());
        match found {
            Some(v) => axum::Json(v).into_response(),
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/persons/{country}/{code}", axum::routing::get(person))
        .with_state(records);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_renew_2_a_renewal_at_high_rechecks_identity_data_at_the_register_and_a_mismatch_stops_it() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let url = registry_stub(records.clone()).await;
    let server = TestServer::start_with(|c| c.registry.url = Some(url)).await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    // The fixture holder (proofing high) with a valid high means (a card, stored directly).
    let now = server.app.now();
    let card = EidMeans {
        id: eidgate::domain::ids::MeansId::new(),
        holder: person_id(&server, HOLDER).await,
        kind: MeansKind::Smartcard,
        loa: Loa::High,
        status: MeansStatus::Active,
        valid_from: now,
        valid_until: now + 86_400,
        version: 1,
    };
    let event = AuditEvent::new("means.imported", "test", format!("means:{}", card.id), json!({}));
    server
        .app
        .store
        .insert_means(&card, &eidgate::store::Credential::None, event)
        .await
        .unwrap();
    let card_id = card.id.to_string();

    // The register differs in the family name: the renewal stops, audited without values.
    let record = |family: &str| json!({"given_name": "Jonas", "family_name": family, "birthdate": "1980-01-08"});
    records
        .lock()
        .unwrap()
        .push(("38001085718".into(), record("Petraitis")));
    let r = apply_renewal(&server, &registrar, HOLDER, "fido", "high", &card_id).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let refused: Vec<_> = audit_events(&server, &format!("means:{card_id}"))
        .await
        .into_iter()
        .filter(|r| r.event.event_type == "means.renewal_refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.data["fields"], json!(["family_name"]));
    assert!(!refused[0].event.data.to_string().contains("Petraitis"));
    // Unknown to the register: stopped too.
    records.lock().unwrap().clear();
    let r = apply_renewal(&server, &registrar, HOLDER, "fido", "high", &card_id).await;
    assert_eq!(r.status, 422, "{}", r.body);
    // The register agrees (case and spaces aside): the renewal is registered.
    records
        .lock()
        .unwrap()
        .push(("38001085718".into(), record(" JONAITIS ")));
    let r = apply_renewal(&server, &registrar, HOLDER, "fido", "high", &card_id).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Below high there is no register check (R-RENEW-1 only).
    records.lock().unwrap().clear();
    let r = apply_renewal(&server, &registrar, HOLDER, "password", "low", &card_id).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

// ---- 5. expiry of suspended means ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_4_a_suspended_means_expires_when_its_validity_ends() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    let helpdesk = operator_token(&server, HELPDESK).await;
    let r = helpdesk_in_person(&server, &helpdesk, &staff.holder_means, "suspend").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let app = &server.app;
    assert_eq!(
        eidgate::lifecycle::service::expire_due(&app.lifecycle).await.unwrap(),
        0
    );
    let means = app
        .store
        .means(staff.holder_means.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    app.clock.advance(means.valid_until - app.now() + 1);
    assert!(eidgate::lifecycle::service::expire_due(&app.lifecycle).await.unwrap() >= 1);
    assert_eq!(state_of(&server, &staff.holder_means).await, "expired");
    let last = audit_events(&server, &format!("means:{}", staff.holder_means)).await;
    assert_eq!(last.last().unwrap().event.event_type, "means.expired");
    assert_eq!(last.last().unwrap().event.data["from"], "suspended");
}

// ---- 6. annual report --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sup_1_every_status_event_decides_validity_in_the_annual_report() {
    use eidgate::supervision::report::{annual, STATUS_EVENTS};
    let server = TestServer::start().await;
    let store = server.app.store.as_ref();
    let ids: Vec<String> = (0..STATUS_EVENTS.len())
        .map(|n| format!("LT/LT/4900101{n:04}"))
        .collect();
    let person = |id: &String| {
        json!({"identifier": id, "given_name": "Ona", "family_name": "Onaitė", "birthdate": "1990-02-03",
               "proofing_loa": "high"})
    };
    let report = server
        .import(json!({
            "persons": ids.iter().map(person).collect::<Vec<_>>(),
            "means": ids.iter().map(|i| json!({"holder": i, "kind": "password", "loa": "low",
                                               "password": "a long pass phrase"})).collect::<Vec<_>>(),
        }))
        .await;
    // One means per status event, active before it; the event writes the status it means.
    for ((event, valid), id) in STATUS_EVENTS.iter().zip(&report.means_ids) {
        let id = id.parse().unwrap();
        let m = store.means(id).await.unwrap().unwrap();
        let (m, status) = if *valid {
            let before = AuditEvent::new("means.suspended", "test", format!("means:{id}"), json!({}));
            let m = store
                .set_status(id, m.version, MeansStatus::Suspended, before)
                .await
                .unwrap();
            (m, MeansStatus::Active)
        } else {
            (m, MeansStatus::Suspended)
        };
        let audit = AuditEvent::new(event, "test", format!("means:{id}"), json!({}));
        store.set_status(id, m.version, status, audit).await.unwrap();
    }
    let year = time::OffsetDateTime::now_utc().year();
    let r = annual(store, year).await.unwrap();
    let valid = STATUS_EVENTS.iter().filter(|(_, v)| *v).count() as u64;
    assert_eq!(r.valid_on_31_december.total, valid, "{r:?}");
    for lock in ["means.locked", "authn.counter_regression", "means.suspended"] {
        assert!(STATUS_EVENTS.contains(&(lock, false)), "{lock}");
    }
}

// ---- 7. import -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_2_import_takes_revocation_secrets_legal_persons_and_mandates() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let doc = json!({
        "persons": [{"identifier": APPLICANT, "given_name": "Ona", "family_name": "Onaitė",
                     "birthdate": "1985-05-05", "proofing_loa": "substantial"}],
        "legal_persons": [{"identifier": "LT/LT/304567890", "legal_name": "UAB Pavyzdys", "legal_form": "UAB",
                           "vat_number": "LT100001234567"}],
        "mandates": [{"person": APPLICANT, "legal_person": "LT/LT/304567890", "loa": "substantial"}],
        "means": [{"holder": APPLICANT, "kind": "password", "loa": "low", "password": "a long pass phrase",
                   "revocation_secret": "K7Q2-M9XD-4TRA-PP3Z"}]
    });
    let report = server.import(doc.clone()).await;
    assert_eq!((report.legal_persons, report.mandates, report.means), (1, 1, 1));
    let store = &server.app.store;
    let legal = store
        .legal_person_by_identifier(&"LT/LT/304567890".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(legal.attributes.vat_number.as_deref(), Some("LT100001234567"));
    let mandates = store
        .mandates_of_person(person_id(&server, APPLICANT).await)
        .await
        .unwrap();
    assert_eq!(mandates.len(), 1);
    assert_eq!(mandates[0].status.as_str(), "active");
    assert_eq!(mandates[0].legal_person, legal.id);
    assert_eq!(
        count_events(&server, &format!("mandate:{}", mandates[0].id), "mandate.imported").await,
        1
    );
    assert_eq!(
        count_events(&server, &format!("legal_person:{}", legal.id), "legal_person.imported").await,
        1
    );
    // The secret is stored as argon2id, never as given.
    let means = &report.means_ids[0];
    let rec = store.means_record(means.parse().unwrap()).await.unwrap().unwrap();
    let phc = rec.revocation_secret.unwrap();
    assert!(phc.starts_with("$argon2id$") && !phc.contains("K7Q2"), "{phc}");
    // And it works at the helpdesk, typed as on the phone.
    let helpdesk_token = operator_token(&server, HELPDESK).await;
    let wrong = helpdesk(
        &server,
        &helpdesk_token,
        means,
        "suspend",
        "k-1",
        &status_body("revocation_secret", "AAAA-BBBB-CCCC-DDDD"),
    )
    .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let right = helpdesk(
        &server,
        &helpdesk_token,
        means,
        "suspend",
        "k-2",
        &status_body("revocation_secret", "k7q2 m9xd 4tra pp3z"),
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.body);
    // Run again: nothing is doubled.
    let again = server
        .import(json!({"legal_persons": doc["legal_persons"], "mandates": doc["mandates"]}))
        .await;
    assert_eq!((again.legal_persons, again.legal_persons_existing), (0, 1));
    assert_eq!((again.mandates, again.mandates_existing), (0, 1));
}

// ---- 8. absolute end of refresh tokens ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_1_refresh_tokens_end_at_refresh_max_however_often_they_rotate() {
    let server = TestServer::start().await; // refresh_ttl 8 h, refresh_max 12 h
    server.provision().await;
    let tokens = tokens_for(&server, "rp").await;
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Rotating every 4 h would slide forever without an absolute end.
    for _ in 0..2 {
        server.app.clock.advance(4 * 3600);
        let r = refresh_with(&server, "rp", &refresh).await;
        assert_eq!(r.status, 200, "{}", r.body);
        refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    }
    server.app.clock.advance(4 * 3600 + 1); // 12 h and 1 s after the login
    let r = refresh_with(&server, "rp", &refresh).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{}", r.body);
}

// ---- 10. mark_compromised ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ops_4_marking_a_means_compromised_answers_409_when_it_did_not_suspend_it() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    server
        .import_update(json!({"operators": [{"person": ADMIN, "roles": ["admin", "security"]}]}))
        .await;
    let helpdesk = operator_token(&server, HELPDESK).await;
    let r = helpdesk_in_person(&server, &helpdesk, &staff.holder_means, "revoke").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let security = operator_token(&server, ADMIN).await;
    let path = format!("/admin/v1/means/{}/compromised", staff.holder_means);
    let r = post(
        &server,
        &path,
        &security,
        &json!({"reason": "card model vulnerability"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let notices = get(&server, "/admin/v1/notices", &security).await;
    assert_eq!(
        notices.body["notices"],
        json!([]),
        "no notice for a suspension that did not happen"
    );
    assert_eq!(state_of(&server, &staff.holder_means).await, "revoked");
}
