//! The login API and the SSO session (DESIGN "Login API", CONTRACT): one answer for an
//! unknown identifier and a wrong password, lockout with `Retry-After`, flows bound to
//! their browser, problem+json for bad input, cancel, `prompt`, `max_age`, SSO, a level
//! that cannot be reached, and RP-initiated logout (R-AUTH-1, R-AUTH-4, R-SEC-5).

use serde_json::{json, Value};

use crate::support::problem::assert_problem_media_type;
use crate::support::server::{
    auth_params, authorize_url, browser, browser as fresh_browser, exchange, http, jwt_part, location, login,
    password_step, pkce, query, set_param, start_login, TestServer, HOLDER, PASSWORD, REDIRECT,
};

/// A good authorization request of the fixture RP with `state`, plus `extra` parameters.
fn request(server: &TestServer, state: &str, extra: &[(&str, &str)]) -> String {
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "state", Some(state));
    for (name, value) in extra {
        set_param(&mut params, name, Some(value));
    }
    authorize_url(server, &params)
}

/// The redirect of an /authorize call answered without interaction, parsed.
async fn redirect_to_client(browser: &reqwest::Client, url: &str) -> url::Url {
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = location(&r).unwrap();
    assert!(to.starts_with(REDIRECT), "expected a redirect to the client, got {to}");
    url::Url::parse(&to).unwrap()
}

/// Whether /authorize sends `browser` to the login page (interaction needed).
async fn goes_to_login(browser: &reqwest::Client, url: &str) -> bool {
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    location(&r).unwrap().starts_with("/login?flow=")
}

async fn post_json(browser: &reqwest::Client, url: String, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = browser.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

// ---- credentials and throttling --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_unknown_identifier_and_wrong_password_answer_alike() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let flow = start_login(&browser, &request(&server, "s", &[])).await;
    let url = server.at(&format!("/authn/flows/{flow}/password"));
    let (s1, h1, unknown) = post_json(
        &browser,
        url.clone(),
        json!({"identifier": "LT/LT/99999999999", "password": PASSWORD}),
    )
    .await;
    let (s2, h2, wrong) = post_json(
        &browser,
        url.clone(),
        json!({"identifier": HOLDER, "password": "wrong password"}),
    )
    .await;
    let (s3, _, malformed) = post_json(
        &browser,
        url,
        json!({"identifier": "not an identifier", "password": "x"}),
    )
    .await;
    for (status, headers) in [(s1, &h1), (s2, &h2)] {
        assert_eq!(status, 401);
        assert_problem_media_type(status, headers);
    }
    assert_eq!(s3, 401);
    assert_eq!(unknown, wrong, "the two failures must be indistinguishable");
    assert_eq!(unknown, malformed);
    assert_eq!(unknown["type"], "urn:eidgate:problem:invalid-credentials");
    assert_eq!(unknown["status"], 401);
    assert!(unknown.get("redirect_to").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_account_lockout_answers_429_with_retry_after() {
    // Two free attempts, the third starts the back-off (issue 19: per person, exponential).
    let server = TestServer::start_with(|c| c.login.backoff_free = 2).await;
    server.provision().await;
    let browser = browser();
    let flow = start_login(&browser, &request(&server, "s", &[])).await;
    for attempt in 1..=3 {
        let (status, body) = password_step(&server, &browser, &flow, HOLDER, "wrong password").await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    // The right password does not help once the account is locked.
    let r = browser
        .post(server.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({"identifier": HOLDER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_problem_media_type(429, r.headers());
    let retry: u64 = r.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=server.app.config.login.window.as_secs()).contains(&retry),
        "{retry}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:eidgate:problem:too-many-attempts");
    assert!(body.get("redirect_to").is_none(), "a locked account must not log in");
    // Other spellings of the same account are the same account.
    let (status, _) = password_step(&server, &browser, &flow, &format!(" {HOLDER} "), PASSWORD).await;
    assert_eq!(status, 429);
}

// ---- flows -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_flow_without_its_browser_cookie_is_not_found() {
    let server = TestServer::start().await;
    server.provision().await;
    let owner = browser();
    let flow = start_login(&owner, &request(&server, "s", &[])).await;
    let flow_url = server.at(&format!("/authn/flows/{flow}"));
    let password = json!({"identifier": HOLDER, "password": PASSWORD});

    // No cookie at all, and another browser with a cookie of its own.
    let other = browser();
    start_login(&other, &request(&server, "s", &[])).await;
    for client in [http(), other] {
        let r = client.get(&flow_url).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert_problem_media_type(404, r.headers());
        let (status, _, body) = post_json(&client, format!("{flow_url}/password"), password.clone()).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["type"], "urn:eidgate:problem:flow-not-found");
        let (status, _, _) = post_json(&client, format!("{flow_url}/cancel"), json!({})).await;
        assert_eq!(status, 404);
    }
    // The owner still can: the refused attempts did not spend the flow.
    let (status, body) = password_step(&server, &owner, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flow_describes_client_level_methods_and_claims() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let flow = start_login(&browser, &request(&server, "s", &[])).await;
    let r = browser
        .get(server.at(&format!("/authn/flows/{flow}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["client_name"], "Test RP");
    assert_eq!(body["requested_loa"], "low");
    assert_eq!(
        body["methods"],
        json!(["smartcard", "webauthn", "password_totp", "password"])
    );
    // The claims the holder is about to release: asked for (scope `eidas`) and allowed
    // for the client; `gender` is in the scope but not on the allow list.
    assert_eq!(
        body["claims"],
        json!(["birthdate", "family_name", "given_name", "person_identifier"]),
        "{body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        4,
        "exactly the contract fields: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_returns_access_denied_to_the_client() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let flow = start_login(&browser, &request(&server, "st-cancel", &[])).await;
    let (status, _, body) = post_json(&browser, server.at(&format!("/authn/flows/{flow}/cancel")), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
    let to = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT));
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some("st-cancel"));
    assert_eq!(query(&to, "iss").as_deref(), Some(server.url.as_str()));
    assert_eq!(query(&to, "code"), None);
    // The flow is over: it cannot be logged in afterwards.
    let (status, _) = password_step(&server, &browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_malformed_json_is_a_400_problem_and_spends_nothing() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let flow = start_login(&browser, &request(&server, "s", &[])).await;
    let url = server.at(&format!("/authn/flows/{flow}/password"));
    for body in [
        "{\"identifier\": ",
        "[]",
        "{\"identifier\": \"x\"}",
        "{\"identifier\": \"x\", \"password\": \"y\", \"extra\": 1}",
    ] {
        let r = browser
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_problem_media_type(400, r.headers());
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["type"], "urn:eidgate:problem:bad-request");
        assert_eq!(problem["status"], 400);
        assert!(problem["title"].is_string());
    }
    let (status, body) = password_step(&server, &browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "the flow survives bad input: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_wrong_content_type_is_415() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let flow = start_login(&browser, &request(&server, "s", &[])).await;
    let url = server.at(&format!("/authn/flows/{flow}/password"));
    let json_text = json!({"identifier": HOLDER, "password": PASSWORD}).to_string();
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut r = browser.post(&url).body(json_text.clone());
        if let Some(t) = content_type {
            r = r.header("content-type", t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 415, "{content_type:?}");
        assert_problem_media_type(415, r.headers());
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["type"], "urn:eidgate:problem:unsupported-media-type");
    }
    let (status, _) = password_step(&server, &browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200);
}

// ---- prompt, SSO, max_age, acr ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_without_a_session_is_login_required() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let r = browser
        .get(request(&server, "st-none", &[("prompt", "none")]))
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
    assert_eq!(query(&to, "error").as_deref(), Some("login_required"));
    assert_eq!(query(&to, "state").as_deref(), Some("st-none"));
    assert_eq!(query(&to, "iss").as_deref(), Some(server.url.as_str()));
    assert_eq!(query(&to, "code"), None);
}

/// Logs in once in `browser`, then returns the ID token claims of that login.
async fn first_login(server: &TestServer, browser: &reqwest::Client) -> Value {
    let (verifier, challenge) = pkce();
    let back = login(server, browser, &authorize_url(server, &auth_params("rp", &challenge))).await;
    let code = query(&back, "code").unwrap();
    let tokens = exchange(server, "rp", &code, &verifier).await;
    assert_eq!(tokens.status, 200);
    jwt_part(tokens.body["id_token"].as_str().unwrap(), 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_second_authorize_gets_a_code_without_interaction() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let first = first_login(&server, &browser).await;

    let (verifier, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "state", Some("st-sso"));
    set_param(&mut params, "nonce", Some("n-sso"));
    let to = redirect_to_client(&browser, &authorize_url(&server, &params)).await;
    assert_eq!(query(&to, "state").as_deref(), Some("st-sso"));
    assert_eq!(query(&to, "iss").as_deref(), Some(server.url.as_str()));
    let code = query(&to, "code").expect("a code without interaction");
    let tokens = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let second = jwt_part(tokens.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(second["sid"], first["sid"], "same SSO session");
    assert_eq!(second["auth_time"], first["auth_time"], "no new authentication");
    assert_eq!(second["nonce"], "n-sso");
    // prompt=none is satisfied by the session too.
    let to = redirect_to_client(&browser, &request(&server, "st-n", &[("prompt", "none")])).await;
    assert!(query(&to, "code").is_some(), "{to}");
    // Another browser has no session.
    assert!(goes_to_login(&fresh_browser(), &request(&server, "s", &[])).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_login_forces_a_new_login() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    first_login(&server, &browser).await;
    assert!(goes_to_login(&browser, &request(&server, "s", &[("prompt", "login")])).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_zero_forces_a_new_login() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    first_login(&server, &browser).await;
    assert!(
        goes_to_login(&browser, &request(&server, "s", &[("max_age", "0")])).await,
        "max_age=0 means the holder must authenticate now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_is_measured_from_the_authentication() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    first_login(&server, &browser).await;
    let to = redirect_to_client(&browser, &request(&server, "s", &[("max_age", "300")])).await;
    assert!(query(&to, "code").is_some(), "a fresh session satisfies max_age=300");
    server.app.clock.advance(301);
    assert!(goes_to_login(&browser, &request(&server, "s", &[("max_age", "300")])).await);
    // Without max_age the (low-level) session still serves.
    let to = redirect_to_client(&browser, &request(&server, "s", &[])).await;
    assert!(query(&to, "code").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_1_unreachable_level_ends_with_unmet_authentication_requirements() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let substantial = "http://eidas.europa.eu/LoA/substantial";
    let url = request(&server, "st-acr", &[("acr_values", substantial)]);
    let flow = start_login(&browser, &url).await;
    let info: Value = browser
        .get(server.at(&format!("/authn/flows/{flow}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["requested_loa"], "substantial");
    assert!(
        !info["methods"].as_array().unwrap().contains(&json!("password")),
        "password alone cannot reach substantial: {info}"
    );

    let r = browser
        .post(server.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({"identifier": HOLDER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get(reqwest::header::SET_COOKIE).is_none(),
        "no SSO session from a login that did not reach the level"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["next"], "done");
    let to = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT));
    assert_eq!(
        query(&to, "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
    assert_eq!(query(&to, "state").as_deref(), Some("st-acr"));
    assert_eq!(query(&to, "code"), None, "never a code with a lower acr");

    // With a low session, a substantial request is not answered from the session either.
    let browser = fresh_browser();
    first_login(&server, &browser).await;
    assert!(goes_to_login(&browser, &url).await);
    let to = redirect_to_client(
        &browser,
        &request(&server, "s", &[("acr_values", substantial), ("prompt", "none")]),
    )
    .await;
    assert_eq!(query(&to, "code"), None, "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("login_required"), "{to}");
}

// ---- logout ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_redirects_only_to_registered_uris() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let (verifier, challenge) = pkce();
    let back = login(
        &server,
        &browser,
        &authorize_url(&server, &auth_params("rp", &challenge)),
    )
    .await;
    let tokens = exchange(&server, "rp", &query(&back, "code").unwrap(), &verifier).await;
    let id_token = tokens.body["id_token"].as_str().unwrap().to_owned();

    // Unregistered target: logged out, but no redirect.
    let logout = |target: &str, state: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", target)
            .append_pair("state", state)
            .finish();
        server.at(&format!("/logout?{query}"))
    };
    let r = http()
        .get(logout("https://evil.example/bye", "st-x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(location(&r), None, "no open redirector");

    let r = browser
        .get(logout("https://rp.example/bye", "st-bye"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = url::Url::parse(&location(&r).unwrap()).unwrap();
    assert_eq!(to.as_str(), "https://rp.example/bye?state=st-bye");
    // The session is over.
    let to = redirect_to_client(&browser, &request(&server, "s", &[("prompt", "none")])).await;
    assert_eq!(query(&to, "error").as_deref(), Some("login_required"));

    // A registered target without a hint (nor client_id) does not redirect either.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("post_logout_redirect_uri", "https://rp.example/bye")
        .finish();
    let r = http().get(server.at(&format!("/logout?{query}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(location(&r), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_login_flow_expires() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let flow = start_login(&browser, &request(&server, "s", &[])).await;
    server
        .app
        .clock
        .advance(server.app.config.tokens.flow_ttl.as_secs() as i64 + 1);
    let r = browser
        .get(server.at(&format!("/authn/flows/{flow}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, body) = password_step(&server, &browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.get("redirect_to").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_flow_and_session_cookies_are_http_only_and_same_site_lax() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let r = browser.get(request(&server, "s", &[])).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let flow_cookie = r.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().to_owned();
    let flow = location(&r).unwrap().trim_start_matches("/login?flow=").to_owned();
    let r = browser
        .post(server.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({"identifier": HOLDER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session_cookie = r.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().to_owned();
    for (name, cookie) in [("eidgate_browser=", flow_cookie), ("eidgate_session=", session_cookie)] {
        assert!(cookie.starts_with(name), "{cookie}");
        let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
        assert!(attributes.contains(&"HttpOnly"), "{cookie}");
        assert!(attributes.contains(&"SameSite=Lax"), "{cookie}");
        assert!(attributes.contains(&"Path=/"), "{cookie}");
    }
}
