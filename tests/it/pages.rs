//! The citizen-facing pages over HTTP (issue 24): the bare personal code logs in, the
//! language follows `ui_locales`, `Accept-Language` and the switcher, the error page speaks
//! the visitor's language, the terms are readable at their own address, and the service
//! name comes from `[ui]`. (The pages in a browser, with the accessibility checker:
//! `pages_browser.rs`.)

use crate::support::server::{
    auth_params, authorize_url, browser, exchange, http, jwt_part, location, password_step, pkce, query, set_param,
    start_login, TestServer, PASSWORD,
};

/// An authorization request of the fixture RP with `extra` parameters; its verifier.
fn request(server: &TestServer, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    for (name, value) in extra {
        set_param(&mut params, name, Some(value));
    }
    (authorize_url(server, &params), verifier)
}

async fn page(client: &reqwest::Client, url: &str, accept_language: Option<&str>) -> (u16, String, Option<String>) {
    let mut r = client.get(url);
    if let Some(l) = accept_language {
        r = r.header("accept-language", l);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("eidgate_lang="))
        .map(str::to_owned);
    (status, r.text().await.unwrap(), cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_data_3_bare_personal_code_logs_in() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let (url, verifier) = request(&server, &[("scope", "openid eidas")]);
    let flow = start_login(&browser, &url).await;
    // The page shows the expected format next to the field.
    let (status, html, _) = page(&browser, &server.at(&format!("/login?flow={flow}")), Some("en")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"identifier-hint\"") && html.contains("for example 38001085718"),
        "{html}"
    );
    assert!(html.contains("aria-describedby=\"identifier-hint\""), "{html}");
    // The personal code alone, the provider's country (LT) implied.
    let (status, body) = password_step(&server, &browser, &flow, " 38001085718 ", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done", "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    let code = query(&back, "code").unwrap_or_else(|| panic!("{back}"));
    let answer = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let claims = jwt_part(answer.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/low", "{claims}");
    // The holder the stored identifier names.
    let userinfo: serde_json::Value = http()
        .get(server.at("/userinfo"))
        .bearer_auth(answer.body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["person_identifier"], "LT/LT/38001085718", "{userinfo}");
    // Another country's code is not taken for the provider's.
    let other = crate::support::server::browser();
    let (url, _) = request(&server, &[]);
    let flow = start_login(&other, &url).await;
    let (status, _) = password_step(&server, &other, &flow, "LV:38001085718", PASSWORD).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_login_language_by_ui_locales_then_accept_language_then_the_switcher() {
    let server = TestServer::start_with(|c| c.ui.service_name = "Valstybės eID".into()).await;
    server.provision().await;
    let browser = browser();
    // ui_locales goes from /authorize to the login page and wins over Accept-Language.
    let (url, _) = request(&server, &[("ui_locales", "de lt-LT en")]);
    let r = browser.get(&url).send().await.unwrap();
    let to = location(&r).unwrap();
    assert!(to.starts_with("/login?flow=") && to.ends_with("&ui_locales=lt"), "{to}");
    let (_, html, cookie) = page(&browser, &server.at(&to), Some("lv, en;q=0.5")).await;
    assert!(html.contains("<html lang=\"lt\">"), "{html}");
    assert!(
        html.contains("Asmens kodas") && html.contains("Valstybės eID"),
        "{html}"
    );
    assert!(cookie.is_none(), "ui_locales is not a choice of the visitor");
    assert!(!html.contains("Personal code"), "no English left: {html}");
    // Without ui_locales: Accept-Language.
    let flow = to
        .trim_start_matches("/login?flow=")
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let plain = server.at(&format!("/login?flow={flow}"));
    let (_, html, _) = page(&browser, &plain, Some("fr, lv;q=0.9, en;q=0.5")).await;
    assert!(
        html.contains("<html lang=\"lv\">") && html.contains("Personas kods"),
        "{html}"
    );
    // The switcher: links keep the flow, the choice is remembered over Accept-Language.
    assert!(html.contains(&format!("href=\"?flow={flow}&amp;lang=en\"")), "{html}");
    let (_, html, cookie) = page(&browser, &format!("{plain}&lang=en"), Some("lv")).await;
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Personal code"),
        "{html}"
    );
    let cookie = cookie.expect("the choice is remembered");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let (_, html, _) = page(&browser, &plain, Some("lv")).await;
    assert!(html.contains("<html lang=\"en\">"), "remembered: {html}");
    // The scripts' messages are in the page, in its language.
    assert!(
        html.contains("\"js-login-credentials-wrong\":\"The personal code or the password is wrong."),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_error_page_speaks_the_visitors_language_and_escapes() {
    let server = TestServer::start().await;
    server.provision().await;
    let client = http();
    let (url, _) = request(&server, &[("client_id", "nobody<b>")]);
    let (status, html, _) = page(&client, &url, Some("lt")).await;
    assert_eq!(status, 400);
    assert!(html.contains("<html lang=\"lt\">"), "{html}");
    assert!(html.contains("Šios prisijungimo užklausos apdoroti negalima"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    // ui_locales of the refused request counts too.
    let (url, _) = request(&server, &[("client_id", "nobody"), ("ui_locales", "lv")]);
    let (_, html, _) = page(&client, &url, Some("en")).await;
    assert!(html.contains("<html lang=\"lv\">"), "{html}");
    // The logout confirmation.
    let (status, html, _) = page(&client, &server.at("/logout"), Some("lt-LT,lt;q=0.9")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Jūs atsijungėte"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_reg_1_terms_and_advice_are_readable_at_their_own_address() {
    let server = TestServer::start().await;
    let client = http();
    let version = &server.app.config.terms.terms_version;
    for (lang, doc, words) in [
        ("en", "terms", "TERMS OF USE"),
        ("lt", "terms", "NAUDOJIMO SĄLYGOS"),
        ("lv", "security-advice", "DROŠĪBAS IETEIKUMI"),
    ] {
        let r = client
            .get(server.at(&format!("/terms/{lang}/{doc}-{version}.txt")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{lang} {doc}");
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        let text = r.text().await.unwrap();
        assert!(text.contains(words) && text.contains(version.as_str()), "{text}");
    }
    for missing in [
        "/terms/de/terms-2026-11.txt",
        "/terms/en/terms-1999-01.txt",
        "/terms/EN/terms-2026-11.txt",
    ] {
        let r = client.get(server.at(missing)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    // The activation page links them and asks for the password twice.
    let (_, html, _) = page(&client, &server.at("/activate"), Some("en")).await;
    assert!(
        html.contains("id=\"terms-link\"") && html.contains("id=\"confirm-password\""),
        "{html}"
    );
    // Discovery lists the languages of the pages.
    let discovery: serde_json::Value = client
        .get(server.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["ui_locales_supported"], serde_json::json!(["en", "lt", "lv"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_24_the_login_page_shows_the_clients_logo_from_its_origin_only() {
    use crate::support::server::client_entry;
    use serde_json::json;
    let server = TestServer::start().await;
    server.provision().await;
    let logo = "https://cdn.rp.example:8443/brand/logo.png";
    server
        .import(json!({"clients": [client_entry("branded", json!({"client_name": "Branded RP", "logo_uri": logo}))]}))
        .await;
    let csp_of = |r: &reqwest::Response| r.headers()["content-security-policy"].to_str().unwrap().to_owned();

    // The branded client's flow: the logo on the page, its origin (only) admitted.
    let browser = browser();
    let (_, challenge) = pkce();
    let flow = start_login(&browser, &authorize_url(&server, &auth_params("branded", &challenge))).await;
    let r = browser
        .get(server.at(&format!("/login?flow={flow}")))
        .send()
        .await
        .unwrap();
    let csp = csp_of(&r);
    assert!(
        csp.contains("img-src 'self' data: https://cdn.rp.example:8443;"),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self';") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "<img id=\"client-logo\" class=\"client-logo\" alt=\"\" src=\"{logo}\">"
        )),
        "{html}"
    );

    // Another client's flow, and a flow of another browser: the default policy.
    let (url, _) = request(&server, &[]);
    let plain = start_login(&browser, &url).await;
    let r = browser
        .get(server.at(&format!("/login?flow={plain}")))
        .send()
        .await
        .unwrap();
    assert!(csp_of(&r).contains("img-src 'self' data:;"));
    let r = http()
        .get(server.at(&format!("/login?flow={flow}")))
        .send()
        .await
        .unwrap();
    assert!(
        csp_of(&r).contains("img-src 'self' data:;"),
        "a stranger's browser learns nothing"
    );

    // A logo that is not plain https is refused at registration, naming the client.
    let refused = eidgate::admin::import::import_sealed(
        server.app.store.as_ref(),
        Some(server.app.sealer.as_ref()),
        &json!({"clients": [client_entry("sneaky", json!({"logo_uri": "https://x.example/l.png; script-src *"}))]})
            .to_string(),
        &server.app.config,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("sneaky") && refused.contains("logo_uri"), "{refused}");
}
