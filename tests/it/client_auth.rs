//! Client authentication at the back channel (OIDC Core §9, RFC 7523) and refresh tokens
//! bound to their client (RFC 6749 §6, §10.4): a wrong secret or the wrong method is
//! `invalid_client` with `WWW-Authenticate`; a `private_key_jwt` assertion must be signed
//! with the client's registered asymmetric key, name this provider, be short lived and
//! used once; refresh tokens rotate and a reused one ends the grant (R-AUTH-4, R-SEC-1).

use p256::ecdsa::SigningKey;
use serde_json::json;

use crate::support::server::{
    b64, browser, client_entry, code_for, introspect_active, jwt_part, post_form, refresh_with, sign_es256, tokens_for,
    userinfo_status, Answer, KeyClient, TestServer, JWT_BEARER, REDIRECT, SECRET,
};

/// `POST /token` with an unknown code: `invalid_grant` (400) once the client is
/// authenticated, `invalid_client` (401) when it is not.
async fn token_with_basic(server: &TestServer, id: &str, secret: &str) -> Answer {
    post_form(
        server,
        "/token",
        Some((id, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
}

fn assert_invalid_client(answer: &Answer) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_client");
    let challenge = answer.header("www-authenticate").expect("WWW-Authenticate on 401");
    assert!(challenge.starts_with("Basic"), "{challenge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_wrong_client_secret_is_401_invalid_client() {
    let server = TestServer::start().await;
    server.provision().await;
    // The right secret gets as far as the grant check.
    let ok = token_with_basic(&server, "rp", SECRET).await;
    assert_eq!(ok.status, 400, "{}", ok.body);
    assert_eq!(ok.error(), "invalid_grant");

    let wrong = format!("{}x", &SECRET[..SECRET.len() - 1]);
    assert_invalid_client(&token_with_basic(&server, "rp", &wrong).await);
    assert_invalid_client(&token_with_basic(&server, "rp", "").await);
    assert_invalid_client(&token_with_basic(&server, "nobody", SECRET).await);
    // No credentials at all.
    let none = post_form(
        &server,
        "/token",
        None,
        &[("grant_type", "authorization_code"), ("code", "c")],
    )
    .await;
    assert_invalid_client(&none);
    // The other back-channel endpoints answer alike.
    for path in ["/introspect", "/revoke"] {
        let answer = post_form(&server, path, Some(("rp", &wrong)), &[("token", "t")]).await;
        assert_invalid_client(&answer);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_client_may_only_use_its_registered_method() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({ "clients": [client_entry("rp-post", json!({
            "token_endpoint_auth_method": "client_secret_post"
        }))] }))
        .await;
    // `rp` is registered for client_secret_basic: the right secret in the body is refused.
    let post = post_form(
        &server,
        "/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("client_id", "rp"),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_invalid_client(&post);
    // And the client_secret_post client cannot use Basic ...
    assert_invalid_client(&token_with_basic(&server, "rp-post", SECRET).await);
    // ... but is authenticated with its own method.
    let own = post_form(
        &server,
        "/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("client_id", "rp-post"),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(own.status, 400, "{}", own.body);
    assert_eq!(own.error(), "invalid_grant");
}

// ---- private_key_jwt -------------------------------------------------------------------

/// `POST /token` for an unknown code with `assertion` as client authentication.
pub(crate) async fn token_with_assertion(server: &TestServer, assertion: &str) -> Answer {
    post_form(
        server,
        "/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", REDIRECT),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// Authenticated (the grant is what fails) or not.
pub(crate) fn assert_authenticated(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 400, "{what}: {}", answer.body);
    assert_eq!(answer.error(), "invalid_grant", "{what}");
}

/// A server with the fixture and the `private_key_jwt` client `rp-jwt`.
pub(crate) async fn key_server() -> (TestServer, KeyClient) {
    let server = TestServer::start().await;
    server.provision().await;
    let client = KeyClient::new("rp-jwt");
    server.import(json!({ "clients": [client.entry()] })).await;
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_private_key_jwt_completes_a_code_exchange() {
    let (server, client) = key_server().await;
    let (code, verifier) = code_for(&server, &browser(), client.id).await;
    let answer = post_form(
        &server,
        "/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", client.id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &client.assertion(&server)),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let access = answer.body["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, access).await, 200);
    assert!(answer.body["id_token"].is_string());
    // A refresh with a fresh assertion (no client_id: found from `iss`).
    let refreshed = post_form(
        &server,
        "/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", answer.body["refresh_token"].as_str().unwrap()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &client.assertion(&server)),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_private_key_jwt_refuses_alg_none_and_hmac() {
    let (server, client) = key_server().await;
    let claims = client.claims(&server, &server.at("/token"));
    // alg none, unsigned.
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64(claims.to_string())
    );
    assert_invalid_client(&token_with_assertion(&server, &none).await);
    // HS256 keyed with public material (the classic key-confusion attack): the JWK's `x`.
    let x = client.jwk()["x"].as_str().unwrap().to_owned();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    for secret in [x.as_bytes(), client.jwk().to_string().as_bytes()] {
        let hs256 = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap();
        assert_invalid_client(&token_with_assertion(&server, &hs256).await);
    }
    // A good ES256 signature by a key that is not the client's.
    let stranger = SigningKey::random(&mut rand::rngs::OsRng);
    let forged = sign_es256(&stranger, json!({"alg": "ES256", "kid": "k1"}), &claims);
    assert_invalid_client(&token_with_assertion(&server, &forged).await);
    // The same claims, properly signed, are accepted: the refusals above are about the
    // signature alone.
    let good = client.sign(json!({"alg": "ES256", "kid": "k1"}), &claims);
    assert_authenticated(&token_with_assertion(&server, &good).await, "good signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_private_key_jwt_audience_must_name_this_provider() {
    let (server, client) = key_server().await;
    let header = json!({"alg": "ES256", "kid": "k1"});
    for aud in [
        json!("https://other.example/token"),
        json!(format!("{}/authorize", server.url)),
        json!([]),
        // RFC 7523bis / FAPI 2.0: a single string; an array, even naming us, is refused.
        json!(["https://other.example", server.at("/token")]),
        json!([server.url]),
    ] {
        let mut claims = client.claims(&server, "");
        claims["aud"] = aud.clone();
        assert_invalid_client(&token_with_assertion(&server, &client.sign(header.clone(), &claims)).await);
    }
    let mut claims = client.claims(&server, "");
    claims.as_object_mut().unwrap().remove("aud");
    assert_invalid_client(&token_with_assertion(&server, &client.sign(header.clone(), &claims)).await);

    for aud in [json!(server.at("/token")), json!(server.url)] {
        let mut claims = client.claims(&server, "");
        claims["aud"] = aud.clone();
        let answer = token_with_assertion(&server, &client.sign(header.clone(), &claims)).await;
        assert_authenticated(&answer, &format!("aud {aud}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_private_key_jwt_replayed_jti_is_refused() {
    let (server, client) = key_server().await;
    let assertion = client.assertion(&server);
    assert_authenticated(&token_with_assertion(&server, &assertion).await, "first use");
    assert_invalid_client(&token_with_assertion(&server, &assertion).await);
    // Same jti in a new assertion: still a replay.
    let mut claims = client.claims(&server, &server.at("/token"));
    claims["jti"] = jwt_part(&assertion, 1)["jti"].clone();
    claims["exp"] = json!(server.app.now() + 120);
    let again = client.sign(json!({"alg": "ES256", "kid": "k1"}), &claims);
    assert_invalid_client(&token_with_assertion(&server, &again).await);
    // Without a jti, replay cannot be detected: refused.
    claims.as_object_mut().unwrap().remove("jti");
    let no_jti = client.sign(json!({"alg": "ES256", "kid": "k1"}), &claims);
    assert_invalid_client(&token_with_assertion(&server, &no_jti).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_private_key_jwt_lifetime_is_bounded() {
    let (server, client) = key_server().await;
    let header = json!({"alg": "ES256", "kid": "k1"});
    let now = server.app.now();
    // Expired (beyond any leeway), and valid for more than an hour.
    for exp in [now - 300, now + 3600 + 120] {
        let mut claims = client.claims(&server, &server.at("/token"));
        claims["exp"] = json!(exp);
        let answer = token_with_assertion(&server, &client.sign(header.clone(), &claims)).await;
        assert_invalid_client(&answer);
    }
    // Just under an hour is fine.
    let mut claims = client.claims(&server, &server.at("/token"));
    claims["exp"] = json!(now + 3500);
    assert_authenticated(
        &token_with_assertion(&server, &client.sign(header.clone(), &claims)).await,
        "exp in 3500 s",
    );
    // iss and sub must both be the client.
    for (name, value) in [("iss", "rp"), ("sub", "rp")] {
        let mut claims = client.claims(&server, &server.at("/token"));
        claims[name] = json!(value);
        let answer = post_form(
            &server,
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", "no-such-code"),
                ("client_id", client.id),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &client.sign(header.clone(), &claims)),
            ],
        )
        .await;
        assert_invalid_client(&answer);
    }
}

// ---- refresh tokens --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_refresh_tokens_rotate() {
    let server = TestServer::start().await;
    server.provision().await;
    let first = tokens_for(&server, "rp").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = refresh_with(&server, "rp", r1).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let r2 = second.body["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2, "a refresh must rotate the refresh token");
    assert_ne!(first["access_token"], second.body["access_token"]);
    assert_eq!(
        userinfo_status(&server, second.body["access_token"].as_str().unwrap()).await,
        200
    );
    assert!(
        !introspect_active(&server, "rp", r1).await,
        "the rotated-out token is dead"
    );
    assert!(introspect_active(&server, "rp", r2).await);
    let third = refresh_with(&server, "rp", r2).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_ne!(third.body["refresh_token"], second.body["refresh_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_reused_refresh_token_revokes_the_grant() {
    let server = TestServer::start().await;
    server.provision().await;
    let first = tokens_for(&server, "rp").await;
    let old = first["refresh_token"].as_str().unwrap();
    let second = refresh_with(&server, "rp", old).await;
    assert_eq!(second.status, 200);
    let newest = second.body["refresh_token"].as_str().unwrap();
    let newest_access = second.body["access_token"].as_str().unwrap();

    let reuse = refresh_with(&server, "rp", old).await;
    assert_eq!(reuse.status, 400, "{}", reuse.body);
    assert_eq!(reuse.error(), "invalid_grant");

    // Whoever holds the newest tokens (the thief or the RP) lost them too.
    let after = refresh_with(&server, "rp", newest).await;
    assert_eq!(after.status, 400, "{}", after.body);
    assert_eq!(after.error(), "invalid_grant");
    assert_eq!(userinfo_status(&server, newest_access).await, 401);
    assert!(!introspect_active(&server, "rp", newest_access).await);
    assert!(!introspect_active(&server, "rp", newest).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_refresh_token_is_bound_to_its_client() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({ "clients": [client_entry("rp-b", json!({}))] }))
        .await;
    let tokens = tokens_for(&server, "rp").await;
    let token = tokens["refresh_token"].as_str().unwrap();

    let stolen = refresh_with(&server, "rp-b", token).await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert_eq!(stolen.error(), "invalid_grant");
    assert!(stolen.body.get("access_token").is_none());
    // Another client sees neither its tokens nor may revoke them.
    assert!(!introspect_active(&server, "rp-b", token).await);
    let access = tokens["access_token"].as_str().unwrap();
    assert!(!introspect_active(&server, "rp-b", access).await);
    for t in [token, access] {
        let revoked = post_form(&server, "/revoke", Some(("rp-b", SECRET)), &[("token", t)]).await;
        assert_eq!(revoked.status, 200);
    }

    // The refused attempt neither rotated nor revoked anything.
    assert_eq!(userinfo_status(&server, access).await, 200);
    let own = refresh_with(&server, "rp", token).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(own.body["refresh_token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_access_and_refresh_tokens_expire() {
    let server = TestServer::start().await;
    server.provision().await;
    let tokens = tokens_for(&server, "rp").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let config = &server.app.config.tokens;
    server.app.clock.advance(config.access_ttl.as_secs() as i64);
    assert_eq!(
        userinfo_status(&server, access).await,
        401,
        "access token past its lifetime"
    );
    assert!(!introspect_active(&server, "rp", access).await);
    assert!(
        introspect_active(&server, "rp", refresh).await,
        "refresh token still live"
    );
    server
        .app
        .clock
        .advance((config.refresh_ttl - config.access_ttl).as_secs() as i64);
    let answer = refresh_with(&server, "rp", refresh).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_grant");
}
