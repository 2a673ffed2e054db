//! No gaps (issue 17, R-LOG-1, R-SUP-4): an authorization request answered from the SSO
//! session writes `login.sso` before its code exists, logout writes `logout`, and the
//! published audit keys are the ones that sign.

use serde_json::json;

use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, exchange, location, login, pkce, query, TestServer, REDIRECT,
};

/// A request of `client_id` in `browser`, which holds an SSO session: answered with a code
/// at once. Returns `(code, verifier)`.
pub(crate) async fn sso_code(server: &TestServer, browser: &reqwest::Client, client_id: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let answer = browser
        .get(authorize_url(server, &auth_params(client_id, &challenge)))
        .send()
        .await
        .unwrap();
    let to = location(&answer).expect("a redirect");
    assert!(to.starts_with(REDIRECT), "{to}");
    let code =
        query(&url::Url::parse(&to).unwrap(), "code").unwrap_or_else(|| panic!("no code from the session: {to}"));
    (code, verifier)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_r_sup_4_an_sso_answer_writes_login_sso_and_logout_writes_logout() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({"clients": [client_entry("rp2", json!({}))]}))
        .await;
    let browser = browser();
    let (_, challenge) = pkce();
    login(
        &server,
        &browser,
        &authorize_url(&server, &auth_params("rp", &challenge)),
    )
    .await;
    let store = server.app.store.as_ref();
    let (before, _) = store.audit_head().await.unwrap();
    let login_success = store
        .audit_after(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .rfind(|r| r.event.event_type == "login.success")
        .expect("the ceremony was recorded");

    // Another relying party: answered from the session, no ceremony.
    let (code, verifier) = sso_code(&server, &browser, "rp2").await;
    let added = store.audit_after(before, 100).await.unwrap();
    let sso: Vec<_> = added.iter().filter(|r| r.event.event_type == "login.sso").collect();
    assert_eq!(sso.len(), 1, "{added:?}");
    let sso = sso[0];
    assert_eq!(sso.event.actor, login_success.event.actor);
    assert_eq!(sso.event.subject, login_success.event.subject);
    let data = &sso.event.data;
    assert_eq!(data["client_id"], "rp2");
    assert_eq!(data["sid"], login_success.event.data["sid"]);
    assert_eq!(data["acr"], login_success.event.data["loa"]);
    assert_eq!(data["amr"], json!(["pwd"]), "{data}");
    assert_eq!(format!("means:{}", data["means"].as_str().unwrap()), sso.event.subject);
    // The code is good, and the holder sees the SSO login on their page (R-SUP-4).
    assert_eq!(exchange(&server, "rp2", &code, &verifier).await.status, 200);
    let me: serde_json::Value = browser
        .get(server.at("/account/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: Vec<&str> = me["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"login.sso"), "{events:?}");

    let (before, _) = store.audit_head().await.unwrap();
    let out = browser.get(server.at("/logout")).send().await.unwrap();
    assert!(out.status().as_u16() < 400);
    let added = store.audit_after(before, 100).await.unwrap();
    let logout = added
        .iter()
        .find(|r| r.event.event_type == "logout")
        .unwrap_or_else(|| panic!("{added:?}"));
    assert_eq!(logout.event.data["sid"], login_success.event.data["sid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_audit_keys_are_published_with_thumbprint_kids() {
    let server = TestServer::start().await;
    let r = crate::support::server::http()
        .get(server.at("/audit/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/jwk-set+json"
    );
    let text = r.text().await.unwrap();
    let published = eidgate::audit::trust::parse(&text).unwrap();
    let signing = eidgate::hsm::AuditSigner::audit_keys(server.app.hsm.as_deref().unwrap());
    assert!(!signing.is_empty());
    assert_eq!(published, signing);
}

/// State-changing routes that write no record of their own, and why.
const NO_RECORD: &[(&str, &str)] = &[
    ("POST /authorize", "the same handler as GET /authorize (walked)"),
    ("POST /logout", "the same handler as GET /logout (walked)"),
    (
        "POST /token",
        "redeems a code or refresh token whose issuance is recorded (login.success / login.sso, \
         same sid); a record per token would serialise the token endpoint on the audit head",
    ),
    (
        "POST /par",
        "keeps the pushed request in the ephemeral store for its lifetime; the login it leads \
         to is recorded",
    ),
    (
        "POST /authn/flows/{flow}/cancel",
        "the holder abandons a login: the ephemeral flow ends and the client gets \
         access_denied; no code, token, session or stored state comes of it (driven in \
         audit_walk::legal, which checks it writes nothing)",
    ),
    (
        "POST /activation/{id}/smartcard/challenge",
        "hands out a one-time nonce (ephemeral, short-lived); the token step that consumes it \
         records the activation or its failure (driven in audit_walk::smartcard, which checks the \
         challenge writes nothing)",
    ),
    (
        "POST /authn/flows/{flow}/smartcard/challenge",
        "hands out a one-time nonce (ephemeral, short-lived); the token step that consumes it \
         records login.success or login.failure (driven in audit_walk::smartcard, which checks the \
         challenge writes nothing)",
    ),
    (
        "POST /activation/{id}/webauthn/start",
        "hands out the registration options and a one-time challenge (ephemeral); the finish \
         step records the credential or the failure (driven in audit_walk::fido, which checks the \
         challenge writes nothing)",
    ),
    (
        "POST /authn/flows/{flow}/webauthn/start",
        "hands out the assertion options and a one-time challenge (ephemeral); the finish step \
         records login.success or login.failure (driven in audit_walk::fido, which checks the \
         challenge writes nothing)",
    ),
    (
        "POST /helpdesk/session",
        "the helpdesk console redeems its code, as POST /token does: the login it completes is \
         recorded (login.success, same sid); a person who is not an operator is recorded \
         operator.access_denied (helpdesk_console)",
    ),
    (
        "POST /helpdesk/session/refresh",
        "the helpdesk console renews its access token with its refresh token, as POST /token \
         does; a replayed refresh token revokes the grant",
    ),
    ("POST /introspect", "reads"),
    ("POST /userinfo", "reads"),
];

/// Every route in `src/` that can issue a code or token or change state: each `.route(...)`
/// with `post`, `put`, `patch` or `delete`, plus `GET /authorize` and `GET /logout`.
pub(crate) fn state_changing_routes() -> std::collections::BTreeSet<String> {
    let mut files = Vec::new();
    crate::layering::rust_files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = std::collections::BTreeSet::new();
    for file in files {
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for (start, _) in text.match_indices(".route(") {
            // The call's arguments, up to the matching parenthesis.
            let rest = &text[start + ".route(".len()..];
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let call = &rest[..end];
            let Some(path) = call.trim_start().strip_prefix('"').and_then(|p| p.split('"').next()) else {
                continue; // a path constant: the smartcard CA and CRL (GET only)
            };
            for method in ["post", "put", "patch", "delete", "get"] {
                let used = call.contains(&format!(" {method}("))
                    || call.contains(&format!("::{method}("))
                    || call.contains(&format!(".{method}("))
                    || call.contains(&format!(",{method}("));
                let changes = method != "get" || path == "/authorize" || path == "/logout";
                if used && changes {
                    found.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
    }
    found
}

/// The catalogue walk drove `walked`, the walks in `audit_walk` drove theirs; every other
/// state-changing route must be classified in `NO_RECORD`.
pub(crate) fn every_state_changing_route_is_accounted_for(walked: &std::collections::BTreeMap<&str, &str>) {
    let all = state_changing_routes();
    assert!(all.contains("GET /authorize") && all.contains("POST /token"), "{all:?}");
    let walked: std::collections::BTreeSet<&str> = walked.keys().copied().chain(crate::audit_walk::routes()).collect();
    let no_record = |r: &str| NO_RECORD.iter().any(|(n, _)| *n == r);
    let unclassified: Vec<&String> = all
        .iter()
        .filter(|r| !walked.contains(r.as_str()) && !no_record(r))
        .collect();
    assert!(
        unclassified.is_empty(),
        "state-changing routes neither walked nor classified: {unclassified:?}"
    );
    let stale: Vec<&str> = walked
        .iter()
        .copied()
        .chain(NO_RECORD.iter().map(|(r, _)| *r))
        .filter(|r| !all.contains(*r))
        .collect();
    assert!(stale.is_empty(), "classified routes that no longer exist: {stale:?}");
    let twice: Vec<&str> = walked.iter().copied().filter(|r| no_record(r)).collect();
    assert!(
        twice.is_empty(),
        "walked, so they write a record: drop them from NO_RECORD: {twice:?}"
    );
}
