//! Operators for the admin, activation and helpdesk tests: the operators' console client
//! (`operator_console: true`, client_secret_basic), operators with their own password +
//! TOTP means (the operator APIs want a substantial login, R-SEC-4), bearer tokens
//! obtained through the real code flow, and helpers that drive the admin, activation and
//! helpdesk APIs over HTTP. Activation codes and revocation secrets are read from the
//! delivery outbox, as the holder would receive them (R-ISS-1).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::server::{
    auth_params, authorize_url, browser, client_entry, exchange, http, password_step, pkce, query, set_param,
    start_login, Answer, TestServer, REDIRECT,
};

/// The console client id.
pub const CONSOLE: &str = "console";
/// Every operator's password.
pub const OPERATOR_PASSWORD: &str = "operator pass phrase 2026";
/// Registration officer who may also approve (so that only four-eyes stops self-approval).
pub const REGISTRAR: &str = "LT/LT/39001010011";
/// Issuance officer (the second pair of eyes).
pub const ISSUER: &str = "LT/LT/39001010022";
/// Helpdesk operator.
pub const HELPDESK: &str = "LT/LT/39001010033";
/// Administrator (operator roles).
pub const ADMIN: &str = "LT/LT/39001010044";
/// Security officer (second person of two-person actions).
pub const SECURITY: &str = "LT/LT/39001010055";
/// Second registration officer (approves mandates), also an issuance officer (personalises
/// cards that others registered and approved).
pub const REGISTRAR2: &str = "LT/LT/39001010066";
/// The TOTP seed (base32) of every test operator's means.
pub const OPERATOR_TOTP_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// The operators and their roles.
pub const STAFF: [(&str, &[&str]); 6] = [
    (REGISTRAR, &["registration", "issuance"]),
    (ISSUER, &["issuance"]),
    (HELPDESK, &["helpdesk"]),
    (ADMIN, &["admin"]),
    (SECURITY, &["security"]),
    (REGISTRAR2, &["registration", "issuance"]),
];

/// What [`provision_staff`] imported.
pub struct Staff {
    /// The fixture holder's (`HOLDER`) imported active password means.
    pub holder_means: String,
    /// Each operator's own active password means, by identifier.
    pub own_means: HashMap<&'static str, String>,
}

/// The stored form `XX:code` of an eIDAS identifier (for path segments).
pub fn stored(identifier: &str) -> String {
    let parts: Vec<&str> = identifier.split('/').collect();
    format!("{}:{}", parts[0], parts[2])
}

/// Imports the standard fixture (RP `rp`, holder `HOLDER` with an active password
/// means), the console client and the operators with their password + TOTP means.
pub async fn provision_staff(server: &TestServer) -> Staff {
    let fixture = server.provision().await;
    let mut persons = Vec::new();
    let mut operators = Vec::new();
    let mut means = Vec::new();
    for (n, (identifier, roles)) in STAFF.iter().enumerate() {
        persons.push(json!({
            "identifier": identifier, "given_name": format!("Operator{n}"), "family_name": "Staff",
            "birthdate": "1990-01-01", "proofing_loa": "high"
        }));
        operators.push(json!({"person": identifier, "roles": roles}));
        means.push(
            json!({"holder": identifier, "kind": "totp", "loa": "substantial", "password": OPERATOR_PASSWORD,
                          "totp_secret": OPERATOR_TOTP_SEED}),
        );
    }
    let report = server
        .import(json!({
            "clients": [client_entry(CONSOLE, json!({"client_name": "Operators' console", "operator_console": true}))],
            "persons": persons,
            "operators": operators,
            "means": means,
        }))
        .await;
    assert_eq!(report.operators, STAFF.len());
    Staff {
        holder_means: fixture.means_ids[0].clone(),
        own_means: STAFF
            .iter()
            .map(|(id, _)| *id)
            .zip(report.means_ids.iter().cloned())
            .collect(),
    }
}

/// Runs the code flow of `client_id` for `identifier`/`password` with `scope` in a fresh
/// browser: the password step's status and body (`next: done` with the redirect on
/// success, a problem otherwise).
pub async fn login_attempt(
    server: &TestServer,
    client_id: &str,
    identifier: &str,
    password: &str,
    scope: &str,
) -> (u16, Value, String) {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(client_id, &challenge);
    set_param(&mut params, "scope", Some(scope));
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    let (status, body) = password_step(server, &browser, &flow, identifier, password).await;
    (status, body, verifier)
}

/// A successful code flow of `client_id` for `identifier`/`password` with `scope`: the
/// token response. An operator (password + TOTP means) also takes the TOTP step.
pub async fn login_tokens(
    server: &TestServer,
    client_id: &str,
    identifier: &str,
    password: &str,
    scope: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(client_id, &challenge);
    set_param(&mut params, "scope", Some(scope));
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    let (status, mut body) = password_step(server, &browser, &flow, identifier, password).await;
    assert_eq!(status, 200, "login of {identifier} at {client_id}: {body}");
    if body["next"] == "totp" {
        body = totp_step(server, &browser, &flow, &operator_code(server, identifier)).await;
    }
    assert_eq!(body["next"], "done", "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let answer = exchange(server, client_id, &code, &verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// The TOTP step of login `flow` in `browser` with `code`: the next step (asserted 200).
pub async fn totp_step(server: &TestServer, browser: &reqwest::Client, flow: &str, code: &str) -> Value {
    let r = browser
        .post(server.at(&format!("/authn/flows/{flow}/totp")))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    let answer = Answer::from(r).await;
    assert_eq!(answer.status, 200, "TOTP step: {}", answer.body);
    answer.body
}

/// A fresh TOTP code of the test operator `identifier` (seed [`OPERATOR_TOTP_SEED`]): a
/// step is accepted once per means, so a second login of the same operator within one
/// step moves the app clock to the next step first.
pub fn operator_code(server: &TestServer, identifier: &str) -> String {
    use eidgate::authn::totp::{step_of, TotpSeed};
    static USED: std::sync::Mutex<Option<HashMap<(String, String), i64>>> = std::sync::Mutex::new(None);
    let mut used = USED.lock().unwrap_or_else(|p| p.into_inner());
    let map = used.get_or_insert_with(HashMap::new);
    // Keyed by the server's data directory, not its URL: a port is reused by later servers
    // whose clocks start afresh (a stale step from a server whose clock was moved an hour
    // ahead would move this one's clock past its flows).
    let key = (server.app.config.data_dir.display().to_string(), identifier.to_owned());
    while map.get(&key).is_some_and(|last| *last >= step_of(server.app.now())) {
        let into = server.app.now().rem_euclid(30);
        server.app.clock.advance(30 - into);
    }
    let step = step_of(server.app.now());
    map.insert(key, step);
    let seed = TotpSeed::from_base32(OPERATOR_TOTP_SEED).unwrap();
    seed.code_at_step(step).unwrap()
}

/// An operator's bearer token: the operator logs in through the console client.
pub async fn operator_token(server: &TestServer, identifier: &str) -> String {
    let tokens = login_tokens(server, CONSOLE, identifier, OPERATOR_PASSWORD, "openid").await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Sends a JSON request: `method` `path` with an optional bearer token, body and
/// `Idempotency-Key`.
pub async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> Answer {
    let mut request = http().request(method, server.at(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    Answer::from(request.send().await.unwrap()).await
}

/// `GET path` with `token`.
pub async fn get(server: &TestServer, path: &str, token: &str) -> Answer {
    call(server, reqwest::Method::GET, path, Some(token), None, None).await
}

/// `POST path` with `token` and a JSON body.
pub async fn post(server: &TestServer, path: &str, token: &str, body: &Value) -> Answer {
    call(server, reqwest::Method::POST, path, Some(token), Some(body), None).await
}

/// A helpdesk status request body.
pub fn status_body(method: &str, evidence: &str) -> Value {
    json!({"reason": "caller reported the means lost", "verification": {"method": method, "evidence": evidence}})
}

/// Evidence of an in-person identity check.
pub const IN_PERSON: &str = "passport LT1234567 checked at the counter";

/// `POST /helpdesk/v1/means/{means}/{command}` with `key` and `body`.
pub async fn helpdesk(server: &TestServer, token: &str, means: &str, command: &str, key: &str, body: &Value) -> Answer {
    call(
        server,
        reqwest::Method::POST,
        &format!("/helpdesk/v1/means/{means}/{command}"),
        Some(token),
        Some(body),
        Some(key),
    )
    .await
}

/// A helpdesk status request with `in_person` verification and a fresh key.
pub async fn helpdesk_in_person(server: &TestServer, token: &str, means: &str, command: &str) -> Answer {
    let key = eidgate::random::token();
    helpdesk(
        server,
        token,
        means,
        command,
        &key,
        &status_body("in_person", IN_PERSON),
    )
    .await
}

/// A registration body with document proofing facts.
pub fn registration(identifier: &str, proofing_loa: &str) -> Value {
    json!({
        "identifier": identifier, "given_name": "Ona", "family_name": "Onaitė",
        "birthdate": "1985-05-05", "proofing_loa": proofing_loa,
        "email": "ona@example.org", "phone": "+37060000000",
        "proofing": {
            "method": "document", "document_type": "passport", "document_number": "LT7654321",
            "issuing_state": "LT", "valid_until": "2031-12-31", "checked_how": "in_person_visual_and_chip"
        }
    })
}

/// `POST /admin/v1/persons` by `token`; asserts 201.
pub async fn register(server: &TestServer, token: &str, identifier: &str, proofing_loa: &str) -> Value {
    let answer = post(
        server,
        "/admin/v1/persons",
        token,
        &registration(identifier, proofing_loa),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.body
}

/// `POST /admin/v1/means` by `token`.
pub async fn apply(server: &TestServer, token: &str, holder: &str, kind: &str, loa: &str) -> Answer {
    post(
        server,
        "/admin/v1/means",
        token,
        &json!({"holder": holder, "kind": kind, "loa": loa}),
    )
    .await
}

/// `POST /admin/v1/means/{id}/approve` by `token` (no body).
pub async fn approve(server: &TestServer, token: &str, id: &str) -> Answer {
    call(
        server,
        reqwest::Method::POST,
        &format!("/admin/v1/means/{id}/approve"),
        Some(token),
        None,
        None,
    )
    .await
}

/// A means issued through the admin API.
pub struct Issued {
    /// The means id.
    pub id: String,
    /// The activation code (from the holder's outbox message).
    pub activation_code: String,
    /// The revocation secret (from the holder's outbox message).
    pub revocation_secret: String,
}

/// The outbox messages (`{data_dir}/outbox/*.json`) of means `means`, oldest first.
pub fn outbox_messages(server: &TestServer, means: &str) -> Vec<Value> {
    let dir = server.app.config.data_dir.join("outbox");
    let mut found: Vec<(String, Value)> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    serde_json::from_str::<Value>(&text).unwrap(),
                )
            })
            .filter(|(_, v)| v["means"] == means)
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().map(|(_, v)| v).collect()
}

/// The latest secret of `kind` (`activation_code` | `revocation_secret`) delivered for
/// `means` through the outbox.
pub fn delivered(server: &TestServer, means: &str, kind: &str) -> String {
    outbox_messages(server, means)
        .into_iter()
        .rev()
        .find(|m| m["kind"] == kind)
        .and_then(|m| m["secret"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no {kind} in the outbox for {means}"))
}

/// Reads the secrets of an approved means from the outbox; asserts the approve answer
/// carries none.
pub fn issued_from(server: &TestServer, id: String, approved: &Answer) -> Issued {
    assert_eq!(approved.body["state"], "issued", "{}", approved.body);
    assert!(approved.body.get("activation_code").is_none(), "{}", approved.body);
    assert!(approved.body.get("revocation_secret").is_none(), "{}", approved.body);
    Issued {
        activation_code: delivered(server, &id, "activation_code"),
        revocation_secret: delivered(server, &id, "revocation_secret"),
        id,
    }
}

/// Applies (as `registrar`) and approves (as `issuer`) a low password means for the
/// registered person `holder`.
pub async fn issue(server: &TestServer, registrar: &str, issuer: &str, holder: &str) -> Issued {
    issue_kind(server, registrar, issuer, holder, "password", "low").await
}

/// `POST /activation/start`.
pub async fn activation_start(server: &TestServer, identifier: &str, code: &str) -> Answer {
    let body = json!({"identifier": identifier, "activation_code": code});
    call(
        server,
        reqwest::Method::POST,
        "/activation/start",
        None,
        Some(&body),
        None,
    )
    .await
}

/// `POST /activation/{activation}/{step}` with `body`.
pub async fn activation_step(server: &TestServer, activation: &str, step: &str, body: &Value) -> Answer {
    call(
        server,
        reqwest::Method::POST,
        &format!("/activation/{activation}/{step}"),
        None,
        Some(body),
        None,
    )
    .await
}

/// The whole activation of a password means: start, accept the versions offered, set
/// `password`. Returns the final answer's body (`{"state": "active", "means"}`).
pub async fn activate(server: &TestServer, identifier: &str, code: &str, password: &str) -> Value {
    let started = activation_start(server, identifier, code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let activation = started.body["activation"].as_str().unwrap();
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    let accepted = activation_step(server, activation, "accept", &accept).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let done = activation_step(server, activation, "password", &json!({"password": password})).await;
    assert_eq!(done.status, 200, "{}", done.body);
    done.body
}

/// The internal id of a person.
pub async fn person_id(server: &TestServer, identifier: &str) -> eidgate::domain::ids::PersonId {
    server
        .app
        .store
        .person_by_identifier(&identifier.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id
}

/// The audit records about `subject`, oldest first.
pub async fn audit_events(server: &TestServer, subject: &str) -> Vec<eidgate::audit::AuditRecord> {
    server.app.store.audit_by_subject(subject, 10_000).await.unwrap()
}

/// How many audit records about `subject` have event type `event`.
pub async fn count_events(server: &TestServer, subject: &str, event: &str) -> usize {
    audit_events(server, subject)
        .await
        .iter()
        .filter(|r| r.event.event_type == event)
        .count()
}

/// The stored state of a means.
pub async fn state_of(server: &TestServer, means: &str) -> String {
    let m = server.app.store.means(means.parse().unwrap()).await.unwrap().unwrap();
    m.status.as_str().to_owned()
}

/// Applies (as `registrar`) and approves (as `issuer`) a means of `kind` at `loa` for the
/// registered person `holder`.
pub async fn issue_kind(
    server: &TestServer,
    registrar: &str,
    issuer: &str,
    holder: &str,
    kind: &str,
    loa: &str,
) -> Issued {
    let applied = apply(server, registrar, holder, kind, loa).await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let id = applied.body["id"].as_str().unwrap().to_owned();
    let approved = approve(server, issuer, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    issued_from(server, id, &approved)
}

/// `GET /activation/{activation}/totp`.
pub async fn activation_totp(server: &TestServer, activation: &str) -> Answer {
    call(
        server,
        reqwest::Method::GET,
        &format!("/activation/{activation}/totp"),
        None,
        None,
        None,
    )
    .await
}

/// The base32 `secret` of an `otpauth://` URI.
pub fn otpauth_secret(uri: &str) -> String {
    let url = url::Url::parse(uri).unwrap();
    assert_eq!(url.scheme(), "otpauth");
    url.query_pairs()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// The current TOTP code (app clock) of a base32 seed.
pub fn totp_now(server: &TestServer, seed_base32: &str) -> String {
    totp_at(server, seed_base32, 0)
}

/// The TOTP code `delta` steps away from the current one (app clock).
pub fn totp_at(server: &TestServer, seed_base32: &str, delta: i64) -> String {
    use eidgate::authn::totp::{step_of, TotpSeed};
    let seed = TotpSeed::from_base32(seed_base32).unwrap();
    seed.code_at_step(step_of(server.app.now()) + delta).unwrap()
}

/// Moves the app clock to 10 s into the next TOTP step, so that a test has 20 s before
/// the step changes under it.
pub fn align_to_step(server: &TestServer) {
    let into = server.app.now().rem_euclid(30);
    server.app.clock.advance(30 - into + 10);
}

/// The whole activation of a `totp` means: start, accept, set `password`, enrol (the
/// seed read from the otpauth URI, as an app would), confirm with the current code.
/// Returns the final answer's body and the base32 seed.
pub async fn activate_totp(server: &TestServer, identifier: &str, code: &str, password: &str) -> (Value, String) {
    let started = activation_start(server, identifier, code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["kind"], "totp");
    let activation = started.body["activation"].as_str().unwrap();
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    let accepted = activation_step(server, activation, "accept", &accept).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let set = activation_step(server, activation, "password", &json!({"password": password})).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body, json!({"next": "totp"}));
    let enrol = activation_totp(server, activation).await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    let seed = otpauth_secret(enrol.body["otpauth_uri"].as_str().unwrap());
    let done = activation_step(
        server,
        activation,
        "totp/confirm",
        &json!({"code": totp_now(server, &seed)}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    (done.body, seed)
}
