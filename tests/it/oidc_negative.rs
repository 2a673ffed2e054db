//! The OpenID Provider's edges, driven by raw HTTP so that every parameter can be wrong
//! on purpose: bad authorization requests get the right answer (a 400 page when the
//! client or redirect URI is not trusted, an error back to the RP otherwise) and start
//! nothing; codes are single use, short lived, bound to their client, redirect URI and
//! PKCE verifier, and a replayed code revokes what it bought (R-AUTH-4, R-SEC-5).
//! Also: ID tokens under every signing algorithm, discovery, readiness and the headers
//! every response carries.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, code_for, exchange, http, introspect_active, jwt_part, location,
    pkce, post_form, query, refresh_with, set_param, tokens_for, userinfo_status, Answer, TestServer, REDIRECT, SECRET,
};

/// Sends `params` to /authorize in a fresh browser and returns the response.
async fn authorize(server: &TestServer, params: &[(String, String)]) -> reqwest::Response {
    browser().get(authorize_url(server, params)).send().await.unwrap()
}

/// A good request of the fixture RP with `name` set to `value` (or removed).
fn with(name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, name, value);
    params
}

/// Asserts an error redirect to the RP (`error`, `state` and `iss`, no code) that set
/// no cookie, i.e. started no login flow.
fn assert_error_to_client(server: &TestServer, response: &reqwest::Response, error: &str) {
    assert_eq!(response.status(), 303, "expected a redirect to the client");
    assert!(
        response.headers().get(reqwest::header::SET_COOKIE).is_none(),
        "a refused request must not start a flow"
    );
    let to = url::Url::parse(&location(response).unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some(error), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some("st-1"), "{to}");
    assert_eq!(query(&to, "iss").as_deref(), Some(server.url.as_str()), "{to}");
    assert_eq!(query(&to, "code"), None, "{to}");
}

/// Asserts the 400 page of an untrusted request: HTML, no redirect, no cookie.
async fn assert_untrusted_page(response: reqwest::Response) {
    assert_eq!(response.status(), 400);
    assert_eq!(location(&response), None, "an untrusted request must never redirect");
    assert!(response.headers().get(reqwest::header::SET_COOKIE).is_none());
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(page.contains("cannot be processed"), "{page}");
}

// ---- authorization requests ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_accepts_a_form_post_and_nothing_else_in_a_body() {
    // OIDC Core §3.1.2.1: GET and POST (form-encoded) are both supported.
    let server = TestServer::start().await;
    server.provision().await;
    let params = with("state", Some("st-1"));
    let r = browser()
        .post(server.at("/authorize"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).unwrap().starts_with("/login?flow="));
    // The same parameters as JSON are not a form: nothing trusted, a page.
    let as_json: serde_json::Map<String, Value> = params.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let r = browser()
        .post(server.at("/authorize"))
        .json(&as_json)
        .send()
        .await
        .unwrap();
    assert_untrusted_page(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_missing_pkce_is_refused_back_to_the_client() {
    let server = TestServer::start().await;
    server.provision().await;
    let mut params = with("code_challenge", None);
    set_param(&mut params, "code_challenge_method", None);
    let r = authorize(&server, &params).await;
    assert_error_to_client(&server, &r, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_pkce_method_plain_is_refused_back_to_the_client() {
    let server = TestServer::start().await;
    server.provision().await;
    // A verifier-shaped challenge, as a `plain` client would send.
    let (verifier, _) = pkce();
    let mut params = with("code_challenge", Some(&verifier));
    set_param(&mut params, "code_challenge_method", Some("plain"));
    let r = authorize(&server, &params).await;
    assert_error_to_client(&server, &r, "invalid_request");
    // Without a method, the challenge would be taken as `plain` (RFC 7636 §4.3): refused.
    let r = authorize(&server, &with("code_challenge_method", None)).await;
    assert_error_to_client(&server, &r, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_wrong_code_verifier_is_invalid_grant_and_issues_nothing() {
    let server = TestServer::start().await;
    server.provision().await;
    let (code, _) = code_for(&server, &browser(), "rp").await;
    let (other_verifier, _) = pkce();
    let answer = exchange(&server, "rp", &code, &other_verifier).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_grant");
    assert!(answer.body.get("access_token").is_none(), "{}", answer.body);
    assert!(answer.body.get("id_token").is_none(), "{}", answer.body);

    // No verifier at all is no better.
    let (code, _) = code_for(&server, &browser(), "rp").await;
    let answer = post_form(
        &server,
        "/token",
        Some(("rp", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_unknown_client_gets_a_400_page_and_no_redirect() {
    let server = TestServer::start().await;
    server.provision().await;
    assert_untrusted_page(authorize(&server, &with("client_id", Some("nobody"))).await).await;
    assert_untrusted_page(authorize(&server, &with("client_id", None)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_unregistered_redirect_uri_gets_a_400_page_and_no_redirect() {
    let server = TestServer::start().await;
    server.provision().await;
    // Exact match only: another host, a longer path, an added query, and none at all.
    for uri in [
        Some("https://evil.example/cb"),
        Some("https://rp.example/cb/more"),
        Some("https://rp.example/cb?x=1"),
        None,
    ] {
        assert_untrusted_page(authorize(&server, &with("redirect_uri", uri)).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_and_hybrid_response_types_are_unsupported_back_to_the_client() {
    let server = TestServer::start().await;
    server.provision().await;
    for response_type in [
        "token",
        "id_token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
        "bogus",
    ] {
        let r = authorize(&server, &with("response_type", Some(response_type))).await;
        assert_error_to_client(&server, &r, "unsupported_response_type");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_request_objects_are_an_untrusted_invalid_request_object() {
    // RFC 9101: the object's redirect URI is not trusted before its signature is, so a
    // refused object is the 400 page, never a redirect (tests/it/jar.rs for the rest).
    let server = TestServer::start().await;
    server.provision().await;
    let r = authorize(&server, &with("request", Some("eyJhbGciOiJub25lIn0.e30."))).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("invalid_request_object"), "{page}");
    let r = authorize(&server, &with("request", Some("eyJhbGciOiJub25lIn0.e30."))).await;
    assert_untrusted_page(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_uri_that_is_not_from_par_is_request_uri_not_supported() {
    let server = TestServer::start().await;
    server.provision().await;
    let r = authorize(&server, &with("request_uri", Some("https://rp.example/request.jwt"))).await;
    assert_error_to_client(&server, &r, "request_uri_not_supported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_repeated_parameter_is_refused() {
    let server = TestServer::start().await;
    server.provision().await;
    // At /authorize a repeated parameter could be the redirect URI: a page, no redirect.
    let mut params = with("state", Some("st-1"));
    params.push(("state".into(), "st-2".into()));
    assert_untrusted_page(authorize(&server, &params).await).await;
    let mut params = with("redirect_uri", Some(REDIRECT));
    params.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    assert_untrusted_page(authorize(&server, &params).await).await;

    // At /token: invalid_request, and the (valid) code is not redeemed by it.
    let (code, verifier) = code_for(&server, &browser(), "rp").await;
    let answer = post_form(
        &server,
        "/token",
        Some(("rp", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_request");
    let answer = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(
        answer.status, 200,
        "the refused request must not consume the code: {}",
        answer.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_the_400_page_escapes_what_the_request_carried() {
    let server = TestServer::start().await;
    server.provision().await;
    // The repeated parameter's name is echoed in the page: it must come out as text.
    let name = "<script>alert(1)</script>";
    let mut params = with("state", Some("st-1"));
    params.push((name.into(), "a".into()));
    params.push((name.into(), "b".into()));
    let r = authorize(&server, &params).await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "the name is shown, escaped: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_oversized_parameter_is_refused() {
    let server = TestServer::start().await;
    server.provision().await;
    let limit = server.app.config.limits.param_chars;
    let long = "s".repeat(limit + 1);
    assert_untrusted_page(authorize(&server, &with("state", Some(&long))).await).await;
    // Exactly at the limit passes the parameter check (no untrusted-request page); such a
    // request no longer fits a login flow (at most 2 KB, issue 19) and goes back to the
    // client with `invalid_request`, while a shorter one goes on to the login page.
    let at_limit = "s".repeat(limit);
    let r = authorize(&server, &with("state", Some(&at_limit))).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).unwrap().contains("error=invalid_request"));
    let r = authorize(&server, &with("state", Some(&"s".repeat(1024)))).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).unwrap().starts_with("/login?flow="));

    let answer = post_form(
        &server,
        "/token",
        Some(("rp", SECRET)),
        &[("grant_type", "authorization_code"), ("code", &long)],
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error(), "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_oversized_body_is_refused() {
    let server = TestServer::start_with(|c| c.limits.body_bytes = 4096).await;
    server.provision().await;
    let body = format!("grant_type=authorization_code&code={}", "c".repeat(4096));
    for path in ["/token", "/par", "/introspect", "/authorize"] {
        let r = http()
            .post(server.at(path))
            .basic_auth("rp", Some(SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
    }
    let r = http()
        .post(server.at("/authn/flows/x/password"))
        .header("content-type", "application/json")
        .body(format!("{{\"identifier\":\"{}\"}}", "x".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

// ---- codes -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_replayed_code_revokes_the_tokens_it_issued() {
    let server = TestServer::start().await;
    server.provision().await;
    let (code, verifier) = code_for(&server, &browser(), "rp").await;
    let first = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap();
    let refresh_token = first.body["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, access).await, 200);

    let replay = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(replay.error(), "invalid_grant");
    assert!(replay.body.get("access_token").is_none());

    assert_eq!(
        userinfo_status(&server, access).await,
        401,
        "access token of a replayed code"
    );
    let refreshed = refresh_with(&server, "rp", refresh_token).await;
    assert_eq!(refreshed.status, 400, "{}", refreshed.body);
    assert_eq!(refreshed.error(), "invalid_grant");
    for token in [access, refresh_token] {
        assert!(
            !introspect_active(&server, "rp", token).await,
            "replayed code's token still active"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_expired_code_is_invalid_grant() {
    let server = TestServer::start().await;
    server.provision().await;
    let (code, verifier) = code_for(&server, &browser(), "rp").await;
    server.app.clock.advance(61);
    let answer = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_grant");
    assert!(answer.body.get("access_token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_code_of_another_client_is_invalid_grant() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({ "clients": [client_entry("rp-b", json!({}))] }))
        .await;
    let (code, verifier) = code_for(&server, &browser(), "rp").await;
    let answer = exchange(&server, "rp-b", &code, &verifier).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_grant");
    assert!(answer.body.get("access_token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_redirect_uri_mismatch_at_token_is_invalid_grant() {
    let server = TestServer::start().await;
    server.provision().await;
    // A different URI, even one registered for the client, and a missing one.
    server
        .import(json!({ "clients": [client_entry("rp2", json!({
            "redirect_uris": [REDIRECT, "https://rp.example/other"]
        }))] }))
        .await;
    for redirect in [Some("https://rp.example/other"), None] {
        let (code, verifier) = code_for(&server, &browser(), "rp2").await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        if let Some(r) = redirect {
            form.push(("redirect_uri", r));
        }
        let answer = post_form(&server, "/token", Some(("rp2", SECRET)), &form).await;
        assert_eq!(answer.status, 400, "{redirect:?}: {}", answer.body);
        assert_eq!(answer.error(), "invalid_grant", "{redirect:?}");
        assert!(answer.body.get("access_token").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let server = TestServer::start().await;
    server.provision().await;
    let answer = post_form(
        &server,
        "/token",
        Some(("rp", SECRET)),
        &[("grant_type", "password"), ("username", "x"), ("password", "y")],
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error(), "unsupported_grant_type");
}

// ---- ID tokens -------------------------------------------------------------------------

async fn jwks(server: &TestServer) -> JwkSet {
    http()
        .get(server.at("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs a flow for a client registered for `alg` and verifies its ID token against the
/// JWKS key its `kid` names; returns the kid and the claims.
async fn verified_id_token(server: &TestServer, client_id: &str, alg: Algorithm) -> (String, Value) {
    let tokens = tokens_for(server, client_id).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, alg);
    let kid = header.kid.expect("kid in the ID token header");
    let set = jwks(server).await;
    let jwk = set.find(&kid).unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let mut validation = Validation::new(alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[server.url.as_str()]);
    let data = jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap_or_else(|e| panic!("{alg:?} ID token does not verify: {e}"));
    (kid, data.claims)
}

fn assert_id_token_claims(claims: &Value) {
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/low", "{claims}");
    assert_eq!(claims["amr"], json!(["pwd"]), "{claims}");
    assert_eq!(claims["nonce"], "n-1", "{claims}");
    for name in ["sid", "jti"] {
        assert!(claims[name].as_str().is_some_and(|v| !v.is_empty()), "{name}: {claims}");
    }
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!(auth_time <= claims["iat"].as_i64().unwrap(), "{claims}");
    assert_eq!(claims["sub"], "LT/LT/38001085718");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_6_rs256_and_ps256_id_tokens_verify_against_the_jwks() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({ "clients": [
            client_entry("rp-rs", json!({"id_token_signed_response_alg": "RS256"})),
            client_entry("rp-ps", json!({"id_token_signed_response_alg": "PS256"})),
        ] }))
        .await;
    let (rs_kid, rs) = verified_id_token(&server, "rp-rs", Algorithm::RS256).await;
    assert_id_token_claims(&rs);
    let (ps_kid, ps) = verified_id_token(&server, "rp-ps", Algorithm::PS256).await;
    assert_id_token_claims(&ps);
    assert_eq!(rs_kid, ps_kid, "RS256 and PS256 share the RSA-3072 key");
    assert_ne!(rs["jti"], ps["jti"]);
    // The default stays ES256, under a key of its own.
    let (es_kid, es) = verified_id_token(&server, "rp", Algorithm::ES256).await;
    assert_id_token_claims(&es);
    assert_ne!(es_kid, rs_kid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_7_jwks_has_an_rsa_3072_key_for_rs256_and_ps256() {
    let server = TestServer::start().await;
    let set: Value = http()
        .get(server.at("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = set["keys"].as_array().unwrap();
    let rsa = keys.iter().find(|k| k["kty"] == "RSA").expect("an RSA key");
    use base64::Engine;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(rsa["n"].as_str().unwrap())
        .unwrap();
    assert_eq!(n.len() * 8, 3072, "RSA modulus bits");
    assert!(rsa["kid"].as_str().is_some());
    let ec = keys.iter().find(|k| k["kty"] == "EC").expect("an EC key");
    assert_eq!(ec["crv"], "P-256");
    // No private material is ever published.
    for k in keys {
        assert!(k.get("d").is_none() && k.get("p").is_none(), "{k}");
    }
}

// ---- discovery, readiness, headers -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_the_endpoints_s256_code_only_and_the_eidas_acr_values() {
    let server = TestServer::start().await;
    let r = http()
        .get(server.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    let i = &server.url;
    assert_eq!(doc["issuer"], i.as_str());
    for (name, path) in [
        ("authorization_endpoint", "/authorize"),
        ("pushed_authorization_request_endpoint", "/par"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(doc[name], format!("{i}{path}"), "{name}");
    }
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["request_parameter_supported"],
        json!(true),
        "RFC 9101 request objects by value"
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], json!(true));
    let acr: Vec<&str> = doc["acr_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for uri in [
        "http://eidas.europa.eu/LoA/low",
        "http://eidas.europa.eu/LoA/substantial",
        "http://eidas.europa.eu/LoA/high",
    ] {
        assert!(acr.contains(&uri), "{uri} missing from {acr:?}");
    }
    let methods = doc["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("private_key_jwt")));
    let algs = doc["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(
        !algs.contains(&json!("none")) && !algs.contains(&json!("HS256")),
        "{algs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_database_ephemeral_and_hsm_up() {
    let server = TestServer::start().await;
    let r = http().get(server.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"database": "up", "ephemeral": "up", "hsm": "up"}));
}

fn assert_security_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    let get = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(get("x-content-type-options").as_deref(), Some("nosniff"), "{what}");
    assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{what}");
    let csp = get("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_5_every_kind_of_response_carries_the_security_headers() {
    let server = TestServer::start().await;
    server.provision().await;
    let get = |path: &str| http().get(server.at(path)).send();
    for path in [
        "/.well-known/openid-configuration",
        "/jwks.json",
        "/login",
        "/readyz",
        "/no-such-page",
    ] {
        let r = get(path).await.unwrap();
        assert_security_headers(path, r.headers());
    }
    let page = authorize(&server, &with("client_id", Some("nobody"))).await;
    assert_eq!(page.status(), 400);
    assert_security_headers("400 page", page.headers());
    let redirect = authorize(&server, &with("response_type", Some("token"))).await;
    assert_eq!(redirect.status(), 303);
    assert_security_headers("error redirect", redirect.headers());
    let problem = http()
        .post(server.at("/authn/flows/nope/password"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem.status(), 404);
    assert_security_headers("problem", problem.headers());
    let token = http()
        .post(server.at("/token"))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 401);
    assert_security_headers("token error", token.headers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_responses_are_never_cached() {
    let server = TestServer::start().await;
    server.provision().await;
    let (code, verifier) = code_for(&server, &browser(), "rp").await;
    let good = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(good.status, 200);
    assert_eq!(good.header("cache-control"), Some("no-store"));
    assert_eq!(good.header("pragma"), Some("no-cache"));
    let bad: Answer = exchange(&server, "rp", "no-such-code", &verifier).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("cache-control"), Some("no-store"));
    let refreshed = refresh_with(&server, "rp", good.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.header("cache-control"), Some("no-store"));
    // The ID token header names its key.
    assert!(jwt_part(good.body["id_token"].as_str().unwrap(), 0)["kid"].is_string());
}
