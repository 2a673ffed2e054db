//! Cross-cutting HTTP concerns: security headers, cookies, the client address.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

/// The content security policy of every page: scripts, styles, images and requests only
/// from this origin (images also as `data:`), no framing, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a login page whose client shows its logo: images also from `logo_origin`
/// (an `https://host[:port]` origin, [`crate::domain::client::Client::logo_origin`]).
pub fn csp_with_logo(logo_origin: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&CSP.replace("img-src 'self' data:", &format!("img-src 'self' data: {logo_origin}"))).ok()
}

/// Security headers on every response (R-SEC-5): no sniffing, no framing, a strict CSP
/// for the plain pages (scripts and styles only from this origin), no referrer.
pub fn security_headers(tls: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    if tls {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    headers
}

/// Whether a request's `Origin` is exactly the issuer's origin (scheme, host, port). A
/// prefix test would let `https://id.example.co` pass for `https://id.example.com`.
pub fn same_origin(issuer: &str, origin: &[u8]) -> bool {
    url::Url::parse(issuer).is_ok_and(|u| u.origin().ascii_serialization().as_bytes() == origin)
}

/// Every (name, value) pair of the `Cookie` headers.
fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// Prefix of the names of the cookies this provider sets (before `__Host-`).
pub const COOKIE_PREFIX: &str = "eidgate_";

/// The name cookie `name` goes by: `__Host-{name}` when served over https, so that only
/// this host, over TLS, with `Path=/` and no `Domain`, can have set it (a sibling
/// subdomain cannot plant one); the plain name over http, where browsers refuse
/// `__Host-` cookies (tests and local development only).
pub fn cookie_name(name: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// The value of cookie `name` ([`cookie_name`] with `secure`), if sent. Over https the
/// plain name is never read. A duplicate never gets here: the router refuses it ([`ambiguity`]).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str, secure: bool) -> Option<&'a str> {
    let name = cookie_name(name, secure);
    cookie_pairs(headers).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Lax; Path=/`, no `Domain`; over https
/// `Secure` and the `__Host-` name (a browser drops Secure cookies on plain http, which
/// only tests use).
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> Option<HeaderValue> {
    let name = cookie_name(name, secure);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .ok()
}

/// What makes a request ambiguous, so that it is refused (400) before any handler:
/// more than one `Authorization` header (which one would count?), or a cookie of ours
/// (`eidgate_*`, `__Host-eidgate_*`) sent twice (a sibling subdomain or a path-scoped
/// cookie planted beside the real one).
pub fn ambiguity(headers: &HeaderMap) -> Option<&'static str> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Some("more than one Authorization header");
    }
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in cookie_pairs(headers) {
        if !name.strip_prefix("__Host-").unwrap_or(name).starts_with(COOKIE_PREFIX) {
            continue;
        }
        if seen.contains(&name) {
            return Some("a security cookie sent more than once");
        }
        seen.push(name);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; eidgate_browser=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "eidgate_browser", false), Some("xyz"));
        assert_eq!(cookie(&h, "eidgate_browser", true), None);
        assert_eq!(cookie(&h, "missing", false), None);
        let c = set_cookie("n", "v", 60, true).unwrap();
        assert_eq!(
            c.to_str().unwrap(),
            "__Host-n=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let c = set_cookie("n", "v", 60, false).unwrap();
        assert_eq!(c.to_str().unwrap(), "n=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60");
    }

    #[test]
    fn duplicate_authorization_and_security_cookies_are_ambiguous() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; a=2; eidgate_session=x"));
        assert_eq!(ambiguity(&h), None);
        h.append(header::COOKIE, HeaderValue::from_static("eidgate_session=y"));
        assert!(ambiguity(&h).is_some());
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-eidgate_session=x; eidgate_session=y"),
        );
        assert_eq!(ambiguity(&h), None);
        h.append(header::COOKIE, HeaderValue::from_static("__Host-eidgate_session=z"));
        assert!(ambiguity(&h).is_some());
        let mut h = HeaderMap::new();
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        assert_eq!(ambiguity(&h), None);
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(ambiguity(&h).is_some());
    }
}
