//! The eID means lifecycle through the HTTP APIs (DESIGN "eID means and lifecycle",
//! "Admin API and CLI", "Activation API"): registration with proofing facts, four-eyes
//! issuance, activation with the holder's acceptance, login, suspension and revocation
//! taking effect at once, re-verified reactivation, the expiry sweep, operator roles, and
//! the holder's self-service (R-REG-*, R-ISS-*, R-LIFE-*, R-SEC-3/4, R-AUTH-1).

use eidgate::domain::loa::Loa;
use serde_json::{json, Value};

use crate::support::operators::{
    activate, activation_start, activation_step, apply, approve, audit_events, call, count_events, get, helpdesk,
    issue, login_attempt, login_tokens, operator_token, person_id, post, provision_staff, register, registration,
    state_of, status_body, stored, ADMIN, HELPDESK, IN_PERSON, ISSUER, REGISTRAR,
};
use crate::support::problem::assert_problem;
use crate::support::server::{
    auth_params, authorize_url, browser, introspect_active, location, password_step, pkce, refresh_with, start_login,
    userinfo_status, Answer, TestServer, HOLDER, PASSWORD, REDIRECT,
};

/// A person registered by the tests through the admin API.
const APPLICANT: &str = "LT/LT/48505050505";
/// The password the applicant chooses at activation.
const APPLICANT_PASSWORD: &str = "my own long pass phrase";

const HOUR: i64 = 3600;

/// A server with the fixture and the staff, the applicant registered (proofing `high`)
/// and the registrar's and issuer's tokens.
async fn with_applicant() -> (TestServer, String, String) {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, APPLICANT, "high").await;
    (server, registrar, issuer)
}

/// The password step of a fresh login of the applicant at `rp`.
async fn applicant_login(server: &TestServer) -> (u16, Value) {
    let (status, body, _) = login_attempt(server, "rp", APPLICANT, APPLICANT_PASSWORD, "openid").await;
    (status, body)
}

// ---- the whole path --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_2_r_iss_3_r_life_1_r_life_3_r_life_4_whole_path_register_issue_activate_login_suspend_reactivate_revoke()
{
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    let desk = operator_token(&server, HELPDESK).await;

    // Registration with proofing facts (R-REG-2, R-REG-3).
    let person = register(&server, &registrar, APPLICANT, "substantial").await;
    assert_eq!(person["identifier"], "LT:48505050505");
    assert_eq!(person["proofing_loa"], "substantial");
    let pid = person_id(&server, APPLICANT).await;
    let proofing = server.app.store.proofing_records(pid).await.unwrap();
    assert_eq!(proofing.len(), 1);
    assert_eq!(proofing[0].checked_by, person_id(&server, REGISTRAR).await);

    // Application → applied.
    let applied = apply(&server, &registrar, APPLICANT, "password", "low").await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    assert_eq!(applied.body["state"], "applied");
    let id = applied.body["id"].as_str().unwrap().to_owned();
    // The registering officer holds the issuance role too: only four-eyes stops them.
    let own = approve(&server, &registrar, &id).await;
    assert_problem(&own, 403, "forbidden");
    assert!(
        own.body["detail"].as_str().unwrap().contains("four-eyes"),
        "{}",
        own.body
    );
    assert_eq!(state_of(&server, &id).await, "applied");

    // A second officer approves → issued, with the secrets shown once.
    let approved = approve(&server, &issuer, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["state"], "issued");
    assert_eq!(approved.body["id"], id.as_str());
    let issued = crate::support::operators::issued_from(&server, id.clone(), &approved);
    let (code, secret) = (issued.activation_code, issued.revocation_secret);
    assert!(code.len() >= 12 && secret.len() >= 12);
    assert_eq!(approved.header("cache-control"), Some("no-store"));
    // Issued is not usable yet: the holder has not activated.
    let (status, body) = applicant_login(&server).await;
    assert_ne!(status, 200, "{body}");

    // The holder activates (R-ISS-2, R-ISS-3, R-REG-1).
    let done = activate(&server, APPLICANT, &code, APPLICANT_PASSWORD).await;
    assert_eq!(done, json!({"state": "active", "means": id}));
    assert_eq!(state_of(&server, &id).await, "active");

    // Login through the OIDC flow with a refresh token.
    let tokens = login_tokens(&server, "rp", APPLICANT, APPLICANT_PASSWORD, "openid offline_access").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo_status(&server, &access).await, 200);
    // A browser with an SSO session of the holder.
    let sso = browser();
    let (_, challenge) = pkce();
    let authorize = authorize_url(&server, &auth_params("rp", &challenge));
    let flow = start_login(&sso, &authorize).await;
    let (status, body) = password_step(&server, &sso, &flow, APPLICANT, APPLICANT_PASSWORD).await;
    assert_eq!((status, body["next"].as_str()), (200, Some("done")), "{body}");
    let silent = sso.get(&authorize).send().await.unwrap();
    assert!(
        location(&silent).unwrap().starts_with(REDIRECT),
        "the SSO session answers without a login"
    );

    // The helpdesk suspends with the revocation secret (R-LIFE-1, R-LIFE-2).
    let suspended = helpdesk(
        &server,
        &desk,
        &id,
        "suspend",
        "k-suspend",
        &status_body("revocation_secret", &secret),
    )
    .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    assert_eq!(suspended.body["state"], "suspended");
    assert_eq!(state_of(&server, &id).await, "suspended");

    // At once: login, refresh, userinfo, introspection and the SSO session (R-LIFE-4).
    let (status, body) = applicant_login(&server).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("means-not-active"), "{body}");
    let refreshed = refresh_with(&server, "rp", &refresh).await;
    assert_eq!(refreshed.status, 400, "{}", refreshed.body);
    assert_eq!(refreshed.error(), "invalid_grant");
    assert_eq!(userinfo_status(&server, &access).await, 401);
    assert!(!introspect_active(&server, "rp", &access).await);
    let again = sso.get(&authorize).send().await.unwrap();
    assert!(
        location(&again).unwrap().starts_with("/login?flow="),
        "the SSO session of a suspended means must not answer silently"
    );

    // Reactivation needs identity re-verified: a revocation secret is not enough (R-LIFE-3).
    let refused = helpdesk(
        &server,
        &desk,
        &id,
        "reactivate",
        "k-react-1",
        &status_body("revocation_secret", &secret),
    )
    .await;
    assert_problem(&refused, 403, "verification-failed");
    assert_eq!(state_of(&server, &id).await, "suspended");
    let reactivated = helpdesk(
        &server,
        &desk,
        &id,
        "reactivate",
        "k-react-2",
        &status_body("in_person", IN_PERSON),
    )
    .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.body);
    assert_eq!(reactivated.body["state"], "active");
    let (status, body) = applicant_login(&server).await;
    assert_eq!((status, body["next"].as_str()), (200, Some("done")), "{body}");
    // The refresh token revoked by the suspension stays dead.
    assert_eq!(refresh_with(&server, "rp", &refresh).await.error(), "invalid_grant");

    // Revocation is final (R-LIFE-4).
    let revoked = helpdesk(
        &server,
        &desk,
        &id,
        "revoke",
        "k-revoke",
        &status_body("in_person", IN_PERSON),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["state"], "revoked");
    let after = helpdesk(
        &server,
        &desk,
        &id,
        "reactivate",
        "k-react-3",
        &status_body("in_person", IN_PERSON),
    )
    .await;
    assert_problem(&after, 409, "transition-not-allowed");
    assert_eq!(state_of(&server, &id).await, "revoked");
    let (status, _) = applicant_login(&server).await;
    assert_eq!(status, 403);

    // Every transition is in the means' history, in order.
    let history: Vec<String> = audit_events(&server, &format!("means:{id}"))
        .await
        .into_iter()
        .map(|r| r.event.event_type)
        .filter(|e| e.starts_with("means."))
        .collect();
    assert_eq!(
        history,
        [
            "means.applied",
            "means.approved",
            "means.activated",
            "means.suspended",
            "means.reactivated",
            "means.revoked"
        ]
    );
}

// ---- activation ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_activation_code_expires_after_72_hours() {
    let (server, registrar, issuer) = with_applicant().await;
    let issued = issue(&server, &registrar, &issuer, APPLICANT).await;
    // Just before the end of the period the code still opens an activation.
    server.app.clock.advance(72 * HOUR - 60);
    let early = activation_start(&server, APPLICANT, &issued.activation_code).await;
    assert_eq!(early.status, 200, "{}", early.body);
    // After it, the same code is refused, and an activation already started cannot finish.
    server.app.clock.advance(120);
    let late = activation_start(&server, APPLICANT, &issued.activation_code).await;
    assert_problem(&late, 401, "activation-refused");
    let activation = early.body["activation"].as_str().unwrap();
    let accept = json!({"terms_version": early.body["terms_version"], "security_advice_version": early.body["security_advice_version"]});
    assert_eq!(
        activation_step(&server, activation, "accept", &accept).await.status,
        200
    );
    let finish = activation_step(
        &server,
        activation,
        "password",
        &json!({"password": APPLICANT_PASSWORD}),
    )
    .await;
    assert_problem(&finish, 401, "activation-refused");
    assert_eq!(state_of(&server, &issued.id).await, "issued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_sixth_activation_attempt_is_refused_even_with_the_right_code() {
    let (server, registrar, issuer) = with_applicant().await;
    let issued = issue(&server, &registrar, &issuer, APPLICANT).await;
    for attempt in 1..=5 {
        let wrong = activation_start(&server, APPLICANT, "AAAA-BBBB-CCCC").await;
        assert_problem(&wrong, 401, "activation-refused");
        let rec = server
            .app
            .store
            .means_record(issued.id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.activation_attempts, attempt);
    }
    let right = activation_start(&server, APPLICANT, &issued.activation_code).await;
    assert_problem(&right, 401, "activation-refused");
    // Every refusal is a counted, audited failure, the sixth included.
    assert_eq!(
        count_events(&server, &format!("means:{}", issued.id), "activation.failed").await,
        6
    );
    assert_eq!(state_of(&server, &issued.id).await, "issued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_reg_1_acceptance_is_an_explicit_step_with_the_versions_in_force_and_is_recorded() {
    let (server, registrar, issuer) = with_applicant().await;
    let issued = issue(&server, &registrar, &issuer, APPLICANT).await;
    let started = activation_start(&server, APPLICANT, &issued.activation_code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["kind"], "password");
    let activation = started.body["activation"].as_str().unwrap();
    let terms = started.body["terms_version"].as_str().unwrap().to_owned();
    let advice = started.body["security_advice_version"].as_str().unwrap().to_owned();
    let password = json!({"password": APPLICANT_PASSWORD});

    // The credential step before acceptance.
    let early = activation_step(&server, activation, "password", &password).await;
    assert_problem(&early, 422, "unprocessable");
    // Versions other than those in force.
    for (t, a) in [("1999-01", advice.as_str()), (terms.as_str(), "1999-01")] {
        let wrong = activation_step(
            &server,
            activation,
            "accept",
            &json!({"terms_version": t, "security_advice_version": a}),
        )
        .await;
        assert_problem(&wrong, 422, "unprocessable");
    }
    let still_early = activation_step(&server, activation, "password", &password).await;
    assert_problem(&still_early, 422, "unprocessable");
    let pid = person_id(&server, APPLICANT).await;
    assert!(server.app.store.acceptances(pid).await.unwrap().is_empty());

    let accepted = activation_step(
        &server,
        activation,
        "accept",
        &json!({"terms_version": terms, "security_advice_version": advice}),
    )
    .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    // Password rules (R-AUTH-3): too short, and one containing the personal code.
    for weak in ["short pass", "x48505050505 is mine"] {
        let refused = activation_step(&server, activation, "password", &json!({"password": weak})).await;
        assert_problem(&refused, 422, "unprocessable");
    }
    assert_eq!(state_of(&server, &issued.id).await, "issued");
    let done = activation_step(&server, activation, "password", &password).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["state"], "active");

    let acceptances = server.app.store.acceptances(pid).await.unwrap();
    assert_eq!(acceptances.len(), 1);
    assert_eq!(acceptances[0].means.to_string(), issued.id);
    assert_eq!(acceptances[0].terms_version, terms);
    assert_eq!(acceptances[0].security_advice_version, advice);
    assert!((acceptances[0].accepted_at - server.app.now()).abs() <= 5);
    // The activation is single use.
    let replay = activation_step(&server, activation, "password", &password).await;
    assert_eq!(replay.status, 404, "{}", replay.body);
}

// ---- roles and separation of duties ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_operators_need_the_role_of_each_operation() {
    let (server, registrar, _issuer) = with_applicant().await;
    let desk = operator_token(&server, HELPDESK).await;
    // A helpdesk operator cannot register persons or apply for means.
    let applied = apply(&server, &desk, APPLICANT, "password", "low").await;
    assert_problem(&applied, 403, "forbidden");
    let registered = post(
        &server,
        "/admin/v1/persons",
        &desk,
        &registration("LT/LT/48505050506", "high"),
    )
    .await;
    assert_problem(&registered, 403, "forbidden");
    // Only an issuance officer approves.
    let application = apply(&server, &registrar, APPLICANT, "password", "low").await;
    assert_eq!(application.status, 201, "{}", application.body);
    let id = application.body["id"].as_str().unwrap();
    assert_problem(&approve(&server, &desk, id).await, 403, "forbidden");
    assert_eq!(state_of(&server, id).await, "applied");
    // No application was recorded for the refused attempt.
    let pid = person_id(&server, APPLICANT).await;
    assert_eq!(server.app.store.means_of_holder(pid).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_issuance_officer_cannot_approve_an_application_for_themselves() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    let applied = apply(&server, &registrar, ISSUER, "password", "low").await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let id = applied.body["id"].as_str().unwrap();
    let own = approve(&server, &issuer, id).await;
    assert_problem(&own, 403, "forbidden");
    assert!(own.body["detail"].as_str().unwrap().contains("own"), "{}", own.body);
    assert_eq!(state_of(&server, id).await, "applied");
    // A registration officer cannot apply for a means for themselves either.
    let self_applied = apply(&server, &registrar, REGISTRAR, "password", "low").await;
    assert_problem(&self_applied, 403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_loa_above_the_proofing_loa_or_the_kind_cap_is_refused() {
    // Password is the one kind this version issues, and its cap is `low` whatever the
    // configuration says (one factor); a raised configured cap must not lift it.
    let server = TestServer::start_with(|c| c.loa.caps.password = Loa::High).await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    register(&server, &registrar, APPLICANT, "high").await;
    let low_proofed = "LT/LT/48505050506";
    register(&server, &registrar, low_proofed, "low").await;

    // Above the kind's cap, within the holder's proofing LoA.
    for loa in ["substantial", "high"] {
        let above_cap = apply(&server, &registrar, APPLICANT, "password", loa).await;
        assert_problem(&above_cap, 422, "unprocessable");
        assert!(
            above_cap.body["detail"].as_str().unwrap().contains("cap (low)"),
            "{}",
            above_cap.body
        );
    }
    // Above the holder's proofing LoA (and the cap).
    let above_proofing = apply(&server, &registrar, low_proofed, "password", "substantial").await;
    assert_problem(&above_proofing, 422, "unprocessable");
    assert!(
        above_proofing.body["detail"]
            .as_str()
            .unwrap()
            .contains("proofing LoA (low)"),
        "{}",
        above_proofing.body
    );
    // Nothing was recorded for the refused applications.
    for who in [APPLICANT, low_proofed] {
        let pid = person_id(&server, who).await;
        assert!(server.app.store.means_of_holder(pid).await.unwrap().is_empty());
    }
    // Within both.
    for who in [APPLICANT, low_proofed] {
        let ok = apply(&server, &registrar, who, "password", "low").await;
        assert_eq!(ok.status, 201, "{}", ok.body);
        assert_eq!(ok.body["loa"], "low");
    }
}

/// `PUT /admin/v1/operators/{who}` with `roles` by `token`.
async fn put_roles(server: &TestServer, token: &str, who: &str, roles: Value) -> Answer {
    call(
        server,
        reqwest::Method::PUT,
        &format!("/admin/v1/operators/{}", stored(who)),
        Some(token),
        Some(&json!({"roles": roles})),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_an_operator_cannot_change_own_roles_and_role_changes_are_audited() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let admin = operator_token(&server, ADMIN).await;
    let admin_pid = person_id(&server, ADMIN).await;
    let own = put_roles(&server, &admin, ADMIN, json!(["admin", "security"])).await;
    assert_problem(&own, 403, "forbidden");
    assert_eq!(
        server
            .app
            .store
            .operator(admin_pid)
            .await
            .unwrap()
            .unwrap()
            .roles_text(),
        "admin"
    );
    assert_eq!(
        count_events(&server, &format!("person:{admin_pid}"), "operator.roles_changed").await,
        0
    );

    // Another operator's roles: changed and audited with before and after.
    let desk_pid = person_id(&server, HELPDESK).await;
    let changed = put_roles(&server, &admin, HELPDESK, json!(["helpdesk", "security"])).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["roles"], json!(["helpdesk", "security"]));
    let read = get(&server, &format!("/admin/v1/operators/{}", stored(HELPDESK)), &admin).await;
    assert_eq!(read.body["roles"], json!(["helpdesk", "security"]));
    let records = audit_events(&server, &format!("person:{desk_pid}")).await;
    let change = records
        .iter()
        .find(|r| r.event.event_type == "operator.roles_changed")
        .expect("the role change is audited");
    assert_eq!(change.event.actor, format!("operator:{admin_pid}"));
    assert_eq!(change.event.data["before"], json!(["helpdesk"]));
    assert_eq!(change.event.data["after"], json!(["helpdesk", "security"]));

    // Only an admin grants roles.
    let desk = operator_token(&server, HELPDESK).await;
    let by_desk = put_roles(&server, &desk, ISSUER, json!(["issuance", "admin"])).await;
    assert_problem(&by_desk, 403, "forbidden");
}

// ---- expiry ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_expiry_sweep_expires_an_issued_means_whose_code_ran_out() {
    let (server, registrar, issuer) = with_applicant().await;
    let issued = issue(&server, &registrar, &issuer, APPLICANT).await;
    let active = issue(&server, &registrar, &issuer, APPLICANT).await;
    activate(&server, APPLICANT, &active.activation_code, APPLICANT_PASSWORD).await;

    // Nothing is due yet.
    assert_eq!(
        eidgate::lifecycle::service::expire_due(&server.app.lifecycle)
            .await
            .unwrap(),
        0
    );
    assert_eq!(state_of(&server, &issued.id).await, "issued");

    server.app.clock.advance(72 * HOUR + 1);
    let n = eidgate::lifecycle::service::expire_due(&server.app.lifecycle)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(state_of(&server, &issued.id).await, "expired");
    assert_eq!(
        state_of(&server, &active.id).await,
        "active",
        "an active means is not touched"
    );
    assert_eq!(
        count_events(&server, &format!("means:{}", issued.id), "means.expired").await,
        1
    );
    // A second sweep finds nothing more.
    assert_eq!(
        eidgate::lifecycle::service::expire_due(&server.app.lifecycle)
            .await
            .unwrap(),
        0
    );
}

// ---- the holder's self-service ---------------------------------------------------------

/// Logs the fixture holder in with `browser` (SSO session cookie kept).
async fn holder_session(server: &TestServer, browser: &reqwest::Client) {
    let (_, challenge) = pkce();
    let flow = start_login(browser, &authorize_url(server, &auth_params("rp", &challenge))).await;
    let (status, body) = password_step(server, browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!((status, body["next"].as_str()), (200, Some("done")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_1_holder_lists_and_suspends_own_means_on_the_account_api() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    let holder = browser();

    // Without a session: nothing.
    let anonymous = holder.get(server.at("/account/api/means")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    holder_session(&server, &holder).await;
    let listed = holder.get(server.at("/account/api/means")).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["cache-control"], "no-store");
    let listed: Value = listed.json().await.unwrap();
    let ids: Vec<&str> = listed["means"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [staff.holder_means.as_str()], "only the holder's own means");
    assert_eq!(listed["means"][0]["state"], "active");

    let path = format!("/account/api/means/{}/suspend", staff.holder_means);
    // Someone else's means: not found, and nothing changes.
    let other = &staff.own_means[HELPDESK];
    let foreign = holder
        .post(server.at(&format!("/account/api/means/{other}/suspend")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    assert_eq!(state_of(&server, other).await, "active");
    // Cross-origin requests are refused: another site, and an origin that is only a
    // prefix of ours.
    let prefix = &server.url[..server.url.len() - 1];
    for origin in ["https://evil.example", prefix] {
        let r = holder
            .post(server.at(&path))
            .header("origin", origin)
            .json(&json!({"reason": "lost"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "Origin {origin}");
    }
    // A form (what a cross-site page can send without CORS) is refused too.
    let form = holder
        .post(server.at(&path))
        .form(&[("reason", "lost")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    assert_eq!(state_of(&server, &staff.holder_means).await, "active");

    // Same origin, JSON: suspended.
    let ok = holder
        .post(server.at(&path))
        .header("origin", server.url.as_str())
        .json(&json!({"reason": "phone stolen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["state"], "suspended");
    assert_eq!(state_of(&server, &staff.holder_means).await, "suspended");
    let records = audit_events(&server, &format!("means:{}", staff.holder_means)).await;
    let event = records.last().unwrap();
    assert_eq!(event.event.event_type, "means.suspended");
    assert!(event.event.actor.starts_with("holder:"), "{}", event.event.actor);

    // Login is refused at once, and the session that rested on the means ends with it.
    let (status, body, _) = login_attempt(&server, "rp", HOLDER, PASSWORD, "openid").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("means-not-active"));
    let after = holder.get(server.at("/account/api/means")).send().await.unwrap();
    assert_eq!(
        after.status(),
        401,
        "a session of a suspended means must not keep working"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_1_holder_logs_in_to_the_account_page_without_a_relying_party() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = crate::support::server::browser();
    let r = browser.get(server.at("/account/api/means")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // /account/login is an ordinary authorization request of the built-in account client.
    let r = browser.get(server.at("/account/login")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.contains("client_id=eidgate-account"), "{authorize}");
    let back = crate::support::server::login(&server, &browser, &authorize).await;
    assert_eq!(back.path(), "/account");
    assert!(back.as_str().starts_with(&server.url));
    let r = browser.get(server.at("/account/api/means")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["means"].as_array().unwrap().len(), 1);
    assert_eq!(body["means"][0]["state"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_renew_1_renewal_rests_on_a_valid_means_of_the_same_holder_and_level() {
    let (server, registrar, issuer) = with_applicant().await;
    let first = issue(&server, &registrar, &issuer, APPLICANT).await;
    // Not yet active: no basis for a renewal.
    let renew = |renews: String| json!({"holder": APPLICANT, "kind": "password", "loa": "low", "renews": renews});
    let r = post(&server, "/admin/v1/means", &registrar, &renew(first.id.clone())).await;
    assert_problem(&r, 422, "unprocessable");
    activate(&server, APPLICANT, &first.activation_code, APPLICANT_PASSWORD).await;
    // Active means of the same holder and LoA: the renewal is registered with its basis.
    let r = post(&server, "/admin/v1/means", &registrar, &renew(first.id.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let renewal = r.body["id"].as_str().unwrap().to_owned();
    let applied = audit_events(&server, &format!("means:{renewal}")).await;
    assert_eq!(applied[0].event.data["renewal"]["basis"], "valid_means");
    assert_eq!(applied[0].event.data["renewal"]["means"], first.id.as_str());
    // A means of somebody else is no basis.
    let holder_means = server
        .app
        .store
        .means_of_holder(person_id(&server, HOLDER).await)
        .await
        .unwrap()[0]
        .id
        .to_string();
    let r = post(&server, "/admin/v1/means", &registrar, &renew(holder_means)).await;
    assert_problem(&r, 422, "unprocessable");
}
