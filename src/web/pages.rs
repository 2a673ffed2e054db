//! The plain pages (no build step): embedded in the binary so the server runs from any
//! directory. The 400 page for untrusted authorization requests is rendered here with
//! every value HTML-escaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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

fn with_type(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `GET /login`.
pub async fn get_login() -> Response {
    with_type(LOGIN_HTML, "text/html; charset=utf-8")
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

/// `GET /activate`.
pub async fn get_activate() -> Response {
    with_type(ACTIVATE_HTML, "text/html; charset=utf-8")
}

/// `GET /static/activate.js`.
pub async fn get_activate_js() -> Response {
    with_type(ACTIVATE_JS, "text/javascript; charset=utf-8")
}

/// `GET /account`.
pub async fn get_account() -> Response {
    with_type(ACCOUNT_HTML, "text/html; charset=utf-8")
}

/// `GET /static/account.js`.
pub async fn get_account_js() -> Response {
    with_type(ACCOUNT_JS, "text/javascript; charset=utf-8")
}

/// `GET /helpdesk`.
pub async fn get_helpdesk() -> Response {
    with_type(HELPDESK_HTML, "text/html; charset=utf-8")
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

/// A small HTML page with a title and an HTML body the caller escaped.
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

/// A small HTML page with a title and a message, e.g. the 400 page of an untrusted
/// authorization request (never a redirect) or the logout confirmation.
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main><h1>{t}</h1><p>{m}</p></main></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
