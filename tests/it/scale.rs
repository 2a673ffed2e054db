//! Scale-out and faults with real processes (R-LIFE-1, R-LIFE-4, R-OPS-1, R-SEC-5): each
//! test starts its own PostgreSQL cluster and `redis-server`, and two `eidgate serve`
//! processes sharing them and one SoftHSM token. Logins, token exchanges and helpdesk
//! calls go over HTTP to either instance, as behind a load balancer.

#[path = "scale/cluster.rs"]
mod cluster;

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::operators::{status_body, CONSOLE, HELPDESK, IN_PERSON, OPERATOR_PASSWORD};
use crate::support::server::{
    auth_params, browser, client_entry, fixture, http, pkce, query, start_login, HOLDER, PASSWORD, REDIRECT, SECRET,
};
use cluster::{free_port, wait_until, Cluster, Node};
use eidgate::ephemeral::redis::RedisStore;
use eidgate::ephemeral::{Ephemeral, StatusEvent};

/// Bound for waiting on recovery (readiness polling, never a timing assertion).
const RECOVERY: Duration = Duration::from_secs(30);

/// An extra holder `LT/LT/3800101{n:04}` with a password means.
fn holder(n: usize) -> String {
    format!("LT/LT/3800101{n:04}")
}

/// The standard fixture + the console client + a helpdesk operator + `extra` holders, each
/// with an active password means ([`PASSWORD`]).
fn provisioning(extra: usize) -> Value {
    let mut doc = fixture();
    doc["clients"].as_array_mut().unwrap().push(client_entry(
        CONSOLE,
        json!({"client_name": "Console", "operator_console": true}),
    ));
    let persons = doc["persons"].as_array_mut().unwrap();
    persons.push(
        json!({"identifier": HELPDESK, "given_name": "Help", "family_name": "Desk",
                        "birthdate": "1990-01-01", "proofing_loa": "high"}),
    );
    for n in 0..extra {
        persons.push(
            json!({"identifier": holder(n), "given_name": "Ona", "family_name": "Onaitė",
                            "birthdate": "1980-01-01", "proofing_loa": "high"}),
        );
    }
    doc["operators"] = json!([{"person": HELPDESK, "roles": ["helpdesk"]}]);
    let means = doc["means"].as_array_mut().unwrap();
    means.push(json!({"holder": HELPDESK, "kind": "password", "loa": "low", "password": OPERATOR_PASSWORD}));
    for n in 0..extra {
        means.push(json!({"holder": holder(n), "kind": "password", "loa": "low", "password": PASSWORD}));
    }
    doc
}

/// A cluster with two nodes; `extra` holders beside the fixture's.
async fn two_nodes(extra: usize) -> (Cluster, Node, Node) {
    let (port_a, port_b) = (free_port(), free_port());
    let cluster = Cluster::start(port_a).await;
    let a = Node::start(&cluster.shared, "a", port_a).await;
    let b = Node::start(&cluster.shared, "b", port_b).await;
    cluster.import(&provisioning(extra));
    (cluster, a, b)
}

/// The means id of `identifier`'s (only) means, from SQL.
fn means_of(cluster: &Cluster, identifier: &str) -> String {
    let parts: Vec<&str> = identifier.split('/').collect();
    cluster.pg.query(&format!(
        "SELECT m.id FROM means m JOIN persons p ON p.id = m.holder_id \
         WHERE p.identifier_country = '{}' AND p.identifier_code = '{}'",
        parts[0], parts[2]
    ))
}

fn status_in_sql(cluster: &Cluster, means: &str) -> String {
    cluster
        .pg
        .query(&format!("SELECT status FROM means WHERE id = '{means}'"))
}

/// A login as far as the code: `(status, body, verifier)` of the password step. The flow
/// starts on `start` and the password step goes to `finish`.
async fn login_step(start: &Node, finish: &Node, identifier: &str) -> (u16, Value, String) {
    let (verifier, challenge) = pkce();
    let params = auth_params("rp", &challenge);
    let url = format!(
        "{}?{}",
        start.at("/authorize"),
        serde_urlencoded::to_string(&params).unwrap()
    );
    let browser = browser();
    let flow = start_login(&browser, &url).await;
    let r = browser
        .post(finish.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({"identifier": identifier, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null), verifier)
}

/// `POST /token` at `node` (Basic auth as `rp`): status and body.
async fn token(node: &Node, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(node.at("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A full login of `identifier` started on `start`, finished and redeemed on `finish`.
async fn tokens(start: &Node, finish: &Node, identifier: &str) -> Value {
    let (status, body, verifier) = login_step(start, finish, identifier).await;
    assert_eq!(status, 200, "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    let code = query(&back, "code").unwrap();
    let (status, body) = token(
        finish,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The helpdesk operator's bearer token (console client, code flow on `node`).
async fn operator_token(node: &Node) -> String {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(CONSOLE, &challenge);
    crate::support::server::set_param(&mut params, "scope", Some("openid"));
    let url = format!(
        "{}?{}",
        node.at("/authorize"),
        serde_urlencoded::to_string(&params).unwrap()
    );
    let browser = browser();
    let flow = start_login(&browser, &url).await;
    let r = browser
        .post(node.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({"identifier": HELPDESK, "password": OPERATOR_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    let code = query(&back, "code").unwrap();
    let r = http()
        .post(node.at("/token"))
        .basic_auth(CONSOLE, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// `POST /helpdesk/v1/means/{means}/{command}` (in-person verification) at `node` with
/// `key`: the status, or `None` when no HTTP answer came (connection lost).
async fn helpdesk(node: &Node, token: &str, means: &str, command: &str, key: &str) -> Option<(u16, Value)> {
    let r = http()
        .post(node.at(&format!("/helpdesk/v1/means/{means}/{command}")))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&status_body("in_person", IN_PERSON))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

async fn ready(node: &Node) -> (u16, Value) {
    match http().get(node.at("/readyz")).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn wait_ready(node: &Node) {
    let started = std::time::Instant::now();
    loop {
        if ready(node).await.0 == 200 {
            return;
        }
        assert!(started.elapsed() < RECOVERY, "{} not ready again", node.url);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_life_4_login_started_on_a_finishes_on_b_and_a_revocation_on_b_blocks_a_at_once() {
    let (cluster, a, b) = two_nodes(0).await;
    // The flow, its cookie binding and the code live in Redis: any instance continues.
    let first = tokens(&a, &b, HOLDER).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    // Refresh on A: the means is now in A's cache.
    let (status, body) = token(&a, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();

    let operator = operator_token(&a).await;
    let means = means_of(&cluster, HOLDER);
    let (status, body) = helpdesk(&b, &operator, &means, "revoke", "k-revoke-1").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_in_sql(&cluster, &means), "revoked");

    // Immediately on A, without waiting for anything.
    let (status, body) = token(&a, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let r = http().get(a.at("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (status, body, _) = login_step(&a, &a, HOLDER).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("means-not-active"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_ops_1_redis_down_fails_logins_closed_while_the_helpdesk_suspends_and_revokes_then_resumes() {
    let (mut cluster, a, b) = two_nodes(2).await;
    let operator = operator_token(&a).await;
    let (suspended, revoked) = (means_of(&cluster, &holder(0)), means_of(&cluster, &holder(1)));
    // Prime A's cache with holder 0's means.
    tokens(&a, &a, &holder(0)).await;
    // A login flow started before the outage.
    let (_, challenge) = pkce();
    let url = format!(
        "{}?{}",
        a.at("/authorize"),
        serde_urlencoded::to_string(auth_params("rp", &challenge)).unwrap()
    );
    let browser = browser();
    let flow = start_login(&browser, &url).await;

    cluster.redis.stop().await;

    // Logins fail closed with problem+json; no half-authenticated state.
    let r = browser
        .post(b.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({"identifier": HOLDER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // A new authorization goes back to the RP with `temporarily_unavailable` (RFC 6749
    // §4.1.2.1), never to the login page.
    let r = browser.get(&url).send().await.unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(REDIRECT) && location.contains("error=temporarily_unavailable"),
        "authorize while Redis is down: {} {location}",
        r.status()
    );
    let (status, body) = ready(&a).await;
    assert_eq!((status, body["ephemeral"].as_str()), (503, Some("down")), "{body}");
    assert_eq!(body["database"], "up");

    // The helpdesk still works: SQL is the record.
    let (status, body) = helpdesk(&b, &operator, &suspended, "suspend", "k-s").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = helpdesk(&a, &operator, &revoked, "revoke", "k-r").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_in_sql(&cluster, &suspended), "suspended");
    assert_eq!(status_in_sql(&cluster, &revoked), "revoked");

    // Redis returns (empty): both instances resume without a restart.
    cluster.redis.start_again().await;
    wait_ready(&a).await;
    wait_ready(&b).await;
    // The queued change markers were written again on reconnect.
    let port = cluster.redis.port.to_string();
    let marker = format!("eidgate:means-changed:{suspended}");
    wait_until("the queued marker", RECOVERY, || {
        std::process::Command::new("redis-cli")
            .args(["-p", &port, "EXISTS", &marker])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
            .unwrap_or(false)
    })
    .await;
    tokens(&a, &b, HOLDER).await;
    for node in [&a, &b] {
        for means_holder in [holder(0), holder(1)] {
            let (status, body, _) = login_step(node, node, &means_holder).await;
            assert_eq!(status, 403, "{means_holder} at {}: {body}", node.url);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_sup_3_termination_revoke_all_from_the_cli_refuses_the_next_login_on_every_instance_at_once() {
    let (cluster, a, b) = two_nodes(0).await;
    let config = cluster::write_config(&cluster.shared, "cli", free_port());
    let cli = |args: &[&str]| {
        let (code, out, err) = cluster::cli(&cluster.shared, &config, args);
        assert_eq!(code, 0, "{args:?}: {out} {err}");
    };
    cli(&["termination", "start", "--json"]);
    // Both instances hold the holder's means in their caches (a token in use on each).
    let mut access = Vec::new();
    for node in [&a, &b] {
        let t = tokens(node, node, HOLDER).await;
        let token = t["access_token"].as_str().unwrap().to_owned();
        let r = http()
            .get(node.at("/userinfo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        access.push(token);
    }
    cli(&["termination", "revoke-all", "--json"]);
    assert_eq!(status_in_sql(&cluster, &means_of(&cluster, HOLDER)), "revoked");
    // At once, on both running instances: no waiting for a cache to expire.
    for (node, access) in [&a, &b].into_iter().zip(&access) {
        let r = http()
            .get(node.at("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{}", node.url);
        let (status, body, _) = login_step(node, node, HOLDER).await;
        assert_eq!(status, 403, "{}: {body}", node.url);
        assert!(body["type"].as_str().unwrap().ends_with("means-not-active"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_life_1_an_operator_token_outlives_redis_restarting_empty_on_both_instances() {
    let (mut cluster, a, b) = two_nodes(1).await;
    let operator = operator_token(&a).await;
    let means = means_of(&cluster, &holder(0));
    // Redis restarts without persistence: every access token in it is gone.
    cluster.redis.stop().await;
    cluster.redis.start_again().await;
    wait_ready(&a).await;
    wait_ready(&b).await;
    let port = cluster.redis.port.to_string();
    let key = format!("eidgate:at:{}", eidgate::domain::secret::fingerprint_hex(&operator));
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port, "EXISTS", &key])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the token is not in Redis"
    );
    // The same token still works on both instances (it is durable in SQL).
    for node in [&a, &b] {
        let r = http()
            .get(node.at(&format!("/helpdesk/v1/means/{means}")))
            .bearer_auth(&operator)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", node.url);
    }
    let (status, body) = helpdesk(&b, &operator, &means, "suspend", "k-after-restart")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    // A token that was never issued is still refused.
    let r = http()
        .get(a.at(&format!("/helpdesk/v1/means/{means}")))
        .bearer_auth("never-issued-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Every answer in the fault tests is a clean one: a status the API documents, never a
/// 500; 5xx only as 503.
fn clean(status: u16) -> bool {
    matches!(status, 200 | 401 | 403 | 409 | 429 | 503)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_life_1_postgres_restart_mid_load_fails_cleanly_and_loses_no_revocation() {
    const HOLDERS: usize = 16;
    let (cluster, a, b) = two_nodes(HOLDERS).await;
    let operator = operator_token(&a).await;
    let means: Vec<String> = (0..HOLDERS).map(|n| means_of(&cluster, &holder(n))).collect();
    let nodes = [&a, &b];
    let started = tokio::sync::Notify::new();

    let logins = async {
        let mut statuses = Vec::new();
        for round in 0..24 {
            let node = nodes[round % 2];
            let (_, challenge) = pkce();
            let url = format!(
                "{}?{}",
                node.at("/authorize"),
                serde_urlencoded::to_string(auth_params("rp", &challenge)).unwrap()
            );
            let browser = browser();
            let r = browser.get(&url).send().await.unwrap();
            if r.status() != 303 {
                statuses.push(r.status().as_u16());
                continue;
            }
            let flow = r.headers()["location"]
                .to_str()
                .unwrap()
                .trim_start_matches("/login?flow=")
                .to_owned();
            let r = browser
                .post(node.at(&format!("/authn/flows/{flow}/password")))
                .json(&json!({"identifier": HOLDER, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        statuses
    };
    let revocations = async {
        let mut answered = Vec::new();
        for (n, m) in means.iter().enumerate() {
            let key = format!("pg-{n}");
            if let Some((status, body)) = helpdesk(nodes[n % 2], &operator, m, "revoke", &key).await {
                assert!(clean(status), "revocation answered {status}: {body}");
                answered.push((m.clone(), key, status));
            }
            if n == 3 {
                started.notify_one();
            }
        }
        answered
    };
    // Restart after the fourth revocation was answered: mid-load, whatever the speed.
    let restart = async {
        started.notified().await;
        cluster.pg.stop();
        cluster.pg.start_again();
    };
    let (statuses, answered, ()) = tokio::join!(logins, revocations, restart);
    assert!(statuses.iter().all(|s| clean(*s)), "{statuses:?}");

    wait_ready(&a).await;
    wait_ready(&b).await;
    // Every revocation answered 200 survived; the others go through on retry with the
    // same key.
    for (m, key, status) in &answered {
        if *status == 200 {
            assert_eq!(status_in_sql(&cluster, m), "revoked", "{m} was answered 200");
        } else {
            let (status, body) = helpdesk(&b, &operator, m, "revoke", key).await.unwrap();
            assert_eq!(status, 200, "{body}");
        }
    }
    tokens(&b, &a, HOLDER).await;
    let (code, out) = cluster.audit_verify();
    assert_eq!(code, 0, "audit verify: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_life_1_sigkill_during_a_burst_of_revocations_keeps_every_answered_one() {
    const HOLDERS: usize = 24;
    let (cluster, mut a, b) = two_nodes(HOLDERS).await;
    let operator = operator_token(&b).await;
    let means: Vec<String> = (0..HOLDERS).map(|n| means_of(&cluster, &holder(n))).collect();
    let (tx, mut first_answer) = tokio::sync::mpsc::channel::<()>(HOLDERS);
    let burst: Vec<_> = means
        .iter()
        .enumerate()
        .map(|(n, m)| {
            let (url, operator, m, tx) = (a.url.clone(), operator.clone(), m.clone(), tx.clone());
            tokio::spawn(async move {
                let key = format!("burst-{n}");
                let r = http()
                    .post(format!("{url}/helpdesk/v1/means/{m}/revoke"))
                    .bearer_auth(&operator)
                    .header("Idempotency-Key", &key)
                    .json(&status_body("in_person", IN_PERSON))
                    .send()
                    .await;
                let status = r.ok().map(|r| r.status().as_u16());
                let _ = tx.send(()).await;
                (m, key, status)
            })
        })
        .collect();
    first_answer.recv().await;
    a.kill();
    let mut answered_200 = 0;
    for task in burst {
        let (m, key, status) = task.await.unwrap();
        match status {
            Some(200) => {
                answered_200 += 1;
                assert_eq!(status_in_sql(&cluster, &m), "revoked", "{m} was answered 200");
            }
            Some(other) => assert!(clean(other), "answered {other}"),
            None => {
                // No answer: the caller retries on the other instance with the same key.
                let (status, body) = helpdesk(&b, &operator, &m, "revoke", &key).await.unwrap();
                assert_eq!(status, 200, "{body}");
                assert_eq!(status_in_sql(&cluster, &m), "revoked");
            }
        }
    }
    assert!(answered_200 >= 1, "at least the first answer came before the kill");
    let (code, out) = cluster.audit_verify();
    assert_eq!(code, 0, "audit verify: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_ops_1_sigterm_drains_in_flight_requests_and_signs_a_final_checkpoint() {
    let (cluster, mut a, b) = two_nodes(0).await;
    const LOGINS: usize = 12;
    // Flows first, so that only the slow password steps (argon2id) are in flight.
    let mut flows = Vec::new();
    for _ in 0..LOGINS {
        let (_, challenge) = pkce();
        let url = format!(
            "{}?{}",
            a.at("/authorize"),
            serde_urlencoded::to_string(auth_params("rp", &challenge)).unwrap()
        );
        let browser = browser();
        let flow = start_login(&browser, &url).await;
        flows.push((browser, flow));
    }
    let (tx, mut first_answer) = tokio::sync::mpsc::channel::<()>(LOGINS);
    let steps: Vec<_> = flows
        .into_iter()
        .map(|(browser, flow)| {
            let (url, tx) = (a.url.clone(), tx.clone());
            tokio::spawn(async move {
                let r = browser
                    .post(format!("{url}/authn/flows/{flow}/password"))
                    .json(&json!({"identifier": HOLDER, "password": PASSWORD}))
                    .send()
                    .await;
                let _ = tx.send(()).await;
                match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        Ok((status, r.text().await.unwrap_or_default()))
                    }
                    Err(e) => Err(e.to_string()),
                }
            })
        })
        .collect();
    first_answer.recv().await;
    a.terminate();
    for step in steps {
        let answer = step.await.unwrap();
        assert!(
            matches!(answer, Ok((200, _))),
            "an in-flight login was not drained: {answer:?}"
        );
    }
    assert_eq!(a.exit_code().await, Some(0));
    // The stop is recorded and covered by a signed checkpoint.
    let stop: i64 = cluster
        .pg
        .query("SELECT max(seq) FROM audit_log WHERE event_type = 'system.stop'")
        .parse()
        .unwrap();
    let signed: i64 = cluster
        .pg
        .query("SELECT max(seq) FROM audit_checkpoints WHERE kind = 'checkpoint'")
        .parse()
        .unwrap();
    assert!(signed >= stop, "checkpoint {signed} does not cover the stop at {stop}");
    let (code, out) = cluster.audit_verify();
    assert_eq!(code, 0, "audit verify: {out}");
    // The other instance serves on.
    tokens(&b, &b, HOLDER).await;
}

/// Changes the user PIN of token `label` from `old` to `new` through this process's
/// module (the server's sessions are in this process too), then logs the application out,
/// so every session of the server must log in again, with the PIN it knows.
fn set_user_pin(label: &str, old: &str, new: &str) {
    use cryptoki::context::{CInitializeArgs, Pkcs11};
    use cryptoki::error::{Error, RvError};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let context = Pkcs11::new(crate::support::softhsm::module()).unwrap();
    match context.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(Error::AlreadyInitialized) => {}
        Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    {
        let slot = context
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| context.get_token_info(*s).unwrap().label().trim_end() == label)
            .unwrap();
        let session = context.open_rw_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::new(old.into()))) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("C_Login: {e}"),
        }
        session
            .set_pin(&AuthPin::new(old.into()), &AuthPin::new(new.into()))
            .unwrap();
        session.logout().unwrap();
    }
    // Dropping the last handle would C_Finalize the module under every other test.
    std::mem::forget(context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_ops_1_hsm_session_loss_fails_signing_with_503_reports_it_and_recovers() {
    // The server in this process (so the fault can be injected into its PKCS#11
    // sessions), on PostgreSQL + Redis like the others.
    let cluster = Cluster::start(free_port()).await;
    let (db, redis) = (cluster.pg.url(), cluster.redis.url());
    let server = crate::support::server::TestServer::start_with(|c| {
        c.database.url = db;
        c.ephemeral.url = redis;
        c.instances = 2;
    })
    .await;
    server.provision().await;
    let hsm = server.app.hsm.clone().unwrap();
    let label = server.app.config.hsm.token_label.clone();
    let pin = std::fs::read_to_string(server.app.config.hsm.pin_file.as_ref().unwrap())
        .unwrap()
        .trim()
        .to_owned();
    let node = Node::in_process(&server.url);
    tokens(&node, &node, HOLDER).await;

    // The token refuses the server's login from now on, and every open session is lost.
    let reopened = hsm.session_reopens();
    set_user_pin(&label, &pin, "another-pin-0000");
    hsm.close_all_sessions_for_fault_test();
    let (status, body, verifier) = login_step(&node, &node, HOLDER).await;
    assert_eq!(status, 200, "the password step needs no signature: {body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    let code = query(&back, "code").unwrap();
    let (status, body) = token(
        &node,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 503, "an ID token cannot be signed: {body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let (status, body) = ready(&node).await;
    assert_eq!((status, body["hsm"].as_str()), (503, Some("down")), "{body}");
    assert_eq!(body["ephemeral"], "up");

    // The token is back: sessions are reopened and logged in on the next use.
    set_user_pin(&label, "another-pin-0000", &pin);
    wait_ready(&node).await;
    tokens(&node, &node, HOLDER).await;
    assert!(hsm.session_reopens() > reopened, "sessions were reopened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_auth_4_redis_store_is_single_use_and_counts_across_instances_and_resyncs_after_an_outage() {
    let mut redis = cluster::Redis::start().await;
    let open = || RedisStore::open(&redis.url(), "t:", Duration::from_millis(300)).unwrap();
    let (one, two) = (open(), open());
    let mut events = two.subscribe();
    // The first event is the resync sent when the subscription is up.
    assert_eq!(events.recv().await.unwrap(), StatusEvent::Resync);

    // Single use across instances: exactly one of many concurrent takes wins.
    one.put("code", b"grant", Duration::from_secs(60)).await.unwrap();
    let takes: Vec<_> = (0..32)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move { store.take("code").await.unwrap().is_some() })
        })
        .collect();
    let mut winners = 0;
    for t in takes {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert!(one.put_new("jti", b"1", Duration::from_secs(60)).await.unwrap());
    assert!(!two.put_new("jti", b"2", Duration::from_secs(60)).await.unwrap());
    for n in 1..=6 {
        let store = if n % 2 == 0 { &one } else { &two };
        assert_eq!(store.hit("ip", Duration::from_secs(60)).await.unwrap(), n);
    }
    let (count, left) = one.count("ip").await.unwrap();
    assert_eq!(count, 6);
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(one.count("never").await.unwrap(), (0, Duration::ZERO));

    // Status events reach the other instance.
    let changed = StatusEvent::MeansChanged {
        means: eidgate::domain::ids::MeansId::new(),
    };
    one.publish(&changed).await.unwrap();
    assert_eq!(events.recv().await.unwrap(), changed);

    // Down: commands fail closed, writes that must not be lost are queued, and the
    // subscriber tells its caches to drop everything.
    redis.stop().await;
    assert_eq!(events.recv().await.unwrap(), StatusEvent::Resync);
    assert!(one.get("jti").await.is_err());
    assert!(one.ping().await.is_err());
    assert!(one.publish(&changed).await.is_err());
    assert!(one.put_or_queue("marker", b"1", Duration::from_secs(60)).await.is_err());
    assert_eq!(one.pending(), 2);

    // Back (empty): resync again, the queue is replayed, commands work without a restart.
    redis.start_again().await;
    assert_eq!(events.recv().await.unwrap(), StatusEvent::Resync);
    let started = std::time::Instant::now();
    while one.pending() > 0 {
        assert!(started.elapsed() < RECOVERY, "queued writes not replayed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(two.get("marker").await.unwrap(), Some(b"1".to_vec()));
    two.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_auth_4_redis_reservations_are_atomic_across_instances_and_an_evicting_redis_is_refused() {
    use eidgate::ephemeral::{BackoffPolicy, Reserved};
    let redis = cluster::Redis::start().await;
    let open = || RedisStore::open(&redis.url(), "r:", Duration::from_millis(500)).unwrap();
    let (one, two) = (open(), open());
    let policy = BackoffPolicy {
        free: 3,
        base_ms: 60_000,
        max_ms: 600_000,
        hard: 100,
    };
    // Check and count in one step: of 24 parallel attempts from two instances, only the
    // free ones and the one that starts the back-off go through.
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                store
                    .reserve("who", &policy, 1_000, Duration::from_secs(600))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Reserved::Granted(_) => granted += 1,
            Reserved::Wait(ms) => assert!(ms > 59_000, "{ms}"),
            Reserved::Blocked => panic!("not at the hard limit"),
        }
    }
    assert_eq!(granted, 4);
    assert_eq!(
        one.reserve("who", &policy, 61_001, Duration::from_secs(600))
            .await
            .unwrap(),
        Reserved::Granted(5)
    );
    let hard = BackoffPolicy { hard: 5, ..policy };
    assert_eq!(
        two.reserve("who", &hard, 10_000_000, Duration::from_secs(600))
            .await
            .unwrap(),
        Reserved::Blocked
    );

    // Open-flow counters go up and down across instances and vanish at zero.
    let ttl = Duration::from_secs(60);
    assert_eq!(one.adjust("open", 1, ttl).await.unwrap(), 1);
    assert_eq!(two.adjust("open", 1, ttl).await.unwrap(), 2);
    assert_eq!(one.adjust("open", -1, ttl).await.unwrap(), 1);
    assert_eq!(two.adjust("open", -3, ttl).await.unwrap(), 0);
    assert_eq!(one.count("open").await.unwrap(), (0, Duration::ZERO));

    // The test Redis runs with the default `noeviction`: accepted.
    one.check_eviction_policy(false).await.unwrap();
    // Under an evicting policy the store refuses to start, unless told otherwise.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
    let refused = one.check_eviction_policy(false).await.unwrap_err().to_string();
    assert!(
        refused.contains("allkeys-lru") && refused.contains("noeviction"),
        "{refused}"
    );
    one.check_eviction_policy(true).await.unwrap();
}
