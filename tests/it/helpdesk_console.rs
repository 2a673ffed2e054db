//! The helpdesk console logs the operator in through this provider (issue 24): the page
//! runs the code flow with PKCE as the built-in client `eidgate-helpdesk`, the server
//! redeems the code for it and keeps the refresh token in an `HttpOnly` cookie; nobody
//! pastes a token (R-SEC-3, R-SEC-4, R-LIFE-1). Each test plays what the page does over
//! HTTP, and the attackers: a stranger with a stolen code, another site, a holder who is
//! not an operator, a replayed refresh cookie.

use serde_json::{json, Value};

use crate::support::operators::{operator_code, provision_staff, totp_step, HELPDESK, OPERATOR_PASSWORD};
use crate::support::server::{
    auth_params, authorize_url, browser, password_step, pkce, query, set_param, start_login, Answer, TestServer, HOLDER,
};
use eidgate::admin::builtin::HELPDESK_CLIENT;

/// A login through the console client, as the page starts it: `(browser, code, verifier)`.
/// An operator with a TOTP means also takes that step.
pub(crate) async fn console_login(
    server: &TestServer,
    identifier: &str,
    password: &str,
    totp: Option<&str>,
) -> (reqwest::Client, String, String) {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(HELPDESK_CLIENT, &challenge);
    set_param(&mut params, "redirect_uri", Some(&server.at("/helpdesk")));
    set_param(&mut params, "scope", Some("openid offline_access"));
    set_param(&mut params, "nonce", None);
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    let (status, mut body) = password_step(server, &browser, &flow, identifier, password).await;
    assert_eq!(status, 200, "{body}");
    if body["next"] == "totp" {
        let code = match totp {
            Some(code) => code.to_owned(),
            None => operator_code(server, identifier),
        };
        body = totp_step(server, &browser, &flow, &code).await;
    }
    assert_eq!(body["next"], "done", "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(&server.at("/helpdesk?")), "{back}");
    assert_eq!(query(&back, "state").as_deref(), Some("st-1"));
    (browser, query(&back, "code").unwrap(), verifier)
}

/// A POST of the page (its `Origin`, its cookies).
pub(crate) async fn page_post(
    server: &TestServer,
    browser: &reqwest::Client,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (Answer, Option<String>) {
    let mut request = browser.post(server.at(path)).header("Origin", &server.url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("eidgate_helpdesk="));
    (Answer::from(r).await, cookie)
}

/// The page opening its session with `code` and `verifier`: the answer and the refresh cookie.
pub(crate) async fn open_session(
    server: &TestServer,
    browser: &reqwest::Client,
    code: &str,
    verifier: &str,
) -> (Answer, Option<String>) {
    let body = json!({"code": code, "code_verifier": verifier});
    page_post(server, browser, "/helpdesk/session", Some(body), None).await
}

async fn lookup(server: &TestServer, token: &str) -> u16 {
    let url = server.at(&format!("/helpdesk/v1/holders?identifier={}", urlencode(HOLDER)));
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn r_sec_3_issue_24_the_helpdesk_console_logs_in_through_the_provider_and_keeps_the_session() {
    let server = TestServer::start().await;
    provision_staff(&server).await;

    // The page asks for no token; it starts the code flow of its built-in client.
    let page = reqwest::get(server.at("/helpdesk"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("id=\"token\""), "no pasted token field");
    let script = reqwest::get(server.at("/static/helpdesk.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for part in ["eidgate-helpdesk", "code_challenge_method", "S256", "helpdesk/session"] {
        assert!(script.contains(part), "{part}");
    }
    // The built-in client: an operators' console whose logins reach the operator level.
    let client = server
        .app
        .store
        .client(&HELPDESK_CLIENT.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(client.operator_console && client.require_pkce);
    assert_eq!(client.minimum_acr, Some(server.app.config.operators.minimum_acr));
    assert_eq!(client.redirect_uris, vec![server.at("/helpdesk")]);

    let (browser, code, verifier) = console_login(&server, HELPDESK, OPERATOR_PASSWORD, None).await;
    let (opened, cookie) = open_session(&server, &browser, &code, &verifier).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.body["roles"], json!(["helpdesk"]));
    assert!(
        opened.body.get("refresh_token").is_none(),
        "the refresh token stays in the cookie"
    );
    let cookie = cookie.expect("refresh cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let first = opened.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(lookup(&server, &first).await, 200);

    // Kept with refresh: a new access token for the cookie, which rotates.
    let old_cookie = cookie.split(';').next().unwrap().to_owned();
    let (renewed, rotated) = page_post(&server, &browser, "/helpdesk/session/refresh", None, None).await;
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    assert!(
        rotated.is_some_and(|c| !c.starts_with(&old_cookie)),
        "the refresh cookie rotates"
    );
    let second = renewed.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(lookup(&server, &second).await, 200);

    // Logging out revokes the session's tokens and clears the cookie; it is recorded.
    let (out, cleared) = page_post(&server, &browser, "/helpdesk/session/logout", None, Some(&second)).await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(cleared.is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(lookup(&server, &second).await, 401);
    let (after, _) = page_post(&server, &browser, "/helpdesk/session/refresh", None, None).await;
    assert_eq!(after.status, 401, "{}", after.body);
    let records = server.app.store.audit_after(0, 100_000).await.unwrap();
    assert!(records
        .iter()
        .any(|r| r.event.event_type == "logout" && r.event.subject == format!("client:{HELPDESK_CLIENT}")));
}

#[tokio::test]
async fn r_sec_3_issue_24_a_stolen_console_code_is_useless_without_the_verifier_and_the_page() {
    let server = TestServer::start().await;
    provision_staff(&server).await;

    // Another site's page cannot open or renew a session (no Origin, or a foreign one).
    let (browser, code, verifier) = console_login(&server, HELPDESK, OPERATOR_PASSWORD, None).await;
    let body = json!({"code": code, "code_verifier": verifier});
    for origin in [None, Some("https://evil.example")] {
        let mut request = browser.post(server.at("/helpdesk/session")).json(&body);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let answer = Answer::from(request.send().await.unwrap()).await;
        assert_eq!(answer.status, 403, "{origin:?}: {}", answer.body);
    }
    // Without the page's verifier the code is refused (and spent: single use).
    let (_, wrong) = pkce();
    let (refused, cookie) = open_session(&server, &browser, &code, &wrong).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(cookie.is_none());
    let (replayed, _) = page_post(&server, &browser, "/helpdesk/session", Some(body), None).await;
    assert_eq!(replayed.status, 401, "{}", replayed.body);

    // A code issued to another client (the fixture RP) is not the console's.
    let (verifier, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "scope", Some("openid"));
    let rp_browser = crate::support::server::browser();
    let flow = start_login(&rp_browser, &authorize_url(&server, &params)).await;
    let (status, done) = password_step(&server, &rp_browser, &flow, HOLDER, crate::support::server::PASSWORD).await;
    assert_eq!(status, 200, "{done}");
    let back = url::Url::parse(done["redirect_to"].as_str().unwrap()).unwrap();
    let (foreign, _) = page_post(
        &server,
        &rp_browser,
        "/helpdesk/session",
        Some(json!({"code": query(&back, "code").unwrap(), "code_verifier": verifier})),
        None,
    )
    .await;
    assert_eq!(foreign.status, 401, "{}", foreign.body);

    // A renewal without the cookie is no session.
    let (none, _) = page_post(
        &server,
        &crate::support::server::browser(),
        "/helpdesk/session/refresh",
        None,
        None,
    )
    .await;
    assert_eq!(none.status, 401, "{}", none.body);
}

#[tokio::test]
async fn r_sec_3_issue_24_a_holder_who_is_not_an_operator_gets_no_console_session() {
    const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const TOTP_PASSWORD: &str = "amber lantern seventeen";
    let server = TestServer::start().await;
    provision_staff(&server).await;
    // The holder has a substantial means, so the login itself succeeds.
    server
        .import(json!({"means": [
            {"holder": HOLDER, "kind": "totp", "loa": "substantial", "password": TOTP_PASSWORD, "totp_secret": SEED}
        ]}))
        .await;
    let code = crate::support::operators::totp_now(&server, SEED);
    let (browser, code, verifier) = console_login(&server, HOLDER, TOTP_PASSWORD, Some(&code)).await;
    let (refused, cookie) = open_session(&server, &browser, &code, &verifier).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(cookie.is_none(), "no refresh cookie for a non-operator");
    let records = server.app.store.audit_after(0, 100_000).await.unwrap();
    assert!(records.iter().any(|r| r.event.event_type == "operator.access_denied"));
}
