//! The answer that ends a login step, shared by every ceremony's transport (password,
//! TOTP, FIDO2, smartcard): the next step or the redirect back to the client, with the
//! SSO session and device cookies.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::middleware::set_cookie;
use crate::authn::ceremony::Completed;
use crate::authn::device::DEVICE_COOKIE;
use crate::authn::release::Next;
use crate::authn::session::SESSION_COOKIE;
use crate::config::Config;

pub fn done(config: &Config, completed: Completed) -> Response {
    let body = match completed.next {
        Next::Redirect(to) => json!({ "next": "done", "redirect_to": to }),
        Next::Step(step) => {
            let mut body = step.data;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("next".into(), json!(step.next));
            }
            body
        }
    };
    let mut response = Json(body).into_response();
    let secure = config.secure_cookies();
    if let Some(value) = completed.session_cookie {
        let max_age = crate::domain::secs(config.session.max_age_low.max(config.session.max_age_high));
        if let Some(c) = set_cookie(SESSION_COOKIE, &value, max_age, secure) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    if let Some(value) = completed.device_cookie {
        let max_age = crate::domain::secs(config.login.device_ttl);
        if let Some(c) = set_cookie(DEVICE_COOKIE, &value, max_age, secure) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    response
}
