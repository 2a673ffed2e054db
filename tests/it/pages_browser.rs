//! The citizen-facing pages in headless Chromium (issue 24): the login page of a client,
//! the activation page, the account page (after a real login with the bare personal code)
//! and the error page, each in English, Lithuanian and Latvian at desktop (1280×800) and
//! mobile (375×740) width. axe-core (pinned in `tests/browser/package-lock.json`,
//! installed by `scripts/install-deps.sh test`) must find no serious or critical
//! violation (WCAG 2.1 AA rules among them); a screenshot of each goes to
//! `target/test-artefacts/pages/<page>-<lang>-<width>.png`.
//!
//! A missing Chromium fails the test as in `fido_browser.rs`; a missing axe-core fails
//! it too: an accessibility check that cannot run is not a pass.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::cdp::{Browser, Page};
use crate::support::server::{auth_params, authorize_url, pkce, TestServer, PASSWORD};

pub(crate) const LANGS: [&str; 3] = ["en", "lt", "lv"];
pub(crate) const WIDTHS: [(&str, u32, u32); 2] = [("desktop", 1280, 800), ("mobile", 375, 740)];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of axe-core's `axe.min.js`; the test fails when it is not installed.
pub(crate) fn axe_source() -> String {
    let path = root().join("tests/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core not found at {} ({e}): run `scripts/install-deps.sh test` \
             (npm ci in tests/browser) before the browser tests",
            path.display()
        )
    })
}

/// Checks the page as it is now: its language, no serious or critical violation; saves
/// the screenshot `<page>-<lang>-<width>.png`.
pub(crate) async fn check(page: &Page<'_>, axe: &str, name: &str, lang: &str, width: &str) {
    assert_eq!(page.eval("document.documentElement.lang").await, lang, "{name} {lang}");
    let shot = root()
        .join("target/test-artefacts/pages")
        .join(format!("{name}-{lang}-{width}.png"));
    page.screenshot_page(&shot).await;
    let violations = page.axe_serious(axe).await;
    assert!(
        violations.is_empty(),
        "{name} {lang} {width}: serious or critical accessibility violations:\n{}",
        serde_json::to_string_pretty(&Value::Array(violations)).unwrap_or_default()
    );
}

/// Every section of the page shown at once (the later steps' markup checked too).
async fn check_every_step(page: &Page<'_>, axe: &str, name: &str, lang: &str) {
    page.eval(
        "document.querySelectorAll('main section, main [role=tablist]').forEach((s) => { s.hidden = false; }); true",
    )
    .await;
    let violations = page.axe_serious(axe).await;
    assert!(
        violations.is_empty(),
        "{name} {lang} (every step shown): serious or critical accessibility violations:\n{}",
        serde_json::to_string_pretty(&Value::Array(violations)).unwrap_or_default()
    );
}

/// Loads `url` at every width and checks it; `ready` is a JS condition the page reaches
/// once its scripts are done.
async fn each_width(page: &Page<'_>, axe: &str, name: &str, lang: &str, url: &str, ready: &str) {
    for (width, w, h) in WIDTHS {
        page.viewport(w, h).await;
        page.goto(url).await;
        page.wait_for(ready).await;
        check(page, axe, name, lang, width).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_accessible_in_every_language_at_desktop_and_mobile_width() {
    let axe = axe_source();
    let server = TestServer::start_with(|c| c.ui.service_name = "eidgate demo".into()).await;
    server.provision().await;
    let browser = Browser::launch().await;
    let page = browser.page().await;

    // The checker runs and sees: an unlabelled field and grey-on-white text are found.
    page.goto(&server.at("/activate?lang=en")).await;
    page.eval(
        "const i = document.createElement('input'); document.querySelector('main').append(i); \
         const p = document.createElement('p'); p.textContent = 'faint'; p.style.color = '#ddd'; \
         document.querySelector('main').append(p); true",
    )
    .await;
    let found: Vec<String> = page
        .axe_serious(&axe)
        .await
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        found.contains(&"label".to_owned()) && found.contains(&"color-contrast".to_owned()),
        "{found:?}"
    );

    for lang in LANGS {
        // The error page of an untrusted request (unknown client), language by ui_locales.
        let error = server.at(&format!("/authorize?client_id=nobody&ui_locales={lang}"));
        each_width(
            &page,
            &axe,
            "error",
            lang,
            &error,
            "document.querySelector('h1') !== null",
        )
        .await;

        // The activation page.
        let activate = server.at(&format!("/activate?lang={lang}"));
        each_width(
            &page,
            &axe,
            "activate",
            lang,
            &activate,
            "document.getElementById('code-form') !== null",
        )
        .await;
        check_every_step(&page, &axe, "activate", lang).await;

        // The login page of the fixture RP (methods as the level allows).
        let (_, challenge) = pkce();
        let authorize = authorize_url(&server, &auth_params("rp", &challenge));
        page.goto(&authorize).await;
        page.wait_for("location.pathname === '/login'").await;
        let login = format!(
            "{}&lang={lang}",
            page.eval("location.href").await.as_str().unwrap_or_default()
        );
        let ready = "!document.getElementById('level').hidden";
        each_width(&page, &axe, "login", lang, &login, ready).await;
        assert!(
            page.eval("document.getElementById('heading').textContent")
                .await
                .as_str()
                .unwrap_or_default()
                .contains("Test RP"),
            "the login page names the client"
        );
        check_every_step(&page, &axe, "login", lang).await;
    }

    // A real login through the account page with the bare personal code, then the
    // account page with its data.
    page.viewport(1280, 800).await;
    page.goto(&server.at("/account/login")).await;
    page.wait_for("location.pathname === '/login' && !document.getElementById('level').hidden")
        .await;
    let mut events = browser.events();
    page.eval(&format!(
        "document.getElementById('tab-password').click(); \
         document.getElementById('identifier').value = '38001085718'; \
         document.getElementById('password').value = '{PASSWORD}'; \
         document.getElementById('password-form').requestSubmit(); true"
    ))
    .await;
    page.next_event(&mut events, "Page.loadEventFired").await;
    page.wait_for("location.pathname === '/account' && !document.getElementById('me').hidden")
        .await;
    for lang in LANGS {
        let account = server.at(&format!("/account?lang={lang}"));
        let ready = "!document.getElementById('me').hidden && document.querySelectorAll('#events tbody tr').length > 0";
        each_width(&page, &axe, "account", lang, &account, ready).await;
        // Readable: no raw event code, no `LT:` identifier.
        let text = page.eval("document.querySelector('main').innerText").await;
        let text = text.as_str().unwrap_or_default();
        assert!(
            !text.contains("login.success") && !text.contains("LT:"),
            "{lang}: {text}"
        );
        // Revoke asks first, in the page.
        page.eval("document.querySelector('#means button.danger').click(); true")
            .await;
        page.wait_for("!document.getElementById('revoke-confirm').hidden").await;
        let shot = root().join(format!("target/test-artefacts/pages/account-revoke-{lang}-desktop.png"));
        page.screenshot_page(&shot).await;
        let violations = page.axe_serious(&axe).await;
        assert!(violations.is_empty(), "account revoke step {lang}: {violations:?}");
        page.eval("document.getElementById('revoke-no').click(); true").await;
    }
    // Log out ends the session: the account page then offers to log in.
    page.goto(&server.at("/account?lang=en")).await;
    page.wait_for("!document.getElementById('logout-form').hidden").await;
    let mut events = browser.events();
    page.eval("document.getElementById('logout').click(); true").await;
    page.next_event(&mut events, "Page.loadEventFired").await;
    page.wait_for("location.pathname === '/logout'").await;
    page.goto(&server.at("/account?lang=en")).await;
    page.wait_for("document.querySelector('#status a[href=\"/account/login\"]') !== null")
        .await;
}

/// Waits for `condition`, then saves the page as `<name>.png` and checks it with axe.
async fn step(page: &Page<'_>, axe: &str, condition: &str, name: &str) {
    page.wait_for(condition).await;
    page.screenshot_page(&root().join(format!("target/test-artefacts/pages/{name}.png")))
        .await;
    let violations = page.axe_serious(axe).await;
    assert!(violations.is_empty(), "{name}: {violations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_reg_1_activation_shows_the_terms_confirms_the_password_and_clears_its_errors() {
    use crate::support::operators::{
        issue_kind, operator_token, provision_staff, register, state_of, ISSUER, REGISTRAR,
    };
    const APPLICANT: &str = "LT/LT/48505050505";
    let axe = axe_source();
    let server = TestServer::start().await;
    server.provision().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, APPLICANT, "substantial").await;
    let issued = issue_kind(&server, &registrar, &issuer, APPLICANT, "password", "low").await;

    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.viewport(375, 740).await;
    page.goto(&server.at("/activate?lang=lt")).await;
    // The bare personal code, the provider's country implied.
    page.eval(&format!(
        "document.getElementById('identifier').value = '48505050505'; \
         document.getElementById('code').value = '{}'; \
         document.getElementById('code-form').requestSubmit(); true",
        issued.activation_code
    ))
    .await;
    // The full texts are shown, each linked to its own address.
    step(
        &page,
        &axe,
        "!document.getElementById('step-accept').hidden && \
         document.getElementById('terms-text').textContent.includes('NAUDOJIMO SĄLYGOS') && \
         document.getElementById('advice-text').textContent.includes('SAUGUMO PATARIMAI')",
        "activate-accept-lt-mobile",
    )
    .await;
    let link = page
        .eval("document.getElementById('terms-link').getAttribute('href')")
        .await;
    assert_eq!(link, "/terms/lt/terms-2026-11.txt");
    // Each checkbox sits on the line of its label (same row, left of the text).
    let aligned = page
        .eval(
            "(() => { const box = document.getElementById('accept-terms').getBoundingClientRect(); \
             const label = document.querySelector('label[for=accept-terms]').getBoundingClientRect(); \
             return box.right <= label.left && box.top < label.bottom && box.bottom > label.top; })()",
        )
        .await;
    assert_eq!(aligned, true, "checkbox beside its label");
    page.eval(
        "document.getElementById('accept-terms').checked = true; \
         document.getElementById('accept-advice').checked = true; \
         document.getElementById('accept-form').requestSubmit(); true",
    )
    .await;
    page.wait_for("!document.getElementById('step-password').hidden").await;
    // A mismatch is refused in the page, in plain words.
    page.eval(
        "document.getElementById('new-password').value = 'violet anchor meadow 42'; \
         document.getElementById('new-password').dispatchEvent(new Event('input')); \
         document.getElementById('confirm-password').value = 'violet anchor meadow 43'; \
         document.getElementById('password-form').requestSubmit(); true",
    )
    .await;
    step(
        &page,
        &axe,
        "!document.getElementById('error').hidden && document.getElementById('error').textContent.includes('nesutampa')",
        "activate-password-mismatch-lt-mobile",
    )
    .await;
    let hint = page
        .eval("document.getElementById('password-strength').textContent")
        .await;
    assert!(!hint.as_str().unwrap_or_default().is_empty(), "a strength hint");
    // A common password: the server's refusal in plain words, not `unprocessable: …`.
    page.eval(
        "document.getElementById('new-password').value = 'password1234'; \
         document.getElementById('confirm-password').value = 'password1234'; \
         document.getElementById('password-form').requestSubmit(); true",
    )
    .await;
    page.wait_for("document.getElementById('error').textContent.includes('per dažnas')")
        .await;
    let error = page.eval("document.getElementById('error').textContent").await;
    assert!(!error.as_str().unwrap_or_default().contains("unprocessable"), "{error}");
    // Success clears the error.
    page.eval(
        "document.getElementById('new-password').value = 'violet anchor meadow 42'; \
         document.getElementById('confirm-password').value = 'violet anchor meadow 42'; \
         document.getElementById('password-form').requestSubmit(); true",
    )
    .await;
    step(
        &page,
        &axe,
        "!document.getElementById('done').hidden && document.getElementById('error').hidden",
        "activate-done-lt-mobile",
    )
    .await;
    assert_eq!(state_of(&server, &issued.id).await, "active");
}
