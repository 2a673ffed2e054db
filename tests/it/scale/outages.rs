//! Outages of what the instances share: Redis down or restarting empty, SIGTERM draining,
//! the HSM session lost (R-OPS-1, R-LIFE-1).

use serde_json::json;

use super::cluster::{free_port, wait_until, Cluster, Node};
use super::*;
use crate::support::server::{auth_params, browser, http, pkce, query, start_login, HOLDER, PASSWORD, REDIRECT};

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
