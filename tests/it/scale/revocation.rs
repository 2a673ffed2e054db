//! Revocation across instances: a login started on one finishes on the other, termination
//! from the CLI, a PostgreSQL restart and a SIGKILL under a burst of revocations (R-LIFE-1,
//! R-LIFE-4, R-SUP-3).

use serde_json::json;

use super::cluster::free_port;
use super::*;
use crate::support::operators::{status_body, IN_PERSON};
use crate::support::server::{auth_params, browser, http, pkce, HOLDER, PASSWORD};

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
