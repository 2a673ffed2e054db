//! Pushed authorization requests (RFC 9126): an authenticated client pushes its request
//! and gets a single-use `request_uri`; the front channel then carries only `client_id`
//! and that URI, and only the pushed parameters count. Clients registered with
//! `require_par` are refused on the front channel (R-AUTH-4, R-SEC-1).

use serde_json::json;

use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, exchange, jwt_part, location, password_step, pkce, post_form,
    query, set_param, start_login, Answer, KeyClient, TestServer, HOLDER, JWT_BEARER, PASSWORD, REDIRECT, SECRET,
};

const URN: &str = "urn:ietf:params:oauth:request_uri:";

/// Pushes `params` (as pairs) to /par with Basic credentials of `client_id`.
async fn push(server: &TestServer, client_id: &str, params: &[(String, String)]) -> Answer {
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post_form(server, "/par", Some((client_id, SECRET)), &form).await
}

/// The front-channel URL for a pushed request.
fn front(server: &TestServer, client_id: &str, request_uri: &str) -> String {
    authorize_url(
        server,
        &[
            ("client_id".into(), client_id.into()),
            ("request_uri".into(), request_uri.into()),
        ],
    )
}

/// Pushes a good request of `client_id`; returns the `request_uri` and the PKCE verifier.
async fn pushed(server: &TestServer, client_id: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(client_id, &challenge);
    set_param(&mut params, "client_id", None);
    let answer = push(server, client_id, &params).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    (answer.body["request_uri"].as_str().unwrap().to_owned(), verifier)
}

async fn assert_untrusted_page(response: reqwest::Response) {
    assert_eq!(response.status(), 400);
    assert_eq!(location(&response), None, "never a redirect");
    assert!(response.headers().get(reqwest::header::SET_COOKIE).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_pushed_request_completes_the_code_flow() {
    let server = TestServer::start().await;
    server.provision().await;
    let (verifier, challenge) = pkce();
    let answer = push(&server, "rp", &auth_params("rp", &challenge)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let request_uri = answer.body["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with(URN), "{request_uri}");
    assert!(
        request_uri.len() > URN.len() + 40,
        "request_uri needs enough entropy: {request_uri}"
    );
    assert_eq!(
        answer.body["expires_in"].as_u64(),
        Some(server.app.config.tokens.par_ttl.as_secs())
    );

    let browser = browser();
    let flow = start_login(&browser, &front(&server, "rp", request_uri)).await;
    let (status, body) = password_step(&server, &browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    assert_eq!(query(&back, "state").as_deref(), Some("st-1"), "the pushed state");
    assert_eq!(query(&back, "iss").as_deref(), Some(server.url.as_str()));
    let code = query(&back, "code").unwrap();
    let tokens = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let claims = jwt_part(tokens.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["nonce"], "n-1", "the pushed nonce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_request_uri_is_single_use() {
    let server = TestServer::start().await;
    server.provision().await;
    let (request_uri, _) = pushed(&server, "rp").await;
    let url = front(&server, "rp", &request_uri);
    start_login(&browser(), &url).await;
    assert_untrusted_page(browser().get(&url).send().await.unwrap()).await;
    // An invented one is no better.
    let invented = format!("{URN}{}", eidgate::random::token());
    assert_untrusted_page(browser().get(front(&server, "rp", &invented)).send().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_request_uri_belongs_to_the_client_that_pushed_it() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({ "clients": [client_entry("rp-b", json!({}))] }))
        .await;
    let (request_uri, _) = pushed(&server, "rp").await;
    assert_untrusted_page(
        browser()
            .get(front(&server, "rp-b", &request_uri))
            .send()
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_only_the_pushed_parameters_count() {
    let server = TestServer::start().await;
    server.provision().await;
    let (request_uri, _) = pushed(&server, "rp").await;
    // Front-channel additions (another state, prompt=none, no PKCE) are ignored.
    let mut params = vec![
        ("client_id".to_owned(), "rp".to_owned()),
        ("request_uri".to_owned(), request_uri),
    ];
    set_param(&mut params, "state", Some("from-the-front"));
    set_param(&mut params, "prompt", Some("none"));
    let browser = browser();
    let r = browser.get(authorize_url(&server, &params)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // Not login_required: prompt=none was not pushed, so the login page is next.
    let to = location(&r).unwrap();
    let flow = to.strip_prefix("/login?flow=").unwrap_or_else(|| panic!("{to}"));
    let (status, body) = password_step(&server, &browser, flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert_eq!(
        query(&back, "state").as_deref(),
        Some("st-1"),
        "the pushed state, not the front one"
    );
    assert!(query(&back, "code").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_client_requiring_par_is_refused_on_the_front_channel() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({ "clients": [client_entry("rp-par", json!({"require_par": true}))] }))
        .await;
    let (_, challenge) = pkce();
    let r = browser()
        .get(authorize_url(&server, &auth_params("rp-par", &challenge)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers().get(reqwest::header::SET_COOKIE).is_none(),
        "no flow started"
    );
    let to = url::Url::parse(&location(&r).unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&to, "state").as_deref(), Some("st-1"));
    assert_eq!(query(&to, "iss").as_deref(), Some(server.url.as_str()));
    assert_eq!(query(&to, "code"), None);
    // Through PAR the same client gets to the login page.
    let (request_uri, _) = pushed(&server, "rp-par").await;
    start_login(&browser(), &front(&server, "rp-par", &request_uri)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_par_without_client_authentication_is_401() {
    let server = TestServer::start().await;
    server.provision().await;
    let (_, challenge) = pkce();
    let params = auth_params("rp", &challenge);
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = post_form(&server, "/par", None, &form).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_client");
    assert!(answer.header("www-authenticate").is_some());
    assert!(answer.body.get("request_uri").is_none());
    // A wrong secret is the same.
    let answer = post_form(
        &server,
        "/par",
        Some(("rp", "not-the-secret-0123456789abcdefgh")),
        &form,
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error(), "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_par_validates_the_request_when_it_is_pushed() {
    let server = TestServer::start().await;
    server.provision().await;
    let (_, challenge) = pkce();
    for (name, value, error) in [
        ("redirect_uri", Some("https://evil.example/cb"), "invalid_request"),
        ("response_type", Some("token"), "unsupported_response_type"),
        ("code_challenge", None, "invalid_request"),
        ("code_challenge_method", Some("plain"), "invalid_request"),
        (
            "request_uri",
            Some("urn:ietf:params:oauth:request_uri:x"),
            "invalid_request",
        ),
        ("request", Some("eyJhbGciOiJub25lIn0.e30."), "invalid_request_object"),
    ] {
        let mut params = auth_params("rp", &challenge);
        set_param(&mut params, name, value);
        let answer = push(&server, "rp", &params).await;
        assert_eq!(answer.status, 400, "{name}={value:?}: {}", answer.body);
        assert_eq!(answer.error(), error, "{name}={value:?}");
        assert!(answer.body.get("request_uri").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_par_accepts_private_key_jwt_with_issuer_token_or_par_audience() {
    // RFC 9126 §2: "the authorization server MUST accept its issuer identifier, token
    // endpoint URL, or pushed authorization request endpoint URL" as `aud`.
    let server = TestServer::start().await;
    server.provision().await;
    let client = KeyClient::new("rp-jwt");
    server.import(json!({ "clients": [client.entry()] })).await;
    let (_, challenge) = pkce();
    let mut params = auth_params(client.id, &challenge);
    set_param(&mut params, "client_id", None);
    for aud in [server.url.clone(), server.at("/token"), server.at("/par")] {
        let assertion = client.sign(json!({"alg": "ES256", "kid": "k1"}), &client.claims(&server, &aud));
        let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        form.push(("client_assertion_type", JWT_BEARER));
        form.push(("client_assertion", &assertion));
        let answer = post_form(&server, "/par", None, &form).await;
        assert_eq!(answer.status, 201, "aud {aud}: {}", answer.body);
    }
    let assertion = client.sign(
        json!({"alg": "ES256", "kid": "k1"}),
        &client.claims(&server, "https://other.example/par"),
    );
    let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    form.push(("client_assertion_type", JWT_BEARER));
    form.push(("client_assertion", &assertion));
    let answer = post_form(&server, "/par", None, &form).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
}
