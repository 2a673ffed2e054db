//! Legal persons and mandates: four-eyes approval, acting for a legal person, the
//! binding rules (R-BIND-1, R-REG-5, R-DATA-2, R-SEC-3).

use serde_json::{json, Value};

use super::*;
use crate::support::operators::{count_events, operator_token, post, HELPDESK, REGISTRAR};
use crate::support::server::{client_entry, query, Answer, TestServer, HOLDER};

/// Registers `COMPANY` and binds `representative` at `loa`; returns the mandate id.
async fn mandate(server: &TestServer, representative: &str, loa: &str) -> String {
    let registrar = operator_token(server, REGISTRAR).await;
    let existing = crate::support::operators::get(
        server,
        &format!("/admin/v1/legal-persons?identifier={COMPANY}"),
        &registrar,
    )
    .await;
    if existing.status == 404 {
        let created = post(
            server,
            "/admin/v1/legal-persons",
            &registrar,
            &json!({
                "identifier": COMPANY, "legal_name": "UAB Pavyzdys", "legal_form": "UAB",
                "register": {"source": "Registrų centras JAR", "reference": "JAR-2026-0042"},
                "vat_number": "LT100001234567"
            }),
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let m = post(
        server,
        "/admin/v1/mandates",
        &registrar,
        &json!({
            "legal_person": COMPANY, "representative": representative, "loa": loa,
            "verification": {"source": "Registrų centras JAR", "reference": "JAR-2026-0042-board",
                             "legal_person_identifier": COMPANY}
        }),
    )
    .await;
    assert_eq!(m.status, 201, "{}", m.body);
    assert_eq!(m.body["state"], "applied");
    let id = m.body["id"].as_str().unwrap().to_owned();
    approve_mandate(server, &id).await;
    id
}

/// A second registration officer approves mandate `id` (R-BIND-1, R-SEC-3): → `active`.
async fn approve_mandate(server: &TestServer, id: &str) {
    let second = operator_token(server, crate::support::operators::REGISTRAR2).await;
    let approved = post(server, &format!("/admin/v1/mandates/{id}/approve"), &second, &json!({})).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["state"], "active");
}

#[tokio::test]
async fn r_bind_1_r_sec_3_a_mandate_of_one_officer_releases_nothing_until_a_second_officer_approves() {
    let server = server(vec![legal_client()]).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let created = post(
        &server,
        "/admin/v1/legal-persons",
        &registrar,
        &json!({"identifier": COMPANY, "legal_name": "UAB Pavyzdys", "legal_form": "UAB",
                "register": {"source": "Registrų centras JAR", "reference": "JAR-2026-0042"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let body = json!({"legal_person": COMPANY, "representative": HOLDER, "loa": "substantial",
                      "verification": {"source": "Registrų centras JAR", "reference": "JAR-2026-0042-board"}});
    // An officer cannot bind themselves.
    let own = post(
        &server,
        "/admin/v1/mandates",
        &registrar,
        &json!({"legal_person": COMPANY, "representative": REGISTRAR, "loa": "low",
                "verification": {"source": "JAR", "reference": "x"}}),
    )
    .await;
    assert_eq!(own.status, 403, "{}", own.body);
    let m = post(&server, "/admin/v1/mandates", &registrar, &body).await;
    assert_eq!(m.status, 201, "{}", m.body);
    assert_eq!(m.body["state"], "applied");
    let id = m.body["id"].as_str().unwrap().to_owned();
    // Not usable: the login is not offered the legal person.
    let (_, answer) = legal_login(&server, HOLDER, SEED).await;
    assert_eq!(query(&redirect_of(&answer), "error").as_deref(), Some("access_denied"));
    // The creating officer cannot approve it, nor can the representative's own means do
    // anything; a second registration officer can.
    let path = format!("/admin/v1/mandates/{id}/approve");
    let same = post(&server, &path, &registrar, &json!({})).await;
    assert_eq!(same.status, 403, "{}", same.body);
    assert!(
        same.body["detail"].as_str().unwrap().contains("four-eyes"),
        "{}",
        same.body
    );
    approve_mandate(&server, &id).await;
    assert_eq!(
        count_events(&server, &format!("mandate:{id}"), "mandate.approved").await,
        1
    );
    let (login, answer) = legal_login(&server, HOLDER, SEED).await;
    assert_eq!(answer.body["next"], "legal_person", "{}", answer.body);
    let done = step(&server, &login, "legal_person", json!({"legal_person": COMPANY})).await;
    let t = tokens(&server, &login, "legal", &done).await;
    let info = userinfo(&server, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["legal_person_identifier"], COMPANY, "{info}");
    // Suspended, then asked to be reactivated by one officer: applied again, unusable
    // until a second officer approves.
    let helpdesk = operator_token(&server, HELPDESK).await;
    for action in ["suspend", "reactivate"] {
        let r = post(
            &server,
            &format!("/admin/v1/mandates/{id}/{action}"),
            &helpdesk,
            &json!({"reason": "board decision"}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let (_, answer) = legal_login(&server, HOLDER, SEED).await;
    assert_eq!(query(&redirect_of(&answer), "error").as_deref(), Some("access_denied"));
    let by_requester = post(&server, &path, &helpdesk, &json!({})).await;
    assert_eq!(by_requester.status, 403, "{}", by_requester.body);
    approve_mandate(&server, &id).await;
    let (_, answer) = legal_login(&server, HOLDER, SEED).await;
    assert_eq!(answer.body["next"], "legal_person", "{}", answer.body);
}

fn legal_client() -> Value {
    client_entry(
        "legal",
        json!({"allowed_claims": ["given_name", "family_name", "legal_person_identifier", "legal_name", "vat_number"]}),
    )
}

/// A substantial login of `who` asking for `eidas_legal`, up to the answer after TOTP.
async fn legal_login(server: &TestServer, who: &str, seed: &str) -> (Login, Answer) {
    let login = begin(
        server,
        "legal",
        &[
            ("scope", Some("openid eidas eidas_legal")),
            ("acr_values", Some(SUBSTANTIAL)),
        ],
    )
    .await;
    let answer = totp_login(server, &login, who, seed).await;
    (login, answer)
}

#[tokio::test]
async fn r_bind_1_r_reg_5_r_data_2_acting_for_a_legal_person_releases_its_claims_with_an_active_mandate() {
    let server = server(vec![legal_client()]).await;
    let id = mandate(&server, HOLDER, "substantial").await;
    let (login, answer) = legal_login(&server, HOLDER, SEED).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        json!({"next": "legal_person", "choices": [{"legal_person": COMPANY, "legal_name": "UAB Pavyzdys"}]})
    );
    // A legal person that is not among the choices is refused.
    let wrong = step(
        &server,
        &login,
        "legal_person",
        json!({"legal_person": "LT/LT/999999999"}),
    )
    .await;
    assert_eq!(wrong.status, 400);
    let done = step(&server, &login, "legal_person", json!({"legal_person": COMPANY})).await;
    let t = tokens(&server, &login, "legal", &done).await;
    let info = userinfo(&server, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["given_name"], "Jonas");
    assert_eq!(info["legal_person_identifier"], COMPANY);
    assert_eq!(info["legal_name"], "UAB Pavyzdys");
    assert_eq!(info["vat_number"], "LT100001234567");
    assert_eq!(count_events(&server, &format!("mandate:{id}"), "mandate.used").await, 1);

    // The helpdesk suspends the mandate: the token no longer carries the legal claims,
    // and the next login is not offered it.
    let helpdesk = operator_token(&server, HELPDESK).await;
    let s = post(
        &server,
        &format!("/admin/v1/mandates/{id}/suspend"),
        &helpdesk,
        &json!({"reason": "board decision withdrawn"}),
    )
    .await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["state"], "suspended");
    let info = userinfo(&server, t["access_token"].as_str().unwrap()).await;
    assert!(info.get("legal_name").is_none(), "{info}");
    let (_, answer) = legal_login(&server, HOLDER, SEED).await;
    let back = redirect_of(&answer);
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    // A suspended mandate cannot be suspended again (409).
    let again = post(
        &server,
        &format!("/admin/v1/mandates/{id}/suspend"),
        &helpdesk,
        &json!({"reason": "again"}),
    )
    .await;
    assert_eq!(again.status, 409);
}

#[tokio::test]
async fn r_bind_1_a_mandate_above_the_achieved_loa_is_not_offered() {
    let server = server(vec![legal_client()]).await;
    mandate(&server, HOLDER, "high").await;
    let (_, answer) = legal_login(&server, HOLDER, SEED).await;
    let back = redirect_of(&answer);
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert!(query(&back, "code").is_none());
}

#[tokio::test]
async fn r_bind_1_binding_rules_proofing_level_register_check_and_delegation() {
    let server = server(vec![legal_client()]).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let id = mandate(&server, HOLDER, "substantial").await;
    // OTHER is proofed at substantial only: no binding at high.
    let refused = post(
        &server,
        "/admin/v1/mandates",
        &registrar,
        &json!({"legal_person": COMPANY, "representative": OTHER, "loa": "high",
                "verification": {"source": "JAR", "reference": "x", "legal_person_identifier": COMPANY}}),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    // Without a register check, no binding at substantial.
    let refused = post(
        &server,
        "/admin/v1/mandates",
        &registrar,
        &json!({"legal_person": COMPANY, "representative": OTHER, "loa": "substantial",
                "verification": {"source": "", "reference": ""}}),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    // Delegation to OTHER keeps the delegator on record and ends with its source.
    let delegated = post(
        &server,
        &format!("/admin/v1/mandates/{id}/delegate"),
        &registrar,
        &json!({"to": OTHER, "loa": "substantial"}),
    )
    .await;
    assert_eq!(delegated.status, 201, "{}", delegated.body);
    assert_eq!(delegated.body["delegated_by"], "LT:38001085718");
    assert_eq!(delegated.body["state"], "applied");
    approve_mandate(&server, delegated.body["id"].as_str().unwrap()).await;
    let (login, answer) = legal_login(&server, OTHER, OTHER_SEED).await;
    assert_eq!(answer.body["next"], "legal_person", "{}", answer.body);
    let done = step(&server, &login, "legal_person", json!({"legal_person": COMPANY})).await;
    let t = tokens(&server, &login, "legal", &done).await;
    assert_eq!(
        userinfo(&server, t["access_token"].as_str().unwrap()).await["legal_person_identifier"],
        COMPANY
    );
    // Revoking the delegator's mandate ends the delegation.
    let helpdesk = operator_token(&server, HELPDESK).await;
    let r = post(
        &server,
        &format!("/admin/v1/mandates/{id}/revoke"),
        &helpdesk,
        &json!({"reason": "representative left the board"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, answer) = legal_login(&server, OTHER, OTHER_SEED).await;
    assert_eq!(query(&redirect_of(&answer), "error").as_deref(), Some("access_denied"));
    // The listing shows both mandates.
    let listing = crate::support::operators::get(
        &server,
        &format!("/admin/v1/legal-persons?identifier={COMPANY}"),
        &registrar,
    )
    .await;
    assert_eq!(listing.status, 200);
    assert_eq!(listing.body["mandates"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn r_data_4_eidas_legal_attribute_scopes_ask_for_the_legal_person_and_release_only_those_attributes() {
    let server = server(vec![legal_client()]).await;
    mandate(&server, HOLDER, "substantial").await;
    let login = begin(
        &server,
        "legal",
        &[
            (
                "scope",
                Some("openid eidas:attribute:legal_name eidas:attribute:legal_person_identifier"),
            ),
            ("acr_values", Some(SUBSTANTIAL)),
        ],
    )
    .await;
    let answer = totp_login(&server, &login, HOLDER, SEED).await;
    assert_eq!(answer.body["next"], "legal_person", "{}", answer.body);
    let done = step(&server, &login, "legal_person", json!({"legal_person": COMPANY})).await;
    let t = tokens(&server, &login, "legal", &done).await;
    let id_token = crate::support::server::jwt_part(t["id_token"].as_str().unwrap(), 1);
    let info = userinfo(&server, t["access_token"].as_str().unwrap()).await;
    for (what, claims) in [("ID token", &id_token), ("userinfo", &info)] {
        assert_eq!(claims["legal_person_identifier"], COMPANY, "{what}: {claims}");
        assert_eq!(claims["legal_name"], "UAB Pavyzdys", "{what}: {claims}");
        // Allowed but not asked for: not released.
        for absent in ["vat_number", "given_name", "family_name"] {
            assert!(claims.get(absent).is_none(), "{what}: {absent} in {claims}");
        }
    }
}
