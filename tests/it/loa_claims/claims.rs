//! The eIDAS minimum data set and consent: per-client allowed claims, pairwise subjects,
//! consent asked, refused, stored and revoked, verified claims (R-DATA-1..4).

use serde_json::{json, Value};

use super::*;
use crate::support::operators::count_events;
use crate::support::server::{
    auth_params, authorize_url, client_entry, exchange, jwt_part, password_step, pkce, query, set_param, start_login,
    Answer, HOLDER,
};

#[tokio::test]
async fn r_data_4_a_client_allowed_only_names_never_receives_birthdate_even_when_it_asks() {
    let names_only = client_entry(
        "names",
        json!({"allowed_claims": ["given_name", "family_name"], "country": "LV"}),
    );
    let server = server(vec![names_only]).await;
    let claims = json!({
        "userinfo": {"birthdate": null, "person_identifier": null},
        "id_token": {"birthdate": {"essential": true}, "given_name": null}
    })
    .to_string();
    let login = begin(&server, "names", &[("claims", Some(&claims))]).await;
    let info = flow_info(&server, &login).await;
    assert_eq!(info["claims"], json!(["family_name", "given_name"]));
    let (status, body) = password_step(
        &server,
        &login.browser,
        &login.flow,
        HOLDER,
        crate::support::server::PASSWORD,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    let code = query(&back, "code").unwrap();
    let answer = exchange(&server, "names", &code, &login.verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let id = jwt_part(answer.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["given_name"], "Jonas");
    assert!(id.get("birthdate").is_none(), "{id}");
    let info = userinfo(&server, answer.body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["family_name"], "Jonaitis");
    assert!(info.get("birthdate").is_none(), "{info}");
    assert!(info.get("person_identifier").is_none(), "{info}");
    // Nor as `sub` (issue 24): a client not allowed the identifier is pairwise by default.
    for sub in [&id["sub"], &info["sub"]] {
        let sub = sub.as_str().unwrap();
        assert!(!sub.contains("38001085718") && !sub.contains('/'), "{sub}");
    }
    assert_eq!(id["sub"], info["sub"]);
}

#[tokio::test]
async fn r_data_4_issue_24_import_refuses_a_public_sub_without_person_identifier() {
    let server = server(vec![]).await;
    let public_names_only = client_entry(
        "names-public",
        json!({"allowed_claims": ["given_name"], "subject_type": "public"}),
    );
    let refused = eidgate::admin::import::import_sealed(
        server.app.store.as_ref(),
        Some(server.app.sealer.as_ref()),
        &json!({"clients": [public_names_only]}).to_string(),
        &server.app.config,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("names-public") && refused.contains("person_identifier"),
        "{refused}"
    );
    let stored = server.app.store.client(&"names-public".parse().unwrap()).await.unwrap();
    assert!(stored.is_none(), "nothing written");
}

#[tokio::test]
async fn r_data_3_pairwise_sub_is_stable_per_sector_and_differs_across_sectors() {
    let clients = vec![
        client_entry(
            "pw-a",
            json!({"subject_type": "pairwise", "sector_identifier": "https://sector-a.example", "country": "LV"}),
        ),
        client_entry(
            "pw-a2",
            json!({"subject_type": "pairwise", "sector_identifier": "https://sector-a.example"}),
        ),
        client_entry(
            "pw-b",
            json!({"subject_type": "pairwise", "sector_identifier": "https://sector-b.example"}),
        ),
    ];
    let server = server(clients).await;
    let mut subs = Vec::new();
    for client in ["pw-a", "pw-a", "pw-a2", "pw-b"] {
        let login = begin(&server, client, &[]).await;
        let (status, body) = password_step(
            &server,
            &login.browser,
            &login.flow,
            HOLDER,
            crate::support::server::PASSWORD,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let done = Answer {
            status,
            headers: Default::default(),
            body,
        };
        let t = tokens(&server, &login, client, &done).await;
        let id = jwt_part(t["id_token"].as_str().unwrap(), 1);
        if client == "pw-a" {
            let info = userinfo(&server, t["access_token"].as_str().unwrap()).await;
            assert_eq!(info["person_identifier"], "LT/LV/38001085718");
        }
        subs.push(id["sub"].as_str().unwrap().to_owned());
    }
    assert_eq!(subs[0], subs[1], "stable across logins");
    assert_eq!(subs[0], subs[2], "same sector, same sub");
    assert_ne!(subs[0], subs[3], "another sector, another sub");
    assert!(!subs.iter().any(|s| s.contains("38001085718")));
}

fn consenting_client(id: &str, mode: &str) -> Value {
    client_entry(id, json!({"consent": mode}))
}

#[tokio::test]
async fn r_data_4_consent_refused_ends_with_access_denied_and_no_code() {
    let server = server(vec![consenting_client("ask", "once")]).await;
    let login = begin(&server, "ask", &[]).await;
    let (status, body) = password_step(
        &server,
        &login.browser,
        &login.flow,
        HOLDER,
        crate::support::server::PASSWORD,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "consent");
    assert_eq!(
        body["claims"],
        json!(["birthdate", "family_name", "given_name", "person_identifier"])
    );
    // The page can read the pending step.
    assert_eq!(flow_info(&server, &login).await["next"], "consent");
    let refused = step(&server, &login, "consent", json!({"approve": false})).await;
    let back = redirect_of(&refused);
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert!(query(&back, "code").is_none());
    assert_eq!(count_events(&server, "client:ask", "consent.refused").await, 1);
    // The flow is over.
    let again = step(&server, &login, "consent", json!({"approve": true})).await;
    assert_eq!(again.status, 404);
    assert!(server
        .app
        .store
        .consents_of(
            server
                .app
                .store
                .person_by_identifier(&HOLDER.parse().unwrap())
                .await
                .unwrap()
                .unwrap()
                .id
        )
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn r_data_4_consent_is_asked_once_per_attribute_set_stored_and_revocable_from_account() {
    let server = server(vec![
        consenting_client("ask", "once"),
        consenting_client("every", "always"),
    ])
    .await;
    let password = crate::support::server::PASSWORD;
    // First login: consent asked, approved, code issued.
    let login = begin(&server, "ask", &[]).await;
    let (_, body) = password_step(&server, &login.browser, &login.flow, HOLDER, password).await;
    assert_eq!(body["next"], "consent");
    let done = step(&server, &login, "consent", json!({"approve": true})).await;
    tokens(&server, &login, "ask", &done).await;
    assert_eq!(count_events(&server, "client:ask", "consent.granted").await, 1);
    // Second login (new browser, no SSO): not asked again.
    let login = begin(&server, "ask", &[]).await;
    let (_, body) = password_step(&server, &login.browser, &login.flow, HOLDER, password).await;
    assert_eq!(body["next"], "done", "{body}");
    // A larger attribute set is asked again (only `openid` + one claim first).
    let claims = json!({"userinfo": {"given_name": null}}).to_string();
    let login2 = begin(
        &server,
        "every",
        &[("scope", Some("openid")), ("claims", Some(&claims))],
    )
    .await;
    let (_, body) = password_step(&server, &login2.browser, &login2.flow, HOLDER, password).await;
    assert_eq!(body["next"], "consent", "`always` asks at every login");
    assert_eq!(body["claims"], json!(["given_name"]));
    // SSO in the first browser with prompt=none still needs no consent at `ask`...
    let (verifier, challenge) = pkce();
    let _ = verifier;
    let mut params = auth_params("ask", &challenge);
    set_param(&mut params, "prompt", Some("none"));
    let r = login.browser.get(authorize_url(&server, &params)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.contains("code="), "{to}");
    // ...and the holder withdraws the consent on /account.
    let listed: Value = login
        .browser
        .get(server.at("/account/api/consents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["consents"][0]["client_id"], "ask");
    let r = login
        .browser
        .post(server.at("/account/api/consents/ask/revoke"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count_events(&server, "client:ask", "consent.revoked").await, 1);
    // Now SSO with prompt=none cannot answer without the holder: consent_required.
    let r = login.browser.get(authorize_url(&server, &params)).send().await.unwrap();
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query(&to, "error").as_deref(), Some("consent_required"));
    // Without prompt=none the browser goes to the page, which shows the consent step.
    set_param(&mut params, "prompt", None);
    let flow = start_login(&login.browser, &authorize_url(&server, &params)).await;
    let again = Login {
        browser: login.browser.clone(),
        flow,
        verifier: String::new(),
    };
    assert_eq!(flow_info(&server, &again).await["next"], "consent");
}

#[tokio::test]
async fn r_data_1_r_data_4_verified_claims_wrap_the_data_set_with_the_achieved_level() {
    let server = server(vec![]).await;
    let claims = json!({
        "userinfo": {"verified_claims": {
            "verification": {"trust_framework": null},
            "claims": {"given_name": null, "family_name": null, "gender": null}
        }},
        "id_token": {"verified_claims": {"verification": {"trust_framework": null}, "claims": {"birthdate": null}}}
    })
    .to_string();
    let login = begin(&server, "rp", &[("scope", Some("openid")), ("claims", Some(&claims))]).await;
    let (status, body) = password_step(
        &server,
        &login.browser,
        &login.flow,
        HOLDER,
        crate::support::server::PASSWORD,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let t = tokens(
        &server,
        &login,
        "rp",
        &Answer {
            status,
            headers: Default::default(),
            body,
        },
    )
    .await;
    let id = jwt_part(t["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        id["verified_claims"],
        json!({"verification": {"trust_framework": "eidas", "assurance_level": "low"},
               "claims": {"birthdate": "1980-01-08"}})
    );
    let info = userinfo(&server, t["access_token"].as_str().unwrap()).await;
    assert_eq!(
        info["verified_claims"],
        json!({"verification": {"trust_framework": "eidas", "assurance_level": "low"},
               "claims": {"given_name": "Jonas", "family_name": "Jonaitis"}}),
        "gender is not on the allow list: {info}"
    );
    assert!(info.get("given_name").is_none(), "{info}");
}
