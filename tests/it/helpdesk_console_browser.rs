//! The helpdesk console in a real browser (issue 24): headless Chromium opens `/helpdesk`,
//! presses *Log in*, the page starts the code flow with PKCE itself, the operator's login
//! steps run against this provider, the page comes back with the code and opens its
//! session (no token pasted anywhere), looks a holder up, keeps the session over a reload
//! (the refresh cookie), and logs out. Signed out, signed in with a holder shown, and at the
//! revocation's confirmation, the page is checked by axe-core in every language at desktop
//! and mobile width (no serious or critical violation); screenshots go to
//! `target/test-artefacts/pages/helpdesk-*`.

use std::path::PathBuf;

use serde_json::json;

use crate::pages_browser::{axe_source, check, LANGS, WIDTHS};
use crate::support::cdp::{Browser, Page};
use crate::support::operators::{operator_code, provision_staff, HELPDESK, OPERATOR_PASSWORD};
use crate::support::server::{TestServer, HOLDER};

fn artefact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-artefacts")
        .join(name)
}

/// Runs `script` (which navigates) and waits for the next page load.
async fn navigating(browser: &Browser, page: &Page<'_>, script: &str) {
    let mut events = browser.events();
    page.eval(&format!("(() => {{ {script}; return true; }})()")).await;
    page.next_event(&mut events, "Page.loadEventFired").await;
}

/// The page in every language and width: loaded until `ready`, then `then` run until
/// `after` holds (reloads keep the session).
async fn accessible(page: &Page<'_>, axe: &str, origin: &str, name: &str, ready: &str, then: &str, after: &str) {
    for lang in LANGS {
        for (width, w, h) in WIDTHS {
            page.viewport(w, h).await;
            page.goto(&format!("{origin}/helpdesk?lang={lang}")).await;
            page.wait_for(ready).await;
            if !then.is_empty() {
                page.eval(&format!("(() => {{ {then}; return true; }})()")).await;
                page.wait_for(after).await;
            }
            check(page, axe, name, lang, width).await;
        }
    }
    page.viewport(1000, 900).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_issue_24_the_helpdesk_page_logs_the_operator_in_through_the_provider_in_a_browser() {
    let axe = axe_source();
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let origin = server.app.config.origin().to_owned();
    let browser = Browser::launch().await;
    let page = browser.page().await;

    accessible(
        &page,
        &axe,
        &origin,
        "helpdesk-signed-out",
        "document.body.dataset.session === 'none'",
        "",
        "",
    )
    .await;
    page.goto(&format!("{origin}/helpdesk?lang=en")).await;
    page.wait_for("document.body.dataset.session === 'none' && !document.getElementById('signed-out').hidden")
        .await;
    assert_eq!(
        page.eval("document.querySelectorAll('input[type=password]#token').length")
            .await,
        json!(0)
    );
    page.screenshot(&artefact("helpdesk-signed-out.png")).await;

    // The page starts the code flow of its built-in client with PKCE S256.
    navigating(&browser, &page, "document.getElementById('login').click()").await;
    assert_eq!(page.eval("location.pathname").await, json!("/login"));
    let flow = page
        .eval("new URLSearchParams(location.search).get('flow')")
        .await
        .as_str()
        .unwrap()
        .to_owned();

    // The operator's login steps, from the login page's own origin and cookies.
    let step = |path: String, body: serde_json::Value| {
        format!(
            "fetch('{path}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({body})}}).then(r => r.json())"
        )
    };
    let first = page
        .eval(&step(
            format!("/authn/flows/{flow}/password"),
            json!({"identifier": HELPDESK, "password": OPERATOR_PASSWORD}),
        ))
        .await;
    assert_eq!(first["next"], "totp", "{first}");
    let done = page
        .eval(&step(
            format!("/authn/flows/{flow}/totp"),
            json!({"code": operator_code(&server, HELPDESK)}),
        ))
        .await;
    assert_eq!(done["next"], "done", "{done}");
    let back = done["redirect_to"].as_str().unwrap().to_owned();
    assert!(back.starts_with(&format!("{origin}/helpdesk?code=")), "{back}");

    // Back on the page: it trades the code for its session and forgets the query.
    navigating(&browser, &page, &format!("location.assign({})", json!(back))).await;
    page.wait_for("document.body.dataset.session === 'open' && !document.getElementById('signed-in').hidden")
        .await;
    assert_eq!(page.eval("location.search").await, json!(""));
    let who = page.eval("document.getElementById('who').textContent").await;
    assert!(who.as_str().unwrap().contains("helpdesk"), "{who}");

    page.eval(&format!(
        "(() => {{ document.getElementById('identifier').value = {}; document.getElementById('lookup').requestSubmit(); return true; }})()",
        json!(HOLDER)
    ))
    .await;
    page.wait_for("!document.getElementById('holder').hidden && document.querySelectorAll('#means tr').length > 0")
        .await;
    page.screenshot(&artefact("helpdesk-holder.png")).await;
    // Readable: the kind and state in words, the identifier not in its stored form.
    let shown = page.eval("document.getElementById('holder').innerText").await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("Password") && shown.contains("active") && !shown.contains("LT:"),
        "{shown}"
    );

    // Revocation asks first, in the page; "no" changes nothing.
    page.eval(
        "(() => { document.getElementById('command').value = 'revoke'; \
         document.getElementById('evidence').value = 'x'; document.getElementById('reason').value = 'lost'; \
         document.getElementById('change').requestSubmit(); return true; })()",
    )
    .await;
    page.wait_for("!document.getElementById('revoke-confirm').hidden").await;
    page.eval("(() => { document.getElementById('revoke-no').click(); return true; })()")
        .await;
    assert_eq!(
        page.eval("document.getElementById('result').textContent").await,
        json!("")
    );

    // Signed in, with a holder and with the confirmation shown, in every language and width.
    let find = format!(
        "document.getElementById('identifier').value = {}; document.getElementById('lookup').requestSubmit()",
        json!("38001085718")
    );
    let open = "document.body.dataset.session === 'open'";
    let holder_shown = "!document.getElementById('holder').hidden && document.querySelectorAll('#means tr').length > 0";
    accessible(&page, &axe, &origin, "helpdesk-holder", open, &find, holder_shown).await;
    let confirm = format!(
        "{find}; document.getElementById('command').value = 'revoke'; \
         document.getElementById('revoke-confirm').hidden = false"
    );
    accessible(&page, &axe, &origin, "helpdesk-revoke", open, &confirm, holder_shown).await;

    // A reload keeps the session (the HttpOnly refresh cookie, which the page cannot read).
    page.goto(&format!("{origin}/helpdesk")).await;
    page.wait_for("document.body.dataset.session === 'open'").await;
    assert_eq!(
        page.eval("document.cookie.includes('eidgate_helpdesk')").await,
        json!(false)
    );

    // Log out: signed out, and a reload stays so.
    page.eval("(() => { document.getElementById('logout').click(); return true; })()")
        .await;
    page.wait_for("document.body.dataset.session === 'none'").await;
    page.goto(&format!("{origin}/helpdesk")).await;
    page.wait_for("document.body.dataset.session === 'none' && document.getElementById('signed-in').hidden")
        .await;
}
