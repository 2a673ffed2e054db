//! `TestServer`: the real server on `127.0.0.1:0` (socket bound before the spawn, so no
//! sleeping), a fresh SoftHSM token, SQLite in a temp dir (or a fresh PostgreSQL database
//! when `EIDGATE_TEST_SERVER_DB=postgres`), memory ephemeral store, TLS off, shut down on
//! drop. Plus a browser stand-in (reqwest with a cookie store, no redirects) that walks
//! the login API.

use std::sync::Arc;

use eidgate::app::App;
use eidgate::config::{Config, TlsMode};
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
        let mut config = Config::default();
        config.issuer = format!("http://127.0.0.1:{port}");
        config.data_dir = data.path().to_owned();
        config.tls.mode = TlsMode::Off;
        config.hsm = hsm;
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
            eidgate::app::serve(serving, listener, shutdown).await.unwrap();
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
        eidgate::admin::import::import(self.app.store.as_ref(), &doc.to_string(), &self.app.config)
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
            "token_endpoint_auth_method": "client_secret_basic"
        }],
        "persons": [{
            "identifier": HOLDER, "given_name": "Jonas", "family_name": "Jonaitis",
            "birthdate": "1980-01-08", "proofing_loa": "high", "gender": "male"
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

/// A query parameter of a URL.
pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}
