//! Login defences that stop guessing without locking the holder out or telling who exists
//! (R-AUTH-4, issue 19): device trust, one key per person, the same answers for known and
//! unknown identifiers, IPv6 /64 and a bounded flow store.

use reqwest::header::RETRY_AFTER;
use serde_json::{json, Value};

use crate::support::operators::{operator_token, provision_staff, state_of, HELPDESK};
use crate::support::server::{
    auth_params, authorize_url, browser, location, password_step, pkce, set_param, start_login, TestServer, HOLDER,
    PASSWORD,
};

fn request(server: &TestServer) -> String {
    let (_, challenge) = pkce();
    authorize_url(server, &auth_params("rp", &challenge))
}

/// Status, problem type and `Retry-After` of one password attempt.
async fn attempt(
    server: &TestServer,
    browser: &reqwest::Client,
    flow: &str,
    identifier: &str,
    password: &str,
) -> (u16, String, Option<String>) {
    let r = browser
        .post(server.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({ "identifier": identifier, "password": password }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["type"].as_str().unwrap_or("").to_owned(), retry)
}

/// The holder's browser logs in with the right password (`prompt=login`: not through its
/// SSO session); `true` when it got through.
async fn holder_logs_in(server: &TestServer, holder: &reqwest::Client) -> bool {
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "prompt", Some("login"));
    let flow = start_login(holder, &authorize_url(server, &params)).await;
    let (status, body) = password_step(server, holder, &flow, HOLDER, PASSWORD).await;
    status == 200 && body["next"] == "done"
}

async fn holder_means(server: &TestServer) -> String {
    let person = server
        .app
        .store
        .person_by_identifier(&HOLDER.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let means = server.app.store.means_of_holder(person.id).await.unwrap();
    means[0].id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_holder_logs_in_during_and_after_200_wrong_attempts_from_another_client() {
    // Every wrong attempt reaches argon2 (no waiting, no per-address limit in the way), so
    // the hard limit of unknown browsers is reached for real.
    let server = TestServer::start_with(|c| {
        c.login.backoff_base = std::time::Duration::from_millis(1);
        c.login.backoff_max = std::time::Duration::from_millis(1);
        c.login.ip_attempts = 10_000;
    })
    .await;
    server.provision().await;
    let staff = provision_staff(&server).await;
    let holder = browser();
    assert!(holder_logs_in(&server, &holder).await, "the holder's first login");
    let attacker = browser();
    let flow = start_login(&attacker, &request(&server)).await;
    let mut statuses = Vec::new();
    for n in 1..=200 {
        let (status, kind, _) = attempt(&server, &attacker, &flow, HOLDER, &format!("guess number {n}")).await;
        statuses.push((status, kind));
        if n == 150 {
            assert!(holder_logs_in(&server, &holder).await, "the holder during the attack");
        }
    }
    // 100 consecutive failures, then unknown browsers stop; the holder's success at 150
    // lifted the stop, and another 50 failures followed.
    assert!(statuses[..100].iter().all(|(s, _)| *s == 401), "{statuses:?}");
    assert!(
        statuses[100..150]
            .iter()
            .all(|(s, k)| *s == 403 && k == "urn:eidgate:problem:unknown-device-locked"),
        "{statuses:?}"
    );
    assert!(statuses[150..].iter().all(|(s, _)| *s == 401), "{statuses:?}");
    assert!(holder_logs_in(&server, &holder).await, "the holder after the attack");
    let means = holder_means(&server).await;
    assert_eq!(state_of(&server, &means).await, "active", "never suspended");

    // Again to the hard limit: even the right password from an unknown browser is stopped,
    // until the helpdesk lifts it.
    for n in 1..=100 {
        attempt(&server, &attacker, &flow, HOLDER, &format!("again {n}")).await;
    }
    let newcomer = browser();
    let fresh = start_login(&newcomer, &request(&server)).await;
    let (status, kind, _) = attempt(&server, &newcomer, &fresh, HOLDER, PASSWORD).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "urn:eidgate:problem:unknown-device-locked")
    );
    assert!(
        holder_logs_in(&server, &holder).await,
        "a known browser is never stopped"
    );
    for n in 1..=100 {
        attempt(&server, &attacker, &flow, HOLDER, &format!("third {n}")).await;
    }
    let desk = operator_token(&server, HELPDESK).await;
    let reset = crate::support::operators::post(
        &server,
        &format!("/helpdesk/v1/means/{means}/login-reset"),
        &desk,
        &json!({"reason": "holder called after the lock-out notice"}),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let (status, _, _) = attempt(&server, &newcomer, &fresh, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "after the helpdesk reset");
    assert_eq!(state_of(&server, &means).await, "active");
    drop(staff);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_holder_logs_in_during_and_after_200_wrong_attempts_from_the_same_ip_without_the_device_cookie() {
    // Default limits: the attacker's browser backs off and meets the per-address limit.
    let server = TestServer::start().await;
    server.provision().await;
    let holder = browser();
    assert!(holder_logs_in(&server, &holder).await);
    let attacker = browser();
    let flow = start_login(&attacker, &request(&server)).await;
    let mut refused = 0;
    for n in 1..=200 {
        let (status, _, retry) = attempt(&server, &attacker, &flow, HOLDER, &format!("guess {n}")).await;
        if status == 429 {
            refused += 1;
            assert!(retry.is_some(), "429 carries Retry-After");
        }
        if n % 50 == 0 {
            assert!(holder_logs_in(&server, &holder).await, "the holder at attempt {n}");
        }
    }
    assert!(refused >= 190, "the attacker was held back: {refused}");
    assert!(holder_logs_in(&server, &holder).await, "the holder after the attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_sixteen_failures_over_four_spellings_are_throttled_as_one() {
    let server = TestServer::start_with(|c| {
        c.login.backoff_free = 15;
        c.login.backoff_base = std::time::Duration::from_secs(60);
    })
    .await;
    server.provision().await;
    let attacker = browser();
    let flow = start_login(&attacker, &request(&server)).await;
    let spellings = [
        "LT/LT/38001085718",
        "lt/lt/38001085718",
        "LT/LV/38001085718",
        "LT:38001085718",
    ];
    for round in 0..4 {
        for spelling in spellings {
            let (status, _, _) = attempt(&server, &attacker, &flow, spelling, &format!("wrong {round}")).await;
            assert_eq!(status, 401, "{spelling} in round {round}");
        }
    }
    // The next attempt, in any spelling and even with the right password, waits.
    for spelling in [spellings[0], "38001085718", " lT/lv/38001085718 "] {
        let (status, kind, retry) = attempt(&server, &attacker, &flow, spelling, PASSWORD).await;
        assert_eq!(status, 429, "{spelling}");
        assert_eq!(kind, "urn:eidgate:problem:too-many-attempts");
        assert_eq!(retry.as_deref(), Some("60"));
    }
    // Another person is not affected.
    let (status, _, _) = attempt(&server, &attacker, &flow, "LT/LT/49001010001", "wrong").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_known_and_unknown_identifiers_answer_alike_failure_after_failure() {
    let server = TestServer::start_with(|c| c.login.backoff_base = std::time::Duration::from_secs(120)).await;
    server.provision().await;
    let mut sequences = Vec::new();
    for identifier in [HOLDER, "LT/LT/49001010001"] {
        let client = browser();
        let flow = start_login(&client, &request(&server)).await;
        let mut answers = Vec::new();
        for n in 0..10 {
            answers.push(attempt(&server, &client, &flow, identifier, &format!("wrong {n}")).await);
        }
        sequences.push(answers);
    }
    assert_eq!(sequences[0], sequences[1]);
    let statuses: Vec<u16> = sequences[0].iter().map(|(s, _, _)| *s).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
    assert_eq!(sequences[0][4].2.as_deref(), Some("120"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_identifier_first_webauthn_lists_a_stable_decoy_for_an_unknown_identifier() {
    let server = TestServer::start().await;
    server.provision().await;
    let mut lists = Vec::new();
    // The holder has no FIDO means: their answer looks like an unknown identifier's.
    for identifier in ["LT/LT/49001010001", "LT/LT/49001010001", "lt:49001010001", HOLDER] {
        let client = browser();
        let flow = start_login(&client, &request(&server)).await;
        let r = client
            .post(server.at(&format!("/authn/flows/{flow}/webauthn/start")))
            .json(&json!({ "identifier": identifier }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let list = body["publicKey"]["allowCredentials"].clone();
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{body}");
        lists.push(list);
    }
    assert_eq!(lists[0], lists[1], "stable");
    assert_eq!(lists[0], lists[2], "one person, one decoy, whatever the spelling");
    assert_ne!(lists[0], lists[3], "derived from the identifier");
}

/// A browser behind the trusted proxy at `address`.
fn behind_proxy(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_a_flood_of_5000_authorize_requests_from_one_64_leaves_the_flow_store_bounded() {
    let server = TestServer::start_with(|c| {
        c.limits.rate_per_ip = 0;
        c.limits.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    server.provision().await;
    let url = request(&server);
    let mut accepted = 0;
    let mut refused = 0;
    let attacker = crate::support::server::http();
    for n in 0..5000u32 {
        // Every request from another address of the same /64.
        let r = attacker
            .get(&url)
            .header("x-forwarded-for", format!("2001:db8:7:9::{:x}", n + 1))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            303 => accepted += 1,
            429 => {
                assert!(r.headers().get(RETRY_AFTER).is_some());
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted, server.app.config.login.flows_per_address);
    assert_eq!(refused, 5000 - accepted);
    assert_eq!(
        server.app.ephemeral.bounded_len(),
        Some(50),
        "the flow store stays bounded"
    );
    // The holder, elsewhere, logs in.
    let holder = behind_proxy("198.51.100.23");
    let flow = start_login(&holder, &url).await;
    let (status, body) = password_step(&server, &holder, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_login_flows_are_at_most_2_kb() {
    let server = TestServer::start().await;
    server.provision().await;
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    let state = "s".repeat(1900);
    set_param(&mut params, "state", Some(&state));
    let r = browser().get(authorize_url(&server, &params)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = location(&r).unwrap();
    assert!(to.contains("error=invalid_request"), "{to}");
    assert_eq!(server.app.ephemeral.bounded_len(), Some(0));
}
