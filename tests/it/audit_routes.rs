//! No gaps (issue 17, R-LOG-1, R-SUP-4): an authorization request answered from the SSO
//! session writes `login.sso` before its code exists, logout writes `logout`, and the
//! published audit keys are the ones that sign.

use serde_json::json;

use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, exchange, location, login, pkce, query, TestServer, REDIRECT,
};

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
    let (verifier, challenge) = pkce();
    let answer = browser
        .get(authorize_url(&server, &auth_params("rp2", &challenge)))
        .send()
        .await
        .unwrap();
    let to = location(&answer).expect("a redirect");
    assert!(to.starts_with(REDIRECT), "{to}");
    let code = query(&url::Url::parse(&to).unwrap(), "code").expect("a code from the session");
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
