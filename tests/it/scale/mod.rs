//! Scale-out and faults with real processes (R-LIFE-1, R-LIFE-4, R-OPS-1, R-SEC-5): each
//! test starts its own PostgreSQL cluster and `redis-server`, and two `eidgate serve`
//! processes sharing them and one SoftHSM token. Logins, token exchanges and helpdesk
//! calls go over HTTP to either instance, as behind a load balancer.

mod cluster;
mod outages;
mod redis_store;
mod revocation;

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::operators::{status_body, CONSOLE, HELPDESK, IN_PERSON, OPERATOR_PASSWORD};
use crate::support::server::{
    auth_params, browser, client_entry, fixture, http, pkce, query, start_login, PASSWORD, REDIRECT, SECRET,
};
use cluster::{free_port, Cluster, Node};

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
