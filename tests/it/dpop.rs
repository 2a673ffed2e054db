//! DPoP (RFC 9449): a proof at `/token` binds the access and refresh tokens to its key
//! (`token_type` `DPoP`, `cnf.jkt` at introspection); the bound access token works at
//! userinfo only as `Authorization: DPoP` with a fresh proof by that key for that request
//! (`htm`, `htu`, `ath`, `jti` once); the token endpoint asks for its nonce
//! (`use_dpop_nonce`, `DPoP-Nonce`); a bound refresh token refreshes only with the same key.

use p256::ecdsa::SigningKey;
use serde_json::{json, Value};
use sha2::Digest;

use crate::support::server::{
    b64, browser, client_entry, code_for, http, sign_es256, Answer, TestServer, REDIRECT, SECRET,
};

/// A DPoP key of the test (the RP's).
pub(crate) struct DpopKey(SigningKey);

impl DpopKey {
    pub(crate) fn new() -> Self {
        Self(SigningKey::random(&mut rand::rngs::OsRng))
    }

    fn jwk(&self) -> Value {
        let public = p256::PublicKey::from(self.0.verifying_key());
        serde_json::from_str(&public.to_jwk_string()).unwrap()
    }

    /// RFC 7638 thumbprint of the public key.
    fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        b64(sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// A proof for `htm` `htu`, with `nonce` and the `ath` of `token` when given.
    pub(crate) fn proof(
        &self,
        server: &TestServer,
        htm: &str,
        htu: &str,
        nonce: Option<&str>,
        token: Option<&str>,
    ) -> String {
        let mut claims = json!({
            "jti": eidgate::random::token(), "htm": htm, "htu": htu, "iat": server.app.now(),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = token {
            claims["ath"] = json!(b64(sha2::Sha256::digest(t.as_bytes())));
        }
        self.sign(&claims)
    }

    /// A proof with exactly `claims`.
    fn sign(&self, claims: &Value) -> String {
        sign_es256(
            &self.0,
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()}),
            claims,
        )
    }
}

/// `POST /token` as `client_id` (Basic) with `form` and an optional DPoP proof.
async fn token(server: &TestServer, client_id: &str, form: &[(&str, &str)], proof: Option<&str>) -> Answer {
    let mut request = http()
        .post(server.at("/token"))
        .basic_auth(client_id, Some(SECRET))
        .form(form);
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    Answer::from(request.send().await.unwrap()).await
}

/// `GET /userinfo` with `authorization` and an optional proof.
async fn userinfo(server: &TestServer, authorization: &str, proof: Option<&str>) -> Answer {
    let mut request = http()
        .get(server.at("/userinfo"))
        .header("Authorization", authorization);
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    Answer::from(request.send().await.unwrap()).await
}

/// A code exchange of `client_id` bound to `key`: first answered `use_dpop_nonce`, then
/// with the nonce the tokens. Returns the token response.
async fn bound_tokens(server: &TestServer, client_id: &str, key: &DpopKey) -> Value {
    let (code, verifier) = code_for(server, &browser(), client_id).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let url = server.at("/token");
    let first = token(
        server,
        client_id,
        &form,
        Some(&key.proof(server, "POST", &url, None, None)),
    )
    .await;
    assert_eq!(first.status, 400, "{}", first.body);
    assert_eq!(first.error(), "use_dpop_nonce");
    let nonce = first.header("dpop-nonce").expect("DPoP-Nonce").to_owned();
    let answer = token(
        server,
        client_id,
        &form,
        Some(&key.proof(server, "POST", &url, Some(&nonce), None)),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.header("dpop-nonce").is_some());
    answer.body
}

fn assert_dpop_refusal(answer: &Answer, error: &str, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.body);
    assert_eq!(answer.error(), error, "{what}");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("DPoP") && challenge.contains(&format!("error=\"{error}\"")),
        "{what}: {challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_bound_token_works_only_with_a_fresh_proof_by_its_key() {
    let server = TestServer::start().await;
    server.provision().await;
    let key = DpopKey::new();
    let tokens = bound_tokens(&server, "rp", &key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let at = tokens["access_token"].as_str().unwrap();
    let scheme = format!("DPoP {at}");
    let url = server.at("/userinfo");

    let proof = key.proof(&server, "GET", &url, None, Some(at));
    let ok = userinfo(&server, &scheme, Some(&proof)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body["sub"].is_string());

    assert_dpop_refusal(
        &userinfo(&server, &scheme, None).await,
        "invalid_dpop_proof",
        "no proof",
    );
    assert_dpop_refusal(
        &userinfo(&server, &scheme, Some(&proof)).await,
        "invalid_dpop_proof",
        "replayed proof",
    );
    let other = DpopKey::new();
    assert_dpop_refusal(
        &userinfo(
            &server,
            &scheme,
            Some(&other.proof(&server, "GET", &url, None, Some(at))),
        )
        .await,
        "invalid_dpop_proof",
        "another key",
    );
    let wrong_htu = key.proof(&server, "GET", &server.at("/token"), None, Some(at));
    assert_dpop_refusal(
        &userinfo(&server, &scheme, Some(&wrong_htu)).await,
        "invalid_dpop_proof",
        "wrong htu",
    );
    let wrong_htm = key.proof(&server, "POST", &url, None, Some(at));
    assert_dpop_refusal(
        &userinfo(&server, &scheme, Some(&wrong_htm)).await,
        "invalid_dpop_proof",
        "wrong htm",
    );
    let ath = b64(sha2::Sha256::digest(at.as_bytes()));
    let stale = key.sign(&json!({
        "jti": eidgate::random::token(), "htm": "GET", "htu": url, "ath": ath, "iat": server.app.now() - 600,
    }));
    assert_dpop_refusal(
        &userinfo(&server, &scheme, Some(&stale)).await,
        "invalid_dpop_proof",
        "iat too old",
    );
    let no_ath = key.proof(&server, "GET", &url, None, None);
    assert_dpop_refusal(
        &userinfo(&server, &scheme, Some(&no_ath)).await,
        "invalid_dpop_proof",
        "no ath",
    );
    // As a bearer token it does not work at all.
    let bearer = userinfo(&server, &format!("Bearer {at}"), None).await;
    assert_eq!(bearer.status, 401);
    assert_eq!(bearer.error(), "invalid_token");
    // A fresh proof by the right key still works.
    let again = userinfo(&server, &scheme, Some(&key.proof(&server, "GET", &url, None, Some(at)))).await;
    assert_eq!(again.status, 200, "{}", again.body);

    // Introspection names the key; a proof by another key makes the token inactive.
    let introspect = server.at("/introspect");
    let answer =
        crate::support::server::post_form(&server, "/introspect", Some(("rp", SECRET)), &[("token", at)]).await;
    assert_eq!(answer.body["active"], true, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "DPoP");
    assert_eq!(answer.body["cnf"]["jkt"], key.jkt());
    let with_proof = |k: &DpopKey| {
        http()
            .post(&introspect)
            .basic_auth("rp", Some(SECRET))
            .header("DPoP", k.proof(&server, "POST", &introspect, None, Some(at)))
            .form(&[("token", at)])
    };
    let own = Answer::from(with_proof(&key).send().await.unwrap()).await;
    assert_eq!(own.body["active"], true, "{}", own.body);
    let foreign = Answer::from(with_proof(&other).send().await.unwrap()).await;
    assert_eq!(foreign.body["active"], false, "{}", foreign.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_bound_refresh_token_needs_a_proof_by_the_same_key() {
    let server = TestServer::start().await;
    server.provision().await;
    let key = DpopKey::new();
    let tokens = bound_tokens(&server, "rp", &key).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let url = server.at("/token");

    let without = token(&server, "rp", &form, None).await;
    assert_eq!(without.status, 400, "{}", without.body);
    assert_eq!(without.error(), "invalid_dpop_proof");

    let other = DpopKey::new();
    let nonce = token(
        &server,
        "rp",
        &form,
        Some(&other.proof(&server, "POST", &url, None, None)),
    )
    .await
    .header("dpop-nonce")
    .unwrap()
    .to_owned();
    let foreign = token(
        &server,
        "rp",
        &form,
        Some(&other.proof(&server, "POST", &url, Some(&nonce), None)),
    )
    .await;
    assert_eq!(foreign.error(), "invalid_dpop_proof", "{}", foreign.body);

    let own = token(
        &server,
        "rp",
        &form,
        Some(&key.proof(&server, "POST", &url, Some(&nonce), None)),
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["token_type"], "DPoP");
    // The refreshed access token is bound to the same key.
    let at = own.body["access_token"].as_str().unwrap();
    let ok = userinfo(
        &server,
        &format!("DPoP {at}"),
        Some(&key.proof(&server, "GET", &server.at("/userinfo"), None, Some(at))),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_client_requiring_dpop_gets_no_bearer_tokens() {
    let server = TestServer::start().await;
    server.provision().await;
    server
        .import(json!({ "clients": [client_entry("rp-dpop", json!({"require_dpop": true}))] }))
        .await;
    let (code, verifier) = code_for(&server, &browser(), "rp-dpop").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let answer = token(&server, "rp-dpop", &form, None).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_dpop_proof");
    assert!(answer.header("dpop-nonce").is_some());
    // A proof that is no JWS, or two DPoP headers, are refused alike, never a 500.
    let garbage = token(&server, "rp-dpop", &form, Some("not-a-jwt")).await;
    assert_eq!(garbage.error(), "invalid_dpop_proof");
    // And discovery says which algorithms a proof may use.
    let discovery = crate::support::server::discovery(&server).await;
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "PS256", "RS256", "EdDSA"])
    );
}
