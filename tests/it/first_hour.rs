//! The README's "First hour" path, step by step, from `examples/first-hour.json` (issue
//! 24): the file imports cleanly (twice: nothing changes), the demo client's redirect works
//! with the PKCE pair the README prints, its `sub` is pairwise (a names-only client), the two
//! operators issue a TOTP means whose activation code lands in the outbox and opens the
//! activation, and the helpdesk operator logs in to the console. If the README's commands
//! drift from the product, this test fails.

use serde_json::{json, Value};

use crate::helpdesk_console::{console_login, open_session};
use crate::support::operators::{activation_start, apply, approve, delivered, operator_code, totp_step};
use crate::support::server::{
    authorize_url, browser, jwt_part, password_step, post_form, query, start_login, Answer, TestServer,
};

const FILE: &str = include_str!("../../examples/first-hour.json");
/// RFC 7636 appendix B: the verifier and challenge the README's authorize URL uses.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "http://127.0.0.1:9000/cb";
const HOLDER: &str = "LT/LT/38001085718";
const REGISTRAR: &str = "LT/LT/39001010011";
const ISSUER: &str = "LT/LT/39001010022";
const OPERATOR_PASSWORD: &str = "operator pass phrase 2026";

fn secret_of(doc: &Value, client: &str) -> String {
    doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client)
        .unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The README's by-hand code flow: open the authorize URL, log in, read the code from the
/// callback's address, exchange it with curl's form.
async fn by_hand(server: &TestServer, doc: &Value, client: &str, scope: &str, who: &str, password: &str) -> Value {
    let params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", CALLBACK),
        ("scope", scope),
        ("state", "first-hour"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    let (status, mut body) = password_step(server, &browser, &flow, who, password).await;
    assert_eq!(status, 200, "{body}");
    if body["next"] == "totp" {
        body = totp_step(server, &browser, &flow, &operator_code(server, who)).await;
    }
    if body["next"] == "consent" {
        let r = browser
            .post(server.at(&format!("/authn/flows/{flow}/consent")))
            .json(&json!({ "approve": true }))
            .send()
            .await
            .unwrap();
        let answer = Answer::from(r).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        body = answer.body;
    }
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    let code = query(&back, "code").unwrap();
    let secret = secret_of(doc, client);
    let answer = post_form(
        server,
        "/token",
        Some((client, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

#[tokio::test]
async fn r_iss_1_issue_24_the_readme_first_hour_path_works_as_written() {
    let doc: Value = serde_json::from_str(FILE).unwrap();
    let server = TestServer::start().await;
    let first = server.import(doc.clone()).await;
    assert_eq!(first.means_ids.len(), 3);
    let again = server.import(doc.clone()).await;
    let created = &again.created;
    assert_eq!(
        (created.clients, created.persons, created.operators, created.means),
        (0, 0, 0, 0),
        "the same file again creates nothing"
    );
    assert_eq!(again.unchanged.means, 3);

    // The demo client: a login whose redirect works, a pairwise sub (names only).
    let tokens = by_hand(
        &server,
        &doc,
        "demo",
        "openid eidas",
        HOLDER,
        "correct horse battery staple",
    )
    .await;
    let id = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert!(!id["sub"].as_str().unwrap().contains("38001085718"), "{id}");
    let info: Value = reqwest::Client::new()
        .get(server.at("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&info["given_name"], &info["sub"]),
        (&json!("Jonas"), &id["sub"]),
        "{info}"
    );
    assert!(info.get("person_identifier").is_none(), "{info}");

    // Two operators issue a TOTP means; its activation code is in the outbox.
    let registrar = by_hand(&server, &doc, "ops", "openid", REGISTRAR, OPERATOR_PASSWORD).await;
    let registrar = registrar["access_token"].as_str().unwrap();
    let applied = apply(&server, registrar, HOLDER, "totp", "substantial").await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let means = applied.body["id"].as_str().unwrap().to_owned();
    let issuer = by_hand(&server, &doc, "ops", "openid", ISSUER, OPERATOR_PASSWORD).await;
    let approved = approve(&server, issuer["access_token"].as_str().unwrap(), &means).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let code = delivered(&server, &means, "activation_code");
    let started = activation_start(&server, HOLDER, &code).await;
    assert_eq!(started.status, 200, "{}", started.body);

    // The helpdesk console, with the issuance officer's helpdesk role.
    let (browser, code, verifier) = console_login(&server, ISSUER, OPERATOR_PASSWORD, None).await;
    let (opened, _) = open_session(&server, &browser, &code, &verifier).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.body["roles"], json!(["helpdesk", "issuance"]));
}
