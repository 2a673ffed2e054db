//! A client registered with `profile = "fapi2"` (FAPI 2.0 Security Profile §5.3.2): PAR
//! required, PKCE S256, `private_key_jwt` only, `iss` in the authorization response, codes
//! living at most 60 s, refresh tokens rotated with no exemption, RS256 refused, tokens
//! sender-constrained (DPoP, FAPI 2.0 §5.3.2.1). One test
//! per rule; where a rule refuses something, a twin client without the profile shows the
//! same request is otherwise good.

use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

use crate::dpop::DpopKey;
use crate::support::server::{
    auth_params, authorize_url, b64, browser, location, password_step, pkce, post_form, query, set_param, Answer,
    KeyClient, TestServer, HOLDER, JWT_BEARER, PASSWORD, REDIRECT,
};

const FAPI: &str = "rp-fapi";

/// The import entry of `client` (private_key_jwt, key `k1`) with `extra` fields.
fn entry(client: &KeyClient, extra: Value) -> Value {
    let mut e = client.entry();
    if let (Some(o), Value::Object(more)) = (e.as_object_mut(), extra) {
        o.extend(more);
    }
    e
}

async fn fapi_server() -> (TestServer, KeyClient) {
    let server = TestServer::start().await;
    server.provision().await;
    let client = KeyClient::new(FAPI);
    server
        .import(json!({ "clients": [entry(&client, json!({"profile": "fapi2"}))] }))
        .await;
    (server, client)
}

/// `form` posted to `path` with a fresh ES256 assertion of `client` (aud = the issuer).
async fn with_assertion(server: &TestServer, client: &KeyClient, path: &str, form: &[(&str, &str)]) -> Answer {
    with_proof(server, client, path, form, None).await
}

/// [`with_assertion`] with a DPoP proof.
async fn with_proof(
    server: &TestServer,
    client: &KeyClient,
    path: &str,
    form: &[(&str, &str)],
    proof: Option<String>,
) -> Answer {
    let assertion = client.sign(
        json!({"alg": "ES256", "kid": "k1"}),
        &client.claims(server, &server.url),
    );
    let mut form = form.to_vec();
    form.push(("client_assertion_type", JWT_BEARER));
    form.push(("client_assertion", &assertion));
    let mut request = crate::support::server::http().post(server.at(path)).form(&form);
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    Answer::from(request.send().await.unwrap()).await
}

/// A token request of `client` with a proof by `key` carrying the server nonce (asked for
/// with a first proof without it).
async fn token_with_dpop(server: &TestServer, client: &KeyClient, key: &DpopKey, form: &[(&str, &str)]) -> Answer {
    let url = server.at("/token");
    let first = with_proof(
        server,
        client,
        "/token",
        form,
        Some(key.proof(server, "POST", &url, None, None)),
    )
    .await;
    assert_eq!(first.error(), "use_dpop_nonce", "{}", first.body);
    let nonce = first.header("dpop-nonce").unwrap().to_owned();
    let proof = key.proof(server, "POST", &url, Some(&nonce), None);
    with_proof(server, client, "/token", form, Some(proof)).await
}

/// Pushes a good request of `client` (with `name` = `value` changed): the PAR answer and
/// the PKCE verifier.
async fn push(server: &TestServer, client: &KeyClient, name: &str, value: Option<&str>) -> (Answer, String) {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(client.id, &challenge);
    set_param(&mut params, "client_id", None);
    set_param(&mut params, name, value);
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (with_assertion(server, client, "/par", &form).await, verifier)
}

/// A pushed request through the login: the redirect back and the PKCE verifier.
async fn pushed_login(server: &TestServer, client: &KeyClient) -> (url::Url, String) {
    let (answer, verifier) = push(server, client, "state", Some("st-1")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let front = authorize_url(
        server,
        &[
            ("client_id".into(), client.id.into()),
            (
                "request_uri".into(),
                answer.body["request_uri"].as_str().unwrap().into(),
            ),
        ],
    );
    let browser = browser();
    let r = browser.get(front).send().await.unwrap();
    let to = location(&r).unwrap();
    let flow = to.strip_prefix("/login?flow=").unwrap_or_else(|| panic!("{to}"));
    let (status, body) = password_step(server, &browser, flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    (
        url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap(),
        verifier,
    )
}

fn code_form<'a>(code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

/// Redeems `code` with a DPoP proof by `key`.
async fn redeem(server: &TestServer, client: &KeyClient, key: &DpopKey, code: &str, verifier: &str) -> Answer {
    token_with_dpop(server, client, key, &code_form(code, verifier)).await
}

/// The import of `doc` fails with a message naming `needle`.
async fn assert_import_refused(server: &TestServer, doc: Value, needle: &str) {
    let result = eidgate::admin::import::import_sealed(
        server.app.store.as_ref(),
        Some(server.app.sealer.as_ref()),
        &doc.to_string(),
        &server.app.config,
    )
    .await;
    let Err(error) = result else { panic!("import accepted") };
    let error = error.to_string();
    assert!(error.contains(needle), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_par_is_required() {
    let (server, client) = fapi_server().await;
    let (_, challenge) = pkce();
    let r = browser()
        .get(authorize_url(&server, &auth_params(client.id, &challenge)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = url::Url::parse(&location(&r).unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&to, "code"), None);
    let (back, _) = pushed_login(&server, &client).await;
    assert!(query(&back, "code").is_some(), "through PAR: {back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_pkce_s256_is_required() {
    let (server, client) = fapi_server().await;
    for (name, value) in [("code_challenge", None), ("code_challenge_method", Some("plain"))] {
        let (answer, _) = push(&server, &client, name, value).await;
        assert_eq!(answer.status, 400, "{name}: {}", answer.body);
        assert_eq!(answer.error(), "invalid_request", "{name}");
    }
    let legacy = KeyClient::new("rp-fapi-nopkce");
    assert_import_refused(
        &server,
        json!({"clients": [entry(&legacy, json!({"profile": "fapi2", "require_pkce": false}))]}),
        "fapi2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_private_key_jwt_is_the_only_client_authentication() {
    let (server, _) = fapi_server().await;
    let secret_client = crate::support::server::client_entry("rp-fapi-secret", json!({"profile": "fapi2"}));
    assert_import_refused(&server, json!({"clients": [secret_client]}), "fapi2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_iss_is_in_the_authorization_response_and_codes_live_at_most_60_seconds() {
    let (server, client) = fapi_server().await;
    let (back, verifier) = pushed_login(&server, &client).await;
    assert_eq!(query(&back, "iss").as_deref(), Some(server.url.as_str()), "RFC 9207");
    let code = query(&back, "code").unwrap();
    let stored = server
        .app
        .ephemeral
        .get(&eidgate::oidc::grant::code_key(&code))
        .await
        .unwrap()
        .unwrap();
    let grant: eidgate::oidc::grant::CodeGrant = serde_json::from_slice(&stored).unwrap();
    assert!(grant.exp <= server.app.now() + 60, "code expires at {}", grant.exp);
    let tokens = redeem(&server, &client, &DpopKey::new(), &code, &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_tokens_are_sender_constrained_by_dpop() {
    let (server, client) = fapi_server().await;
    let (back, verifier) = pushed_login(&server, &client).await;
    let code = query(&back, "code").unwrap();
    let bearer = with_assertion(&server, &client, "/token", &code_form(&code, &verifier)).await;
    assert_eq!(bearer.status, 400, "{}", bearer.body);
    assert_eq!(bearer.error(), "invalid_dpop_proof");
    let bound = redeem(&server, &client, &DpopKey::new(), &code, &verifier).await;
    assert_eq!(bound.status, 200, "{}", bound.body);
    assert_eq!(bound.body["token_type"], "DPoP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_refresh_tokens_rotate_without_exemption() {
    let (server, client) = fapi_server().await;
    let (back, verifier) = pushed_login(&server, &client).await;
    let key = DpopKey::new();
    let tokens = redeem(&server, &client, &key, &query(&back, "code").unwrap(), &verifier).await;
    let first = tokens.body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let (server, client, key) = (&server, &client, &key);
        async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
            token_with_dpop(server, client, key, &form).await
        }
    };
    let rotated = refresh(first.clone()).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "a new refresh token at every use");
    assert_eq!(refresh(first).await.error(), "invalid_grant", "the old one is spent");
    // Its reuse ended the grant: the new one is dead too.
    assert_eq!(refresh(second).await.error(), "invalid_grant");
}

/// An RSA key registered beside `k1` as `r1` (RS256).
struct RsaKey(rsa::RsaPrivateKey);

impl RsaKey {
    fn new() -> Self {
        Self(rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
    }

    fn jwk(&self) -> Value {
        let public = self.0.to_public_key();
        json!({"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256",
               "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be())})
    }

    fn sign(&self, claims: &Value, typ: &str) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("r1".into());
        header.typ = Some(typ.into());
        let der = self.0.to_pkcs1_der().unwrap();
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
        )
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_rs256_is_refused() {
    let server = TestServer::start().await;
    server.provision().await;
    let rsa_key = RsaKey::new();
    let fapi = KeyClient::new(FAPI);
    let twin = KeyClient::new("rp-twin");
    let with_rsa = |c: &KeyClient, extra: Value| {
        let mut e = entry(c, extra);
        e["jwks"]["keys"].as_array_mut().unwrap().push(rsa_key.jwk());
        e
    };
    server
        .import(json!({"clients": [with_rsa(&fapi, json!({"profile": "fapi2"})), with_rsa(&twin, json!({}))]}))
        .await;
    for (client, accepted) in [(&twin, true), (&fapi, false)] {
        let what = client.id;
        // A request object signed RS256 with the registered RSA key.
        let (_, challenge) = pkce();
        let now = server.app.now();
        let object = json!({
            "iss": client.id, "aud": server.url, "exp": now + 60, "nbf": now, "jti": eidgate::random::token(),
            "client_id": client.id, "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
            "code_challenge": challenge, "code_challenge_method": "S256",
        });
        let request = rsa_key.sign(&object, "oauth-authz-req+jwt");
        let answer = with_assertion(&server, client, "/par", &[("request", &request)]).await;
        if accepted {
            assert_eq!(answer.status, 201, "{what}: {}", answer.body);
        } else {
            assert_eq!(answer.error(), "invalid_request_object", "{what}: {}", answer.body);
        }
        // A client assertion signed RS256 with it.
        let assertion = rsa_key.sign(&client.claims(&server, &server.url), "JWT");
        let (_, challenge) = pkce();
        let mut params = auth_params(client.id, &challenge);
        set_param(&mut params, "client_id", None);
        let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        form.push(("client_assertion_type", JWT_BEARER));
        form.push(("client_assertion", &assertion));
        let answer = post_form(&server, "/par", None, &form).await;
        if accepted {
            assert_eq!(answer.status, 201, "{what}: {}", answer.body);
        } else {
            assert_eq!(answer.status, 401, "{what}: {}", answer.body);
            assert_eq!(answer.error(), "invalid_client");
        }
    }
    // And no RS256 ID tokens for it.
    let other = KeyClient::new("rp-fapi-rs256");
    assert_import_refused(
        &server,
        json!({"clients": [entry(&other, json!({"profile": "fapi2", "id_token_signed_response_alg": "RS256"}))]}),
        "RS256",
    )
    .await;
}
