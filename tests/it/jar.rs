//! Signed request objects (RFC 9101) by value at `/authorize` and at PAR: signed with the
//! client's registered key, `iss` = the client, `aud` = the issuer, short lived, `jti`
//! used once; only the object's parameters count (§6.3) and the `client_id` outside must
//! name the same client. Every refusal is `invalid_request_object` (the 400 page at
//! `/authorize`, where the object's redirect URI is not yet trusted).

use serde_json::{json, Value};

use crate::support::server::{
    authorize_url, b64, browser, client_entry, discovery, exchange, jwt_part, location, login_from, pkce, post_form,
    query, Answer, KeyClient, TestServer, REDIRECT, SECRET,
};

/// A server with the fixture and `rp-jar` (client_secret_basic, its key `k1` registered).
async fn jar_server(extra: Value) -> (TestServer, KeyClient) {
    let server = TestServer::start().await;
    server.provision().await;
    let client = KeyClient::new("rp-jar");
    let mut fields = json!({ "jwks": { "keys": [client.jwk()] } });
    if let (Some(f), Value::Object(more)) = (fields.as_object_mut(), extra) {
        f.extend(more);
    }
    server
        .import(json!({ "clients": [client_entry(client.id, fields)] }))
        .await;
    (server, client)
}

/// Good request-object claims of `client` with PKCE `challenge`.
fn object(server: &TestServer, client: &KeyClient, challenge: &str) -> Value {
    let now = server.app.now();
    json!({
        "iss": client.id, "aud": server.url, "exp": now + 300, "nbf": now, "iat": now,
        "jti": eidgate::random::token(), "client_id": client.id,
        "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid eidas",
        "state": "inside", "nonce": "n-inside",
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
}

fn header() -> Value {
    json!({"alg": "ES256", "kid": "k1", "typ": "oauth-authz-req+jwt"})
}

fn front(server: &TestServer, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    authorize_url(server, &pairs)
}

async fn push(server: &TestServer, client_id: &str, jwt: &str) -> Answer {
    post_form(server, "/par", Some((client_id, SECRET)), &[("request", jwt)]).await
}

/// `/authorize` answered with the 400 page naming `invalid_request_object`, no redirect.
async fn assert_refused_page(server: &TestServer, url: &str, what: &str) {
    let r = browser().get(url).send().await.unwrap();
    assert_eq!(r.status(), 400, "{what}");
    assert_eq!(location(&r), None, "{what}: never a redirect");
    let body = r.text().await.unwrap();
    assert!(body.contains("invalid_request_object"), "{what}: {body}");
    let _ = server;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9101_request_object_by_value_completes_the_flow_and_only_its_parameters_count() {
    let (server, client) = jar_server(json!({})).await;
    let (verifier, challenge) = pkce();
    let jwt = client.sign(header(), &object(&server, &client, &challenge));
    // Outside the object: another state and prompt=none; both ignored (RFC 9101 §6.3).
    let url = front(
        &server,
        &[
            ("client_id", client.id),
            ("request", &jwt),
            ("state", "outside"),
            ("prompt", "none"),
        ],
    );
    let browser = browser();
    // A login page, not login_required: prompt=none was outside.
    let back = login_from(&server, &browser, browser.get(&url).send().await.unwrap()).await;
    assert_eq!(query(&back, "state").as_deref(), Some("inside"));
    let tokens = exchange(&server, client.id, &query(&back, "code").unwrap(), &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(
        jwt_part(tokens.body["id_token"].as_str().unwrap(), 1)["nonce"],
        "n-inside"
    );

    let discovery = discovery(&server).await;
    assert_eq!(discovery["request_parameter_supported"], true);
    assert_eq!(
        discovery["request_object_signing_alg_values_supported"],
        json!(["ES256", "PS256", "RS256", "EdDSA"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9101_request_object_through_par() {
    let (server, client) = jar_server(json!({})).await;
    let (verifier, challenge) = pkce();
    // Longer than one ordinary parameter may be (limits.param_chars), as objects get.
    let mut claims = object(&server, &client, &challenge);
    claims["x_padding"] = json!("p".repeat(1800));
    let jwt = client.sign(header(), &claims);
    assert!(jwt.len() > server.app.config.limits.param_chars, "{}", jwt.len());
    let pushed = push(&server, client.id, &jwt).await;
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    let uri = pushed.body["request_uri"].as_str().unwrap();
    let browser = browser();
    let r = browser
        .get(front(&server, &[("client_id", client.id), ("request_uri", uri)]))
        .send()
        .await
        .unwrap();
    let back = login_from(&server, &browser, r).await;
    assert_eq!(query(&back, "state").as_deref(), Some("inside"));
    let tokens = exchange(&server, client.id, &query(&back, "code").unwrap(), &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9101_bad_request_objects_are_invalid_request_object() {
    let (server, client) = jar_server(json!({})).await;
    let (_, challenge) = pkce();
    let good = object(&server, &client, &challenge);
    let with = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    let now = server.app.now();
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "oauth-authz-req+jwt"}).to_string()),
        b64(good.to_string())
    );
    let x = client.jwk()["x"].as_str().unwrap().to_owned();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some("k1".into());
    let hmac = jsonwebtoken::encode(&hs, &good, &jsonwebtoken::EncodingKey::from_secret(x.as_bytes())).unwrap();
    let stranger = KeyClient::new("rp-jar");
    let mut expired = with("exp", json!(now - 120));
    expired["nbf"] = json!(now - 300);
    let cases: Vec<(&str, String)> = vec![
        ("unsigned (alg none)", unsigned),
        ("HMAC keyed with the public key", hmac),
        ("another key", stranger.sign(header(), &good)),
        (
            "wrong aud",
            client.sign(header(), &with("aud", json!("https://other.example"))),
        ),
        ("expired", client.sign(header(), &expired)),
        (
            "exp too far ahead",
            client.sign(header(), &with("exp", json!(now + 7200))),
        ),
        ("no nbf", client.sign(header(), &with("nbf", Value::Null))),
        (
            "nbf in the future",
            client.sign(header(), &with("nbf", json!(now + 600))),
        ),
        ("no jti", client.sign(header(), &with("jti", Value::Null))),
        ("iss another client", client.sign(header(), &with("iss", json!("rp")))),
        (
            "client_id inside another client",
            client.sign(header(), &with("client_id", json!("rp"))),
        ),
    ];
    for (what, jwt) in &cases {
        let answer = push(&server, client.id, jwt).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        assert_eq!(answer.error(), "invalid_request_object", "{what}");
        assert!(answer.body.get("request_uri").is_none(), "{what}");
        assert_refused_page(
            &server,
            &front(&server, &[("client_id", client.id), ("request", jwt)]),
            what,
        )
        .await;
    }
    // The client_id outside must name the object's client.
    server
        .import(json!({ "clients": [client_entry("rp-other", json!({}))] }))
        .await;
    let jwt = client.sign(header(), &object(&server, &client, &challenge));
    assert_refused_page(
        &server,
        &front(&server, &[("client_id", "rp-other"), ("request", &jwt)]),
        "outer client_id of another client",
    )
    .await;
    // And the object is still unused: its own client gets to the login page with it.
    let r = browser()
        .get(front(&server, &[("client_id", client.id), ("request", &jwt)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // Replayed jti: the same object a second time.
    assert_refused_page(
        &server,
        &front(&server, &[("client_id", client.id), ("request", &jwt)]),
        "replayed jti",
    )
    .await;
    let jwt = client.sign(header(), &object(&server, &client, &challenge));
    assert_eq!(push(&server, client.id, &jwt).await.status, 201);
    let again = push(&server, client.id, &jwt).await;
    assert_eq!(again.error(), "invalid_request_object", "replayed jti at PAR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9101_client_requiring_signed_request_objects_refuses_plain_ones() {
    let (server, client) = jar_server(json!({"require_signed_request_object": true})).await;
    let (_, challenge) = pkce();
    let plain = object(&server, &client, &challenge);
    let pairs: Vec<(String, String)> = plain
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            [
                "client_id",
                "response_type",
                "redirect_uri",
                "scope",
                "state",
                "code_challenge",
                "code_challenge_method",
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let r = browser().get(authorize_url(&server, &pairs)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = url::Url::parse(&location(&r).unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    let form: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = post_form(&server, "/par", Some((client.id, SECRET)), &form).await;
    assert_eq!(answer.error(), "invalid_request", "{}", answer.body);
    let jwt = client.sign(header(), &plain);
    let r = browser()
        .get(front(&server, &[("client_id", client.id), ("request", &jwt)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).unwrap().starts_with("/login?flow="));
}
