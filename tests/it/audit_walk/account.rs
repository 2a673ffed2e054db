//! The holder's own routes on /account, the TOTP activation, the helpdesk's login reset and
//! two-person decisions, and an operator's password change (R-LIFE-1, R-AUTH-4, R-SEC-3,
//! R-SEC-4).

use serde_json::json;

use super::{flow_step, Walk};
use crate::support::operators::{
    activation_start, activation_step, activation_totp, align_to_step, helpdesk, issue_kind, operator_token,
    otpauth_secret, person_id, post, provision_staff, register, status_body, totp_now, CONSOLE, HELPDESK, ISSUER,
    OPERATOR_PASSWORD, REGISTRAR, SECURITY,
};
use crate::support::server::{
    auth_params, authorize_url, browser, password_step, pkce, set_param, start_login, Answer, TestServer, HOLDER,
};
use eidgate::audit::catalogue;

pub(crate) const ROUTES: &[&str] = &[
    "POST /account/api/means/{id}/password",
    "POST /account/api/means/{id}/revoke",
    "POST /account/api/means/{id}/suspend",
    "POST /activation/{id}/totp/confirm",
    "POST /authn/flows/{flow}/password_change",
    "POST /helpdesk/v1/approvals/{id}/{decision}",
    "POST /helpdesk/v1/means/{id}/login-reset",
];

const TOTP_PASSWORD: &str = "amber lantern seventeen";
const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_account_activation_helpdesk_and_operator_password_routes_write_their_records() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    server
        .import(json!({"means": [
            {"holder": HOLDER, "kind": "totp", "loa": "substantial", "password": TOTP_PASSWORD, "totp_secret": SEED}
        ]}))
        .await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    let desk = operator_token(&server, HELPDESK).await;
    let security = operator_token(&server, SECURITY).await;
    let mut walk = Walk::new(&server).await;

    // Two-person decisions: revocations on law-enforcement orders, one rejected, one approved.
    let order = status_body("law_enforcement_order", "Vilnius court order 2026-117");
    let asked = helpdesk(&server, &desk, &staff.holder_means, "revoke", "leo-1", &order).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let approval = asked.body["approval"].as_str().unwrap().to_owned();
    walk.skip().await;
    let decision = |id: &str, what: &str| format!("/helpdesk/v1/approvals/{id}/{what}");
    let rejected = post(
        &server,
        &decision(&approval, "reject"),
        &security,
        &json!({"reason": "order not verified"}),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    walk.check(
        "two-person request rejected",
        &["POST /helpdesk/v1/approvals/{id}/{decision}"],
        &[catalogue::APPROVAL_REJECTED],
    )
    .await;

    let reset = post(
        &server,
        &format!("/helpdesk/v1/means/{}/login-reset", staff.holder_means),
        &desk,
        &json!({"reason": "holder called after the lock-out notice"}),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    walk.check(
        "login defences reset",
        &["POST /helpdesk/v1/means/{id}/login-reset"],
        &[catalogue::MEANS_LOGIN_RESET],
    )
    .await;

    // A TOTP means activated: the confirmation completes it.
    let applicant = "LT/LT/38502020000";
    register(&server, &registrar, applicant, "substantial").await;
    let issued = issue_kind(&server, &registrar, &issuer, applicant, "totp", "substantial").await;
    let started = activation_start(&server, applicant, &issued.activation_code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let activation = started.body["activation"].as_str().unwrap();
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    assert_eq!(
        activation_step(&server, activation, "accept", &accept).await.status,
        200
    );
    let set = activation_step(
        &server,
        activation,
        "password",
        &json!({"password": "applicant pass phrase 2026"}),
    )
    .await;
    assert_eq!(set.body, json!({"next": "totp"}));
    let seed = otpauth_secret(
        activation_totp(&server, activation).await.body["otpauth_uri"]
            .as_str()
            .unwrap(),
    );
    walk.skip().await;
    let wrong = activation_step(&server, activation, "totp/confirm", &json!({"code": "000000"})).await;
    assert!(wrong.status >= 400, "{}", wrong.body);
    walk.check(
        "wrong TOTP confirmation code",
        &["POST /activation/{id}/totp/confirm"],
        &[catalogue::ACTIVATION_TOTP_FAILED],
    )
    .await;
    let done = activation_step(
        &server,
        activation,
        "totp/confirm",
        &json!({"code": totp_now(&server, &seed)}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    walk.check(
        "TOTP activation confirmed",
        &["POST /activation/{id}/totp/confirm"],
        &[catalogue::MEANS_ACTIVATED],
    )
    .await;

    // A two-person revocation of the new means, approved by a second person.
    let order = status_body("law_enforcement_order", "Vilnius court order 2026-118");
    let asked = helpdesk(&server, &desk, &issued.id, "revoke", "leo-2", &order).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let approval = asked.body["approval"].as_str().unwrap().to_owned();
    walk.skip().await;
    let approved = post(&server, &decision(&approval, "approve"), &security, &json!({})).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    walk.check(
        "two-person request approved",
        &["POST /helpdesk/v1/approvals/{id}/{decision}"],
        &[catalogue::APPROVAL_APPROVED, catalogue::MEANS_REVOKED],
    )
    .await;

    // The holder, logged in with the TOTP means, changes its password, then suspends the
    // password means and revokes the TOTP means on /account.
    let holder = browser();
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "acr_values", Some(SUBSTANTIAL));
    let flow = start_login(&holder, &authorize_url(&server, &params)).await;
    align_to_step(&server);
    let (status, body) = password_step(&server, &holder, &flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!((status, body), (200, json!({"next": "totp"})));
    let done = flow_step(
        &server,
        &holder,
        &flow,
        "totp",
        json!({"code": totp_now(&server, SEED)}),
    )
    .await;
    assert_eq!(done.body["next"], "done", "{}", done.body);
    let totp_means = server
        .app
        .store
        .means_of_holder(person_id(&server, HOLDER).await)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id.to_string() != staff.holder_means)
        .unwrap()
        .id
        .to_string();
    server.app.clock.advance(30);
    walk.skip().await;
    let account = |path: String, body: serde_json::Value| {
        let request = holder
            .post(server.at(&path))
            .header("origin", server.url.as_str())
            .json(&body);
        async move { Answer::from(request.send().await.unwrap()).await }
    };
    let changed = account(
        format!("/account/api/means/{totp_means}/password"),
        json!({"current_password": TOTP_PASSWORD, "code": totp_now(&server, SEED),
               "new_password": "copper meadow ninety one"}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    walk.check(
        "holder changes a password",
        &["POST /account/api/means/{id}/password"],
        &[catalogue::MEANS_PASSWORD_CHANGED],
    )
    .await;
    let suspended = account(
        format!("/account/api/means/{}/suspend", staff.holder_means),
        json!({"reason": "phone stolen"}),
    )
    .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    walk.check(
        "holder suspends a means",
        &["POST /account/api/means/{id}/suspend"],
        &[catalogue::MEANS_SUSPENDED],
    )
    .await;
    let revoked = account(
        format!("/account/api/means/{totp_means}/revoke"),
        json!({"reason": "phone lost for good"}),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    walk.check(
        "holder revokes a means",
        &["POST /account/api/means/{id}/revoke"],
        &[catalogue::MEANS_REVOKED],
    )
    .await;

    // An operator whose password expired changes it within the login.
    server.app.clock.advance(31 * 86_400);
    let console = browser();
    let (_, challenge) = pkce();
    let flow = start_login(&console, &authorize_url(&server, &auth_params(CONSOLE, &challenge))).await;
    let (status, body) = password_step(&server, &console, &flow, HELPDESK, OPERATOR_PASSWORD).await;
    assert_eq!((status, &body["next"]), (200, &json!("password_change")), "{body}");
    walk.skip().await;
    let changed = flow_step(
        &server,
        &console,
        &flow,
        "password_change",
        json!({"new_password": "second operator phrase 2026"}),
    )
    .await;
    assert_eq!(changed.body["next"], "totp", "{}", changed.body);
    walk.check(
        "operator changes an expired password",
        &["POST /authn/flows/{flow}/password_change"],
        &[catalogue::OPERATOR_PASSWORD_CHANGED],
    )
    .await;
    walk.finish(ROUTES);
}
