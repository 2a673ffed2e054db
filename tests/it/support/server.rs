//! `TestServer`: the real server on `127.0.0.1:0` (socket bound before the spawn, so no
//! sleeping), a fresh SoftHSM token, SQLite in a temp dir (or a fresh PostgreSQL database
//! when `EIDGATE_TEST_SERVER_DB=postgres`), memory ephemeral store, TLS off, shut down on
//! drop. Plus a browser stand-in (reqwest with a cookie store, no redirects) that walks
//! the login API.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use eidgate::app::App;
use eidgate::config::{Config, TlsMode};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A client secret used by the fixtures (≥ 32 characters).
pub const SECRET: &str = "test-client-secret-0123456789abcdef";
/// The fixture holder's identifier.
pub const HOLDER: &str = "LT/LT/38001085718";
/// The fixture holder's password.
pub const PASSWORD: &str = "correct horse battery staple";
/// The fixture RP's redirect URI.
pub const REDIRECT: &str = "https://rp.example/cb";

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:{port}`, also the issuer.
    pub url: String,
    /// The application state (store, clock, HSM) for white-box checks.
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    _dirs: Vec<TempDir>,
}

impl TestServer {
    /// Starts a server with the default test configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` changed the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (hsm, hsm_dir) = super::softhsm::hsm_config("srv");
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            issuer: format!("http://127.0.0.1:{port}"),
            data_dir: data.path().to_owned(),
            hsm,
            ..Config::default()
        };
        config.tls.mode = TlsMode::Off;
        config.database.url = match std::env::var("EIDGATE_TEST_SERVER_DB").as_deref() {
            Ok("postgres") => super::db::postgres().await,
            _ => format!("sqlite://{}/eidgate.db", data.path().display()),
        };
        adjust(&mut config);
        config.finish().unwrap();
        let app = eidgate::app::build(config).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let serving = app.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            eidgate::web::serve::serve(serving, listener, shutdown).await.unwrap();
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            app,
            shutdown: Some(tx),
            _dirs: vec![data, hsm_dir],
        }
    }

    /// Imports a JSON document through `eidgate::admin::import`.
    pub async fn import(&self, doc: Value) -> eidgate::admin::import::ImportReport {
        eidgate::admin::import::import_sealed(
            self.app.store.as_ref(),
            Some(self.app.sealer.as_ref()),
            &doc.to_string(),
            &self.app.config,
        )
        .await
        .unwrap()
    }

    /// [`TestServer::import`] with `--update`: items present but different (an operator's
    /// roles) are changed instead of refused.
    pub async fn import_update(&self, doc: Value) -> eidgate::admin::import::ImportReport {
        eidgate::admin::import::import_with(
            self.app.store.as_ref(),
            Some(self.app.sealer.as_ref()),
            &doc.to_string(),
            &self.app.config,
            eidgate::admin::import::ImportOptions { update: true },
        )
        .await
        .unwrap()
    }

    /// The standard fixture: one confidential RP (`rp`, client_secret_basic, allowed the
    /// eIDAS natural-person claims) and one holder with an active password means.
    pub async fn provision(&self) -> eidgate::admin::import::ImportReport {
        self.import(fixture()).await
    }

    /// A URL on this server.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The standard import document.
pub fn fixture() -> Value {
    json!({
        "clients": [{
            "client_id": "rp",
            "client_name": "Test RP",
            "client_secret": SECRET,
            "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": ["https://rp.example/bye"],
            "allowed_claims": ["person_identifier", "given_name", "family_name", "birthdate"],
            "token_endpoint_auth_method": "client_secret_basic",
            "consent": "never"
        }],
        "persons": [{
            "identifier": HOLDER, "given_name": "Jonas", "family_name": "Jonaitis",
            "birthdate": "1980-01-08", "proofing_loa": "high", "gender": "male",
            "email": "jonas@example.org", "phone": "+37060000001"
        }],
        "means": [{ "holder": HOLDER, "kind": "password", "loa": "low", "password": PASSWORD }]
    })
}

/// A browser stand-in: cookies kept, redirects not followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `/metrics` text, read from loopback (allowed by default).
pub async fn metrics_text(server: &TestServer) -> String {
    http()
        .get(server.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A back-channel HTTP client (no cookies, no redirects).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows `/authorize` to the login page; returns the flow id.
pub async fn start_login(browser: &reqwest::Client, authorize_url: &str) -> String {
    let r = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(
        r.status(),
        303,
        "authorize should redirect to the login page: {:?}",
        r.text().await
    );
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let flow = location
        .strip_prefix("/login?flow=")
        .unwrap_or_else(|| panic!("unexpected location {location}"));
    flow.to_owned()
}

/// Posts the password step; returns the status and the JSON body.
pub async fn password_step(
    server: &TestServer,
    browser: &reqwest::Client,
    flow: &str,
    identifier: &str,
    password: &str,
) -> (u16, Value) {
    let r = browser
        .post(server.at(&format!("/authn/flows/{flow}/password")))
        .json(&json!({ "identifier": identifier, "password": password }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Logs in with the fixture password and returns the final redirect URL.
pub async fn login(server: &TestServer, browser: &reqwest::Client, authorize_url: &str) -> url::Url {
    let flow = start_login(browser, authorize_url).await;
    let (status, body) = password_step(server, browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
    url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap()
}

/// Walks the fixture holder's password login from a `/authorize` answer `r` (a 303 to
/// `/login?flow=…`) in `browser`: the redirect back to the RP.
pub async fn login_from(server: &TestServer, browser: &reqwest::Client, r: reqwest::Response) -> url::Url {
    assert_eq!(r.status(), 303);
    let to = location(&r).unwrap();
    let flow = to.strip_prefix("/login?flow=").unwrap_or_else(|| panic!("{to}"));
    let (status, body) = password_step(server, browser, flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap()
}

/// The discovery document.
pub async fn discovery(server: &TestServer) -> Value {
    http()
        .get(server.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A query parameter of a URL.
pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

// ---------------------------------------------------------------------------------------
// Raw protocol helpers for the negative tests (no RP library in the way, so that every
// parameter, header and status can be set and checked exactly).

/// A PKCE pair `(verifier, challenge)` with method S256 (RFC 7636 §4.2).
pub fn pkce() -> (String, String) {
    use sha2::Digest;
    let verifier = eidgate::random::token();
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The parameters of a good authorization request of `client_id` to [`REDIRECT`]
/// (scopes `openid eidas offline_access`, state `st-1`, nonce `n-1`, PKCE S256).
pub fn auth_params(client_id: &str, challenge: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid eidas offline_access"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Sets parameter `name` to `value` (replacing it), or removes it when `value` is `None`.
pub fn set_param(params: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    params.retain(|(k, _)| k != name);
    if let Some(v) = value {
        params.push((name.to_owned(), v.to_owned()));
    }
}

/// `{server}/authorize?{params}`, form-encoded in order (repeats are kept).
pub fn authorize_url(server: &TestServer, params: &[(String, String)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    server.at(&format!("/authorize?{query}"))
}

/// The `Location` header of a response, if any.
pub fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// A back-channel answer: status, headers and the JSON body (`Null` when not JSON).
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON.
    pub body: Value,
}

impl Answer {
    /// Reads a response.
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Self { status, headers, body }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// `body["error"]`.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// POSTs a form to `path`, with HTTP Basic `(client_id, secret)` when given.
pub async fn post_form(server: &TestServer, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Answer {
    let mut request = http().post(server.at(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    Answer::from(request.send().await.unwrap()).await
}

/// Redeems `code` at /token as `client_id` (Basic auth with [`SECRET`]) with [`REDIRECT`].
pub async fn exchange(server: &TestServer, client_id: &str, code: &str, verifier: &str) -> Answer {
    post_form(
        server,
        "/token",
        Some((client_id, SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Logs the fixture holder in (in `browser`) for a good request of `client_id` and returns
/// `(code, verifier)`.
pub async fn code_for(server: &TestServer, browser: &reqwest::Client, client_id: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let back = login(
        server,
        browser,
        &authorize_url(server, &auth_params(client_id, &challenge)),
    )
    .await;
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    (code, verifier)
}

/// A full code flow for `client_id` (secret-based) in a fresh browser: the token response.
pub async fn tokens_for(server: &TestServer, client_id: &str) -> Value {
    let (code, verifier) = code_for(server, &browser(), client_id).await;
    let answer = exchange(server, client_id, &code, &verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// An import entry for one more confidential client like the fixture's `rp`, with
/// `extra` fields merged over it.
pub fn client_entry(client_id: &str, extra: Value) -> Value {
    let mut entry = json!({
        "client_id": client_id,
        "client_name": format!("Client {client_id}"),
        "client_secret": SECRET,
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": ["https://rp.example/bye"],
        "allowed_claims": ["person_identifier", "given_name", "family_name", "birthdate"],
        "token_endpoint_auth_method": "client_secret_basic",
        "consent": "never"
    });
    if let (Some(target), Value::Object(more)) = (entry.as_object_mut(), extra) {
        for (k, v) in more {
            if v.is_null() {
                target.remove(&k);
            } else {
                target.insert(k, v);
            }
        }
    }
    entry
}

/// The claims of a JWT, read without verification.
pub fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The status of `GET /userinfo` with `token` as bearer.
pub async fn userinfo_status(server: &TestServer, token: &str) -> u16 {
    http()
        .get(server.at("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Whether introspection (by `client_id` with the fixture secret) says `token` is active.
pub async fn introspect_active(server: &TestServer, client_id: &str, token: &str) -> bool {
    let answer = post_form(server, "/introspect", Some((client_id, SECRET)), &[("token", token)]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["active"].as_bool().unwrap()
}

/// `grant_type=refresh_token` at /token for `client_id` (fixture secret, Basic).
pub async fn refresh_with(server: &TestServer, client_id: &str, refresh_token: &str) -> Answer {
    post_form(
        server,
        "/token",
        Some((client_id, SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
    )
    .await
}

// ---------------------------------------------------------------------------------------
// private_key_jwt clients (RFC 7523): a P-256 key made here, its public JWK registered.

/// RFC 7523 client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A `private_key_jwt` client: its P-256 key and the JWKS registered for it.
pub struct KeyClient {
    /// The client id.
    pub id: &'static str,
    /// Its private key.
    pub key: SigningKey,
}

impl KeyClient {
    /// A client with a fresh key.
    pub fn new(id: &'static str) -> Self {
        Self {
            id,
            key: SigningKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// The public key as a JWK (`kid` `k1`).
    pub fn jwk(&self) -> Value {
        let public = p256::PublicKey::from(self.key.verifying_key());
        let mut jwk: Value = serde_json::from_str(&public.to_jwk_string()).unwrap();
        jwk["kid"] = json!("k1");
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("ES256");
        jwk
    }

    /// The import entry: no secret, only keys.
    pub fn entry(&self) -> Value {
        client_entry(
            self.id,
            json!({
                "client_secret": null,
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [self.jwk()] }
            }),
        )
    }

    /// Good claims for an assertion to `aud`, valid for 60 s from the server's now.
    pub fn claims(&self, server: &TestServer, aud: &str) -> Value {
        let now = server.app.now();
        json!({
            "iss": self.id, "sub": self.id, "aud": aud,
            "iat": now, "exp": now + 60, "jti": eidgate::random::token(),
        })
    }

    /// An ES256 JWS over `claims` with `header`, signed with this client's key.
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        sign_es256(&self.key, header, claims)
    }

    /// A good assertion for the token endpoint.
    pub fn assertion(&self, server: &TestServer) -> String {
        let claims = self.claims(server, &server.at("/token"));
        self.sign(json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}), &claims)
    }
}

/// Base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 JWS (compact) over `claims` with `header`, signed with `key`.
pub fn sign_es256(key: &SigningKey, header: Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}
