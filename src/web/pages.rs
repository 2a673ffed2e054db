//! The plain pages (no build step): embedded in the binary so the server runs from any
//! directory. The citizen-facing pages are templates rendered in the visitor's language
//! ([`super::i18n`]); the message pages (the 400 page of an untrusted authorization
//! request, the logout confirmation) escape every value they show.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::i18n::{self, Lang, PageContext};
use crate::config::Config;

const LOGIN_HTML: &str = include_str!("../../static/login.html");
const LOGIN_JS: &str = include_str!("../../static/login.js");
const LOGIN_STEPS_JS: &str = include_str!("../../static/login-steps.js");
const STYLE_CSS: &str = include_str!("../../static/style.css");
const ACTIVATE_HTML: &str = include_str!("../../static/activate.html");
const ACTIVATE_JS: &str = include_str!("../../static/activate.js");
const ACCOUNT_HTML: &str = include_str!("../../static/account.html");
const ACCOUNT_JS: &str = include_str!("../../static/account.js");
const HELPDESK_HTML: &str = include_str!("../../static/helpdesk.html");
const HELPDESK_JS: &str = include_str!("../../static/helpdesk.js");
const WEBAUTHN_JS: &str = include_str!("../../static/webauthn.js");
const LOGIN_FIDO_JS: &str = include_str!("../../static/login-fido.js");
const ACTIVATE_FIDO_JS: &str = include_str!("../../static/activate-fido.js");
const I18N_JS: &str = include_str!("../../static/i18n.js");
const MESSAGE_HTML: &str = include_str!("../../static/message.html");

/// The templates and scripts, for the catalogue tests.
#[cfg(test)]
pub(crate) const TEMPLATES: [(&str, &str); 5] = [
    ("login.html", LOGIN_HTML),
    ("activate.html", ACTIVATE_HTML),
    ("account.html", ACCOUNT_HTML),
    ("helpdesk.html", HELPDESK_HTML),
    ("message.html", MESSAGE_HTML),
];

/// The scripts of the pages, for the catalogue tests.
#[cfg(test)]
pub(crate) const SCRIPTS: [(&str, &str); 10] = [
    ("login.js", LOGIN_JS),
    ("login-steps.js", LOGIN_STEPS_JS),
    ("login-fido.js", LOGIN_FIDO_JS),
    ("login-smartcard.js", include_str!("../../static/login-smartcard.js")),
    ("webauthn.js", WEBAUTHN_JS),
    ("activate.js", ACTIVATE_JS),
    ("activate-fido.js", ACTIVATE_FIDO_JS),
    ("account.js", ACCOUNT_JS),
    ("helpdesk.js", HELPDESK_JS),
    ("i18n.js", I18N_JS),
];

/// The prefixes of the script messages each page carries.
const LOGIN_SCRIPTS: &[&str] = &[
    "js-login-",
    "js-common-",
    "js-level-",
    "js-webauthn-",
    "js-fido-",
    "js-smartcard-",
    "js-steps-",
    "js-claim-",
];
const ACTIVATE_SCRIPTS: &[&str] = &[
    "js-activate-",
    "js-common-",
    "js-login-too-many",
    "js-webauthn-",
    "js-fido-",
];
const HELPDESK_SCRIPTS: &[&str] = &["js-helpdesk-", "js-common-", "js-kind-", "js-loa-", "js-state-"];
const ACCOUNT_SCRIPTS: &[&str] = &[
    "js-account-",
    "js-common-",
    "js-event-",
    "js-by-",
    "js-kind-",
    "js-loa-",
    "js-state-",
    "js-claim-",
];

fn with_type(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The page context of a request: its language and the provider's arguments.
pub fn context<'a>(
    config: &Config,
    query: Option<&'a str>,
    headers: &HeaderMap,
    scripts: &'a [&'a str],
) -> (PageContext<'a>, Option<Lang>) {
    let (lang, chosen) = i18n::choose(query, headers, config.secure_cookies(), &config.ui.default_language);
    let context = PageContext {
        lang,
        args: vec![
            ("service", config.ui.service_name.clone()),
            ("country", config.country.clone()),
        ],
        script_prefixes: scripts,
        query,
    };
    (context, chosen)
}

/// A page template rendered for the request (language by [`i18n::choose`]); a language
/// chosen with `?lang=` is remembered.
pub fn render_page(
    config: &Config,
    query: Option<&str>,
    headers: &HeaderMap,
    template: &str,
    scripts: &[&str],
) -> Response {
    let (context, chosen) = context(config, query, headers, scripts);
    let mut r = context.render(template).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(cookie) = chosen.and_then(|l| i18n::remember(l, config.secure_cookies())) {
        h.append(header::SET_COOKIE, cookie);
    }
    r
}

/// `GET /login`.
pub async fn get_login(
    State(app): State<crate::authn::state::Authn>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some((logo, csp)) = client_logo(&app, q.as_deref(), &headers).await else {
        return render_page(&app.config, q.as_deref(), &headers, LOGIN_HTML, LOGIN_SCRIPTS);
    };
    // The logo is decorative (the heading names the client); its origin alone is admitted.
    let template = LOGIN_HTML.replace(
        LOGO_MARKUP,
        &format!(
            "<img id=\"client-logo\" class=\"client-logo\" alt=\"\" src=\"{}\">",
            escape(&logo)
        ),
    );
    let mut page = render_page(&app.config, q.as_deref(), &headers, &template, LOGIN_SCRIPTS);
    page.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    page
}

/// The login template's place for the client's logo (hidden without one).
const LOGO_MARKUP: &str = "<img id=\"client-logo\" class=\"client-logo\" alt=\"\" hidden>";

/// The logo of the flow's client and the page policy that admits its origin for images;
/// `None` without a logo, or when the flow is not this browser's (the default page).
async fn client_logo(
    app: &crate::authn::state::Authn,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<(String, HeaderValue)> {
    let flow_id = url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "flow")?
        .1;
    let browser = super::middleware::cookie(headers, crate::authn::flow::BROWSER_COOKIE, app.config.secure_cookies());
    let flow = crate::authn::flow::load(app, &flow_id, browser).await.ok()?;
    let client = app.store.client(&flow.request.client_id).await.ok()??;
    let csp = super::middleware::csp_with_logo(&client.logo_origin()?)?;
    Some((client.logo_uri.clone()?, csp))
}

/// `GET /activate`.
pub async fn get_activate(
    State(app): State<crate::authn::state::Authn>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    render_page(&app.config, q.as_deref(), &headers, ACTIVATE_HTML, ACTIVATE_SCRIPTS)
}

/// `GET /account`.
pub async fn get_account(
    State(app): State<crate::authn::state::Authn>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    render_page(&app.config, q.as_deref(), &headers, ACCOUNT_HTML, ACCOUNT_SCRIPTS)
}

/// `GET /terms/{lang}/{document}-{version}.txt`: the terms of use and the security advice
/// the activation page shows, each version readable on its own address.
pub async fn get_terms(Path((lang, file)): Path<(String, String)>) -> Response {
    let text = Lang::of_tag(&lang)
        .filter(|l| l.code() == lang)
        .and_then(|l| crate::config::terms::text(l.code(), &file));
    match text {
        Some(text) => {
            let mut r = with_type(text, "text/plain; charset=utf-8");
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
            r
        }
        None => super::Problem::not_found().into_response(),
    }
}

/// `GET /static/i18n.js` (the scripts' messages).
pub async fn get_i18n_js() -> Response {
    with_type(I18N_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/login-steps.js` (legal person and consent steps).
pub async fn get_login_steps_js() -> Response {
    with_type(LOGIN_STEPS_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/webauthn.js` (FIDO2 helpers).
pub async fn get_webauthn_js() -> Response {
    with_type(WEBAUTHN_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/login-fido.js` (FIDO2 login step).
pub async fn get_login_fido_js() -> Response {
    with_type(LOGIN_FIDO_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/activate-fido.js` (FIDO2 activation step).
pub async fn get_activate_fido_js() -> Response {
    with_type(ACTIVATE_FIDO_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/login.js`.
pub async fn get_login_js() -> Response {
    with_type(LOGIN_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/activate.js`.
pub async fn get_activate_js() -> Response {
    with_type(ACTIVATE_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/account.js`.
pub async fn get_account_js() -> Response {
    with_type(ACCOUNT_JS, "text/javascript; charset=utf-8")
}

/// `GET /helpdesk` (also where the console's login comes back to, with `code` and `state`).
pub async fn get_helpdesk(
    State(app): State<crate::authn::state::Authn>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    render_page(&app.config, q.as_deref(), &headers, HELPDESK_HTML, HELPDESK_SCRIPTS)
}

/// `GET /static/helpdesk.js`.
pub async fn get_helpdesk_js() -> Response {
    with_type(HELPDESK_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/style.css`.
pub async fn get_style() -> Response {
    with_type(STYLE_CSS, "text/css; charset=utf-8")
}

pub use crate::domain::html::escape;

/// A small HTML page with a title and an HTML body the caller escaped (operator reports).
pub fn html_page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main><h1>{t}</h1>{body_html}</main></body></html>",
        t = escape(title)
    );
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A message page in the visitor's language: the catalogue messages `title` and `text`,
/// and, when given, a technical `detail` (escaped) for the service that sent the visitor,
/// e.g. the 400 page of an untrusted authorization request (never a redirect) or the
/// logout confirmation. `query` may carry `ui_locales` or `lang`.
pub fn message_page(
    config: &Config,
    query: Option<&str>,
    headers: &HeaderMap,
    status: StatusCode,
    (title, text): (&str, &str),
    detail: Option<&str>,
) -> Response {
    let (context, _) = context(config, query, headers, &[]);
    let template = MESSAGE_HTML
        .replace("{{@title}}", &format!("{{{{{title}}}}}"))
        .replace("{{@text}}", &format!("{{{{{text}}}}}"));
    let detail_html = match detail {
        Some(d) => format!(
            "<p class=\"hint\">{} <code>{}</code></p>",
            escape(&context.text("message-detail")),
            escape(d)
        ),
        None => String::new(),
    };
    let body = context.render(&template).replace("@detail", &detail_html);
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sec_5_html_is_escaped() {
        assert_eq!(escape("<script>\"x\"&'"), "&lt;script&gt;&quot;x&quot;&amp;&#39;");
    }
}
