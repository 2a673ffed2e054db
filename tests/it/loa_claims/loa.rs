//! LoA policy and step-up: caps from configuration, unmet levels, step-up ceremonies,
//! idle lapse, what discovery announces (R-AUTH-2, R-SUP-2).

use eidgate::domain::loa::{Loa, LoaCaps};
use serde_json::{json, Value};

use super::*;
use crate::support::operators::{align_to_step, count_events, operator_token, ADMIN, HELPDESK};
use crate::support::server::{
    auth_params, authorize_url, jwt_part, password_step, pkce, query, set_param, Answer, TestServer, HOLDER,
};

#[tokio::test]
async fn r_auth_2_r_sup_2_substantial_with_totp_then_a_withdrawn_cap_is_followed_by_the_next_login() {
    let server = server(vec![]).await;
    let login = begin(
        &server,
        "rp",
        &[("acr_values", Some(SUBSTANTIAL)), ("scope", Some("openid"))],
    )
    .await;
    assert_eq!(
        flow_info(&server, &login).await["methods"],
        json!(["smartcard", "webauthn", "password_totp"])
    );
    let done = totp_login(&server, &login, OTHER, OTHER_SEED).await;
    let id = jwt_part(
        tokens(&server, &login, "rp", &done).await["id_token"].as_str().unwrap(),
        1,
    );
    assert_eq!(id["acr"], SUBSTANTIAL);
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));

    // The supervisor withdraws substantial from password + TOTP.
    let change = json!({"caps": {"totp": "low"}, "reason": "supervisor decision 2026/17"});
    let put_caps = |who: &'static str| {
        let server = &server;
        let change = &change;
        async move {
            let token = operator_token(server, who).await;
            crate::support::operators::call(
                server,
                reqwest::Method::PUT,
                "/admin/v1/loa/caps",
                Some(&token),
                Some(change),
                None,
            )
            .await
        }
    };
    let answer = put_caps(ADMIN).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["in_force"]["totp"], "low");
    assert_eq!(count_events(&server, "loa_caps", "loa.caps_changed").await, 1);
    // Only an admin may do that.
    assert_eq!(put_caps(HELPDESK).await.status, 403);

    // The next login at substantial is no longer offered password + TOTP, and ends
    // unmet; at low, the same means now yields low.
    let login = begin(
        &server,
        "rp",
        &[("acr_values", Some(SUBSTANTIAL)), ("scope", Some("openid"))],
    )
    .await;
    assert_eq!(
        flow_info(&server, &login).await["methods"],
        json!(["smartcard", "webauthn"])
    );
    align_to_step(&server);
    let (status, body) = password_step(&server, &login.browser, &login.flow, OTHER, TOTP_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
    let login = begin(&server, "rp", &[("scope", Some("openid"))]).await;
    let done = totp_login(&server, &login, OTHER, OTHER_SEED).await;
    let id = jwt_part(
        tokens(&server, &login, "rp", &done).await["id_token"].as_str().unwrap(),
        1,
    );
    assert_eq!(id["acr"], LOW);
}

#[tokio::test]
async fn r_sup_2_a_reloaded_configuration_cap_applies_to_the_next_login_without_restart() {
    let server = server(vec![]).await;
    let lowered = LoaCaps {
        totp: Loa::Low,
        ..LoaCaps::default()
    };
    server.app.reload_loa_caps(lowered).await.unwrap();
    assert_eq!(count_events(&server, "config", "config.loa_caps_reloaded").await, 1);
    let login = begin(&server, "rp", &[("scope", Some("openid"))]).await;
    let done = totp_login(&server, &login, OTHER, OTHER_SEED).await;
    let id = jwt_part(
        tokens(&server, &login, "rp", &done).await["id_token"].as_str().unwrap(),
        1,
    );
    assert_eq!(id["acr"], LOW);
    // Back to the defaults: substantial again.
    server.app.reload_loa_caps(LoaCaps::default()).await.unwrap();
    let login = begin(
        &server,
        "rp",
        &[("acr_values", Some(SUBSTANTIAL)), ("scope", Some("openid"))],
    )
    .await;
    let done = totp_login(&server, &login, OTHER, OTHER_SEED).await;
    let id = jwt_part(
        tokens(&server, &login, "rp", &done).await["id_token"].as_str().unwrap(),
        1,
    );
    assert_eq!(id["acr"], SUBSTANTIAL);
}

#[tokio::test]
async fn r_auth_2_high_requested_of_a_password_totp_holder_ends_unmet_without_a_code() {
    let server = server(vec![]).await;
    let high = "http://eidas.europa.eu/LoA/high";
    let login = begin(&server, "rp", &[("acr_values", Some(high))]).await;
    let info = flow_info(&server, &login).await;
    assert_eq!(info["requested_loa"], "high");
    assert_eq!(info["methods"], json!(["smartcard", "webauthn"]));
    let (status, body) = password_step(&server, &login.browser, &login.flow, OTHER, TOTP_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done", "the second factor is not asked for: {body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
    assert!(query(&back, "code").is_none());
    assert_eq!(query(&back, "state").as_deref(), Some("st-1"));
    // Also through the essential `acr` claim.
    let claims = json!({"id_token": {"acr": {"essential": true, "values": [high]}}}).to_string();
    let login = begin(&server, "rp", &[("claims", Some(&claims))]).await;
    assert_eq!(flow_info(&server, &login).await["requested_loa"], "high");
}

#[tokio::test]
async fn step_up_a_low_session_asked_for_substantial_runs_a_new_ceremony_and_its_amr() {
    let server = server(vec![]).await;
    let password = crate::support::server::PASSWORD;
    let first = begin(&server, "rp", &[]).await;
    let (_, body) = password_step(&server, &first.browser, &first.flow, HOLDER, password).await;
    let t = tokens(
        &server,
        &first,
        "rp",
        &Answer {
            status: 200,
            headers: Default::default(),
            body,
        },
    )
    .await;
    assert_eq!(jwt_part(t["id_token"].as_str().unwrap(), 1)["acr"], LOW);
    // The low session does not answer a substantial request, not even with prompt=none.
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "acr_values", Some(SUBSTANTIAL));
    set_param(&mut params, "prompt", Some("none"));
    let r = first.browser.get(authorize_url(&server, &params)).send().await.unwrap();
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query(&to, "error").as_deref(), Some("login_required"));
    // A new ceremony with the stronger means; amr is that ceremony's.
    let login = begin_in(
        &server,
        first.browser.clone(),
        "rp",
        &[("acr_values", Some(SUBSTANTIAL))],
    )
    .await;
    let done = totp_login(&server, &login, HOLDER, SEED).await;
    let id = jwt_part(
        tokens(&server, &login, "rp", &done).await["id_token"].as_str().unwrap(),
        1,
    );
    assert_eq!(id["acr"], SUBSTANTIAL);
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn a_substantial_session_lapses_after_30_minutes_idle_and_prompt_none_gets_login_required() {
    let server = server(vec![]).await;
    let login = begin(&server, "rp", &[("acr_values", Some(SUBSTANTIAL))]).await;
    let done = totp_login(&server, &login, HOLDER, SEED).await;
    tokens(&server, &login, "rp", &done).await;
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "prompt", Some("none"));
    // 20 minutes idle: the session answers (and counts as used).
    server.app.clock.advance(20 * 60);
    let r = login.browser.get(authorize_url(&server, &params)).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("code="));
    // 20 more minutes: still within 30 minutes of the last use.
    server.app.clock.advance(20 * 60);
    let r = login.browser.get(authorize_url(&server, &params)).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("code="));
    // 31 minutes idle: lapsed.
    server.app.clock.advance(31 * 60);
    let r = login.browser.get(authorize_url(&server, &params)).send().await.unwrap();
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query(&to, "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn discovery_lists_acr_values_claims_and_scopes_and_nothing_that_does_not_work() {
    let server = TestServer::start().await;
    let doc: Value = reqwest::get(server.at("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for acr in [LOW, SUBSTANTIAL, "http://eidas.europa.eu/LoA/high"] {
        assert!(doc["acr_values_supported"].as_array().unwrap().iter().any(|v| v == acr));
    }
    for claim in [
        "person_identifier",
        "birthdate",
        "legal_person_identifier",
        "legal_name",
        "euid",
    ] {
        assert!(
            doc["claims_supported"].as_array().unwrap().iter().any(|v| v == claim),
            "{claim}"
        );
    }
    for scope in ["openid", "eidas", "eidas_legal"] {
        assert!(
            doc["scopes_supported"].as_array().unwrap().iter().any(|v| v == scope),
            "{scope}"
        );
    }
    // Only what works is advertised (issue 20): no `email` scope (no such claim is
    // released), no `select_account` (it changes nothing); `ui_locales_supported` lists
    // the languages the pages speak (issue 24).
    assert!(!doc["scopes_supported"].as_array().unwrap().iter().any(|v| v == "email"));
    let prompts = doc["prompt_values_supported"].as_array().unwrap();
    assert!(!prompts.iter().any(|v| v == "select_account"), "{prompts:?}");
    assert!(prompts.iter().any(|v| v == "login") && prompts.iter().any(|v| v == "none"));
    assert_eq!(doc["ui_locales_supported"], serde_json::json!(["en", "lt", "lv"]));
}
