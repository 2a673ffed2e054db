//! LoA policy and step-up, the eIDAS minimum data set, consent, legal persons and mandates
//! (DESIGN "Authentication and LoA", "Claims", "More contracts"; R-AUTH-2, R-DATA-1..4,
//! R-BIND-1, R-REG-5, R-SUP-2).

mod claims;
mod loa;
mod mandates;

use serde_json::{json, Value};

use crate::support::operators::{align_to_step, provision_staff, totp_now};
use crate::support::server::{
    auth_params, authorize_url, browser, exchange, password_step, pkce, query, set_param, start_login, Answer,
    TestServer, HOLDER, REDIRECT,
};

const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
const LOW: &str = "http://eidas.europa.eu/LoA/low";
const TOTP_PASSWORD: &str = "amber lantern seventeen";
const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// A holder whose only means is password + TOTP (proofed at substantial).
const OTHER: &str = "LT/LT/49001010099";
const OTHER_SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// A legal person.
const COMPANY: &str = "LT/LT/304123456";

/// Staff, the fixture, a TOTP means for `HOLDER` and one for `OTHER`, and `clients`.
async fn server(clients: Vec<Value>) -> TestServer {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    server
        .import(json!({
            "clients": clients,
            "persons": [{
                "identifier": OTHER, "given_name": "Ona", "family_name": "Onaitė",
                "birthdate": "1990-01-01", "proofing_loa": "substantial"
            }],
            "means": [
                {"holder": HOLDER, "kind": "totp", "loa": "substantial", "password": TOTP_PASSWORD, "totp_secret": SEED},
                {"holder": OTHER, "kind": "totp", "loa": "substantial", "password": TOTP_PASSWORD, "totp_secret": OTHER_SEED}
            ]
        }))
        .await;
    server
}

/// A login in progress.
struct Login {
    browser: reqwest::Client,
    flow: String,
    verifier: String,
}

/// Starts a login at `client` with `extra` parameters (a `None` value removes one).
async fn begin(server: &TestServer, client: &str, extra: &[(&str, Option<&str>)]) -> Login {
    begin_in(server, browser(), client, extra).await
}

async fn begin_in(
    server: &TestServer,
    browser: reqwest::Client,
    client: &str,
    extra: &[(&str, Option<&str>)],
) -> Login {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(client, &challenge);
    for (k, v) in extra {
        set_param(&mut params, k, *v);
    }
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    Login {
        browser,
        flow,
        verifier,
    }
}

async fn step(server: &TestServer, login: &Login, name: &str, body: Value) -> Answer {
    let r = login
        .browser
        .post(server.at(&format!("/authn/flows/{}/{name}", login.flow)))
        .json(&body)
        .send()
        .await
        .unwrap();
    Answer::from(r).await
}

async fn flow_info(server: &TestServer, login: &Login) -> Value {
    let r = login
        .browser
        .get(server.at(&format!("/authn/flows/{}", login.flow)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Password then one-time code of `who`'s TOTP means: the answer of the last step.
async fn totp_login(server: &TestServer, login: &Login, who: &str, seed: &str) -> Answer {
    align_to_step(server);
    let (status, body) = password_step(server, &login.browser, &login.flow, who, TOTP_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"next": "totp"}));
    step(server, login, "totp", json!({ "code": totp_now(server, seed) })).await
}

/// The redirect of a `done` answer.
fn redirect_of(answer: &Answer) -> url::Url {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["next"], "done", "{}", answer.body);
    url::Url::parse(answer.body["redirect_to"].as_str().unwrap()).unwrap()
}

/// Exchanges the code of a `done` answer: the token response.
async fn tokens(server: &TestServer, login: &Login, client: &str, done: &Answer) -> Value {
    let back = redirect_of(done);
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let answer = exchange(server, client, &code, &login.verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

async fn userinfo(server: &TestServer, access_token: &str) -> Value {
    let r = reqwest::Client::new()
        .get(server.at("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
