//! Legal persons, mandates, consent and the LoA caps (R-BIND-1, R-DATA-4, R-SUP-2): the
//! officers' routes, the login steps that act for a legal person or give consent, and
//! the holder's withdrawal of a consent.

use serde_json::{json, Value};

use super::{flow_step, Walk};
use crate::support::operators::{
    align_to_step, call, operator_token, post, provision_staff, totp_now, ADMIN, HELPDESK, REGISTRAR, REGISTRAR2,
};
use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, password_step, pkce, set_param, start_login, TestServer, HOLDER,
    PASSWORD,
};
use eidgate::audit::catalogue;

pub(crate) const ROUTES: &[&str] = &[
    "POST /account/api/consents/{client}/revoke",
    "POST /admin/v1/legal-persons",
    "POST /admin/v1/mandates",
    "POST /admin/v1/mandates/{id}/approve",
    "POST /admin/v1/mandates/{id}/delegate",
    "POST /admin/v1/mandates/{id}/{action}",
    "POST /authn/flows/{flow}/consent",
    "POST /authn/flows/{flow}/legal_person",
    "POST /authn/flows/{flow}/totp",
    "PUT /admin/v1/loa/caps",
];

const OTHER: &str = "LT/LT/49001010099";
const COMPANY: &str = "LT/LT/304123456";
const TOTP_PASSWORD: &str = "amber lantern seventeen";
const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";

async fn mandate_request(server: &TestServer, token: &str, representative: &str) -> String {
    let m = post(
        server,
        "/admin/v1/mandates",
        token,
        &json!({
            "legal_person": COMPANY, "representative": representative, "loa": "substantial",
            "verification": {"source": "Registrų centras JAR", "reference": "JAR-2026-0042-board",
                             "legal_person_identifier": COMPANY}
        }),
    )
    .await;
    assert_eq!(m.status, 201, "{}", m.body);
    m.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let allowed = json!({"allowed_claims": ["given_name", "family_name", "legal_person_identifier", "legal_name"]});
    server
        .import(json!({
            "clients": [client_entry("legal", allowed), client_entry("ask", json!({"consent": "once"}))],
            "persons": [{
                "identifier": OTHER, "given_name": "Ona", "family_name": "Onaitė",
                "birthdate": "1990-01-01", "proofing_loa": "substantial"
            }],
            "means": [{"holder": HOLDER, "kind": "totp", "loa": "substantial", "password": TOTP_PASSWORD, "totp_secret": SEED}]
        }))
        .await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let second = operator_token(&server, REGISTRAR2).await;
    let mut walk = Walk::new(&server).await;
    walk.skip().await;

    let created = post(
        &server,
        "/admin/v1/legal-persons",
        &registrar,
        &json!({"identifier": COMPANY, "legal_name": "UAB Pavyzdys", "legal_form": "UAB",
                "register": {"source": "Registrų centras JAR", "reference": "JAR-2026-0042"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    walk.check(
        "legal person registered",
        &["POST /admin/v1/legal-persons"],
        &[catalogue::LEGAL_PERSON_REGISTERED],
    )
    .await;
    let id = mandate_request(&server, &registrar, HOLDER).await;
    walk.check(
        "mandate requested",
        &["POST /admin/v1/mandates"],
        &[catalogue::MANDATE_CREATED],
    )
    .await;
    let approved = post(
        &server,
        &format!("/admin/v1/mandates/{id}/approve"),
        &second,
        &json!({}),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    walk.check(
        "mandate approved by a second officer",
        &["POST /admin/v1/mandates/{id}/approve"],
        &[catalogue::MANDATE_APPROVED],
    )
    .await;

    // The representative logs in at substantial (password + TOTP) and acts for the company.
    let legal = browser();
    let (_, challenge) = pkce();
    let mut params = auth_params("legal", &challenge);
    set_param(&mut params, "scope", Some("openid eidas eidas_legal"));
    set_param(&mut params, "acr_values", Some(SUBSTANTIAL));
    let flow = start_login(&legal, &authorize_url(&server, &params)).await;
    align_to_step(&server);
    let (status, body) = password_step(&server, &legal, &flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!((status, body), (200, json!({"next": "totp"})));
    walk.skip().await;
    let answer = flow_step(&server, &legal, &flow, "totp", json!({"code": totp_now(&server, SEED)})).await;
    assert_eq!(answer.body["next"], "legal_person", "{}", answer.body);
    walk.check(
        "second factor of a login",
        &["POST /authn/flows/{flow}/totp"],
        &[catalogue::LOGIN_SUCCESS],
    )
    .await;
    let wrong = flow_step(
        &server,
        &legal,
        &flow,
        "legal_person",
        json!({"legal_person": "LT/LT/999999999"}),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    walk.check(
        "a legal person without a mandate chosen",
        &["POST /authn/flows/{flow}/legal_person"],
        &[catalogue::LEGAL_REFUSED],
    )
    .await;
    let done = flow_step(&server, &legal, &flow, "legal_person", json!({"legal_person": COMPANY})).await;
    assert_eq!(done.body["next"], "done", "{}", done.body);
    walk.check(
        "acting for a legal person",
        &["POST /authn/flows/{flow}/legal_person"],
        &[catalogue::MANDATE_USED],
    )
    .await;

    let delegated = post(
        &server,
        &format!("/admin/v1/mandates/{id}/delegate"),
        &registrar,
        &json!({"to": OTHER, "loa": "substantial"}),
    )
    .await;
    assert_eq!(delegated.status, 201, "{}", delegated.body);
    walk.check(
        "mandate delegated",
        &["POST /admin/v1/mandates/{id}/delegate"],
        &[catalogue::MANDATE_DELEGATED],
    )
    .await;
    let desk = operator_token(&server, HELPDESK).await;
    walk.skip().await;
    let suspended = post(
        &server,
        &format!("/admin/v1/mandates/{id}/suspend"),
        &desk,
        &json!({"reason": "board decision"}),
    )
    .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    walk.check(
        "mandate suspended",
        &["POST /admin/v1/mandates/{id}/{action}"],
        &[catalogue::MANDATE_SUSPENDED],
    )
    .await;

    for (action, event) in [
        ("reactivate", catalogue::MANDATE_REACTIVATION_REQUESTED),
        ("revoke", catalogue::MANDATE_REVOKED),
    ] {
        let r = post(
            &server,
            &format!("/admin/v1/mandates/{id}/{action}"),
            &desk,
            &json!({"reason": "board decision"}),
        )
        .await;
        assert_eq!(r.status, 200, "{action}: {}", r.body);
        walk.check(action, &["POST /admin/v1/mandates/{id}/{action}"], &[event])
            .await;
    }
    // Without a usable mandate the login for the company ends without a code.
    server.app.clock.advance(30);
    let late = browser();
    let flow = start_login(&late, &authorize_url(&server, &params)).await;
    align_to_step(&server);
    let (status, body) = password_step(&server, &late, &flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!((status, body), (200, json!({"next": "totp"})));
    walk.skip().await;
    let answer = flow_step(&server, &late, &flow, "totp", json!({"code": totp_now(&server, SEED)})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let to = answer.body["redirect_to"].as_str().unwrap_or_default();
    assert!(to.contains("error=access_denied"), "{}", answer.body);
    walk.check(
        "a login for a legal person without a usable mandate",
        &["POST /authn/flows/{flow}/totp"],
        &[catalogue::LOGIN_SUCCESS, catalogue::LEGAL_NO_MANDATE],
    )
    .await;

    // A cancelled login: no code, no record.
    let abandoned = browser();
    let (_, challenge) = pkce();
    let flow = start_login(&abandoned, &authorize_url(&server, &auth_params("ask", &challenge))).await;
    walk.skip().await;
    let cancelled = flow_step(&server, &abandoned, &flow, "cancel", json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert!(
        cancelled.body["redirect_to"]
            .as_str()
            .is_some_and(|to| to.contains("error=access_denied")),
        "{}",
        cancelled.body
    );
    walk.nothing("cancelled login").await;

    // Consent at a client that asks for it, then withdrawn on /account.
    let holder = browser();
    let (_, challenge) = pkce();
    let flow = start_login(&holder, &authorize_url(&server, &auth_params("ask", &challenge))).await;
    let (_, body) = password_step(&server, &holder, &flow, HOLDER, PASSWORD).await;
    assert_eq!(body["next"], "consent", "{body}");
    walk.skip().await;
    let done = flow_step(&server, &holder, &flow, "consent", json!({"approve": true})).await;
    assert_eq!(done.body["next"], "done", "{}", done.body);
    walk.check(
        "consent given",
        &["POST /authn/flows/{flow}/consent"],
        &[catalogue::CONSENT_GRANTED],
    )
    .await;
    let r = holder
        .post(server.at("/account/api/consents/ask/revoke"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    walk.check(
        "consent withdrawn",
        &["POST /account/api/consents/{client}/revoke"],
        &[catalogue::CONSENT_REVOKED],
    )
    .await;

    let admin = operator_token(&server, ADMIN).await;
    walk.skip().await;
    let change: Value = json!({"caps": {"totp": "low"}, "reason": "supervisor decision 2026/17"});
    let r = call(
        &server,
        reqwest::Method::PUT,
        "/admin/v1/loa/caps",
        Some(&admin),
        Some(&change),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    walk.check(
        "LoA cap withdrawn",
        &["PUT /admin/v1/loa/caps"],
        &[catalogue::LOA_CAPS_CHANGED],
    )
    .await;
    walk.finish(ROUTES);
}
