//! Strict input at every edge (issue 25): each hostile or malformed input of the issue is
//! refused, and the refusal issues no code or token and changes nothing.
//!
//! - redirect URIs at registration (https, http to loopback, reverse-domain private-use
//!   schemes; no fragment, wildcard or userinfo) and the login page's navigation guard;
//! - `private_key_jwt` assertions (RFC 7523, FAPI 2.0): key `alg`, single-string `aud`,
//!   `iat`/`nbf` ahead, `crit`/`b64`, foreign `typ`, key strength at registration;
//! - duplicate `Authorization` headers, duplicate security cookies, repeated parameters,
//!   `__Host-` cookies over https;
//! - strictly typed helpdesk and admin bodies, look-ups limited per operator and audited.

use eidgate::config::TlsMode;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

use crate::client_auth::{assert_authenticated, key_server, token_with_assertion};
use crate::support::operators::{
    call, count_events, get, helpdesk, operator_token, post, provision_staff, registration, state_of, status_body,
    ADMIN, HELPDESK, IN_PERSON, REGISTRAR,
};
use crate::support::server::{
    auth_params, authorize_url, b64, browser, client_entry, http, pkce, post_form, Answer, KeyClient, TestServer,
    HOLDER, REDIRECT, SECRET,
};

// ---- redirect URIs ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uris_outside_https_loopback_or_private_use_are_refused_at_registration() {
    let server = TestServer::start().await;
    server.provision().await;
    for (field, uri) in [
        ("redirect_uris", "javascript://x/%0aalert(1)//"),
        ("redirect_uris", "JavaScript://x/%0aalert(1)//"),
        ("redirect_uris", "data:text/html,<script>alert(1)</script>"),
        ("redirect_uris", "https://*.rp.example/*"),
        ("redirect_uris", "https://rp.example/cb#x"),
        ("redirect_uris", "https://user:pw@rp.example/cb"),
        ("redirect_uris", "http://rp.example/cb"),
        ("redirect_uris", "myapp:/cb"),
        ("post_logout_redirect_uris", "javascript:alert(1)"),
    ] {
        let entry = client_entry("rp-bad", json!({ field: [uri] }));
        let error = eidgate::admin::import::import(
            server.app.store.as_ref(),
            &json!({ "clients": [entry] }).to_string(),
            &server.app.config,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{uri} accepted"))
        .to_string();
        assert!(error.contains("rp-bad") && error.contains(uri), "{uri}: {error}");
        assert!(
            server
                .app
                .store
                .client(&"rp-bad".parse().unwrap())
                .await
                .unwrap()
                .is_none(),
            "{uri}: nothing registered"
        );
    }
    // The allowed forms register.
    let entry = client_entry(
        "rp-native",
        json!({ "redirect_uris": [REDIRECT, "http://127.0.0.1:8765/cb", "http://[::1]/cb", "com.example.app:/cb"] }),
    );
    server.import(json!({ "clients": [entry] })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_navigates_only_to_http_or_https_or_private_use_urls() {
    let server = TestServer::start().await;
    for script in ["/static/login.js", "/static/login-smartcard.js"] {
        let r = http().get(server.at(script)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{script}");
        let text = r.text().await.unwrap();
        // The only navigation is the guarded one.
        assert_eq!(text.matches("location.assign(").count(), 1, "{script}");
        assert_eq!(text.matches("location.href =").count(), 0, "{script}");
        let guard = text.find("function safeRedirect").expect("guard present");
        let assign = text.find("location.assign(").unwrap();
        assert!(
            assign > guard && text[guard..assign].contains("scheme !== \"https:\""),
            "{script}"
        );
    }
}

// ---- client assertions ------------------------------------------------------------------

fn assert_refused_client(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.body);
    assert_eq!(answer.error(), "invalid_client", "{what}");
    assert!(answer.body.get("access_token").is_none(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_assertion_header_crit_b64_and_foreign_typ_are_refused() {
    let (server, client) = key_server().await;
    for header in [
        json!({"alg": "ES256", "kid": "k1", "crit": ["exp"], "exp": 1}),
        json!({"alg": "ES256", "kid": "k1", "crit": ["b64"], "b64": false}),
        json!({"alg": "ES256", "kid": "k1", "b64": false}),
        json!({"alg": "ES256", "kid": "k1", "typ": "dpop+jwt"}),
        json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}),
        json!({"alg": "ES256", "kid": "k1", "typ": "logout+jwt"}),
    ] {
        let claims = client.claims(&server, &server.at("/token"));
        let answer = token_with_assertion(&server, &client.sign(header.clone(), &claims)).await;
        assert_refused_client(&answer, &header.to_string());
        // Nothing was spent: the same jti in a good assertion is still accepted.
        let good = client.sign(json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}), &claims);
        assert_authenticated(&token_with_assertion(&server, &good).await, "same jti, good header");
    }
    let claims = client.claims(&server, &server.at("/token"));
    let explicit = client.sign(
        json!({"alg": "ES256", "kid": "k1", "typ": "client-authentication+jwt"}),
        &claims,
    );
    assert_authenticated(&token_with_assertion(&server, &explicit).await, "explicit typ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_assertion_audience_array_and_future_iat_or_nbf_are_refused() {
    let (server, client) = key_server().await;
    let header = json!({"alg": "ES256", "kid": "k1"});
    let now = server.app.now();
    for (what, change) in [
        (
            "aud array naming us",
            json!({"aud": [server.url, "https://other.example"]}),
        ),
        ("aud array of us alone", json!({"aud": [server.url]})),
        ("iat 120 s ahead", json!({"iat": now + 120})),
        ("iat a day ahead", json!({"iat": now + 86_400, "exp": now + 86_460})),
        ("nbf 120 s ahead", json!({"nbf": now + 120})),
        ("nbf a day ahead", json!({"nbf": now + 86_400})),
    ] {
        let mut claims = client.claims(&server, &server.url);
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let answer = token_with_assertion(&server, &client.sign(header.clone(), &claims)).await;
        assert_refused_client(&answer, what);
        let mut good = client.claims(&server, &server.url);
        good["jti"] = claims["jti"].clone();
        assert_authenticated(
            &token_with_assertion(&server, &client.sign(header.clone(), &good)).await,
            what,
        );
    }
    // Within the skew (default 30 s) is fine.
    let mut claims = client.claims(&server, &server.url);
    claims["iat"] = json!(now + 20);
    claims["nbf"] = json!(now + 20);
    assert_authenticated(
        &token_with_assertion(&server, &client.sign(header, &claims)).await,
        "20 s ahead",
    );
}

/// An RSA key whose JWK names `alg`, and a signer for it.
struct RsaClient {
    der: Vec<u8>,
    jwk: Value,
}

impl RsaClient {
    fn new(bits: usize, alg: &str) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
        let public = key.to_public_key();
        Self {
            der: key.to_pkcs1_der().unwrap().as_bytes().to_vec(),
            jwk: json!({
                "kty": "RSA", "kid": "r1", "use": "sig", "alg": alg,
                "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be()),
            }),
        }
    }

    fn sign(&self, alg: jsonwebtoken::Algorithm, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some("r1".into());
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_rsa_der(&self.der)).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_assertion_algorithm_must_match_the_keys_alg() {
    let server = TestServer::start().await;
    server.provision().await;
    let key = RsaClient::new(2048, "RS256");
    let entry = client_entry(
        "rp-rsa",
        json!({"client_secret": null, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.jwk]}}),
    );
    server.import(json!({ "clients": [entry] })).await;
    let now = server.app.now();
    let claims =
        json!({"iss": "rp-rsa", "sub": "rp-rsa", "aud": server.url, "iat": now, "exp": now + 60, "jti": "j-1"});
    // A good PS256 signature by the same key: refused, the JWK says RS256.
    let ps = key.sign(jsonwebtoken::Algorithm::PS256, &claims);
    assert_refused_client(&token_with_assertion(&server, &ps).await, "PS256 with an RS256 key");
    let rs = key.sign(jsonwebtoken::Algorithm::RS256, &claims);
    assert_authenticated(&token_with_assertion(&server, &rs).await, "RS256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_or_unsuitable_client_keys_are_refused_at_registration() {
    let server = TestServer::start().await;
    server.provision().await;
    let short = RsaClient::new(1024, "RS256").jwk;
    let medium = RsaClient::new(2048, "PS256").jwk;
    let ec = KeyClient::new("x").jwk();
    let mut p521 = ec.clone();
    p521["crv"] = json!("P-521");
    p521["alg"] = json!("ES512");
    let mut secp256k1 = ec.clone();
    secp256k1["crv"] = json!("secp256k1");
    secp256k1.as_object_mut().unwrap().remove("alg");
    let mut private = ec.clone();
    private["d"] = json!("AAAA");
    for (what, key, extra) in [
        ("RSA 1024", short, json!({})),
        (
            "RSA 2048 for a high client",
            medium.clone(),
            json!({"minimum_acr": "high"}),
        ),
        ("EC P-521", p521, json!({})),
        ("EC secp256k1", secp256k1, json!({})),
        ("private key", private, json!({})),
        (
            "symmetric",
            json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0"}),
            json!({}),
        ),
    ] {
        let mut fields =
            json!({"client_secret": null, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key]}});
        for (k, v) in extra.as_object().unwrap() {
            fields[k] = v.clone();
        }
        let doc = json!({ "clients": [client_entry("rp-weak", fields)] }).to_string();
        let error = eidgate::admin::import::import(server.app.store.as_ref(), &doc, &server.app.config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what} accepted"))
            .to_string();
        assert!(error.contains("rp-weak") && error.contains("jwks"), "{what}: {error}");
        assert!(
            server
                .app
                .store
                .client(&"rp-weak".parse().unwrap())
                .await
                .unwrap()
                .is_none(),
            "{what}"
        );
    }
    // RSA 2048 is enough below high.
    let entry = client_entry(
        "rp-medium",
        json!({"client_secret": null, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [medium]}}),
    );
    server.import(json!({ "clients": [entry] })).await;
}

// ---- duplicate framing ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_authorization_headers_are_400_and_issue_nothing() {
    let server = TestServer::start().await;
    server.provision().await;
    let basic = |secret: &str| format!("Basic {}", b64_std(&format!("rp:{secret}")));
    let r = http()
        .post(server.at("/token"))
        .header("authorization", basic("wrong"))
        .header("authorization", basic(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let answer = Answer::from(r).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.get("access_token").is_none());
    // Bearer twice at the operator API: refused before any token is looked at.
    let staff_server = TestServer::start().await;
    provision_staff(&staff_server).await;
    let token = operator_token(&staff_server, HELPDESK).await;
    let r = http()
        .get(staff_server.at(&format!("/helpdesk/v1/holders?identifier={HOLDER}")))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let pid = crate::support::operators::person_id(&staff_server, HOLDER).await;
    assert_eq!(
        count_events(&staff_server, &format!("person:{pid}"), "helpdesk.lookup").await,
        0,
        "nothing was read"
    );
}

fn b64_std(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_security_cookies_and_repeated_parameters_are_400() {
    let server = TestServer::start().await;
    server.provision().await;
    let (_, challenge) = pkce();
    let url = authorize_url(&server, &auth_params("rp", &challenge));
    // A planted session cookie before the real one: which one counts? Neither.
    for cookies in [
        "eidgate_session=planted; eidgate_session=real",
        "eidgate_browser=a; other=1; eidgate_browser=b",
    ] {
        let r = browser().get(&url).header("cookie", cookies).send().await.unwrap();
        assert_eq!(r.status(), 400, "{cookies}");
        assert!(r.headers().get("location").is_none(), "{cookies}");
        assert!(r.headers().get("set-cookie").is_none(), "{cookies}: no flow started");
    }
    // Repeated single-valued parameters.
    let r = browser().get(format!("{url}&state=again")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let answer = post_form(
        &server,
        "/token",
        Some(("rp", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "refresh_token"),
            ("code", "c"),
        ],
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_over_https_have_host_prefixed_names_and_plain_names_are_ignored() {
    let server = TestServer::start_with(|c| {
        c.tls.mode = TlsMode::Dev;
        c.issuer = c.issuer.replace("http://", "https://");
    })
    .await;
    server.provision().await;
    let pem = std::fs::read(server.app.config.data_dir.join("tls").join("dev-cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let https = server.url.replace("http://", "https://");
    let (_, challenge) = pkce();
    let query: Vec<String> = auth_params("rp", &challenge)
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencoding(v)))
        .collect();
    let url = format!("{https}/authorize?{}", query.join("&"));
    let r = client.get(&url).send().await.unwrap();
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(!set.is_empty(), "a browser cookie is set");
    for c in &set {
        assert!(c.starts_with("__Host-eidgate_"), "{c}");
        assert!(
            c.contains("; Secure") && c.contains("Path=/") && !c.to_ascii_lowercase().contains("domain="),
            "{c}"
        );
    }
    // A plain-named cookie (which a sibling subdomain could plant) is not read over https:
    // the server starts a browser binding of its own.
    let planted = format!("eidgate_browser={}", "A".repeat(43));
    let r = client.get(&url).header("cookie", planted).send().await.unwrap();
    let fresh = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    assert!(
        fresh.is_some_and(|c| c.starts_with("__Host-eidgate_browser=")),
        "plain name ignored"
    );
    // Two `__Host-` cookies of the same name: refused.
    let name = set[0].split('=').next().unwrap().to_owned();
    let r = client
        .get(&url)
        .header("cookie", format!("{name}=a; {name}=b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

// ---- helpdesk and admin bodies, look-ups ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpdesk_and_admin_bodies_of_the_wrong_shape_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    let token = operator_token(&server, HELPDESK).await;
    let means = &staff.holder_means;
    let bodies = [
        json!({"reason": "lost", "verification": ["in_person", IN_PERSON]}),
        json!(["caller reported the means lost", {"method": "in_person", "evidence": IN_PERSON}]),
        json!({"reason": "lost", "verification": {"method": "in_person", "evidence": IN_PERSON, "extra": 1}}),
        json!({"reason": 5, "verification": {"method": "in_person", "evidence": IN_PERSON}}),
        json!({"reason": "lost", "verification": {"method": "in_person", "evidence": IN_PERSON}, "force": true}),
    ];
    for (n, body) in bodies.iter().enumerate() {
        let answer = helpdesk(&server, &token, means, "suspend", &format!("key-{n}"), body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(state_of(&server, means).await, "active", "{body}");
    }
    assert_eq!(
        count_events(&server, &format!("means:{means}"), "means.suspended").await,
        0
    );
    // The same key with a good body is a first request (nothing was recorded under it).
    let good = helpdesk(
        &server,
        &token,
        means,
        "suspend",
        "key-0",
        &status_body("in_person", IN_PERSON),
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.body);

    let registrar = operator_token(&server, REGISTRAR).await;
    let identifier = "LT/LT/48505050505";
    let mut proofing_as_array = registration(identifier, "high");
    proofing_as_array["proofing"] = json!(["document", "passport", "LT1", "LT", "2030-01-01", "visual"]);
    let mut loa_as_number = registration(identifier, "high");
    loa_as_number["proofing_loa"] = json!(3);
    for body in [
        proofing_as_array,
        loa_as_number,
        json!([identifier, "Ona", "Onaitė", "1985-05-05", "high"]),
    ] {
        let answer = post(&server, "/admin/v1/persons", &registrar, &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
    }
    let person = server
        .app
        .store
        .person_by_identifier(&identifier.parse().unwrap())
        .await
        .unwrap();
    assert!(person.is_none(), "nobody registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_lookups_hit_or_miss_are_audited_and_rate_limited_per_operator() {
    let server = TestServer::start_with(|c| c.limits.operator_lookups_per_minute = 3).await;
    provision_staff(&server).await;
    let helpdesk_token = operator_token(&server, HELPDESK).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let lookups = |server: &TestServer| {
        let store = server.app.store.clone();
        async move {
            store
                .audit_after(0, 1_000_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.event.event_type == "helpdesk.lookup")
                .map(|r| (r.event.actor, r.event.data["outcome"].as_str().unwrap_or("").to_owned()))
                .collect::<Vec<_>>()
        }
    };
    // Misses are audited like hits.
    for unknown in ["LT/LT/99999999991", "LT/LT/99999999992", "not-an-identifier"] {
        let answer = get(
            &server,
            &format!("/helpdesk/v1/holders?identifier={unknown}"),
            &helpdesk_token,
        )
        .await;
        assert!(answer.status == 404 || answer.status == 400, "{}", answer.body);
    }
    let seen = lookups(&server).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|(_, o)| o == "not_found"), "{seen:?}");
    // The fourth within the minute, even of a real holder: 429, nothing read, audited.
    let answer = get(
        &server,
        &format!("/helpdesk/v1/holders?identifier={HOLDER}"),
        &helpdesk_token,
    )
    .await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.header("retry-after").is_some());
    assert!(answer.body.get("holder").is_none());
    let seen = lookups(&server).await;
    assert_eq!(seen.last().map(|(_, o)| o.as_str()), Some("rate_limited"));
    // Another operator has their own allowance; the admin API's look-ups are audited too.
    let found = get(&server, &format!("/admin/v1/persons?identifier={HOLDER}"), &registrar).await;
    assert_eq!(found.status, 200, "{}", found.body);
    let missed = get(&server, "/admin/v1/persons?identifier=LT/LT/99999999993", &registrar).await;
    assert_eq!(missed.status, 404, "{}", missed.body);
    let seen = lookups(&server).await;
    let registrar_outcomes: Vec<&str> = seen
        .iter()
        .filter(|(actor, _)| !seen[0].0.eq(actor))
        .map(|(_, o)| o.as_str())
        .collect();
    assert_eq!(registrar_outcomes, ["found", "not_found"]);
    let admin = operator_token(&server, ADMIN).await;
    let repeated = call(
        &server,
        reqwest::Method::GET,
        &format!("/admin/v1/persons?identifier={HOLDER}&identifier={HOLDER}"),
        Some(&admin),
        None,
        None,
    )
    .await;
    assert_eq!(repeated.status, 400, "repeated parameter");
}

// ---- request methods ---------------------------------------------------------------------

/// A stranger sends a stream of made-up methods (`BREW0`, `BREW1`, ...: HTTP allows any
/// token): each method named as a metrics label would be a series kept for the life of the
/// process, so they are all counted as `other`, and none of them reaches a label.
#[tokio::test]
async fn r_sec_5_made_up_methods_do_not_grow_the_metrics() {
    let server = TestServer::start().await;
    let client = http();
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let status = client
            .request(method, server.at("/token"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 405, "an unknown method on a known route");
    }
    let metrics = crate::support::server::metrics_text(&server).await;
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(
        metrics.contains("eidgate_http_requests_total{method=\"other\",route=\"/token\",status=\"405\"} 20"),
        "{metrics}"
    );
}
